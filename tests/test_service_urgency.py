"""What a manual retry asks of Temporal before it is made (service/urgency.py), against a client that
records the requests: the end-to-end order it buys is tests/test_fairness.py's."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionResponse,
    GetSystemInfoRequest,
    GetSystemInfoResponse,
    UpdateActivityOptionsRequest,
    UpdateActivityOptionsResponse,
    UpdateWorkflowExecutionOptionsRequest,
    UpdateWorkflowExecutionOptionsResponse,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from service.errors import TemporalUnavailable
from service.urgency import LiveRaise, supports_priority_changes

WORKFLOW_ID = "delivery:tenant_a:evt_1:ep_1"
SCHEDULED = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED


def described(
    priority_key: int,
    *activities: tuple[str, str, int, int, int],
    status: WorkflowExecutionStatus = WorkflowExecutionStatus.RUNNING,
) -> SimpleNamespace:
    """A delivery's workflow as describe answers; `activities`: (id, type, state, attempt, priority key)."""
    raw = DescribeWorkflowExecutionResponse()
    priority = raw.workflow_execution_info.priority
    priority.priority_key, priority.fairness_key, priority.fairness_weight = priority_key, "tenant_a", 2.0
    for activity_id, name, state, attempt, key in activities:
        pending = PendingActivityInfo(activity_id=activity_id, state=state, attempt=attempt)  # type: ignore[arg-type]
        pending.activity_type.name = name
        pending.priority.priority_key = key
        raw.pending_activities.append(pending)
    return SimpleNamespace(status=status, run_id="run-1", raw_description=raw)


class Temporal:
    """Answers describe with `answer` (or raises it, or never answers), and records every change asked."""

    namespace = "default"
    identity = "api@test"

    def __init__(
        self,
        answer: Any,
        refusal: RPCError | None = None,
        *,
        version: str | RPCError = "1.32.0",
        keeps: bool = True,
    ) -> None:
        self.answer = answer
        self.refusal = refusal
        self.version = version
        self.keeps = keeps  # whether a change's answer shows the priority asked for (1.30 and later)
        self.described = 0
        self.versions_asked = 0
        self.asked: list[Any] = []
        self.workflow_service = self

    async def get_system_info(self, request: GetSystemInfoRequest, *, retry: bool, timeout: timedelta) -> Any:
        self.versions_asked += 1
        if isinstance(self.version, RPCError):
            raise self.version
        return GetSystemInfoResponse(server_version=self.version)

    def get_workflow_handle(self, workflow_id: str) -> Temporal:
        assert workflow_id == WORKFLOW_ID
        return self

    async def describe(self, *, rpc_timeout: timedelta) -> Any:
        self.described += 1
        if self.answer == "no answer":
            await asyncio.sleep(60)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def update_workflow_execution_options(
        self, request: UpdateWorkflowExecutionOptionsRequest, *, retry: bool, timeout: timedelta
    ) -> UpdateWorkflowExecutionOptionsResponse:
        self._asked(request)
        kept = request.workflow_execution_options if self.keeps else None
        return UpdateWorkflowExecutionOptionsResponse(workflow_execution_options=kept)

    async def update_activity_options(
        self, request: UpdateActivityOptionsRequest, *, retry: bool, timeout: timedelta
    ) -> UpdateActivityOptionsResponse:
        self._asked(request)
        return UpdateActivityOptionsResponse(
            activity_options=request.activity_options if self.keeps else None
        )

    def _asked(self, request: Any) -> None:
        self.asked.append(request)
        if self.refusal is not None:
            raise self.refusal


async def raise_to_live(temporal: Temporal, within: float = 5) -> None:
    await LiveRaise(cast(Client, temporal))(WORKFLOW_ID, within=timedelta(seconds=within))


async def test_a_replayed_delivery_and_its_queued_first_attempt_go_to_the_live_priority() -> None:
    temporal = Temporal(
        described(5, ("7", "deliver_once", SCHEDULED, 1, 5), ("8", "read_event_body", SCHEDULED, 1, 5))
    )
    await raise_to_live(temporal)
    workflow, attempt = temporal.asked
    assert isinstance(workflow, UpdateWorkflowExecutionOptionsRequest)
    execution = workflow.workflow_execution
    assert (execution.workflow_id, execution.run_id) == (WORKFLOW_ID, "run-1")
    # The key alone: the tenant's fairness key and weight are left as they are, not sent again.
    assert list(workflow.update_mask.paths) == ["priority.priority_key"]
    assert workflow.workflow_execution_options.priority.priority_key == 1
    assert not workflow.workflow_execution_options.priority.fairness_key
    assert isinstance(attempt, UpdateActivityOptionsRequest)
    assert (attempt.id, attempt.execution.run_id, list(attempt.update_mask.paths)) == (
        "7",
        "run-1",
        ["priority.priority_key"],
    )
    assert attempt.activity_options.priority.priority_key == 1


