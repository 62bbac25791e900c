// @ts-check
// Navigation, shared by every view and imported by none of the shell's concerns (sign-in, sessions):
// the view lifecycle (`Page`), links between views, messages carried to the next view, and the place a
// person was at: a view's filters live in the address (`#/webhooks/ep_1?status=failed`), how many pages
// it had loaded and how far it was scrolled in the history entry's state, so that Back and a reload
// bring the person back to where they were.

import { ApiError, messageOf, session } from "./api.js";
import { config } from "./embed.js";
import { fill, h, notice } from "./dom.js";

export const main = /** @type {HTMLElement} */ (document.getElementById("main"));

/** What the shell does for a refused credential and to render the current address again. */
const hooks = {
  /** @type {(err: ApiError) => void} */
  unauthorized: () => {},
  rerender: () => {},
};

/** @param {Partial<typeof hooks>} given */
export function setHooks(given) {
  Object.assign(hooks, given);
}

/**
 * A wait started by `Page.later`; `Page.cancel` stops it, even while it waits again for a hidden tab.
 * @typedef {{timer: ReturnType<typeof setTimeout> | undefined, canceled: boolean}} Later
 */

/** One rendered view: its timers die with it, so a view left behind never touches the page again. */
export class Page {
  constructor() {
    this.alive = true;
    /** @type {Set<ReturnType<typeof setTimeout>>} */
    this.timers = new Set();
  }

  /**
   * Run `fn` in `ms`, unless the view is gone by then; a hidden tab waits until it is seen again.
   * @param {() => void} fn
   * @param {number} ms
   * @returns {Later} for `cancel`: a view that polls keeps one, so that a new poll replaces the old
   */
  later(fn, ms) {
    /** @type {Later} */
    const handle = { timer: undefined, canceled: false };
    const wait = () => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (!this.alive || handle.canceled) return;
        if (document.hidden) wait();
        else fn();
      }, ms);
      handle.timer = timer;
      this.timers.add(timer);
    };
    wait();
    return handle;
  }

  /** @param {Later | undefined} handle a wait that must not run any more (none: nothing to do) */
  cancel(handle) {
    if (!handle) return;
    handle.canceled = true;
    if (handle.timer !== undefined) {
      clearTimeout(handle.timer);
      this.timers.delete(handle.timer);
    }
  }

  close() {
    this.alive = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /**
   * Show `err` in `container` (the whole view by default); a refused credential signs the person out.
   * @param {unknown} err
   * @param {HTMLElement} [container]
   * @param {() => void} [retry]
   */
  fail(err, container = main, retry = hooks.rerender) {
    if (!this.alive) return;
    if (err instanceof ApiError && err.status === 401) {
      hooks.unauthorized(err);
      return;
    }
    const message = messageOf(err);
    fill(
      container,
      notice(
        "error",
        h("p", {}, message),
        h("button", { type: "button", class: "button button-small", onclick: () => retry() }, "Try again"),
      ),
    );
  }
}

/**
 * A view for an id that names nothing (a mistyped or old link, a deleted endpoint): said plainly, with
 * the way back, never a "Try again" that cannot help.
 * @param {string} what "endpoint", "delivery", "event"
 * @param {string} id
 * @param {string} [hint]
 */
