"""Fair under load, through the real API, worker and Temporal, to real receivers (domain/fairness.py).

One tenant's backlog must not hold back another's deliveries, nor a replay anyone's live ones. Each test
builds a backlog that takes seconds to drain (a worker with two activity slots, a receiver that takes
1 s for the backlog: its drain is paced by time, not by the machine), then sends what must not wait for
it, and asserts an order of receipt, never milliseconds: the other tenant's, or the live, deliveries
arrived while most of the backlog was still to come. First-in first-out (fairness off) fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse, ResetStickyTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.delivery import DeliveryActivities
from bench.run import queued_activities
from core.temporal import connect
from domain import ids
from domain.fairness import WorkKind
from domain.models import DeliveryOrigin, DeliveryProgress, DeliveryState
from launcher import Stack
from service.urgency import ATTEMPT_ACTIVITY
from store.database import EndpointStore
from store.keys import jwt_signer
from tests.conftest import (
    STACK_LOG,
    api_client,
    create_endpoint,
    emit_accepted,
    running_stack,
    second_worker,
    settled,
    wait_delivery,
    wait_for,
    wait_visible,
)
from tests.own_queue import start_delivery
from tests.receiver import Answer, Receiver
from workflows.delivery import DeliveryWorkflow

pytestmark = [pytest.mark.slow, pytest.mark.stack]

log = logging.getLogger(__name__)
# A backlog that lasts, made of few deliveries: each costs about a fifth of a CPU-second, and the order
# these tests check needs only that enough of it is left when the urgent work is sent (`left >= 30`).
BACKLOG = 60
# Two at a time: 1 a second, the backlog 60 s in all. At 2 a second, a CI run beside a CPU hog took so
# long to see the replay's 60 deliveries started that 36 had drained: slower answers cost no CPU, and
# the endpoint is deleted once the urgent work is served.
BACKLOGGED = Answer(200, delay=2.0)
SLOW = Answer(200, delay=0.2)  # two at a time: 10 a second
LIVE_BACKLOG = 40  # behind which a manual retry is asked for: 4 s to drain


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two activity slots, so that a backlog of deliveries forms at once; replays in pages of 50; at most
    three attempts in flight to one endpoint. The API waits for Temporal as long as by default (the tests'
    2 s is short for a burst of eight clients on a loaded machine: a CI run met 503s five times in a row)."""
    with running_stack(
        tmp_path_factory.mktemp("fairness"),
        STACK_LOG.resolve(),
        WEBHOOKS_TEMPORAL_RPC_TIMEOUT="5",
        WEBHOOKS_WORKER_MAX_ACTIVITIES="2",
        WEBHOOKS_RECOVERY_RATE="1000",
        WEBHOOKS_ENDPOINT_CONCURRENCY="3",
    ) as stack:
        yield stack


@contextmanager
def _fresh(stack: Stack, tenant: str) -> Iterator[httpx.Client]:
    """A client of `tenant`, with no endpoints left by the module's earlier tests."""
    with api_client(stack, tenant) as client:
        for endpoint in client.get("/v1/webhooks/endpoints").json()["items"]:
            client.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")
        yield client


def _burst(api: httpx.Client, n: int) -> None:
    """`n` events of the tenant, emitted by eight clients at once, every one accepted (sent again after a
    503: a burst on a saturated machine can find Temporal slower than the API waits)."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: emit_accepted(api), range(n)))


def _started(api: httpx.Client, endpoint_id: str, n: int) -> None:
    """Wait until the endpoint's `n` deliveries have started: each has its first attempt queued."""

    def count() -> bool:
        try:
            response = api.get(f"/v1/webhooks/endpoints/{endpoint_id}/stats", params={"hours": 1})
        except httpx.RemoteProtocolError:
            # A kept-alive connection the API closed as this went out on it ("Server disconnected
            # without sending a response"), which a CI run beside a CPU hog met: a read, so ask again.
            return False
        if response.status_code == 503:  # Temporal slower than the API waits as the burst lands: ask again
            return False
        assert response.status_code == 200, response.text
        stats = response.json()
        return bool(stats["pending"] + stats["succeeded"] + stats["failed"] >= n)

    wait_for(count, timeout=120, what=f"{n} deliveries started")


