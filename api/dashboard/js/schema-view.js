// @ts-check
// An event type's shape where types are picked (issue 22): its example object, and its JSON Schema
// (2020-12, the whole body a receiver gets) from `GET /v1/webhooks/event-types/{name}`, fetched when first
// opened. The schema reads as a list of `data.object`'s fields (type, format, required), objects and
// arrays folded inside, then the whole schema as JSON to copy into a code generator. Monospace, folded,
// and wrapped: nothing is wider than a phone.

import { ApiError, call, messageOf } from "./api.js";
import { copyButton, fill, h } from "./dom.js";

/** @type {Map<string, Promise<any>>} */
const details = new Map();

/** @param {string} name */
function eventType(name) {
  let found = details.get(name);
  if (!found) {
    found = call(`/v1/webhooks/event-types/${encodeURIComponent(name)}`);
    found.catch(() => details.delete(name)); // tried again when opened again
    details.set(name, found);
  }
  return found;
}

/**
 * "string, date-time", "integer", "one of: a, b", "array of object".
 * @param {any} schema
 * @returns {string}
 */
function typeWords(schema) {
  if (!schema || typeof schema !== "object") return "any";
  if ("const" in schema) return `always ${JSON.stringify(schema.const)}`;
  if (Array.isArray(schema.enum)) return `one of: ${schema.enum.map((/** @type {any} */ v) => JSON.stringify(v)).join(", ")}`;
  const types = [schema.type ?? (schema.properties ? "object" : "any")].flat();
  let words = types.join(" or ");
  if (types.includes("array")) words = words.replace("array", `array of ${typeWords(schema.items)}`);
  return schema.format ? `${words}, ${schema.format}` : words;
}

/**
 * One field, and the fields inside it (an object's, an array's items') folded away.
 * @param {string} name
 * @param {any} schema
 * @param {boolean} required
 * @returns {HTMLElement}
 */
function field(name, schema, required) {
  const inner = schema?.properties ? schema : schema?.items?.properties ? schema.items : null;
  const head = [h("code", { class: "schema-name" }, name), " ", h("span", { class: "schema-type" }, typeWords(schema)),
    required ? h("span", { class: "schema-required" }, " · required") : null,
    schema?.description ? h("span", { class: "muted" }, ` · ${schema.description}`) : null];
  if (!inner) return h("li", { "data-field": name }, head);
  return h("li", { "data-field": name }, h("details", {}, h("summary", {}, head), fields(inner)));
}

/** @param {any} schema an object's schema */
function fields(schema) {
  const required = new Set(schema.required ?? []);
  const entries = Object.entries(schema.properties ?? {});
  if (!entries.length) return h("p", { class: "muted small" }, "Any fields.");
  return h("ul", { class: "schema-fields" }, entries.map(([name, sub]) => field(name, sub, required.has(name))));
}

/**
 * @param {HTMLElement} box
 * @param {any} type the API's event type, with `schema`
 */
function showSchema(box, type) {
  const schema = type.schema;
  const object = schema?.properties?.data?.properties?.object;
  const text = JSON.stringify(schema, null, 2);
  fill(box,
    h("p", { class: "small" }, "The body is ", h("code", {}, `{"webhook_type": "${type.name}", "object_type": ` +
      `"${type.object_type}", "data": {"object": …}}`), "; data.object's fields:"),
    object ? fields(object) : h("p", { class: "muted small" }, "No fields described."),
    h("details", { class: "schema-json" }, h("summary", {}, "JSON Schema (2020-12)"),
      h("div", { class: "code-tools" }, copyButton(() => text, "Copy schema", `Copy the JSON Schema of ${type.name}`)),
      h("pre", { class: "code small-code", tabindex: "0", "aria-label": `JSON Schema of ${type.name}` }, text)));
}

/**
 * A type's example and schema, each folded behind its summary.
 * @param {import("./api.js").EventType} type
 */
export function typeShape(type) {
  const box = h("div", { class: "schema-box", "aria-live": "polite" });
  const schema = h("details", { class: "schema", "data-schema": type.name },
    h("summary", {}, "Schema"), box);
  let asked = false;
  schema.addEventListener("toggle", async () => {
    if (!schema.open || asked) return;
    asked = true;
    fill(box, h("p", { class: "muted small" }, "Loading the schema…"));
    try {
      showSchema(box, await eventType(type.name));
    } catch (err) {
      asked = false; // opened again, it is asked again
      if (err instanceof ApiError && err.status === 401) {
        fill(box, h("p", { class: "field-error" }, messageOf(err)));
        return;
      }
      fill(box, h("p", { class: "field-error" }, `Could not load the schema: ${messageOf(err)} Close and open ` +
        "it to try again."));
    }
  });
  return [
    h("details", { class: "example" }, h("summary", {}, "Example"),
      h("pre", { class: "code small-code" }, JSON.stringify(type.example, null, 2))),
    schema,
  ];
}
