// @ts-check
// One endpoint: what it is and how it is doing (health, settings), what can be done to it (enable or
// disable, edit, send a test event, rotate or reveal its secret, recover and replay, delete), and its
// event history.

import { ApiError, api, eventTypes, groupsOf, messageOf, session } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { append, copyButton, fill, h, liveRelative, localZone, long, notice, time } from "./dom.js";
import { METHODS } from "./endpoint-form.js";
import { eventsSummary } from "./endpoint-list.js";
import { deliveryHistory, isoOf } from "./history.js";
import { laneSection } from "./lane.js";
import {
  Page, canManage, deliveryHref, endpointHref, flash, focusHeading, foundOrNotFound, navigate,
  readOnlyNote, takeHandoff, temporalLinks,
} from "./nav.js";
import { orderedWords } from "./ordered.js";
import { disabledWords, duration, healthBadge, lastFailure, successRate } from "./words.js";

// Each tenant has its own keys: a receiver that fetched another tenant's JWKS could never verify ours.
const jwksUrl = () => `${location.origin}/v1/webhooks/jwks/${encodeURIComponent(session.tenant ?? "")}.json`;

/**
 * @param {string} label
 * @param {any} value
 * @param {{wide?: boolean, id?: string}} [options]
 */
function fact(label, value, { wide = false, id } = {}) {
  return h("div", { class: wide ? "wide" : null }, h("dt", {}, label), h("dd", { id }, value));
}

/**
 * @param {HTMLElement} main
 * @param {Page} page
 * @param {string} endpointId
 */
