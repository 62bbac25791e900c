"""What the service's operations return: the domain's own models, which the API turns into its schemas.

An attempt is `domain.models.AttemptRecord`, as the workflow recorded it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeAlias, TypeVar

from domain.appearance import Appearance
from domain.models import AttemptRecord, DeliveryOrigin, DeliveryStatus, RecoveryState
from store.database import Endpoint
from store.flow import FlowView
from store.health import Health as EndpointHealthRecord

Item = TypeVar("Item")


# Not slotted: Python 3.11's frozen slotted dataclasses break when generic (`DeliveryPage(...)` raises).
@dataclass(frozen=True)
class ListPage(Generic[Item]):
    """One page of a list, and the cursor that asks for the next (None on the last page)."""

    items: list[Item]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    """A delivery as lists show it (from visibility)."""

    id: str
    event_id: str
    endpoint_id: str
    webhook_type: str
    status: DeliveryStatus
    attempt_count: int
    last_status_code: int | None
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = None  # the schedule's next attempt, while one is due


@dataclass(frozen=True, slots=True)
class AttemptInProgress:
    """The attempt being made now, or held up by faults of ours or by the endpoint's limits (either way
    tried again by Temporal, at `next_try_at`)."""

    attempt: int
    infra_failures: int
    infra_error: str | None
    next_try_at: datetime | None
    throttled_by: str | None = None  # the last try was held back by this limit of the endpoint


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    """One delivery, whole: its summary, the payload sent and every attempt."""

    summary: DeliverySummary
    payload: dict[str, Any] | None  # None only if Temporal keeps the body no more (docs/delivery.md)
    attempts: list[AttemptRecord]
    origin: DeliveryOrigin
    next_attempt_at: datetime | None
    attempt_in_progress: AttemptInProgress | None
    workflow_url: str | None
    sequence: int | None = None  # its `webhook-sequence` on an ordered endpoint, once its lane started it
    # Whether it goes through its endpoint's ordered lane, and the lane's key (None: the default lane).
    ordered: bool = False
    ordering_key: str | None = None


DeliveryPage: TypeAlias = ListPage[DeliverySummary]


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    endpoint_id: str
    since: datetime
    until: datetime | None
    pending: int
    succeeded: int
    failed: int


@dataclass(frozen=True, slots=True)
class EventView:
    """An event as accepted, and each of its deliveries (`scheduled` until its workflow starts)."""

    id: str
    webhook_type: str
    object_type: str
    created_at: datetime
    payload: dict[str, Any]
    deliveries: list[DeliverySummary]


@dataclass(frozen=True, slots=True)
class EventListed:
    """An event as a list shows it: the ids it is found by, from its workflow's search attributes."""

    id: str
    webhook_type: str
    object_type: str
    created_at: datetime
    object_id: str | None
    customer_id: str | None


EventPage: TypeAlias = ListPage[EventListed]


@dataclass(frozen=True, slots=True)
class EventSubmission:
    """An event as a client submits it (already shaped by the API's schema)."""

    webhook_type: str
    object: dict[str, Any]
    object_type: str | None = None
    id: str | None = None
    ordering_key: str | None = None  # its lane on ordered endpoints (None: the default lane)


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    """An event the service holds durably; `duplicate` when its id had been accepted before."""

    id: str
    webhook_type: str
    object_type: str
    created_at: datetime
    duplicate: bool


@dataclass(frozen=True, slots=True)
class SentTestEvent:
    """A test event accepted for one endpoint: one delivery, logged and retried like any other."""

    event_id: str
    delivery_id: str
    endpoint_id: str
    webhook_type: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Overview:
    """Counts across every tenant, for operators' metrics."""

    deliveries: dict[DeliveryStatus, int]
    retry_scheduled: int
    closed_abnormally: dict[str, int]


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    checks: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EndpointView:
    """An endpoint as the API shows it: its configuration and its health, read at `now`."""

    endpoint: Endpoint
    health: EndpointHealthRecord
    now: datetime
    flow: FlowView  # its attempts in flight and limits, across every worker
    rate_limit: float  # deliveries a second at most: its own limit, or the server's maximum


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A portal session just opened: its token, shown once to the backend that asked, and its end."""

    id: str
    token: str
    expires_at: datetime
    read_only: bool
    appearance: Appearance | None = None


@dataclass(frozen=True, slots=True)
class RecoveryView:
    """A recovery as it stands, with what is left of it and its workflow in the Temporal Web UI."""

    state: RecoveryState
    left: int
    workflow_url: str | None


RecoveryViewPage: TypeAlias = ListPage[RecoveryView]
