"""`RecoveryWorkflow` on the time-skipping test server, its pages played by fake activities.

What the pages do against a real Temporal is tested end to end (test_recovery_e2e.py); here, what the
workflow does with them: the pace (one durable timer per page, read from the history), continue-as-new
with the cursor and the counts, a cancel that lets the page in flight finish, a stop when the endpoint
is disabled, our faults retried rather than fatal, and a page whose notes its worker cannot open made
again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.crypto import new_key_entry
from domain.models import (
    DeliveryPolicy,
    RecoveryCounts,
    RecoveryInput,
    RecoveryKind,
    RecoveryPage,
    RecoveryPageRequest,
    RecoveryState,
    RecoveryStatus,
)
from tests.conftest import TEST_ENCRYPTION_KEYS, recovery_state, sealed_by
from workflows.recovery import MEMO_STATE, RecoveryWorkflow

NOW = datetime(2026, 11, 27, tzinfo=UTC)
POLICY = DeliveryPolicy(retry_delays=[1.0], attempt_timeout=5)


def page(
    done: int = 0, *, skipped: int = 0, cursor: str | None = None, stopped: str | None = None
) -> RecoveryPage:
    return RecoveryPage(
        counts=RecoveryCounts(done=done, skipped=skipped), next_cursor=cursor, stopped=stopped
    )


class Pages:
    """Plays `pages` in order as both page activities, recording each request; the page numbered `hold`
    waits for `release` (and says it has started with `entered`); the first `faults` tries raise."""

    def __init__(self, pages: list[RecoveryPage], *, hold: int | None = None, faults: int = 0) -> None:
        self.pages = pages
        self.hold = hold
        self.faults = faults
        self.requests: list[RecoveryPageRequest] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def _play(self, request: RecoveryPageRequest) -> RecoveryPage:
        if self.faults:
            self.faults -= 1
            raise RuntimeError("the store is down")
        self.requests.append(request)
        index = len(self.requests) - 1
        if index == self.hold:
            self.entered.set()
            await self.release.wait()
        return self.pages[index]

    @activity.defn(name="recover_page")
    async def recover_page(self, request: RecoveryPageRequest) -> RecoveryPage:
        return await self._play(request)

    @activity.defn(name="replay_page")
    async def replay_page(self, request: RecoveryPageRequest) -> RecoveryPage:
        return await self._play(request)


async def start(
    client: Client,
    task_queue: str,
    *,
    total: int,
    rate: float = 10,
    page_size: int = 10,
    pages_per_run: int = 200,
    kind: RecoveryKind = RecoveryKind.RECOVER,
) -> WorkflowHandle[RecoveryWorkflow, RecoveryState]:
    state = recovery_state(
        now=NOW, total=total, kind=kind, tenant="t", recovery_id=f"rec_{uuid.uuid4().hex[:8]}"
    )
    return await client.start_workflow(
        RecoveryWorkflow.run,
        RecoveryInput(
            state=state, rate=rate, page_size=page_size, pages_per_run=pages_per_run, policy=POLICY
        ),
        id=f"recovery:t:{state.recovery_id}",
        task_queue=task_queue,
        memo={MEMO_STATE: state},
    )


async def timers(handle: WorkflowHandle[RecoveryWorkflow, RecoveryState]) -> list[float]:
    history = await handle.fetch_history()
    return [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in history.events
        if e.event_type is EventType.EVENT_TYPE_TIMER_STARTED
    ]


async def test_each_page_that_made_deliveries_is_paced_by_one_timer(
    workflow_env: WorkflowEnvironment,
) -> None:
    pages = Pages(
        [page(10, cursor="c1"), page(10, cursor="c2"), page(0, skipped=10, cursor="c3"), page(4, skipped=6)]
    )
    queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        workflow_env.client, task_queue=queue, workflows=[RecoveryWorkflow], activities=[pages.recover_page]
    ):
        # A second a delivery: a page's wait (ten seconds, skipped by the test server) dwarfs the time the
        # page itself takes on a loaded machine.
        handle = await start(workflow_env.client, queue, total=40, rate=1)
        state = await handle.result()
    assert state.status is RecoveryStatus.COMPLETED and state.reason is None
    assert state.counts == RecoveryCounts(done=24, skipped=16)
    assert state.finished_at is not None
    assert [r.cursor for r in pages.requests] == [None, "c1", "c2", "c3"]
    assert {r.page_size for r in pages.requests} == {10}
    # Ten deliveries at 1/s: ten seconds from the start of the page, less the time the page took. None
    # after a page that made no delivery, nor after the last page.
    waits = await timers(handle)
    assert len(waits) == 2
    assert all(5 < w <= 10 for w in waits), waits


async def test_a_big_window_continues_as_new_carrying_its_cursor_and_counts(
    workflow_env: WorkflowEnvironment,
) -> None:
    pages = Pages([page(3, cursor=f"c{i + 1}") for i in range(4)] + [page(3)])
    queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        workflow_env.client, task_queue=queue, workflows=[RecoveryWorkflow], activities=[pages.replay_page]
    ):
        handle = await start(
            workflow_env.client,
            queue,
            total=15,
            rate=100,
            page_size=3,
            pages_per_run=2,
            kind=RecoveryKind.REPLAY,
        )
        state = await handle.result()
    assert state.status is RecoveryStatus.COMPLETED
    assert state.counts.done == 15
    assert [r.cursor for r in pages.requests] == [None, "c1", "c2", "c3", "c4"]
    # Three runs of two, two and one page; the first continued as new.
    first = await workflow_env.client.get_workflow_handle(handle.id, run_id=handle.result_run_id).describe()
    assert first.status is WorkflowExecutionStatus.CONTINUED_AS_NEW
    latest = await workflow_env.client.get_workflow_handle(handle.id).describe()
    assert latest.status is WorkflowExecutionStatus.COMPLETED and latest.run_id != first.run_id
    # The memo, which lists read, holds the final state.
    assert await latest.memo_value(MEMO_STATE, type_hint=RecoveryState) == state


async def test_cancel_lets_the_page_in_flight_finish_and_starts_no_other(
    workflow_env: WorkflowEnvironment,
) -> None:
    pages = Pages([page(10, cursor="c1"), page(10, cursor="c2"), page(10)], hold=1)
    queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        workflow_env.client, task_queue=queue, workflows=[RecoveryWorkflow], activities=[pages.recover_page]
    ):
        handle = await start(workflow_env.client, queue, total=30)
        await asyncio.wait_for(pages.entered.wait(), 30)
        await handle.cancel()
        progress = await _wait_for_progress(handle, lambda s: s.cancel_requested)
        assert progress.status is RecoveryStatus.RUNNING  # until the page in flight is in
        pages.release.set()
        state = await handle.result()
    assert state.status is RecoveryStatus.CANCELED and state.reason == "canceled on request"
    assert state.counts.done == 20  # the page in flight was counted
    assert len(pages.requests) == 2
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED


async def test_cancel_during_the_pace_stops_at_once(workflow_env: WorkflowEnvironment) -> None:
    pages = Pages([page(10, cursor="c1"), page(10)])
    queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        workflow_env.client, task_queue=queue, workflows=[RecoveryWorkflow], activities=[pages.recover_page]
    ):
        # 10 deliveries at 0.01/s: a wait of some 17 minutes after the first page.
        handle = await start(workflow_env.client, queue, total=20, rate=0.01)
        await _wait_for_progress(handle, lambda s: s.counts.done == 10)
        await handle.cancel()
        state = await handle.result()
    assert state.status is RecoveryStatus.CANCELED
    assert state.counts.done == 10 and len(pages.requests) == 1


async def test_a_disabled_endpoint_stops_it_saying_why(workflow_env: WorkflowEnvironment) -> None:
    reason = "endpoint ep_1 was disabled; enable it, then start again"
    pages = Pages([page(10, cursor="c1"), page(0, cursor="c1", stopped=reason)])
    queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        workflow_env.client, task_queue=queue, workflows=[RecoveryWorkflow], activities=[pages.recover_page]
    ):
        state = await (await start(workflow_env.client, queue, total=30)).result()
    assert (state.status, state.reason, state.counts.done) == (RecoveryStatus.CANCELED, reason, 10)


async def test_a_fault_of_ours_is_retried_not_fatal(workflow_env: WorkflowEnvironment) -> None:
    pages = Pages([page(2)], faults=2)
    queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        workflow_env.client, task_queue=queue, workflows=[RecoveryWorkflow], activities=[pages.recover_page]
    ):
        state = await (await start(workflow_env.client, queue, total=2)).result()
    assert state.status is RecoveryStatus.COMPLETED and state.counts.done == 2


async def test_a_page_whose_notes_its_worker_cannot_open_is_made_again_not_the_recovery_s_end(
    workflow_env: WorkflowEnvironment,
) -> None:
    """Mid-rotation, as for a delivery's attempt (test_workflows_delivery.py): a page's try seals its notes
    (heartbeat details) with a new key and fails on our side; the next try lands on a worker without that
    key, and the SDK fails it for good before it runs. The page is made again, from its start, as a new
    activity once a wait is over, and the recovery goes on. Real codec, real SDK; the pages are played."""
    old = sealed_by(workflow_env.client, TEST_ENCRYPTION_KEYS)
    new = sealed_by(workflow_env.client, f"{new_key_entry('rotated')},{TEST_ENCRYPTION_KEYS}")
    sealed_tries: list[RecoveryPageRequest] = []

    @activity.defn(name="recover_page")
    async def seals_its_notes_then_fails(request: RecoveryPageRequest) -> RecoveryPage:
        sealed_tries.append(request)
        activity.heartbeat("half the page made")
        raise ApplicationError("the endpoint store could not be read", type="StoreUnavailable")

    pages = Pages([page(4)])
    queue = f"tq-{uuid.uuid4()}"
    # The workflow on a worker of the old key alone, which opens what the client (old key) sealed.
    async with Worker(old, task_queue=queue, workflows=[RecoveryWorkflow]):
        async with Worker(new, task_queue=queue, activities=[seals_its_notes_then_fails]):
            handle = await start(old, queue, total=4)
            for _ in range(1200):  # a minute, on a loaded machine
                if sealed_tries:
                    break
                await asyncio.sleep(0.05)
        assert sealed_tries, "the page never reached the worker of the new key"
        async with Worker(old, task_queue=queue, activities=[pages.recover_page]):
            state = await asyncio.wait_for(handle.result(), 90)
        history = await handle.fetch_history()
    assert (state.status, state.counts.done) == (RecoveryStatus.COMPLETED, 4)
    assert [r.cursor for r in pages.requests] == [None]  # the page made again from its start, once
    failures = [
        e.activity_task_failed_event_attributes.failure.message
        for e in history.events
        if e.event_type is EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert failures == ["Failed decoding heartbeat details"]  # met, and made again past
    assert 10.0 in await timers(handle)  # the wait before the page was made again


async def _wait_for_progress(
    handle: WorkflowHandle[RecoveryWorkflow, RecoveryState], check: Callable[[RecoveryState], bool]
) -> RecoveryState:
    for _ in range(300):
        state = await handle.query(RecoveryWorkflow.progress)
        if check(state):
            return state
        await asyncio.sleep(0.1)
    raise AssertionError("the recovery never reached the expected progress")
