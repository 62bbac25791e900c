"""Request and response bodies of the HTTP API (`XCreate`, `XUpdate`, `XPublic`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from core.sessions import MAX_SESSION_SECONDS
from domain import ids
from domain.access import Scope
from domain.alerts import MAX_ALERT_EMAILS, check_alert_emails
from domain.appearance import (
    MAX_LOGO_URL,
    MAX_TITLE,
    Appearance,
    check_accent_color,
    check_logo_url,
    check_title,
)
from domain.catalog import EVENT_TYPES_BY_NAME, SUBSCRIBABLE_BY_NAME, EventType, unknown_event_types
from domain.endpoint_headers import HeaderSetting, check_changes, is_secret, shown
from domain.models import (
    AttemptTrigger,
    DeliveryOrigin,
    DeliveryStatus,
    LaneView,
    OrderedOnFailure,
    RecoveryKind,
    RecoveryStatus,
    SignatureMethod,
)
from service.models import (
    AcceptedEvent,
    DeliveryCounts,
    DeliveryLog,
    DeliveryPage,
    DeliverySummary,
    EndpointView,
    EventListed,
    EventPage,
    EventSubmission,
    EventView,
    RecoveryView,
    RecoveryViewPage,
    SentTestEvent,
)
from store.health import Health

# Matched whole (fullmatch): with `re.match` and `$`, "abc\n" passed, then failed every attempt.
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
# An ordering key: printable ASCII (space to tilde), as ids of customers and subscriptions are everywhere.
_ORDERING_KEY = re.compile(r"[\x20-\x7e]{1,128}")
# The schema documents what the validators below accept (their messages are ours, not pydantic's).
_EVENT_TYPE_ENUM: JsonDict = {"enum": [*sorted(EVENT_TYPES_BY_NAME)]}
# An endpoint may also subscribe to the operational types, which only the service sends.
_SUBSCRIBABLE_ENUM: JsonDict = {"enum": [*sorted(SUBSCRIBABLE_BY_NAME)]}
EventTypeName = Annotated[str, Field(json_schema_extra=_SUBSCRIBABLE_ENUM)]

Source = TypeVar("Source")


class FromDomain(BaseModel, Generic[Source]):
    """A response made field by field, by name, from the service's `Source` (an enum by its value)."""

    @classmethod
    def of(cls, value: Source) -> Self:
        return cls.model_validate(value, from_attributes=True)


def _check_event_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if not value:
        raise ValueError(
            "event_types must name at least one event type, or be null for every event type (the "
            "operational webhook_endpoint.* types are received only when named)"
        )
    unknown = unknown_event_types(value)
    if unknown:
        raise ValueError(
            f"unknown event types: {', '.join(unknown)}; GET /v1/webhooks/event-types lists them"
        )
    return list(dict.fromkeys(value))


def _check_description(value: str | None) -> str | None:
    # PostgreSQL's text cannot hold NUL, and no description needs one.
    if value is not None and "\x00" in value:
        raise ValueError("description must not contain NUL (\\u0000) characters")
    return value


class ErrorPublic(BaseModel):
    detail: str = Field(description="What was wrong, and what to do about it")


