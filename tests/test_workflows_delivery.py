"""`DeliveryWorkflow` over its full default schedule, on the time-skipping test server.

27.6 hours of backoff run in seconds; the attempts are real POSTs to a real receiver. The delays are
read from the workflow's history (its timers), since time skipping moves only Temporal's clock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.delivery import DeliveryActivities, earlier_failures
from core.crypto import new_key_entry
from core.settings import DEFAULT_RETRY_SCHEDULE, parse_retry_schedule
from core.signing import JwtSigner, load_or_create_rsa_key
from domain.models import (
    AttemptOutcome,
    AttemptRecord,
    AttemptTrigger,
    DeliverRequest,
    DeliveryInput,
    DeliveryPolicy,
    DeliveryProgress,
    DeliveryState,
    EventInput,
)
from history.visibility import delivery_search_attributes
from store.database import EndpointStore
from tests.conftest import TEST_ENCRYPTION_KEYS, add_endpoint, made_up_attempt, sealed_by
from tests.receiver import Answer, Receiver
from workflows.delivery import JITTER, RETRY_JOIN_WINDOW, DeliveryWorkflow
from workflows.event import EventWorkflow

DEFAULT_DELAYS = parse_retry_schedule(DEFAULT_RETRY_SCHEDULE)
POLICY = DeliveryPolicy(retry_delays=DEFAULT_DELAYS, attempt_timeout=5, retry_window=3 * 86400)
MANUAL = AttemptTrigger.MANUAL
BODY = '{"webhook_type":"invoice.created","object_type":"invoice","data":{"object":{}}}'

DeliveryHandle = WorkflowHandle[DeliveryWorkflow, DeliveryState]
StartDelivery = Callable[[str, list[Answer]], Awaitable[DeliveryHandle]]


@pytest.fixture
async def worker(
    workflow_env: WorkflowEnvironment, store: EndpointStore, tmp_path: Path
) -> AsyncIterator[str]:
    signer = JwtSigner.from_pem(load_or_create_rsa_key(tmp_path / "jwt.pem"), issuer="test")
    task_queue = f"tq-{uuid.uuid4()}"
    async with httpx.AsyncClient() as http:
        # The client: attempts of deliveries an event workflow started read the body from its history.
        activities = DeliveryActivities(http, store, signer, client=workflow_env.client)
        async with Worker(
            workflow_env.client,
            task_queue=task_queue,
            workflows=[EventWorkflow, DeliveryWorkflow],
            activities=[activities.deliver_once],
        ):
            yield task_queue


async def start_delivery(
    client: Client,
    task_queue: str,
    store: EndpointStore,
    url: str,
    *,
    prior: list[AttemptRecord] | None = None,
) -> DeliveryHandle:
    """A delivery of a new event to a new endpoint at `url`, its log holding `prior` attempts already."""
    endpoint = add_endpoint(store, "t", url=url)
    event_id = f"evt_{uuid.uuid4().hex[:8]}"
    delivery = DeliveryInput(
        tenant="t",
        event_id=event_id,
        endpoint_id=endpoint.id,
        delivery_id=f"{event_id}:{endpoint.id}",
        webhook_type="invoice.created",
        body=BODY,
        created_at=datetime.now(UTC),
        policy=POLICY,
        progress=DeliveryProgress(attempts=prior or []),
    )
    return await run_delivery(client, task_queue, delivery)


async def run_delivery(client: Client, task_queue: str, delivery: DeliveryInput) -> DeliveryHandle:
    """`delivery`'s workflow, started as an event's workflow starts it: under its id, with its search
    attributes."""
    return await client.start_workflow(
        DeliveryWorkflow.run,
        delivery,
        id=f"delivery:t:{delivery.delivery_id}",
        task_queue=task_queue,
        search_attributes=delivery_search_attributes(delivery, delivery.body or ""),
    )


@pytest.fixture
def start(
    workflow_env: WorkflowEnvironment, worker: str, store: EndpointStore, receiver: Receiver
) -> StartDelivery:
    """`start_delivery` on this test's server, worker and store, to the test's receiver: a test names
    only what the receiver answers at a path (and takes `receiver` too if it reads what was sent)."""

    async def start(path: str, answers: list[Answer]) -> DeliveryHandle:
        return await start_delivery(workflow_env.client, worker, store, receiver.script(path, answers))

    return start


async def until(
    env: WorkflowEnvironment, handle: DeliveryHandle, check: Callable[[DeliveryState], object]
) -> DeliveryState:
    """The delivery's state once `check` holds of it, the test server's clock moved a second at a time."""
    while not check(state := await handle.query(DeliveryWorkflow.state)):
        await env.sleep(1)
    return state


async def settled(handle: DeliveryHandle) -> DeliveryState:
    """A delivery's state once it has closed: its result leaves out the body and the attempts, which its
    history holds (the log reads them there), so the whole state is asked of its workflow."""
    result = await handle.result()
    assert result.in_history and result.body is None and not result.attempts
    return await handle.query(DeliveryWorkflow.state)


async def timer_delays(handle: DeliveryHandle) -> list[float]:
    """The waits of the schedule, from the workflow's timers (the last timer is the retry window's)."""
    history = await handle.fetch_history()
    *schedule, window = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in history.events
        if e.event_type is EventType.EVENT_TYPE_TIMER_STARTED
    ]
    assert window == POLICY.retry_window
    return schedule


async def test_full_default_schedule_then_failed(start: StartDelivery, receiver: Receiver) -> None:
    handle = await start("/down", [Answer(500, b"nope")])
    state = await settled(handle)
    assert state.status == "failed"
    assert len(state.attempts) == 8
    assert [a.status_code for a in state.attempts] == [500] * 8
    assert len(receiver.requests("/down")) == 8
    delays = await timer_delays(handle)
    assert len(delays) == 7
    for actual, planned in zip(delays, DEFAULT_DELAYS, strict=True):
        assert planned * (1 - JITTER) <= actual <= planned * (1 + JITTER)
    assert sum(delays) / 3600 == pytest.approx(27.6, rel=JITTER)


async def test_success_midway_stops_the_schedule(start: StartDelivery) -> None:
    handle = await start("/late", [Answer(500)] * 4 + [Answer(200)])
    state = await settled(handle)
    assert state.status == "succeeded"
    assert [a.status_code for a in state.attempts] == [500, 500, 500, 500, 200]
    assert len(await timer_delays(handle)) == 4


async def test_retry_after_longer_than_the_schedule_wins(start: StartDelivery) -> None:
    handle = await start("/limited", [Answer(429, headers={"Retry-After": "7200"}), Answer(200)])
    state = await settled(handle)
    assert [a.status_code for a in state.attempts] == [429, 200]
    assert state.attempts[0].retry_after_seconds == 7200
    [delay] = await timer_delays(handle)
    assert delay >= 7200  # the schedule alone would have waited about 5 s


async def test_410_ends_the_delivery_at_once(start: StartDelivery) -> None:
    handle = await start("/gone", [Answer(410)])
    state = await settled(handle)
    assert state.status == "failed"
    assert len(state.attempts) == 1
    assert await timer_delays(handle) == []


async def test_manual_retry_cuts_a_long_wait_short(
    workflow_env: WorkflowEnvironment, start: StartDelivery
) -> None:
    handle = await start("/manual", [Answer(500), Answer(500), Answer(200, b"ok")])
    # Wait until the first attempt is logged and the second is scheduled.
    await until(workflow_env, handle, lambda s: s.next_attempt_at)
    accepted = await handle.execute_update(DeliveryWorkflow.retry_now)
    assert accepted.attempt == 2
    state = await settled(handle)
    assert [(a.trigger, a.status_code) for a in state.attempts] == [
        ("scheduled", 500),
        ("manual", 500),
        ("scheduled", 200),
    ]
    assert state.status == "succeeded"


async def test_retry_requests_map_to_logged_manual_attempts(
    workflow_env: WorkflowEnvironment, start: StartDelivery
) -> None:
    handle = await start("/clicks", [Answer(500)] + [Answer(200)])
    await until(workflow_env, handle, lambda s: s.next_attempt_at)
    # A double click: whether the two land together or one after the other, each answer names an
    # attempt that the log then shows as manual.
    first, second = await asyncio.gather(
        handle.execute_update(DeliveryWorkflow.retry_now),
        handle.execute_update(DeliveryWorkflow.retry_now),
    )
    state = await settled(handle)
    manual = {a.attempt for a in state.attempts if a.trigger == "manual"}
    assert {first.attempt, second.attempt} <= manual
    assert state.status == "succeeded"


async def test_retry_is_refused_past_the_attempt_cap(
    workflow_env: WorkflowEnvironment, worker: str, store: EndpointStore, receiver: Receiver
) -> None:
    from temporalio.client import WorkflowUpdateFailedError

    from domain.models import AttemptOutcome, AttemptRecord, AttemptTrigger
    from workflows.delivery import MAX_ATTEMPTS

    url = receiver.script("/capped", [Answer(500)])
    handle = await start_delivery(
        workflow_env.client,
        worker,
        store,
        url,
        prior=[
            AttemptRecord(
                attempt=n,
                trigger=AttemptTrigger.MANUAL,
                started_at=datetime.now(UTC),
                duration_ms=1,
                outcome=AttemptOutcome.RETRYABLE,
                status_code=500,
            )
            for n in range(1, MAX_ATTEMPTS)
        ],
    )
    await until(workflow_env, handle, lambda s: s.next_attempt_at)
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update(DeliveryWorkflow.retry_now)
    assert f"{MAX_ATTEMPTS} attempts" in str(raised.value.cause)
    await handle.terminate()


@pytest.fixture
async def flaky_worker(workflow_env: WorkflowEnvironment) -> AsyncIterator[tuple[str, list[DeliverRequest]]]:
    """A worker whose `deliver_once` fails on our side twice per attempt, then gets a 503 or a 200.

    It stands in for the activity (as samples-python mocks activities) to test what the workflow does
    with our faults; the real activity's side is tested end to end in tests/test_store_outage.py.
    """
    tries: list[DeliverRequest] = []

    @activity.defn(name="deliver_once")
    async def deliver_once(request: DeliverRequest) -> AttemptRecord:
        tries.append(request)
        failures, reason = earlier_failures(activity.info())
        if failures < 2:
            activity.heartbeat(f"store down (try {failures + 1})")
            raise ApplicationError("the endpoint store could not be read", type="StoreUnavailable")
        return made_up_attempt(
            request,
            AttemptOutcome.SUCCEEDED if request.attempt > 1 else AttemptOutcome.RETRYABLE,
            status_code=200 if request.attempt > 1 else 503,
            infra_failures=failures,
            infra_error=reason,
        )

    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        workflow_env.client, task_queue=task_queue, workflows=[DeliveryWorkflow], activities=[deliver_once]
    ):
        yield task_queue, tries


async def test_our_faults_are_retried_without_using_the_schedule(
    workflow_env: WorkflowEnvironment, flaky_worker: tuple[str, list[DeliverRequest]], store: EndpointStore
) -> None:
    task_queue, tries = flaky_worker
    handle = await start_delivery(workflow_env.client, task_queue, store, "http://127.0.0.1:9/unused")
    state = await settled(handle)
    # Two attempts the receiver answered (503, then 200), each after two tries of ours that failed.
    assert [(a.attempt, a.status_code) for a in state.attempts] == [(1, 503), (2, 200)]
    assert len(tries) == 6
    assert [a.infra_failures for a in state.attempts] == [2, 2]
    assert [a.infra_error for a in state.attempts] == ["store down (try 2)"] * 2
    assert state.status == "succeeded"
    # The schedule waited once, between the two answered attempts; Temporal's own backoff did the rest.
    assert len(await timer_delays(handle)) == 1


async def test_the_retry_window_then_the_workflow_closes(
    workflow_env: WorkflowEnvironment, start: StartDelivery
) -> None:
    handle = await start("/window", [Answer(410), Answer(200, b"back")])
    await until(workflow_env, handle, lambda s: s.status == "failed")
    # The schedule is over (410), and the workflow still takes a manual retry.
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    await handle.execute_update(DeliveryWorkflow.retry_now)
    await until(workflow_env, handle, lambda s: s.status == "succeeded")
    await workflow_env.sleep(POLICY.retry_window + 60)
    state = await settled(handle)
    assert [(a.trigger, a.status_code) for a in state.attempts] == [("scheduled", 410), ("manual", 200)]
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED


async def test_an_event_whose_delivery_already_runs_starts_the_others(
    workflow_env: WorkflowEnvironment, worker: str, store: EndpointStore, receiver: Receiver
) -> None:
    endpoints = [
        add_endpoint(store, "t", url=receiver.script(f"/fanout-{n}", [Answer(200)])) for n in range(3)
    ]
    event = EventInput(
        tenant="t",
        event_id=f"evt_{uuid.uuid4().hex[:8]}",
        webhook_type="invoice.created",
        object_type="invoice",
        body=BODY,
        created_at=datetime.now(UTC),
        endpoint_ids=[e.id for e in endpoints],
        policy=POLICY,
    )
    # The second delivery already runs (a reset event workflow, an operator's start): the event
    # must still start the first and the third, and complete.
    already_running = DeliveryInput(
        tenant="t",
        event_id=event.event_id,
        endpoint_id=endpoints[1].id,
        delivery_id=f"{event.event_id}:{endpoints[1].id}",
        webhook_type=event.webhook_type,
        body=event.body,
        created_at=event.created_at,
        policy=POLICY,
    )
    started = await run_delivery(workflow_env.client, worker, already_running)
    await workflow_env.client.execute_workflow(
        EventWorkflow.run, event, id=f"event:t:{event.event_id}", task_queue=worker
    )
    for endpoint in endpoints:
        handle = workflow_env.client.get_workflow_handle_for(
            DeliveryWorkflow.run, f"delivery:t:{event.event_id}:{endpoint.id}"
        )
        await until(workflow_env, handle, lambda s: s.attempts)
    assert (await started.describe()).run_id == started.result_run_id
    for n in range(3):
        assert len(receiver.requests(f"/fanout-{n}")) == 1


async def test_a_recovery_s_attempt_is_logged_as_such(
    workflow_env: WorkflowEnvironment, start: StartDelivery
) -> None:
    handle = await start("/recover", [Answer(410), Answer(200)])
    await until(workflow_env, handle, lambda s: s.status == "failed")
    await handle.execute_update(DeliveryWorkflow.retry_now, AttemptTrigger.RECOVER)
    await until(workflow_env, handle, lambda s: s.status == "succeeded")
    # The next request, from a person, is manual again.
    await handle.execute_update(DeliveryWorkflow.retry_now)
    state = await until(workflow_env, handle, lambda s: len(s.attempts) >= 3)
    assert [a.trigger for a in state.attempts] == ["scheduled", "recover", "manual"]
    await handle.terminate()


async def _attempts_made(handle: DeliveryHandle, count: int) -> DeliveryState:
    """The state once `count` attempts are logged, polled in real time: `workflow_env.sleep` would move the
    workflow's clock past `RETRY_JOIN_WINDOW`."""
    while len((state := await handle.query(DeliveryWorkflow.state)).attempts) < count:
        await asyncio.sleep(0.05)
    return state


