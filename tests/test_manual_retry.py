"""Manual retries, many at once: one run per delivery, one log, every attempt in it, nothing deleted.

A delivery's workflow stays open for a retry window after its schedule ends, so every manual retry is an
update on the one run that holds the whole log; requests that arrive while an attempt is in flight or
already asked for, or less than `RETRY_JOIN_WINDOW` after a retry's attempt ended, join that attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from bench.cost import HistoryCost, runs_cost
from core.temporal import connect
from domain import search_attributes as sa
from domain.ids import delivery_workflow_id
from domain.models import RetryAccepted
from launcher import Stack
from service.deliveries import Deliveries
from service.errors import Conflict, MayHaveBeenApplied, NotFound, RateLimited
from store.database import EndpointStore
from tests.conftest import (
    add_endpoint,
    api_client,
    create_endpoint,
    emit,
    retry_at_once,
    settled,
    stack_env,
    wait_delivery,
    wait_for,
)
from tests.receiver import Answer, Receiver
from workflows.delivery import MAX_ATTEMPTS, RETRY_JOIN_WINDOW


def _runs(stack: Stack, workflow_id: str) -> list[str]:
    """Every run Temporal has of this workflow id, open or closed."""

    async def runs() -> list[str]:
        client = await connect(stack.settings)
        return [e.run_id async for e in client.list_workflows(f"WorkflowId = '{workflow_id}'")]

    return asyncio.run(runs())


async def _cost_of_every_run(stack: Stack, workflow_id: str) -> HistoryCost:
    return await runs_cost(await connect(stack.settings), workflow_id)


def _retry_together(api: httpx.Client, delivery_id: str, count: int) -> list[tuple[httpx.Response, float]]:
    """`count` retries sent at once; each answer with the time it came back."""

    def retry(_: int) -> tuple[httpx.Response, float]:
        response = api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")
        return response, time.time()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(retry, range(count)))


def _accepted(answers: list[httpx.Response]) -> tuple[list[httpx.Response], int]:
    """The 202s of a burst of retries, and how many other answers may have been applied (503s).

    On a loaded machine Temporal may take longer than the API's RPC timeout (2 s here) to take an update:
    a 503 that says it may have been applied; or, past the updates Temporal takes in flight on one
    workflow (10) for that long, a 429 that says nothing was done. Never another answer, and some 202.
    """
    late = [a for a in answers if a.status_code in (429, 503) and a.headers.get("retry-after")]
    accepted = [a for a in answers if a.status_code == 202]
    assert len(accepted) + len(late) == len(answers) and accepted, [a.text for a in answers]
    return accepted, sum(a.status_code == 503 for a in late)


def test_twenty_concurrent_retries_of_a_failed_delivery(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    endpoint = create_endpoint(api, receiver.script("/crowd", [Answer(500)]))
    event_id = emit(api, "invoice.payment_failure")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    failed = wait_delivery(api, delivery_id, settled)
    assert failed["status"] == "failed" and len(failed["attempts"]) == 4
    receiver.script("/crowd", [Answer(200, b"back", delay=1)])

    accepted, maybe_more = _accepted([response for response, _ in _retry_together(api, delivery_id, 20)])
    promised = {a.json()["attempt"] for a in accepted}
    final = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded" and len(d["attempts"]) >= 5)
    time.sleep(1)  # any attempt still to come after the first success
    final = wait_delivery(api, delivery_id, settled)

    # One log, in order, every attempt in it: the four of the schedule, then the manual ones, each the
    # attempt some request was promised, and the receiver saw exactly the attempts the log shows.
    attempts = final["attempts"]
    assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
    assert [a["trigger"] for a in attempts[:4]] == ["scheduled"] * 4
    manual = {a["attempt"] for a in attempts[4:]}
    assert all(a["trigger"] == "manual" for a in attempts[4:])
    # A 503'd request may still have made an attempt of its own, at most one each.
    assert promised <= manual and len(manual - promised) <= maybe_more, (manual, promised)
    assert len(receiver.requests("/crowd")) == len(attempts)

    # One run, never deleted, never replaced; listed and counted once.
    assert len(_runs(stack, delivery_workflow_id("tenant_a", delivery_id))) == 1
    listed = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries").json()["items"]
    assert [d["id"] for d in listed] == [delivery_id]

    def counted() -> dict[str, int] | None:
        stats = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/stats").json()
        return stats if stats["succeeded"] == 1 else None

    stats = wait_for(counted, what="the stats to count the delivery as succeeded")
    assert (stats["pending"], stats["failed"]) == (0, 0)


def test_a_burst_of_retries_makes_one_post(stack: Stack, api: httpx.Client, receiver: Receiver) -> None:
    """Twenty retries of a failed delivery sent at once, three times: each burst makes one POST."""
    endpoint = create_endpoint(api, receiver.script("/burst", [Answer(500)]))
    event_id = emit(api, "invoice.payment_failure")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    failed = wait_delivery(api, delivery_id, settled)
    assert failed["status"] == "failed" and len(failed["attempts"]) == 4
    for burst in range(1, 4):
        attempt = 4 + burst
        accepted, _ = _accepted(retry_at_once(api, delivery_id, 20))
        # Every request is told of the one attempt made: joined while it was asked for, in flight, or
        # just after it ended (its answer then already in the log).
        assert {a.json()["attempt"] for a in accepted} == {attempt}
        wait_delivery(api, delivery_id, _has_settled_attempts(attempt))
        # A straggler of the burst (one of those late too) would make its POST within the window; then
        # the next burst is a new one.
        time.sleep(RETRY_JOIN_WINDOW.total_seconds() + 0.5)
        assert len(receiver.requests("/burst")) == attempt, f"burst {burst} made more than one POST"
    final = wait_delivery(api, delivery_id, settled)
    assert [a["attempt"] for a in final["attempts"]] == [1, 2, 3, 4, 5, 6, 7]
    assert [a["trigger"] for a in final["attempts"]] == ["scheduled"] * 4 + ["manual"] * 3
    assert final["status"] == "failed"


def test_eighty_retries_at_once_are_never_told_temporal_is_unavailable(
    api: httpx.Client, receiver: Receiver
) -> None:
    """Past the updates one workflow takes in flight, Temporal aborts some of those it admitted ("workflow
    update was aborted", UNAVAILABLE) while it is healthy: such a retry is asked again, as one refused
    for being busy is, never answered 503 "Temporal is unavailable or the connection broke" (an attack
    session saw 15 and 34 of 80)."""
    endpoint = create_endpoint(api, receiver.script("/eighty", [Answer(500)]))
    event_id = emit(api, "invoice.payment_failure")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    assert wait_delivery(api, delivery_id, settled)["status"] == "failed"
    receiver.script("/eighty", [Answer(200)])
    answers = retry_at_once(api, delivery_id, 80)
    unavailable = [a.text for a in answers if "connection broke" in a.text]
    assert unavailable == [], f"{len(unavailable)} of 80: {unavailable[0]}"
    _accepted(answers)  # 202s, and 429s or 503s that say so when the machine is slow
    assert wait_delivery(api, delivery_id, settled)["status"] == "succeeded"


def test_a_retry_after_reading_an_answer_is_not_joined_to_it(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/fixed", [Answer(500)]))
    event_id = emit(api, "invoice.payment_failure")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    wait_delivery(api, delivery_id, settled)
    retry = f"/v1/webhooks/deliveries/{delivery_id}/retry"
    assert api.post(retry).json()["attempt"] == 5
    read = wait_delivery(api, delivery_id, lambda d: len(d["attempts"]) == 5)
    assert read["attempts"][-1]["status_code"] == 500
    # The receiver is fixed at once. A retry that says nothing joins the attempt just made (its 500 is
    # in the log); one that says it has read that answer gets a new attempt, however soon.
    receiver.script("/fixed", [Answer(200)])
    assert api.post(retry).json()["attempt"] == 5
    assert api.post(f"{retry}?after=5").json()["attempt"] == 6
    final = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    assert [a["status_code"] for a in final["attempts"][4:]] == [500, 200]
    assert len(receiver.requests("/fixed")) == 6


def test_retries_while_an_attempt_is_in_flight_join_it(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/slow", [Answer(200)]))
    event_id = emit(api, "customer.updated")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    # A resend to a receiver that takes 3 s to answer; 18 more requests are sent while it is in flight.
    receiver.script("/slow", [Answer(200, delay=3)])
    assert api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").status_code == 202
    [_, resend] = wait_for(
        lambda: receiver.requests("/slow")[1:] and receiver.requests("/slow"), what="resend"
    )
    answers = _retry_together(api, delivery_id, 18)
    answered_at = resend.at + 3
    _, maybe_more = _accepted([response for response, _ in answers])
    answers = [(response, at) for response, at in answers if response.status_code == 202]
    # Each request answered before the resend was answered was taken while it was in flight: joined.
    joined = [response.json()["attempt"] for response, at in answers if at < answered_at]
    assert joined, "no request was answered while the attempt was in flight (a very slow machine?)"
    assert set(joined) == {2}
    final = wait_delivery(api, delivery_id, lambda d: settled(d) and len(d["attempts"]) >= 2)
    time.sleep(1)
    final = wait_delivery(api, delivery_id, settled)
    promised = {response.json()["attempt"] for response, _ in answers}
    made = [a["attempt"] for a in final["attempts"]]
    assert made == list(range(1, len(made) + 1)), made  # in order, each once
    assert promised <= set(made[1:]) and len(set(made[1:]) - promised) <= maybe_more, (made, promised)
    assert len(receiver.requests("/slow")) == len(final["attempts"])
    assert [a["trigger"] for a in final["attempts"]][:2] == ["scheduled", "manual"]


def _has_settled_attempts(count: int) -> Callable[[dict[str, Any]], bool]:
    return lambda d: len(d["attempts"]) == count and settled(d)


@pytest.fixture(scope="module")
def short_history_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose dev server suggests continuing as new after 150 history events instead of 4 Ki (or
    4 MB): a delivery's history reaches that within some ten manual retries. An attempt's input no longer
    holds the body, so even a 250 KB body no longer brings the 4 MB within reach of a test."""
    data_dir = tmp_path_factory.mktemp("short-history")
    stack = Stack(
        stack_env(data_dir),
        log_file=data_dir / "stack.log",
        server_args=("--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=150"),
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def test_a_delivery_whose_history_grows_continues_as_new_with_its_log(
    short_history_stack: Stack, receiver: Receiver
) -> None:
    stack = short_history_stack
    with api_client(stack) as api:
        # A large body, kept by the first attempt's record: carried into the new run's input with the log.
        endpoint = create_endpoint(api, receiver.script("/big", [Answer(500)]))
        body = {
            "webhook_type": "invoice.created",
            "data": {"object": {"id": "inv_big", "pad": "x" * 250_000}},
        }
        event_id = api.post("/v1/events", json=body).json()["id"]
        delivery_id = f"{event_id}:{endpoint['id']}"
        wait_delivery(api, delivery_id, settled)
        workflow_id = delivery_workflow_id("tenant_a", delivery_id)
        attempts = 4
        while len(_runs(stack, workflow_id)) == 1:
            assert attempts < 40, "the history never continued as new"
            # Each retry says it has read every attempt so far: one just made is not joined.
            assert (
                api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry?after={attempts}").status_code == 202
            )
            attempts += 1
            wait_delivery(api, delivery_id, _has_settled_attempts(attempts))
        # One more retry lands on the new run, whose log carries every earlier attempt.
        receiver.script("/big", [Answer(200)])
        retried = api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry?after={attempts}")
        assert retried.json()["attempt"] == attempts + 1
        final = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
        assert [a["attempt"] for a in final["attempts"]] == list(range(1, attempts + 2))
        assert [a["status_code"] for a in final["attempts"]] == [500] * attempts + [200]
        # The payload too: the first attempt's record kept it, and the new run's input carries that.
        assert final["payload"] == api.get(f"/v1/events/{event_id}").json()["payload"]
        assert final["payload"]["data"]["object"]["pad"] == "x" * 250_000
        assert len(receiver.requests("/big")) == attempts + 1
        # What `make bench` bills for a delivery counts every run: one start each, one activity per attempt.
        cost = asyncio.run(_cost_of_every_run(stack, workflow_id))
        assert cost.actions["workflow start"] == len(_runs(stack, workflow_id)) == 2
        assert cost.actions["activity"] == attempts + 1

        # Lists and counts show the delivery once, as it is now, not the run it continued from.
        def listed() -> list[tuple[Any, ...]] | None:
            items = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries").json()["items"]
            found = [(d["id"], d["status"], d["attempt_count"]) for d in items]
            return found if found and found[0][1] == "succeeded" else None

        assert wait_for(listed, what="the list to catch up") == [(delivery_id, "succeeded", attempts + 1)]
        stats = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/stats").json()
        assert (stats["pending"], stats["succeeded"], stats["failed"]) == (0, 1, 0)


class _BusyHandle:
    """A delivery's workflow handle whose retry update Temporal refuses `refusals` times (too many in
    flight, unless `refusal` says otherwise), then accepts."""

    def __init__(self, refusals: int, refusal: RPCError | None = None) -> None:
        self.refusals = refusals
        self.refusal = refusal or RPCError(
            "too many updates in flight", RPCStatusCode.RESOURCE_EXHAUSTED, b""
        )
        self.calls = 0
        self.ids: set[str | None] = set()

    async def execute_update(
        self, update: object, *, args: list[Any], id: str | None = None, rpc_timeout: timedelta
    ) -> RetryAccepted:
        self.calls += 1
        self.ids.add(id)
        if self.refusals:
            self.refusals -= 1
            raise self.refusal
        return RetryAccepted(attempt=5)


class _LiveWorkflow:
    """A delivery's workflow as Temporal describes it, at the live priority: a retry raises nothing."""

    async def describe(self, *, rpc_timeout: timedelta) -> SimpleNamespace:
        raw = DescribeWorkflowExecutionResponse()
        raw.workflow_execution_info.priority.priority_key = 1
        return SimpleNamespace(status=WorkflowExecutionStatus.RUNNING, run_id="run-1", raw_description=raw)


class _BusyClient:
    def __init__(self, handle: _BusyHandle) -> None:
        self.handle = handle

    def get_workflow_handle(self, workflow_id: str) -> _LiveWorkflow:
        return _LiveWorkflow()

    def get_workflow_handle_for(self, run: object, workflow_id: str) -> _BusyHandle:
        return self.handle


def _deliveries(store: EndpointStore, handle: _BusyHandle, rpc_seconds: float) -> Deliveries:
    client = cast(Client, _BusyClient(handle))
    return Deliveries(
        client, store, rpc_timeout=timedelta(seconds=rpc_seconds), ui_base=None, cursor_keys=(b"k" * 32,)
    )


async def test_a_retry_refused_for_too_many_in_flight_is_asked_again(store: EndpointStore) -> None:
    """Temporal takes 10 updates in flight per workflow: the 11th of a burst is refused, not applied, and
    the service asks again as the others are answered (the burst tests above cannot tell on a loaded
    machine, where they also accept a 429)."""
    endpoint = add_endpoint(store, "tenant_a")
    handle = _BusyHandle(refusals=3)
    accepted = await _deliveries(store, handle, 2).retry("tenant_a", f"evt_1:{endpoint.id}")
    assert accepted.attempt == 5 and handle.calls == 4
    # Refused for longer than one call may take: a 429 that says nothing was done, in a second.
    always = _BusyHandle(refusals=1000)
    with pytest.raises(RateLimited) as refused:
        await _deliveries(store, always, 0.5).retry("tenant_a", f"evt_1:{endpoint.id}")
    assert refused.value.retry_after == 1 and "nothing was done" in str(refused.value)


async def test_a_retry_temporal_aborted_is_asked_again_and_an_unreachable_temporal_is_not(
    store: EndpointStore,
) -> None:
    """Of the updates it admitted on one workflow, Temporal may abort some (UNAVAILABLE, "workflow update
    was aborted"; with a crowd of them, or as it recovers): asked again with the same update id, so that
    one it took is answered rather than taken twice; past one call's time, a 503 that says it may have been
    made. Any other UNAVAILABLE is Temporal out of reach: not asked again."""
    endpoint = add_endpoint(store, "tenant_a")
    delivery_id = f"evt_1:{endpoint.id}"
    aborted = RPCError("Workflow Update was aborted.", RPCStatusCode.UNAVAILABLE, b"")
    handle = _BusyHandle(refusals=3, refusal=aborted)
    assert (await _deliveries(store, handle, 2).retry("tenant_a", delivery_id)).attempt == 5
    assert handle.calls == 4 and len(handle.ids) == 1 and None not in handle.ids
    with pytest.raises(MayHaveBeenApplied, match="Temporal aborted the retry .* it may have been made"):
        await _deliveries(store, _BusyHandle(1000, aborted), 0.5).retry("tenant_a", delivery_id)
    unreachable = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
    handle = _BusyHandle(refusals=1, refusal=unreachable)
    with pytest.raises(MayHaveBeenApplied):
        await _deliveries(store, handle, 2).retry("tenant_a", delivery_id)
    assert handle.calls == 1


async def test_a_retry_of_a_delivery_to_no_endpoint_says_so_not_that_it_was_deleted(
    store: EndpointStore,
) -> None:
    """An attack session read "its endpoint was deleted" for an endpoint that never was."""
    with pytest.raises(NotFound, match=r"no endpoint ep_0{24} \(never made, or deleted\)$"):
        await _deliveries(store, _BusyHandle(0), 2).retry("tenant_a", f"evt_1:ep_{'0' * 24}")


class _ClosedWorkflow(_LiveWorkflow):
    """A delivery's workflow that closed after `attempts` attempts, as Temporal describes it."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts

    async def describe(self, *, rpc_timeout: timedelta) -> SimpleNamespace:
        pairs = [SearchAttributePair(sa.ATTEMPT_COUNT, self.attempts)]
        return SimpleNamespace(
            status=WorkflowExecutionStatus.COMPLETED,
            close_time=datetime(2026, 12, 8, 0, 1, tzinfo=UTC),
            typed_search_attributes=TypedSearchAttributes(pairs),
        )


class _ClosedClient(_BusyClient):
    """Temporal with the delivery's workflow closed: the retry's update finds no open run."""

    def __init__(self, attempts: int) -> None:
        super().__init__(_BusyHandle(1, RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")))
        self.attempts = attempts

    def get_workflow_handle(self, workflow_id: str) -> _ClosedWorkflow:
        return _ClosedWorkflow(self.attempts)


@pytest.mark.parametrize(
    ("attempts", "why"),
    [
        (4, r"its retry window ended when its workflow closed \(2026-12-08 00:01 UTC\)"),
        (MAX_ATTEMPTS, rf"it has had {MAX_ATTEMPTS} attempts, the most one delivery makes, manual ones"),
    ],
)
async def test_a_retry_of_a_closed_delivery_says_why_it_closed(
    store: EndpointStore, attempts: int, why: str
) -> None:
    """An attack session read "its retry window ended" of a delivery that had closed four minutes after
    its event, on its 100th attempt, in a retry window of 7 days."""
    endpoint = add_endpoint(store, "tenant_a")
    client = cast(Client, _ClosedClient(attempts))
    deliveries = Deliveries(
        client, store, rpc_timeout=timedelta(seconds=2), ui_base=None, cursor_keys=(b"k" * 32,)
    )
    with pytest.raises(Conflict, match=rf"can no longer be retried: {why}.* Emit the event again"):
        await deliveries.retry("tenant_a", f"evt_1:{endpoint.id}", bulk=True)
