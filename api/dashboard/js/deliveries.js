// One delivery (payload, every attempt, retry) and the tenant's failed deliveries, each retryable.

import { ApiError, api } from "./api.js";
import { focusHeading } from "./app.js";
import { copyButton, fill, h, notice, relative, statusBadge, time } from "./dom.js";
import { deliveryHref } from "./endpoints.js";

const REFRESH_MS = 2000;
const endpointHref = (id) => `#/webhooks/${encodeURIComponent(id)}`;

/** Ask for one attempt now, then poll until it is in the log; `report(text, kind)` tells the person. */
async function retryAndWatch(page, deliveryId, report, onLanded) {
  let accepted;
  try {
    accepted = await api.retry(deliveryId);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) page.fail(err);
    else report(err.message, "error");
    return false;
  }
  report(`Attempt ${accepted.attempt} requested; waiting for the receiver's answer…`, "info");
  const started = Date.now();
  const poll = async () => {
    try {
      const d = await api.delivery(deliveryId);
      const attempt = d.attempts.find((a) => a.attempt === accepted.attempt);
      if (attempt) {
        const outcome = attempt.status_code !== null ? `HTTP ${attempt.status_code}` : attempt.error ?? "no answer";
        const ok = attempt.status_code !== null && attempt.status_code >= 200 && attempt.status_code < 300;
        report(`Attempt ${accepted.attempt}: ${outcome}.`, ok ? "success" : "error");
        onLanded(d);
        return;
      }
    } catch (err) {
      report(err.message, "error");
    }
    if (Date.now() - started < 120000) page.later(poll, 1000);
  };
  page.later(poll, 500);
  return true;
}

export async function deliveryDetail(main, page, deliveryId) {
  const head = h("div", {});
  const status = h("div", { role: "status", "aria-live": "polite", id: "retry-status" });
  const summary = h("div", {});
  const payloadBox = h("div", {});
  const attemptsBox = h("div", {});
  const retry = h("button", { type: "button", class: "button button-primary", id: "retry" }, "Retry now");
  main.append(head, summary, status,
    h("section", { "aria-labelledby": "payload-title" },
      h("div", { class: "section-header" }, h("h2", { id: "payload-title" }, "Payload")), payloadBox),
    h("section", { "aria-labelledby": "attempts-title" },
      h("div", { class: "section-header" }, h("h2", { id: "attempts-title" }, "Attempts")), attemptsBox));

  let shown = "";
  let first = true;
  const report = (text, kind) => fill(status, notice(kind, text));

  retry.addEventListener("click", async () => {
    retry.disabled = true;
    await retryAndWatch(page, deliveryId, report, (d) => render(d));
    retry.disabled = false;
  });

  function render(d) {
    const snapshot = JSON.stringify(d);
    if (snapshot === shown) return;
    shown = snapshot;
    if (first) {
      fill(head,
        h("p", { class: "back" }, h("a", { href: endpointHref(d.endpoint_id) }, "← Event history")),
        h("div", { class: "page-header" },
          h("div", { class: "grow" }, h("h1", {}, d.webhook_type), h("p", { class: "muted mono small" }, d.id)),
          h("div", { class: "actions" }, retry,
            d.workflow_url ? h("a", { class: "button", href: d.workflow_url, target: "_blank",
              rel: "noopener noreferrer" }, "Open in Temporal Web UI") : null)));
      fill(payloadBox, h("div", { class: "code-block" },
        h("div", { class: "code-tools" }, copyButton(() => JSON.stringify(d.payload, null, 2), "Copy payload")),
        h("pre", { class: "code", tabindex: "0", "aria-label": "Payload JSON", id: "payload" },
          JSON.stringify(d.payload, null, 2))));
      focusHeading();
      first = false;
    }
    retry.textContent = d.status === "succeeded" ? "Resend" : "Retry now";
    let next;
    const held = d.attempt_in_progress?.infra_failures ? d.attempt_in_progress : null;
    if (d.next_attempt_at) next = h("span", {}, time(d.next_attempt_at), ` (${relative(d.next_attempt_at)})`);
    else if (held) {
      next = h("span", { id: "held-up" }, `Attempt ${held.attempt} is held up on our side (${held.infra_error ??
        "a fault of ours"}); tried ${held.infra_failures} time(s), retrying`,
        held.next_try_at ? [" at ", time(held.next_try_at)] : null, ". This does not use up the retry schedule.");
    } else if (d.status === "scheduled") next = "The first attempt is about to start";
    else if (d.status === "pending") next = "Attempt in progress";
    else if (d.status === "succeeded") next = "None: delivered";
    else next = "None: the schedule is exhausted. Retry by hand.";
    fill(summary, h("dl", { class: "facts card" },
      h("div", {}, h("dt", {}, "Status"), h("dd", { id: "delivery-status" }, statusBadge(d.status))),
      h("div", {}, h("dt", {}, "Event id"), h("dd", {}, h("code", {}, d.event_id))),
      h("div", {}, h("dt", {}, "Endpoint"), h("dd", {}, h("a", { href: endpointHref(d.endpoint_id) },
        h("code", {}, d.endpoint_id)))),
      h("div", {}, h("dt", {}, "Accepted"), h("dd", {}, time(d.created_at))),
      h("div", {}, h("dt", {}, "Attempts"), h("dd", {}, String(d.attempts.length))),
      h("div", {}, h("dt", {}, "Next attempt"), h("dd", { id: "next-attempt" }, next))));
    fill(attemptsBox, d.attempts.length
      ? h("ol", { class: "attempts", reversed: true }, [...d.attempts].reverse().map(attemptItem))
      : h("p", { class: "card empty muted" }, "No attempt yet: the first one is on its way."));
  }

  async function load() {
    let d;
    try {
      d = await api.delivery(deliveryId);
    } catch (err) {
      if (!page.alive) return;
      if (first) page.fail(err);
      else report(err.message, "error");
      if (!first) page.later(load, REFRESH_MS * 3);
      return;
    }
    if (!page.alive) return;
    render(d);
    if (d.status === "pending" || d.status === "scheduled") page.later(load, REFRESH_MS);
  }
  await load();
}