async def test_a_retry_just_after_a_retry_s_attempt_joins_it(
    workflow_env: WorkflowEnvironment, start: StartDelivery, receiver: Receiver
) -> None:
    handle = await start("/join", [Answer(410), Answer(500)])
    await _attempts_made(handle, 1)
    # An ended scheduled attempt is not joined by a manual retry, however soon it comes.
    assert (await handle.execute_update(DeliveryWorkflow.retry_now)).attempt == 2
    await _attempts_made(handle, 2)
    # Within the window, a retry is told of the attempt just made, and makes no POST.
    for _ in range(3):
        assert (await handle.execute_update(DeliveryWorkflow.retry_now)).attempt == 2
    # Unless it says it has read that attempt's answer.
    read = await handle.execute_update(DeliveryWorkflow.retry_now, args=[MANUAL, False, 2])
    assert read.attempt == 3
    await _attempts_made(handle, 3)
    # A recovery's retry joins no manual attempt, nor a manual one a recovery's.
    recover = await handle.execute_update(DeliveryWorkflow.retry_now, AttemptTrigger.RECOVER)
    assert recover.attempt == 4
    await _attempts_made(handle, 4)
    assert (await handle.execute_update(DeliveryWorkflow.retry_now)).attempt == 5
    await _attempts_made(handle, 5)
    # Once the window has passed, a retry makes a new attempt.
    await workflow_env.sleep(RETRY_JOIN_WINDOW.total_seconds())
    assert (await handle.execute_update(DeliveryWorkflow.retry_now)).attempt == 6
    state = await _attempts_made(handle, 6)
    assert len(receiver.requests("/join")) == 6
    triggers = ["scheduled", "manual", "manual", "recover", "manual", "manual"]
    assert [a.trigger for a in state.attempts] == triggers
    await handle.terminate()