def _served_before_half_drained(at_send: int, at_served: int, what: str) -> None:
    """Of the backlog left when the urgent deliveries were sent, less than three quarters had drained by
    the time they were received (first-in first-out, all of it would have). Half was the bound until a CI
    run on a loaded machine served tenant B after 60 of 118: dispatch is shared by turns, and a turn on a
    loaded machine is long, so the bound tells fair from first-in first-out with room for the load."""
    left = BACKLOG - at_send
    log.info("%s served after %d of the %d left", what, at_served - at_send, left)
    assert left >= 30, f"the backlog had nearly drained ({left} left) before the test sent anything"
    assert at_served - at_send < left * 3 / 4, f"{what} waited for {at_served - at_send} of the {left} left"


def test_another_tenant_is_served_before_one_tenant_s_backlog_drains(stack: Stack) -> None:
    with _fresh(stack, "tenant_a") as a, _fresh(stack, "tenant_b") as b, Receiver() as receiver:
        slow = create_endpoint(a, receiver.script("/a", [BACKLOGGED]))
        create_endpoint(b, receiver.script("/b", []))
        _burst(a, BACKLOG)
        _started(a, slow["id"], BACKLOG)  # A's whole backlog is queued, ahead of anything B sends
        at_send = len(receiver.requests("/a"))
        for _ in range(2):
            emit_accepted(b, "invoice.payment_status_updated")
        wait_for(lambda: len(receiver.requests("/b")) == 2, timeout=120, what="tenant B's two events")
        at_served = len(receiver.requests("/a"))
        a.delete(f"/v1/webhooks/endpoints/{slow['id']}")  # the rest of the backlog ends at its next attempt
    # B's events went at once, in turn with A's, not after the backlog queued before them.
    _served_before_half_drained(at_send, at_served, "tenant B")


def test_live_events_go_before_a_replay_of_thousands_its_own_tenant_s_included(stack: Stack) -> None:
    with _fresh(stack, "tenant_a") as a, _fresh(stack, "tenant_b") as b, Receiver() as receiver:
        since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
        create_endpoint(a, receiver.script("/first", []))
        _burst(a, BACKLOG)
        wait_for(lambda: len(receiver.requests("/first")) == BACKLOG, timeout=120, what="the events")
        # A new endpoint of A's, slow, is sent every one of those events again: a replay.
        replayed = create_endpoint(
            a, receiver.script("/replayed", [BACKLOGGED]), event_types=["invoice.created"]
        )
        create_endpoint(a, receiver.script("/live-a", []), event_types=["invoice.payment_status_updated"])
        create_endpoint(b, receiver.script("/live-b", []))
        started = a.post(f"/v1/webhooks/endpoints/{replayed['id']}/replay", json={"since": since})
        assert started.status_code == 202, started.text
        _started(a, replayed["id"], BACKLOG)  # every replayed delivery made (two pages of 50)
        at_send = len(receiver.requests("/replayed"))
        emit_accepted(a, "invoice.payment_status_updated")
        emit_accepted(b, "invoice.payment_status_updated")
        wait_for(
            lambda: receiver.requests("/live-a") and receiver.requests("/live-b"),
            timeout=120,
            what="the live events",
        )
        at_served = len(receiver.requests("/replayed"))
        a.delete(f"/v1/webhooks/endpoints/{replayed['id']}")
    _served_before_half_drained(at_send, at_served, "the live events")


@pytest.fixture
def second_worker_log(stack: Stack, tmp_path: Path) -> Iterator[Path]:
    """A second worker beside the stack's, with slots to spare; its log, to see that it made attempts."""
    log = tmp_path / "worker2.log"
    with second_worker(stack, log, WEBHOOKS_WORKER_MAX_ACTIVITIES="20"):
        yield log


def _attempts_logged(log: Path, endpoint_id: str) -> int:
    return sum(1 for line in log.read_text().splitlines() if " attempt " in line and endpoint_id in line)


def _most_within(times: list[float], span: float) -> int:
    """The most arrivals in any window shorter than `span` seconds."""
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + span) for start in times)


