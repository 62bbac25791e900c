// @ts-check
// The search box: an event id, a delivery id (the webhook-id header a receiver got) or an endpoint id
// opens what it names; any other id is looked up as a business object's (an invoice's `inv_0042`, a
// customer's `cus_7`, or the start of one ending in `*`), which lists the events about it; anything else
// is said plainly.

import { api, call } from "./api.js";
import { h, time } from "./dom.js";
import { Page, deliveryHref, endpointHref, eventHref, focusHeading, isNotFound, main } from "./nav.js";

// What the API indexes and searches (domain/search_attributes.py): an id, or its start and a `*`.
const BUSINESS_ID = /^[A-Za-z0-9_.:@/+=-]{1,128}\*?$/;
const SHOWN = 50;

/**
 * The events whose object or customer has this id (or starts so, with a trailing `*`): those found by
 * the object first, newest first, each once.
 * @param {string} id
 * @returns {Promise<{items: any[], more: boolean}>}
 */
async function byBusinessObject(id) {
  const q = encodeURIComponent(id);
  const [objects, customers] = await Promise.all([
    call(`/v1/events?object_id=${q}&limit=${SHOWN}`),
    call(`/v1/events?customer_id=${q}&limit=${SHOWN}`),
  ]);
  const seen = new Set();
  const items = [...objects.items, ...customers.items].filter((/** @type {any} */ e) => {
    if (seen.has(e.id)) return false;
    seen.add(e.id);
    return true;
  });
  return { items: items.slice(0, SHOWN), more: Boolean(objects.next_cursor || customers.next_cursor) ||
    items.length > SHOWN };
}

/**
 * @param {string} id
 * @param {{items: any[], more: boolean}} found
 */
function businessView(id, found) {
  const prefix = id.endsWith("*");
  const what = prefix ? `ids starting ${id.slice(0, -1)}` : id;
  const rows = found.items.map((/** @type {any} */ e) => h("tr", {},
    h("td", { "data-label": "Event" },
      h("a", { href: eventHref(e.id), class: "mono" }, e.webhook_type),
      h("div", { class: "muted small mono truncate", title: e.id }, e.id)),
    h("td", { "data-label": "Object", class: "mono" }, e.object_id ?? "—"),
    h("td", { "data-label": "Customer", class: "mono" }, e.customer_id ?? "—"),
    h("td", { "data-label": "Accepted" }, time(e.created_at))));
  main.replaceChildren(
    h("p", { class: "back" }, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("h1", {}, `Events of ${what}`),
    h("p", { class: "muted" }, "Events whose object (data.object.id) or customer has ",
      prefix ? "an id starting " : "the id ", h("code", { class: "inline-code" }, prefix ? id.slice(0, -1) : id),
      ". Open one for its deliveries to each endpoint."),
    h("div", { class: "table-wrap" }, h("table", { class: "responsive", id: "found-events" },
      h("caption", { class: "visually-hidden" }, `Events of ${what}`),
      h("thead", {}, h("tr", {}, ["Event", "Object", "Customer", "Accepted"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))),
    h("p", { class: "muted", hidden: !found.more }, `Showing the first ${SHOWN}: search a longer id or ` +
      "prefix to narrow it down."));
  focusHeading();
}

/**
 * Where an id leads, asking the API in the order the id's shape suggests.
 * @param {string} id
 * @returns {Promise<string | null>}
 */
async function resolve(id) {
  /** @type {[(id: string) => Promise<unknown>, (id: string) => string][]} */
  const delivery = [[api.delivery, deliveryHref]];
  const event = [[api.event, eventHref]];
  const endpoint = [[api.endpoint, endpointHref]];
  const order = id.includes(":") ? [...delivery, ...event]
    : id.startsWith("ep_") ? [...endpoint, ...event] : [...event, ...endpoint];
  for (const [read, href] of order) {
    try {
      await read(id);
      return href(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return null;
}

/**
 * @param {HTMLElement} _main
 * @param {Page} page
 * @param {string} query
 */
export async function findView(_main, page, query) {
  const id = query.trim();
  main.append(h("p", { class: "muted", role: "status" }, `Looking for ${id}…`));
  let found = null;
  /** @type {{items: any[], more: boolean} | null} */
  let objects = null;
  try {
    // No id of ours ends in `*`: that is the start of a business object's id.
    found = id && !id.endsWith("*") ? await resolve(id) : null;
    if (!found && BUSINESS_ID.test(id)) objects = await byBusinessObject(id);
  } catch (err) {
    page.fail(err);
    return;
  }
  if (!page.alive) return;
  if (found) {
    location.replace(found); // Back leaves the result for where the search was made
    return;
  }
  if (objects && objects.items.length) {
    businessView(id, objects);
    return;
  }
  main.replaceChildren(
    h("p", { class: "back" }, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("h1", {}, "Nothing found"),
    h("div", { class: "card" },
      h("p", {}, "No event, delivery, endpoint, object or customer of this account has the id ",
        h("code", { class: "truncate inline-code", title: id }, id), "."),
      id.includes("*") && !BUSINESS_ID.test(id)
        ? h("p", {}, "A * may only end a search, for ids that start with what comes before it (inv_00*).")
        : null,
      h("p", { class: "muted" }, "Search by an event id (the id given when it was emitted), a delivery id " +
        "({event id}:{endpoint id}, the webhook-id header your receiver got), an endpoint id (ep_…), or the " +
        "id of the object or customer an event is about (inv_0042, cus_7; end it with * for every id " +
        "starting so). Logs are kept for a limited time.")));
  focusHeading();
}
