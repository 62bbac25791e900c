// @ts-check
// An ordered endpoint's lanes (issue 21): look one up by its ordering key (or the default lane, for events
// without one) and see where it stands: its head, the last webhook-sequence handed out, how many events
// wait behind the head, and whether it is blocked. A blocked lane's head can be retried (the delivery's
// manual retry) or skipped (`POST …/lane/skip` naming it, after a confirmation); the lane is followed
// while it has a head, so that the page shows it moving on. The lane looked up is kept in the history
// entry, so that Back from its head's delivery shows it again.

import { ApiError, api, call, messageOf } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { badge, fill, h, liveRelative, notice, time } from "./dom.js";
import { Page, canManage, deliveryHref, saveViewState, viewState } from "./nav.js";

const REFRESH_MS = 2000;

/** @param {string} endpointId */
const lanePath = (endpointId) => `/v1/webhooks/endpoints/${encodeURIComponent(endpointId)}/lane`;

/**
 * @typedef {{endpoint_id: string, ordering_key: string | null, sequence: number, head_delivery_id: string | null,
 *   head_sequence: number | null, blocked: boolean, blocked_since: string | null, queued: number,
 *   full?: boolean}} Lane  `full`: from an API with the lane cap setting (WEBHOOKS_LANE_MAX_QUEUED)
 */

/**
 * @param {string} endpointId
 * @param {string | null} key null: the default lane
 * @returns {Promise<Lane>}
 */
export function getLane(endpointId, key) {
  const query = key === null ? "" : `?${new URLSearchParams({ ordering_key: key })}`;
  return call(`${lanePath(endpointId)}${query}`);
}

/**
 * @param {string} endpointId
 * @param {string | null} key
 * @param {string} deliveryId the blocked head: named, so that a skip never passes the event after it
 * @returns {Promise<Lane>}
 */
export function skipHead(endpointId, key, deliveryId) {
  return call(`${lanePath(endpointId)}/skip`, { method: "POST",
    body: { ordering_key: key, delivery_id: deliveryId } });
}

/** @param {string | null} key */
const laneName = (key) => (key === null ? "the default lane (events without an ordering key)" : `the lane of ${key}`);

/**
 * The endpoint page's "Ordered lanes" section; nothing for an unordered endpoint.
 * @param {Page} page
 * @param {{id: string, ordered: boolean, ordered_on_failure: string}} endpoint
 */
