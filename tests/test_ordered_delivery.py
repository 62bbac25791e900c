"""Ordered delivery end to end (issue 21): the real API, worker, Temporal and receivers.

Each receiver keeps a ledger of what arrived, in arrival order, with the answer it gave: the assertions are
about that order (sequence numbers, which acknowledgement came before which request), never about time.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from core.temporal import connect
from domain import ids
from domain.fairness import PRIORITY_KEYS, WorkKind
from history.visibility import running_lanes
from launcher import Stack
from tests.conftest import (
    api_client,
    create_endpoint,
    emit,
    moment_between,
    receiving_guide_code,
    run_guide_code,
    running_stack,
    wait_delivery,
    wait_for,
    wait_visible,
)
from tests.receiver import Answer, Received, Receiver

FAST = [0.2] * 10  # ten retries 0.2 s apart: a head that fails 30 % of the time fails them all ~1 in 10^6


@dataclass
class Arrival:
    sequence: int
    webhook_id: str
    key: str  # the event's object id, which each test sets to say what it is
    status: int


@dataclass
class Ledger:
    """A receiver path's answers, decided by `answer(arrival)`, and every request in arrival order."""

    answer: Callable[[Arrival], int]
    arrivals: list[Arrival] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Received) -> Answer:
        body = json.loads(request.body)
        arrival = Arrival(
            sequence=int(request.headers["webhook-sequence"]),
            webhook_id=request.headers["webhook-id"],
            key=body["data"]["object"]["id"],
            status=0,
        )
        arrival.status = self.answer(arrival)
        with self.lock:
            self.arrivals.append(arrival)
        return Answer(arrival.status)

    def acked(self, prefix: str = "") -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.status < 300 and a.key.startswith(prefix)]

    def all(self, prefix: str = "") -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.key.startswith(prefix)]


def assert_in_order(arrivals: list[Arrival], count: int) -> None:
    """Acknowledged once each, 1..count in order, and no request ahead of its predecessor's 2xx: every
    request is the lane's head (the last acknowledged + 1), or a repeat of the last acknowledged one (a
    worker lost after the receiver answered: at-least-once, which the sequence lets a receiver see)."""
    acked = 0
    for arrival in arrivals:
        assert acked <= arrival.sequence <= acked + 1, (arrival, acked)
        if arrival.sequence == acked + 1 and arrival.status < 300:
            acked += 1
    assert acked == count


def test_fifty_events_of_one_key_arrive_in_order_through_random_failures(
    api: httpx.Client, receiver: Receiver
) -> None:
    chance = random.Random(21)
    ledger = Ledger(lambda _arrival: 500 if chance.random() < 0.3 else 200)
    endpoint = create_endpoint(
        api, receiver.respond("/ordered-50", ledger), ordered=True, retry_schedule=FAST
    )
    assert endpoint["ordered"] is True and endpoint["ordered_on_failure"] == "block"
    event_ids = [
        emit(api, data={"object": {"id": f"obj_{n}"}}, ordering_key="cus_1")["id"] for n in range(50)
    ]

    wait_for(lambda: len(ledger.acked()) >= 50, timeout=120, what="50 acknowledged deliveries")
    assert_in_order(ledger.all(), 50)
    acked = ledger.acked()
    assert [a.sequence for a in acked] == list(range(1, 51))
    assert [a.webhook_id for a in acked] == [f"{e}:{endpoint['id']}" for e in event_ids]
    assert any(a.status >= 500 for a in ledger.all())  # the failures did happen
    last = wait_delivery(api, f"{event_ids[-1]}:{endpoint['id']}", lambda d: d["status"] == "succeeded")
    assert last["sequence"] == 50


