"""A worker lost mid-POST is noticed within seconds, and a slow receiver still gets its whole timeout.

Temporal learns that a try was lost only from a timeout. With the start-to-close timeout alone (two
attempt timeouts and a grace: 2 × 60 + 40 = 160 s on this module's stack, 70 s by default), the POSTs a
killed worker had in flight were made again that long after they started. An attempt now heartbeats while
it runs, and a try whose heartbeats stop is retried after the heartbeat timeout, on another worker.

A stack of its own, with a 60 s attempt timeout: a receiver may take longer than the heartbeat timeout,
which must not cut it off, and the test has time to start a second worker while POSTs are held.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from launcher import Stack
from tests.conftest import (
    api_client,
    create_endpoint,
    emit,
    running_stack,
    second_worker,
    settled,
    wait_delivery,
    wait_for,
)
from tests.receiver import Answer, Receiver

pytestmark = [pytest.mark.stack]

ATTEMPT_TIMEOUT = 60
# The endpoint's limit of attempts in flight (WEBHOOKS_ENDPOINT_CONCURRENCY's default): every slot the
# endpoint has is held by the worker that dies.
IN_FLIGHT = 8
# Seconds the receiver holds each first POST: long enough for a second worker to start beside the first
# while they are all in flight, within the attempt timeout. On a loaded machine 8 emissions, their POSTs
# and a worker's start took more than the 15 s this was: the kill came after the answers.
HOLD = 45.0
# From the kill to the last POST made again: well under the start-to-close timeout of before (twice the
# attempt timeout and a grace: 160 s here), with room for a loaded machine above the heartbeat timeout.
NOTICED_WITHIN = 30.0


@pytest.fixture(scope="module")
def lost_worker_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("lost-worker"), WEBHOOKS_DELIVERY_TIMEOUT=str(ATTEMPT_TIMEOUT)
    ) as stack:
        yield stack


@pytest.fixture
def api(lost_worker_stack: Stack) -> Iterator[httpx.Client]:
    """A client of this module's stack, whose tenant has no endpoint left by the test before."""
    with api_client(lost_worker_stack) as client:
        for endpoint in client.get("/v1/webhooks/endpoints").json()["items"]:
            client.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")
        yield client


def test_a_slow_receiver_keeps_its_whole_timeout(api: httpx.Client, receiver: Receiver) -> None:
    """An answer that takes longer than the heartbeat timeout, within the attempt's: one POST, one
    attempt, its 200 logged."""
    endpoint = create_endpoint(api, receiver.script("/slow", [Answer(200, b"took its time", delay=14)]))
    event_id = emit(api, "invoice.created")["id"]
    final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled, timeout=90)
    assert final["status"] == "succeeded"
    [attempt] = final["attempts"]
    assert attempt["status_code"] == 200 and attempt["response_body"] == "took its time"
    assert attempt["duration_ms"] >= 14_000
    assert attempt["infra_failures"] == 0
    assert len(receiver.requests("/slow")) == 1


def test_a_worker_killed_mid_post_is_noticed_within_seconds(
    lost_worker_stack: Stack, api: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    stack = lost_worker_stack
    answers = [Answer(200, delay=HOLD)] * IN_FLIGHT + [Answer(200)]
    endpoint = create_endpoint(api, receiver.script("/lost", answers))
    events = [emit(api, "invoice.created")["id"] for _ in range(IN_FLIGHT)]
    # Every first POST made by the stack's worker, the only one running.
    wait_for(lambda: len(receiver.requests("/lost")) == IN_FLIGHT, what="every first POST")
    first = receiver.requests("/lost")
    try:
        with second_worker(stack, tmp_path / "worker2.log"):
            # Still in flight: the receiver holds each of them for HOLD seconds.
            assert time.time() < min(r.at for r in first) + HOLD, "the POSTs ended before the kill"
            stack.stop_worker(signal.SIGKILL)  # by its PID
            killed = time.time()
            wait_for(
                lambda: len(receiver.requests("/lost")) == 2 * IN_FLIGHT,
                timeout=120,
                what="the lost POSTs to be made again",
            )
            again = receiver.requests("/lost")[IN_FLIGHT:]
            took = max(r.at for r in again) - killed
            for event_id in events:
                final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled, timeout=60)
                assert final["status"] == "succeeded", final
                # The receiver's schedule paid nothing: one attempt, made after a try of ours was lost.
                [attempt] = final["attempts"]
                assert attempt["status_code"] == 200
                assert attempt["infra_failures"] == 1
                assert "did not finish" in attempt["infra_error"]
    finally:
        stack.start_worker()
    assert took < NOTICED_WITHIN, f"the lost POSTs were made again {took:.1f} s after the kill"
    # At least once: each delivery twice, under the same webhook-id, which a receiver dedupes on.
    ids = sorted(r.headers["webhook-id"] for r in receiver.requests("/lost"))
    assert ids == sorted(2 * [r.headers["webhook-id"] for r in first])
    assert len(set(ids)) == IN_FLIGHT
