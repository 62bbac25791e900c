"""What an ordered lane (workflows/lane.py) asks of the outside world: its last sequence number, kept in
the store; the body of the event whose turn has come, read from the event's workflow; telling the tenant it
is blocked; and, for an event workflow, sending the event to its lanes (`signal_lane`, which the API uses
too).

`webhook_endpoint.lane_blocked` goes the way every operational event goes: owed in the store's outbox
(store/health.py) in one transaction, then sent at once, or by the worker's sweep if Temporal or the store
cannot take it now. The notice's id names the endpoint, the lane, its head's sequence and the moment the
lane blocked, so a retried activity owes it once.

A lane whose endpoint was deleted ends (`endpoint_exists`, `close_out`): each event it still held is
started as a delivery of its own, from here rather than as the lane's child (so that the lane's history
holds no bodies), and fails as every delivery to a deleted endpoint does, its log saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import (
    Priority,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain import ids
from domain import search_attributes as sa
from domain.models import (
    EventInput,
    LaneBlocked,
    LaneBody,
    LaneCloseOut,
    LaneEndpoint,
    LaneInput,
    LaneItem,
    LaneSequence,
)
from history.events import read_event_input
from history.visibility import delivery_search_attributes
from store.database import EndpointStore
from store.health import Transition, owe
from store.lanes import LaneSequences

STORE_TIMEOUT = 5.0
TEMPORAL_TIMEOUT = timedelta(seconds=10)


async def signal_lane(
    client: Client,
    lane: LaneInput,
    item: LaneItem,
    *,
    task_queue: str,
    priority: Priority,
    rpc_timeout: timedelta,
) -> None:
    """Send `item` to its lane, starting the lane if it is not running (signal-with-start). A lane that
    has the item already ignores it."""
    from workflows.lane import LaneWorkflow  # the workflow module imports this one

    await client.start_workflow(
        LaneWorkflow.run,
        lane,
        id=ids.lane_workflow_id(lane.tenant, lane.endpoint_id, lane.ordering_key),
        task_queue=task_queue,
        start_signal="enqueue",  # LaneWorkflow.enqueue: signal-with-start takes the name only
        start_signal_args=[item],
        search_attributes=sa.of_endpoint(lane.tenant, lane.endpoint_id),
        priority=priority,
        rpc_timeout=rpc_timeout,
    )


async def lane_full(
    client: Client, tenant: str, endpoint_id: str, ordering_key: str | None, *, rpc_timeout: timedelta
) -> bool:
    """Whether the lane holds as many events as it takes (its memo says so: a describe, which needs no
    worker). A lane not started yet, or closed, is not full."""
    from workflows.lane import FULL_MEMO  # the workflow module imports this one

    handle = client.get_workflow_handle(ids.lane_workflow_id(tenant, endpoint_id, ordering_key))
    try:
        description = await handle.describe(rpc_timeout=rpc_timeout)
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    if description.status is not WorkflowExecutionStatus.RUNNING:
        return False
    return bool(await description.memo_value(FULL_MEMO, False))


class LaneActivities:
    def __init__(
        self,
        store: EndpointStore,
        *,
        tell: Callable[[str, str], Awaitable[None]],
        client: Client | None = None,
        task_queue: str = "",
        priority: Callable[[str], Priority] | None = None,
        max_queued: int | None = None,
    ) -> None:
        self._store = store
        self._max_queued = max_queued  # WEBHOOKS_LANE_MAX_QUEUED, which each event brings its lane
        self._tell = tell
        self._client = client
        self._task_queue = task_queue
        self._priority = priority or (lambda _tenant: Priority())
        self._sequences = LaneSequences(store.engine)

    @activity.defn
    async def lane_blocked(self, blocked: LaneBlocked) -> None:
        """Owe `webhook_endpoint.lane_blocked` and send it (a fault of ours raises, and is retried)."""

        def write() -> None:
            with self._store.engine.begin() as conn:
                owe(
                    conn,
                    blocked.tenant,
                    blocked.endpoint_id,
                    Transition.LANE_BLOCKED,
                    blocked.at,
                    lane={
                        "ordering_key": blocked.ordering_key,
                        "head": {"delivery_id": blocked.delivery_id, "sequence": blocked.sequence},
                    },
                )

        await asyncio.wait_for(asyncio.to_thread(write), STORE_TIMEOUT)
        await self._tell(blocked.tenant, blocked.endpoint_id)

    @activity.defn
    async def last_sequence(self, lane: LaneSequence) -> int:
        """The last sequence number any run of the lane handed out (0: none)."""
        return await asyncio.wait_for(
            asyncio.to_thread(self._sequences.last, lane.endpoint_id, lane.ordering_key), STORE_TIMEOUT
        )

    @activity.defn
    async def advance_sequence(self, lane: LaneSequence) -> None:
        """Record `lane.sequence` as handed out, before its delivery starts (never lowers it)."""
        await asyncio.wait_for(
            asyncio.to_thread(
                self._sequences.advance, lane.tenant, lane.endpoint_id, lane.ordering_key, lane.sequence
            ),
            STORE_TIMEOUT,
        )

    @activity.defn
    async def lane_body(self, event: LaneBody) -> str | None:
        """The body of `event`, from its workflow's first history event; None once Temporal keeps it no
        more (the log's retention is over)."""
        assert self._client is not None, "LaneActivities built without a client cannot read events"
        accepted = await read_event_input(
            self._client, event.tenant, event.event_id, rpc_timeout=TEMPORAL_TIMEOUT
        )
        return accepted.body if accepted is not None else None

    @activity.defn
    async def tell_lanes(self, event: EventInput) -> None:
        """Send an accepted event to its lane on each of its ordered endpoints that still exists: the API
        did so before its 202, unless it died first; a lane told twice ignores the second. The event comes
        without its body (an empty one): a lane's item is a reference."""
        assert self._client is not None, "LaneActivities built without a client cannot tell lanes"
        client = self._client
        for endpoint_id in event.ordered_endpoint_ids:
            endpoint = await asyncio.wait_for(
                asyncio.to_thread(self._store.get, event.tenant, endpoint_id), STORE_TIMEOUT
            )
            if endpoint is None:
                continue  # deleted since: nobody to deliver to
            item = LaneItem(
                event_id=event.event_id,
                delivery_id=ids.delivery_id(event.event_id, endpoint_id),
                webhook_type=event.webhook_type,
                created_at=event.created_at,
                policy=event.policies.get(endpoint_id, event.policy),
                origin=event.origin,
                on_failure=endpoint.ordered_on_failure,
                max_queued=self._max_queued,
            )
            await signal_lane(
                client,
                LaneInput(tenant=event.tenant, endpoint_id=endpoint_id, ordering_key=event.ordering_key),
                item,
                task_queue=self._task_queue or activity.info().task_queue,
                priority=self._priority(event.tenant),
                rpc_timeout=TEMPORAL_TIMEOUT,
            )

    @activity.defn
    async def endpoint_exists(self, endpoint: LaneEndpoint) -> bool:
        """Whether the lane's endpoint is still in the store (disabled or not)."""
        found = await asyncio.wait_for(
            asyncio.to_thread(self._store.get, endpoint.tenant, endpoint.endpoint_id), STORE_TIMEOUT
        )
        return found is not None

    @activity.defn
    async def close_out(self, lane: LaneCloseOut) -> int:
        """Start a delivery for each event a deleted endpoint's lane held, outside the lane: its first
        attempt finds the endpoint gone and fails, nothing sent, as an unordered delivery's would. One
        started already (a retried activity) is left alone. How many were started."""
        from workflows.delivery import DeliveryWorkflow  # the workflow modules import this one

        assert self._client is not None, "LaneActivities built without a client cannot close lanes"
        client = self._client

        async def start(item: LaneItem) -> int:
            event = await read_event_input(client, lane.tenant, item.event_id, rpc_timeout=TEMPORAL_TIMEOUT)
            if event is None:  # no longer kept: nothing to log it with
                return 0
            delivery = item.delivery(lane.tenant, lane.endpoint_id)
            try:
                await client.start_workflow(
                    DeliveryWorkflow.run,
                    delivery,
                    id=ids.delivery_workflow_id(lane.tenant, item.delivery_id),
                    task_queue=self._task_queue or activity.info().task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=delivery_search_attributes(delivery, event.body),
                    priority=self._priority(lane.tenant),
                    rpc_timeout=TEMPORAL_TIMEOUT,
                )
            except WorkflowAlreadyStartedError:
                return 0
            return 1

        # Every start ends before the activity does, a failed one or not: none is left running behind
        # its failure (the retry skips those that were started); then the first failure is the activity's.
        outcomes = await asyncio.gather(*(start(item) for item in lane.items), return_exceptions=True)
        started = 0
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            started += outcome
        return started