class AppearancePublic(BaseModel):
    """A portal session's look inside the product that embeds the dashboard; each part optional."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(
        default=None,
        max_length=10 * MAX_TITLE,  # the validator's own message says the limit; this bounds the work
        description=f"Shown at the top of the page and in the tab's title: plain text, one line, 1 to "
        f"{MAX_TITLE} characters, no < or >",
        examples=["Acme Billing webhooks"],
    )
    accent_color: str | None = Field(
        default=None,
        description="The colour of buttons, links and the current tab: #rrggbb",
        json_schema_extra={"pattern": "^#[0-9a-fA-F]{6}$"},
        examples=["#0f9d58"],
    )
    logo_url: str | None = Field(
        default=None,
        description=f"An image shown beside the title: an https URL (http only on 127.0.0.1 or localhost, "
        f"for development) of at most {MAX_LOGO_URL} characters, served from an origin listed in "
        "WEBHOOKS_PORTAL_FRAME_ANCESTORS (the dashboard's Content-Security-Policy allows images from those)",
        examples=["https://app.example.com/static/logo.svg"],
    )

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else check_title(value)

    @field_validator("accent_color")
    @classmethod
    def _accent(cls, value: str | None) -> str | None:
        return None if value is None else check_accent_color(value)

    @field_validator("logo_url")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        return None if value is None else check_logo_url(value)

    def to_domain(self) -> Appearance:
        return Appearance(title=self.title, accent_color=self.accent_color, logo_url=self.logo_url)

    @classmethod
    def of(cls, appearance: Appearance | None) -> AppearancePublic | None:
        if appearance is None:
            return None
        return cls(title=appearance.title, accent_color=appearance.accent_color, logo_url=appearance.logo_url)


class SessionPublic(BaseModel):
    id: str
    expires_at: datetime
    appearance: AppearancePublic | None = Field(
        default=None, description="The look the product that opened this session asked for, or null"
    )


class MePublic(BaseModel):
    tenant: str
    jwks_path: str = Field(
        description="Where receivers of your jwt endpoints fetch your public keys (no API key needed)"
    )
    scopes: list[Scope] = Field(description="What this credential may do: emit, read, manage, portal")
    session: SessionPublic | None = Field(
        default=None, description="The portal session this request was made with, or null for an API key"
    )


class PortalSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SESSION_SECONDS,
        description="Seconds the session lasts; default WEBHOOKS_PORTAL_SESSION_SECONDS (an hour)",
    )
    read_only: bool = Field(
        default=False, description="Reading only: no change to endpoints, no secrets, no retries"
    )
    appearance: AppearancePublic | None = Field(
        default=None,
        description="White-label: the title, accent colour and logo the dashboard shows in this session "
        "instead of its own brand (GET /v1/me gives them to the page); null for the dashboard's own look",
    )


class PortalSessionPublic(BaseModel):
    id: str = Field(description="What DELETE /v1/portal/sessions/{id} revokes it by")
    token: str = Field(description="Send as Authorization: Bearer <token>; shown only here")
    url: str = Field(description="The dashboard, signed in with this session (the token in its fragment)")
    expires_at: datetime
    read_only: bool
    appearance: AppearancePublic | None = Field(description="The look asked for, as it was accepted")


class EventTypePublic(FromDomain[EventType]):
    name: str
    object_type: str
    description: str
    group: str
    operational: bool = Field(
        description="Sent by the service about your endpoints, never emitted; received only when named"
    )
    example: dict[str, Any] = Field(
        description="An example `data.object` of this type: what a test event of it carries"
    )


class EventTypeDetail(EventTypePublic):
    schema_: dict[str, Any] = Field(
        alias="schema",
        description="JSON Schema (2020-12) of the whole body a receiver gets for this type",
    )

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class EventTypeList(BaseModel):
    items: list[EventTypePublic]


class HeaderIn(BaseModel):
    """A custom header with its mark: `{"value": "…", "secret": true}` is shown masked by the API,
    `"secret": false` unmarks it; without `secret` a header keeps the mark it had (a new one: none)."""

    model_config = ConfigDict(extra="forbid")

    value: str
    secret: bool | None = None


HeaderValue = str | HeaderIn


def header_settings(value: dict[str, HeaderValue | None]) -> dict[str, HeaderSetting | None]:
    """Headers as given (a plain value, or one with its mark; None: remove it) as the store takes them."""
    return {
        name: None
        if given is None
        else HeaderSetting(given)
        if isinstance(given, str)
        else HeaderSetting(given.value, given.secret)
        for name, given in value.items()
    }


def _check_headers(value: dict[str, HeaderValue | None] | None) -> dict[str, HeaderValue | None] | None:
    if value is not None:
        check_changes(header_settings(value))
    return value


def _check_alert_emails(value: list[str] | None) -> list[str] | None:
    return check_alert_emails(value) if value is not None else None


ALERT_EMAILS_TEXT = (
    f"Addresses mailed when the endpoint starts failing, is disabled or recovers (one mail per change; "
    f"docs/delivery.md, 'Alert mails'), at most {MAX_ALERT_EMAILS}, like ops@acme.com"
)


def _check_schedule(value: list[float] | None) -> list[float] | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_SCHEDULE_STEPS:
        raise ValueError(f"retry_schedule must have 1 to {MAX_SCHEDULE_STEPS} delays, or be null")
    if any(not 0 < delay <= MAX_DELAY_SECONDS for delay in value):
        raise ValueError(
            f"each delay of retry_schedule must be more than 0 and at most {MAX_DELAY_SECONDS} s"
        )
    return value


MAX_SCHEDULE_STEPS = 20
MAX_DELAY_SECONDS = 7 * 86400
HEADERS_FIELD = Field(
    default=None,
    description="Headers sent with every attempt (e.g. a gateway's Authorization), `{name: value}` or "
    '`{name: {"value": …, "secret": true}}`; a secret value, or one of a header named like a credential '
    "(Authorization, Cookie, *-Token, *-Key, *-Secret), is shown masked. Ours always win: signature, "
    "content type, user agent and HTTP's own names are refused",
)
HEADERS_PATCH_FIELD = Field(
    default=None,
    description="Changes to the headers, one by one: a name with a value (or `{value, secret}`) sets that "
    'header, a name with null removes it, the others stay; `"headers": null` removes them all',
)
RATE_FIELD = Field(
    default=None,
    # Six a minute at least: a slower endpoint is better disabled until it can take its deliveries.
    ge=0.1,
    le=10_000,
    description="At most this many deliveries a second to this endpoint, across every worker "
    "(plus one of burst), from 0.1 to the server's maximum (WEBHOOKS_ENDPOINT_MAX_RATE, 100 by default); "
    "null for that maximum",
)
ORDERED_TEXT = (
    "Deliver this endpoint's events one at a time per `ordering_key`, in the order their 202s "
    "were given, each with a `webhook-sequence` header (1, 2, … per key); false by default. Made false, "
    'its lanes still deliver what they hold, in order (docs/delivery.md, "Ordered delivery")'
)
ON_FAILURE_TEXT = (
    "When an ordered lane's head fails every attempt: `block` (the default: the lane waits until it is "
    "retried by hand and succeeds, or skipped by hand; other keys go on; the tenant is told with "
    "`webhook_endpoint.lane_blocked`) or `skip` (it stays failed, and the lane goes on). A head failed "
    "because the endpoint is disabled holds the lane either way"
)
SCHEDULE_FIELD = Field(
    default=None,
    description="Seconds between attempts for this endpoint's deliveries (each with ±20 % jitter); null "
    "for the service's schedule",
)


class _EndpointChecks(BaseModel):
    """What an endpoint's create and update both check, the same way."""

    model_config = ConfigDict(extra="forbid")

    # Declared by each subclass (its own types and defaults), so not checked for here.
    _event_types = field_validator("event_types", check_fields=False)(_check_event_types)
    _description = field_validator("description", check_fields=False)(_check_description)
    _headers = field_validator("headers", check_fields=False)(_check_headers)
    _schedule = field_validator("retry_schedule", check_fields=False)(_check_schedule)
    _alert_emails = field_validator("alert_emails", check_fields=False)(_check_alert_emails)


