// @ts-check
// Developers › Webhooks: the list of endpoints, each with its health and its last day's deliveries.

import { ApiError, api, messageOf } from "./api.js";
import { fill, h, long, notice } from "./dom.js";
import { Page, canManage, endpointHref, focusHeading, readOnlyNote } from "./nav.js";
import { disabledWords, healthBadge, lastFailure } from "./words.js";

const STATS_REFRESH_MS = 10000;

/** @param {{event_types: string[] | null}} endpoint */
export function eventsSummary(endpoint) {
  if (endpoint.event_types === null) return "All events";
  const n = endpoint.event_types.length;
  return n === 1 ? endpoint.event_types[0] : `${n} event types`;
}

/** @param {any} endpoint */
function healthCell(endpoint) {
  const { health, disabled } = endpoint;
  let detail = null;
  if (!endpoint.enabled && disabled) detail = disabledWords(disabled);
  else if (health.state === "failing") detail = lastFailure(health);
  return h("td", { "data-label": "Health", class: "health-cell" }, healthBadge(endpoint),
    detail ? h("div", { class: "muted small clamp", title: detail }, detail) : null);
}

/**
 * @param {HTMLElement} main
 * @param {Page} page
 */
export async function endpointList(main, page) {
  const add = canManage() ? h("a", { class: "button button-primary", href: "#/webhooks/new" }, "Add a webhook") : null;
  const header = h(
    "div",
    { class: "page-header" },
    h("div", {}, h("h1", {}, "Webhooks"),
      h("p", { class: "muted" }, "Each of these endpoints gets an HTTP POST for every event it " +
        "subscribes to, retried until it answers 2xx."), readOnlyNote()),
    add,
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
      h("p", { class: "muted" }, canManage() ? "Add one to start receiving events at your URL."
        : "None has been added to this account."),
      canManage() ? h("a", { class: "button button-primary", href: "#/webhooks/new" }, "Add a webhook") : null));
    return;
  }
  const statsNotice = h("div", {});
  /** @type {{endpoint: any, stats: HTMLElement, row: HTMLElement}[]} */
  const rows = endpoints.map((/** @type {any} */ endpoint) => {
    const stats = h("td", { "data-label": "Last 24 h", class: "stats" }, h("span", { class: "muted" }, "…"));
    return {
      endpoint,
      stats,
      row: h("tr", { "data-endpoint-id": endpoint.id },
        h("td", { "data-label": "Endpoint", class: "endpoint-cell" },
          long("a", endpoint.url, { href: endpointHref(endpoint.id), class: "url" }),
          endpoint.description ? long("div", endpoint.description, { class: "muted small" }) : null),
        h("td", { "data-label": "Signature" }, endpoint.signature_method.toUpperCase()),
        h("td", { "data-label": "Events", title: (endpoint.event_types ?? ["all"]).join(", ") },
          eventsSummary(endpoint)),
        healthCell(endpoint),
        stats),
    };
  });
  fill(body, statsNotice, h("div", { class: "table-wrap" }, h("table", { class: "responsive endpoints" },
    h("caption", { class: "visually-hidden" }, "Your webhook endpoints"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Endpoint"), h("th", { scope: "col" }, "Signature"),
      h("th", { scope: "col" }, "Events"), h("th", { scope: "col" }, "Health"),
      h("th", { scope: "col" }, "Last 24 h"))),
    h("tbody", {}, rows.map((r) => r.row)))));
  // Counts come from Temporal visibility, which settles a moment after a delivery changes: keep them fresh.
  const loadStats = async () => {
    /** @type {unknown} */
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
    fill(statsNotice, failure ? notice("error", messageOf(failure)) : null);
    page.later(loadStats, STATS_REFRESH_MS);
  };
  await loadStats();
}