export async function endpointDetail(main, page, endpointId) {
  const loaded = await foundOrNotFound(Promise.all([api.endpoint(endpointId), eventTypes()]), "endpoint",
    endpointId, "It may have been deleted, or the link is mistyped.");
  if (!loaded || !page.alive) return;
  const [endpoint, types] = loaded;
  const created = /** @type {any} */ (takeHandoff());
  const manage = canManage();
  const links = await temporalLinks();
  const actionsStatus = h("div", { role: "status", "aria-live": "polite" });
  const panels = h("div", {});
  const dialogs = h("div", {});

  // ---- actions ----
  const buttons = [];
  if (manage) {
    const toggle = h("button", { type: "button", class: "button" }, endpoint.enabled ? "Disable" : "Enable");
    const setEnabled = async (/** @type {boolean} */ enabled) => {
      await api.updateEndpoint(endpointId, { enabled });
      flash(enabled
        ? "Endpoint enabled. Events emitted while it was disabled were not sent to it: Replay missed events " +
          "delivers them."
        : "Endpoint disabled: it receives no new events until you enable it again.");
      navigate(endpointHref(endpointId));
    };
    const disableDialog = confirmDialog({
      title: "Disable this endpoint?",
      body: [h("p", {}, "No more events are sent to it. Deliveries still scheduled stop at their next " +
        "attempt."), h("p", {}, "Events emitted while it is disabled are kept as long as the logs are, and can " +
        "be replayed to it once you enable it again.")],
      confirm: "Disable endpoint",
      onConfirm: () => setEnabled(false),
    });
    dialogs.append(disableDialog);
    toggle.addEventListener("click", async () => {
      if (endpoint.enabled) {
        disableDialog.ask();
        return;
      }
      toggle.disabled = true;
      try {
        await setEnabled(true);
      } catch (err) {
        toggle.disabled = false;
        fill(actionsStatus, notice("error", messageOf(err)));
      }
    });
    buttons.push(toggle, h("a", { class: "button", href: `${endpointHref(endpointId)}/edit` }, "Edit"));
    buttons.push(testButton(page, endpoint, types, panels));
    if (endpoint.signature_method === "hmac") {
      buttons.push(rotateButton(endpoint, panels, dialogs), revealButton(endpointId, panels));
    }
    const deleteDialog = confirmDialog({
      title: "Delete this endpoint?",
      body: h("p", {}, "No more events are sent to ", long("strong", endpoint.url, { class: "url" }),
        ". Deliveries still scheduled stop at their next attempt. This cannot be undone."),
      confirm: "Delete endpoint",
      danger: true,
      onConfirm: async () => {
        await api.deleteEndpoint(endpointId);
        flash(["Endpoint ", long("strong", endpoint.url, { class: "url" }), " deleted."]);
        navigate("#/webhooks");
      },
    });
    dialogs.append(deleteDialog);
    buttons.push(h("button", { type: "button", class: "button button-danger", onclick: () => deleteDialog.ask() },
      "Delete"));
  }

  const { health, disabled } = endpoint;
  const headers = Object.entries(endpoint.headers ?? {});
  append(main, 
    h("p", { class: "back" }, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("div", { class: "page-header" },
      h("div", { class: "grow" },
        h("h1", { class: "truncate url", title: endpoint.url }, endpoint.url),
        h("div", { class: "inline small" }, copyButton(() => endpoint.url, "Copy URL")),
        endpoint.description ? h("p", { class: "muted clamp", title: endpoint.description }, endpoint.description)
          : null),
      h("div", { id: "endpoint-health" }, healthBadge(endpoint))),
    created ? createdPanel(created) : null,
    h("dl", { class: "facts card" },
      fact("Signature", METHODS[/** @type {"hmac" | "jwt"} */ (endpoint.signature_method)]?.label ?? endpoint.signature_method),
      fact("Endpoint id", h("span", { class: "inline" }, h("code", {}, endpoint.id),
        copyButton(() => endpoint.id, "Copy", "Copy endpoint id"))),
      fact("Created", time(endpoint.created_at)),
      fact("Health", healthWords(endpoint), { id: "health-detail" }),
      fact("Success rate", successRate(health)),
      disabled ? fact("Disabled", disabledWords(disabled), { wide: true, id: "disabled-detail" }) : null,
      endpoint.signature_method === "jwt" ? fact("Public keys", h("code", {}, jwksUrl())) : null,
      endpoint.signature_method === "jwt" ? fact("Token audience (aud)", h("code", {}, endpoint.id)) : null,
      endpoint.previous_secret_expires_at ? fact("Previous secret", ["Still signs beside the new one until ",
        time(endpoint.previous_secret_expires_at), " (", liveRelative(endpoint.previous_secret_expires_at), ")"],
      { wide: true }) : null,
      fact("In flight", flowWords(endpoint.flow), { id: "flow-detail" }),
      endpoint.flow.throttled_until ? fact("Throttled", throttleWords(endpoint.flow),
        { wide: true, id: "throttle-detail" }) : null,
      fact("Rate limit", endpoint.rate_limit_per_second === null
        ? `${endpoint.flow.rate_limit_per_second} deliveries per second (the service's maximum)`
        : `${endpoint.rate_limit_per_second} deliveries per second`, { id: "rate-limit" }),
      fact("Retry schedule", endpoint.retry_schedule
        ? `Its own: ${endpoint.retry_schedule.map((/** @type {number} */ s) => duration(s)).join(", ")}`
        : "The service's schedule", { id: "retry-schedule" }),
      fact("Delivery order", orderedWords(endpoint), { wide: true, id: "ordered-detail" }),
      fact("Custom headers", headers.length
        ? h("ul", { class: "tags" }, headers.map(([name, value]) => h("li", {}, h("code", {}, `${name}: ${value}`))))
        : "None", { wide: true, id: "custom-headers" }),
      fact("Events", endpoint.event_types === null ? "All events"
        : h("ul", { class: "tags", title: eventsSummary(endpoint) },
          endpoint.event_types.map((/** @type {string} */ t) => h("li", {}, h("code", {}, t)))), { wide: true })),
    manage ? h("div", { class: "actions", role: "group", "aria-label": "Endpoint actions" }, buttons)
      : readOnlyNote(),
    actionsStatus, panels, dialogs, laneSection(page, endpoint));
  if (manage) append(main, repairSection(page, endpoint, links));
  const history = h("div", {});
  append(main, h("section", { class: "history", "aria-labelledby": "history-title" },
    h("div", { class: "section-header" }, h("h2", { id: "history-title" }, "Event history")), history));
  if (created) {
    const heading = /** @type {HTMLElement} */ (main.querySelector("#created-title"));
    heading.focus({ preventScroll: true });
  } else {
    focusHeading();
  }
  await deliveryHistory(history, page, {
    endpointId,
    types,
    caption: "Events sent to this endpoint",
    empty: "No events sent to this endpoint yet. Events you emit appear here.",
  });
}

/** @param {any} endpoint */
function healthWords(endpoint) {
  const { health } = endpoint;
  if (!endpoint.enabled || health.state === "disabled") return "Disabled: it receives no events";
  if (health.state === "failing") {
    return [h("strong", {}, "Failing"), " since ", time(health.failing_since, { relative: true }), ". ",
      lastFailure(health), "."];
  }
  if (!health.last_attempt_at) return "Healthy: no attempt yet";
  return ["Healthy: last attempt ", time(health.last_attempt_at, { relative: true }), " succeeded"];
}

/**
 * Its attempts in flight now, across every worker, and its limit: lowered while it answers 429 or 503 or
 * times out, raised again as it answers 2xx.
 * @param {any} flow
 */
function flowWords(flow) {
  const now = `${flow.in_flight} of ${flow.concurrency_limit} at once`;
  if (!flow.lowered_by) return now;
  return [now, `: lowered from ${flow.max_concurrency} after `, h("code", {}, flow.lowered_by), " ",
    time(flow.lowered_at, { relative: true }), "; it rises again as the endpoint answers 2xx"];
}

/**
 * A Retry-After its receiver sent: every worker holds its deliveries until then.
 * @param {any} flow
 */
function throttleWords(flow) {
  return ["Its receiver asked us to wait (", h("code", {}, flow.throttle_reason ?? "Retry-After"),
    " with Retry-After): its deliveries wait until ", time(flow.throttled_until), " (",
    liveRelative(flow.throttled_until), "). A test event, or a manual retry of a delivery not already " +
    "waiting for it, goes now."];
}

/**
 * A signing secret as it is shown once: read-only, with what to do with it and a button that copies it.
 * @param {{id: string, label: string, secret: string, copy: string, helpId: string, help: string}} shown
 * @returns {HTMLElement[]}
 */
function shownOnce({ id, label, secret, copy, helpId, help }) {
  return [
    h("p", { id: helpId, class: "help" }, help),
    h("label", { for: id }, label),
    h("div", { class: "inline" },
      h("input", { id, type: "text", readonly: true, class: "mono", value: secret, "aria-describedby": helpId }),
      copyButton(() => secret, copy)),
  ];
}

/** What a new endpoint's receiver needs, shown once on its page (a reload does not show the secret). */
/** @param {any} endpoint */
function createdPanel(endpoint) {
  const n = endpoint.event_types?.length ?? 0;
  const to = endpoint.event_types === null ? "every event" : n === 1 ? `${endpoint.event_types[0]} events`
    : `events of ${n} types`;
  /** @type {HTMLElement[]} */
  const parts = [
    h("h2", { id: "created-title", tabindex: "-1" }, "Webhook added"),
    notice("success", h("p", {}, "From now on, ", to, endpoint.event_types === null ? " is" : " are", " sent to ", long("strong", endpoint.url, { class: "url" }), ".")),
  ];
  if (endpoint.secret) {
    parts.push(...shownOnce({
      id: "new-secret", label: "Secret", secret: endpoint.secret, copy: "Copy secret",
      helpId: "new-secret-help", help: "Your receiver verifies each request's webhook-signature with this " +
        "secret. Copy it now and keep it safe; you can reveal it again below.",
    }));
  } else {
    parts.push(
      h("p", {}, "Each request carries an RS256 token in x-webhook-signature. Your receiver verifies it with your " +
        "public keys, published at:"),
      h("div", { class: "inline" }, h("code", { class: "mono", id: "jwks-url" }, jwksUrl()),
        copyButton(jwksUrl, "Copy URL", "Copy the public keys' URL")),
      h("p", {}, "and refuses any token whose aud claim is not this endpoint's id: a token made for another " +
        "endpoint must not pass at yours."),
      h("div", { class: "inline" }, h("code", { class: "mono", id: "jwt-audience" }, endpoint.id),
        copyButton(() => endpoint.id, "Copy endpoint id")));
  }
  return h("section", { class: "card created", "aria-labelledby": "created-title" }, parts);
}

// ---- secret --------------------------------------------------------------------------------------

/**
 * @param {string} endpointId
 * @param {HTMLElement} panels
 */
function revealButton(endpointId, panels) {
  const box = h("div", { id: "secret-box" });
  panels.append(box);
  const reveal = h("button", { type: "button", class: "button", "aria-expanded": "false", "aria-controls": "secret-box" },
    "Reveal secret");
  reveal.addEventListener("click", async () => {
    if (reveal.getAttribute("aria-expanded") === "true") {
      fill(box);
      reveal.textContent = "Reveal secret";
      reveal.setAttribute("aria-expanded", "false");
      return;
    }
    try {
      const { secret } = await api.secret(endpointId);
      fill(box, h("div", { class: "card secret" },
        h("label", { for: "endpoint-secret" }, "Signing secret"),
        h("div", { class: "inline" },
          h("input", { id: "endpoint-secret", type: "text", readonly: true, class: "mono", value: secret }),
          copyButton(() => secret, "Copy secret"))));
      reveal.textContent = "Hide secret";
      reveal.setAttribute("aria-expanded", "true");
    } catch (err) {
      fill(box, notice("error", messageOf(err)));
    }
  });
  return reveal;
}

const GRACE = [[86400, "24 hours (the default)"], [3600, "1 hour"], [7 * 86400, "7 days"], [0, "No grace: at once"]];

/**
 * @param {any} endpoint
 * @param {HTMLElement} panels
 * @param {HTMLElement} dialogs
 */
function rotateButton(endpoint, panels, dialogs) {
  const box = h("div", { id: "rotated" });
  panels.append(box);
  const grace = h("select", { id: "rotate-grace", "aria-describedby": "rotate-grace-help" },
    GRACE.map(([seconds, text]) => h("option", { value: seconds }, text)));
  const dialog = confirmDialog({
    title: "Rotate the signing secret?",
    body: h("p", {}, "A new secret is made and shown once. For the grace period, every delivery carries two " +
      "signatures, the new secret's and the old one's, so your receiver keeps working while you switch it."),
    extra: h("div", { class: "field" }, h("label", { for: "rotate-grace" }, "Keep the old secret signing for"),
      grace, h("p", { id: "rotate-grace-help", class: "help" }, "After it, only the new secret signs.")),
    confirm: "Rotate secret",
    onConfirm: async () => {
      const rotated = await api.rotateSecret(endpoint.id, Number(grace.value));
      const until = rotated.previous_secret_expires_at;
      fill(box, h("section", { class: "card secret", "aria-labelledby": "rotated-title" },
        h("h2", { id: "rotated-title", tabindex: "-1" }, "New signing secret"),
        ...shownOnce({
          id: "rotated-secret", label: "New secret", secret: rotated.secret, copy: "Copy new secret",
          helpId: "rotated-help", help: "Shown once here (Reveal secret shows the current one later). Copy it " +
            "into your receiver's configuration.",
        }),
        until
          ? notice("info", h("p", { id: "rotated-grace" }, "Until ", time(until), " (", liveRelative(until),
            "), every delivery carries both signatures, v1,<new> v1,<old>: switch your receiver to the new " +
            "secret before then."))
          : notice("warning", h("p", { id: "rotated-grace" }, "The old secret no longer signs: deliveries from " +
            "now on verify with the new secret only."))));
      /** @type {HTMLElement} */ (box.querySelector("#rotated-title")).focus();
    },
  });
  dialogs.append(dialog);
  return h("button", { type: "button", class: "button", onclick: () => dialog.ask() }, "Rotate secret");
}

// ---- test events ---------------------------------------------------------------------------------

/**
 * @param {Page} page
 * @param {any} endpoint
 * @param {import("./api.js").EventType[]} types
 * @param {HTMLElement} panels
 */
function testButton(page, endpoint, types, panels) {
  const panel = h("section", { class: "card", id: "test-panel", hidden: true, "aria-labelledby": "test-title" });
  panels.append(panel);
  const button = h("button", { type: "button", class: "button", "aria-expanded": "false", "aria-controls": "test-panel",
    disabled: !endpoint.enabled, title: endpoint.enabled ? null : "Enable the endpoint to send it a test event" },
  "Send test event");
  const first = endpoint.event_types?.[0] ?? "invoice.created";
  const select = h("select", { id: "test-type", "aria-describedby": "test-help" },
    [...groupsOf(types)].map(([group, items]) => h("optgroup", { label: group },
      items.map((t) => h("option", { value: t.name }, t.name)))));
  select.value = first;
  const example = h("pre", { class: "code small-code", id: "test-example", tabindex: "0",
    "aria-label": "The example it carries" });
  const showExample = () => {
    const type = types.find((t) => t.name === select.value);
    example.textContent = JSON.stringify({ webhook_type: type?.name, object_type: type?.object_type,
      data: { object: type?.example } }, null, 2);
  };
  select.addEventListener("change", showExample);
  showExample();
  const result = h("div", { id: "test-result", role: "status", "aria-live": "polite" });
  const send = h("button", { type: "submit", class: "button button-primary" }, "Send test");
  const form = h("form", { class: "test-form" },
    h("div", { class: "field" }, h("label", { for: "test-type" }, "Type to send"), select,
      h("p", { id: "test-help", class: "help" }, "An example event of this type, to this endpoint alone: a " +
        "delivery like any other, signed and logged, whose id starts with test_ so that your receiver can " +
        "tell it from a real one.")),
    h("div", { class: "small muted" }, "The body sent"), example,
    h("div", { class: "actions" }, send));
  fill(panel, h("h2", { id: "test-title" }, "Send a test event"), form, result);
  button.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    button.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) select.focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    send.disabled = true;
    /** @param {"info" | "success" | "error" | "warning"} kind @param {...any} parts */
    const report = (kind, ...parts) => fill(result, notice(kind, h("p", {}, ...parts)));
    let accepted;
    try {
      accepted = await api.sendTest(endpoint.id, select.value);
    } catch (err) {
      send.disabled = false;
      if (err instanceof ApiError && err.status === 401) page.fail(err);
      else report("error", messageOf(err));
      return;
    }
    const link = () => h("a", { href: deliveryHref(accepted.delivery_id) }, "Open the test delivery");
    report("info", `Test event ${accepted.event_id} sent; waiting for your receiver's answer… `, link());
    const started = Date.now();
    const poll = async () => {
      try {
        const d = await api.delivery(accepted.delivery_id);
        const [attempt] = d.attempts;
        if (attempt) {
          send.disabled = false;
          const ok = attempt.status_code !== null && attempt.status_code >= 200 && attempt.status_code < 300;
          const answer = attempt.status_code === null ? (attempt.error ?? "no answer") : `HTTP ${attempt.status_code}`;
          if (ok) report("success", `Delivered: your receiver answered ${answer} in ${attempt.duration_ms} ms. `, link());
          else {
            report("error", `Not acknowledged: ${answer}. It is retried on the schedule like any delivery. `,
              link());
          }
          return;
        }
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          page.fail(err);
          return;
        }
      }
      if (Date.now() - started < 60000) page.later(poll, 1000);
      else {
        send.disabled = false;
        report("warning", "No attempt was made within a minute; the delivery's log will show it when it is. ",
          link());
      }
    };
    page.later(poll, 500);
  });
  return button;
}

