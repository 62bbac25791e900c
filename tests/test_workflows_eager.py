"""Which activities go eagerly (workflows/eager.py): only those given the live priority."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.common import Priority
from temporalio.worker import StartActivityInput, WorkflowOutboundInterceptor

from domain.fairness import WorkKind, of_kind
from workflows.eager import _Outbound


class _Next(WorkflowOutboundInterceptor):
    """The next interceptor in the chain: keeps what it was asked to start."""

    def __init__(self) -> None:
        self.started: list[StartActivityInput] = []

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        self.started.append(input)
        return None  # type: ignore[return-value]  # nobody reads it here


def _activity(priority: Priority, *, worker_allows: bool = True) -> StartActivityInput:
    return StartActivityInput(
        activity="deliver_once",
        args=[],
        activity_id=None,
        task_queue=None,
        schedule_to_close_timeout=None,
        schedule_to_start_timeout=None,
        start_to_close_timeout=timedelta(seconds=70),
        heartbeat_timeout=None,
        retry_policy=None,
        cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
        headers={},
        disable_eager_execution=not worker_allows,  # what the worker's own setting gives every activity
        versioning_intent=None,
        summary=None,
        priority=priority,
        arg_types=None,
        ret_type=None,
    )


@pytest.mark.parametrize(
    ("priority", "eager"),
    [
        (of_kind(WorkKind.LIVE), True),  # a first attempt, a test event's, a manual retry of one delivery
        (of_kind(WorkKind.RETRY), False),
        (of_kind(WorkKind.BULK), False),
        (Priority.default, False),  # a lane's, a recovery's or an alert's step: inherits, through the queue
    ],
)
def test_only_live_work_goes_eagerly(priority: Priority, eager: bool) -> None:
    following = _Next()
    _Outbound(following).start_activity(_activity(priority))
    [started] = following.started
    assert started.disable_eager_execution is not eager


def test_a_worker_that_does_not_allow_it_keeps_live_work_in_the_queue_too() -> None:
    """The worker's own `disable_eager_activity_execution=True` is never overruled (the bench's
    no_eager lane is that worker)."""
    following = _Next()
    _Outbound(following).start_activity(_activity(of_kind(WorkKind.LIVE), worker_allows=False))
    [started] = following.started
    assert started.disable_eager_execution
