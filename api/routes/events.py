"""Emitting events: each accepted event is one durable `EventWorkflow`, started before the 202."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import EmitTenant, EventsDep, ReadTenant
from api.metrics import EVENTS_ACCEPTED, EVENTS_DUPLICATE
from api.schemas import EventAccepted, EventCreate, EventDetail

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post("", status_code=202)
async def emit_event(body: EventCreate, tenant: EmitTenant, events: EventsDep) -> EventAccepted:
    """Accept an event for delivery to every enabled endpoint subscribed to its type."""
    accepted = await events.emit(tenant, body.submission())
    (EVENTS_DUPLICATE if accepted.duplicate else EVENTS_ACCEPTED).labels(accepted.webhook_type).inc()
    return EventAccepted.of(accepted)


@router.get("/{event_id}")
async def get_event(event_id: str, tenant: ReadTenant, events: EventsDep) -> EventDetail:
    """An event, the payload its endpoints receive, and each endpoint's delivery status."""
    return EventDetail.of(await events.get(tenant, event_id))
