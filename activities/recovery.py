"""The recovery activities: one page of a recovery at a time, listed from visibility and acted on.

Listing is I/O, so it happens here and never in workflow code: `RecoveryWorkflow` asks for one page after
another, carrying the visibility page token (a keyset cursor: rows that change or leave the result after
it was handed out do not shift the pages that follow) and pacing itself with one durable timer per page.

- `recover_page`: the endpoint's failed deliveries created in the window whose workflow is still open
  (within its retry window), each sent `retry_now(RECOVER)`: one attempt now, logged as `recover` on the
  delivery itself. A delivery whose workflow closed since it was listed is counted `expired`, one that
  refuses another attempt (at its most attempts) `failed`.
- `replay_page`: the tenant's events of the window and types, each delivered to the endpoint as a new
  `DeliveryWorkflow` marked `replay`, unless the endpoint has it already (a delivery of that event exists,
  or was planned when the event was accepted), the event was not an emitted one (a test event), or it is
  an operational `webhook_endpoint.*` event about this very endpoint. The delivery id is the usual one,
  started with REJECT_DUPLICATE: an event is never delivered twice to an endpoint, whoever starts it.

A replay to an ordered endpoint (`request.ordered`) keeps each key's order: its events go to their lanes
(workflows/lane.py) at the end of each, as new deliveries with new sequence numbers, oldest first. Visibility
lists newest first and cannot sort, so its pages are slices of the window in time: the cursor is the
moment the next slice begins, and each slice is narrowed (one count each time) until it holds at most a
page, then listed and sorted by acceptance (the event workflow's start). Within a page each lane is told
its events one after another, and a lane that fails to be told stops there, so none of its later events
goes before it; a full lane holds the page back (retried, as a fault of ours is) until it has room.

Both stop (and say why) once the endpoint is disabled or deleted. A fault of ours raises and Temporal
retries the page; what the page did before the fault is kept as heartbeat details, so that the next try
does not send the same delivery twice. A worker lost mid-page can still repeat one page's requests: a
repeated `retry_now` joins an attempt in flight or just made, or makes one more, as a manual retry would.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowExecution, WorkflowUpdateFailedError
from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.lanes import lane_full, signal_lane
from domain import ids
from domain import search_attributes as sa
from domain.catalog import SUBSCRIBABLE_BY_NAME
from domain.fairness import WorkKind, with_kind
from domain.models import (
    AttemptTrigger,
    DeliveryOrigin,
    EventInput,
    LaneInput,
    LaneItem,
    OrderedOnFailure,
    RecoveryCounts,
    RecoveryPage,
    RecoveryPageRequest,
)
from history import visibility
from history.events import read_event_input
from history.visibility import delivery_search_attributes
from store.database import Endpoint, EndpointStore
from workflows.delivery import DeliveryWorkflow

# Every call to Temporal is bounded; a call that runs out of time is a fault of ours, and the page is
# tried again (what it did before is kept).
RPC_TIMEOUT = timedelta(seconds=10)
STORE_TIMEOUT = 5.0
DONE, FAILED, SKIPPED, EXPIRED = "done", "failed", "skipped", "expired"
# An ordered replay's slices are never narrower than this: events accepted within one microsecond of each
# other (none, in practice) are one page, however many.
MIN_SLICE = timedelta(microseconds=1)


class RecoveryActivities:
    """Holds what every page needs: the worker's Temporal client and the endpoint store."""

    def __init__(
        self,
        client: Client,
        store: EndpointStore,
        *,
        lane_priority: Callable[[str], Priority] | None = None,
        lane_max_queued: int | None = None,
    ) -> None:
        self._client = client
        self._store = store
        # A lane is shared with the endpoint's live events: started, if it must be, with their priority.
        self._lane_priority = lane_priority or (lambda _tenant: Priority())
        self._lane_max_queued = lane_max_queued  # WEBHOOKS_LANE_MAX_QUEUED, which each event brings its lane

    @activity.defn
    async def recover_page(self, request: RecoveryPageRequest) -> RecoveryPage:
        """Re-attempt one page of the endpoint's failed deliveries in the window, each once."""
        stopped = await self._endpoint_unavailable(request)
        if stopped:
            return RecoveryPage(counts=RecoveryCounts(), next_cursor=request.cursor, stopped=stopped)
        query = visibility.failed_deliveries(
            tenant=request.tenant,
            endpoint_id=request.endpoint_id,
            since=request.since,
            until=request.until,
            running=True,
        )
        executions, next_cursor = await self._page(query, request)
        outcomes = await _each_once({e.id: functools.partial(self._retry, e.id) for e in executions})
        return RecoveryPage(counts=_counted(outcomes), next_cursor=next_cursor)

    @activity.defn
    async def replay_page(self, request: RecoveryPageRequest) -> RecoveryPage:
        """Deliver to the endpoint the events of one page that it never received."""
        endpoint, stopped = await self._endpoint(request)
        if stopped:
            return RecoveryPage(counts=RecoveryCounts(), next_cursor=request.cursor, stopped=stopped)
        if request.ordered:
            assert endpoint is not None
            return await self._ordered_replay_page(request, endpoint)
        query = visibility.event_query(
            tenant=request.tenant,
            accepted_since=request.since,
            accepted_until=request.until,
            event_types=request.event_types or [],
        )
        executions, next_cursor = await self._page(query, request)
        event_ids = [_event_id(e) for e in executions]
        # One visibility query for the page, not one call per event. Eventually consistent: a delivery
        # started a moment ago may be missing here, and its start below is then refused as a duplicate.
        delivered = await self._delivered(request, event_ids) if event_ids else set()
        outcomes = await _each_once(
            {
                event_id: _skipped
                if event_id in delivered
                else functools.partial(self._replay, request, event_id)
                for event_id in event_ids
            }
        )
        return RecoveryPage(counts=_counted(outcomes), next_cursor=next_cursor)

    async def _endpoint_unavailable(self, request: RecoveryPageRequest) -> str | None:
        """Why the recovery must stop (its endpoint disabled or deleted), or None."""
        return (await self._endpoint(request))[1]

    async def _endpoint(self, request: RecoveryPageRequest) -> tuple[Endpoint | None, str | None]:
        """The endpoint, and why the recovery must stop (its endpoint disabled or deleted), or None."""
        endpoint = await asyncio.wait_for(
            asyncio.to_thread(self._store.get, request.tenant, request.endpoint_id), STORE_TIMEOUT
        )
        if endpoint is None:
            return None, f"endpoint {request.endpoint_id} was deleted"
        if not endpoint.enabled:
            return endpoint, f"endpoint {request.endpoint_id} was disabled; enable it, then start again"
        return endpoint, None

    async def _ordered_replay_page(self, request: RecoveryPageRequest, endpoint: Endpoint) -> RecoveryPage:
        """The next slice of the window, its events sent to their lanes oldest first."""
        executions, next_cursor = await self._next_slice(request)
        executions.sort(key=lambda e: (e.start_time, _event_id(e)))
        event_ids = [_event_id(e) for e in executions]
        delivered = await self._delivered(request, event_ids) if event_ids else set()
        events = await asyncio.gather(
            *(
                read_event_input(self._client, request.tenant, event_id, rpc_timeout=RPC_TIMEOUT)
                for event_id in event_ids
                if event_id not in delivered
            )
        )
        by_id = {e.event_id: e for e in events if e is not None}
        # One queue per lane, in acceptance order; an event the endpoint has, or may not have, is skipped.
        lanes: dict[tuple[bool, str | None], list[tuple[str, Callable[[], Awaitable[str]]]]] = {}
        for event_id in event_ids:
            event = by_id.get(event_id)
            if event is None or event_id in delivered or not replayable(event, request.endpoint_id):
                lanes.setdefault((False, None), []).append((event_id, _skipped))
                continue
            enqueue = functools.partial(self._enqueue, request, endpoint, event)
            lanes.setdefault((True, event.ordering_key), []).append((event_id, enqueue))
        outcomes = await _each_in_order(list(lanes.values()))
        return RecoveryPage(counts=_counted(outcomes), next_cursor=next_cursor)

    async def _next_slice(self, request: RecoveryPageRequest) -> tuple[list[WorkflowExecution], str | None]:
        """The events of the next slice of the window holding at most a page (more only when they were
        accepted within `MIN_SLICE`), and the cursor of the slice after it (None: the window is done).
        Slices are half-open, `[start, end)`, so that one's end is the next one's start: none is listed
        twice or missed, whatever precision visibility compares times with."""
        start, span = _slice_cursor(request)
        end = request.until + MIN_SLICE  # `until` itself is in the window
        while start < end:
            span = min(span, end - start)
            count = await self._count_events(request, start, start + span)
            while count > request.page_size and span > MIN_SLICE:
                span = max(MIN_SLICE, span / 2)
                count = await self._count_events(request, start, start + span)
            if count:
                query = self._slice_query(request, start, start + span)
                found = [e async for e in self._client.list_workflows(query, rpc_timeout=RPC_TIMEOUT)]
                after = start + span
                # A slice that held at most half a page is followed by one twice as long.
                following = span * 2 if count <= request.page_size // 2 else span
                return found, (_slice_cursor_text(after, following) if after < end else None)
            start, span = start + span, span * 2  # an empty slice: on to a longer one at once
        return [], None

    def _slice_query(self, request: RecoveryPageRequest, start: datetime, end: datetime) -> str:
        return visibility.event_query(
            tenant=request.tenant,
            accepted_since=start,
            accepted_before=end,
            event_types=request.event_types or [],
        )

    async def _count_events(self, request: RecoveryPageRequest, start: datetime, end: datetime) -> int:
        query = self._slice_query(request, start, end)
        return (await self._client.count_workflows(query, rpc_timeout=RPC_TIMEOUT)).count

    async def _enqueue(self, request: RecoveryPageRequest, endpoint: Endpoint, event: EventInput) -> str:
        """Send `event` to the end of its lane on the endpoint, as a new delivery marked `replay`."""
        key = event.ordering_key
        if await lane_full(self._client, request.tenant, request.endpoint_id, key, rpc_timeout=RPC_TIMEOUT):
            raise ApplicationError(
                f"the lane of ordering key {key!r} on endpoint {request.endpoint_id} is full: the replay "
                "waits until it drains (unblock it, or make the receiver faster)",
                type="LaneFull",
            )
        item = _replayed(
            event, request, on_failure=endpoint.ordered_on_failure, max_queued=self._lane_max_queued
        )
        await signal_lane(
            self._client,
            LaneInput(tenant=request.tenant, endpoint_id=request.endpoint_id, ordering_key=key),
            item,
            task_queue=activity.info().task_queue,
            priority=self._lane_priority(request.tenant),
            rpc_timeout=RPC_TIMEOUT,
        )
        return DONE

    async def _page(
        self, query: str, request: RecoveryPageRequest
    ) -> tuple[list[WorkflowExecution], str | None]:
        token = base64.b64decode(request.cursor) if request.cursor else None
        pages = self._client.list_workflows(
            query, page_size=request.page_size, next_page_token=token, rpc_timeout=RPC_TIMEOUT
        )
        await pages.fetch_next_page()
        next_token = pages.next_page_token
        return list(pages.current_page or []), base64.b64encode(next_token).decode() if next_token else None

    async def _retry(self, workflow_id: str) -> str:
        handle = self._client.get_workflow_handle_for(DeliveryWorkflow.run, workflow_id)
        try:
            await handle.execute_update(
                DeliveryWorkflow.retry_now, AttemptTrigger.RECOVER, rpc_timeout=RPC_TIMEOUT
            )
        except WorkflowUpdateFailedError:  # its validator refused: at its most attempts
            return FAILED
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:  # closed since it was listed: its window is over
                return EXPIRED
            raise
        return DONE

    async def _delivered(self, request: RecoveryPageRequest, event_ids: list[str]) -> set[str]:
        query = visibility.delivery_query(
            tenant=request.tenant, endpoint_id=request.endpoint_id, event_ids=event_ids
        )
        found = self._client.list_workflows(query, page_size=len(event_ids), rpc_timeout=RPC_TIMEOUT)
        return {e.typed_search_attributes.get(sa.EVENT_ID) or "" async for e in found}

    async def _replay(self, request: RecoveryPageRequest, event_id: str) -> str:
        event = await read_event_input(self._client, request.tenant, event_id, rpc_timeout=RPC_TIMEOUT)
        if event is None or not replayable(event, request.endpoint_id):
            return SKIPPED
        delivery = _replayed(event, request).delivery(event.tenant, request.endpoint_id)
        try:
            await self._client.start_workflow(
                DeliveryWorkflow.run,
                delivery,
                id=ids.delivery_workflow_id(delivery.tenant, delivery.delivery_id),
                task_queue=activity.info().task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                # A delivery runs once: one that exists, open or closed, is the endpoint's already.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=delivery_search_attributes(delivery, event.body),
                # Bulk work, with the tenant's fairness key and weight: this page's own (the recovery's).
                priority=with_kind(activity.info().priority, WorkKind.BULK, tenant=request.tenant),
                rpc_timeout=RPC_TIMEOUT,
            )
        except WorkflowAlreadyStartedError:
            return SKIPPED
        return DONE