class EndpointCreate(_EndpointChecks):
    url: str = Field(max_length=2048, examples=["https://example.com/webhooks/flexprice"])
    signature_method: SignatureMethod = SignatureMethod.HMAC
    event_types: list[EventTypeName] | None = Field(
        default=None, description="Event types to receive; null for every type"
    )
    description: str = Field(default="", max_length=1024)
    enabled: bool = True
    headers: dict[str, HeaderValue] | None = HEADERS_FIELD
    rate_limit_per_second: float | None = RATE_FIELD
    retry_schedule: list[float] | None = SCHEDULE_FIELD
    ordered: bool = Field(default=False, description=ORDERED_TEXT)
    ordered_on_failure: OrderedOnFailure = Field(default=OrderedOnFailure.BLOCK, description=ON_FAILURE_TEXT)
    alert_emails: list[str] = Field(default_factory=list, description=ALERT_EMAILS_TEXT)

    def fields(self) -> dict[str, Any]:
        """What the endpoint store's `create` takes: the headers' values, and the names marked secret."""
        settings = header_settings(dict(self.headers or {}))
        return {
            **self.model_dump(exclude={"headers"}),
            "headers": {n: h.value for n, h in settings.items() if h is not None} or None,
            "secret_headers": [n for n, h in settings.items() if h is not None and h.secret],
        }


class EndpointUpdate(_EndpointChecks):
    url: str | None = Field(default=None, max_length=2048)
    signature_method: SignatureMethod | None = None
    event_types: list[EventTypeName] | None = None
    description: str | None = Field(default=None, max_length=1024)
    enabled: bool | None = None
    headers: dict[str, HeaderValue | None] | None = HEADERS_PATCH_FIELD
    rate_limit_per_second: float | None = RATE_FIELD
    retry_schedule: list[float] | None = SCHEDULE_FIELD
    ordered: bool | None = Field(default=None, description=ORDERED_TEXT)
    ordered_on_failure: OrderedOnFailure | None = Field(default=None, description=ON_FAILURE_TEXT)
    alert_emails: list[str] | None = Field(
        default=None, description=ALERT_EMAILS_TEXT + "; [] or null for none"
    )

    def changes(self) -> dict[str, Any]:
        """The fields a PATCH named, as the service takes them: headers as changes one by one
        (`header_changes`), or `headers: None` to remove them all."""
        changes = {name: getattr(self, name) for name in self.model_fields_set}
        if changes.get("headers") is not None:
            changes["header_changes"] = header_settings(changes.pop("headers"))
        return changes