def test_an_endpoint_s_attempts_in_flight_are_bounded_across_second_worker_log(
    stack: Stack, second_worker_log: Path
) -> None:
    """WEBHOOKS_ENDPOINT_CONCURRENCY (3 here) across every worker: with a bound per worker, the stack's
    worker (2 slots) and the second (20) would have 5 attempts in flight to it."""
    with _fresh(stack, "tenant_a") as a, Receiver() as receiver:
        endpoint = create_endpoint(a, receiver.script("/busy", [Answer(200, delay=0.5)]))
        _burst(a, 30)
        wait_for(lambda: len(receiver.requests("/busy")) == 30, timeout=120, what="the 30 deliveries")
        times = [r.at for r in receiver.requests("/busy")]
    # Each answer takes 0.5 s: a fourth arrival within 0.45 s of three others would be a fourth in flight.
    assert _most_within(times, 0.45) <= 3, sorted(times)
    assert _attempts_logged(second_worker_log, endpoint["id"]) > 0  # both workers made attempts


def test_a_retry_after_holds_every_worker_s_attempts_and_overload_lowers_the_limit(
    stack: Stack, second_worker_log: Path
) -> None:
    with _fresh(stack, "tenant_a") as a, Receiver() as receiver:
        url = receiver.script(
            "/throttled", [Answer(429, headers={"Retry-After": "4"}), Answer(200, delay=0.2)]
        )
        endpoint = create_endpoint(a, url)
        emit_accepted(a, "invoice.created")
        # Its answer, 429 with Retry-After: 4, lowers the limit and pauses the endpoint for every worker.
        view = wait_for(
            lambda: (
                (e := a.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json())["flow"]["throttled_until"]
                and e
            ),
            timeout=60,
            what="the endpoint throttled",
        )
        _burst(a, 10)
        wait_for(lambda: len(receiver.requests("/throttled")) == 12, timeout=120, what="every attempt")
        requests = receiver.requests("/throttled")
        after = a.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json()["flow"]
    flow = view["flow"]
    assert flow["throttle_reason"] == "HTTP 429" and flow["concurrency_limit"] < flow["max_concurrency"]
    assert flow["lowered_by"] == "HTTP 429"
    # Nothing reached the receiver, from either worker, before its Retry-After was over; the delivery it
    # answered came back then too, by its own schedule.
    throttled_at = requests[0].at
    assert all(r.at >= throttled_at + 4 for r in requests[1:]), [r.at - throttled_at for r in requests]
    # The pause ended with the first 2xx, and eleven of them raised the limit back.
    assert after["throttled_until"] is None
    assert after["concurrency_limit"] == after["max_concurrency"] == 3


@pytest.fixture(scope="module")
def one_partition_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """For a manual retry against a live backlog: two workflow-task and two activity slots, so that a
    backlog forms; the API waits for Temporal long enough for a live backlog to be emitted and a worker
    to start (the retry is asked for while none runs). The task queue has one partition, so that
    Temporal's order is exact: with the dev server's four, each partition keeps its own order and the
    pollers take turns (the same, less sharply)."""
    with running_stack(
        tmp_path_factory.mktemp("manual-retry"),
        STACK_LOG.resolve(),
        server_args=[
            arg
            for name in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions")
            for arg in ("--dynamic-config-value", f"{name}=1")
        ],
        WEBHOOKS_TEMPORAL_RPC_TIMEOUT="60",  # the most it may be
        WEBHOOKS_WORKER_MAX_ACTIVITIES="2",
        WEBHOOKS_WORKER_MAX_WORKFLOW_TASKS="2",
    ) as stack:
        yield stack