def replayable(event: EventInput, endpoint_id: str) -> bool:
    """Whether a replay may deliver `event` to the endpoint: an emitted event (not a test event sent to one
    endpoint), not already meant for it when accepted, and not an operational event about itself."""
    if event.origin is not DeliveryOrigin.EVENT or endpoint_id in event.endpoint_ids:
        return False
    return operational_subject(event) != endpoint_id


def _replayed(
    event: EventInput,
    request: RecoveryPageRequest,
    *,
    on_failure: OrderedOnFailure = OrderedOnFailure.BLOCK,
    max_queued: int | None = None,
) -> LaneItem:
    """`event` replayed to the request's endpoint: a new delivery, marked `replay`, sent to its lane on an
    ordered endpoint (with the lane's `on_failure` and `max_queued`) or started as it is on another. It is
    made now: lists, counts and a later recovery's window see it as new."""
    return LaneItem(
        event_id=event.event_id,
        delivery_id=ids.delivery_id(event.event_id, request.endpoint_id),
        webhook_type=event.webhook_type,
        created_at=datetime.now(UTC),
        policy=request.policy,
        origin=DeliveryOrigin.REPLAY,
        on_failure=on_failure,
        max_queued=max_queued,
    )


def operational_subject(event: EventInput) -> str | None:
    """The endpoint an operational `webhook_endpoint.*` event is about: its object, as the object of any
    event is what the event is about. None for a business event."""
    event_type = SUBSCRIBABLE_BY_NAME.get(event.webhook_type)
    if event_type is None or not event_type.operational:
        return None
    try:
        subject = json.loads(event.body)["data"]["object"].get("id")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return subject if isinstance(subject, str) else None


