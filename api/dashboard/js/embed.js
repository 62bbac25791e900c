// @ts-check
// The page inside another product (docs/dashboard.md, "Embedding the dashboard"): the theme that product asks for,
// and what it is told. Messages go only to, and are taken only from, the origins the operator lets frame
// the page (WEBHOOKS_PORTAL_FRAME_ANCESTORS, served as embedding.json), and only from the frame's parent.
//
// Host → page: {type: "flexprice-webhooks:theme", theme: "light" | "dark", accent: "#rrggbb"}
//   (or ?theme=dark&accent=%23rrggbb in the page's URL)
// Page → host: {type: "flexprice-webhooks:ready", tenant, expires_at, read_only}
//              {type: "flexprice-webhooks:session-ended", reason: "expired" | "refused" | "signed-out", detail}

const PREFIX = "flexprice-webhooks:";
const ACCENT = /^#[0-9a-f]{6}$/i;

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
  if (typeof accent === "string" && ACCENT.test(accent)) {
    root.style.setProperty("--brand", accent);
    root.style.setProperty("--brand-dark", `color-mix(in srgb, ${accent} 80%, black)`);
  }
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

const params = new URLSearchParams(location.search);
applyTheme({ theme: params.get("theme"), accent: params.get("accent") });

window.addEventListener("message", async (event) => {
  await loaded;
  if (event.source !== window.parent || !origins.includes(event.origin)) return;
  const data = event.data;
  if (data && typeof data === "object" && data.type === `${PREFIX}theme`) applyTheme(data);
});