async def test_a_retry_that_has_read_the_attempt_in_flight_gets_the_next(
    start: StartDelivery, receiver: Receiver
) -> None:
    # The attempt's answer is in the history before the workflow has taken it in: a caller that read
    # it there is given the attempt after it, not the one it read.
    handle = await start("/read", [Answer(410), Answer(500, delay=1), Answer(200)])
    await _attempts_made(handle, 1)
    assert (await handle.execute_update(DeliveryWorkflow.retry_now)).attempt == 2
    while len(receiver.requests("/read")) < 2:  # attempt 2 is in flight
        await asyncio.sleep(0.05)
    read = await handle.execute_update(DeliveryWorkflow.retry_now, args=[MANUAL, False, 2])
    joined = await handle.execute_update(DeliveryWorkflow.retry_now, args=[MANUAL, False, 1])
    assert (read.attempt, joined.attempt) == (3, 3)
    state = await _attempts_made(handle, 3)
    assert len(receiver.requests("/read")) == 3
    assert [(a.trigger, a.status_code) for a in state.attempts] == [
        ("scheduled", 410),
        ("manual", 500),
        ("manual", 200),
    ]
    await handle.terminate()


async def test_retries_of_a_closed_delivery_make_no_post(start: StartDelivery, receiver: Receiver) -> None:
    handle = await start("/closed", [Answer(410)])
    await handle.result()  # given up, and its retry window over
    outcomes = await asyncio.gather(
        *(handle.execute_update(DeliveryWorkflow.retry_now) for _ in range(20)), return_exceptions=True
    )
    assert len(receiver.requests("/closed")) == 1
    # No run takes an update: the API answers each with 409 (`Deliveries.retry`, service/deliveries.py).
    assert all(isinstance(o, RPCError) and o.status is RPCStatusCode.NOT_FOUND for o in outcomes), outcomes


