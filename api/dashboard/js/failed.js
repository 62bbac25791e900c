// @ts-check
// Failed deliveries across every endpoint: each retryable in place, and all of those shown at once.

import { api, eventTypes } from "./api.js";
import { append, h } from "./dom.js";
import { deliveryHistory } from "./history.js";
import { Page, canManage, focusHeading, readOnlyNote } from "./nav.js";

/**
 * @param {HTMLElement} main
 * @param {Page} page
 */
export async function failedDeliveries(main, page) {
  append(main, 
    h("h1", {}, "Failed deliveries"),
    h("p", { class: "muted" }, "Deliveries whose every scheduled attempt failed, across all your endpoints." +
      (canManage() ? " Fix the receiver, then retry: each retry makes one attempt now." : "")),
    readOnlyNote());
  focusHeading();
  const body = h("div", {}, h("p", { class: "muted", role: "status" }, "Loading failed deliveries…"));
  append(main, body);
  let types;
  let endpoints;
  try {
    [types, endpoints] = await Promise.all([
      eventTypes(),
      api.endpoints().then((r) => new Map(r.items.map((/** @type {any} */ e) => [e.id, e]))),
    ]);
  } catch (err) {
    page.fail(err, body);
    return;
  }
  if (!page.alive) return;
  await deliveryHistory(body, page, {
    fixedStatus: "failed",
    types,
    endpoints,
    retry: true,
    refresh: false, // rows being retried keep their place and their answers
    caption: "Failed deliveries",
    empty: "No failed deliveries: every delivery succeeded or is still being retried.",
  });
}