// ---- recover and replay --------------------------------------------------------------------------

const KIND_WORDS = {
  recover: { button: "Recover failed since…", title: "Recover failed deliveries", start: "Start recovery",
    running: "Recovering failed deliveries", ended: "Recovery of failed deliveries",
    help: "Each failed delivery of this endpoint accepted in the window gets one attempt now (a delivery " +
      "whose retry window is over counts as expired)." },
  replay: { button: "Replay missed events", title: "Replay missed events", start: "Start replay",
    running: "Replaying missed events", ended: "Replay of missed events",
    help: "Every event of the window that this endpoint never received (it was disabled, created later, or " +
      "not subscribed then) is delivered to it now, of the types it subscribes to." },
};

/**
 * @param {Page} page
 * @param {any} endpoint
 * @param {boolean} links
 */
function repairSection(page, endpoint, links) {
  const section = h("section", { class: "repair", "aria-labelledby": "repair-title" },
    h("div", { class: "section-header" }, h("h2", { id: "repair-title" }, "Recover and replay")));
  if (!endpoint.enabled) {
    section.append(h("p", { class: "muted" }, "Enable the endpoint to recover its failed deliveries or replay " +
      "the events it missed while it was disabled."));
    return section;
  }
  const progress = h("div", { id: "recovery-progress" });
  const formBox = h("div", {});
  const buttons = /** @type {const} */ (["recover", "replay"]).map((kind) => {
    const button = h("button", { type: "button", class: "button", "data-kind": kind }, KIND_WORDS[kind].button);
    button.addEventListener("click", () => fill(formBox, recoveryForm(kind, start)));
    return button;
  });
  section.append(
    h("p", { class: "muted" }, "After fixing a broken receiver: send its failed deliveries again, or deliver " +
      "the events it never got. Paced so that your receiver is not flooded; one at a time per endpoint."),
    h("div", { class: "actions" }, buttons), formBox, progress);

  /**
   * @param {"recover" | "replay"} kind
   * @param {{since: string, until?: string}} window
   */
  async function start(kind, window) {
    const recovery = await api.startRecovery(endpoint.id, kind, window);
    fill(formBox);
    follow(recovery);
  }

  // One chain follows the recovery: each follow (or a Cancel on its way) takes the next turn, and a poll
  // that comes back after a newer turn began is dropped, so a late "running" never draws over "Canceling"
  // nor brings the Cancel button back, and two chains never poll side by side.
  let turn = 0;
  /** @type {import("./nav.js").Later | undefined} */
  let next;

  /** Stop following: what is waiting is canceled, what is on its way is dropped. */
  function stop() {
    turn += 1;
    page.cancel(next);
  }

  /** @param {any} recovery @param {string} [problem] */
  function follow(recovery, problem) {
    stop();
    const mine = turn;
    render(recovery, problem);
    if (recovery.status !== "running") return;
    next = page.later(async () => {
      try {
        const fresh = await api.recovery(endpoint.id, recovery.id);
        if (mine === turn) follow(fresh);
      } catch (err) {
        if (mine !== turn) return;
        if (err instanceof ApiError && err.status === 401) page.fail(err);
        else {
          render(recovery, messageOf(err));
          next = page.later(() => follow(recovery), 3000);
        }
      }
    }, 1000);
  }

  /** @param {any} r @param {string} [problem] */
  function render(r, problem) {
    const words = KIND_WORDS[/** @type {"recover" | "replay"} */ (r.kind)];
    const handled = r.total - r.left;
    const counts = [`${r.done} done`, `${r.failed} failed`, r.kind === "replay" ? `${r.skipped} skipped` : null,
      r.kind === "recover" ? `${r.expired} expired` : null, `${r.left} left`].filter(Boolean).join(" · ");
    const state = { running: r.cancel_requested ? "Canceling: the page in flight finishes" : "Running",
      completed: "Completed", canceled: "Canceled", failed: "Failed" }[/** @type {string} */ (r.status)] ?? r.status;
    const cancel = r.status === "running" && !r.cancel_requested
      ? h("button", { type: "button", class: "button button-small", id: "cancel-recovery" }, "Cancel")
      : null;
    cancel?.addEventListener("click", async () => {
      cancel.disabled = true;
      stop(); // a poll answered before the cancel was would draw "Running" and this button again
      try {
        follow(await api.cancelRecovery(endpoint.id, r.id));
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) page.fail(err);
        else follow(r, messageOf(err)); // not canceled: it goes on being followed, with the reason
      }
    });
    fill(progress, h("div", { class: "card recovery", "data-status": r.status },
      h("div", { class: "recovery-head" }, h("strong", {}, r.status === "running" ? words.running : words.ended), " ",
        h("span", { class: `badge badge-${r.status === "completed" ? "ok" : r.status === "running" ? "wait" : "neutral"}`,
          id: "recovery-status" }, state), cancel),
      h("progress", { max: Math.max(r.total, 1), value: r.total ? handled : 1, "aria-label": "Progress" }),
      h("p", { id: "recovery-counts" }, `${handled} of ${r.total}: ${counts}`),
      h("p", { class: "muted small" }, "Window: ", time(r.since), " to ", time(r.until), ". Started ",
        liveRelative(r.started_at), r.finished_at ? [", finished ", liveRelative(r.finished_at)] : null, ".",
        r.reason ? ` Stopped: ${r.reason}.` : ""),
      r.status !== "running" && r.done ? h("p", { class: "small" }, "Done means an attempt was made; the event " +
        "history below shows what your receiver answered.") : null,
      links && r.workflow_url ? h("p", { class: "small" }, h("a", { href: r.workflow_url, target: "_blank",
        rel: "noopener noreferrer" }, "This recovery in the Temporal Web UI")) : null,
      problem ? notice("error", problem) : null));
  }

  // A recovery already running (started here earlier, or by the CLI) is followed as soon as the page opens.
  // Unless one was started here before this answer came: that one is followed already, and newer.
  api.recoveries(endpoint.id).then((found) => {
    const [latest] = found.items;
    if (latest && latest.status === "running" && page.alive && turn === 0) follow(latest);
  }).catch(() => {});
  return section;
}