def test_one_keys_failing_head_does_not_hold_back_another_key(api: httpx.Client, receiver: Receiver) -> None:
    a_fails = threading.Event()
    a_fails.set()
    ledger = Ledger(lambda arrival: 500 if arrival.key.startswith("A") and a_fails.is_set() else 200)
    endpoint = create_endpoint(
        api, receiver.respond("/two-keys", ledger), ordered=True, retry_schedule=[0.3] * 20
    )
    for n in range(5):
        emit(api, data={"object": {"id": f"A{n}"}}, ordering_key="cus_A")
        emit(api, data={"object": {"id": f"B{n}"}}, ordering_key="cus_B")

    wait_for(lambda: len(ledger.acked("B")) == 5, timeout=60, what="key B's five deliveries")
    assert [a.key for a in ledger.acked("B")] == [f"B{n}" for n in range(5)]
    assert ledger.acked("A") == []
    assert {a.key for a in ledger.all("A")} == {"A0"}  # only A's head was tried, again and again
    a_fails.clear()
    wait_for(lambda: len(ledger.acked("A")) == 5, timeout=60, what="key A's five deliveries")
    assert [a.key for a in ledger.acked("A")] == [f"A{n}" for n in range(5)]
    assert_in_order(ledger.all("A"), 5)
    assert_in_order(ledger.all("B"), 5)
    lane = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/lane", params={"ordering_key": "cus_B"}).json()
    assert lane["sequence"] == 5 and lane["blocked"] is False


