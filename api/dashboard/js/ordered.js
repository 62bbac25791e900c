// @ts-check
// Ordered delivery (issue 21) where the endpoint is set up and described: the form's "Delivery order"
// choice (`ordered`, `ordered_on_failure`) and the words for it on the endpoint's page. The lanes
// themselves are lane.js.

import { h } from "./dom.js";

export const ON_FAILURE = {
  block: {
    label: "Block the lane",
    help: "The lane waits, other keys go on, until you retry the failed event and it succeeds, or skip it. " +
      "Your account is told with a webhook_endpoint.lane_blocked event.",
    words: "on failure the lane blocks until its event is retried or skipped by hand",
  },
  skip: {
    label: "Skip the event and go on",
    help: "The event stays failed and the next one of its key is sent: your receiver sees the gap in " +
      "webhook-sequence.",
    words: "on failure the event is skipped and the lane goes on",
  },
};

/**
 * The form's fieldset: deliver in order or not, and what a lane does when its head fails every attempt.
 * @param {{ordered?: boolean, ordered_on_failure?: string} | null} existing
 * @returns {{element: HTMLElement, error: HTMLElement,
 *   values: () => {ordered: boolean, ordered_on_failure: string}}}
 */
export function orderedFields(existing) {
  const ordered = h("input", { type: "checkbox", id: "endpoint-ordered", name: "ordered",
    checked: Boolean(existing?.ordered), "aria-describedby": "endpoint-ordered-help" });
  const current = existing?.ordered_on_failure ?? "block";
  const radios = Object.entries(ON_FAILURE).map(([value, info]) => {
    const id = `on-failure-${value}`;
    const input = h("input", { type: "radio", name: "ordered_on_failure", id, value, checked: value === current,
      "aria-describedby": `${id}-help` });
    return { input, row: h("div", { class: "choice" }, input, h("label", { for: id }, info.label),
      h("p", { id: `${id}-help`, class: "help" }, info.help)) };
  });
  const policy = h("fieldset", { class: "field nested", id: "on-failure" },
    h("legend", {}, "When an event fails every attempt"), radios.map((r) => r.row));
  const show = () => { policy.hidden = !ordered.checked; };
  ordered.addEventListener("change", show);
  show();
  const error = h("p", { id: "endpoint-ordered-error", class: "field-error", hidden: true });
  const element = h("fieldset", { class: "field", "aria-describedby": "endpoint-ordered-error" },
    h("legend", {}, "Delivery order"),
    h("div", { class: "choice" }, ordered, h("label", { for: "endpoint-ordered" }, "Deliver in order, per ordering key"),
      h("p", { id: "endpoint-ordered-help", class: "help" }, "Events with the same ordering_key are sent one at a " +
        "time, in the order they were emitted: the next only once your receiver acknowledged the one before. " +
        "Each carries a webhook-sequence header (1, 2, 3… per key) so that your receiver can spot a gap or a " +
        "repeat. Events without a key share one lane.")),
    policy, error);
  return {
    element,
    error,
    values: () => ({
      ordered: ordered.checked,
      ordered_on_failure: radios.find((r) => r.input.checked)?.input.value ?? "block",
    }),
  };
}

/**
 * The endpoint page's line: "In order per ordering key; on failure the lane blocks …", or not ordered.
 * @param {{ordered: boolean, ordered_on_failure: string}} endpoint
 */
export function orderedWords(endpoint) {
  if (!endpoint.ordered) return "Not ordered: each event is delivered on its own, retries may overtake";
  const policy = ON_FAILURE[/** @type {"block" | "skip"} */ (endpoint.ordered_on_failure)];
  return ["In order per ordering key, with webhook-sequence; ", h("span", { "data-policy": endpoint.ordered_on_failure },
    policy?.words ?? `on failure: ${endpoint.ordered_on_failure}`)];
}
