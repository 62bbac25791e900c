// @ts-check
// The HTTP API, called from this same origin with the credential the tab holds: the API key an operator
// signed in with, or a portal session token that the product embedding this page opened (POST
// /v1/portal/sessions). Either lives in sessionStorage: this tab only, gone when the tab closes.

const KEY = "flexprice.webhooks.apiKey";
const TOKEN = "flexprice.webhooks.sessionToken";
const TENANT = "flexprice.webhooks.tenant";
const ENDS = "flexprice.webhooks.sessionEnds";
const READ_ONLY = "flexprice.webhooks.readOnly";
const ENDED = "flexprice.webhooks.sessionEnded";
const LOOK = "flexprice.webhooks.sessionAppearance";

/**
 * A portal session's look, as the product that opened it asked (signed into its token; embed.js shows it).
 * @typedef {{title: string | null, accent_color: string | null, logo_url: string | null}} Appearance
 */
/**
 * @typedef {{tenant: string, scopes: string[],
 *   session: {id: string, expires_at: string, appearance?: Appearance | null} | null}} Me
 */

/**
 * The JSON value this tab keeps under `name`, or null (none kept, or not JSON).
 * @param {string} name
 * @returns {any}
 */
function storedJson(name) {
  try {
    return JSON.parse(sessionStorage.getItem(name) ?? "null");
  } catch {
    return null;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  get token() { return sessionStorage.getItem(TOKEN); },
  get tenant() { return sessionStorage.getItem(TENANT); },
  /** When the portal session ends (ISO), or null with an API key. */
  get endsAt() { return sessionStorage.getItem(ENDS); },
  /** A credential without the `manage` scope: it may look, not change (a read-only portal session). */
  get readOnly() { return sessionStorage.getItem(READ_ONLY) === "true"; },
  get signedIn() { return Boolean(this.key || this.token); },
  /**
   * The look of this tab's portal session (kept after it ends, for the page that says so), or null.
   * @returns {Appearance | null}
   */
  get appearance() { return storedJson(LOOK); },
  /** Inside a portal session, or on the page that says one ended: the product embedding it shows, not ours. */
  get portal() { return Boolean(this.token || this.ended); },
  /** How the last portal session of this tab ended (`{reason, detail, endsAt}`), until another begins. */
  get ended() { return storedJson(ENDED); },
  /**
   * @param {string} key
   * @param {Me} me
   */
  signIn(key, me) {
    this.signOut();
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(TENANT, me.tenant);
    sessionStorage.setItem(READ_ONLY, String(!me.scopes.includes("manage")));
  },
  /**
   * A portal session: its token now, what /v1/me says of it once known (`adopt`).
   * @param {string} token
   */
  begin(token) {
    this.signOut();
    sessionStorage.setItem(TOKEN, token);
  },
  /** @param {Me} me */
  adopt(me) {
    sessionStorage.setItem(TENANT, me.tenant);
    if (me.session) sessionStorage.setItem(ENDS, me.session.expires_at);
    sessionStorage.setItem(LOOK, JSON.stringify(me.session?.appearance ?? null));
    sessionStorage.setItem(READ_ONLY, String(!me.scopes.includes("manage")));
  },
  /**
   * @param {string} reason
   * @param {string | null} detail
   */
  end(reason, detail) {
    const endsAt = this.endsAt;
    const look = sessionStorage.getItem(LOOK);
    this.signOut();
    sessionStorage.setItem(ENDED, JSON.stringify({ reason, detail, endsAt }));
    if (look) sessionStorage.setItem(LOOK, look);
  },
  signOut() {
    for (const name of [KEY, TOKEN, TENANT, ENDS, READ_ONLY, ENDED, LOOK]) sessionStorage.removeItem(name);
  },
};

/**
 * What to tell the person about something thrown: an ApiError's message says what to do; anything else
 * is a fault of the page, said as one.
 * @param {unknown} err
 */
export function messageOf(err) {
  return err instanceof ApiError ? err.message : `Something went wrong: ${err}`;
}

export class ApiError extends Error {
  /**
   * @param {number} status 0 means the API could not be reached at all
   * @param {string} message
   * @param {any} detail
   */
  constructor(status, message, detail) {
    super(message);
    this.status = status;
    this.detail = detail;
  }

  /** The 422 field errors as `{field: message}`; `loc` is like `["body", "url"]`. */
  fieldErrors() {
    /** @type {Record<string, string>} */
    const errors = {};
    if (this.status !== 422 || !Array.isArray(this.detail)) return errors;
    for (const item of this.detail) {
      const loc = Array.isArray(item.loc) ? item.loc : [];
      const field = (loc[0] === "body" || loc[0] === "query") && loc.length > 1 ? String(loc[1]) : "_form";
      const text = String(item.msg ?? "is not valid").replace(/^Value error, /, "");
      errors[field] = errors[field] ? `${errors[field]}; ${text}` : text;
    }
    return errors;
  }
}

/**
 * @param {number} status
 * @param {any} detail
 * @param {string} method a GET reads: it changed nothing, whatever went wrong
 */
function describe(status, detail, method) {
  const said = typeof detail === "string" ? detail : "";
  const read = method === "GET";
  if (status === 503 && said.includes("endpoint store")) {
    return "The endpoint store cannot be reached right now; nothing changed. Try again in a moment.";
  }
  if (status === 503) {
    // The API answers 503 when it cannot reach Temporal, where every delivery log lives.
    const what = "Delivery logs, counts and retries are unavailable right now: the API cannot reach Temporal";
    // A read applies nothing; a change may have been applied before the answer was lost (the API says so).
    if (read) return `${what}. Nothing changed; try again in a moment. Endpoints can still be managed.`;
    return `${what}` + (said ? ` (it said: ${said})` : "") + ". Endpoints can still be managed. Try again in a moment.";
  }
  if (status === 401) return said && session.token ? said : "Your API key was not accepted.";
  if (status === 404) return said || "Not found.";
  if (status >= 500) return `The API failed (HTTP ${status})` + (said ? `: ${said}` : ".");
  if (said) return said;
  if (status === 422 && Array.isArray(detail)) {
    return detail.map((d) => String(d.msg ?? "").replace(/^Value error, /, "")).filter(Boolean).join("; ") ||
      "Some fields are not valid.";
  }
  return `The API answered HTTP ${status}.`;
}

// How long a request may go unanswered before the page says so and offers "Try again": the API answers
// within its own Temporal and store timeouts (5 s each), so silence this long means the API itself hangs.
export const ANSWER_WITHIN_MS = 10_000;

/**
 * @param {string} path
 * @param {{method?: string, body?: any, key?: string | null, token?: string | null}} [options]
 * @returns {Promise<any>}
 */
export async function call(path, { method = "GET", body, key = session.key, token = session.token } = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  if (key) headers["x-api-key"] = key;
  else if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), ANSWER_WITHIN_MS);
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal: timeout.signal,
    });
  } catch {
    clearTimeout(timer);
    if (timeout.signal.aborted) {
      const seconds = ANSWER_WITHIN_MS / 1000;
      throw new ApiError(0, method === "GET"
        ? `The API did not answer in ${seconds} seconds; nothing changed. Try again.`
        : `The API did not answer in ${seconds} seconds: what you asked may or may not have been done. ` +
          "Reload to see, then try again if needed.", { timeout: true });
    }
    throw new ApiError(
      0,
      `Cannot reach the API at ${location.origin}. Check that the service is running and that you are ` +
        "online, then try again.",
      null,
    );
  }
  let text;
  try {
    text = await response.text(); // the body is bounded by the same timeout as the headers
  } catch {
    throw new ApiError(0, `The API did not send its whole answer in ${ANSWER_WITHIN_MS / 1000} seconds. Try again.`,
      { timeout: true });
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && typeof data === "object" ? data.detail : null;
    throw new ApiError(response.status, describe(response.status, detail, method), detail);
  }
  return data;
}

