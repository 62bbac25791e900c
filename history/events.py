"""An event as Temporal holds it: read from its workflow's history."""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain import ids
from domain.models import EventInput


async def read_event_input(
    client: Client, tenant: str, event_id: str, *, rpc_timeout: timedelta
) -> EventInput | None:
    """An event as accepted: its workflow's input, from the first event of its history (None once
    Temporal no longer keeps it). The API reads events so, and so does a replay."""
    handle = client.get_workflow_handle(ids.event_workflow_id(tenant, event_id))
    try:
        async for history_event in handle.fetch_history_events(rpc_timeout=rpc_timeout):
            if history_event.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                payloads = history_event.workflow_execution_started_event_attributes.input.payloads
                [event] = await client.data_converter.decode(payloads, [EventInput])
                return event  # type: ignore[no-any-return]
            return None
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None