async def test_an_attempt_whose_notes_its_worker_cannot_open_is_made_again_not_the_delivery_s_end(
    workflow_env: WorkflowEnvironment, store: EndpointStore
) -> None:
    """Mid-rotation: a try's worker seals its notes (heartbeat details) with a new key, and fails on our
    side; the next try lands on a worker without that key. The SDK fails that activity for good before it
    runs ("Failed decoding heartbeat details"), which used to fail the delivery's workflow: the attempt is
    made again as a new activity, and the delivery goes on. Real codec, real SDK; `deliver_once` stands in."""
    rotated = f"{new_key_entry('rotated')},{TEST_ENCRYPTION_KEYS}"
    old = sealed_by(workflow_env.client, TEST_ENCRYPTION_KEYS)
    new = sealed_by(workflow_env.client, rotated)
    tries: list[str] = []
    task_queue = f"tq-{uuid.uuid4()}"

    def attempt(worker: str) -> Callable[[DeliverRequest], Awaitable[AttemptRecord]]:
        @activity.defn(name="deliver_once")
        async def deliver_once(request: DeliverRequest) -> AttemptRecord:
            tries.append(worker)
            if worker == "new":  # its notes sealed with the new key, then a fault of ours
                activity.heartbeat("store down (try 1)")
                raise ApplicationError("the endpoint store could not be read", type="StoreUnavailable")
            return made_up_attempt(request, AttemptOutcome.SUCCEEDED, status_code=200)

        return deliver_once

    # The workflows on a worker of the old key alone, which opens what the client (old key) sealed.
    async with Worker(old, task_queue=task_queue, workflows=[DeliveryWorkflow]):
        async with Worker(new, task_queue=task_queue, activities=[attempt("new")]):
            handle = await start_delivery(old, task_queue, store, "http://127.0.0.1:9/unused")
            for _ in range(1200):  # a minute, on a loaded machine
                if tries:
                    break
                await asyncio.sleep(0.05)
        # Its next tries (1 s apart) may come to it too before it stops: each opens its own notes.
        assert tries and set(tries) == {"new"}
        async with Worker(old, task_queue=task_queue, activities=[attempt("old")]):
            try:
                state = await asyncio.wait_for(
                    until(workflow_env, handle, lambda state: state.status == "succeeded"), 90
                )
            except TimeoutError:
                status = (await handle.describe()).status
                raise AssertionError(f"the delivery did not go on: its workflow is {status!r}") from None
            history = await handle.fetch_history()
            await handle.terminate()  # rather than wait out its retry window
    assert [a.status_code for a in state.attempts] == [200]
    assert tries[0] == "new" and tries[-1] == "old"
    failures = [
        e.activity_task_failed_event_attributes.failure.message
        for e in history.events
        if e.event_type is EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert failures == ["Failed decoding heartbeat details"]  # met, and made again past
