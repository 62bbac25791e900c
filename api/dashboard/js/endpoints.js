// Developers › Webhooks: the endpoint list, "Add a webhook" (and edit), and one endpoint's event history.

import { ApiError, api, eventTypes, groupsOf, session } from "./api.js";
import { flash, focusHeading, navigate } from "./app.js";
import { badge, copyButton, fill, h, notice, relative, statusBadge, time, uid } from "./dom.js";

const METHODS = {
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

// Each tenant has its own keys: a receiver that fetched another tenant's JWKS could never verify ours.
const jwksUrl = () => `${location.origin}/v1/webhooks/jwks/${encodeURIComponent(session.tenant)}.json`;
const endpointHref = (id) => `#/webhooks/${encodeURIComponent(id)}`;
export const deliveryHref = (id) => `#/deliveries/${encodeURIComponent(id)}`;

function eventsSummary(endpoint) {
  if (endpoint.event_types === null) return "All events";
  const n = endpoint.event_types.length;
  return n === 1 ? endpoint.event_types[0] : `${n} events`;
}

const STATS_REFRESH_MS = 10000;

// ---- the list -----------------------------------------------------------------------------------

export async function endpointList(main, page) {
  const header = h(
    "div",
    { class: "page-header" },
    h("div", {}, h("h1", {}, "Webhooks"),
      h("p", { class: "muted" }, "Flexprice sends an HTTP POST to each of these endpoints for every event " +
        "it subscribes to, and retries until it answers 2xx.")),
    h("a", { class: "button button-primary", href: "#/webhooks/new" }, "Add a webhook"),
  );
  const body = h("div", {}, h("p", { class: "muted", role: "status" }, "Loading endpoints…"));
  main.append(header, body);
  focusHeading();
  let endpoints;
  try {
    endpoints = (await api.endpoints()).items;
  } catch (err) {
    page.fail(err, body);
    return;
  }
  if (!page.alive) return;
  if (!endpoints.length) {
    fill(body, h("div", { class: "card empty" },
      h("h2", {}, "No webhook endpoints yet"),
      h("p", { class: "muted" }, "Add one to start receiving events at your URL."),
      h("a", { class: "button button-primary", href: "#/webhooks/new" }, "Add a webhook")));
    return;
  }
  const statsNotice = h("div", {});
  const rows = endpoints.map((endpoint) => {
    const stats = h("td", { "data-label": "Last 24 h", class: "stats" }, h("span", { class: "muted" }, "…"));
    return {
      endpoint,
      stats,
      row: h("tr", {},
        h("td", { "data-label": "Endpoint", class: "endpoint-cell" },
          h("a", { href: endpointHref(endpoint.id), class: "url" }, endpoint.url),
          endpoint.description ? h("div", { class: "muted small" }, endpoint.description) : null),
        h("td", { "data-label": "Signature" }, endpoint.signature_method.toUpperCase()),
        h("td", { "data-label": "Events", title: (endpoint.event_types ?? ["all"]).join(", ") },
          eventsSummary(endpoint)),
        h("td", { "data-label": "Status" },
          endpoint.enabled ? badge("Enabled", "ok") : badge("Disabled", "neutral")),
        stats),
    };
  });
  fill(body, statsNotice, h("div", { class: "table-wrap" }, h("table", { class: "responsive" },
    h("caption", { class: "visually-hidden" }, "Your webhook endpoints"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Endpoint"), h("th", { scope: "col" }, "Signature"),
      h("th", { scope: "col" }, "Events"), h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col" }, "Last 24 h"))),
    h("tbody", {}, rows.map((r) => r.row)))));
  // Counts come from Temporal visibility, which settles a moment after a delivery changes: keep them fresh.
  const loadStats = async () => {
    let failure = null;
    await Promise.all(rows.map(async ({ endpoint, stats }) => {
      try {
        const s = await api.stats(endpoint.id);
        if (!page.alive) return;
        fill(stats,
          h("span", { class: "count count-ok" }, `${s.succeeded} succeeded`),
          h("span", { class: "count count-bad" }, `${s.failed} failed`),
          s.pending ? h("span", { class: "count count-wait" }, `${s.pending} pending`) : null);
      } catch (err) {
        if (!page.alive) return;
        fill(stats, h("span", { class: "muted" }, "unavailable"));
        failure ??= err;
      }
    }));
    if (!page.alive) return;
    if (failure instanceof ApiError && failure.status === 401) {
      page.fail(failure);
      return;
    }
    fill(statsNotice, failure ? notice("error", failure.message) : null);
    page.later(loadStats, STATS_REFRESH_MS);
  };
  await loadStats();
}

// ---- add and edit -------------------------------------------------------------------------------

function fieldError(id) {
  return h("p", { id, class: "field-error", hidden: true });
}

function setError(el, input, message) {
  el.textContent = message ?? "";
  el.hidden = !message;
  if (input) {
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

export async function endpointForm(main, page, endpointId) {
  const editing = endpointId !== undefined;
  const [types, existing] = await Promise.all([
    eventTypes(),
    editing ? api.endpoint(endpointId) : Promise.resolve(null),
  ]);
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
  const chosen = new Set(existing?.event_types ?? []);
  const allRadio = h("input", { type: "radio", name: "events-mode", id: "events-all", value: "all", checked: allEvents });
  const someRadio = h("input", { type: "radio", name: "events-mode", id: "events-some", value: "some",
    checked: !allEvents });
  const groupsBox = h("div", { class: "event-groups", id: "event-groups" });
  for (const [group, items] of groupsOf(types)) {
    const groupId = uid("group");
    const boxes = items.map((t) => h("input", { type: "checkbox", name: "event_types", value: t.name,
      id: `event-${t.name}`, checked: chosen.has(t.name), "aria-describedby": `event-${t.name}-help` }));
    const whole = h("input", { type: "checkbox", id: groupId });
    const sync = () => {
      const n = boxes.filter((b) => b.checked).length;
      whole.checked = n === boxes.length;
      whole.indeterminate = n > 0 && n < boxes.length;
    };
    whole.addEventListener("change", () => { for (const b of boxes) b.checked = whole.checked; sync(); });
    for (const b of boxes) b.addEventListener("change", sync);
    sync();
    groupsBox.append(h("fieldset", { class: "event-group" },
      h("legend", {}, group),
      h("div", { class: "choice choice-group" }, whole, h("label", { for: groupId }, `All ${group.toLowerCase()}`)),
      items.map((t, i) => h("div", { class: "choice" }, boxes[i],
        h("label", { for: `event-${t.name}` }, h("code", {}, t.name)),
        h("p", { id: `event-${t.name}-help`, class: "help" }, t.description)))));
  }
  const showGroups = () => { groupsBox.hidden = !someRadio.checked; };
  allRadio.addEventListener("change", showGroups);
  someRadio.addEventListener("change", showGroups);
  showGroups();
  const eventsError = fieldError("events-error");
  const formError = h("div", {});
  const submit = h("button", { type: "submit", class: "button button-primary" }, editing ? "Save changes" : "Add webhook");
  const cancelHref = editing ? endpointHref(endpointId) : "#/webhooks";

  const form = h("form", { class: "card form", novalidate: true, "aria-labelledby": "form-title" },
    formError,
    h("div", { class: "field" },
      h("label", { for: "endpoint-url" }, "Endpoint URL"),
      url,
      h("p", { id: "endpoint-url-help", class: "help" }, "Where Flexprice POSTs each event: an http or https URL."),
      urlError),
    h("div", { class: "field" },
      h("label", { for: "endpoint-description" }, "Description ", h("span", { class: "muted" }, "(optional)")),
      description, descriptionError),
    h("fieldset", { class: "field", "aria-describedby": "method-error" },
      h("legend", {}, "Signature method"), methodInputs, methodError),
    h("fieldset", { class: "field", "aria-describedby": "events-error" },
      h("legend", {}, "Events to send"),
      h("div", { class: "choice" }, allRadio, h("label", { for: "events-all" }, "All events, including types added later")),
      h("div", { class: "choice" }, someRadio, h("label", { for: "events-some" }, "Selected events")),
      eventsError, groupsBox),
    h("div", { class: "actions" }, submit, h("a", { class: "button", href: cancelHref }, "Cancel")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const [el, input] of [[urlError, url], [descriptionError, description], [methodError], [eventsError]]) {
      setError(el, input, null);
    }
    fill(formError);
    const selected = [...form.querySelectorAll('input[name="event_types"]:checked')].map((b) => b.value);
    if (someRadio.checked && !selected.length) {
      setError(eventsError, null, "Pick at least one event type, or choose All events.");
      eventsError.scrollIntoView({ block: "center" });
      return;
    }
    const body = {
      url: url.value.trim(),
      description: description.value,
      signature_method: form.querySelector('input[name="signature_method"]:checked').value,
      event_types: someRadio.checked ? selected : null,
    };
    submit.disabled = true;
    try {
      if (editing) {
        await api.updateEndpoint(endpointId, body);
        flash("Changes saved.");
        navigate(endpointHref(endpointId));
      } else {
        const created = await api.createEndpoint(body);
        if (page.alive) showCreated(main, created);
      }
    } catch (err) {
      if (!page.alive) return;
      submit.disabled = false;
      if (err instanceof ApiError && err.status === 422) {
        const errors = err.fieldErrors();
        const targets = { url: [urlError, url], description: [descriptionError, description],
          signature_method: [methodError], event_types: [eventsError] };
        const rest = [];
        for (const [field, message] of Object.entries(errors)) {
          if (targets[field]) setError(targets[field][0], targets[field][1], message);
          else rest.push(message);
        }
        if (rest.length) fill(formError, notice("error", rest.join("; ")));
        if (errors.url) url.focus();
        else form.querySelector("[aria-invalid], .field-error:not([hidden])")?.scrollIntoView({ block: "center" });
      } else if (err instanceof ApiError && err.status === 401) {
        page.fail(err);
      } else {
        fill(formError, notice("error", err.message));
        formError.scrollIntoView({ block: "center" });
      }
    }
  });

  main.append(
    h("p", { class: "back" }, h("a", { href: cancelHref }, editing ? "← Back to the endpoint" : "← Webhooks")),
    h("h1", { id: "form-title" }, title),
    form);
  focusHeading();
}

function showCreated(main, endpoint) {
  const parts = [
    h("p", { class: "back" }, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("h1", {}, "Webhook added"),
    notice("success", h("p", {}, "Flexprice will now send ", eventsSummary(endpoint).toLowerCase() === "all events"
      ? "every event" : eventsSummary(endpoint), " to ", h("strong", { class: "url" }, endpoint.url), ".")),
  ];
  if (endpoint.secret) {
    const secret = h("input", { id: "new-secret", type: "text", readonly: true, class: "mono", value: endpoint.secret,
      "aria-describedby": "new-secret-help" });
    parts.push(h("section", { class: "card" },
      h("h2", {}, "Signing secret"),
      h("p", { id: "new-secret-help", class: "help" }, "Your receiver verifies each request's webhook-signature " +
        "with this secret. Copy it now and keep it safe; you can reveal it again from the endpoint's page."),
      h("label", { for: "new-secret" }, "Secret"),
      h("div", { class: "inline" }, secret, copyButton(() => endpoint.secret, "Copy secret"))));
  } else {
    parts.push(h("section", { class: "card" },
      h("h2", {}, "Verifying JWT signatures"),
      h("p", {}, "Each request carries an RS256 token in x-webhook-signature. Your receiver verifies it with your " +
        "public keys, published at:"),
      h("div", { class: "inline" }, h("code", { class: "mono", id: "jwks-url" }, jwksUrl()),
        copyButton(jwksUrl, "Copy URL")),
      h("p", {}, "and refuses any token whose aud claim is not this endpoint's id: a token made for another " +
        "endpoint must not pass at yours."),
      h("div", { class: "inline" }, h("code", { class: "mono", id: "jwt-audience" }, endpoint.id),
        copyButton(() => endpoint.id, "Copy endpoint id"))));
  }
  parts.push(h("div", { class: "actions" },
    h("a", { class: "button button-primary", href: endpointHref(endpoint.id) }, "Open endpoint"),
    h("a", { class: "button", href: "#/webhooks" }, "Back to webhooks")));
  fill(main, parts);
  focusHeading();
}

// ---- one endpoint -------------------------------------------------------------------------------

export async function endpointDetail(main, page, endpointId) {
  const [endpoint, types] = await Promise.all([api.endpoint(endpointId), eventTypes()]);
  if (!page.alive) return;
  const actionsStatus = h("div", { role: "status", "aria-live": "polite" });
  const secretBox = h("div", {});
  const toggle = h("button", { type: "button", class: "button" }, endpoint.enabled ? "Disable" : "Enable");
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    try {
      await api.updateEndpoint(endpointId, { enabled: !endpoint.enabled });
      flash(endpoint.enabled ? "Endpoint disabled: it receives no new events." : "Endpoint enabled.");
      navigate(endpointHref(endpointId));
    } catch (err) {
      toggle.disabled = false;
      fill(actionsStatus, notice("error", err.message));
    }
  });

  const reveal = endpoint.signature_method === "hmac"
    ? h("button", { type: "button", class: "button", "aria-expanded": "false", "aria-controls": "secret-box" },
      "Reveal secret")
    : null;
  secretBox.id = "secret-box";
  reveal?.addEventListener("click", async () => {
    if (reveal.getAttribute("aria-expanded") === "true") {
      fill(secretBox);
      reveal.textContent = "Reveal secret";
      reveal.setAttribute("aria-expanded", "false");
      return;
    }
    try {
      const { secret } = await api.secret(endpointId);
      fill(secretBox, h("div", { class: "card secret" },
        h("label", { for: "endpoint-secret" }, "Signing secret"),
        h("div", { class: "inline" },
          h("input", { id: "endpoint-secret", type: "text", readonly: true, class: "mono", value: secret }),
          copyButton(() => secret, "Copy secret"))));
      reveal.textContent = "Hide secret";
      reveal.setAttribute("aria-expanded", "true");
    } catch (err) {
      fill(secretBox, notice("error", err.message));
    }
  });

  const dialog = deleteDialog(endpoint, async () => {
    await api.deleteEndpoint(endpointId);
    flash(`Endpoint ${endpoint.url} deleted.`);
    navigate("#/webhooks");
  });
  const remove = h("button", { type: "button", class: "button button-danger", onclick: () => dialog.showModal() },
    "Delete");

  main.append(
    h("p", { class: "back" }, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("div", { class: "page-header" },
      h("div", { class: "grow" },
        h("h1", { class: "url" }, endpoint.url),
        endpoint.description ? h("p", { class: "muted" }, endpoint.description) : null),
      h("div", {}, endpoint.enabled ? badge("Enabled", "ok") : badge("Disabled", "neutral"))),
    h("dl", { class: "facts card" },
      h("div", {}, h("dt", {}, "Signature"), h("dd", {}, METHODS[endpoint.signature_method]?.label ?? endpoint.signature_method)),
      h("div", {}, h("dt", {}, "Endpoint id"), h("dd", {}, h("code", {}, endpoint.id))),
      h("div", {}, h("dt", {}, "Created"), h("dd", {}, time(endpoint.created_at))),
      endpoint.signature_method === "jwt"
        ? h("div", {}, h("dt", {}, "Public keys"), h("dd", {}, h("code", {}, jwksUrl()))) : null,
      endpoint.signature_method === "jwt"
        ? h("div", {}, h("dt", {}, "Token audience (aud)"), h("dd", {}, h("code", {}, endpoint.id))) : null,
      h("div", { class: "wide" }, h("dt", {}, "Events"), h("dd", {}, endpoint.event_types === null ? "All events"
        : h("ul", { class: "tags" }, endpoint.event_types.map((t) => h("li", {}, h("code", {}, t))))))),
    h("div", { class: "actions", role: "group", "aria-label": "Endpoint actions" },
      toggle,
      h("a", { class: "button", href: `${endpointHref(endpointId)}/edit` }, "Edit"),
      reveal, remove),
    actionsStatus, secretBox, dialog);
  focusHeading();
  history(main, page, { endpointId, types });
}

function deleteDialog(endpoint, onConfirm) {
  const error = h("div", {});
  const confirm = h("button", { type: "button", class: "button button-danger" }, "Delete endpoint");
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": "delete-title" },
    h("h2", { id: "delete-title" }, "Delete this endpoint?"),
    h("p", {}, "Flexprice stops sending events to ", h("strong", { class: "url" }, endpoint.url),
      ". Deliveries still scheduled stop at their next attempt. This cannot be undone."),
    error,
    h("div", { class: "actions" }, confirm,
      h("button", { type: "button", class: "button", onclick: () => dialog.close() }, "Cancel")));
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    try {
      await onConfirm();
      dialog.close();
    } catch (err) {
      confirm.disabled = false;
      fill(error, notice("error", err.message));
    }
  });
  return dialog;
}

