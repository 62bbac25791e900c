"""The event catalog."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ReadTenant
from api.schemas import EventTypeList, EventTypePublic
from domain.catalog import EVENT_TYPES, OPERATIONAL_TYPES

router = APIRouter(prefix="/v1/webhooks/event-types", tags=["event types"])


@router.get("")
def list_event_types(_tenant: ReadTenant) -> EventTypeList:
    """The 31 event types and the operational ones about your endpoints, each with an example object."""
    return EventTypeList(
        items=[
            EventTypePublic(
                name=t.name,
                object_type=t.object_type,
                description=t.description,
                group=t.group,
                operational=t.operational,
                example=t.example,
            )
            for t in (*EVENT_TYPES, *OPERATIONAL_TYPES)
        ]
    )
