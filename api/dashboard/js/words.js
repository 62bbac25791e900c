// @ts-check
// The words the page uses for a delivery's and an endpoint's state: the API's own (pending, succeeded,
// failed; healthy, failing, disabled) said so that they do not mislead. A delivery whose attempts have
// failed so far and that will be tried again is "Failing", not "Pending"; an endpoint that fails every
// attempt is "Failing since …", never a green "Enabled".

import { badge, formatTime, h, liveRelative, relative, shortTime } from "./dom.js";

/** @param {number} n */
const attempts = (n) => `${n} attempt${n === 1 ? "" : "s"}`;

/**
 * A delivery's state in words: `{text, kind}` plus, while it waits, the time of its next attempt.
 * @param {{status: string, attempt_count: number, next_attempt_at?: string | null, attempt_in_progress?: any}} d
 */
export function deliveryState(d) {
  const n = d.attempt_count;
  switch (d.status) {
    case "succeeded":
      return { text: n > 1 ? `Succeeded after ${attempts(n)}` : "Succeeded", kind: "ok", next: null };
    case "failed":
      return { text: n ? `Failed after ${attempts(n)}` : "Failed", kind: "bad", next: null };
    case "scheduled":
      return { text: "Scheduled", kind: "wait", next: null };
    default:
      if (!n) return { text: "Sending", kind: "wait", next: null };
      if (d.next_attempt_at) return { text: "Failing", kind: "bad", next: d.next_attempt_at };
      return { text: `Failing · attempt ${n + 1} in progress`, kind: "bad", next: null };
  }
}

/**
 * The delivery's state as a badge: "Failing · next attempt in 6 seconds" keeps its countdown true.
 * @param {Parameters<typeof deliveryState>[0]} d
 */
export function deliveryBadge(d) {
  const { text, kind, next } = deliveryState(d);
  if (!next) return badge(text, kind);
  return h("span", { class: `badge badge-${kind}`, title: `Next attempt at ${formatTime(next)}` },
    `${text} · next attempt `, liveRelative(next, { ahead: true }));
}

/** @param {string} trigger */
export function triggerWords(trigger) {
  return { scheduled: "Scheduled", manual: "Manual retry", recover: "Recovery" }[trigger] ?? trigger;
}

/** @param {string} origin */
export function originWords(origin) {
  return { event: "Emitted event", test: "Test event", replay: "Replayed event" }[origin] ?? origin;
}

/**
 * @typedef {object} Health
 * @property {"healthy" | "failing" | "disabled"} state
 * @property {string | null} failing_since
 * @property {number} consecutive_failures
 * @property {string | null} last_error
 * @property {number | null} last_status_code
 * @property {string | null} last_attempt_at
 * @property {string | null} last_success_at
 * @property {number | null} success_rate_24h
 * @property {number} attempts_24h
 */

/**
 * @param {{enabled: boolean, health: Health, disabled: {reason: string, by: string, at: string} | null}} endpoint
 */
export function healthBadge(endpoint) {
  const { health, disabled } = endpoint;
  if (!endpoint.enabled || health.state === "disabled") {
    return badge("Disabled", "neutral", disabled ? disabledWords(disabled) : undefined);
  }
  if (health.state === "failing") {
    const since = health.failing_since;
    return badge(since ? `Failing since ${shortTime(since)}` : "Failing", "bad",
      since ? `Since ${formatTime(since)}. ${lastFailure(health)}` : lastFailure(health));
  }
  return badge(health.last_attempt_at ? "Healthy" : "Healthy · no attempt yet", "ok");
}

/** @param {{reason: string, by: string, at: string}} disabled */
export function disabledWords(disabled) {
  const who = disabled.by === "rule" ? "automatically, for failing every attempt"
    : disabled.by === "listen" ? "as its listen session ended" : "by hand";
  // The default reason of a disable by hand is "disabled by hand": said once, not twice.
  const reason = /^(disabled )?by hand$/i.test(disabled.reason.trim()) ? "" : `: ${disabled.reason}`;
  return `Disabled ${who} ${relative(disabled.at)} (${formatTime(disabled.at)})${reason}`;
}

/** @param {Health} health */
export function lastFailure(health) {
  const answer = health.last_status_code === null ? "no answer" : `HTTP ${health.last_status_code}`;
  const tries = `${health.consecutive_failures} failed attempt${health.consecutive_failures === 1 ? "" : "s"} in a row`;
  return `${tries}; last: ${answer}${health.last_error ? ` (${health.last_error})` : ""}`;
}

/** @param {Health} health */
export function successRate(health) {
  if (health.success_rate_24h === null || !health.attempts_24h) return "No attempts in the last 24 h";
  return `${Math.round(health.success_rate_24h * 1000) / 10} % of ${health.attempts_24h} attempts in the last 24 h`;
}

/** @param {number} seconds */
export function duration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 6) / 10} min`;
  if (seconds < 86400) return `${Math.round(seconds / 360) / 10} h`;
  return `${Math.round(seconds / 8640) / 10} days`;
}