function attemptItem(a) {
  const ok = a.status_code !== null && a.status_code >= 200 && a.status_code < 300;
  const code = a.status_code === null ? "No response" : `HTTP ${a.status_code}`;
  return h("li", { class: `attempt card ${ok ? "attempt-ok" : "attempt-bad"}`, "data-attempt": a.attempt },
    h("div", { class: "attempt-head" },
      h("strong", {}, `Attempt ${a.attempt}`),
      h("span", { class: `badge ${ok ? "badge-ok" : "badge-bad"}` }, code),
      h("span", { class: "badge badge-neutral" }, a.trigger === "manual" ? "Manual retry" : "Scheduled"),
      h("span", { class: "muted" }, time(a.started_at)),
      h("span", { class: "muted" }, `${a.duration_ms} ms`)),
    a.error ? h("p", { class: "attempt-error" }, h("strong", {}, "Error: "), a.error) : null,
    a.infra_failures ? h("p", { class: "small muted" }, `Made after ${a.infra_failures} failed tr` +
      `${a.infra_failures === 1 ? "y" : "ies"} on our side (${a.infra_error ?? "a fault of ours"}); ` +
      "those did not count against the retry schedule.") : null,
    h("div", { class: "small muted" }, "Response body"),
    a.response_body
      ? h("pre", { class: "code response", tabindex: "0", "aria-label": `Response body of attempt ${a.attempt}` },
        a.response_body)
      : h("p", { class: "muted small" }, "(empty)"));
}

// ---- failed deliveries across endpoints -----------------------------------------------------------

export async function failedDeliveries(main, page) {
  main.append(
    h("h1", {}, "Failed deliveries"),
    h("p", { class: "muted" }, "Deliveries whose every scheduled attempt failed, across all your endpoints. " +
      "Fix the receiver, then retry: each retry makes one attempt now."));
  focusHeading();
  const body = h("div", {}, h("p", { class: "muted", role: "status" }, "Loading failed deliveries…"));
  const more = h("div", {});
  main.append(body, more);
  const [list, endpoints] = await Promise.all([
    api.deliveries({ status: "failed", limit: 50 }),
    api.endpoints().then((r) => new Map(r.items.map((e) => [e.id, e]))),
  ]).catch((err) => { page.fail(err, body); return [null, null]; });
  if (!list || !page.alive) return;
  if (!list.items.length) {
    fill(body, h("div", { class: "card empty" }, h("h2", {}, "No failed deliveries"),
      h("p", { class: "muted" }, "Every delivery succeeded or is still being retried.")));
    return;
  }
  const rows = (items) => items.map((d) => failedRow(page, d, endpoints.get(d.endpoint_id)));
  const tbody = h("tbody", {}, rows(list.items));
  fill(body, h("div", { class: "table-wrap" }, h("table", { class: "responsive" },
    h("caption", { class: "visually-hidden" }, "Failed deliveries"),
    h("thead", {}, h("tr", {},
      ["Event", "Endpoint", "Attempts", "Response", "Last attempt", "Retry"].map((t) => h("th", { scope: "col" }, t)))),
    tbody)));
  const moreButton = (cursor) => {
    if (!cursor) return null;
    const button = h("button", { type: "button", class: "button" }, "Load more");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const next = await api.deliveries({ status: "failed", limit: 50, cursor });
        tbody.append(...rows(next.items));
        fill(more, moreButton(next.next_cursor));
      } catch (err) {
        button.disabled = false;
        fill(more, notice("error", err.message), button);
      }
    });
    return button;
  };
  fill(more, moreButton(list.next_cursor));
}

function failedRow(page, d, endpoint) {
  const result = h("div", { class: "small", role: "status", "aria-live": "polite" });
  const statusCell = h("span", {}, statusBadge(d.status));
  const retry = h("button", { type: "button", class: "button button-small",
    "aria-label": `Retry ${d.webhook_type} to ${endpoint?.url ?? "a deleted endpoint"}` }, "Retry");
  retry.addEventListener("click", async () => {
    retry.disabled = true;
    const report = (text, kind) => fill(result, h("span", { class: `text-${kind}` }, text));
    const sent = await retryAndWatch(page, d.id, report, (fresh) => {
      fill(statusCell, statusBadge(fresh.status));
      retry.disabled = false;
    });
    if (!sent) retry.disabled = false;
  });
  return h("tr", { "data-delivery-id": d.id },
    h("td", { "data-label": "Event" }, h("a", { href: deliveryHref(d.id) }, d.webhook_type),
      h("div", { class: "muted small mono" }, d.event_id), statusCell),
    h("td", { "data-label": "Endpoint" }, endpoint
      ? h("a", { href: endpointHref(endpoint.id), class: "url" }, endpoint.url)
      : h("span", { class: "muted" }, "deleted endpoint")),
    h("td", { "data-label": "Attempts" }, String(d.attempt_count)),
    h("td", { "data-label": "Response" }, d.last_status_code === null ? "—" : String(d.last_status_code)),
    h("td", { "data-label": "Last attempt", title: d.updated_at }, relative(d.updated_at)),
    h("td", { "data-label": "Retry" }, retry, result));
}
