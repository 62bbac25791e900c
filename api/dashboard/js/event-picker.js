// @ts-check
// Choosing event types: 31 of them in 9 groups, plus the operational ones. A search box narrows them by
// name or description, each group folds away behind a toggle that selects the whole group, and each type
// shows the example object a test event of it carries and its JSON Schema (schema-view.js).

import { groupsOf } from "./api.js";
import { h, uid } from "./dom.js";
import { typeShape } from "./schema-view.js";

/** @param {number} n */
const showWords = (n) => `Show ${n} type${n === 1 ? "" : "s"}`;

/**
 * @param {import("./api.js").EventType[]} types
 * @param {Set<string>} chosen
 * @returns {{element: HTMLElement, selected: () => string[]}}
 */
export function eventPicker(types, chosen) {
  const search = h("input", { id: "event-search", type: "search", autocomplete: "off",
    placeholder: "invoice, payment, wallet…", "aria-describedby": "event-search-help" });
  const count = h("p", { id: "event-search-help", class: "help", role: "status", "aria-live": "polite" });
  /** @type {HTMLInputElement[]} */
  const boxes = [];
  /** @type {{fieldset: HTMLElement, items: {row: HTMLElement, text: string}[], open: (yes: boolean) => void,
   *   toggle: HTMLButtonElement}[]} */
  const groups = [];

  for (const [group, items] of groupsOf(types)) {
    const groupId = uid("group");
    const listId = uid("group-types");
    const mine = items.map((t) => {
      const box = h("input", { type: "checkbox", name: "event_types", value: t.name, id: `event-${t.name}`,
        checked: chosen.has(t.name), "aria-describedby": `event-${t.name}-help` });
      boxes.push(box);
      return box;
    });
    const whole = h("input", { type: "checkbox", id: groupId });
    const tally = h("span", { class: "muted small tally" });
    const sync = () => {
      const n = mine.filter((b) => b.checked).length;
      whole.checked = n === mine.length;
      whole.indeterminate = n > 0 && n < mine.length;
      tally.textContent = `${n} of ${mine.length}`;
    };
    whole.addEventListener("change", () => { for (const b of mine) b.checked = whole.checked; sync(); });
    for (const b of mine) b.addEventListener("change", sync);
    sync();
    const list = h("div", { class: "group-types", id: listId, hidden: true },
      items.map((t, i) => h("div", { class: "choice", "data-type": t.name }, mine[i],
        h("label", { for: `event-${t.name}` }, h("code", {}, t.name)),
        // Described by its description alone, not by an example or a schema opened below it.
        h("div", { class: "help" }, h("span", { id: `event-${t.name}-help` }, t.description), typeShape(t)))));
    const toggle = h("button", { type: "button", class: "button button-small button-quiet",
      "aria-expanded": "false", "aria-controls": listId }, showWords(items.length));
    const open = (/** @type {boolean} */ yes) => {
      list.hidden = !yes;
      toggle.setAttribute("aria-expanded", String(yes));
      toggle.textContent = yes ? (items.length === 1 ? "Hide type" : "Hide types") : showWords(items.length);
    };
    toggle.addEventListener("click", () => open(list.hidden));
    const label = group.toLowerCase().endsWith("events") ? group.toLowerCase() : `${group.toLowerCase()} events`;
    const fieldset = h("fieldset", { class: "event-group" },
      h("legend", { class: "visually-hidden" }, group),
      h("div", { class: "group-head" },
        h("div", { class: "choice choice-group" }, whole, h("label", { for: groupId }, `All ${label}`)),
        tally, toggle),
      // Not part of "All events": the service's own events about the endpoints, chosen by name.
      items.every((t) => t.operational) ? h("p", { class: "help" }, "Sent by the service about your " +
        "endpoints themselves (failing, recovered, disabled); not included in All events.") : null,
      list);
    groups.push({
      fieldset,
      toggle,
      open,
      items: items.map((t, i) => ({
        row: /** @type {HTMLElement} */ (list.children[i]),
        text: `${t.name} ${t.description} ${group}`.toLowerCase(),
      })),
    });
  }

  search.addEventListener("input", () => {
    const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const group of groups) {
      let any = false;
      for (const item of group.items) {
        const match = words.every((w) => item.text.includes(w));
        item.row.hidden = !match;
        any ||= match;
        if (match) shown += 1;
      }
      group.fieldset.hidden = !any;
      // A search opens the groups it found something in; clearing it folds them again.
      group.open(words.length > 0 && any);
    }
    count.textContent = words.length ? `${shown} type${shown === 1 ? "" : "s"} match` : "";
  });

  const element = h("div", { class: "event-picker" },
    h("div", { class: "field picker-search" },
      h("label", { for: "event-search" }, "Find event types"), search, count),
    h("div", { class: "event-groups", id: "event-groups" }, groups.map((g) => g.fieldset)));
  return { element, selected: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}