// ---- event history ------------------------------------------------------------------------------

const IN_FLIGHT_REFRESH_MS = 2000;
const IDLE_REFRESH_MS = 5000;

function history(main, page, { endpointId, types }) {
  const status = h("select", { id: "filter-status", name: "status" },
    [["", "All"], ["succeeded", "Succeeded"], ["failed", "Failed"], ["pending", "Pending"]]
      .map(([value, text]) => h("option", { value }, text)));
  const type = h("select", { id: "filter-type", name: "event_type" },
    h("option", { value: "" }, "All event types"),
    [...groupsOf(types)].map(([group, items]) => h("optgroup", { label: group },
      items.map((t) => h("option", { value: t.name }, t.name)))));
  const refresh = h("button", { type: "submit", class: "button" }, "Refresh");
  const live = h("p", { class: "muted small live", role: "status", "aria-live": "polite" });
  const list = h("div", {}, h("p", { class: "muted" }, "Loading the event history…"));
  const more = h("div", {});
  const filters = h("form", { class: "filters", "aria-label": "Filter the event history" },
    h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), status),
    h("div", { class: "field" }, h("label", { for: "filter-type" }, "Event type"), type),
    refresh);
  main.append(h("section", { class: "history", "aria-labelledby": "history-title" },
    h("div", { class: "section-header" }, h("h2", { id: "history-title" }, "Event history"), live),
    filters, list, more));

  let shown = "";
  let extraPages = false;
  let generation = 0;

  async function load({ quiet = false } = {}) {
    const mine = ++generation;
    if (!quiet) live.textContent = "Loading…";
    let result;
    try {
      result = await api.deliveries({ endpointId, status: status.value, eventType: type.value });
    } catch (err) {
      if (mine !== generation || !page.alive) return;
      live.textContent = "";
      page.fail(err, list, () => load());
      shown = "";
      page.later(() => load({ quiet: true }), IDLE_REFRESH_MS * 2);
      return;
    }
    if (mine !== generation || !page.alive) return;
    const inFlight = result.items.some((d) => d.status === "pending");
    live.textContent = inFlight ? "Deliveries in flight: updating automatically." : `Updated ${new Date().toLocaleTimeString()}`;
    const snapshot = JSON.stringify(result);
    if (snapshot !== shown) {
      shown = snapshot;
      extraPages = false;
      fill(list, deliveriesTable(result.items, { empty: status.value || type.value
        ? "No events match these filters." : "No events sent to this endpoint yet. Events you emit appear here." }));
      fill(more, moreButton(result.next_cursor));
    }
    if (!extraPages) page.later(() => load({ quiet: true }), inFlight ? IN_FLIGHT_REFRESH_MS : IDLE_REFRESH_MS);
  }

  function moreButton(cursor) {
    if (!cursor) return null;
    const button = h("button", { type: "button", class: "button" }, "Load more");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const next = await api.deliveries({ endpointId, status: status.value, eventType: type.value, cursor });
        extraPages = true; // keep what the person scrolled to; Refresh starts over
        list.querySelector("tbody")?.append(...rowsOf(next.items));
        fill(more, moreButton(next.next_cursor));
      } catch (err) {
        button.disabled = false;
        fill(more, notice("error", err.message), button);
      }
    });
    return button;
  }

  filters.addEventListener("submit", (event) => { event.preventDefault(); shown = ""; load(); });
  status.addEventListener("change", () => { shown = ""; load(); });
  type.addEventListener("change", () => { shown = ""; load(); });
  load();
}

function rowsOf(items) {
  return items.map((d) => h("tr", { "data-delivery-id": d.id },
    h("td", { "data-label": "Event" },
      h("a", { href: deliveryHref(d.id) }, d.webhook_type),
      h("div", { class: "muted small mono" }, d.event_id)),
    h("td", { "data-label": "Status" }, statusBadge(d.status)),
    h("td", { "data-label": "Attempts" }, String(d.attempt_count)),
    h("td", { "data-label": "Response" }, d.last_status_code === null ? h("span", { class: "muted" }, "—")
      : String(d.last_status_code)),
    h("td", { "data-label": "Last activity", title: d.updated_at }, relative(d.updated_at))));
}

export function deliveriesTable(items, { empty }) {
  if (!items.length) return h("p", { class: "card empty muted" }, empty);
  return h("div", { class: "table-wrap" }, h("table", { class: "responsive" },
    h("caption", { class: "visually-hidden" }, "Events sent to this endpoint"),
    h("thead", {}, h("tr", {},
      ["Event", "Status", "Attempts", "Response", "Last activity"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rowsOf(items))));
}
