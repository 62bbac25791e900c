// @ts-check
// "Add a webhook" and "Edit webhook": the URL, the signature method, the events, and the endpoint's own
// delivery settings (custom headers, rate limit, retry schedule). A new endpoint opens its own page,
// where its secret is shown once: the address never stays on an empty "new" form.

import { ApiError, api, eventTypes, messageOf } from "./api.js";
import { append, fill, h, notice } from "./dom.js";
import { eventPicker } from "./event-picker.js";
import { orderedFields } from "./ordered.js";
import {
  Page, canManage, endpointHref, flash, focusHeading, handOver, isNotFound, navigate, notFound, readOnlyNote,
} from "./nav.js";

export const METHODS = {
  hmac: {
    label: "HMAC (Standard Webhooks)",
    help: "Your receiver checks the webhook-signature header with the endpoint's signing secret, " +
      "which you copy once you add the webhook.",
  },
  jwt: {
    label: "JWT (RS256)",
    help: "Your receiver checks the x-webhook-signature token with your account's public keys (their URL " +
      "is shown once you add the webhook), and refuses it unless its aud claim is this endpoint's id; " +
      "there is no secret to share.",
  },
};

/**
 * What "All events" leaves out: the service's operational events about the endpoints, received only when
 * chosen by name (their group under Selected events).
 * @param {import("./api.js").EventType[]} types
 */
function operationalNote(types) {
  const operational = types.filter((t) => t.operational);
  const billing = types.length - operational.length;
  if (!operational.length) return `Every one of the ${billing} event types.`;
  const group = operational[0].group;
  return `Every one of the ${billing} billing event types. The operational ${operational[0].name.split(".")[0]}.* ` +
    `events about your endpoints (${operational.map((t) => t.name.split(".")[1].replace(/_/g, " ")).join(", ")}) ` +
    `are not included: choose Selected events and tick ${group} to receive them.`;
}

/** @param {string} id */
function fieldError(id) {
  return h("p", { id, class: "field-error", hidden: true });
}

/**
 * @param {HTMLElement} el
 * @param {HTMLElement | null | undefined} input
 * @param {string | null} message
 */