/**
 * @param {"recover" | "replay"} kind
 * @param {(kind: "recover" | "replay", window: {since: string, until?: string}) => Promise<void>} start
 */
function recoveryForm(kind, start) {
  const words = KIND_WORDS[kind];
  const since = h("input", { id: "recovery-since", type: "datetime-local", step: 60, required: true,
    "aria-describedby": "recovery-help" });
  const until = h("input", { id: "recovery-until", type: "datetime-local", step: 60, "aria-describedby": "recovery-help" });
  const dayAgo = new Date(Date.now() - 86400000);
  dayAgo.setSeconds(0, 0);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  since.value = `${dayAgo.getFullYear()}-${pad(dayAgo.getMonth() + 1)}-${pad(dayAgo.getDate())}` +
    `T${pad(dayAgo.getHours())}:${pad(dayAgo.getMinutes())}`;
  const error = h("div", {});
  const submit = h("button", { type: "submit", class: "button button-primary" }, words.start);
  const cancel = h("button", { type: "button", class: "button" }, "Cancel");
  const form = h("form", { class: "card recovery-form", "aria-labelledby": "recovery-title", novalidate: true },
    h("h3", { id: "recovery-title" }, words.title),
    h("p", { id: "recovery-help", class: "help" }, words.help, ` Times are in your time zone (${localZone()}); ` +
      "the window reaches back at most as far as the logs are kept."),
    h("div", { class: "filters" },
      h("div", { class: "field field-time" }, h("label", { for: "recovery-since" }, "Since"), since),
      h("div", { class: "field field-time" }, h("label", { for: "recovery-until" }, "Until ",
        h("span", { class: "muted" }, "(optional: now)")), until)),
    error,
    h("div", { class: "actions" }, submit, cancel));
  cancel.addEventListener("click", () => form.remove());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(error);
    const window = { since: isoOf(since.value), ...(until.value ? { until: isoOf(until.value) } : {}) };
    if (!window.since) {
      fill(error, notice("error", "Say since when."));
      since.focus();
      return;
    }
    submit.disabled = true;
    try {
      await start(kind, window);
    } catch (err) {
      submit.disabled = false;
      fill(error, notice("error", messageOf(err)));
    }
  });
  queueMicrotask(() => since.focus());
  return form;
}
