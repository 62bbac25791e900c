"""What workflows and activities exchange: one input and one output model each.

Fields may be added with defaults without breaking running workflows; never rename or remove one.
These travel through Temporal with the pydantic data converter and are what the webhook logs show.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer


class Compact(BaseModel):
    """A model serialized without the fields that hold their default: what a delivery's workflow, its
    attempts and their records exchange is stored in Temporal's history once per event, per attempt, per
    run, and a field left at its default costs nothing to leave out (it comes back as that default when
    read). About 300 bytes per delivery input (an empty `progress`), 100 per attempt record."""

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name, field in type(self).model_fields.items():
                if name in data and not field.is_required():
                    if getattr(self, name) == field.get_default(call_default_factory=True):
                        del data[name]
        return data


class SignatureMethod(StrEnum):
    HMAC = "hmac"
    JWT = "jwt"


class DeliveryStatus(StrEnum):
    # Never a workflow's: the service's word for an accepted event's delivery whose workflow has not
    # started yet (no worker has taken the event).
    SCHEDULED = "scheduled"
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class AttemptTrigger(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"  # a retry asked for one delivery
    RECOVER = "recover"  # a recovery of an endpoint's failed deliveries asked for it


class DeliveryOrigin(StrEnum):
    """Why a delivery exists: an event emitted, a test event sent to one endpoint, or a replay of an
    event to an endpoint that never received it."""

    EVENT = "event"
    TEST = "test"
    REPLAY = "replay"


class AttemptOutcome(StrEnum):
    SUCCEEDED = "succeeded"  # 2xx
    RETRYABLE = "retryable"  # any other status, a timeout, a network error
    GONE = "gone"  # 410: the receiver asked us to stop
    ENDPOINT_UNAVAILABLE = "endpoint_unavailable"  # deleted or disabled since the event


# The outcomes after which a delivery's schedule makes no further attempt: it is settled, succeeded or
# failed (workflows/delivery.py; the log reads a delivery by the same rule, history/visibility.py).
ENDS_SCHEDULE = frozenset(
    {AttemptOutcome.SUCCEEDED, AttemptOutcome.GONE, AttemptOutcome.ENDPOINT_UNAVAILABLE}
)


class OrderedOnFailure(StrEnum):
    """What an ordered endpoint's lane does when its head's schedule ends without a 2xx."""

    BLOCK = "block"  # the lane waits until the head is retried by hand and succeeds, or skipped by hand
    SKIP = "skip"  # the head is failed and the lane moves on


class DeliveryPolicy(BaseModel):
    """How a delivery retries, fixed when its event is accepted so later setting changes don't alter it."""

    retry_delays: list[float]
    attempt_timeout: float
    # How long after its schedule ends a delivery still takes manual retries (its workflow stays open).
    retry_window: float = 7 * 86400


class EventInput(BaseModel):
    tenant: str
    event_id: str
    webhook_type: str
    object_type: str
    body: str  # the exact JSON text every endpoint receives
    created_at: datetime
    endpoint_ids: list[str]
    policy: DeliveryPolicy
    origin: DeliveryOrigin = DeliveryOrigin.EVENT
    # Endpoints with a retry schedule of their own; the others follow `policy`.
    policies: dict[str, DeliveryPolicy] = Field(default_factory=dict)
    # The client's ordering key (None: the endpoint's default lane), and which of `endpoint_ids` are
    # ordered: their deliveries are started by the endpoint's lane (workflows/lane.py), not by the fan-out.
    ordering_key: str | None = None
    ordered_endpoint_ids: list[str] = Field(default_factory=list)


class DeliverRequest(Compact):
    tenant: str
    endpoint_id: str
    delivery_id: str
    # None: the attempt reads the body from the event's history (`history.events.EventBodies`), so that
    # no attempt's input repeats it. Set only by deliveries started with the body in their input (before
    # the body was kept once per event), whose attempts go on carrying it.
    body: str | None = None
    attempt: int
    trigger: AttemptTrigger
    timeout: float
    # A person is waiting for this very attempt (a manual retry of one delivery, a test event): it is not
    # held back by the endpoint's Retry-After pause, which the other attempts wait out.
    interactive: bool = False
    # The delivery's place in its ordered lane, sent as `webhook-sequence`; None on an unordered endpoint.
    sequence: int | None = None
    # Whose body to read when `body` is None (None only in requests of before it, which carry the body).
    event_id: str | None = None


