"""Process failures and restarts: a killed worker, a restarted stack, an external Temporal, health."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from launcher import Stack
from tests.conftest import (
    api_client,
    assert_delivers,
    create_endpoint,
    emit,
    settled,
    stack_env,
    standalone_api,
    start_stack,
    wait_delivery,
    wait_for,
)
from tests.receiver import Answer, Receiver


def test_worker_killed_mid_schedule_resumes_on_restart(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    # The next attempt 3 s (±20 %) after the first: the kill lands well before it, on a loaded machine too
    # (the tests' 1 s schedule once left too little room for the poll and the kill).
    url = receiver.script("/survivor", [Answer(500), Answer(200, b"made it")])
    endpoint = create_endpoint(api, url, retry_schedule=[3])
    event_id = emit(api, "invoice.payment_overdue")["id"]
    wait_for(lambda: receiver.requests("/survivor"), what="the first attempt")
    stack.stop_worker(signal.SIGKILL)
    try:
        time.sleep(5)  # the next attempt falls due while no worker runs
        assert len(receiver.requests("/survivor")) == 1
    finally:
        stack.start_worker()
    final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled, timeout=60)
    assert final["status"] == "succeeded"
    assert final["attempts"][0]["trigger"] == "scheduled"
    assert final["attempts"][-1]["status_code"] == 200
    assert final["attempts"][-1]["response_body"] == "made it"
    assert len(receiver.requests("/survivor")) == 2


def test_a_restarted_stack_keeps_endpoints_events_and_logs(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    endpoint = create_endpoint(api, receiver.script("/persist", [Answer(500), Answer(200)]))
    event_id = emit(api, "subscription.usage_threshold_reached")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    before = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    jwks = httpx.get(f"{stack.api_url}/v1/webhooks/jwks.json").json()

    stack.stop()
    stack.start()

    with api_client(stack) as again:
        assert again.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json()["url"] == endpoint["url"]
        assert (
            again.get(f"/v1/webhooks/endpoints/{endpoint['id']}/secret").json()["secret"]
            == endpoint["secret"]
        )

        # The first read of Temporal after its restart, as every timer that fell due while it was down
        # fires: asked again after a 503 (Temporal slower than the API waits), never answered otherwise.
        def event_read() -> httpx.Response | None:
            response = again.get(f"/v1/events/{event_id}")
            return None if response.status_code == 503 else response

        event = wait_for(event_read, what="the event read after the restart")
        assert event.json()["deliveries"][0]["status"] == "succeeded"
        assert again.get(f"/v1/webhooks/deliveries/{delivery_id}").json()["attempts"] == before["attempts"]
        assert httpx.get(f"{stack.api_url}/v1/webhooks/jwks.json").json() == jwks
        listed = wait_for(
            lambda: again.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries").json()["items"],
            what="the log after restart",
        )
        assert [d["id"] for d in listed] == [delivery_id]


def test_external_temporal_starts_no_dev_server(stack: Stack, tmp_path: Path, receiver: Receiver) -> None:
    env = stack_env(
        tmp_path,
        WEBHOOKS_TEMPORAL_ADDRESS=stack.settings.temporal_target,
        WEBHOOKS_TASK_QUEUE="external-temporal-test",
    )
    other = Stack(env, log_file=tmp_path / "stack.log")
    try:
        other.start()
        assert other.temporal is None
        assert_delivers(other, receiver, "/external", "billable_metric.archived")
    finally:
        other.stop()


def test_healthz_is_200_with_a_worker(stack: Stack) -> None:
    response = httpx.get(f"{stack.api_url}/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["workers"] >= 1


@pytest.mark.stack  # an API process of its own
def test_temporal_down_is_503_not_500(tmp_path: Path) -> None:
    with standalone_api({"WEBHOOKS_DATA_DIR": str(tmp_path), "WEBHOOKS_API_KEYS": "t:k"}) as base_url:
        health = httpx.get(f"{base_url}/healthz", timeout=30)
        assert health.status_code == 503
        assert "unreachable" in health.json()["temporal"]
        response = httpx.post(
            f"{base_url}/v1/events",
            headers={"x-api-key": "k"},
            json={"webhook_type": "invoice.created", "data": {"object": {}}},
            timeout=30,
        )
        assert response.status_code == 503
        assert "Temporal is unavailable" in response.json()["detail"]


@pytest.mark.stack  # a stack of its own
def test_temporal_killed_is_503_within_the_rpc_timeout(tmp_path: Path) -> None:
    """A Temporal that dies under a connected API: the 503 comes within the RPC timeout, not after the
    client's own retries of an unreachable server (10 s by default), whatever the timeout is set to."""
    stack = start_stack(tmp_path, tmp_path / "stack.log", WEBHOOKS_TEMPORAL_RPC_TIMEOUT="1")
    try:
        with api_client(stack) as api:
            emit(api, id="before-the-kill")  # the API's client is connected
            stack.stop_temporal(signal.SIGKILL)
            started = time.monotonic()
            response = api.post(
                "/v1/events", json={"id": "after", "webhook_type": "invoice.created", "data": {"object": {}}}
            )
            took = time.monotonic() - started
        assert response.status_code == 503, response.text
        # A broken connection does not prove Temporal did not take the start first: no "nothing accepted".
        assert "may have been applied" in response.json()["detail"]
        assert response.headers["retry-after"]
        # 1 s asked for; a wide margin for a loaded machine, far below the 10 s of the client's retries.
        assert took < 6, f"the API answered after {took:.1f} s"
    finally:
        stack.stop()
