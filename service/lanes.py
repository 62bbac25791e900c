"""Ordered lanes: read one (its head, its sequence, whether it is blocked) and skip its blocked head.

A lane is a `LaneWorkflow` (workflows/lane.py) whose id the endpoint and the ordering key name, so both
calls go straight to it: a query to read, an update to skip, which its validator refuses unless the head
named is the lane's blocked head.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from domain import ids
from domain.models import LaneView
from service.boundary import boundary, in_store
from service.errors import Conflict, MayHaveBeenApplied, NotFound
from store.database import EndpointStore
from workflows.lane import LaneWorkflow


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
        if not endpoint.ordered:
            raise Conflict(
                f"endpoint {endpoint_id} is not ordered, so it has no lanes; "
                'PATCH it with {"ordered": true}'
            )
        workflow_id = ids.lane_workflow_id(tenant, endpoint_id, ordering_key)
        return self._client.get_workflow_handle_for(LaneWorkflow.run, workflow_id)

    @staticmethod
    def _empty(endpoint_id: str, ordering_key: str | None) -> LaneView:
        return LaneView(
            endpoint_id=endpoint_id, ordering_key=ordering_key, sequence=0, head=None, queued=0, blocked=False
        )

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
            return await handle.execute_update(LaneWorkflow.skip, delivery_id, rpc_timeout=self._rpc)
        except WorkflowUpdateFailedError as err:
            raise Conflict(str(err.cause or err)) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise MayHaveBeenApplied(
                f"no worker took the skip within {self._rpc.total_seconds():g} s; it may still be made "
                "when a worker is back, so read the lane before skipping again"
            ) from None
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise Conflict("this lane has had no event yet: there is nothing to skip") from None
            raise
