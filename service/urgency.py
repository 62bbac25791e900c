"""A manual retry of one delivery is live work (domain/fairness.py), whatever made the delivery: before the
retry is asked for, the delivery's workflow, and the attempt the retry would join, go to the live priority.

A replay's deliveries run at bulk priority, behind all live work. The retry reaches a delivery as an
update, which runs in a workflow task of the workflow's own priority: under a live backlog it waited for
every live workflow task queued (and the API, waiting for a worker to take the update, answered 503). A
retry also joins an attempt already queued, which keeps the priority it was scheduled with. Temporal 1.30
and later change both in place (UpdateWorkflowExecutionOptions, UpdateActivityOptions), the priority key
alone: the tenant's fairness key and weight stay. The workflow's later tasks keep the live priority; each
later attempt still carries its own kind's.

Best effort, within half the API's bound for one answer from Temporal: the retry is asked for either way,
and only comes sooner for it. A Temporal that refuses the change (before 1.30) is not asked again by this
process.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.activity.v1 import ActivityOptions
from temporalio.api.common.v1 import Priority, WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    UpdateActivityOptionsRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.delivery import DeliveryActivities
from core.logs import FIELDS
from core.temporal import is_timeout, is_unreachable
from domain.fairness import PRIORITY_KEYS, WorkKind, ranks_after
from history import executions
from service.errors import TemporalUnavailable

log = logging.getLogger(__name__)

ATTEMPT_ACTIVITY = DeliveryActivities.deliver_once.__name__  # the attempt, which a retry may join
LIVE = Priority(priority_key=PRIORITY_KEYS[WorkKind.LIVE])
ONLY_THE_KEY = FieldMask(paths=["priority.priority_key"])
# What a Temporal without the change answers: the mask names a field it does not have.
NOT_SUPPORTED = (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNIMPLEMENTED)


class LiveRaise:
    """`await raise_to_live(workflow_id)` before a manual retry of the delivery of `workflow_id`."""

    def __init__(self, client: Client, *, rpc_timeout: timedelta) -> None:
        self._client = client
        self._budget = rpc_timeout / 2
        self._not_supported = False

    async def __call__(self, workflow_id: str) -> None:
        """The delivery raised if it ranks after live work, and left as it is when it does not, when it is
        not running (the update says why), or when Temporal refuses or does not answer within the budget.
        `TemporalUnavailable` when Temporal cannot be reached: nothing was asked of it, nor could the
        retry be."""
        if self._not_supported:
            return
        try:
            async with asyncio.timeout(self._budget.total_seconds()):
                await self._raise(workflow_id)
        except TimeoutError:
            self._kept(workflow_id, f"no answer from Temporal within {self._budget.total_seconds():g} s")
        except RPCError as err:
            if is_unreachable(err) and not is_timeout(err):
                raise TemporalUnavailable() from None
            if err.status in NOT_SUPPORTED:
                self._not_supported = True
            self._kept(workflow_id, f"{err.status.name if err.status else 'refused'}: {err.message}")
        except RuntimeError as err:
            if is_unreachable(err):  # a lazy client that could not connect
                raise TemporalUnavailable() from None
            raise

    async def _raise(self, workflow_id: str) -> None:
        description = await executions.describe(self._client, workflow_id, rpc_timeout=self._budget)
        if description is None or description.status is not WorkflowExecutionStatus.RUNNING:
            return
        raw = description.raw_description
        execution = WorkflowExecution(workflow_id=workflow_id, run_id=description.run_id)
        if ranks_after(raw.workflow_execution_info.priority.priority_key or None, WorkKind.LIVE):
            await self._client.workflow_service.update_workflow_execution_options(
                UpdateWorkflowExecutionOptionsRequest(
                    namespace=self._client.namespace,
                    workflow_execution=execution,
                    workflow_execution_options=WorkflowExecutionOptions(priority=LIVE),
                    update_mask=ONLY_THE_KEY,
                    identity=self._client.identity,
                ),
                retry=True,
                timeout=self._budget,
            )
        for pending in raw.pending_activities:
            queued = pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            if not (queued and pending.activity_type.name == ATTEMPT_ACTIVITY):
                continue
            if ranks_after(pending.priority.priority_key or None, WorkKind.LIVE):
                await self._client.workflow_service.update_activity_options(
                    UpdateActivityOptionsRequest(
                        namespace=self._client.namespace,
                        execution=execution,
                        id=pending.activity_id,
                        activity_options=ActivityOptions(priority=LIVE),
                        update_mask=ONLY_THE_KEY,
                        identity=self._client.identity,
                    ),
                    retry=True,
                    timeout=self._budget,
                )

    def _kept(self, workflow_id: str, why: str) -> None:
        log.warning(
            "manual retry at the priority its delivery has",
            extra={FIELDS: {"workflow_id": workflow_id, "error": why}},
        )
