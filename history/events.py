"""An event as Temporal holds it: read from its workflow's history, and a delivery's body and state as its
own history keeps them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.converter import DataConverter, WorkflowSerializationContext
from temporalio.service import RPCError, RPCStatusCode

from core.crypto import DecryptionError, NotYetReadable
from core.logs import FIELDS
from domain import ids
from domain.models import AttemptRecord, DeliveryInput, DeliveryState, DeliveryStatus, EventInput

log = logging.getLogger(__name__)

# Bodies a worker keeps in memory: at most this many bytes of them (an API takes bodies of up to a few
# hundred KB; most are about 1 KB, so this holds thousands), the least recently used dropped first.
BODY_CACHE_BYTES = 16 * 1024 * 1024
# How long a worker keeps a body before reading its event again: far longer than a fan-out's attempts take
# to read it together, far shorter than the shortest retention (1 day). An event id may be used again once
# its event's history is deleted (docs/api.md): a body kept longer could be sent for the new event.
BODY_CACHE_SECONDS = 3600


def converter_for(client: Client, workflow_id: str) -> DataConverter:
    """The client's converter in the workflow's serialization context: the payload codec then refuses a
    payload that was made for another workflow and copied into this one (core/crypto.py), as a worker does."""
    return client.data_converter.with_context(
        WorkflowSerializationContext(namespace=client.namespace, workflow_id=workflow_id)
    )


async def read_event_input(
    client: Client, tenant: str, event_id: str, *, rpc_timeout: timedelta
) -> EventInput | None:
    """An event as accepted: its workflow's input, from the first event of its history (None once
    Temporal no longer keeps it). The API reads events so, and so does a replay."""
    workflow_id = ids.event_workflow_id(tenant, event_id)
    handle = client.get_workflow_handle(workflow_id)
    try:
        # One event asked for: an event that fanned out to a hundred endpoints has some 300 more.
        async for history_event in handle.fetch_history_events(page_size=1, rpc_timeout=rpc_timeout):
            if history_event.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                payloads = history_event.workflow_execution_started_event_attributes.input.payloads
                try:
                    [event] = await converter_for(client, workflow_id).decode(payloads, [EventInput])
                except NotYetReadable:
                    raise  # a key or version this process lacks: read again once it has it (retried)
                except DecryptionError as err:
                    # Not an event of ours as accepted (another workflow's copied in, or changed since):
                    # there is no body of this event to send or show.
                    log.warning(
                        "event refused", extra={FIELDS: {"workflow_id": workflow_id, "error": str(err)}}
                    )
                    return None
                if (event.tenant, event.event_id) != (tenant, event_id):
                    # Opened, but another event's: bound to this workflow only by a digest of its id
                    # (core/crypto.py), which ids chosen to collide could share. Not this event either.
                    log.warning(
                        "event refused",
                        extra={FIELDS: {"workflow_id": workflow_id, "error": "the input of another event"}},
                    )
                    return None
                return event  # type: ignore[no-any-return]
            return None
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None


async def read_delivery_body(
    client: Client, tenant: str, delivery_id: str, *, rpc_timeout: timedelta
) -> str | None:
    """A delivery's own copy of its body, from its workflow's history (the latest run): its input's
    (deliveries of before the body was kept once per event, and a run continued as new, whose input
    carries the first attempt's record), else its first attempt's record's. None if neither has it
    (no attempt has ended yet) or the delivery is not kept."""
    workflow_id = ids.delivery_workflow_id(tenant, delivery_id)
    handle = client.get_workflow_handle(workflow_id)
    converter = converter_for(client, workflow_id)
    try:
        async for history_event in handle.fetch_history_events(rpc_timeout=rpc_timeout):
            if history_event.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                payloads = history_event.workflow_execution_started_event_attributes.input.payloads
                [started] = await converter.decode(payloads, [DeliveryInput])
                body = kept_body(started, [])
                if body is not None:
                    return body
            elif history_event.event_type is EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                payloads = history_event.activity_task_completed_event_attributes.result.payloads
                [record] = await converter.decode(payloads, [AttemptRecord])
                if record.body is not None:
                    return record.body  # type: ignore[no-any-return]
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    except NotYetReadable:
        raise  # a key or version this process lacks: read again once it has it (retried)
    except DecryptionError as err:
        # Not this delivery's as made (another workflow's copied in, or changed since): it keeps no copy
        # of its own to send, as an event holding another's has no body.
        log.warning("delivery refused", extra={FIELDS: {"workflow_id": workflow_id, "error": str(err)}})
        return None
    return None


def kept_body(started: DeliveryInput, attempts: list[AttemptRecord]) -> str | None:
    """The body a delivery's history holds: in its input, or in the first attempt record that keeps it
    (carried into a continued run's input, or completed in this run)."""
    if started.body is not None:
        return started.body
    for record in (*started.progress.attempts, *attempts):
        if record.body is not None:
            return record.body
    return None


def delivery_state(
    started: DeliveryInput,
    attempts: list[AttemptRecord],
    *,
    status: DeliveryStatus,
    next_attempt_at: datetime | None,
) -> DeliveryState:
    """A delivery's state from its input and the attempts of its run: what its workflow's `state` query
    answers, and what the log makes of its history when no worker runs it (service/deliveries.py)."""
    return DeliveryState(
        delivery_id=started.delivery_id,
        event_id=started.event_id,
        endpoint_id=started.endpoint_id,
        webhook_type=started.webhook_type,
        body=kept_body(started, attempts),
        created_at=started.created_at,
        status=status,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        policy=started.policy,
        origin=started.origin,
        sequence=started.lane.sequence if started.lane else None,
    )


class EventBodies:
    """Events' bodies for a worker's attempts, read from each event's history once and kept in memory
    (a body never changes): the attempts of a fan-out to five endpoints read it once, together.

    Least recently used first out, within `max_bytes`, and read again after `max_age` seconds. Reads of
    one event that come together share one read. `None`: the event is no longer kept (its log's retention
    is over); never cached.
    """

    def __init__(
        self,
        read: Callable[[str, str], Awaitable[str | None]],
        *,
        max_bytes: int = BODY_CACHE_BYTES,
        max_age: float = BODY_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._clock = clock
        self._bodies: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._bytes = 0
        self._reading: dict[tuple[str, str], asyncio.Future[str | None]] = {}
        self.reads = 0  # reads of Temporal made, for tests and metrics

    @classmethod
    def of(cls, client: Client, *, rpc_timeout: timedelta, max_bytes: int = BODY_CACHE_BYTES) -> EventBodies:
        async def read(tenant: str, event_id: str) -> str | None:
            event = await read_event_input(client, tenant, event_id, rpc_timeout=rpc_timeout)
            return event.body if event is not None else None

        return cls(read, max_bytes=max_bytes)

    async def get(self, tenant: str, event_id: str) -> str | None:
        key = (tenant, event_id)
        kept = self._bodies.get(key)
        if kept is not None:
            cached, until = kept
            if self._clock() < until:
                self._bodies.move_to_end(key)
                return cached
            self._drop(key)
        reading = self._reading.get(key)
        if reading is not None:
            return await asyncio.shield(reading)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._reading[key] = future
        try:
            self.reads += 1
            body = await self._read(tenant, event_id)
        except BaseException as err:
            # Those waiting for this read fail with it; if the reader gave up (its attempt's timeout
            # cancelled it), with a timeout of their own, never a cancellation that is not theirs.
            given_up = TimeoutError("the read of this event's body was given up")
            future.set_exception(err if isinstance(err, Exception) else given_up)
            future.exception()  # retrieved: a read nobody else waited for logs nothing
            raise
        finally:
            del self._reading[key]
        future.set_result(body)
        if body is not None:
            self._keep(key, body)
        return body

    def _keep(self, key: tuple[str, str], body: str) -> None:
        size = len(body.encode())
        if size > self._max_bytes:
            return
        if key in self._bodies:
            self._drop(key)
        self._bodies[key] = (body, self._clock() + self._max_age)
        self._bytes += size
        while self._bytes > self._max_bytes:
            _, (dropped, _) = self._bodies.popitem(last=False)
            self._bytes -= len(dropped.encode())

    def _drop(self, key: tuple[str, str]) -> None:
        body, _ = self._bodies.pop(key)
        self._bytes -= len(body.encode())

    def __len__(self) -> int:
        return len(self._bodies)
