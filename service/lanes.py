"""Ordered lanes: read one (its head, its sequence, whether it is blocked) and skip its blocked head.

A lane is a `LaneWorkflow` (workflows/lane.py) whose id the endpoint and the ordering key name, so both
calls go straight to it: a query to read, an update to skip, which its validator refuses unless the head
named is the lane's blocked head (or a head whose delivery workflow closed without telling the lane).

A skip goes through the head's delivery first (`DeliveryWorkflow.pass_over`), which waits until no manual
retry of it is in flight and then takes no more: the lane never starts the next event while this one is
being POSTed. An endpoint made unordered keeps the lanes it had readable and skippable, so that the events
they still hold (they go on being delivered in order) are never out of reach.

An endpoint deleted ends its lanes (`end`): each running one is told, and closes out what it holds.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from domain import ids
from domain.models import DeliveryStatus, LaneSkip, LaneView
from history.visibility import running_lanes
from service.boundary import boundary, in_store, updated
from service.errors import Conflict, NotFound
from store.database import EndpointStore
from workflows.delivery import DeliveryWorkflow
from workflows.lane import LaneWorkflow

log = logging.getLogger("webhooks.lanes")
# Lanes of a deleted endpoint signalled at once (an endpoint with many keys has as many lanes).
TELL_AT_ONCE = 50
# How long a DELETE spends telling them, in RPC timeouts: each call is bounded, but an endpoint with
# thousands of keys is many pages and batches of calls, and the delete is made before the first.
TELL_WITHIN_RPC_TIMEOUTS = 2


class Lanes:
    def __init__(self, client: Client, store: EndpointStore, *, rpc_timeout: timedelta) -> None:
        self._client = client
        self._store = store
        self._rpc = rpc_timeout

    async def _handle(
        self, tenant: str, endpoint_id: str, ordering_key: str | None
    ) -> WorkflowHandle[LaneWorkflow, None]:
        endpoint = await in_store(self._store.get, tenant, endpoint_id)
        if endpoint is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        workflow_id = ids.lane_workflow_id(tenant, endpoint_id, ordering_key)
        handle = self._client.get_workflow_handle_for(LaneWorkflow.run, workflow_id)
        if not endpoint.ordered and not await self._exists(handle):
            raise Conflict(
                f"endpoint {endpoint_id} is not ordered, so it has no lanes; "
                'PATCH it with {"ordered": true}'
            )
        return handle

    async def _exists(self, handle: WorkflowHandle[Any, Any]) -> bool:
        """Whether the workflow has a run, open or closed (a lane of an endpoint ordered once)."""
        try:
            await handle.describe(rpc_timeout=self._rpc)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    @staticmethod
    def _empty(endpoint_id: str, ordering_key: str | None) -> LaneView:
        return LaneView(
            endpoint_id=endpoint_id, ordering_key=ordering_key, sequence=0, head=None, queued=0, blocked=False
        )

    async def _pass_over(self, tenant: str, delivery_id: str, *, blocked: bool) -> bool:
        """Make the head's delivery take no more retries, once none is in flight; True if its workflow is
        closed (terminated, failed, its window over), which lets the lane pass it even if it never told the
        lane how it ended. A delivery that succeeded meanwhile is not skipped: the lane goes on by itself."""
        handle = self._client.get_workflow_handle_for(
            DeliveryWorkflow.run, ids.delivery_workflow_id(tenant, delivery_id)
        )
        try:
            description = await handle.describe(rpc_timeout=self._rpc)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise Conflict(
                    f"delivery {delivery_id} has not started yet: its lane is starting it; read the lane"
                ) from None
            raise
        if description.status is not WorkflowExecutionStatus.RUNNING:
            return True
        if not blocked:  # still on its schedule: the lane waits for it
            raise Conflict("this lane is not blocked: only a blocked lane's head can be skipped")
        try:
            status = await updated(
                handle.execute_update(DeliveryWorkflow.pass_over, rpc_timeout=self._rpc),
                not_taken=f"delivery {delivery_id} did not stop within {self._rpc.total_seconds():g} s (an "
                "attempt of it may be in flight); read the lane, and skip again if it is still blocked on it",
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:  # closed in between
                return True
            raise
        if status is DeliveryStatus.SUCCEEDED:
            raise Conflict(
                f"delivery {delivery_id} succeeded (a retry of it was in flight): the lane goes on by itself"
            )
        return False

    @boundary
    async def get(self, tenant: str, endpoint_id: str, ordering_key: str | None) -> LaneView:
        """The lane of `ordering_key` (None: events without a key); one no event reached yet is empty."""
        handle = await self._handle(tenant, endpoint_id, ordering_key)
        try:
            return await handle.query(LaneWorkflow.view, rpc_timeout=self._rpc)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return self._empty(endpoint_id, ordering_key)
            raise

    @boundary(changes_temporal=True)
    async def skip(
        self, tenant: str, endpoint_id: str, ordering_key: str | None, delivery_id: str
    ) -> LaneView:
        """Move the lane past its blocked head `delivery_id`, which stays failed."""
        handle = await self._handle(tenant, endpoint_id, ordering_key)
        try:
            lane = await handle.query(LaneWorkflow.view, rpc_timeout=self._rpc)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise Conflict("this lane has had no event yet: there is nothing to skip") from None
            raise
        if lane.head is None:
            raise Conflict("this lane is not blocked: only a blocked lane's head can be skipped")
        if lane.head.delivery_id != delivery_id:
            raise Conflict(f"the lane's blocked head is {lane.head.delivery_id}, not {delivery_id}")
        # Its delivery stops first (never while an attempt of it is in flight); the lane's own check of the
        # head follows, in its update's validator.
        closed = await self._pass_over(tenant, delivery_id, blocked=lane.blocked)
        try:
            return await updated(
                handle.execute_update(
                    LaneWorkflow.skip,
                    LaneSkip(delivery_id=delivery_id, delivery_closed=closed),
                    rpc_timeout=self._rpc,
                ),
                not_taken=f"no worker took the skip within {self._rpc.total_seconds():g} s (none is running, "
                "or none can read it yet: mid-rotation, a worker lacks the API's encryption key); it may "
                "still be made when one can, so read the lane before skipping again",
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise Conflict("this lane has had no event yet: there is nothing to skip") from None
            raise

    async def end(self, tenant: str, endpoint_id: str) -> None:
        """Tell each running lane of a deleted endpoint that it is gone: the lane checks the store, starts
        the events it holds as deliveries that fail as any to a deleted endpoint does, and closes
        (workflows/lane.py). Never raises, and is done within `TELL_WITHIN_RPC_TIMEOUTS`: the endpoint is
        deleted already, and a lane not told now (Temporal unreachable or slow, one started a moment ago
        that visibility does not list yet, or past the deadline among thousands) ends when its head next
        finds the endpoint gone; one idle or blocked stays open (docs/delivery.md says how to end it)."""
        told = 0

        async def tell(workflow_id: str) -> None:
            nonlocal told
            handle = self._client.get_workflow_handle_for(LaneWorkflow.run, workflow_id)
            try:
                await handle.signal(LaneWorkflow.endpoint_deleted, rpc_timeout=self._rpc)
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND:  # closed meanwhile: nothing to end
                    raise
            told += 1

        try:
            async with asyncio.timeout(TELL_WITHIN_RPC_TIMEOUTS * self._rpc.total_seconds()):
                found = self._client.list_workflows(
                    running_lanes(tenant=tenant, endpoint_id=endpoint_id), rpc_timeout=self._rpc
                )
                lanes = [execution.id async for execution in found]
                for first in range(0, len(lanes), TELL_AT_ONCE):
                    await asyncio.gather(*(tell(w) for w in lanes[first : first + TELL_AT_ONCE]))
        # Temporal unreachable (an RPC error, or a lazy client's failed connect) or slow, or more lanes than
        # the deadline lets us tell: the delete is made and must be answered as made, whatever this meets.
        except Exception as err:
            log.warning(
                "the lanes of deleted endpoint %s were not all told (%d were): %s",
                endpoint_id,
                told,
                repr(err) if isinstance(err, TimeoutError) else err,
            )
