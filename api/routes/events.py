"""Emitting events: each accepted event is one durable `EventWorkflow`, started before the 202."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import EmitCaller, EventsDep, ReadTenant
from api.errors import RATE_LIMITED
from api.metrics import EVENTS_ACCEPTED, EVENTS_DUPLICATE
from api.routes.deliveries import Business, LimitQuery
from api.schemas import EventAccepted, EventCreate, EventDetail, EventList

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post("", status_code=202, responses=RATE_LIMITED)
async def emit_event(
    body: EventCreate, caller: EmitCaller, events: EventsDep, response: Response
) -> EventAccepted:
    """Accept an event for delivery to every enabled endpoint subscribed to its type."""
    accepted, quota = await events.accept(caller, body.submission())
    response.headers.update(quota.headers())
    (EVENTS_DUPLICATE if accepted.duplicate else EVENTS_ACCEPTED).labels(accepted.webhook_type).inc()
    return EventAccepted.of(accepted)


@router.get("")
async def list_events(
    tenant: ReadTenant,
    events: EventsDep,
    business: Business,
    limit: LimitQuery = 50,
    cursor: str | None = None,
) -> EventList:
    """Your events, e.g. `?object_id=inv_0042` for one invoice's or `?customer_id=cus_7*` by prefix."""
    return EventList.of(await events.list(tenant, business=business, limit=limit, cursor=cursor))


@router.get("/{event_id}")
async def get_event(event_id: str, tenant: ReadTenant, events: EventsDep) -> EventDetail:
    """An event, the payload its endpoints receive, and each endpoint's delivery status."""
    return EventDetail.of(await events.get(tenant, event_id))