def test_a_worker_killed_mid_lane_loses_nothing_and_keeps_the_order(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    ledger = Ledger(lambda _arrival: 200)
    create_endpoint(api, receiver.respond("/killed-lane", ledger), ordered=True, retry_schedule=FAST)
    for n in range(20):
        emit(api, data={"object": {"id": f"obj_{n}"}}, ordering_key="sub_9")
    wait_for(lambda: len(ledger.acked()) >= 3, timeout=60, what="the lane under way")
    stack.stop_worker(signal.SIGKILL)
    try:
        acked_while_down = len(ledger.acked())
        assert acked_while_down < 20
    finally:
        stack.start_worker()
    wait_for(lambda: len({a.sequence for a in ledger.acked()}) >= 20, timeout=90, what="all 20 delivered")
    assert_in_order(ledger.all(), 20)
    first_acks = list(dict.fromkeys(a.key for a in ledger.acked()))  # a repeat after the kill counts once
    assert first_acks == [f"obj_{n}" for n in range(20)]


def test_block_waits_for_a_retry_by_hand_or_a_skip_and_tells_the_tenant(
    api: httpx.Client, receiver: Receiver
) -> None:
    failing = {"E1", "E3"}
    ledger = Ledger(lambda arrival: 500 if arrival.key in failing else 200)
    told = receiver.script("/lane-blocked-notices", [Answer(200)])
    watcher = create_endpoint(api, told, event_types=["webhook_endpoint.lane_blocked"])
    assert watcher["ordered"] is False
    endpoint = create_endpoint(api, receiver.respond("/blocking", ledger), ordered=True, retry_schedule=[0.2])
    lane_url = f"/v1/webhooks/endpoints/{endpoint['id']}/lane"
    e1, e2, e3, e4 = (emit(api, data={"object": {"id": f"E{n}"}})["id"] for n in range(1, 5))

    def blocked_on(event_id: str) -> dict[str, object] | None:
        lane = dict(api.get(lane_url).json())
        return (
            lane if lane["blocked"] and lane["head_delivery_id"] == f"{event_id}:{endpoint['id']}" else None
        )

    lane = wait_for(lambda: blocked_on(e1), what="the lane blocked on its first event")
    assert lane["head_sequence"] == 1 and lane["queued"] == 3 and lane["ordering_key"] is None
    assert {a.key for a in ledger.all()} == {"E1"}  # nothing behind it was sent
    notice = wait_for(
        lambda: receiver.requests("/lane-blocked-notices"), what="webhook_endpoint.lane_blocked"
    )
    about = json.loads(notice[0].body)["data"]["object"]
    assert about["id"] == endpoint["id"] and about["lane"]["head"]["sequence"] == 1

    # Retried by hand, and it succeeds: the lane goes on, and blocks again on E3.
    failing.discard("E1")
    retried = api.post(f"/v1/webhooks/deliveries/{e1}:{endpoint['id']}/retry")
    assert retried.status_code in (200, 202), retried.text
    wait_for(lambda: blocked_on(e3), what="the lane blocked on its third event")
    assert [(a.key, a.sequence) for a in ledger.acked()] == [("E1", 1), ("E2", 2)]

    # Skipped by hand: E3 stays failed, E4 goes with sequence 4 (the receiver sees 3 missing).
    wrong = api.post(f"{lane_url}/skip", json={"delivery_id": f"{e4}:{endpoint['id']}"})
    assert wrong.status_code == 409 and wrong.json()["detail"].startswith("the lane's blocked head is")
    skipped = api.post(f"{lane_url}/skip", json={"delivery_id": f"{e3}:{endpoint['id']}"})
    assert skipped.status_code == 200, skipped.text
    wait_for(lambda: len(ledger.acked()) == 3, what="the event after the skipped one")
    assert [(a.key, a.sequence) for a in ledger.acked()] == [("E1", 1), ("E2", 2), ("E4", 4)]
    again = api.post(f"/v1/webhooks/deliveries/{e3}:{endpoint['id']}/retry")
    assert again.status_code == 409 and "skipped" in again.text
    assert "Error" not in again.text  # the workflow's reason, not the Python class it was raised as


def test_skip_fails_the_head_and_moves_on(api: httpx.Client, receiver: Receiver) -> None:
    ledger = Ledger(lambda arrival: 500 if arrival.key == "S1" else 200)
    endpoint = create_endpoint(
        api,
        receiver.respond("/skipping", ledger),
        ordered=True,
        ordered_on_failure="skip",
        retry_schedule=[0.2, 0.2],
    )
    s1, s2 = (emit(api, data={"object": {"id": f"S{n}"}}, ordering_key="k")["id"] for n in (1, 2))
    wait_for(lambda: ledger.acked(), what="the event after the failed one")
    assert [(a.key, a.sequence, a.status) for a in ledger.all()] == [
        ("S1", 1, 500),
        ("S1", 1, 500),
        ("S1", 1, 500),
        ("S2", 2, 200),
    ]
    failed = wait_delivery(api, f"{s1}:{endpoint['id']}", lambda d: d["status"] == "failed")
    assert failed["sequence"] == 1
    again = api.post(f"/v1/webhooks/deliveries/{s1}:{endpoint['id']}/retry")
    assert again.status_code == 409 and "skipped" in again.text
    assert s2


def test_the_sequence_check_of_the_receiver_guide_finds_repeats_and_gaps() -> None:
    """docs/receiving.md's `SequenceCheck`, run as written."""
    check = run_guide_code(receiving_guide_code("## Ordered endpoints"))["SequenceCheck"]()
    requests = [("a", "w1", "1"), ("b", "w2", "1"), ("a", "w3", "2"), ("a", "w3", "2"), ("a", "w5", "5")]
    seen = [check.classify(key, webhook_id, n) for key, webhook_id, n in requests]
    assert seen == ["next", "next", "next", "repeat", "gap of 2"]
    assert check.last == {"a": 5, "b": 1}
    # A replayed request (a webhook-id already processed) with a forged huge sequence changes nothing.
    assert check.classify("a", "w3", "1000000") == "repeat"
    assert check.classify("a", "w6", "6") == "next"


def test_a_bad_ordering_key_is_refused_saying_what_to_fix(api: httpx.Client) -> None:
    base = {"webhook_type": "invoice.created", "data": {"object": {"id": "obj_1"}}}
    long = api.post("/v1/events", json={**base, "ordering_key": "k" * 200})
    assert long.status_code == 422 and "1 to 128 characters long, not 200" in long.text
    control = api.post("/v1/events", json={**base, "ordering_key": "cus\n1"})
    assert control.status_code == 422 and "printable ASCII" in control.text and "position 3" in control.text
    unordered = create_endpoint(api, "http://127.0.0.1:9/none")
    lane = api.get(f"/v1/webhooks/endpoints/{unordered['id']}/lane")
    assert lane.status_code == 409 and '"ordered": true' in lane.json()["detail"]


def test_a_replay_to_an_ordered_endpoint_sends_each_key_in_emission_order(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    """Events of two keys emitted before the endpoint existed, replayed to it: each key's events reach its
    lane in emission order, as new deliveries numbered 1..n, over more pages than one (a page is a second's
    worth at the recovery's rate, 10), which visibility lists newest first."""
    webhook_type = "subscription.trial_ended"  # a type no other test of this file emits
    since = moment_between()
    emitted: dict[str, list[str]] = {"A": [], "B": []}
    for n in range(12):
        for key in ("A", "B"):
            event = emit(api, webhook_type, data={"object": {"id": f"{key}{n}"}}, ordering_key=f"cus_{key}")
            emitted[key].append(event["id"])
    ledger = Ledger(lambda _arrival: 200)
    endpoint = create_endpoint(
        api, receiver.respond("/replayed-in-order", ledger), ordered=True, event_types=[webhook_type]
    )
    wait_visible(stack, since, [webhook_type], 24)

    started = api.post(f"/v1/webhooks/endpoints/{endpoint['id']}/replay", json={"since": since})
    assert started.status_code == 202, started.text
    wait_for(lambda: len(ledger.acked()) >= 24, timeout=120, what="24 replayed deliveries")
    for key in ("A", "B"):
        arrivals = ledger.all(key)
        assert_in_order(arrivals, 12)
        assert [a.key for a in arrivals] == [f"{key}{n}" for n in range(12)]
        assert [a.webhook_id for a in arrivals] == [f"{e}:{endpoint['id']}" for e in emitted[key]]
    last = wait_delivery(api, f"{emitted['A'][-1]}:{endpoint['id']}", lambda d: d["status"] == "succeeded")
    assert (last["origin"], last["sequence"]) == ("replay", 12)
    # Each replayed head went at the scheduled retries' priority, not bulk work's: the live events of its
    # key behind it would otherwise wait for all live work (domain/fairness.py).
    assert _attempt_priorities(stack, f"{emitted['A'][-1]}:{endpoint['id']}") == [
        PRIORITY_KEYS[WorkKind.RETRY]
    ]
    recovery = f"/v1/webhooks/endpoints/{endpoint['id']}/recoveries/{started.json()['id']}"

    def finished() -> dict[str, Any] | None:
        found = dict(api.get(recovery).json())
        return found if found["status"] != "running" else None

    done = wait_for(finished, what="the replay finished")
    assert (done["status"], done["done"], done["skipped"]) == ("completed", 24, 0)


def _attempt_priorities(stack: Stack, delivery_id: str) -> list[int]:
    """The priority key of each attempt scheduled in a delivery's history."""

    async def scheduled() -> list[int]:
        client = await connect(stack.settings)
        history = await client.get_workflow_handle(
            ids.delivery_workflow_id("tenant_a", delivery_id)
        ).fetch_history()
        return [
            e.activity_task_scheduled_event_attributes.priority.priority_key
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]

    return asyncio.run(scheduled())


def _lane_status(stack: Stack, endpoint_id: str, ordering_key: str | None) -> WorkflowExecutionStatus | None:
    async def described() -> WorkflowExecutionStatus | None:
        client = await connect(stack.settings)
        handle = client.get_workflow_handle(ids.lane_workflow_id("tenant_a", endpoint_id, ordering_key))
        return (await handle.describe()).status

    return asyncio.run(described())


def test_a_deleted_endpoints_lanes_end_and_their_queued_events_fail_as_unordered_ones_do(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    """An idle lane and a blocked one with events queued: the endpoint deleted, both lanes close; the
    queued events are not sent, and each shows as an unordered delivery to a deleted endpoint does: a
    failed delivery whose attempt says "endpoint was deleted"."""
    ledger = Ledger(lambda arrival: 500 if arrival.key.startswith("K") else 200)
    endpoint = create_endpoint(
        api, receiver.respond("/deleted-lanes", ledger), ordered=True, retry_schedule=[0.2]
    )
    ep = endpoint["id"]
    emit(api, data={"object": {"id": "D1"}}, ordering_key="done")
    k1, k2, k3 = (emit(api, data={"object": {"id": f"K{n}"}}, ordering_key="stuck")["id"] for n in (1, 2, 3))
    lane_url = f"/v1/webhooks/endpoints/{ep}/lane"
    wait_for(
        lambda: api.get(lane_url, params={"ordering_key": "stuck"}).json()["blocked"], what="the blocked lane"
    )
    wait_for(lambda: ledger.acked("D"), what="the other lane's event")

    # The API finds the lanes to tell in visibility, which lags a lane's start (an idle lane it cannot see
    # yet stays open: docs/delivery.md): both are listed first.
    wait_for(lambda: _running_lanes(stack, ep) == 2, what="both lanes listed")
    assert api.delete(f"/v1/webhooks/endpoints/{ep}").status_code == 204
    for key in ("done", "stuck"):
        wait_for(
            lambda key=key: _lane_status(stack, ep, key) is WorkflowExecutionStatus.COMPLETED,  # type: ignore[misc]
            what=f"the lane of {key} closed",
        )
    for event_id in (k2, k3):
        final = wait_delivery(api, f"{event_id}:{ep}", lambda d: d["status"] == "failed")
        assert [a["error"] for a in final["attempts"]] == ["endpoint was deleted"]
        assert final["attempts"][0]["status_code"] is None

        # The event's page reads each delivery's status from its search attributes, which its workflow
        # writes a task after the attempt that the delivery's own log reads.
        def listed_failed(event_id: str = event_id) -> bool:
            [listed] = api.get(f"/v1/events/{event_id}").json()["deliveries"]
            return bool(listed["status"] == "failed")

        wait_for(listed_failed, what=f"{event_id} listed as failed on its event")
    assert {a.key for a in ledger.all("K")} == {"K1"}  # nothing queued behind the head was sent
    assert delivery_status(api, f"{k1}:{ep}") == "failed"


def _running_lanes(stack: Stack, endpoint_id: str) -> int:
    async def counted() -> int:
        client = await connect(stack.settings)
        query = running_lanes(tenant="tenant_a", endpoint_id=endpoint_id)
        return (await client.count_workflows(query)).count

    return asyncio.run(counted())


def delivery_status(api: httpx.Client, delivery_id: str) -> str:
    return str(api.get(f"/v1/webhooks/deliveries/{delivery_id}").json()["status"])


SMALL_CAP = 3


@pytest.fixture(scope="module")
def small_lane_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose lanes hold at most `SMALL_CAP` events behind their head (API and worker alike)."""
    with running_stack(
        tmp_path_factory.mktemp("small-lanes"), WEBHOOKS_LANE_MAX_QUEUED=str(SMALL_CAP)
    ) as stack:
        yield stack


def test_a_full_lane_refuses_its_keys_events_with_429_until_it_drains(
    small_lane_stack: Stack, receiver: Receiver
) -> None:
    failing = threading.Event()
    failing.set()
    ledger = Ledger(lambda _arrival: 500 if failing.is_set() else 200)
    with api_client(small_lane_stack) as api:
        endpoint = create_endpoint(
            api, receiver.respond("/capped", ledger), ordered=True, retry_schedule=[0.2]
        )
        lane_url = f"/v1/webhooks/endpoints/{endpoint['id']}/lane"
        head = emit(api, data={"object": {"id": "C0"}}, ordering_key="cus_full")["id"]
        # The head first, until its attempt has reached the receiver: a lane counts an event it has not
        # started yet as queued, and on a loaded machine a fourth emission could find C0 still there.
        wait_for(lambda: ledger.all("C0"), what="the head's first attempt")
        queued = [
            emit(api, data={"object": {"id": f"C{n}"}}, ordering_key="cus_full")["id"]
            for n in range(1, 1 + SMALL_CAP)
        ]

        def full_and_blocked() -> dict[str, Any] | None:
            found = dict(api.get(lane_url, params={"ordering_key": "cus_full"}).json())
            return found if found["full"] and found["blocked"] else None

        lane = wait_for(full_and_blocked, what="the lane full, blocked on its head")
        assert lane["queued"] == SMALL_CAP

        refused = api.post(
            "/v1/events",
            json={
                "webhook_type": "invoice.created",
                "data": {"object": {"id": "late"}},
                "ordering_key": "cus_full",
            },
        )
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "60"
        detail = refused.json()["detail"]
        assert "'cus_full'" in detail and endpoint["id"] in detail and "WEBHOOKS_LANE_MAX_QUEUED" in detail
        # Another key's lane is not full: its events are accepted.
        emit(api, data={"object": {"id": "other"}}, ordering_key="cus_other")

        failing.clear()
        assert api.post(f"/v1/webhooks/deliveries/{head}:{endpoint['id']}/retry").status_code in (200, 202)
        wait_for(lambda: len(ledger.acked("C")) == 1 + SMALL_CAP, what="the lane drained")
        wait_for(
            lambda: not api.get(lane_url, params={"ordering_key": "cus_full"}).json()["full"],
            what="the lane no longer full",
        )
        late = emit(api, data={"object": {"id": "late"}}, ordering_key="cus_full")
        wait_delivery(api, f"{late['id']}:{endpoint['id']}", lambda d: d["status"] == "succeeded")
        assert [a.key for a in ledger.acked("C")] == [f"C{n}" for n in range(1 + SMALL_CAP)]
        assert [a.sequence for a in ledger.acked() if a.key == "late"] == [2 + SMALL_CAP]
        for event_id in queued:  # held while the lane was full, then delivered in their turn
            assert delivery_status(api, f"{event_id}:{endpoint['id']}") == "succeeded"
