// @ts-check
// The search box: an event id, a delivery id (the webhook-id header a receiver got) or an endpoint id
// opens what it names; anything else is said plainly.

import { api } from "./api.js";
import { h } from "./dom.js";
import { Page, deliveryHref, endpointHref, eventHref, focusHeading, isNotFound, main } from "./nav.js";

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
  const found = id ? await resolve(id) : null;
  if (!page.alive) return;
  if (found) {
    location.replace(found); // Back leaves the result for where the search was made
    return;
  }
  main.replaceChildren(
    h("p", { class: "back" }, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("h1", {}, "Nothing found"),
    h("div", { class: "card" },
      h("p", {}, "No event, delivery or endpoint of this account has the id ",
        h("code", { class: "truncate inline-code", title: id }, id), "."),
      h("p", { class: "muted" }, "Search by an event id (the id given when it was emitted), a delivery id " +
        "({event id}:{endpoint id}, the webhook-id header your receiver got) or an endpoint id (ep_…). " +
        "Logs are kept for a limited time.")));
  focusHeading();
}
