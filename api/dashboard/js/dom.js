// Building DOM safely: text always goes in as text nodes (textContent), never as HTML, because payloads
// and response bodies come from people we do not trust.

/** `h("a", {href: "#/x", class: "link"}, "text", childNode, [more])`: one element. */
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
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Only in-page routes and http(s) links: a `javascript:` URL from data must never become a link. */
export function isSafeHref(value) {
  const text = String(value);
  // "//host/…" is another site's URL, not a path of ours.
  return (
    text.startsWith("#") || /^https?:\/\//i.test(text) || (text.startsWith("/") && !text.startsWith("//"))
  );
}

export function notice(kind, ...children) {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, ...children);
}

export function badge(text, kind) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

const statusKinds = { succeeded: "ok", failed: "bad", pending: "wait", scheduled: "wait" };
const statusText = { succeeded: "Succeeded", failed: "Failed", pending: "Pending", scheduled: "Scheduled" };

export function statusBadge(status) {
  return badge(statusText[status] ?? status, statusKinds[status] ?? "neutral");
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** A `<time>` showing a local date and time, with the exact ISO time on hover. */
export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  return h("time", { datetime: iso, title: iso }, dateTime.format(date));
}

export function relative(iso) {
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  const [value, unit] =
    abs < 60 ? [seconds, "second"] : abs < 3600 ? [Math.round(seconds / 60), "minute"]
      : abs < 86400 ? [Math.round(seconds / 3600), "hour"] : [Math.round(seconds / 86400), "day"];
  return new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(value, unit);
}

let uniqueCounter = 0;
export function uid(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

/** A button that copies `getText()` and says so in a live region beside it. */
export function copyButton(getText, label = "Copy") {
  const status = h("span", { class: "copy-status", role: "status", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "button button-small" }, label);
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