def test_a_manual_retry_of_a_replayed_delivery_goes_before_a_live_backlog(one_partition_stack: Stack) -> None:
    """A replay's delivery runs at bulk priority. Its manual retry reaches it as an update, in a workflow
    task of the delivery's priority: it waited for every live workflow task queued, and its attempt came
    after every live attempt they made. Built deterministically: the worker is stopped, the retry is
    asked for, a live backlog is emitted behind it, and a worker starts. The retry is asked for first:
    asked for after the backlog, its place among the live work was Temporal's to choose: in a loaded
    run the restarted worker, polling 4 s after the retry was asked for, was handed live events' tasks
    first; the update's task, held apart until then, was queued as any other once it had waited 5 s,
    and the retry's attempt came after all 40 live ones. So a retry asked for behind live work already
    queued is not what this test checks: only that the raise puts it ahead of live work asked for later."""
    stack = one_partition_stack
    with _fresh(stack, "tenant_a") as api, Receiver() as receiver:
        since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
        create_endpoint(api, receiver.script("/first", []), event_types=["invoice.created"])
        event_id = emit_accepted(api, "invoice.created")["id"]
        wait_for(lambda: receiver.requests("/first"), what="the event's first delivery")
        wait_visible(stack, since, ["invoice.created"], 1)
        # A new endpoint is sent the event again: a replay, whose delivery is bulk work.
        replayed = create_endpoint(api, receiver.script("/replayed", []), event_types=["invoice.created"])
        started = api.post(f"/v1/webhooks/endpoints/{replayed['id']}/replay", json={"since": since})
        assert started.status_code == 202, started.text
        delivery_id = f"{event_id}:{replayed['id']}"
        # At rest, its attempt's answer recorded: the next workflow task it has is the retry's.
        wait_delivery(api, delivery_id, settled, timeout=120)
        wait_for(
            lambda: not _described(stack, delivery_id).HasField("pending_workflow_task"),
            what="the replayed delivery at rest",
        )
        create_endpoint(api, receiver.script("/live", [SLOW]), event_types=["invoice.payment_status_updated"])

        answers: list[httpx.Response] = []
        retry = f"/v1/webhooks/deliveries/{delivery_id}/retry"
        asked = threading.Thread(target=lambda: answers.append(api.post(retry, timeout=90)), daemon=True)
        stack.stop_worker()
        # Its next workflow task (the retry's) goes to the task queue, not to the stopped worker's sticky
        # queue, which Temporal gives up on only 10 s later: a worker back by then would have run the live
        # events and queued their deliveries first (a CI run beside a CPU hog met that).
        _unstuck(stack, delivery_id)
        try:
            asked.start()
            wait_for(
                lambda: _described(stack, delivery_id).HasField("pending_workflow_task"),
                what="the retry to reach Temporal: its update's workflow task, waiting for a worker",
            )
            with ThreadPoolExecutor(8) as pool:  # a live backlog, every event of it accepted
                list(
                    pool.map(
                        lambda _: emit_accepted(api, "invoice.payment_status_updated"), range(LIVE_BACKLOG)
                    )
                )
        finally:
            stack.start_worker()

        wait_for(lambda: len(receiver.requests("/replayed")) == 2, timeout=120, what="the retry's attempt")
        retried = receiver.requests("/replayed")[1]
        asked.join(timeout=90)
        wait_for(
            lambda: len(receiver.requests("/live")) == LIVE_BACKLOG, timeout=120, what="the live backlog"
        )
        before = len([request for request in receiver.requests("/live") if request.at < retried.at])
    assert [answer.status_code for answer in answers] == [202], [a.text for a in answers]
    log.info("the retry's attempt came after %d of the %d live deliveries", before, LIVE_BACKLOG)
    # First-in first-out by priority, it came after all of them; a live attempt, it comes among the first.
    assert before < LIVE_BACKLOG / 2, (
        f"the manual retry's attempt waited for {before} of {LIVE_BACKLOG} live ones; its delivery's "
        f"history:\n{_history_outline(stack, delivery_id)}"
    )
    # Raised to the live priority, still its tenant's work at its weight (fairness between tenants holds).
    priority = _described(stack, delivery_id).workflow_execution_info.priority
    raised = (priority.priority_key, priority.fairness_key, priority.fairness_weight)
    assert raised == (1, "tenant_a", 1), priority


def _described(stack: Stack, delivery_id: str) -> DescribeWorkflowExecutionResponse:
    async def described() -> DescribeWorkflowExecutionResponse:
        client = await connect(stack.settings)
        handle = client.get_workflow_handle(ids.delivery_workflow_id("tenant_a", delivery_id))
        return (await handle.describe()).raw_description

    return asyncio.run(described())