function setError(el, input, message) {
  el.textContent = message ?? "";
  el.hidden = !message;
  if (input) {
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

/**
 * "Name: value" lines as headers; a line without a colon is a mistake worth saying.
 * @param {string} text
 * @returns {Record<string, string>}
 */
function parseHeaders(text) {
  /** @type {Record<string, string>} */
  const headers = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf(":");
    if (at <= 0) throw new Error(`"${line.slice(0, 40)}" is not "Name: value"`);
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return headers;
}

/**
 * "5, 300, 1800" as seconds.
 * @param {string} text
 */
function parseSchedule(text) {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  const numbers = parts.map(Number);
  if (numbers.some((n) => !Number.isFinite(n))) throw new Error("write seconds between attempts, e.g. 5, 300, 1800");
  return numbers;
}

/**
 * The form's address in a read-only session (a kept link, a typed address): no form the server would
 * refuse, but why, and the way back.
 * @param {HTMLElement} main
 * @param {string | null} endpointLink the endpoint being edited; null for a new one
 */
function readOnlyForm(main, endpointLink) {
  append(main,
    h("p", { class: "back" }, h("a", { href: endpointLink ?? "#/webhooks" },
      endpointLink ? "← Back to the endpoint" : "← Webhooks")),
    h("h1", {}, endpointLink ? "Edit webhook" : "Add a webhook"),
    h("div", { class: "card" }, readOnlyNote(),
      h("p", {}, h("a", { class: "button", href: endpointLink ?? "#/webhooks" },
        endpointLink ? "Back to the endpoint" : "Back to webhooks"))));
  focusHeading();
}

/**
 * @param {HTMLElement} main
 * @param {Page} page
 * @param {string} [endpointId]
 */
export async function endpointForm(main, page, endpointId) {
  const editing = endpointId !== undefined;
  if (!canManage()) {
    readOnlyForm(main, editing ? endpointHref(endpointId ?? "") : null);
    return;
  }
  let types;
  let existing = null;
  try {
    [types, existing] = await Promise.all([
      eventTypes(),
      editing ? api.endpoint(endpointId) : Promise.resolve(null),
    ]);
  } catch (err) {
    if (editing && isNotFound(err)) {
      notFound("endpoint", endpointId ?? "", "It may have been deleted.");
      return;
    }
    throw err;
  }
  if (!page.alive) return;
  const title = editing ? "Edit webhook" : "Add a webhook";

  const url = h("input", {
    id: "endpoint-url", name: "url", type: "text", inputmode: "url", autocomplete: "off",
    placeholder: "https://example.com/webhooks/flexprice", required: true,
    "aria-describedby": "endpoint-url-help endpoint-url-error",
  });
  url.value = existing?.url ?? "";
  const urlError = fieldError("endpoint-url-error");
  const description = h("input", { id: "endpoint-description", name: "description", type: "text", maxlength: 1024 });
  description.value = existing?.description ?? "";
  const descriptionError = fieldError("endpoint-description-error");

  const method = existing?.signature_method ?? "hmac";
  const methodInputs = Object.entries(METHODS).map(([value, info]) => {
    const id = `method-${value}`;
    const input = h("input", { type: "radio", name: "signature_method", id, value, checked: value === method,
      "aria-describedby": `${id}-help` });
    return h("div", { class: "choice" }, input,
      h("label", { for: id }, info.label),
      h("p", { id: `${id}-help`, class: "help" }, info.help));
  });
  const methodError = fieldError("method-error");

  const allEvents = existing ? existing.event_types === null : true;
  const allRadio = h("input", { type: "radio", name: "events-mode", id: "events-all", value: "all", checked: allEvents,
    "aria-describedby": "events-all-help" });
  const someRadio = h("input", { type: "radio", name: "events-mode", id: "events-some", value: "some",
    checked: !allEvents });
  const picker = eventPicker(types, new Set(existing?.event_types ?? []));
  const showPicker = () => { picker.element.hidden = !someRadio.checked; };
  allRadio.addEventListener("change", showPicker);
  someRadio.addEventListener("change", showPicker);
  showPicker();
  const eventsError = fieldError("events-error");
  const order = orderedFields(existing);

  // The endpoint's own delivery settings.
  const rate = h("input", { id: "endpoint-rate", name: "rate_limit_per_second", type: "number", min: "0.1",
    step: "any", inputmode: "decimal", "aria-describedby": "endpoint-rate-help endpoint-rate-error" });
  rate.value = existing?.rate_limit_per_second ?? "";
  const rateError = fieldError("endpoint-rate-error");
  const schedule = h("input", { id: "endpoint-schedule", name: "retry_schedule", type: "text", autocomplete: "off",
    placeholder: "5, 300, 1800, 7200", "aria-describedby": "endpoint-schedule-help endpoint-schedule-error" });
  schedule.value = existing?.retry_schedule ? existing.retry_schedule.join(", ") : "";
  const scheduleError = fieldError("endpoint-schedule-error");
  const headers = h("textarea", { id: "endpoint-headers", name: "headers", rows: 3, spellcheck: "false",
    placeholder: "Authorization: Bearer …", "aria-describedby": "endpoint-headers-help endpoint-headers-error" });
  const headersError = fieldError("endpoint-headers-error");
  const headersSecret = h("input", { id: "endpoint-headers-secret", type: "checkbox",
    "aria-describedby": "endpoint-headers-secret-help" });
  const current = existing ? Object.entries(existing.headers ?? {}) : [];
  const secretNow = new Set(existing?.secret_headers ?? []);
  // The current headers marked to go when the form is saved (PATCH sends each as null).
  /** @type {Set<string>} */
  const removing = new Set();
  /** @type {HTMLButtonElement[]} */
  const removeButtons = [];
  /** @param {string} name @param {HTMLElement} item @param {HTMLButtonElement} button @param {boolean} gone */
  const mark = (name, item, button, gone) => {
    if (gone) removing.add(name);
    else removing.delete(name);
    item.classList.toggle("removed", gone);
    const code = /** @type {HTMLElement} */ (item.querySelector("code"));
    fill(/** @type {HTMLElement} */ (item.querySelector(".header-text")),
      gone ? h("del", {}, code) : code);
    button.textContent = gone ? "Keep" : "Remove";
    button.setAttribute("aria-pressed", String(gone));
    removeAll.hidden = removing.size === current.length;
  };
  const items = current.map(([name, value]) => {
    const button = /** @type {HTMLButtonElement} */ (h("button", { type: "button",
      class: "button button-small", "aria-label": `Remove header ${name}`, "aria-pressed": "false" }, "Remove"));
    const item = h("li", { "data-header": name },
      h("span", { class: "header-text" }, h("code", {}, `${name}: ${value}`)),
      secretNow.has(name) ? h("span", { class: "muted small" }, " (secret) ") : " ",
      button);
    button.addEventListener("click", () => mark(name, item, button, !removing.has(name)));
    removeButtons.push(button);
    return item;
  });
  const removeAll = h("button", { type: "button", class: "button button-small button-danger",
    hidden: !current.length }, "Remove all headers");
  removeAll.addEventListener("click", () => {
    items.forEach((item, i) => mark(current[i][0], item, removeButtons[i], true));
  });
  const settings = h("details", { class: "field advanced", open: Boolean(existing?.rate_limit_per_second ||
      existing?.retry_schedule || current.length) },
    h("summary", {}, "Delivery settings ", h("span", { class: "muted" }, "(optional)")),
    h("div", { class: "field" },
      h("label", { for: "endpoint-rate" }, "Rate limit (deliveries per second)"), rate,
      h("p", { id: "endpoint-rate-help", class: "help" }, "At most this many deliveries a second to this " +
        "endpoint, across every worker (plus one of burst). Empty: the service's maximum."), rateError),
    h("div", { class: "field" },
      h("label", { for: "endpoint-schedule" }, "Retry schedule (seconds between attempts)"), schedule,
      h("p", { id: "endpoint-schedule-help", class: "help" }, "This endpoint's own schedule, for deliveries " +
        "of events accepted from now on. Empty: the service's schedule."), scheduleError),
    h("div", { class: "field" },
      current.length ? h("p", { id: "headers-now-title" }, h("strong", {}, "Current custom headers")) : null,
      current.length ? h("ul", { class: "tags headers-now", "aria-labelledby": "headers-now-title" }, items)
        : null,
      current.length ? h("p", {}, removeAll) : null,
      h("label", { for: "endpoint-headers" }, editing ? "Add or change custom headers" : "Custom headers"),
      headers,
      h("p", { id: "endpoint-headers-help", class: "help" }, "One \"Name: value\" per line, sent with every " +
        "attempt (e.g. for a gateway in front of your receiver)." +
        (editing ? " A name already there replaces that header; the others stay unless you remove them." : "")),
      h("div", { class: "choice" }, headersSecret,
        h("label", { for: "endpoint-headers-secret" }, "Secret: show these values masked")),
      h("p", { id: "endpoint-headers-secret-help", class: "help" }, "Values of Authorization, Cookie and " +
        "headers ending in -Token, -Key or -Secret are always masked; others are shown unless marked secret."),
      headersError));

  const formError = h("div", {});
  const submit = h("button", { type: "submit", class: "button button-primary" }, editing ? "Save changes" : "Add webhook");
  const cancelHref = editing ? endpointHref(endpointId ?? "") : "#/webhooks";

  const form = h("form", { class: "card form", novalidate: true, "aria-labelledby": "form-title" },
    formError,
    h("div", { class: "field" },
      h("label", { for: "endpoint-url" }, "Endpoint URL"),
      url,
      h("p", { id: "endpoint-url-help", class: "help" }, "Where each event is POSTed: an http or https URL."),
      urlError),
    h("div", { class: "field" },
      h("label", { for: "endpoint-description" }, "Description ", h("span", { class: "muted" }, "(optional)")),
      description, descriptionError),
    h("fieldset", { class: "field", "aria-describedby": "method-error" },
      h("legend", {}, "Signature method"), methodInputs, methodError),
    h("fieldset", { class: "field", "aria-describedby": "events-error" },
      h("legend", {}, "Events to send"),
      h("div", { class: "choice" }, allRadio, h("label", { for: "events-all" }, "All events, including types added later"),
        h("p", { id: "events-all-help", class: "help" }, operationalNote(types))),
      h("div", { class: "choice" }, someRadio, h("label", { for: "events-some" }, "Selected events")),
      eventsError, picker.element),
    order.element,
    settings,
    h("div", { class: "actions" }, submit, h("a", { class: "button", href: cancelHref }, "Cancel")));

  /** @type {Record<string, [HTMLElement, HTMLElement | null]>} each field's error line and input */
  const targets = {
    url: [urlError, url], description: [descriptionError, description], signature_method: [methodError, null],
    event_types: [eventsError, null], rate_limit_per_second: [rateError, rate],
    retry_schedule: [scheduleError, schedule], headers: [headersError, headers],
    ordered: [order.error, null], ordered_on_failure: [order.error, null],
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const [el, input] of Object.values(targets)) setError(el, input, null);
    fill(formError);
    const selected = picker.selected();
    if (someRadio.checked && !selected.length) {
      setError(eventsError, null, "Pick at least one event type, or choose All events.");
      eventsError.scrollIntoView({ block: "center" });
      return;
    }
    /** @type {Record<string, any>} */
    const body = {
      url: url.value.trim(),
      description: description.value,
      signature_method: /** @type {HTMLInputElement} */ (form.querySelector('input[name="signature_method"]:checked')).value,
      event_types: someRadio.checked ? selected : null,
      rate_limit_per_second: rate.value.trim() ? Number(rate.value) : null,
      ...order.values(),
    };
    try {
      body.retry_schedule = schedule.value.trim() ? parseSchedule(schedule.value) : null;
    } catch (err) {
      setError(scheduleError, schedule, messageOf(err));
      schedule.focus();
      return;
    }
    try {
      /** @type {Record<string, string | {value: string, secret: boolean} | null>} */
      const given = {};
      for (const name of removing) given[name] = null;
      for (const [name, value] of Object.entries(parseHeaders(headers.value))) {
        given[name] = headersSecret.checked ? { value, secret: true } : value;
      }
      // Editing: only what changes (PATCH merges headers one by one); a new endpoint: all or none.
      if (Object.keys(given).length) body.headers = given;
      else if (!editing) body.headers = null;
    } catch (err) {
      setError(headersError, headers, messageOf(err));
      headers.focus();
      return;
    }
    submit.disabled = true;
    try {
      if (editing) {
        await api.updateEndpoint(endpointId ?? "", body);
        flash("Changes saved.");
        navigate(endpointHref(endpointId ?? ""));
      } else {
        const created = await api.createEndpoint(body);
        if (!page.alive) return;
        // Its page, in place of the form: a reload or Back never shows an empty "new" form for it.
        handOver(created);
        location.replace(endpointHref(created.id));
      }
    } catch (err) {
      if (!page.alive) return;
      submit.disabled = false;
      if (err instanceof ApiError && err.status === 422) {
        const errors = err.fieldErrors();
        const rest = [];
        for (const [field, message] of Object.entries(errors)) {
          const target = /** @type {Record<string, any[]>} */ (targets)[field];
          if (target) setError(target[0], target[1], message);
          else rest.push(message);
        }
        if (errors.rate_limit_per_second || errors.retry_schedule || errors.headers) settings.open = true;
        if (rest.length) fill(formError, notice("error", rest.join("; ")));
        if (errors.url) url.focus();
        else form.querySelector("[aria-invalid], .field-error:not([hidden])")?.scrollIntoView({ block: "center" });
      } else if (err instanceof ApiError && err.status === 401) {
        page.fail(err);
      } else {
        fill(formError, notice("error", messageOf(err)));
        formError.scrollIntoView({ block: "center" });
      }
    }
  });

  append(main, 
    h("p", { class: "back" }, h("a", { href: cancelHref }, editing ? "← Back to the endpoint" : "← Webhooks")),
    h("h1", { id: "form-title" }, title),
    form);
  focusHeading();
}