@pytest.mark.parametrize(
    ("attempt", "why"),
    [
        (("7", "deliver_once", SCHEDULED, 2, 5), "tried, waiting out its backoff: a change would restart it"),
        (("7", "deliver_once", STARTED, 1, 5), "being made"),
        (("7", "deliver_once", SCHEDULED, 1, 1), "live already"),
    ],
)
async def test_of_a_replayed_delivery_only_an_untried_attempt_behind_live_work_is_raised(
    attempt: tuple[str, str, int, int, int], why: str
) -> None:
    temporal = Temporal(described(5, attempt))
    await raise_to_live(temporal)
    assert [type(request) for request in temporal.asked] == [UpdateWorkflowExecutionOptionsRequest], why


async def test_a_live_delivery_s_queued_scheduled_retry_goes_to_the_live_priority_its_workflow_as_it_is() -> (
    None
):
    """The retry joins the scheduled retry it finds queued: at that retry's priority (3) it waited for every
    live attempt queued, though a manual retry of one delivery is live work."""
    temporal = Temporal(described(1, ("3", "deliver_once", SCHEDULED, 1, 3)))
    await raise_to_live(temporal)
    [attempt] = temporal.asked
    assert isinstance(attempt, UpdateActivityOptionsRequest)
    assert (attempt.id, list(attempt.update_mask.paths)) == ("3", ["priority.priority_key"])
    assert attempt.activity_options.priority.priority_key == 1


@pytest.mark.parametrize(
    "activities",
    [
        (),
        (("3", "deliver_once", STARTED, 1, 3),),  # being made: the retry joins it as it is
        (("3", "deliver_once", SCHEDULED, 2, 3),),  # tried, waiting out its backoff
        (("3", "deliver_once", SCHEDULED, 1, 1),),  # live already
    ],
    ids=["nothing-queued", "being-made", "tried", "live"],
)
async def test_live_work_with_nothing_queued_behind_live_work_asks_nothing(
    activities: tuple[tuple[str, str, int, int, int], ...],
) -> None:
    temporal = Temporal(described(1, *activities))
    await raise_to_live(temporal)
    assert (temporal.described, temporal.asked) == (1, [])


@pytest.mark.parametrize(
    "answer",
    [
        described(5, status=WorkflowExecutionStatus.COMPLETED),  # its retry window is over
        RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b""),  # not started yet, or no such delivery
    ],
    ids=["closed", "not-found"],
)
async def test_a_delivery_not_running_is_left_to_the_update_to_answer(answer: Any) -> None:
    temporal = Temporal(answer)
    await raise_to_live(temporal)
    assert temporal.asked == []


@pytest.mark.parametrize(("version", "asked_again"), [("", False), ("1.32.0", True)], ids=["unread", "1.32"])
async def test_a_refused_change_stops_the_asking_only_where_the_version_did_not_say(
    version: str, asked_again: bool
) -> None:
    """What a Temporal before 1.30 answers the change to a workflow: of one whose version could not be
    read, taken for that; of one that says it is 1.30 or later, a refusal like any other."""
    refusal = RPCError("error parsing UpdateMask", RPCStatusCode.INVALID_ARGUMENT, b"")
    temporal = Temporal(described(5, ("7", "deliver_once", SCHEDULED, 1, 5)), refusal, version=version)
    raise_ = LiveRaise(cast(Client, temporal))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))  # refused: the retry goes at the priority it has
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    # The workflow only, each time asked: the refusal stops the raise before its attempt.
    assert {type(request) for request in temporal.asked} == {UpdateWorkflowExecutionOptionsRequest}
    assert (temporal.described, len(temporal.asked)) == ((2, 2) if asked_again else (1, 1))
    assert temporal.versions_asked == 1


async def test_a_refusal_for_another_reason_is_not_taken_as_an_old_temporal() -> None:
    refusal = RPCError("not allowed", RPCStatusCode.PERMISSION_DENIED, b"")
    temporal = Temporal(described(5), refusal)
    raise_ = LiveRaise(cast(Client, temporal))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    assert (temporal.described, len(temporal.asked)) == (2, 2)


