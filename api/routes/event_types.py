"""The event catalog."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import TenantDep
from api.schemas import EventTypeList, EventTypePublic
from core.catalog import EVENT_TYPES

router = APIRouter(prefix="/v1/webhooks/event-types", tags=["event types"])


@router.get("")
def list_event_types(_tenant: TenantDep) -> EventTypeList:
    """The 31 event types an endpoint can subscribe to."""
    return EventTypeList(
        items=[
            EventTypePublic(name=t.name, object_type=t.object_type, description=t.description, group=t.group)
            for t in EVENT_TYPES
        ]
    )