class EndpointHealthPublic(BaseModel):
    state: Literal["healthy", "failing", "disabled"] = Field(
        description="`failing` since the first failed attempt after a success; `disabled` by a person or "
        "for failing every attempt for WEBHOOKS_DISABLE_AFTER"
    )
    failing_since: datetime | None
    consecutive_failures: int
    last_error: str | None
    last_status_code: int | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    success_rate_24h: float | None = Field(description="Share of the last 24 h's attempts that got a 2xx")
    attempts_24h: int

    @classmethod
    def of(cls, health: Health) -> EndpointHealthPublic:
        return cls(
            state=health.state.value,
            failing_since=health.failing_since,
            consecutive_failures=health.consecutive_failures,
            last_error=health.last_error,
            last_status_code=health.last_status_code,
            last_attempt_at=health.last_attempt_at,
            last_success_at=health.last_success_at,
            success_rate_24h=health.success_rate_24h,
            attempts_24h=health.succeeded_24h + health.failed_24h,
        )


class EndpointFlowPublic(BaseModel):
    """How deliveries to the endpoint flow now, across every worker (docs/delivery.md, "Fairness and
    limits")."""

    in_flight: int = Field(description="Attempts in flight to it now")
    concurrency_limit: int = Field(
        description="Attempts it may have in flight now: `max_concurrency`, lowered while it answers 429 or "
        "503 or times out, raised again as it answers 2xx"
    )
    max_concurrency: int = Field(
        description="The most it may ever have in flight (WEBHOOKS_ENDPOINT_CONCURRENCY)"
    )
    lowered_by: str | None = Field(description="The answer that last lowered its limit, while it is lowered")
    lowered_at: datetime | None
    throttled_until: datetime | None = Field(
        description="Until when its receiver asked us to wait (`Retry-After`): its deliveries wait until "
        "then, but a manual retry or a test event"
    )
    throttle_reason: str | None
    rate_limit_per_second: float = Field(
        description="Deliveries a second at most: its own limit, or the server's maximum "
        "(WEBHOOKS_ENDPOINT_MAX_RATE)"
    )

    @classmethod
    def of(cls, view: EndpointView) -> EndpointFlowPublic:
        flow = view.flow
        return cls(
            in_flight=flow.in_flight,
            concurrency_limit=flow.limit,
            max_concurrency=flow.max_limit,
            lowered_by=flow.lowered_by,
            lowered_at=flow.lowered_at,
            throttled_until=flow.paused_until,
            throttle_reason=flow.pause_reason,
            rate_limit_per_second=view.rate_limit,
        )


class EndpointDisabledPublic(BaseModel):
    reason: str
    by: Literal["api", "rule", "listen"] = Field(
        description="`api`: disabled by hand; `rule`: for failing; `listen`: its listen session ended"
    )
    at: datetime


class EndpointPublic(BaseModel):
    id: str
    url: str
    signature_method: SignatureMethod
    event_types: list[str] | None
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    headers: dict[str, str] = Field(
        description="Each custom header's value, masked for one marked secret or named like a credential"
    )
    secret_headers: list[str] = Field(description="The headers whose values are shown masked")
    rate_limit_per_second: float | None
    retry_schedule: list[float] | None
    ordered: bool = Field(description=ORDERED_TEXT)
    ordered_on_failure: OrderedOnFailure = Field(description=ON_FAILURE_TEXT)
    alert_emails: list[str] = Field(description=ALERT_EMAILS_TEXT)
    previous_secret_expires_at: datetime | None = Field(
        description="During a secret's rotation: until when the previous secret signs too"
    )
    disabled: EndpointDisabledPublic | None
    health: EndpointHealthPublic
    flow: EndpointFlowPublic

    @classmethod
    def of(cls, view: EndpointView) -> EndpointPublic:
        endpoint = view.endpoint
        disabled = endpoint.disabled
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            signature_method=endpoint.signature_method,
            event_types=endpoint.event_types,
            description=endpoint.description,
            enabled=endpoint.enabled,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
            headers={n: shown(n, v, endpoint.secret_headers) for n, v in endpoint.headers.items()},
            secret_headers=[n for n in endpoint.headers if is_secret(n, endpoint.secret_headers)],
            rate_limit_per_second=endpoint.rate_limit_per_second,
            retry_schedule=endpoint.retry_schedule,
            ordered=endpoint.ordered,
            ordered_on_failure=endpoint.ordered_on_failure,
            alert_emails=endpoint.alert_emails,
            previous_secret_expires_at=endpoint.previous_secret_expires_at
            if len(endpoint.signing_secrets(view.now)) > 1
            else None,
            disabled=EndpointDisabledPublic(reason=disabled.reason, by=disabled.by, at=disabled.at)
            if disabled
            else None,
            health=EndpointHealthPublic.of(view.health),
            flow=EndpointFlowPublic.of(view),
        )