def _unstuck(stack: Stack, delivery_id: str) -> None:
    """The delivery's workflow tasks to its task queue from now on, none to a worker's sticky queue."""

    async def reset() -> None:
        client = await connect(stack.settings)
        await client.workflow_service.reset_sticky_task_queue(
            ResetStickyTaskQueueRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=ids.delivery_workflow_id("tenant_a", delivery_id)),
            )
        )

    asyncio.run(reset())


def _history_outline(stack: Stack, delivery_id: str) -> str:
    """The delivery's history, an event a line: when, what, and a workflow task's queue."""

    async def outline() -> str:
        client = await connect(stack.settings)
        handle = client.get_workflow_handle(ids.delivery_workflow_id("tenant_a", delivery_id))
        lines = []
        async for event in handle.fetch_history_events():
            queue = event.workflow_task_scheduled_event_attributes.task_queue.name
            when = f"{event.event_time.ToDatetime():%H:%M:%S.%f}"
            lines.append(f"{event.event_id:3} {when} {EventType.Name(event.event_type)} {queue}")
        return "\n".join(lines)

    return asyncio.run(outline())


QUEUED_LIVE = 40  # another tenant's live attempts, queued before the attempt a retry joins is raised
Held = Callable[[Client, str, str], Awaitable[WorkflowHandle[DeliveryWorkflow, DeliveryState]]]


async def test_a_manual_retry_raises_a_replayed_first_attempt_still_queued(
    one_partition_stack: Stack,
) -> None:
    """A manual retry joins a replayed delivery's first attempt if that is still queued and untried: the
    attempt is raised to the live priority with its delivery. Left at bulk priority, it waited for every
    live attempt queued before it, another tenant's too (40 of 40 without the raise)."""

    async def replayed(
        client: Client, task_queue: str, endpoint_id: str
    ) -> WorkflowHandle[DeliveryWorkflow, DeliveryState]:
        bulk = (one_partition_stack, WorkKind.BULK)
        return await start_delivery(
            client, task_queue, endpoint_id, origin=DeliveryOrigin.REPLAY, priority_of=bulk
        )

    await _raised_before_a_live_backlog(one_partition_stack, replayed, queued_at=5)


async def test_a_manual_retry_raises_a_live_delivery_s_scheduled_retry_still_queued(
    one_partition_stack: Stack,
) -> None:
    """A manual retry of a live delivery whose scheduled retry is queued joins that retry: at a scheduled
    retry's priority it waited for every live attempt queued before it, though a manual retry of one
    delivery is live work; raised, it goes among the first."""

    async def retrying(
        client: Client, task_queue: str, endpoint_id: str
    ) -> WorkflowHandle[DeliveryWorkflow, DeliveryState]:
        # As a delivery continued as new once its first attempt failed: its scheduled retry is due now.
        due = DeliveryProgress(scheduled_attempts=1, next_attempt_at=datetime.now(UTC))
        live = (one_partition_stack, WorkKind.LIVE)
        return await start_delivery(client, task_queue, endpoint_id, priority_of=live, progress=due)

    await _raised_before_a_live_backlog(one_partition_stack, retrying, queued_at=3)


