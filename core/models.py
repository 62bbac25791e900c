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
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class AttemptTrigger(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"


class AttemptOutcome(StrEnum):
    SUCCEEDED = "succeeded"  # 2xx
    RETRYABLE = "retryable"  # any other status, a timeout, a network error
    GONE = "gone"  # 410: the receiver asked us to stop
    ENDPOINT_UNAVAILABLE = "endpoint_unavailable"  # deleted or disabled since the event


class DeliveryPolicy(BaseModel):
    """How a delivery retries, fixed when its event is accepted so later setting changes don't alter it."""

    retry_delays: list[float]
    attempt_timeout: float


class EventInput(BaseModel):
    tenant: str
    event_id: str
    webhook_type: str
    object_type: str
    body: str  # the exact JSON text every endpoint receives
    created_at: datetime
    endpoint_ids: list[str]
    policy: DeliveryPolicy


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


# Which delivery code a run follows; a run keeps the version it started with, so histories recorded
# before a change replay the way they ran. 1: the first release. 2: the first attempt is a local
# activity, and search attributes are upserted once per step.
DELIVERY_VERSION = 2


class DeliveryInput(BaseModel):
    tenant: str
    event_id: str
    endpoint_id: str
    delivery_id: str
    webhook_type: str
    body: str
    created_at: datetime
    policy: DeliveryPolicy
    # A run started to make one manual attempt on a delivery whose earlier run had closed carries the
    # earlier attempts forward, so the log stays whole.
    prior_attempts: list[AttemptRecord] = Field(default_factory=list)
    manual_only: bool = False
    version: int = 1  # runs started before versions existed are 1; new ones pass DELIVERY_VERSION


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


class RetryAccepted(BaseModel):
    attempt: int
