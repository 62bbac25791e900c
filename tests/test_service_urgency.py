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
    UpdateActivityOptionsRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from service.errors import TemporalUnavailable
from service.urgency import LiveRaise

WORKFLOW_ID = "delivery:tenant_a:evt_1:ep_1"
SCHEDULED = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED


def described(
    priority_key: int,
    *activities: tuple[str, str, int, int],
    status: WorkflowExecutionStatus = WorkflowExecutionStatus.RUNNING,
) -> SimpleNamespace:
    """A delivery's workflow as describe answers; `activities`: (id, type, state, priority key)."""
    raw = DescribeWorkflowExecutionResponse()
    priority = raw.workflow_execution_info.priority
    priority.priority_key, priority.fairness_key, priority.fairness_weight = priority_key, "tenant_a", 2.0
    for activity_id, name, state, key in activities:
        pending = PendingActivityInfo(activity_id=activity_id, state=state)  # type: ignore[arg-type]
        pending.activity_type.name = name
        pending.priority.priority_key = key
        raw.pending_activities.append(pending)
    return SimpleNamespace(status=status, run_id="run-1", raw_description=raw)


class Temporal:
    """Answers describe with `answer` (or raises it, or never answers), and records every change asked."""

    namespace = "default"
    identity = "api@test"

    def __init__(self, answer: Any, refusal: RPCError | None = None) -> None:
        self.answer = answer
        self.refusal = refusal
        self.described = 0
        self.asked: list[Any] = []
        self.workflow_service = self

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
    ) -> None:
        self._asked(request)

    async def update_activity_options(
        self, request: UpdateActivityOptionsRequest, *, retry: bool, timeout: timedelta
    ) -> None:
        self._asked(request)

    def _asked(self, request: Any) -> None:
        self.asked.append(request)
        if self.refusal is not None:
            raise self.refusal


def raise_to_live(temporal: Temporal, rpc_seconds: float = 5) -> LiveRaise:
    return LiveRaise(cast(Client, temporal), rpc_timeout=timedelta(seconds=rpc_seconds))


async def test_a_replayed_delivery_and_the_attempt_it_has_queued_go_to_the_live_priority() -> None:
    temporal = Temporal(
        described(5, ("7", "deliver_once", SCHEDULED, 5), ("8", "read_event_body", SCHEDULED, 5))
    )
    await raise_to_live(temporal)(WORKFLOW_ID)
    workflow, attempt = temporal.asked
    assert isinstance(workflow, UpdateWorkflowExecutionOptionsRequest)
    assert (workflow.workflow_execution.workflow_id, workflow.workflow_execution.run_id) == (
        WORKFLOW_ID,
        "run-1",
    )
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


async def test_a_queued_scheduled_retry_is_raised_too_but_nothing_already_live_or_started() -> None:
    queued_retry = Temporal(described(1, ("3", "deliver_once", SCHEDULED, 3)))
    await raise_to_live(queued_retry)(WORKFLOW_ID)
    [attempt] = queued_retry.asked
    assert isinstance(attempt, UpdateActivityOptionsRequest) and attempt.id == "3"
    # A live delivery, its attempt being made: nothing to ask.
    live = Temporal(described(1, ("4", "deliver_once", STARTED, 5)))
    await raise_to_live(live)(WORKFLOW_ID)
    assert live.asked == []


@pytest.mark.parametrize(
    "answer",
    [
        described(
            5, status=WorkflowExecutionStatus.COMPLETED
        ),  # its retry window is over: the update says so
        RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b""),  # not started yet, or no such delivery
    ],
    ids=["closed", "not-found"],
)
async def test_a_delivery_not_running_is_left_to_the_update_to_answer(answer: Any) -> None:
    temporal = Temporal(answer)
    await raise_to_live(temporal)(WORKFLOW_ID)
    assert temporal.asked == []


async def test_a_temporal_that_cannot_change_a_priority_takes_the_retry_and_is_not_asked_again() -> None:
    temporal = Temporal(
        described(5), RPCError("error parsing UpdateMask", RPCStatusCode.INVALID_ARGUMENT, b"")
    )
    raise_ = raise_to_live(temporal)
    await raise_(WORKFLOW_ID)  # refused: the retry goes on at the priority it has
    await raise_(WORKFLOW_ID)
    assert (temporal.described, len(temporal.asked)) == (1, 1)


async def test_temporal_out_of_reach_is_said_before_anything_is_asked() -> None:
    temporal = Temporal(RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""))
    with pytest.raises(TemporalUnavailable, match="nothing was accepted"):
        await raise_to_live(temporal)(WORKFLOW_ID)
    assert temporal.asked == []


async def test_a_slow_temporal_costs_the_retry_half_a_bound_at_most() -> None:
    temporal = Temporal("no answer")
    started = asyncio.get_running_loop().time()
    await raise_to_live(temporal, rpc_seconds=0.4)(WORKFLOW_ID)  # given up on: the retry is asked as it is
    assert asyncio.get_running_loop().time() - started < 5  # not the fake's 60 s
    assert temporal.asked == []
