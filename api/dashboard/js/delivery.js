// @ts-check
// One delivery: where it went, its state in words, the exact payload, and every attempt with the request
// headers sent and the receiver's answer; "Retry now" for those who may.

import { ApiError, api, messageOf } from "./api.js";
import { append, copyButton, fill, h, liveRelative, long, notice, time } from "./dom.js";
import { pageTitle } from "./embed.js";
import { retryAndWatch } from "./history.js";
import {
  Page, canManage, endpointHref, eventHref, focusHeading, foundOrNotFound, readOnlyNote, temporalLinks,
} from "./nav.js";
import { deliveryBadge, deliveryState, duration, originWords, triggerWords } from "./words.js";

/** @param {number} ms */
function waited(ms) {
  return ms < 1000 ? `${ms} ms` : duration(Math.round(ms / 1000));
}

const REFRESH_MS = 2000;

/**
 * @param {HTMLElement} main
 * @param {Page} page
 * @param {string} deliveryId
 */
export async function deliveryDetail(main, page, deliveryId) {
  const first = await foundOrNotFound(api.delivery(deliveryId), "delivery", deliveryId, "A delivery id is " +
    "{event id}:{endpoint id}, the webhook-id header your receiver got. Its endpoint may have been deleted, or " +
    "its log is older than the logs are kept.");
  if (!first || !page.alive) return;
  const [endpoint, links] = await Promise.all([
    api.endpoint(first.endpoint_id).catch(() => null), // deleted since: the delivery's log stays
    temporalLinks(),
  ]);
  if (!page.alive) return;

  const status = h("div", { role: "status", "aria-live": "polite", id: "retry-status" });
  // Apart from the retry's answer, which a failed refresh must not replace; gone once one succeeds.
  const loadError = h("div", { id: "load-error" });
  const summary = h("div", {});
  const attemptsBox = h("div", {});
  const manage = canManage();
  // A deleted endpoint's delivery cannot be sent again, and a disabled one's is refused: say why up front.
  const blocked = !endpoint ? "Its endpoint was deleted: this delivery cannot be sent again."
    : !endpoint.enabled ? "Its endpoint is disabled: enable it to retry or resend this delivery." : null;
  const retry = manage ? h("button", { type: "button", class: "button button-primary", id: "retry",
    disabled: Boolean(blocked), "aria-describedby": blocked ? "retry-blocked" : null }, "Retry now") : null;
  const report = (/** @type {string} */ text, /** @type {"info" | "success" | "error"} */ kind) =>
    fill(status, notice(kind, text));
  let attemptsShown = first.attempts.length; // a retry asked for here is never joined to one of them
  retry?.addEventListener("click", async () => {
    retry.disabled = true;
    // Once the attempt is in the log, load afresh rather than draw the watcher's answer: a refresh asked
    // before it could come back after it and draw the delivery as it was before the attempt.
    await retryAndWatch(page, deliveryId, attemptsShown, report, (end) => { if (end?.delivery) load(); });
    retry.disabled = Boolean(blocked);
  });

  append(main, 
    h("p", { class: "back" }, endpoint
      ? h("a", { href: endpointHref(first.endpoint_id) }, "← Event history")
      : h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("div", { class: "page-header" },
      h("div", { class: "grow" }, h("h1", {}, first.webhook_type),
        h("p", { class: "muted small inline" }, long("span", deliveryId, { class: "mono" }),
          copyButton(() => deliveryId, "Copy", "Copy delivery id"))),
      manage ? h("div", { class: "actions" }, retry,
        blocked ? h("p", { class: "muted small", id: "retry-blocked" }, blocked) : null) : readOnlyNote()),
    summary, status, loadError,
    h("section", { "aria-labelledby": "payload-title" },
      h("div", { class: "section-header" }, h("h2", { id: "payload-title" }, "Payload")),
      h("div", { class: "code-block" },
        h("div", { class: "code-tools" }, copyButton(() => JSON.stringify(first.payload, null, 2), "Copy payload")),
        h("pre", { class: "code", tabindex: "0", "aria-label": "Payload JSON", id: "payload" },
          JSON.stringify(first.payload, null, 2)))),
    h("section", { "aria-labelledby": "attempts-title" },
      h("div", { class: "section-header" }, h("h2", { id: "attempts-title" }, "Attempts")), attemptsBox),
    // For operators who can open it (a setting), never as a main action: the receiver's owner cannot.
    links && first.workflow_url ? h("p", { class: "small operator-link" }, "Operators: ",
      h("a", { href: first.workflow_url, target: "_blank", rel: "noopener noreferrer" },
        "Open in Temporal Web UI")) : null);
  focusHeading();

  let shown = "";
  /** @param {any} d */
  function render(d) {
    const snapshot = JSON.stringify(d);
    if (snapshot === shown) return;
    shown = snapshot;
    attemptsShown = d.attempts.length;
    if (retry) retry.textContent = d.status === "succeeded" ? "Resend" : "Retry now";
    let next;
    const progress = d.attempt_in_progress;
    const held = progress?.infra_failures ? progress : null;
    if (d.next_attempt_at) {
      next = h("span", {}, time(d.next_attempt_at), " (", liveRelative(d.next_attempt_at, { ahead: true }), ")");
    } else if (progress?.throttled_by) {
      next = h("span", { id: "throttled" }, `Attempt ${progress.attempt} waits for the endpoint: held back by ` +
        `${progress.throttled_by}`, progress.next_try_at ? [", its turn at ", time(progress.next_try_at)] : null,
        ". Waiting does not use up the retry schedule.");
    } else if (held) {
      next = h("span", { id: "held-up" }, `Attempt ${held.attempt} is held up on our side (${held.infra_error ??
        "a fault of ours"}); tried ${held.infra_failures} time(s), retrying`,
        held.next_try_at ? [" at ", time(held.next_try_at)] : null, ". This does not use up the retry schedule.");
    } else if (d.status === "scheduled") next = "The first attempt is about to start";
    else if (d.status === "pending") next = "Attempt in progress";
    else if (d.status === "succeeded") next = "None: delivered";
    else next = manage ? "None: the schedule is exhausted. Retry by hand." : "None: the schedule is exhausted.";
    fill(summary, h("dl", { class: "facts card" },
      h("div", {}, h("dt", {}, "Status"), h("dd", { id: "delivery-status", "data-status": d.status },
        deliveryBadge({ ...d, attempt_count: d.attempts.length }))),
      h("div", { class: "wide" }, h("dt", {}, "Endpoint"), h("dd", { id: "delivery-endpoint" }, endpoint
        ? [long("a", endpoint.url, { href: endpointHref(endpoint.id), class: "url" }),
          h("div", { class: "muted small" }, h("code", {}, endpoint.id))]
        : [h("span", { class: "muted" }, "Deleted endpoint "), h("code", {}, d.endpoint_id)])),
      h("div", {}, h("dt", {}, "Event"), h("dd", {}, long("a", d.event_id, { href: eventHref(d.event_id), class: "mono" }))),
      h("div", {}, h("dt", {}, "Origin"), h("dd", {}, originWords(d.origin))),
      h("div", {}, h("dt", {}, "Accepted"), h("dd", {}, time(d.created_at, { relative: true }))),
      h("div", {}, h("dt", {}, "Attempts"), h("dd", {}, String(d.attempts.length))),
      d.ordered ? orderedFacts(d) : null,
      h("div", {}, h("dt", {}, "Next attempt"), h("dd", { id: "next-attempt" }, next))));
    fill(attemptsBox, d.attempts.length
      ? h("ol", { class: "attempts", reversed: true }, [...d.attempts].reverse().map(attemptItem))
      : h("p", { class: "card empty muted" }, "No attempt yet: the first one is on its way."));
    const words = deliveryState({ ...d, attempt_count: d.attempts.length });
    pageTitle(`${d.webhook_type}: ${words.text}`);
  }

  // One refresh at a time: a load started (a retry's attempt landed) replaces the one waiting, and only the
  // newest load's answer is drawn, so an older answer that comes back late never draws over it.
  let generation = 0;
  /** @type {import("./nav.js").Later | undefined} */
  let refresh;

  async function load() {
    const mine = ++generation;
    page.cancel(refresh);
    let d;
    try {
      d = await api.delivery(deliveryId);
    } catch (err) {
      if (mine !== generation || !page.alive) return;
      if (err instanceof ApiError && err.status === 401) {
        page.fail(err); // signed out or the session ended: the page says so and what to do
        return;
      }
      fill(loadError, notice("error", `Could not refresh this delivery: ${messageOf(err)} Trying again shortly.`));
      refresh = page.later(load, REFRESH_MS * 3);
      return;
    }
    if (mine !== generation || !page.alive) return;
    fill(loadError);
    render(d);
    if (d.status === "pending" || d.status === "scheduled") refresh = page.later(load, REFRESH_MS);
  }
  render(first);
  if (first.status === "pending" || first.status === "scheduled") refresh = page.later(load, REFRESH_MS);
}

/**
 * Where a delivery to an ordered endpoint stands in its lane: the event's key and its webhook-sequence.
 * @param {any} d
 */
function orderedFacts(d) {
  return [
    h("div", {}, h("dt", {}, "Ordering key"), h("dd", { id: "delivery-ordering-key" }, d.ordering_key === null
      ? h("span", { class: "muted" }, "None: the default lane")
      : h("code", { class: "truncate inline-code", title: d.ordering_key }, d.ordering_key))),
    h("div", {}, h("dt", {}, "webhook-sequence"), h("dd", { id: "delivery-sequence" }, d.sequence === null
      ? "Not yet: it waits in its lane for the events ahead of it" : String(d.sequence))),
  ];
}

/**
 * The attempt's OpenTelemetry trace: its id to copy (a receiver's `traceparent` carries it too), and a
 * link to the operators' trace viewer when the API gives one (never to a portal session).
 * @param {any} a
 */
function traceLine(a) {
  if (!a.trace_id) return null;
  return h("p", { class: "small trace" }, h("span", { class: "muted" }, "Trace "),
    h("code", { class: "trace-id" }, a.trace_id),
    copyButton(() => a.trace_id, "Copy", `Copy the trace id of attempt ${a.attempt}`),
    a.trace_url ? h("a", { href: a.trace_url, target: "_blank", rel: "noopener noreferrer",
      "aria-label": `Open the trace of attempt ${a.attempt}` }, "Open trace") : null);
}

/**
 * @param {[string, string][] | null} headers
 * @param {string} label
 */
function headerList(headers, label) {
  if (!headers?.length) return null;
  return h("dl", { class: "headers", "aria-label": label },
    headers.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", { class: "truncate", title: value }, value))));
}

/** @param {any} a */
function attemptItem(a) {
  const ok = a.status_code !== null && a.status_code >= 200 && a.status_code < 300;
  const code = a.status_code === null ? "No response" : `HTTP ${a.status_code}`;
  const sent = headerList(a.request_headers, `Request headers of attempt ${a.attempt}`);
  const answered = headerList(a.response_headers, `Response headers of attempt ${a.attempt}`);
  return h("li", { class: `attempt card ${ok ? "attempt-ok" : "attempt-bad"}`, "data-attempt": a.attempt },
    h("div", { class: "attempt-head" },
      h("strong", {}, `Attempt ${a.attempt}`),
      h("span", { class: `badge ${ok ? "badge-ok" : "badge-bad"}` }, code),
      h("span", { class: "badge badge-neutral" }, triggerWords(a.trigger)),
      h("span", { class: "muted" }, time(a.started_at)),
      h("span", { class: "muted" }, `${a.duration_ms} ms`)),
    traceLine(a),
    a.error ? h("p", { class: "attempt-error" }, h("strong", {}, "Error: "), a.error) : null,
    a.throttled_by ? h("p", { class: "small muted throttled-by" }, `Held back by ${a.throttled_by} before it ` +
      `was made${a.queued_ms ? `, ${waited(a.queued_ms)} after it was due` : ""}; waiting did not ` +
      "count against the retry schedule.") : null,
    a.infra_failures ? h("p", { class: "small muted" }, `Made after ${a.infra_failures} failed tr` +
      `${a.infra_failures === 1 ? "y" : "ies"} on our side (${a.infra_error ?? "a fault of ours"}); ` +
      "those did not count against the retry schedule.") : null,
    sent ? h("details", { class: "exchange" }, h("summary", {}, "Request headers sent"),
      h("p", { class: "small muted" }, "Signatures and custom header values are masked."), sent) : null,
    a.response_status_line || answered ? h("details", { class: "exchange" },
      h("summary", {}, "Response: ", h("code", {}, a.response_status_line ?? code)),
      answered, h("p", { class: "small muted" }, "The first headers of the answer.")) : null,
    h("div", { class: "small muted" }, "Response body"),
    a.response_body
      ? h("pre", { class: "code response", tabindex: "0", "aria-label": `Response body of attempt ${a.attempt}` },
        a.response_body)
      : h("p", { class: "muted small" }, "(empty)"));
}