class AttemptRecord(Compact):
    attempt: int
    trigger: AttemptTrigger
    started_at: datetime
    duration_ms: int
    outcome: AttemptOutcome
    status_code: int | None = None
    response_body: str | None = None
    error: str | None = None
    retry_after_seconds: float | None = None
    # Tries of ours that failed before this attempt could be made (the endpoint store unreachable, the
    # endpoint's connections all busy, a worker lost), retried by Temporal without using up the
    # receiver's schedule, and the last reason recorded.
    infra_failures: int = 0
    infra_error: str | None = None
    # What went over the wire, for the log (none of it for an attempt that sent nothing): the request's
    # headers with every signature and custom value masked (history keeps no credential, even encrypted),
    # the answer's status line and its first headers (a credential or session among them masked).
    request_headers: list[tuple[str, str]] | None = None
    response_status_line: str | None = None
    response_headers: list[tuple[str, str]] | None = None
    # Milliseconds from when the attempt was due to when its POST began: waiting for a worker, and for
    # the endpoint's own limits (its attempts in flight, its rate limit, a Retry-After it asked for),
    # the last of which is named in `throttled_by`.
    queued_ms: int | None = None
    throttled_by: str | None = None
    # The trace the attempt's span belongs to (core/tracing.py), sent to the receiver in `traceparent`;
    # None when tracing is off, and in records of before it was.
    trace_id: str | None = None
    # The delivery's own copy of the body it sends: kept in its first attempt's record only (None in every
    # other, and in deliveries whose input carries it), so that the log still shows the payload once the
    # event's history is gone (the event closes at once, a delivery days later). Never shown as part of
    # an attempt: the log shows it as the delivery's payload.
    body: str | None = None


class DeliveryProgress(Compact):
    """Where a delivery stands: carried into the next run when its history is continued as new."""

    attempts: list[AttemptRecord] = Field(default_factory=list)
    status: DeliveryStatus = DeliveryStatus.PENDING
    scheduled_attempts: int = 0  # attempts of the schedule made so far
    next_attempt_at: datetime | None = None
    retry_until: datetime | None = None  # set when the schedule ends: the end of the retry window
    manual_requested: bool = False
    manual_trigger: AttemptTrigger = AttemptTrigger.MANUAL
    manual_bulk: bool = False  # the manual attempt asked for is part of a "retry all"
    last_attempt_ended_at: datetime | None = None  # workflow time: a retry just after it joins it
    passed: bool = False  # its ordered lane has moved on past it (skipped): no manual retry any more


class LaneRef(Compact):
    """Where an ordered delivery stands in its lane: the lane's workflow (told when the delivery settles)
    and the delivery's sequence number in it."""

    workflow_id: str
    sequence: int
    on_failure: OrderedOnFailure = OrderedOnFailure.BLOCK


class DeliveryInput(Compact):
    tenant: str
    event_id: str
    endpoint_id: str
    delivery_id: str
    webhook_type: str
    # None for every delivery started now: its event's history holds the body once, its attempts read it
    # from there, and its first attempt's record keeps the delivery's own copy (`AttemptRecord.body`).
    # Set in the inputs of deliveries started before that, which replay and run on as they were.
    body: str | None = None
    created_at: datetime
    policy: DeliveryPolicy
    progress: DeliveryProgress = Field(default_factory=DeliveryProgress)
    origin: DeliveryOrigin = DeliveryOrigin.EVENT
    lane: LaneRef | None = None  # set by the lane of an ordered endpoint, which starts the delivery


class DeliveryState(Compact):
    delivery_id: str
    event_id: str
    endpoint_id: str
    webhook_type: str
    # The payload: the input's (deliveries of before), else the first attempt's record's; None before that
    # attempt has ended (the event's history has it) and in a closed delivery's result (`in_history`).
    body: str | None = None
    created_at: datetime
    status: DeliveryStatus
    attempts: list[AttemptRecord]
    next_attempt_at: datetime | None = None
    policy: DeliveryPolicy
    origin: DeliveryOrigin = DeliveryOrigin.EVENT
    sequence: int | None = None  # its `webhook-sequence`, on an ordered endpoint
    # The workflow's result: the body and the attempts are left out (`body` None, `attempts` empty), as its
    # history holds them already; the log reads them from there (service/deliveries.py). False in the
    # query's answer and in the results of deliveries that closed before.
    in_history: bool = False