def _event_id(execution: WorkflowExecution) -> str:
    return execution.typed_search_attributes.get(sa.EVENT_ID) or execution.id.rsplit(":", 1)[-1]


async def _skipped() -> str:
    return SKIPPED


async def _each_once(work: dict[str, Callable[[], Awaitable[str]]]) -> dict[str, str]:
    """Each item's outcome, items done by an earlier try of this page left alone.

    On a fault of ours, what was done is recorded as heartbeat details, which Temporal hands to the next
    try of the page, and the fault is raised for Temporal to retry.
    """
    info = activity.info()
    earlier: dict[str, str] = dict(info.heartbeat_details[0]) if info.heartbeat_details else {}
    keys = [key for key in work if key not in earlier]
    results = await asyncio.gather(*(work[key]() for key in keys), return_exceptions=True)
    outcomes = dict(earlier)
    fault: BaseException | None = None
    for key, result in zip(keys, results, strict=True):
        if isinstance(result, BaseException):
            fault = fault or result
        else:
            outcomes[key] = result
    if fault is not None:
        activity.heartbeat(outcomes)
        raise fault
    return outcomes


async def _each_in_order(lanes: list[list[tuple[str, Callable[[], Awaitable[str]]]]]) -> dict[str, str]:
    """Each lane's items one after another, in the order given, the lanes side by side; a lane whose item
    fails (a fault of ours) stops there, so that none of its later items goes before it. Items done by an
    earlier try of this page are left alone; on a fault, what was done is kept as heartbeat details (as in
    `_each_once`) and the fault is raised for Temporal to retry the page."""
    info = activity.info()
    earlier: dict[str, str] = dict(info.heartbeat_details[0]) if info.heartbeat_details else {}
    outcomes = dict(earlier)

    async def run(items: list[tuple[str, Callable[[], Awaitable[str]]]]) -> None:
        for key, work in items:
            if key not in earlier:
                outcomes[key] = await work()

    results = await asyncio.gather(*(run(items) for items in lanes), return_exceptions=True)
    fault = next((r for r in results if isinstance(r, BaseException)), None)
    if fault is not None:
        activity.heartbeat(outcomes)
        raise fault
    return outcomes


def _slice_cursor(request: RecoveryPageRequest) -> tuple[datetime, timedelta]:
    """Where an ordered replay's next slice starts, and how long it is tried first (the whole window at
    the start)."""
    if request.cursor is None:
        return request.since, request.until + MIN_SLICE - request.since
    cursor = json.loads(request.cursor)
    return datetime.fromisoformat(cursor["start"]), timedelta(microseconds=int(cursor["span_us"]))


def _slice_cursor_text(start: datetime, span: timedelta) -> str:
    return json.dumps({"start": start.isoformat(), "span_us": span // MIN_SLICE})


def _counted(outcomes: dict[str, str]) -> RecoveryCounts:
    values = list(outcomes.values())
    return RecoveryCounts(
        done=values.count(DONE),
        failed=values.count(FAILED),
        skipped=values.count(SKIPPED),
        expired=values.count(EXPIRED),
    )
