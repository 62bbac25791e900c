"""Which activities a worker runs eagerly: live work only (issue 25, 2).

An activity scheduled eagerly is handed back to the worker with the completion of the workflow task that
schedules it, when that worker has a slot free, instead of going into the task queue and coming back
out: for a delivery's first attempt, 5 ms less at the median and one match fewer for Temporal (the plain
design's attempts go that way). The task queue is where Temporal orders its backlog by priority and each
tenant's share (domain/fairness.py), so only live work goes eagerly: the workflow task that schedules
it was dispatched in that order, and live work goes first anyway. An eager attempt does take a slot
that a poller would otherwise have filled from the queue, so this is measured, not assumed: another
tenant's events still go before one tenant's backlog drains (tests/test_fairness.py), and its p99 in the
noisy neighbour stayed where it was (BENCHMARKS.md). Scheduled retries, bulk work and every activity
that sets no priority of its own (a lane's or a recovery's steps, alert mails) go through the queue.

The SDK takes this per worker only, so the worker allows it and this interceptor says no for each
activity that is not live; a worker that does not allow it (`disable_eager_activity_execution=True`)
keeps every activity in the queue, live ones too. Durability is the same either way: the activity is in
the history before it runs, and a worker lost while it runs is found by its heartbeats as any other's.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

with workflow.unsafe.imports_passed_through():
    from domain.fairness import PRIORITY_KEYS, WorkKind


class LiveWorkEager(Interceptor):
    """For the worker's `interceptors` (with `disable_eager_activity_execution=False`)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _Inbound


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))


class _Outbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        live = input.priority.priority_key == PRIORITY_KEYS[WorkKind.LIVE]
        input.disable_eager_execution = input.disable_eager_execution or not live
        return super().start_activity(input)
