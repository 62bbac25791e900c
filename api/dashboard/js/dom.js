// @ts-check
// Building DOM safely: text always goes in as text nodes (textContent), never as HTML, because payloads
// and response bodies come from people we do not trust. Also the small pieces every view shows: notices,
// badges, times with their time zone, long values cut with an ellipsis, copy buttons.

/**
 * `h("a", {href: "#/x", class: "link"}, "text", childNode, [more])`: one element.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...any} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "href" && !isSafeHref(value)) {
      continue;
    } else if (name === "value" && "value" in el) {
      /** @type {any} */ (el).value = String(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * Add children to an element, leaving out null, undefined and false (the DOM's own `append` would
 * write "null").
 * @param {Element} el
 * @param {...any} children
 */
export function append(el, ...children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/**
 * Replace an element's children.
 * @param {Element} el
 * @param {...any} children
 */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * Only in-page routes and http(s) links: a `javascript:` URL from data must never become a link.
 * @param {unknown} value
 */
export function isSafeHref(value) {
  const text = String(value);
  // "//host/…" is another site's URL, not a path of ours.
  return (
    text.startsWith("#") || /^https?:\/\//i.test(text) || (text.startsWith("/") && !text.startsWith("//"))
  );
}

/**
 * @param {"error" | "success" | "info" | "warning"} kind
 * @param {...any} children
 */
export function notice(kind, ...children) {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, ...children);
}

/**
 * @param {any} text
 * @param {string} kind ok | bad | wait | neutral
 * @param {string} [title]
 */
export function badge(text, kind, title) {
  return h("span", { class: `badge badge-${kind}`, title }, text);
}

// "Nov 27, 2026, 2:05:03 PM UTC": the viewer's own zone, named, so that no time is ambiguous.
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "long" });
const zoneName = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
  .formatToParts(new Date()).find((p) => p.type === "timeZoneName")?.value ?? "local time";

const todayTime = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", timeZoneName: "short" });
const dayTime = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
  timeZoneName: "short" });

/**
 * A short time for a badge: "5:07 AM UTC" today, "Nov 26, 5:07 AM UTC" another day.
 * @param {string} iso
 */
export function shortTime(iso) {
  const date = new Date(iso);
  return (date.toDateString() === new Date().toDateString() ? todayTime : dayTime).format(date);
}

/** The viewer's time zone as times are shown in it ("UTC", "GMT+1", "PST"). */
export function localZone() {
  return zoneName;
}

/**
 * A date and time in the viewer's zone (named), with the exact ISO time on hover.
 * @param {string | null | undefined} iso
 */
export function formatTime(iso) {
  return iso ? dateTime.format(new Date(iso)) : "—";
}

/**
 * A `<time>` showing a local date and time with its zone, the exact ISO time on hover.
 * @param {string | null | undefined} iso
 * @param {{relative?: boolean}} [options] also say how long ago or ahead ("3 minutes ago")
 */
export function time(iso, { relative: withRelative = false } = {}) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const el = h("time", { datetime: iso, title: iso }, dateTime.format(new Date(iso)));
  if (!withRelative) return el;
  return h("span", {}, el, " (", liveRelative(iso), ")");
}

const UNITS = /** @type {const} */ ([[60, "second"], [3600, "minute"], [86400, "hour"], [Infinity, "day"]]);

/**
 * "in 6 seconds", "3 minutes ago".
 * @param {string} iso
 */
export function relative(iso) {
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  const divisors = { second: 1, minute: 60, hour: 3600, day: 86400 };
  const [, unit] = UNITS.find(([limit]) => abs < limit) ?? UNITS[UNITS.length - 1];
  return new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })
    .format(Math.round(seconds / divisors[unit]), unit);
}

/**
 * A relative time that keeps itself true while it is on the page ("next attempt in 6 seconds").
 * @param {string} iso
 * @param {{ahead?: boolean}} [options] a time things wait for: once it has come, "any moment now", not
 *   "2 seconds ago" (the attempt is being made, the page learns of it at its next refresh)
 */
export function liveRelative(iso, { ahead = false } = {}) {
  return h("span", { "data-relative": iso, "data-ahead": ahead || null, title: formatTime(iso) },
    relativeText(iso, ahead));
}

/** @param {string} iso @param {boolean} ahead */
function relativeText(iso, ahead) {
  return ahead && new Date(iso).getTime() <= Date.now() ? "any moment now" : relative(iso);
}

setInterval(() => {
  for (const el of document.querySelectorAll("[data-relative]")) {
    const { relative: iso = "", ahead } = /** @type {HTMLElement} */ (el).dataset;
    el.textContent = relativeText(iso, ahead !== undefined);
  }
}, 1000);

let uniqueCounter = 0;
/** @param {string} prefix */
export function uid(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

/**
 * A button that copies `getText()` and says so in a live region beside it.
 * @param {() => string} getText
 * @param {string} [label]
 * @param {string} [ariaLabel] when several copy buttons share a view, which value this one copies
 */
export function copyButton(getText, label = "Copy", ariaLabel) {
  const status = h("span", { class: "copy-status", role: "status", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "button button-small", "aria-label": ariaLabel }, label);
  button.addEventListener("click", async () => {
    const text = getText();
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = "Copied";
    } catch {
      // No clipboard permission (e.g. plain http on another host): leave it selectable instead.
      status.textContent = "Select the text and copy it";
    }
    setTimeout(() => { status.textContent = ""; }, 4000);
  });
  return h("span", { class: "copy" }, button, status);
}

/**
 * A value that may be very long (a URL of a thousand characters): one line, cut with an ellipsis, the
 * whole of it on hover, and (with `copy`) a button that copies all of it.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} text
 * @param {{class?: string, href?: string, copy?: string, id?: string}} [options]
 */
export function long(tag, text, { class: cls = "", href, copy, id } = {}) {
  const el = h(tag, { class: `truncate ${cls}`.trim(), title: text, href, id }, text);
  if (!copy) return el;
  return h("span", { class: "truncate-with-copy" }, el, copyButton(() => text, "Copy", copy));
}
