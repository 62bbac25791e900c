"""A manual retry of one delivery is live work (domain/fairness.py), whatever made the delivery: before the
retry is asked for, a delivery made as bulk work (a replay's) goes to the live priority, and so does the
attempt the retry will join, if that is queued and untried at a priority after live work's.

A replay's deliveries run at bulk priority, behind all live work. The retry reaches a delivery as an
update, which runs in a workflow task of the workflow's own priority: under a live backlog it waited for
every live workflow task queued (and the API, waiting for a worker to take the update, answered 503). A
retry also joins an attempt already queued (a replay's first, or any delivery's scheduled retry), which
keeps the priority it was scheduled with. Temporal 1.30 and later change both in place
(UpdateWorkflowExecutionOptions, UpdateActivityOptions), the priority key alone: the tenant's fairness
key and weight stay. The workflow's later tasks keep the live priority; each later attempt still carries
its own kind's. An attempt already tried is left alone: Temporal would set its next try by the retry
policy's interval, and drop the delay it was given (a Retry-After's among them). Temporal queues a raised
attempt anew a moment after the change (a second or a few; the stale task is dropped): far sooner than
its turn behind a live backlog, a little later than it would have gone with nothing live ahead of it.

Best effort, within a share of the retry's bound: when Temporal refuses or is slow, the retry is asked
for at the priority the delivery has. Nothing is asked of a Temporal whose version reads before 1.30
(read once per process): it refuses the change to a workflow, and takes the change to an attempt, drops
the priority, and queues the attempt anew behind its peers. One whose version cannot be read is asked,
and never again once it refuses a change or answers one without the priority asked for.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.activity.v1 import ActivityOptions
from temporalio.api.common.v1 import Priority, WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo, WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    GetSystemInfoRequest,
    UpdateActivityOptionsRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.delivery import DeliveryActivities
from core.logs import FIELDS
from core.temporal import is_unreachable
from domain.fairness import PRIORITY_KEYS, WorkKind, ranks_after
from history import executions
from service.errors import TemporalUnavailable

log = logging.getLogger(__name__)

ATTEMPT_ACTIVITY = DeliveryActivities.deliver_once.__name__  # the attempt, which a retry may join
LIVE = Priority(priority_key=PRIORITY_KEYS[WorkKind.LIVE])
ONLY_THE_KEY = FieldMask(paths=["priority.priority_key"])
PRIORITY_CHANGES_SINCE = (
    1,
    30,
    0,
)  # UpdateWorkflowExecutionOptions and UpdateActivityOptions take a priority
# What a Temporal before 1.30 answers the change to a workflow: the mask names a field it does not have.
NOT_SUPPORTED = (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNIMPLEMENTED)


class LiveRaise:
    """`await raise_to_live(workflow_id, within=…)` before a manual retry of the delivery of `workflow_id`."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._version_read = False
        # Whether Temporal changes priorities in place: None while neither its version nor an answer said
        # (then it is asked); False once either said not, and this process asks no more.
        self._supported: bool | None = None

    async def __call__(self, workflow_id: str, *, within: timedelta) -> None:
        """The running delivery raised if it was made as bulk work, and the attempt the retry will join if
        it is queued behind live work; left as it is otherwise (a delivery not running: the update says
        why), and when Temporal refuses or does not answer `within`. `TemporalUnavailable` when Temporal
        says it cannot be reached: the retry could not be asked for either."""
        if self._supported is False:
            return
        try:
            async with asyncio.timeout(within.total_seconds()):
                await self._raise(workflow_id, within)
        except TimeoutError:
            self._not_raised(workflow_id, f"no answer from Temporal within {within.total_seconds():g} s")
        except RPCError as err:
            if err.status is RPCStatusCode.UNAVAILABLE:
                raise TemporalUnavailable() from None
            self._not_raised(workflow_id, f"{err.status.name}: {err.message}")
        except RuntimeError as err:
            if is_unreachable(err):  # a lazy client that could not connect
                raise TemporalUnavailable() from None
            raise

    async def _raise(self, workflow_id: str, within: timedelta) -> None:
        description = await executions.describe(self._client, workflow_id, rpc_timeout=within)
        if description is None or description.status is not WorkflowExecutionStatus.RUNNING:
            return
        raw = description.raw_description
        queued = [
            pending for pending in raw.pending_activities if _queued_untried_attempt_behind_live(pending)
        ]
        behind = ranks_after(raw.workflow_execution_info.priority.priority_key or None, WorkKind.LIVE)
        if not behind and not queued:
            return
        if not await self._server_supports_it(within):
            return
        execution = WorkflowExecution(workflow_id=workflow_id, run_id=description.run_id)
        if behind:  # bulk work: its update's workflow task would wait for every live one
            try:
                changed = await self._client.workflow_service.update_workflow_execution_options(
                    UpdateWorkflowExecutionOptionsRequest(
                        namespace=self._client.namespace,
                        workflow_execution=execution,
                        workflow_execution_options=WorkflowExecutionOptions(priority=LIVE),
                        update_mask=ONLY_THE_KEY,
                        identity=self._client.identity,
                    ),
                    retry=True,
                    timeout=within,
                )
            except RPCError as err:
                if err.status in NOT_SUPPORTED and self._supported is None:
                    self._stop_asking(workflow_id, f"{err.status.name}: {err.message}")
                    return
                raise
            if changed.workflow_execution_options.priority.priority_key != LIVE.priority_key:
                self._not_kept(workflow_id)
                return
        for pending in queued:  # the attempt the retry will join
            changed_attempt = await self._client.workflow_service.update_activity_options(
                UpdateActivityOptionsRequest(
                    namespace=self._client.namespace,
                    execution=execution,
                    id=pending.activity_id,
                    activity_options=ActivityOptions(priority=LIVE),
                    update_mask=ONLY_THE_KEY,
                    identity=self._client.identity,
                ),
                retry=True,
                timeout=within,
            )
            if changed_attempt.activity_options.priority.priority_key != LIVE.priority_key:
                self._not_kept(workflow_id)
                return

    async def _server_supports_it(self, within: timedelta) -> bool:
        """Whether Temporal changes priorities in place (1.30 and later), read from its version once per
        process. An older one refuses the change to a workflow, but takes the change to an attempt, drops
        its priority and queues the attempt anew behind its peers: a retry asked for by hand would wait
        longer for it. A version not told (an error but "unavailable", a version of another shape): the
        changes are asked for, and their answers tell."""
        if self._version_read:
            return self._supported is not False
        try:
            info = await self._client.workflow_service.get_system_info(
                GetSystemInfoRequest(), retry=True, timeout=within
            )
        except RPCError as err:
            if err.status is RPCStatusCode.UNAVAILABLE:
                raise
            self._version_read = True
            log.warning("Temporal's version not read (%s): manual retries ask for the live priority", err)
            return True
        self._version_read = True
        self._supported = supports_priority_changes(info.server_version)
        if self._supported is False:
            log.info(
                "manual retries go at their delivery's priority: Temporal %s is before 1.30",
                info.server_version,
            )
        return self._supported is not False

    def _not_kept(self, workflow_id: str) -> None:
        """A change taken, and answered without the priority asked for: a Temporal before 1.30."""
        if self._supported is None:
            self._stop_asking(workflow_id, "Temporal took the change and kept no priority")
        else:
            self._not_raised(workflow_id, "Temporal took the change and kept no priority")

    def _stop_asking(self, workflow_id: str, why: str) -> None:
        """A Temporal that did not say its version, and refused or ignored a priority change: this process
        asks it no more."""
        self._supported = False
        self._not_raised(workflow_id, f"{why}; not asked again until the API restarts")

    def _not_raised(self, workflow_id: str, why: str) -> None:
        log.warning(
            "manual retry: its delivery was not raised to the live priority",
            extra={FIELDS: {"workflow_id": workflow_id, "error": why}},
        )


def supports_priority_changes(version: str) -> bool | None:
    """Whether a server of `version` ("1.32.0", "v1.29.1") changes priorities in place: 1.30.0 and later.
    A pre-release of 1.30.0 counts as before it (some builds of it had no such change); None when the
    version has another shape, or none."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(-\S+)?(\+\S+)?", version.strip())
    if match is None:
        return None
    release = (int(match[1]), int(match[2]), int(match[3]))
    if release == PRIORITY_CHANGES_SINCE and match[4] is not None:
        return False
    return release >= PRIORITY_CHANGES_SINCE


def _queued_untried_attempt_behind_live(pending: PendingActivityInfo) -> bool:
    """An attempt queued, never tried, at a priority after live work's (one tried is waiting out a delay
    of ours, which a change would replace by the retry policy's)."""
    return (
        pending.activity_type.name == ATTEMPT_ACTIVITY
        and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
        and pending.attempt <= 1
        and ranks_after(pending.priority.priority_key or None, WorkKind.LIVE)
    )
