// @ts-check
// The page inside another product (docs/dashboard.md, "Embedding the dashboard"): the theme that product asks for,
// and what it is told. Messages go only to, and are taken only from, the origins the operator lets frame
// the page (WEBHOOKS_PORTAL_FRAME_ANCESTORS, served as embedding.json), and only from the frame's parent.
//
// Inside a portal session the page is the host's (white-label): none of our chrome (brand, breadcrumb,
// tenant, Sign out, operator sign-in; app.js), and the title, accent colour and logo the host asked for
// when it opened the session (POST /v1/portal/sessions `appearance`, signed into the token, read from
// GET /v1/me): each set as text, a CSS custom property or an <img> src, after the same checks as the API's.
//
// Host → page: {type: "flexprice-webhooks:theme", theme: "light" | "dark", accent: "#rrggbb"}
//   (or ?theme=dark&accent=%23rrggbb&title=…&logo=https… in the page's URL; what the session sets wins)
// Page → host: {type: "flexprice-webhooks:ready", tenant, expires_at, read_only}
//              {type: "flexprice-webhooks:session-ended", reason: "expired" | "refused" | "signed-out", detail}

import { session } from "./api.js";

const PREFIX = "flexprice-webhooks:";
const ACCENT = /^#[0-9a-f]{6}$/i;
// As domain/appearance.py: one line of plain text, a bounded https URL (http on this machine only).
const TITLE_MAX = 80;
const LOGO_MAX = 2048;
const LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"];
const OUR_TITLE = "Webhooks · Flexprice";
const params = new URLSearchParams(location.search);

/** @type {string[]} */
let origins = [];

/**
 * What the page needs to know of how the operator set it up (no secret): who may frame it, and whether
 * its viewers can open the Temporal Web UI (WEBHOOKS_DASHBOARD_TEMPORAL_LINKS).
 * @type {Promise<{frame_ancestors: string[], temporal_links: boolean}>}
 */
export const config = fetch("embedding.json", { cache: "no-store" })
  .then((response) => (response.ok ? response.json() : {}))
  .catch(() => ({}))
  .then((/** @type {any} */ found) => ({
    frame_ancestors: Array.isArray(found.frame_ancestors) ? found.frame_ancestors : [],
    temporal_links: found.temporal_links === true,
  }));
const loaded = config.then((found) => { origins = found.frame_ancestors; });

export const framed = window.parent !== window;

/**
 * Light or dark, and an accent colour; anything else is ignored, never inserted.
 * @param {{theme?: unknown, accent?: unknown}} [choice]
 */
export function applyTheme({ theme, accent } = {}) {
  const root = document.documentElement;
  if (theme === "dark" || theme === "light") root.dataset.theme = theme;
  // The session's accent, when it set one, is the host's word: a later message or the URL does not change it.
  const signed = session.portal ? session.appearance?.accent_color : null;
  setAccent(signed && ACCENT.test(signed) ? signed : accent);
}

/** @param {unknown} accent */
function setAccent(accent) {
  if (typeof accent !== "string" || !ACCENT.test(accent)) return;
  const root = document.documentElement;
  root.style.setProperty("--brand", accent);
  root.style.setProperty("--brand-dark", `color-mix(in srgb, ${accent} 80%, black)`);
}

/**
 * @param {unknown} value
 * @returns {string | null}
 */
function plainTitle(value) {
  if (typeof value !== "string") return null;
  const title = value.trim();
  const ok = title.length >= 1 && title.length <= TITLE_MAX && !/[<>\u0000-\u001f\u007f]/.test(title);
  return ok ? title : null;
}

/**
 * @param {unknown} value
 * @returns {string | null}
 */
function logoAddress(value) {
  if (typeof value !== "string" || value.length > LOGO_MAX || /[\s"'<>\\`]/.test(value)) return null;
  try {
    const url = new URL(value);
    const local = url.protocol === "http:" && LOCAL_HOSTS.includes(url.hostname);
    if ((url.protocol !== "https:" && !local) || url.username || url.password) return null;
    return url.href;
  } catch {
    return null;
  }
}

/**
 * The look this page shows: inside a portal session, what the session set, then what the URL asked for;
 * outside one, ours.
 * @returns {{title: string | null, logo: string | null}}
 */
function look() {
  if (!session.portal) return { title: null, logo: null };
  const signed = session.appearance;
  return {
    title: plainTitle(signed?.title) ?? plainTitle(params.get("title")),
    logo: logoAddress(signed?.logo_url) ?? logoAddress(params.get("logo")),
  };
}

/**
 * Our brand outside a portal session; the host's title and logo (or none) inside one.
 * @param {HTMLElement} ours the product's brand in the top bar
 * @param {HTMLElement} theirs where the host's title and logo go
 */
export function showBrand(ours, theirs) {
  const { title, logo } = look();
  ours.hidden = session.portal;
  document.documentElement.toggleAttribute("data-portal", session.portal);
  theirs.hidden = !session.portal || !(title || logo);
  const text = /** @type {HTMLElement} */ (theirs.querySelector("#host-title"));
  text.textContent = title ?? "";
  const shown = theirs.querySelector("#host-logo");
  if (shown?.getAttribute("src") !== logo) {
    shown?.remove();
    if (logo) {
      const image = document.createElement("img");
      image.id = "host-logo";
      image.className = "host-logo";
      image.src = logo;
      image.alt = title ? "" : "Logo"; // beside the title it says nothing more
      image.referrerPolicy = "no-referrer";
      theirs.prepend(image);
    }
  }
  applyTheme();
}

/**
 * The tab's title: `parts`, then ours ("Webhooks · Flexprice") or, inside a portal session, the host's.
 * @param {...string} parts
 */
export function pageTitle(...parts) {
  const end = session.portal ? look().title ?? "Webhooks" : OUR_TITLE;
  document.title = [...parts, end].join(" · ");
}

/**
 * Tell the product framing this page; nothing is sent to an origin the operator did not list.
 * @param {string} type
 * @param {Record<string, unknown>} [fields]
 */
export async function tellHost(type, fields = {}) {
  if (!framed) return;
  await loaded;
  for (const origin of origins) {
    // The browser delivers it only if the parent is at `origin`: never to anyone else.
    window.parent.postMessage({ type: PREFIX + type, ...fields }, origin);
  }
}

applyTheme({ theme: params.get("theme"), accent: params.get("accent") });

window.addEventListener("message", async (event) => {
  await loaded;
  if (event.source !== window.parent || !origins.includes(event.origin)) return;
  const data = event.data;
  if (data && typeof data === "object" && data.type === `${PREFIX}theme`) applyTheme(data);
});
