// @ts-check
// The dashboard shell: sign-in (an API key, or a portal session handed over in the URL), the hash router
// and the per-view lifecycle (timers stop on navigation).

import { ApiError, api, messageOf, session } from "./api.js";
import { fill, h, notice, relative } from "./dom.js";
import { deliveryDetail } from "./delivery.js";
import { pageTitle, showBrand, tellHost } from "./embed.js";
import { endpointForm } from "./endpoint-form.js";
import { endpointList } from "./endpoint-list.js";
import { endpointDetail } from "./endpoint-page.js";
import { eventDetail } from "./event.js";
import { failedDeliveries } from "./failed.js";
import { findView } from "./find.js";
import {
  Page, beginRestore, currentAddress, focusHeading, main, navigate, restoreScroll, setHooks, takeFlash,
} from "./nav.js";

/** @type {Page | null} */
let current = null;
/** @type {HTMLElement | null} the message carried to this view (flash), while it still answers something */
let flashed = null;
/** @type {string | null} */
let signInMessage = null;

/** @type {[RegExp, (main: HTMLElement, page: Page, ...params: string[]) => unknown, string][]} */
const routes = [
  [/^#\/webhooks\/?$/, endpointList, "webhooks"],
  [/^#\/webhooks\/new$/, endpointForm, "webhooks"],
  [/^#\/webhooks\/([^/]+)\/edit$/, endpointForm, "webhooks"],
  [/^#\/webhooks\/([^/]+)$/, endpointDetail, "webhooks"],
  [/^#\/deliveries\/([^/]+)$/, deliveryDetail, "webhooks"],
  [/^#\/events\/([^/]+)$/, eventDetail, "webhooks"],
  [/^#\/find\/(.*)$/, findView, "webhooks"],
  [/^#\/failed$/, failedDeliveries, "failed"],
];

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * The chrome around the views. Inside a portal session (or on the page saying it ended) the page is the
 * host's, white-label: no brand of ours, no breadcrumb, no tenant, no Sign out; the host's title and logo.
 * @param {boolean} signedIn
 */
function showChrome(signedIn) {
  const ours = signedIn && !session.portal;
  for (const id of ["account", "tabs"]) byId(id).hidden = !signedIn;
  byId("crumbs").hidden = !ours;
  byId("tenant-label").textContent = ours ? `Tenant: ${session.tenant}` : "";
  byId("tenant-label").hidden = !ours;
  byId("sign-out").hidden = !ours;
  byId("read-only").hidden = !(signedIn && session.readOnly);
  showBrand(byId("brand"), byId("host-brand"));
  showSessionEnd();
}

function route() {
  current?.close();
  current = new Page();
  if (!session.signedIn) {
    showChrome(false);
    if (session.ended) endedView(current);
    else signInView(current);
    return;
  }
  if (!session.tenant) {
    fill(main, h("p", { class: "muted", role: "status" }, "Signing in…"));
    return; // a portal session being checked: startSession routes once /v1/me has answered
  }
  showChrome(true);
  const { path } = currentAddress();
  /** @type {[(main: HTMLElement, page: Page, ...params: string[]) => unknown, string, string[]] | null} */
  let found = null;
  for (const [pattern, view, tab] of routes) {
    const match = path.match(pattern);
    if (match) {
      found = [view, tab, match.slice(1).map(safeDecode)];
      break;
    }
  }
  if (!found) {
    location.replace("#/webhooks");
    return;
  }
  const [view, tab, params] = found;
  for (const link of document.querySelectorAll("#tabs a")) {
    if (/** @type {HTMLElement} */ (link).dataset.tab === tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  pageTitle();
  fill(main);
  const message = takeFlash();
  flashed = message ? notice("info", h("p", {}, message)) : null;
  if (flashed) main.append(flashed);
  showLoading();
  const page = current;
  beginRestore();
  Promise.resolve(view(main, page, ...params))
    .catch((err) => page.fail(err))
    .finally(() => { if (page.alive) restoreScroll(); });
}

/** @type {MutationObserver | null} */
let loadingWatch = null;

/**
 * "Loading…" at once, in every view, until the view puts anything of its own on the page (its heading,
 * its own "Loading endpoints…", an error): a view waits for the API before it draws, and the API may
 * take its time (ANSWER_WITHIN_MS, then the view says so, with "Try again").
 */
function showLoading() {
  loadingWatch?.disconnect();
  const loading = h("p", { class: "muted view-loading", role: "status" }, "Loading…");
  main.append(loading);
  loadingWatch = new MutationObserver((changes) => {
    const drawn = changes.some((c) => [...c.addedNodes].some((node) => node !== loading));
    if (!drawn && loading.isConnected) return;
    loading.remove();
    loadingWatch?.disconnect();
    loadingWatch = null;
  });
  loadingWatch.observe(main, { childList: true });
}

/** @param {string} [message] */
function signOut(message) {
  if (session.token) {
    endSession(null, "signed-out");
    return;
  }
  session.signOut();
  signInMessage = message ?? null;
  route();
}

// ---- portal sessions ----------------------------------------------------------------------------

// With its zone, as every time on the page: "2:05 PM UTC".
const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", timeZoneName: "short" });
/** @type {ReturnType<typeof setTimeout> | undefined} */
let sessionTimer;

/** "Session ends in 42 minutes (at 14:05)" in the top bar, kept current; at the end, the end. */
function showSessionEnd() {
  const label = byId("session-ends");
  clearTimeout(sessionTimer);
  const ends = session.token && session.endsAt ? new Date(session.endsAt) : null;
  label.hidden = !ends;
  if (!ends) return;
  const left = ends.getTime() - Date.now();
  if (left <= 0) {
    endSession(null, "expired");
    return;
  }
  label.textContent = `Session ends ${relative(session.endsAt ?? "")} (at ${timeOfDay.format(ends)})`;
  label.setAttribute("title", session.endsAt ?? "");
  // Often enough for the words to stay true, and a last wake-up at the very end.
  sessionTimer = setTimeout(showSessionEnd, Math.min(left, left < 120_000 ? 1000 : 15_000));
}

/**
 * A portal session handed over in the URL (`#session=…`): kept in this tab, gone from the address bar.
 * Without `token`, the session this tab already holds (a reload): checked again, and the host told.
 * @param {string | null} token
 */
async function startSession(token) {
  if (token) {
    session.begin(token);
    history.replaceState(null, "", `${location.pathname}${location.search}#/webhooks`);
  }
  const known = Boolean(session.tenant);
  route();
  try {
    const me = await api.me();
    session.adopt(me);
    showBrand(byId("brand"), byId("host-brand"));
    tellHost("ready", { tenant: me.tenant, expires_at: me.session.expires_at, read_only: session.readOnly });
    if (known) showChrome(true);
    else route();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) endSession(err.detail);
    else fill(main, notice("error", h("p", {}, messageOf(err))));
  }
}

/**
 * The session is over (its end came, the API refused it, or the person signed out): say so, tell the host.
 * @param {unknown} detail
 * @param {string} [reason]
 */
function endSession(detail, reason) {
  if (!session.token) return;
  const expired = reason === "expired" ||
    (!reason && session.endsAt && Date.parse(session.endsAt) <= Date.now());
  const why = reason ?? (expired ? "expired" : "refused");
  const said = typeof detail === "string" ? detail : null;
  session.end(why, said);
  tellHost("session-ended", { reason: why, detail: said });
  route();
}

/** @param {Page} page */
function endedView(page) {
  const { reason, detail, endsAt } = session.ended;
  const at = endsAt ? timeOfDay.format(new Date(endsAt)) : null;
  const what = reason === "signed-out" ? "You signed out of this session."
    : reason === "expired" ? `This session ended${at ? ` at ${at}` : ""}: sessions last a limited time, for your security.`
      : `This session is no longer accepted${detail ? `: ${detail}` : "."}`;
  // No operator sign-in here: this page is the host product's, whose users hold no API key of ours.
  pageTitle("Session ended");
  fill(main, h("section", { class: "card sign-in ended", "aria-labelledby": "ended-title" },
    h("h1", { id: "ended-title" }, "Your session has ended"),
    notice("info", h("p", {}, what)),
    h("p", {}, "To carry on, go back to the product that showed you this page and open its webhooks page " +
      "again (or reload it): it starts a new session. Nothing you saved is lost.")));
  if (page.alive) focusHeading();
}

/** @param {Page} page */
function signInView(page) {
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "api-key-help",
  });
  const error = h("div", { id: "sign-in-error" });
  const button = h("button", { type: "submit", class: "button button-primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card sign-in", novalidate: true, "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in to Webhooks"),
    h("p", { class: "muted" }, "Manage where Flexprice sends your events, read every delivery and retry failures."),
    error,
    h("label", { for: "api-key" }, "API key"),
    input,
    h(
      "p",
      { id: "api-key-help", class: "help" },
      "Kept in this browser tab only, and forgotten when you close it. ", h("code", {}, "make run"),
      " prints a dev key.",
    ),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      fill(error, notice("error", "Enter your API key."));
      input.focus();
      return;
    }
    button.disabled = true;
    fill(error, h("p", { class: "muted", role: "status" }, "Signing in…"));
    try {
      const me = await api.me({ key });
      if (!me.scopes.includes("read")) {
        // A key made for emitting events only (say): it would meet a refusal on every page.
        throw new ApiError(403, `That API key cannot read webhooks (its scopes: ${me.scopes.join(", ")}).`, null);
      }
      session.signIn(key, me);
      if (!location.hash || location.hash === "#/" || location.hash === "#") location.hash = "#/webhooks";
      else route();
    } catch (err) {
      if (!page.alive) return;
      const message = err instanceof ApiError && err.status === 401
        ? "That API key was not accepted. Check it and try again."
        : messageOf(err);
      fill(error, notice("error", message));
      button.disabled = false;
      input.focus();
    }
  });
  fill(main, signInMessage ? notice("info", signInMessage) : null, form);
  signInMessage = null;
  input.focus();
}

byId("sign-out").addEventListener("click", () => signOut("You are signed out."));

// A flashed message answers what the person just did ("Endpoint enabled"): their next action in the view
// (a button, a form sent) has an answer of its own, which the old message would seem to contradict.
for (const type of ["click", "submit"]) {
  main.addEventListener(type, (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!flashed || (type === "click" && !target?.closest("button"))) return;
    flashed.remove();
    flashed = null;
  }, true);
}

// The search box: an id of an event, a delivery or an endpoint opens what it names (find.js).
byId("find").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ (byId("find-id"));
  const id = input.value.trim();
  if (!id) {
    input.focus();
    return;
  }
  navigate(`#/find/${encodeURIComponent(id)}`);
});

setHooks({
  unauthorized: (err) => {
    if (session.token) endSession(err.detail);
    else signOut("Your API key is no longer accepted. Sign in again.");
  },
  rerender: () => route(),
});
window.addEventListener("hashchange", () => {
  const handed = location.hash.match(/^#session=(.+)$/);
  if (handed) startSession(safeDecode(handed[1]));
  else route();
});
// A background tab's timers are slowed: look at the clock again when the person comes back.
document.addEventListener("visibilitychange", () => { if (!document.hidden) showSessionEnd(); });
const handedOver = location.hash.match(/^#session=(.+)$/);
if (handedOver) startSession(safeDecode(handedOver[1]));
else if (session.token) startSession(null);
else route();

/**
 * A hand-edited hash like "#/endpoints/%E0" must not stop the page: keep the text as typed.
 * @param {string} part
 */
function safeDecode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
