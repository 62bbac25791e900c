// @ts-check
// A confirmation that cannot be passed by accident: it opens with focus on Cancel, so Enter, Enter does
// nothing harmful; Escape cancels; the action's own button says what it does.

import { messageOf } from "./api.js";
import { fill, h, notice, uid } from "./dom.js";

/**
 * @param {object} options
 * @param {string} options.title
 * @param {any} options.body what happens, in words (nodes or text)
 * @param {string} options.confirm the action's button, e.g. "Delete endpoint"
 * @param {boolean} [options.danger]
 * @param {any} [options.extra] more fields (read by `onConfirm` itself)
 * @param {() => Promise<void>} options.onConfirm errors are shown in the dialog, which stays open
 * @returns {HTMLDialogElement & {ask: () => void}}
 */
export function confirmDialog({ title, body, confirm, danger = false, extra = null, onConfirm }) {
  const titleId = uid("dialog-title");
  const error = h("div", {});
  const go = h("button", { type: "button", class: `button ${danger ? "button-danger" : "button-primary"}` }, confirm);
  // Focused by `ask`, not by an autofocus attribute: a framed page (another product's) may not autofocus.
  const cancel = h("button", { type: "button", class: "button" }, "Cancel");
  const dialog = /** @type {any} */ (h("dialog",
    { class: "dialog", "aria-labelledby": titleId },
    h("h2", { id: titleId }, title),
    h("div", { class: "dialog-body" }, body),
    extra,
    error,
    h("div", { class: "actions" }, go, cancel)));
  cancel.addEventListener("click", () => dialog.close());
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      await onConfirm();
      dialog.close();
    } catch (err) {
      fill(error, notice("error", messageOf(err)));
    } finally {
      go.disabled = false;
    }
  });
  // Not `open`: that is the dialog element's own property, which shows it.
  dialog.ask = () => {
    fill(error);
    dialog.showModal();
    cancel.focus(); // showModal focused the first button, the dangerous one
  };
  return dialog;
}
