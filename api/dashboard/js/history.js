// @ts-check
// A list of deliveries with its filters: an endpoint's event history, and the failed deliveries across
// endpoints. Filters (status, event type, a window of time) are in the address; the pages loaded and the
// scroll are in the history entry (nav.js), so Back from a delivery finds the list as it was left.

import { ApiError, api, groupsOf, messageOf } from "./api.js";
import { fill, formatTime, h, localZone, long, notice, relative } from "./dom.js";
import {
  Page, canManage, currentAddress, deliveryHref, endpointHref, eventHref, saveViewState, setQuery, viewState,
} from "./nav.js";
import { deliveryBadge } from "./words.js";

const IN_FLIGHT_REFRESH_MS = 2000;
const IDLE_REFRESH_MS = 5000;
const PAGE_SIZE = 25;

const WATCH_MS = 120000; // how long a retry's answer is waited for on the page

/**
 * @typedef {object} RetryEnd how watching one retry ended
 * @property {number} attempt the attempt the retry asked for
 * @property {any} delivery the delivery with that attempt in its log; null if none came within WATCH_MS
 * @property {boolean} ok the receiver answered 2xx
 * @property {string} text "Attempt 5: HTTP 503.", or that no answer came yet
 */

/**
 * The last attempt of each delivery whose answer this tab has shown after a retry: a retry sent after it
 * says so (`after`), so that the API makes a new attempt rather than join that one (which it does for a
 * retry within seconds of an attempt's end, as retries sent together are).
 * @type {Map<string, number>}
 */
const answersShown = new Map();

/**
 * The `after` of a retry of `deliveryId`: the attempts a view shows, or more if a retry's answer was shown.
 * @param {string} deliveryId
 * @param {number} shown
 */
export function lastAnswerSeen(deliveryId, shown) {
  return Math.max(shown, answersShown.get(deliveryId) ?? 0);
}

/**
 * Ask for one attempt now, then poll until it is in the log. `report(text, kind)` tells the person as it
 * goes; `onEnd` is called once, whichever way it ends: with null if the retry was refused.
 * @param {Page} page
 * @param {string} deliveryId
 * @param {number} shown how many attempts the view showed when the person asked: none of them is joined
 * @param {(text: string, kind: "info" | "success" | "error") => void} report
 * @param {(end: RetryEnd | null) => void} onEnd
 */
export async function retryAndWatch(page, deliveryId, shown, report, onEnd) {
  let accepted;
  try {
    accepted = await api.retry(deliveryId, false, lastAnswerSeen(deliveryId, shown));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) page.fail(err);
    else report(messageOf(err), "error");
    onEnd(null);
    return;
  }
  const number = accepted.attempt;
  report(`Attempt ${number} requested; waiting for the receiver's answer…`, "info");
  const started = Date.now();
  const poll = async () => {
    try {
      const d = await api.delivery(deliveryId);
      const attempt = d.attempts.find((/** @type {any} */ a) => a.attempt === number);
      if (attempt) {
        answersShown.set(deliveryId, lastAnswerSeen(deliveryId, d.attempts.length));
        const outcome = attempt.status_code !== null ? `HTTP ${attempt.status_code}` : attempt.error ?? "no answer";
        const ok = attempt.status_code !== null && attempt.status_code >= 200 && attempt.status_code < 300;
        const text = `Attempt ${number}: ${outcome}.`;
        report(text, ok ? "success" : "error");
        onEnd({ attempt: number, delivery: d, ok, text });
        return;
      }
    } catch (err) {
      report(messageOf(err), "error");
    }
    if (Date.now() - started < WATCH_MS) {
      page.later(poll, 1000);
      return;
    }
    const text = `No answer to attempt ${number} yet: the delivery's log will show it when it comes.`;
    report(text, "info");
    onEnd({ attempt: number, delivery: null, ok: false, text });
  };
  page.later(poll, 500);
}

const CHART_BARS = 12;

/**
 * An endpoint's succeeded and failed deliveries over a window, in 12 bars (one count per bar and status,
 * by Temporal visibility): drawn when the window changes, not at each refresh of the list.
 * @param {HTMLElement} box
 * @param {string} endpointId
 * @param {string} after ISO, or "" for 24 hours ago
 * @param {string} before ISO, or "" for now
 * @returns {Promise<void>}
 */