class LaneItem(BaseModel):
    """One event for an ordered lane: a reference to it, and what its delivery is made with. Never its body:
    a lane can hold thousands of these, in its state and in every continue-as-new input, where bodies would
    reach Temporal's payload and history limits. The body is read from the event's own workflow when its
    turn comes (activities/lanes.py, `lane_body`)."""

    event_id: str
    delivery_id: str
    webhook_type: str
    created_at: datetime
    policy: DeliveryPolicy
    origin: DeliveryOrigin = DeliveryOrigin.EVENT
    on_failure: OrderedOnFailure = OrderedOnFailure.BLOCK
    # The most events the lane holds behind its head, as the sender's WEBHOOKS_LANE_MAX_QUEUED says: the
    # lane takes the cap its latest event came with (None: events of before the setting, 10,000).
    max_queued: int | None = None

    def delivery(self, tenant: str, endpoint_id: str, *, lane: LaneRef | None = None) -> DeliveryInput:
        """The input of the delivery this event is made into on the endpoint: without the body, which its
        attempts read from the event's history as every delivery's do; `lane` when its lane starts it."""
        return DeliveryInput(
            tenant=tenant,
            event_id=self.event_id,
            endpoint_id=endpoint_id,
            delivery_id=self.delivery_id,
            webhook_type=self.webhook_type,
            created_at=self.created_at,
            policy=self.policy,
            origin=self.origin,
            lane=lane,
        )


class LaneHead(BaseModel):
    """The delivery a lane is waiting for: started, with its sequence number."""

    delivery_id: str
    sequence: int
    on_failure: OrderedOnFailure
    status: DeliveryStatus = DeliveryStatus.PENDING  # as its delivery last told the lane
    blocked_since: datetime | None = None  # its schedule ended without a 2xx, and the lane blocks
    unavailable: bool = False  # it failed because its endpoint is disabled or gone: a skip lane holds too


class LaneSettled(BaseModel):
    """What a delivery tells its lane when its schedule ends, or when a manual retry succeeds later."""

    delivery_id: str
    status: DeliveryStatus
    # Its schedule ended because the endpoint is disabled or gone (ENDPOINT_UNAVAILABLE), not because the
    # receiver failed it: a `skip` lane holds on such a head rather than failing every queued event.
    unavailable: bool = False


class LaneState(BaseModel):
    """Where a lane stands: carried into the next run when it continues as new."""

    sequence: int = 0  # the last sequence number handed out
    head: LaneHead | None = None
    queue: list[LaneItem] = Field(default_factory=list)
    skip_requested: bool = False
    # Whether `sequence` was read from the store (a fresh run reads it once: `LaneSequence`).
    sequence_read: bool = False
    # Its endpoint was deleted: the lane ends, its queued events started as deliveries that fail as any
    # delivery to a deleted endpoint does (workflows/lane.py, `_end`).
    ending: bool = False
    max_queued: int | None = None  # the cap the lane's latest event came with (`LaneItem.max_queued`)


class LaneInput(BaseModel):
    tenant: str
    endpoint_id: str
    ordering_key: str | None = None  # None: the endpoint's default lane
    state: LaneState = Field(default_factory=LaneState)


class LaneSkip(BaseModel):
    """A manual skip of a lane's head, as the service asks it (service/lanes.py)."""

    delivery_id: str
    # The head's delivery workflow is closed (terminated, failed, or its window over): the lane may pass a
    # head that never told it it settled, so that an operator can always unstick a lane.
    delivery_closed: bool = False


class LaneSequence(BaseModel):
    """A lane's last sequence number, as kept in the store beside the lane (`lane_sequences`)."""

    tenant: str
    endpoint_id: str
    ordering_key: str | None
    sequence: int = 0


class LaneBody(BaseModel):
    """Which event's body a lane needs, to start the delivery of its head."""

    tenant: str
    event_id: str


class LaneEndpoint(BaseModel):
    """The endpoint of a lane, as the lane asks the store about it."""

    tenant: str
    endpoint_id: str