async def test_temporal_saying_it_is_out_of_reach_is_said_before_anything_is_asked() -> None:
    temporal = Temporal(RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""))
    with pytest.raises(TemporalUnavailable, match="nothing was accepted"):
        await raise_to_live(temporal)
    assert temporal.asked == []


@pytest.mark.parametrize(
    "answer",
    ["no answer", RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")],
    ids=["bound-of-the-raise", "bound-of-the-call"],
)
async def test_a_slow_temporal_is_given_up_on_within_the_share_and_the_retry_asked_as_it_is(
    answer: Any,
) -> None:
    temporal = Temporal(answer)
    started = asyncio.get_running_loop().time()
    await raise_to_live(temporal, within=0.2)  # no error: the retry is asked for next, at its priority
    assert asyncio.get_running_loop().time() - started < 30  # not the fake's 60 s
    assert temporal.asked == []


@pytest.mark.parametrize("priority_key", [5, 1], ids=["replayed", "live-with-a-queued-retry"])
async def test_a_temporal_before_1_30_is_asked_nothing_its_version_read_once(priority_key: int) -> None:
    """Before 1.30 Temporal refuses the change to a workflow, and takes the change to an attempt, drops its
    priority and queues it anew behind its peers: a retry by hand would wait longer. Asked nothing."""
    temporal = Temporal(described(priority_key, ("3", "deliver_once", SCHEDULED, 1, 3)), version="1.29.2")
    raise_ = LiveRaise(cast(Client, temporal))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    assert (temporal.versions_asked, temporal.asked) == (1, [])


async def test_a_temporal_that_says_no_version_is_asked_until_it_keeps_no_priority() -> None:
    temporal = Temporal(described(1, ("3", "deliver_once", SCHEDULED, 1, 3)), version="", keeps=False)
    raise_ = LiveRaise(cast(Client, temporal))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))  # taken, without the priority: not asked again
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    assert ([type(r) for r in temporal.asked], temporal.versions_asked) == ([UpdateActivityOptionsRequest], 1)


async def test_a_live_delivery_s_attempt_change_refused_is_said_and_the_retry_asked_as_it_is() -> None:
    refusal = RPCError("no such activity", RPCStatusCode.NOT_FOUND, b"")
    temporal = Temporal(described(1, ("3", "deliver_once", SCHEDULED, 1, 3)), refusal)
    raise_ = LiveRaise(cast(Client, temporal))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))  # no error: the retry is asked for next, as it is
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    assert len(temporal.asked) == 2  # not taken for an old Temporal: asked again
    assert temporal.versions_asked == 1  # and Temporal's version read once


async def test_a_bulk_delivery_s_change_answered_without_the_priority_stops_the_asking() -> None:
    temporal = Temporal(described(5, ("7", "deliver_once", SCHEDULED, 1, 5)), version="", keeps=False)
    raise_ = LiveRaise(cast(Client, temporal))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    assert [type(request) for request in temporal.asked] == [UpdateWorkflowExecutionOptionsRequest]


async def test_temporal_s_version_unread_for_an_error_asks_the_changes_and_reads_it_no_more() -> None:
    temporal = Temporal(described(1, ("3", "deliver_once", SCHEDULED, 1, 3)))
    temporal.version = RPCError("not allowed", RPCStatusCode.PERMISSION_DENIED, b"")
    raise_ = LiveRaise(cast(Client, temporal))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    await raise_(WORKFLOW_ID, within=timedelta(seconds=5))
    assert ([type(r) for r in temporal.asked], temporal.versions_asked) == (
        [UpdateActivityOptionsRequest] * 2,
        1,
    )


async def test_temporal_out_of_reach_when_its_version_is_read_is_said() -> None:
    temporal = Temporal(described(1, ("3", "deliver_once", SCHEDULED, 1, 3)))
    temporal.version = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
    with pytest.raises(TemporalUnavailable):
        await raise_to_live(temporal)
    assert temporal.asked == []


@pytest.mark.parametrize(
    ("version", "supports"),
    [
        ("1.32.0", True),
        ("1.30.0", True),
        ("v1.30.1", True),
        ("1.31.0-rc1", True),
        ("2.0.0", True),
        ("1.29.9", False),
        ("v1.29.0", False),
        ("1.30.0-143.0", False),  # a pre-release of 1.30.0: some had no such change
        ("1.30", None),
        ("", None),
        ("cloud", None),
    ],
)
def test_which_versions_change_priorities_in_place(version: str, supports: bool | None) -> None:
    assert supports_priority_changes(version) is supports