async function drawChart(box, endpointId, after, before) {
  const end = before ? new Date(before).getTime() : Date.now();
  const start = after ? new Date(after).getTime() : end - 86400_000;
  if (!(end > start)) {
    fill(box);
    return;
  }
  // Its place, the chart's size, at once: drawn later above the list, the chart would move the list (and
  // the place a reload or Back has just scrolled back to) down by its height.
  fill(box, h("figure", { class: "chart", "aria-busy": "true" },
    h("figcaption", { class: "small muted" }, `Counting deliveries from ${utcTime(new Date(start).toISOString())} ` +
      `to ${utcTime(new Date(end).toISOString())}…`),
    h("div", { class: "chart-bars" })));
  const step = (end - start) / CHART_BARS;
  const bars = await Promise.all(Array.from({ length: CHART_BARS }, async (_, n) => {
    const from = new Date(start + n * step).toISOString();
    // Each bar's end is a millisecond before the next bar's start: no delivery is counted twice.
    const to = new Date(n === CHART_BARS - 1 ? end : start + (n + 1) * step - 1).toISOString();
    const s = await api.statsBetween(endpointId, from, to);
    return { from, to, succeeded: s.succeeded, failed: s.failed, pending: s.pending };
  }));
  const most = Math.max(1, ...bars.map((b) => b.succeeded + b.failed + b.pending));
  const total = (/** @type {"succeeded" | "failed" | "pending"} */ key) => bars.reduce((a, b) => a + b[key], 0);
  const said = `${total("succeeded")} succeeded, ${total("failed")} failed` +
    (total("pending") ? `, ${total("pending")} pending` : "");
  const part = (/** @type {number} */ n, /** @type {string} */ cls) => {
    if (!n) return null;
    const el = h("span", { class: cls });
    el.style.height = `${(100 * n) / most}%`; // set through the CSSOM: the page's CSP refuses style attributes
    return el;
  };
  fill(box, h("figure", { class: "chart", id: "history-chart" },
    h("figcaption", { class: "small muted" }, `Deliveries from ${utcTime(new Date(start).toISOString())} to ` +
      `${utcTime(new Date(end).toISOString())}: `, h("strong", { id: "chart-totals" }, said)),
    h("div", { class: "chart-bars", role: "img", "aria-label": `Succeeded and failed deliveries: ${said}` },
      bars.map((b) => h("span", { class: "chart-bar", title: `${utcTime(b.from)} to ${utcTime(b.to)}: ` +
        `${b.succeeded} succeeded, ${b.failed} failed${b.pending ? `, ${b.pending} pending` : ""}` },
      part(b.succeeded, "chart-ok"), part(b.failed, "chart-bad"), part(b.pending, "chart-wait"))))));
}

/**
 * The API's words for a filter, as the form names it: "created_after" is the From field.
 * @param {string} text
 */
function inWords(text) {
  return text.replace(/\bcreated_after\b/g, "From").replace(/\bcreated_before\b/g, "To");
}

/** `2026-11-27T14:05` in the viewer's zone, as a datetime-local field shows it, from an ISO time. */
/** @param {string | null} iso */
function localInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

