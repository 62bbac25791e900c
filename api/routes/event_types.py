"""The event catalog."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ReadTenant
from api.schemas import ErrorPublic, EventTypeDetail, EventTypeList, EventTypePublic
from domain.catalog import EVENT_TYPES, OPERATIONAL_TYPES, SUBSCRIBABLE_BY_NAME
from domain.schemas import SCHEMAS
from service.errors import NotFound

router = APIRouter(prefix="/v1/webhooks/event-types", tags=["event types"])


@router.get("")
def list_event_types(_tenant: ReadTenant) -> EventTypeList:
    """The 31 event types and the operational ones about your endpoints, each with an example object."""
    return EventTypeList(items=[EventTypePublic.of(t) for t in (*EVENT_TYPES, *OPERATIONAL_TYPES)])


@router.get("/{name}", responses={404: {"model": ErrorPublic, "description": "No event type of that name"}})
def get_event_type(name: str, _tenant: ReadTenant) -> EventTypeDetail:
    """One event type: its example `data.object` and the JSON Schema (2020-12) of the whole body."""
    found = SUBSCRIBABLE_BY_NAME.get(name)
    if found is None:
        raise NotFound(f"no event type {name!r}; GET /v1/webhooks/event-types lists them")
    return EventTypeDetail(**EventTypePublic.of(found).model_dump(), schema_=SCHEMAS[name])