export function notFound(what, id, hint) {
  fill(main,
    h("p", { class: "back" }, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("h1", {}, `No such ${what}`),
    h("div", { class: "card" },
      h("p", {}, `There is no ${what} `, h("code", { class: "truncate inline-code", title: id }, id),
        ` in this account (${session.tenant}).`),
      hint ? h("p", { class: "muted" }, hint) : null,
      h("p", {}, h("a", { class: "button", href: "#/webhooks" }, "Back to webhooks"))));
  focusHeading();
}

/** @param {unknown} err */
export const isNotFound = (err) => err instanceof ApiError && err.status === 404;

/**
 * What `loading` gives, or null when the API answers 404: the view then says there is no such `what`.
 * @template T
 * @param {Promise<T>} loading
 * @param {string} what "endpoint", "delivery", "event"
 * @param {string} id
 * @param {string} hint
 * @returns {Promise<T | null>}
 */
export async function foundOrNotFound(loading, what, id, hint) {
  try {
    return await loading;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    notFound(what, id, hint);
    return null;
  }
}

// ---- links --------------------------------------------------------------------------------------

/** @param {string} id */
export const endpointHref = (id) => `#/webhooks/${encodeURIComponent(id)}`;
/** @param {string} id */
export const deliveryHref = (id) => `#/deliveries/${encodeURIComponent(id)}`;
/** @param {string} id */
export const eventHref = (id) => `#/events/${encodeURIComponent(id)}`;

/** @param {string} hash */
export function navigate(hash) {
  keepScroll();
  if (location.hash === hash) hooks.rerender();
  else location.hash = hash;
}

/** @type {any} */
let flashMessage = null;
/** @type {unknown} */
let handoff = null;

/**
 * A message for the next view, e.g. after a delete that navigates away: text, or nodes.
 * @param {any} text
 */
export function flash(text) {
  flashMessage = text;
}

export function takeFlash() {
  const text = flashMessage;
  flashMessage = null;
  return text;
}

/**
 * Something for the next view alone, never kept in the address or in storage: the endpoint just created,
 * with its secret to show once.
 * @param {unknown} value
 */
export function handOver(value) {
  handoff = value;
}

export function takeHandoff() {
  const value = handoff;
  handoff = null;
  return value;
}

/** Move keyboard and screen-reader focus to a freshly rendered view's heading. */
export function focusHeading() {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

// ---- where the person was -----------------------------------------------------------------------

/** The route part of the address and its query: `#/webhooks/ep_1?status=failed`. */
export function currentAddress() {
  const hash = location.hash || "#/webhooks";
  const at = hash.indexOf("?");
  return {
    path: at < 0 ? hash : hash.slice(0, at),
    params: new URLSearchParams(at < 0 ? "" : hash.slice(at + 1)),
  };
}

/**
 * Put a view's filters in the address, in place (no new history entry: Back leaves the view).
 * @param {URLSearchParams} params
 */
export function setQuery(params) {
  const { path } = currentAddress();
  const query = params.toString();
  history.replaceState({ ...(history.state ?? {}), pages: 1 }, "", `${path}${query ? `?${query}` : ""}`);
}

/** @returns {{pages?: number, scroll?: number}} what this history entry remembers of its view */
export function viewState() {
  return history.state ?? {};
}

/** @param {{pages?: number, scroll?: number}} patch */
export function saveViewState(patch) {
  history.replaceState({ ...(history.state ?? {}), ...patch }, "", location.href);
}

// The page restores scroll itself, once a view has loaded what was on screen (a list and its extra
// pages); the browser's own restoration would scroll an empty page.
history.scrollRestoration = "manual";
let restoring = false;
let scrollTimer = 0;

function keepScroll() {
  if (!restoring) saveViewState({ scroll: Math.round(window.scrollY) });
}

/** Called when a view starts rendering: until it has restored its place, scrolling is not recorded. */
export function beginRestore() {
  restoring = true;
}

/** Called when a view has rendered what it had: scroll back to where this history entry was. */
export function restoreScroll() {
  restoring = false;
  window.scrollTo(0, viewState().scroll ?? 0);
}

window.addEventListener("scroll", () => {
  clearTimeout(scrollTimer);
  scrollTimer = window.setTimeout(keepScroll, 200);
}, { passive: true });
// A link is followed after its click: the entry being left remembers its scroll first.
document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[href^='#']") : null;
  if (link) keepScroll();
}, true);

// ---- who may do what ----------------------------------------------------------------------------

/** Whether this credential may change things (the `manage` scope): else manage buttons are not shown. */
export function canManage() {
  return !session.readOnly;
}

/** Why the buttons that change things are missing, said once per view that would have shown them. */
export function readOnlyNote() {
  return canManage() ? null : h("p", { class: "muted small read-only-note" },
    "This session is read-only: you can look at endpoints and deliveries, not change them.");
}

/**
 * Whether to link deliveries to the Temporal Web UI: only where the operator says its viewers can open
 * it (WEBHOOKS_DASHBOARD_TEMPORAL_LINKS), and never for a portal session, whose viewer is a customer.
 */
export async function temporalLinks() {
  if (session.token) return false;
  return (await config).temporal_links;
}
