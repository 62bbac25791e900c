// The dashboard shell: sign-in, the hash router and the per-view lifecycle (timers stop on navigation).

import { ApiError, api, session } from "./api.js";
import { fill, h, notice } from "./dom.js";
import { deliveryDetail, failedDeliveries } from "./deliveries.js";
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
      signOut("Your API key is no longer accepted. Sign in again.");
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
}

function route() {
  current?.close();
  current = new Page();
  if (!session.key) {
    showChrome(false);
    signInView(current);
    return;
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
  session.signOut();
  flashMessage = message ?? null;
  route();
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
      const me = await api.me(key);
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
window.addEventListener("hashchange", route);
route();

// A hand-edited hash like "#/endpoints/%E0" must not stop the page: keep the text as typed.
function safeDecode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
