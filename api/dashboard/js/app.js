// The dashboard shell: sign-in (an API key, or a portal session handed over in the URL), the hash router
// and the per-view lifecycle (timers stop on navigation).

import { ApiError, api, session } from "./api.js";
import { fill, h, notice, relative } from "./dom.js";
import { deliveryDetail, failedDeliveries } from "./deliveries.js";
import { tellHost } from "./embed.js";
import { endpointDetail, endpointForm, endpointList } from "./endpoints.js";

const main = document.getElementById("main");

/** One rendered view: its timers die with it, so a view left behind never touches the page again. */
export class Page {
  constructor() {
    this.alive = true;
    this.timers = new Set();
  }

  later(fn, ms) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.alive && !document.hidden) fn();
      else if (this.alive) this.later(fn, ms);
    }, ms);
    this.timers.add(timer);
  }

  close() {
    this.alive = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** Show `err` in `container` (the whole view by default); a refused key signs the person out. */
  fail(err, container = main, retry = route) {
    if (!this.alive) return;
    if (err instanceof ApiError && err.status === 401) {
      if (session.token) endSession(err.detail);
      else signOut("Your API key is no longer accepted. Sign in again.");
      return;
    }
    const message = err instanceof ApiError ? err.message : `Something went wrong: ${err}`;
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

let current = null;
let flashMessage = null;

/** A message for the next view, e.g. after a delete that navigates away. */
export function flash(text) {
  flashMessage = text;
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

const routes = [
  [/^#\/webhooks\/?$/, endpointList, "webhooks"],
  [/^#\/webhooks\/new$/, endpointForm, "webhooks"],
  [/^#\/webhooks\/([^/]+)\/edit$/, endpointForm, "webhooks"],
  [/^#\/webhooks\/([^/]+)$/, endpointDetail, "webhooks"],
  [/^#\/deliveries\/([^/]+)$/, deliveryDetail, "webhooks"],
  [/^#\/failed$/, failedDeliveries, "failed"],
];

function showChrome(signedIn) {
  for (const id of ["crumbs", "account", "tabs"]) document.getElementById(id).hidden = !signedIn;
  document.getElementById("tenant-label").textContent = signedIn ? `Tenant: ${session.tenant}` : "";
  document.getElementById("read-only").hidden = !(signedIn && session.readOnly);
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
  let found = null;
  for (const [pattern, view, tab] of routes) {
    const match = location.hash.match(pattern);
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
    if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  fill(main);
  if (flashMessage) {
    main.append(notice("info", flashMessage));
    flashMessage = null;
  }
  const page = current;
  Promise.resolve(view(main, page, ...params)).catch((err) => page.fail(err));
}

/** Move keyboard and screen-reader focus to a freshly rendered view's heading. */
export function focusHeading() {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

function signOut(message) {
  if (session.token) {
    endSession(null, "signed-out");
    return;
  }
  session.signOut();
  flashMessage = message ?? null;
  route();
}

// ---- portal sessions ----------------------------------------------------------------------------

const timeOfDay = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
let sessionTimer = null;

/** "Session ends in 42 minutes (at 14:05)" in the top bar, kept current; at the end, the end. */
function showSessionEnd() {
  const label = document.getElementById("session-ends");
  clearTimeout(sessionTimer);
  const ends = session.token && session.endsAt ? new Date(session.endsAt) : null;
  label.hidden = !ends;
  if (!ends) return;
  const left = ends.getTime() - Date.now();
  if (left <= 0) {
    endSession(null, "expired");
    return;
  }
  label.textContent = `Session ends ${relative(session.endsAt)} (at ${timeOfDay.format(ends)})`;
  label.setAttribute("title", session.endsAt);
  // Often enough for the words to stay true, and a last wake-up at the very end.
  sessionTimer = setTimeout(showSessionEnd, Math.min(left, left < 120_000 ? 1000 : 15_000));
}

/** A portal session handed over in the URL (`#session=…`): kept in this tab, gone from the address bar.
 * Without `token`, the session this tab already holds (a reload): checked again, and the host told. */
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
    tellHost("ready", { tenant: me.tenant, expires_at: me.session.expires_at, read_only: session.readOnly });
    if (known) showChrome(true);
    else route();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) endSession(err.detail);
    else fill(main, notice("error", h("p", {}, err instanceof ApiError ? err.message : String(err))));
  }
}

/** The session is over (its end came, the API refused it, or the person signed out): say so, tell the host. */
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

function endedView(page) {
  const { reason, detail, endsAt } = session.ended;
  const at = endsAt ? timeOfDay.format(new Date(endsAt)) : null;
  const what = reason === "signed-out" ? "You signed out of this session."
    : reason === "expired" ? `This session ended${at ? ` at ${at}` : ""}: sessions last a limited time, for your security.`
      : `This session is no longer accepted${detail ? `: ${detail}` : "."}`;
  const another = h("button", { type: "button", class: "button button-quiet button-small" }, "Sign in with an API key");
  another.addEventListener("click", () => {
    session.signOut();
    route();
  });
  fill(main, h("section", { class: "card sign-in ended", "aria-labelledby": "ended-title" },
    h("h1", { id: "ended-title" }, "Your session has ended"),
    notice("info", h("p", {}, what)),
    h("p", {}, "To carry on, go back to the product that showed you this page and open its webhooks page " +
      "again (or reload it): it starts a new session. Nothing you saved is lost."),
    h("p", { class: "muted small" }, "Operator? ", another)));
  if (page.alive) focusHeading();
}

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
      "Kept in this browser tab only, and forgotten when you close it. `make run` prints a dev key.",
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
        throw new ApiError(403, `That API key cannot read webhooks (its scopes: ${me.scopes.join(", ")}).`);
      }
      session.signIn(key, me.tenant);
      if (!location.hash || location.hash === "#/" || location.hash === "#") location.hash = "#/webhooks";
      else route();
    } catch (err) {
      if (!page.alive) return;
      const message = err instanceof ApiError && err.status === 401
        ? "That API key was not accepted. Check it and try again."
        : err.message;
      fill(error, notice("error", message));
      button.disabled = false;
      input.focus();
    }
  });
  fill(main, flashMessage ? notice("info", flashMessage) : null, form);
  flashMessage = null;
  input.focus();
}

document.getElementById("sign-out").addEventListener("click", () => signOut("You are signed out."));
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

// A hand-edited hash like "#/endpoints/%E0" must not stop the page: keep the text as typed.
function safeDecode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
