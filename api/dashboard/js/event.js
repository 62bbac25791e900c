// @ts-check
// One event across every endpoint it was sent to: its payload, and each endpoint's delivery of it.

import { api } from "./api.js";
import { append, copyButton, formatTime, h, long, relative, time } from "./dom.js";
import { Page, deliveryHref, endpointHref, focusHeading, foundOrNotFound } from "./nav.js";
import { deliveryBadge } from "./words.js";

/**
 * @param {HTMLElement} main
 * @param {Page} page
 * @param {string} eventId
 */
export async function eventDetail(main, page, eventId) {
  const loaded = await foundOrNotFound(Promise.all([
    api.event(eventId),
    api.endpoints().then((r) => new Map(r.items.map((/** @type {any} */ e) => [e.id, e]))),
  ]), "event", eventId, "An event id is the id given when the event was emitted (or evt_… made for it). Events " +
    "are kept as long as the logs are.");
  if (!loaded || !page.alive) return;
  const [event, endpoints] = loaded;
  const rows = event.deliveries.map((/** @type {any} */ d) => {
    const endpoint = endpoints.get(d.endpoint_id);
    return h("tr", { "data-delivery-id": d.id },
      h("td", { "data-label": "Endpoint" }, endpoint
        ? long("a", endpoint.url, { href: endpointHref(endpoint.id), class: "url" })
        : [h("span", { class: "muted" }, "deleted endpoint "), h("code", {}, d.endpoint_id)]),
      h("td", { "data-label": "Status" }, deliveryBadge(d)),
      h("td", { "data-label": "Attempts" }, String(d.attempt_count)),
      h("td", { "data-label": "Response" }, d.last_status_code === null ? h("span", { class: "muted" }, "—")
        : String(d.last_status_code)),
      h("td", { "data-label": "Last activity", title: formatTime(d.updated_at) }, relative(d.updated_at)),
      h("td", { "data-label": "Delivery" }, h("a", { href: deliveryHref(d.id),
        "aria-label": `Open the delivery to ${endpoint?.url ?? d.endpoint_id}` }, "Open")));
  });
  append(main, 
    h("p", { class: "back" }, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("div", { class: "page-header" }, h("div", { class: "grow" },
      h("h1", {}, event.webhook_type),
      h("p", { class: "muted small inline" }, "Event ", long("span", event.id, { class: "mono" }),
        copyButton(() => event.id, "Copy", "Copy event id")))),
    h("dl", { class: "facts card" },
      h("div", {}, h("dt", {}, "Object type"), h("dd", {}, event.object_type)),
      h("div", {}, h("dt", {}, "Accepted"), h("dd", {}, time(event.created_at, { relative: true }))),
      h("div", {}, h("dt", {}, "Sent to"), h("dd", {}, `${event.deliveries.length} endpoint` +
        `${event.deliveries.length === 1 ? "" : "s"}`))),
    h("section", { "aria-labelledby": "event-deliveries-title" },
      h("div", { class: "section-header" }, h("h2", { id: "event-deliveries-title" }, "Deliveries")),
      rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "responsive" },
        h("caption", { class: "visually-hidden" }, "Each endpoint's delivery of this event"),
        h("thead", {}, h("tr", {}, ["Endpoint", "Status", "Attempts", "Response", "Last activity", "Delivery"]
          .map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows)))
        : h("p", { class: "card empty muted" }, "No endpoint subscribed to this event when it was accepted " +
          "(a replay to an endpoint is listed in that endpoint's history).")),
    h("section", { "aria-labelledby": "event-payload-title" },
      h("div", { class: "section-header" }, h("h2", { id: "event-payload-title" }, "Payload")),
      h("pre", { class: "code", tabindex: "0", "aria-label": "Payload JSON", id: "payload" },
        JSON.stringify(event.payload, null, 2))));
  focusHeading();
}