class LaneCloseOut(BaseModel):
    """Events a lane of a deleted endpoint still held: each started as a delivery of its own, which fails
    as every delivery to a deleted endpoint does, so that its fate is in its log."""

    tenant: str
    endpoint_id: str
    items: list[LaneItem]


class LaneBlocked(BaseModel):
    """A lane's head ended its schedule without a 2xx and the lane waits: what the tenant is told."""

    tenant: str
    endpoint_id: str
    ordering_key: str | None
    delivery_id: str
    sequence: int
    at: datetime


class LaneView(BaseModel):
    """A lane as its `view` query and its `skip` update show it."""

    endpoint_id: str
    ordering_key: str | None
    sequence: int  # the last sequence number handed out (0: none yet)
    head: LaneHead | None
    queued: int  # events waiting behind the head
    blocked: bool
    full: bool = False  # `queued` reached the lane's cap: the API refuses its new events (429)


class RetryAccepted(BaseModel):
    attempt: int


class RecoveryKind(StrEnum):
    RECOVER = "recover"  # re-attempt the endpoint's failed deliveries
    REPLAY = "replay"  # deliver the events the endpoint never received


class RecoveryStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELED = "canceled"  # asked to stop, or its endpoint was disabled or deleted (`reason` says which)
    FAILED = "failed"  # its workflow ended abnormally (terminated by an operator, say): never by design


class RecoveryCounts(BaseModel):
    """What a recovery did with each candidate. `done`: re-attempted (recover) or delivered as a new
    delivery (replay); `failed`: could not be (a delivery at its most attempts, say); `skipped`: the
    endpoint has it already (replay); `expired`: its retry window is over (recover)."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    expired: int = 0

    def __add__(self, other: RecoveryCounts) -> RecoveryCounts:
        return RecoveryCounts(
            done=self.done + other.done,
            failed=self.failed + other.failed,
            skipped=self.skipped + other.skipped,
            expired=self.expired + other.expired,
        )

    @property
    def processed(self) -> int:
        return self.done + self.failed + self.skipped + self.expired


class RecoveryState(BaseModel):
    """A recovery as it stands: the workflow's `progress` query and result, and its memo."""

    recovery_id: str
    kind: RecoveryKind
    tenant: str
    endpoint_id: str
    since: datetime
    until: datetime
    event_types: list[str] | None = None  # replay: the types replayed (null: every type)
    total: int  # the candidates counted when it started
    counts: RecoveryCounts = Field(default_factory=RecoveryCounts)
    status: RecoveryStatus = RecoveryStatus.RUNNING
    started_at: datetime
    finished_at: datetime | None = None
    reason: str | None = None  # why it stopped early
    cancel_requested: bool = False


class RecoveryProgress(BaseModel):
    """Where a recovery's listing stands: carried into the next run when it continues as new."""

    counts: RecoveryCounts = Field(default_factory=RecoveryCounts)
    cursor: str | None = None  # the visibility page token of the next page, base64
    started: bool = False  # the first page has been listed (a None cursor then means: no more)


class RecoveryInput(BaseModel):
    state: RecoveryState
    rate: float  # deliveries per second
    page_size: int  # candidates per page: one activity and at most one timer each
    pages_per_run: int = 200  # then continue as new, so that history stays small
    policy: DeliveryPolicy  # replay: the policy of the deliveries it starts
    progress: RecoveryProgress = Field(default_factory=RecoveryProgress)
    # Replay to an endpoint that was ordered when the replay started: its events go to their lanes, oldest
    # first (activities/recovery.py), and `progress.cursor` is a moment, not a visibility page token.
    ordered: bool = False


class RecoveryPageRequest(BaseModel):
    tenant: str
    endpoint_id: str
    recovery_id: str
    since: datetime
    until: datetime
    event_types: list[str] | None = None
    cursor: str | None = None
    page_size: int
    policy: DeliveryPolicy
    ordered: bool = False  # replay into the endpoint's lanes, in emission order (`RecoveryInput.ordered`)


class RecoveryPage(BaseModel):
    counts: RecoveryCounts
    next_cursor: str | None = None  # None: that was the last page
    stopped: str | None = None  # why the recovery must stop (its endpoint disabled or deleted)