// The range presets: a window that ends now, recomputed at each load, so "Last hour" stays the last hour.
const RANGES = /** @type {const} */ ([["", "Any time"], ["1h", "Last hour"], ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"], ["custom", "Custom"]]);
const RANGE_MS = { "1h": 3600_000, "24h": 86400_000, "7d": 7 * 86400_000 };

/**
 * The exact time in UTC, whatever the viewer's zone: "2026-12-05 11:53:34 UTC" (one reading for
 * everyone who compares logs, and the receiver's own logs are most often in UTC).
 * @param {string} iso
 */
export function utcTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/**
 * The end of a "To" field's minute: 11:53 means up to 11:53:59.999, so From = To = 11:53 finds that
 * minute's events.
 * @param {string} value a datetime-local field's value, in the viewer's zone
 */
export function endOfMinute(value) {
  const start = isoOf(value);
  return start ? new Date(new Date(start).getTime() + 59_999).toISOString() : "";
}

/** @param {string} value a datetime-local field's value, in the viewer's zone */
export function isoOf(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/**
 * @typedef {object} HistoryOptions
 * @property {string} [endpointId] one endpoint's history; else every endpoint's
 * @property {"failed"} [fixedStatus]
 * @property {import("./api.js").EventType[]} types
 * @property {Map<string, any>} [endpoints] shows an Endpoint column
 * @property {boolean} [retry] a Retry button per row and "Retry all shown"
 * @property {boolean} [refresh] refresh the first page by itself (default true)
 * @property {string} caption
 * @property {string} empty what an empty, unfiltered list means
 */

/**
 * Render the list into `container`; resolves once what the history entry had loaded is back on screen.
 * @param {HTMLElement} container
 * @param {Page} page
 * @param {HistoryOptions} options
 */
export async function deliveryHistory(container, page, options) {
  const { endpointId, fixedStatus, types, endpoints, caption } = options;
  const retry = Boolean(options.retry) && canManage();
  const { params } = currentAddress();

  const status = fixedStatus ? null : h("select", { id: "filter-status", name: "status" },
    [["", "All"], ["succeeded", "Succeeded"], ["failed", "Failed"], ["pending", "Pending (being attempted)"]]
      .map(([value, text]) => h("option", { value }, text)));
  const type = h("select", { id: "filter-type", name: "event_type" },
    h("option", { value: "" }, "All event types"),
    [...groupsOf(types)].map(([group, items]) => h("optgroup", { label: group },
      items.map((t) => h("option", { value: t.name }, t.name)))));
  const after = h("input", { id: "filter-after", name: "after", type: "datetime-local", step: 60,
    "aria-describedby": "filter-zone" });
  const before = h("input", { id: "filter-before", name: "before", type: "datetime-local", step: 60,
    "aria-describedby": "filter-zone" });
  const range = h("select", { id: "filter-range", name: "range", "aria-describedby": "filter-zone" },
    RANGES.map(([value, text]) => h("option", { value }, text)));
  if (status) status.value = params.get("status") ?? "";
  type.value = params.get("type") ?? "";
  after.value = localInput(params.get("after"));
  before.value = localInput(params.get("before"));
  const preset = params.get("range") ?? "";
  range.value = preset in RANGE_MS ? preset : after.value || before.value ? "custom" : "";
  /** A preset's window ends now: its From is filled in afresh at each load. */
  const presetFrom = () => {
    const span = RANGE_MS[/** @type {keyof typeof RANGE_MS} */ (range.value)];
    return span ? new Date(Date.now() - span).toISOString() : null;
  };
  if (presetFrom()) after.value = localInput(presetFrom());
  const filterError = h("div", {});

  const clear = h("button", { type: "button", class: "button button-quiet" }, "Clear filters");
  const live = h("p", { class: "muted small live", role: "status", "aria-live": "polite" });
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const more = h("div", { class: "more" });
  const bulk = h("div", { class: "bulk" });
  const bulkResult = h("div", { role: "status", "aria-live": "polite" });
  // The last row retry's outcome, which stays once its delivery, no longer failed, leaves the list.
  const rowReport = h("div", { id: "retry-report", role: "status", "aria-live": "polite" });
  const filters = h("form", { class: "filters", "aria-label": `Filter ${caption.toLowerCase()}` },
    status ? h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), status) : null,
    h("div", { class: "field" }, h("label", { for: "filter-type" }, "Event type"), type),
    h("div", { class: "field" }, h("label", { for: "filter-range" }, "Accepted"), range),
    h("div", { class: "field field-time" }, h("label", { for: "filter-after" }, "From"), after),
    h("div", { class: "field field-time" }, h("label", { for: "filter-before" }, "To"), before),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "button" }, "Refresh"), clear),
    h("p", { id: "filter-zone", class: "help filter-zone" },
      `Times are in your time zone (${localZone()}), when the event was accepted; To includes its ` +
      "minute. Newest first."));
  // An endpoint's history has its chart of the window; a window's chart is drawn once per window.
  const chart = h("div", { class: "chart-box" });
  let charted = "";
  fill(container, filters, filterError, endpointId ? chart : null,
    h("div", { class: "section-header list-header" }, bulk, live), bulkResult, rowReport, list, more);

  /** The filters as the API takes them. */
  const query = () => ({
    endpointId,
    status: fixedStatus ?? status?.value ?? "",
    eventType: type.value,
    createdAfter: presetFrom() ?? isoOf(after.value),
    createdBefore: presetFrom() ? "" : endOfMinute(before.value),
    limit: PAGE_SIZE,
  });
  const filtered = () => Boolean((!fixedStatus && status?.value) || type.value || after.value || before.value ||
    range.value);

  let shown = "";
  let pages = 1;
  // Each load or "Load more" takes the next generation: an answer that comes back after a newer one was
  // asked for (the filters changed, a refresh) is dropped rather than drawn over it.
  let generation = 0;
  /** @type {import("./nav.js").Later | undefined} the one refresh to come: a new load replaces it */
  let refresh;
  /** @type {any[]} */
  let items = [];
  let tbody = h("tbody", {});
  /**
   * What each row's retry said last, by delivery id: a load (Refresh, or one already on its way when
   * Retry was pressed) redraws the rows, and a redrawn row shows its note again until the delivery's
   * attempts have moved past it (`attempt` asked for; `landed` once it is in the log).
   * @typedef {{text: string, kind: string, busy: boolean, attempt?: number, landed?: boolean}} RetryNote
   * @type {Map<string, RetryNote>}
   */
  const retryNotes = new Map();

  /** @param {string} id @param {Partial<RetryNote>} changes */
  function noteRetry(id, changes) {
    const note = { text: "", kind: "info", busy: false, ...retryNotes.get(id), ...changes };
    retryNotes.set(id, note);
    const row = tbody.querySelector(`tr[data-delivery-id="${CSS.escape(id)}"]`);
    if (row) showRetryNote(row, note);
  }

  /** The note to show beside `d` as the list now has it, if it still says something true. */
  function noteFor(/** @type {any} */ d) {
    const note = retryNotes.get(d.id);
    if (note && !note.busy && note.attempt !== undefined && d.attempt_count >= note.attempt + (note.landed ? 1 : 0)) {
      retryNotes.delete(d.id); // an attempt came since: the row's status says more than the note
      return undefined;
    }
    return note;
  }

  /** @param {Element} where a row or its Retry cell @param {RetryNote} note */
  function showRetryNote(where, note) {
    const result = where.querySelector(".retry-result");
    if (result) fill(result, note.text ? h("span", { class: `text-${note.kind}` }, note.text) : null);
    const button = where.querySelector("button.retry-row");
    if (button instanceof HTMLButtonElement) button.disabled = note.busy;
  }

  function render(/** @type {any[]} */ found) {
    items = found;
    clear.hidden = !filtered();
    if (!found.length) {
      fill(list, h("p", { class: "card empty muted" },
        filtered() ? "No deliveries match these filters." : options.empty));
      fill(bulk);
      return;
    }
    tbody = h("tbody", {}, rowsOf(found));
    // Across endpoints, the Endpoint column takes the room of Attempts (the status says how many).
    const headings = ["Event", "Accepted", endpoints ? "Endpoint" : null, "Status", endpoints ? null : "Attempts",
      "Response", "Last activity", retry ? "Retry" : null].filter(Boolean);
    fill(list, h("div", { class: "table-wrap" }, h("table", { class: "responsive deliveries" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
      tbody)));
    renderBulk();
  }

  function renderBulk() {
    if (!retry || !items.length) {
      fill(bulk);
      return;
    }
    const button = h("button", { type: "button", class: "button", id: "retry-all" },
      `Retry all shown (${items.length})`);
    button.addEventListener("click", () => retryAll(button));
    fill(bulk, button);
  }

  /** One retry request per delivery shown, a few at a time; then what went and what was refused. */
  async function retryAll(/** @type {HTMLButtonElement} */ button) {
    const targets = [...items];
    button.disabled = true;
    let sent = 0;
    /** @type {Map<string, number>} */
    const refused = new Map();
    let next = 0;
    fill(bulkResult, notice("info", `Retrying ${targets.length} deliveries…`));
    const worker = async () => {
      while (next < targets.length && page.alive) {
        const d = targets[next++];
        try {
          const accepted = await api.retry(d.id, true, lastAnswerSeen(d.id, d.attempt_count));
          sent += 1;
          noteRetry(d.id, { text: `Attempt ${accepted.attempt} requested`, kind: "info", attempt: accepted.attempt,
            landed: false });
        } catch (err) {
          if (err instanceof ApiError && err.status === 401) {
            page.fail(err);
            return;
          }
          const reason = messageOf(err);
          refused.set(reason, (refused.get(reason) ?? 0) + 1);
          noteRetry(d.id, { text: reason, kind: "error", attempt: undefined });
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    if (!page.alive) return;
    const refusedCount = [...refused.values()].reduce((a, b) => a + b, 0);
    fill(bulkResult, notice(refusedCount ? "warning" : "success",
      h("p", { id: "retry-all-result" },
        `${targets.length} retried: ${sent} sent, ${refusedCount} refused.`,
        sent ? " Each sent one makes an attempt now; its log shows the answer." : ""),
      refusedCount ? h("ul", { class: "reasons" },
        [...refused].map(([reason, n]) => h("li", {}, `${n} × ${reason}`))) : null));
    button.disabled = false;
  }

  function rowsOf(/** @type {any[]} */ found) {
    return found.map((d) => {
      const endpoint = endpoints?.get(d.endpoint_id);
      const cells = [
        h("td", { "data-label": "Event" },
          h("a", { href: deliveryHref(d.id) }, d.webhook_type),
          h("div", { class: "small" }, long("a", d.event_id, { href: eventHref(d.event_id), class: "mono muted" }))),
        h("td", { "data-label": "Accepted", class: "accepted" },
          h("time", { datetime: d.created_at, title: `${formatTime(d.created_at)} (${relative(d.created_at)})` },
            utcTime(d.created_at))),
        endpoints ? h("td", { "data-label": "Endpoint" }, endpoint
          ? long("a", endpoint.url, { href: endpointHref(endpoint.id), class: "url" })
          : h("span", { class: "muted" }, "deleted endpoint")) : null,
        h("td", { "data-label": "Status", class: "status-cell" }, deliveryBadge(d)),
        endpoints ? null : h("td", { "data-label": "Attempts" }, String(d.attempt_count)),
        h("td", { "data-label": "Response" }, d.last_status_code === null ? h("span", { class: "muted" }, "—")
          : String(d.last_status_code)),
        h("td", { "data-label": "Last activity", title: formatTime(d.updated_at) }, relative(d.updated_at)),
      ];
      if (retry) cells.push(retryCell(d, endpoint));
      return h("tr", { "data-delivery-id": d.id }, cells.filter(Boolean));
    });
  }

  function retryCell(/** @type {any} */ d, /** @type {any} */ endpoint) {
    const result = h("div", { class: "small retry-result", role: "status", "aria-live": "polite" });
    const what = `${d.webhook_type} to ${endpoint?.url ?? "a deleted endpoint"}`;
    const button = h("button", { type: "button", class: "button button-small retry-row",
      "aria-label": `Retry ${what}` }, "Retry");
    button.addEventListener("click", async () => {
      noteRetry(d.id, { text: "", busy: true, attempt: undefined });
      await retryAndWatch(page, d.id, d.attempt_count, (text, kind) => noteRetry(d.id, { text, kind }), (end) => {
        noteRetry(d.id, { busy: false, attempt: end?.attempt, landed: Boolean(end?.delivery) });
        if (!end?.delivery) return;
        const cell = tbody.querySelector(`tr[data-delivery-id="${CSS.escape(d.id)}"] .status-cell`);
        if (cell) fill(cell, deliveryBadge(end.delivery));
        fill(rowReport, notice(end.ok ? "success" : "warning", `${what}: ${end.text}`));
      });
    });
    const cell = h("td", { "data-label": "Retry" }, button, result);
    const note = noteFor(d);
    if (note) showRetryNote(cell, note);
    return cell;
  }

  /**
   * Come back to the first page by itself, unless the person has loaded more: those pages stay as they
   * were scrolled to. Whatever refresh was waiting is replaced, so one view polls once, however often
   * the filters changed.
   * @param {number} ms
   */
  function refreshLater(ms) {
    page.cancel(refresh);
    refresh = undefined;
    if (pages !== 1 || options.refresh === false) return;
    // Checked again when it fires: the person may have loaded more pages meanwhile.
    refresh = page.later(() => { if (pages === 1) load({ quiet: true }); }, ms);
  }

  /**
   * @param {string | null} cursor
   * @param {ReturnType<typeof query>} asked the filters the cursor was made for
   */
  function moreButton(cursor, asked) {
    if (!cursor) return null;
    const button = h("button", { type: "button", class: "button" }, "Load more");
    button.addEventListener("click", async () => {
      button.disabled = true;
      // A refresh of the first page, waiting or on its way, would draw over the pages about to be added.
      const mine = ++generation;
      page.cancel(refresh);
      try {
        const next = await api.deliveries({ ...asked, cursor });
        if (mine !== generation || !page.alive) return; // the filters changed meanwhile: another list
        pages += 1;
        saveViewState({ pages }); // Back finds these pages again; Refresh starts over
        items = [...items, ...next.items];
        tbody.append(...rowsOf(next.items));
        renderBulk();
        fill(more, moreButton(next.next_cursor, asked));
      } catch (err) {
        if (mine !== generation || !page.alive) return;
        button.disabled = false;
        fill(more, notice("error", messageOf(err)), button);
        refreshLater(IDLE_REFRESH_MS); // still one page: it goes on refreshing
      }
    });
    return button;
  }

  /**
   * The first page, and as many more as the history entry had loaded (`wanted`).
   * @param {{quiet?: boolean, wanted?: number}} [how]
   */
  async function load({ quiet = false, wanted = 1 } = {}) {
    const mine = ++generation;
    page.cancel(refresh); // this load schedules the next one
    if (!quiet) {
      live.textContent = "Loading…";
      fill(more); // the list shown is about to be replaced: its next page is no longer wanted
    }
    fill(filterError);
    const asked = query();
    let result;
    /** @type {any[]} */
    let found = [];
    let loaded = 0;
    try {
      result = await api.deliveries(asked);
      found = result.items;
      loaded = 1;
      while (loaded < wanted && result.next_cursor) {
        result = await api.deliveries({ ...asked, cursor: result.next_cursor });
        found = [...found, ...result.items];
        loaded += 1;
      }
    } catch (err) {
      if (mine !== generation || !page.alive) return;
      live.textContent = "";
      fill(more); // no "Load more" under an error: there is nothing to load more of
      if (err instanceof ApiError && err.status === 422) {
        fill(filterError, notice("error", `Check the filters: ${inWords(messageOf(err))}`));
        fill(list);
        return;
      }
      page.fail(err, list, () => load());
      shown = "";
      pages = 1; // the error took the list's place: what comes back is its first page
      refreshLater(IDLE_REFRESH_MS * 2);
      return;
    }
    if (mine !== generation || !page.alive) return;
    const window = `${asked.createdAfter}|${asked.createdBefore}|${range.value}`;
    if (endpointId && !quiet && window !== charted) {
      charted = window;
      drawChart(chart, endpointId, asked.createdAfter, asked.createdBefore).catch(() => {
        charted = ""; // drawn again at the next load: the list says what went wrong
        fill(chart);
      });
    }
    const inFlight = found.some((d) => d.status === "pending" || d.status === "scheduled");
    live.textContent = inFlight ? "Deliveries in flight: updating automatically."
      : `Updated ${new Date().toLocaleTimeString()}`;
    const snapshot = JSON.stringify(found) + result.next_cursor;
    if (snapshot !== shown) {
      shown = snapshot;
      pages = loaded;
      render(found);
      fill(more, moreButton(result.next_cursor, asked));
    }
    refreshLater(inFlight ? IN_FLIGHT_REFRESH_MS : IDLE_REFRESH_MS);
  }

  const changed = () => {
    const next = new URLSearchParams();
    if (status?.value) next.set("status", status.value);
    if (type.value) next.set("type", type.value);
    if (range.value in RANGE_MS) next.set("range", range.value);
    else {
      if (isoOf(after.value)) next.set("after", isoOf(after.value));
      if (isoOf(before.value)) next.set("before", isoOf(before.value));
    }
    setQuery(next);
    shown = "";
    // A window that ends before it starts finds nothing: said in the fields' own words, not sent.
    if (after.value && before.value && isoOf(after.value) > endOfMinute(before.value)) {
      page.cancel(refresh);
      fill(more);
      fill(list);
      fill(filterError, notice("error", "Check the filters: From is later than To; swap them, or clear one."));
      return;
    }
    load();
  };
  filters.addEventListener("submit", (event) => { event.preventDefault(); changed(); });
  for (const input of [status, type]) input?.addEventListener("change", changed);
  // Typing a time is a custom range; picking a preset fills From (its window ends now) and clears To.
  for (const input of [after, before]) {
    input.addEventListener("change", () => {
      range.value = after.value || before.value ? "custom" : "";
      changed();
    });
  }
  range.addEventListener("change", () => {
    const from = presetFrom();
    if (from) {
      after.value = localInput(from);
      before.value = "";
    } else if (!range.value) {
      after.value = "";
      before.value = "";
    }
    changed();
    if (range.value === "custom") after.focus();
  });
  clear.addEventListener("click", () => {
    if (status) status.value = "";
    type.value = "";
    range.value = "";
    after.value = "";
    before.value = "";
    changed();
  });
  await load({ wanted: Math.max(1, Number(viewState().pages) || 1) });
}