export function laneSection(page, endpoint) {
  if (!endpoint.ordered) return null;
  const manage = canManage();
  const keyInput = h("input", { id: "lane-key", name: "ordering_key", type: "text", autocomplete: "off",
    spellcheck: "false", maxlength: 128, placeholder: "cus_8a3f", "aria-describedby": "lane-key-help" });
  const view = h("div", { id: "lane-view", "aria-live": "polite" });
  const status = h("div", { id: "lane-action", role: "status", "aria-live": "polite" });
  const dialogs = h("div", {});
  const form = h("form", { class: "filters lane-form", role: "search", "aria-label": "Find a lane" },
    h("div", { class: "field" }, h("label", { for: "lane-key" }, "Ordering key"), keyInput,
      h("p", { id: "lane-key-help", class: "help" }, "Leave it empty for the default lane: events emitted " +
        "without an ordering_key.")),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "button" }, "Show lane")));

  // One chain follows the lane shown: a newer lookup or action takes the next turn, and an answer that
  // comes back after a newer turn began is dropped, so an old lane never draws over the one asked for.
  let turn = 0;
  /** @type {import("./nav.js").Later | undefined} */
  let next;
  let shown = "";

  /**
   * @param {string | null} wanted
   * @param {{head: string | null, reads: number}} [waiting] after an action on this head: read again, up
   *   to `reads` times, while the lane still shows it (the effect reaches the lane a moment after the API
   *   answered, and a retry's after its attempt)
   */
  async function load(wanted, waiting = { head: null, reads: 0 }) {
    const mine = ++turn;
    page.cancel(next);
    let lane;
    try {
      lane = await getLane(endpoint.id, wanted);
    } catch (err) {
      if (mine !== turn || !page.alive) return;
      if (err instanceof ApiError && err.status === 401) {
        page.fail(err);
        return;
      }
      shown = "";
      fill(view, notice("error", `Could not read ${laneName(wanted)}: ${messageOf(err)}`));
      return;
    }
    if (mine !== turn || !page.alive) return;
    // Drawn again only when it changed: a confirmation open over it stays open.
    const snapshot = JSON.stringify(lane);
    if (snapshot !== shown) render(lane);
    shown = snapshot;
    // While a head is in flight (or the next is about to start) the lane moves by itself; a blocked lane
    // waits for a person, an idle one for an event, and is read again when asked.
    const moving = lane.head_delivery_id ? !lane.blocked : lane.queued > 0;
    const stillWaiting = waiting.reads > 0 && lane.head_delivery_id === waiting.head;
    if (moving || stillWaiting) {
      next = page.later(() => load(wanted, { head: waiting.head, reads: stillWaiting ? waiting.reads - 1 : 0 }),
        REFRESH_MS);
    }
  }

  /** @param {Lane} lane */
  function render(lane) {
    const state = lane.blocked
      ? h("span", {}, badge("Blocked", "bad"), " since ", time(lane.blocked_since),
        lane.blocked_since ? [" (", liveRelative(lane.blocked_since), ")"] : null)
      : lane.head_delivery_id ? badge("Moving: its head is being delivered", "wait")
        : badge(lane.sequence ? "Idle: every event of it was sent" : "Idle: no event yet", "ok");
    const head = lane.head_delivery_id
      ? h("span", {}, h("a", { href: deliveryHref(lane.head_delivery_id), class: "mono", id: "lane-head" },
        lane.head_delivery_id), ` (sequence ${lane.head_sequence})`)
      : h("span", { class: "muted", id: "lane-head" }, "None");
    const actions = lane.blocked && manage && lane.head_delivery_id ? blockedActions(lane) : null;
    fill(view, h("section", { class: "card lane", "data-blocked": String(lane.blocked), "aria-labelledby": "lane-title" },
      h("h3", { id: "lane-title" }, lane.ordering_key === null ? "Default lane"
        : ["Lane ", h("code", {}, lane.ordering_key)]),
      h("dl", { class: "facts" },
        h("div", {}, h("dt", {}, "State"), h("dd", { id: "lane-state" }, state)),
        h("div", { class: "wide" }, h("dt", {}, "Head"), h("dd", {}, head)),
        h("div", {}, h("dt", {}, "Last sequence"), h("dd", { id: "lane-sequence" }, String(lane.sequence))),
        h("div", {}, h("dt", {}, "Queued behind the head"), h("dd", { id: "lane-queued" }, String(lane.queued)))),
      lane.blocked ? h("p", { class: "small" }, "Its head failed every attempt, and this endpoint blocks on " +
        "failure: nothing behind it is sent until it is retried and succeeds, or is skipped. Other keys go on.") : null,
      lane.full ? notice("warning", h("p", { id: "lane-full" }, "This lane is full: new events of its key are " +
        "refused (HTTP 429) until it drains. Unblock it, or make the receiver faster.")) : null,
      lane.blocked && !manage ? h("p", { class: "muted small read-only-note" }, "This session is read-only: " +
        "it cannot retry or skip the head.") : null,
      actions));
  }

  /** @param {Lane} lane */
  function blockedActions(lane) {
    const headId = /** @type {string} */ (lane.head_delivery_id);
    const retry = h("button", { type: "button", class: "button button-primary", id: "lane-retry" }, "Retry");
    retry.addEventListener("click", async () => {
      retry.disabled = true;
      try {
        const accepted = await api.retry(headId);
        fill(status, notice("info", h("p", {}, `Attempt ${accepted.attempt} of `, h("a", { href: deliveryHref(headId) },
          "the head"), " is on its way; the lane goes on if it succeeds.")));
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return page.fail(err);
        retry.disabled = false;
        fill(status, notice("error", messageOf(err))); // refused (e.g. the head moved on): nothing to follow
        return;
      }
      retry.disabled = false;
      // Followed until the attempt's answer moves the lane on (for two minutes at most: a retry that
      // fails leaves the lane blocked on the same head).
      load(lane.ordering_key, { head: headId, reads: 60 });
    });
    const dialog = confirmDialog({
      title: "Skip this event?",
      body: [h("p", {}, "The head, sequence ", String(lane.head_sequence), " (", h("code", {}, headId), "), stays " +
        "failed and is never sent again, not even by a retry; the lane sends the next event of its key."),
      h("p", {}, "Your receiver sees the gap in webhook-sequence. To deliver the event later, emit it again " +
        "with a new id: it joins the end of the lane.")],
      confirm: "Skip event",
      danger: true,
      onConfirm: async () => {
        const moved = await skipHead(endpoint.id, lane.ordering_key, headId);
        fill(status, notice("success", h("p", {}, "Skipped sequence ", String(lane.head_sequence),
          ": the lane goes on.")));
        turn += 1; // a read on its way began before the skip: dropped
        shown = JSON.stringify(moved);
        render(moved);
        load(moved.ordering_key, { head: headId, reads: 5 });
      },
    });
    fill(dialogs, dialog);
    return h("div", { class: "actions", role: "group", "aria-label": "Blocked lane actions" }, retry,
      h("button", { type: "button", class: "button button-danger", id: "lane-skip", onclick: () => dialog.ask() },
        "Skip"));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = keyInput.value.trim() ? keyInput.value : null; // a key may hold spaces
    fill(status);
    show(key);
  });

  /** @param {string | null} key */
  function show(key) {
    // Kept in the history entry: Back from the head's delivery, or a reload, shows this lane again.
    saveViewState(/** @type {any} */ ({ lane: { key } }));
    shown = "";
    fill(view, h("p", { class: "muted" }, `Reading ${laneName(key)}…`));
    load(key);
  }

  const kept = /** @type {any} */ (viewState()).lane;
  if (kept && (kept.key === null || typeof kept.key === "string")) {
    keyInput.value = kept.key ?? "";
    show(kept.key);
  }

  return h("section", { class: "lanes", "aria-labelledby": "lanes-title" },
    h("div", { class: "section-header" }, h("h2", { id: "lanes-title" }, "Ordered lanes")),
    h("p", { class: "muted" }, "Each ordering key has its own lane: its events go one at a time, in order. " +
      "Look one up to see where it stands."),
    form, status, view, dialogs);
}
