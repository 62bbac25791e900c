"""What workflows and activities exchange: one input and one output model each.

Fields may be added with defaults without breaking running workflows; never rename or remove one.
These travel through Temporal with the pydantic data converter and are what the webhook logs show.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


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


class EventSummary(BaseModel):
    tenant: str
    event_id: str
    webhook_type: str
    object_type: str
    body: str
    created_at: datetime
    delivery_ids: list[str]


class DeliverRequest(BaseModel):
    tenant: str
    endpoint_id: str
    delivery_id: str
    body: str
    attempt: int
    trigger: AttemptTrigger
    timeout: float


class AttemptRecord(BaseModel):
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


class DeliveryProgress(BaseModel):
    """Where a delivery stands: carried into the next run when its history is continued as new."""

    attempts: list[AttemptRecord] = Field(default_factory=list)
    status: DeliveryStatus = DeliveryStatus.PENDING
    scheduled_attempts: int = 0  # attempts of the schedule made so far
    next_attempt_at: datetime | None = None
    retry_until: datetime | None = None  # set when the schedule ends: the end of the retry window
    manual_requested: bool = False
    manual_trigger: AttemptTrigger = AttemptTrigger.MANUAL


class DeliveryInput(BaseModel):
    tenant: str
    event_id: str
    endpoint_id: str
    delivery_id: str
    webhook_type: str
    body: str
    created_at: datetime
    policy: DeliveryPolicy
    progress: DeliveryProgress = Field(default_factory=DeliveryProgress)
    origin: DeliveryOrigin = DeliveryOrigin.EVENT


class DeliveryState(BaseModel):
    delivery_id: str
    event_id: str
    endpoint_id: str
    webhook_type: str
    body: str
    created_at: datetime
    status: DeliveryStatus
    attempts: list[AttemptRecord]
    next_attempt_at: datetime | None = None
    policy: DeliveryPolicy
    origin: DeliveryOrigin = DeliveryOrigin.EVENT


class RetryAccepted(BaseModel):
    attempt: int