class EndpointCreated(EndpointPublic):
    secret: str | None = Field(description="The signing secret (hmac endpoints only)")


class EndpointList(BaseModel):
    items: list[EndpointPublic]


class EndpointSecret(BaseModel):
    secret: str


class SecretRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        default=86400,
        ge=0,
        le=7 * 86400,
        description="How long the previous secret keeps signing beside the new one (default 24 h)",
    )
    secret: str | None = Field(
        default=None,
        description="A secret of your own (`whsec_` and base64 of 24 to 64 bytes), e.g. one migrated "
        "from another provider; else a new one is made",
    )


class SecretRotated(BaseModel):
    secret: str = Field(description="The new secret: shown once here, and by GET …/secret")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when deliveries carry the previous secret's signature too"
    )


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: dict[str, Any] = Field(description="The object the event is about")


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_type: str = Field(examples=["invoice.created"], json_schema_extra=_EVENT_TYPE_ENUM)
    object_type: str | None = Field(
        default=None, description="Optional; when given it must match the type (the part before the dot)"
    )
    data: EventData
    id: str | None = Field(
        default=None,
        description="Idempotency key: the same id twice is one event. Letters, digits, '_', '-', '.'",
        max_length=128,
        json_schema_extra={"pattern": f"^{_EVENT_ID.pattern}$"},
    )
    ordering_key: str | None = Field(
        default=None,
        description="On ordered endpoints, events with the same key are delivered one at a time, in the "
        "order of their 202s (e.g. a customer or subscription id); events without one share the "
        "endpoint's default lane. 1 to 128 printable ASCII characters",
        examples=["cus_8a3f"],
    )

    @field_validator("webhook_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value in SUBSCRIBABLE_BY_NAME and value not in EVENT_TYPES_BY_NAME:
            raise ValueError(
                f"{value} is sent by the service itself about your endpoints; it cannot be emitted"
            )
        if value not in EVENT_TYPES_BY_NAME:
            raise ValueError(
                f"unknown webhook_type {value!r}; GET /v1/webhooks/event-types lists the 31 types"
            )
        return value

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str | None) -> str | None:
        if value is not None and not _EVENT_ID.fullmatch(value):
            raise ValueError("id must be 1-128 letters, digits, '_', '-' or '.', starting alphanumeric")
        if value is not None and ids.is_test_event_id(value):
            raise ValueError(
                f"ids starting with {ids.TEST_EVENT_PREFIX!r} are reserved for test events, which receivers "
                "tell apart by it; choose another id"
            )
        return value

    @field_validator("ordering_key")
    @classmethod
    def _ordering_key_format(cls, value: str | None) -> str | None:
        if value is None or _ORDERING_KEY.fullmatch(value):
            return value
        if not value or len(value) > 128:
            raise ValueError(f"ordering_key must be 1 to 128 characters long, not {len(value)}")
        bad = next(c for c in value if not _ORDERING_KEY.fullmatch(c))
        raise ValueError(
            f"ordering_key must be printable ASCII (space to '~'); it holds {bad!r} at position "
            f"{value.index(bad)}: use an id such as a customer's or a subscription's"
        )

    def submission(self) -> EventSubmission:
        return EventSubmission(
            webhook_type=self.webhook_type,
            object=self.data.object,
            object_type=self.object_type,
            id=self.id,
            ordering_key=self.ordering_key,
        )


class EndpointTestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_type: str | None = Field(
        default=None,
        examples=["invoice.created"],
        description="The type to send an example of, any of the catalog's, subscribed or not; by default "
        "the first type the endpoint subscribes to, or invoice.created",
        json_schema_extra=_SUBSCRIBABLE_ENUM,
    )
    object: dict[str, Any] | None = Field(
        default=None,
        description="The `data.object` to send (`webhooks trigger --set`); by default the type's example",
    )

    @field_validator("webhook_type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in SUBSCRIBABLE_BY_NAME:
            raise ValueError(f"unknown webhook_type {value!r}; GET /v1/webhooks/event-types lists them")
        return value


class EndpointTestAccepted(FromDomain[SentTestEvent]):
    event_id: str = Field(description="The test event's id, `test_…`")
    delivery_id: str = Field(description="Its delivery to this endpoint: GET /v1/webhooks/deliveries/{id}")
    endpoint_id: str
    webhook_type: str
    created_at: datetime


class EventAccepted(FromDomain[AcceptedEvent]):
    id: str
    webhook_type: str
    object_type: str
    created_at: datetime


class DeliveryStatusPublic(StrEnum):
    """A delivery's status: `scheduled` until its workflow starts (the event is accepted, and a worker
    has yet to take it), then `pending` while attempts are being made, then `succeeded` or `failed`."""

    SCHEDULED = DeliveryStatus.SCHEDULED.value
    PENDING = DeliveryStatus.PENDING.value
    SUCCEEDED = DeliveryStatus.SUCCEEDED.value
    FAILED = DeliveryStatus.FAILED.value


class DeliveryPublic(FromDomain[DeliverySummary]):
    id: str
    event_id: str
    endpoint_id: str
    webhook_type: str
    status: DeliveryStatusPublic
    attempt_count: int
    last_status_code: int | None
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = Field(
        default=None, description="When the schedule's next attempt is due, while one is (a pending delivery)"
    )


class DeliveryList(FromDomain[DeliveryPage]):
    items: list[DeliveryPublic]
    next_cursor: str | None


class AttemptPublic(BaseModel):
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    response_body: str | None
    error: str | None
    trigger: AttemptTrigger
    infra_failures: int = Field(
        description="Tries that failed on our side before this attempt could be made (our store "
        "unreachable, every connection to the endpoint busy, a worker lost); they do not count "
        "against the retry schedule"
    )
    infra_error: str | None = Field(description="Why the last of those tries failed")
    queued_ms: int | None = Field(
        default=None,
        description="Milliseconds from when the attempt was due to its POST: waiting for a worker, and for "
        "the endpoint's limits (null in logs of before it was measured)",
    )
    throttled_by: str | None = Field(
        default=None,
        description="The endpoint's limit that held the attempt back last, if any (its attempts in flight, "
        "its rate limit, a Retry-After it sent); waiting for it does not count against the retry schedule",
    )
    request_headers: list[tuple[str, str]] | None = Field(
        default=None,
        description="The headers sent, in order; signatures and custom header values masked "
        "(null for an attempt that sent nothing, or one logged before headers were)",
    )
    response_status_line: str | None = Field(
        default=None, description="e.g. `HTTP/1.1 500 Internal Server Error`"
    )
    response_headers: list[tuple[str, str]] | None = Field(
        default=None,
        description="The answer's first 12 headers, each value cut at 256 characters; values of headers "
        "named like a credential or a session (set-cookie, *auth*, *token*, *key*, …) masked",
    )
    trace_id: str | None = Field(
        default=None,
        description="The OpenTelemetry trace of the attempt, as its `traceparent` header carried it (null "
        "when tracing is off)",
    )
    trace_url: str | None = Field(
        default=None,
        description="The trace in the operators' trace viewer (WEBHOOKS_TRACE_URL_TEMPLATE; null when none "
        "is set, when tracing is off, and for a portal session)",
    )


class AttemptInProgress(BaseModel):
    attempt: int = Field(description="The number the attempt will have in the log")
    infra_failures: int = Field(description="Tries of this attempt that failed on our side so far")
    infra_error: str | None = Field(description="Why the last of those tries failed")
    next_try_at: datetime | None = Field(description="When the next try is due, after a failed one")
    throttled_by: str | None = Field(
        default=None,
        description="The last try was held back by this limit of the endpoint (not a fault): the next one "
        "comes at its turn",
    )


class DeliveryDetail(DeliveryPublic):
    payload: dict[str, Any] | None = Field(
        description="The exact JSON body that was sent; null only if Temporal no longer keeps it (the "
        "event's log retention ended before the delivery's first attempt did)"
    )
    origin: DeliveryOrigin = Field(
        description="`event` (emitted), `test` (a test event sent to this endpoint), `replay` (an event "
        "replayed to an endpoint that had not received it)"
    )
    attempts: list[AttemptPublic]
    next_attempt_at: datetime | None
    attempt_in_progress: AttemptInProgress | None = Field(
        description="An attempt being made now, or held up by a fault of ours"
    )
    workflow_url: str | None = Field(
        description="This delivery in the Temporal Web UI (null for a portal session)"
    )
    sequence: int | None = Field(
        default=None,
        description="Its `webhook-sequence` in its ordered lane (null on an unordered endpoint, or while it "
        "waits in its lane)",
    )
    ordered: bool = Field(
        default=False, description="It goes to its endpoint in order, through the lane of its `ordering_key`"
    )
    ordering_key: str | None = Field(
        default=None,
        description="Its event's `ordering_key`, the lane it goes through (null: the endpoint's default "
        "lane, or not ordered)",
    )

    @classmethod
    def of_log(
        cls, log: DeliveryLog, *, links: bool, trace_url: Callable[[str | None], str | None] | None = None
    ) -> DeliveryDetail:
        """`links`: the caller may follow links to the operators' tools (the Temporal Web UI, the trace
        viewer that `trace_url` makes a link to): never a portal session."""
        progress = log.attempt_in_progress
        attempts = [AttemptPublic.model_validate(a, from_attributes=True) for a in log.attempts]
        if links and trace_url:
            attempts = [a.model_copy(update={"trace_url": trace_url(a.trace_id)}) for a in attempts]
        return cls(
            **DeliveryPublic.of(log.summary).model_dump(exclude={"next_attempt_at"}),
            payload=log.payload,
            origin=log.origin,
            attempts=attempts,
            next_attempt_at=log.next_attempt_at,
            attempt_in_progress=AttemptInProgress.model_validate(progress, from_attributes=True)
            if progress
            else None,
            workflow_url=log.workflow_url if links else None,
            sequence=log.sequence,
            ordered=log.ordered,
            ordering_key=log.ordering_key,
        )


class EventDetail(FromDomain[EventView]):
    id: str
    webhook_type: str
    object_type: str
    created_at: datetime
    payload: dict[str, Any]
    deliveries: list[DeliveryPublic]


class EventListItem(FromDomain[EventListed]):
    id: str
    webhook_type: str
    object_type: str
    created_at: datetime
    object_id: str | None = Field(
        description="The event's `data.object.id`, what `?object_id=` finds it by (null: it has none, or "
        "one that is not indexed)"
    )
    customer_id: str | None = Field(
        description="The customer it concerns (`data.object.customer_id`, or a customer event's own id), "
        "what `?customer_id=` finds it by"
    )


class EventList(FromDomain[EventPage]):
    items: list[EventListItem]
    next_cursor: str | None


class LanePublic(BaseModel):
    """One ordered lane of an endpoint: its events of one ordering key, delivered one at a time."""

    endpoint_id: str
    ordering_key: str | None = Field(description="null: the lane of events without a key")
    sequence: int = Field(description="The last `webhook-sequence` handed out (0: none yet)")
    head_delivery_id: str | None = Field(description="The delivery the lane waits for")
    head_sequence: int | None
    blocked: bool = Field(description="Its head failed every attempt and the endpoint blocks on failure")
    blocked_since: datetime | None
    queued: int = Field(description="Events waiting behind the head")
    full: bool = Field(
        default=False,
        description="It holds WEBHOOKS_LANE_MAX_QUEUED events: POST /v1/events for its key answers 429 until "
        "it drains",
    )

    @classmethod
    def of(cls, lane: LaneView) -> LanePublic:
        head = lane.head
        return cls(
            endpoint_id=lane.endpoint_id,
            ordering_key=lane.ordering_key,
            sequence=lane.sequence,
            head_delivery_id=head.delivery_id if head else None,
            head_sequence=head.sequence if head else None,
            blocked=lane.blocked,
            blocked_since=head.blocked_since if head and lane.blocked else None,
            queued=lane.queued,
            full=lane.full,
        )


class LaneSkip(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ordering_key: str | None = Field(default=None, description="The lane's key; null for events without one")
    delivery_id: str = Field(
        description="The blocked head to skip: named, so that a skip never passes the next"
    )


class RetryAcceptedPublic(BaseModel):
    delivery_id: str
    attempt: int = Field(
        description="The number the manual attempt has in the log. A retry that joined another (one in "
        "flight or already asked for, or one a retry made that ended less than 5 s before, unless `after` "
        "names it) has that one's number, and may find its answer already logged: no new POST is made"
    )


class EndpointStatsPublic(FromDomain[DeliveryCounts]):
    endpoint_id: str
    since: datetime = Field(description="Counts cover deliveries of events accepted since this time")
    until: datetime | None = Field(
        default=None, description="and up to this time (`created_before`), or up to now when null"
    )
    pending: int
    succeeded: int
    failed: int


class RecoverCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(
        description="From this time, with its timezone (e.g. 2026-11-26T10:00:00Z); at most the log "
        "retention (WEBHOOKS_LOG_RETENTION_DAYS) ago"
    )
    until: AwareDatetime | None = Field(
        default=None, description="Up to this time; by default, and at the latest, now"
    )


class ReplayCreate(RecoverCreate):
    event_types: list[EventTypeName] | None = Field(
        default=None,
        description="Replay the events of these types; null: of the types the endpoint subscribes to now",
    )

    _event_types = field_validator("event_types")(_check_event_types)


class RecoveryPublic(BaseModel):
    id: str = Field(description="rec_…")
    kind: RecoveryKind = Field(
        description="`recover`: the endpoint's failed deliveries re-attempted; `replay`: the events it "
        "never received delivered to it"
    )
    status: RecoveryStatus = Field(
        description="`running`, `completed`, `canceled` (on request, or its endpoint was disabled or "
        "deleted: `reason` says which) or `failed` (its workflow ended abnormally)"
    )
    endpoint_id: str
    since: datetime
    until: datetime
    event_types: list[str] | None = Field(description="replay: the event types replayed")
    total: int = Field(
        description="The candidates in the window, counted when it started; one that left it meanwhile (a "
        "delivery retried by hand and succeeded, say) is in none of the counts that follow"
    )
    done: int = Field(
        description="recover: deliveries re-attempted; replay: events delivered as new deliveries"
    )
    failed: int = Field(description="Candidates that could not be (a delivery at its most attempts, say)")
    skipped: int = Field(description="replay: events the endpoint has already, or that are not for it")
    expired: int = Field(description="recover: failed deliveries whose retry window is over")
    left: int = Field(description="Candidates not dealt with yet (0 once completed)")
    started_at: datetime
    finished_at: datetime | None
    reason: str | None = Field(description="Why it stopped early")
    cancel_requested: bool = Field(description="A cancel was asked for; the page in flight is finishing")
    workflow_url: str | None = Field(
        description="This recovery in the Temporal Web UI (null for a portal session)"
    )

    @classmethod
    def of(cls, view: RecoveryView, *, links: bool) -> RecoveryPublic:
        state = view.state
        return cls(
            id=state.recovery_id,
            kind=state.kind,
            status=state.status,
            endpoint_id=state.endpoint_id,
            since=state.since,
            until=state.until,
            event_types=state.event_types,
            total=state.total,
            done=state.counts.done,
            failed=state.counts.failed,
            skipped=state.counts.skipped,
            expired=state.counts.expired,
            left=view.left,
            started_at=state.started_at,
            finished_at=state.finished_at,
            reason=state.reason,
            cancel_requested=state.cancel_requested,
            workflow_url=view.workflow_url if links else None,
        )


class RecoveryList(BaseModel):
    items: list[RecoveryPublic]
    next_cursor: str | None

    @classmethod
    def of(cls, page: RecoveryViewPage, *, links: bool) -> RecoveryList:
        return cls(
            items=[RecoveryPublic.of(v, links=links) for v in page.items], next_cursor=page.next_cursor
        )


class ListenSessionCreate(BaseModel):
    """`webhooks listen`'s opening: which event types to receive, and where the CLI forwards them (shown in
    the listening endpoint's description only: the API never calls it)."""

    model_config = ConfigDict(extra="forbid")

    event_types: list[str] | None = Field(default=None, description="null: every event type")
    forward_to: str | None = Field(default=None, max_length=2048)


class ListenSessionPublic(BaseModel):
    session_id: str
    endpoint_id: str = Field(description="the listening endpoint: the same for every session of a credential")
    secret: str = Field(description="its signing secret: the local receiver verifies with it")
    event_types: list[str] | None
    session_timeout_seconds: float = Field(description="a session not polled for this long ends")


class ListenDelivery(BaseModel):
    """One attempt for the CLI to POST: exactly the headers and body a production endpoint receives."""

    id: str = Field(description="what the CLI answers with: POST …/answers/{id}")
    delivery_id: str
    webhook_type: str
    attempt: int
    timeout: float = Field(description="seconds the local server has, as any endpoint has")
    headers: dict[str, str]
    body: str


class ListenPoll(BaseModel):
    deliveries: list[ListenDelivery]


class ListenAnswerCreate(BaseModel):
    """What the local server answered (`status_code`, `headers`, `body`), or why there was no answer."""

    model_config = ConfigDict(extra="forbid")

    status_code: int | None = Field(default=None, ge=100, le=599)
    duration_ms: int = Field(ge=0)
    headers: list[tuple[str, str]] = Field(default_factory=list, max_length=200)
    body: str = Field(default="", max_length=65536)
    status_line: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, max_length=1000)


class ListenAnswered(BaseModel):
    outcome: str
    status_code: int | None