async def _raised_before_a_live_backlog(stack: Stack, start: Held, *, queued_at: int) -> None:
    """`start`'s delivery of tenant_a, its attempt queued and untried at priority `queued_at`, then 40
    live attempts of tenant_b's queued after it; a manual retry of the delivery: the attempt it joins is
    raised, and goes in its tenant's turn, among the first. Temporal queues the raised task anew a moment
    after the change (a few seconds here; the stale one stays behind), so the test waits for matching to
    count it at priority 1 before a worker takes attempts. Held there for real: the deliveries run on a
    task queue of the test's own, whose workflows a worker takes while no worker takes attempts; then a
    worker with one slot takes them, in Temporal's order."""
    task_queue = f"raise-{uuid.uuid4()}"
    client = await connect(stack.settings)
    store = EndpointStore(stack.settings.sqlalchemy_url, stack.settings.keyring)
    handles: list[WorkflowHandle[DeliveryWorkflow, DeliveryState]] = []
    try:
        with _fresh(stack, "tenant_a") as a, _fresh(stack, "tenant_b") as b, Receiver() as receiver:
            raised = create_endpoint(a, receiver.script("/raised", []))
            live = create_endpoint(b, receiver.script("/live", []))
            async with Worker(client, task_queue=task_queue, workflows=[DeliveryWorkflow]):
                handle = await start(client, task_queue, raised["id"])
                handles.append(handle)
                for _ in range(QUEUED_LIVE):
                    handles.append(
                        await start_delivery(
                            client,
                            task_queue,
                            live["id"],
                            tenant="tenant_b",
                            priority_of=(stack, WorkKind.LIVE),
                        )
                    )
                for each in handles:
                    await _until_attempt_queued(each)
                assert await _queued_attempt_priority(handle) == queued_at
                delivery_id = str(ids.delivery_of_workflow(handle.id))
                retried = await asyncio.to_thread(a.post, f"/v1/webhooks/deliveries/{delivery_id}/retry")
                assert retried.status_code == 202, retried.text
                # The attempt the retry joins, raised in place, still untried. (Its tenant's fairness key and
                # weight are its workflow's, which Temporal applies as it dispatches it: not shown here.)
                assert await _queued_attempt_priority(handle) == 1
                await _until_backlog(client, task_queue, priority_key=1, more_than=QUEUED_LIVE)
                async with httpx.AsyncClient() as http:
                    attempts = DeliveryActivities(
                        http, store, jwt_signer(stack.settings, store), client=client
                    )
                    async with Worker(
                        client,
                        task_queue=task_queue,
                        activities=[attempts.deliver_once],
                        max_concurrent_activities=1,
                    ):
                        await asyncio.to_thread(
                            wait_for,
                            lambda: receiver.requests("/raised"),
                            timeout=60,
                            what="the raised attempt",
                        )
                        first = receiver.requests("/raised")[0]
                        before = len([r for r in receiver.requests("/live") if r.at < first.at])
                        log.info("the raised attempt came after %d of the %d live ones", before, QUEUED_LIVE)
                        # At its priority it came after every live attempt; raised, among the first.
                        assert before < QUEUED_LIVE / 2, (
                            f"the raised attempt waited for {before} of the {QUEUED_LIVE} live ones"
                        )
                        final = await asyncio.to_thread(wait_delivery, a, delivery_id, settled)
            # The retry joined the queued attempt: one POST, its attempt the delivery's last.
            assert len(receiver.requests("/raised")) == 1
            assert (final["status"], final["attempts"][-1]["status_code"]) == ("succeeded", 200), final
    finally:
        for each in handles:
            with contextlib.suppress(RPCError):
                await each.terminate("the test is over")
        store.close()


async def _until_attempt_queued(handle: WorkflowHandle[DeliveryWorkflow, DeliveryState]) -> None:
    for _ in range(600):
        pending = (await handle.describe()).raw_description.pending_activities
        if any(
            p.activity_type.name == ATTEMPT_ACTIVITY
            and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            for p in pending
        ):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id}: its first attempt was never scheduled")


async def _queued_attempt_priority(handle: WorkflowHandle[DeliveryWorkflow, DeliveryState]) -> int:
    """The priority key of the delivery's one attempt, queued and never tried."""
    [pending] = (await handle.describe()).raw_description.pending_activities
    assert (pending.state, pending.attempt) == (PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED, 1)
    return pending.priority.priority_key


async def _until_backlog(client: Client, task_queue: str, *, priority_key: int, more_than: int) -> None:
    """Until matching counts more than `more_than` activity tasks of `priority_key` queued on `task_queue`."""
    for _ in range(150):
        backlog = await _activity_backlog(client, task_queue)
        if backlog.get(priority_key, 0) > more_than:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"matching never counted the raised attempt at priority {priority_key}: {backlog}")


async def _activity_backlog(client: Client, task_queue: str) -> dict[int, int]:
    """Activity tasks queued on `task_queue`, by priority key, as matching counts them."""
    described = await queued_activities(client, task_queue, timeout=timedelta(seconds=10))
    return {key: stats.approximate_backlog_count for key, stats in described.stats_by_priority_key.items()}