const q = encodeURIComponent;
/** @param {string} id */
const endpointPath = (id) => `/v1/webhooks/endpoints/${q(id)}`;

/**
 * @typedef {object} DeliveryFilter
 * @property {string} [endpointId]
 * @property {string} [status]
 * @property {string} [eventType]
 * @property {string} [createdAfter] ISO time with its zone
 * @property {string} [createdBefore]
 * @property {string} [cursor]
 * @property {number} [limit]
 */

export const api = {
  /** @param {{key?: string}} [credential] */
  me: (credential = {}) => call("/v1/me", credential),
  eventTypes: () => call("/v1/webhooks/event-types"),
  endpoints: () => call("/v1/webhooks/endpoints"),
  /** @param {string} id */
  endpoint: (id) => call(endpointPath(id)),
  /** @param {object} body */
  createEndpoint: (body) => call("/v1/webhooks/endpoints", { method: "POST", body }),
  /** @param {string} id @param {object} body */
  updateEndpoint: (id, body) => call(endpointPath(id), { method: "PATCH", body }),
  /** @param {string} id */
  deleteEndpoint: (id) => call(endpointPath(id), { method: "DELETE" }),
  /** @param {string} id */
  secret: (id) => call(`${endpointPath(id)}/secret`),
  /** @param {string} id @param {number} graceSeconds */
  rotateSecret: (id, graceSeconds) =>
    call(`${endpointPath(id)}/secret/rotate`, { method: "POST", body: { grace_seconds: graceSeconds } }),
  /** @param {string} id @param {string} webhookType */
  sendTest: (id, webhookType) =>
    call(`${endpointPath(id)}/test`, { method: "POST", body: { webhook_type: webhookType } }),
  /** @param {string} id */
  stats: (id) => call(`${endpointPath(id)}/stats`),
  /** @param {string} id @param {string} after ISO @param {string} before ISO: the events accepted between */
  statsBetween: (id, after, before) => call(`${endpointPath(id)}/stats?` +
    new URLSearchParams({ created_after: after, created_before: before })),
  /** @param {string} id @param {"recover" | "replay"} kind @param {{since: string, until?: string}} body */
  startRecovery: (id, kind, body) => call(`${endpointPath(id)}/${kind}`, { method: "POST", body }),
  /** @param {string} id */
  recoveries: (id) => call(`${endpointPath(id)}/recoveries?limit=1`),
  /** @param {string} id @param {string} recoveryId */
  recovery: (id, recoveryId) => call(`${endpointPath(id)}/recoveries/${q(recoveryId)}`),
  /** @param {string} id @param {string} recoveryId */
  cancelRecovery: (id, recoveryId) =>
    call(`${endpointPath(id)}/recoveries/${q(recoveryId)}`, { method: "DELETE" }),
  /** @param {DeliveryFilter} [filter] */
  deliveries: ({ endpointId, status, eventType, createdAfter, createdBefore, cursor, limit = 25 } = {}) => {
    const params = new URLSearchParams({ limit: String(limit) });
    if (status) params.set("status", status);
    if (eventType) params.set("event_type", eventType);
    if (createdAfter) params.set("created_after", createdAfter);
    if (createdBefore) params.set("created_before", createdBefore);
    if (cursor) params.set("cursor", cursor);
    const base = endpointId ? `${endpointPath(endpointId)}/deliveries` : "/v1/webhooks/deliveries";
    return call(`${base}?${params}`);
  },
  /** @param {string} id */
  delivery: (id) => call(`/v1/webhooks/deliveries/${q(id)}`),
  /**
   * @param {string} id
   * @param {boolean} [bulk] one of many retries at once ("Retry all shown"): made after live deliveries
   * @param {number} [after] the last attempt whose answer the person has seen: never joined to it
   */
  retry: (id, bulk = false, after = undefined) => {
    const params = new URLSearchParams();
    if (bulk) params.set("bulk", "true");
    if (after !== undefined) params.set("after", String(after));
    const query = String(params);
    return call(`/v1/webhooks/deliveries/${q(id)}/retry${query ? `?${query}` : ""}`, { method: "POST" });
  },
  /** @param {string} id */
  event: (id) => call(`/v1/events/${q(id)}`),
};

/**
 * @typedef {{name: string, object_type: string, description: string, group: string, operational: boolean,
 *   example: object}} EventType
 */

/** @type {Promise<EventType[]> | null} */
let catalog = null;

/** The event catalog, fetched once per page load. */
export async function eventTypes() {
  if (!catalog) {
    catalog = api.eventTypes().then((r) => r.items).catch((err) => { catalog = null; throw err; });
  }
  return catalog;
}

/**
 * @param {EventType[]} types
 * @returns {Map<string, EventType[]>}
 */
export function groupsOf(types) {
  const groups = new Map();
  for (const t of types) {
    if (!groups.has(t.group)) groups.set(t.group, []);
    groups.get(t.group).push(t);
  }
  return groups;
}
