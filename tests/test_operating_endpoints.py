"""Operating endpoints: health, auto-disable and operational webhooks, secret rotation, rate limits,
custom headers and per-endpoint schedules, through the real API, worker and Temporal, to real receivers.

Auto-disable runs on a stack of its own whose `WEBHOOKS_DISABLE_AFTER` is seconds, so that no endpoint of
the shared stack's other tests is ever disabled for failing a few seconds.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from launcher import Stack
from store.database import EndpointStore
from store.health import EndpointHealth
from tests.conftest import (
    NOWHERE,
    STACK_LOG,
    api_client,
    create_endpoint,
    emit,
    emit_accepted,
    running_stack,
    second_worker,
    settled,
    wait_delivery,
    wait_for,
)
from tests.faults import paused
from tests.receiver import Answer, Receiver

OPERATIONAL = ["webhook_endpoint.failing", "webhook_endpoint.recovered", "webhook_endpoint.disabled"]


def _endpoint(api: httpx.Client, endpoint_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/webhooks/endpoints/{endpoint_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_health_says_failing_since_when_and_why_then_healthy(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/health", [Answer(503, b"maintenance")]))
    assert _endpoint(api, endpoint["id"])["health"]["state"] == "healthy"  # no attempt yet
    event_id = emit(api, "invoice.created")["id"]
    wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
    health = _endpoint(api, endpoint["id"])["health"]
    assert health["state"] == "failing"
    assert health["failing_since"] is not None
    assert health["last_status_code"] == 503 and health["consecutive_failures"] == 4
    assert (health["attempts_24h"], health["success_rate_24h"]) == (4, 0.0)

    receiver.script("/health", [Answer(200)])
    event_id = emit(api, "invoice.created")["id"]
    wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
    health = _endpoint(api, endpoint["id"])["health"]
    assert (health["state"], health["failing_since"], health["last_status_code"]) == ("healthy", None, 200)
    assert (health["attempts_24h"], health["success_rate_24h"]) == (5, 0.2)
    listed = {e["id"]: e for e in api.get("/v1/webhooks/endpoints").json()["items"]}
    assert listed[endpoint["id"]]["health"]["state"] == "healthy"


@pytest.fixture(scope="module")
def quick_disable_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("quick-disable"), WEBHOOKS_DISABLE_AFTER="6s") as stack:
        yield stack


def _operational(receiver: Receiver, path: str, endpoint_id: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for request in receiver.requests(path):
        body = json.loads(request.body)
        if body["data"]["object"]["id"] == endpoint_id:
            found.append((body["webhook_type"], body["data"]["object"]))
    return found


def test_a_webhook_whose_moment_finds_temporal_frozen_is_sent_once_it_is_back(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    create_endpoint(api, receiver.script("/ops-later", []), event_types=OPERATIONAL)
    target = create_endpoint(api, NOWHERE)
    with paused(stack.temporal):
        # The change is made and answered; telling of it cannot reach Temporal, so it stays owed.
        response = api.patch(f"/v1/webhooks/endpoints/{target['id']}", json={"enabled": False})
        assert response.status_code == 200, response.text
        assert response.json()["enabled"] is False
    # Thawed: a worker's sweep sends what is owed, once.
    told = wait_for(
        lambda: _operational(receiver, "/ops-later", target["id"]),
        timeout=90,
        what="webhook_endpoint.disabled",
    )
    assert [(kind, about["disabled"]["by"]) for kind, about in told] == [("webhook_endpoint.disabled", "api")]
    # And it is owed no more: marked sent once Temporal had it (a sweep after that sends nothing).
    store = EndpointStore(stack.settings.sqlalchemy_url, stack.settings.keyring)
    try:
        health = EndpointHealth(store.engine, disable_after=timedelta(days=5))
        wait_for(lambda: health.owed(tenant="tenant_a", endpoint_id=target["id"]) == [], what="it to be sent")
    finally:
        store.close()


def test_failing_recovered_and_disabled_for_failing_are_told_as_webhooks(
    quick_disable_stack: Stack, receiver: Receiver
) -> None:
    with api_client(quick_disable_stack) as api:
        watcher = create_endpoint(api, receiver.script("/ops", []), event_types=OPERATIONAL)
        everything = create_endpoint(api, receiver.script("/everything", []))  # null: every event type
        flaky = create_endpoint(api, receiver.script("/flaky", [Answer(500)]))

        # Failing: three attempts in a row failed.
        first = emit(api, "invoice.created")["id"]
        wait_delivery(api, f"{first}:{flaky['id']}", settled)
        told = wait_for(lambda: _operational(receiver, "/ops", flaky["id"]), what="webhook_endpoint.failing")
        assert told[0][0] == "webhook_endpoint.failing"
        assert told[0][1]["last_status_code"] == 500 and told[0][1]["failing_since"]
        signed = receiver.requests("/ops")[0]
        Webhook(watcher["secret"]).verify(signed.body, signed.headers)  # signed like any delivery

        # Recovered: the first success after that.
        receiver.script("/flaky", [Answer(200)])
        second = emit(api, "invoice.created")["id"]
        wait_delivery(api, f"{second}:{flaky['id']}", settled)
        wait_for(
            lambda: len(_operational(receiver, "/ops", flaky["id"])) == 2, what="webhook_endpoint.recovered"
        )
        recovered = _operational(receiver, "/ops", flaky["id"])[1][1]
        # The run it ended, and the 2xx that ended it (as the catalog's example says).
        assert recovered["failing_since"] == told[0][1]["failing_since"]
        assert (recovered["consecutive_failures"], recovered["last_status_code"]) == (0, 200)

        # Disabled by the rule: every attempt failed for longer than WEBHOOKS_DISABLE_AFTER (6 s).
        receiver.script("/flaky", [Answer(500)])
        third = emit(api, "invoice.created")["id"]
        wait_delivery(api, f"{third}:{flaky['id']}", settled)
        time.sleep(6)  # the streak is now longer than WEBHOOKS_DISABLE_AFTER: its next failure disables
        fourth = emit(api, "invoice.created")["id"]
        wait_delivery(api, f"{fourth}:{flaky['id']}", settled)

        def disabled() -> dict[str, Any] | None:
            found = _endpoint(api, flaky["id"])
            return found if not found["enabled"] else None

        found = wait_for(disabled, timeout=60, what="the rule to disable the endpoint")
        assert found["health"]["state"] == "disabled"
        assert found["disabled"]["by"] == "rule" and "no 2xx" in found["disabled"]["reason"]
        kinds = wait_for(
            lambda: (
                (k := [t for t, _ in _operational(receiver, "/ops", flaky["id"])])[-1:]
                == ["webhook_endpoint.disabled"]
                and k
            ),
            what="webhook_endpoint.disabled",
        )
        # Each transition told once; the endpoint about itself, and "every event type", never told.
        assert kinds == [
            "webhook_endpoint.failing",
            "webhook_endpoint.recovered",
            "webhook_endpoint.failing",
            "webhook_endpoint.disabled",
        ]
        # It tells of the endpoint as the rule left it: disabled, by the rule, and why.
        told_disabled = _operational(receiver, "/ops", flaky["id"])[-1][1]
        assert told_disabled["enabled"] is False and told_disabled["transition"] == "disabled"
        assert told_disabled["disabled"]["by"] == "rule" and "no 2xx" in told_disabled["disabled"]["reason"]
        assert "url" not in told_disabled  # a URL may hold a token: not sent to the tenant's other receivers
        assert _operational(receiver, "/everything", flaky["id"]) == []
        assert all("webhook_endpoint" not in r.body.decode() for r in receiver.requests("/flaky"))
        del everything

        # Disabled by hand: told too, by "api".
        receiver.script("/flaky", [Answer(200)])
        api.patch(f"/v1/webhooks/endpoints/{flaky['id']}", json={"enabled": True})
        assert _endpoint(api, flaky["id"])["health"]["state"] == "healthy"  # a fresh start
        api.patch(f"/v1/webhooks/endpoints/{flaky['id']}", json={"enabled": False})
        by_hand = wait_for(
            lambda: [
                o
                for t, o in _operational(receiver, "/ops", flaky["id"])
                if o["disabled"] and o["disabled"]["by"] == "api"
            ],
            what="the hand-disabled webhook",
        )
        assert by_hand[0]["disabled"]["reason"] == "disabled by hand"


def test_a_rotated_secret_signs_beside_the_old_one_for_the_grace_period(
    api: httpx.Client, receiver: Receiver
) -> None:
    endpoint = create_endpoint(api, receiver.script("/rotate", []))
    old = endpoint["secret"]
    rotated = api.post(f"/v1/webhooks/endpoints/{endpoint['id']}/secret/rotate", json={"grace_seconds": 3600})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and rotated.json()["previous_secret_expires_at"]
    assert api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/secret").json()["secret"] == new
    event_id = emit(api, "wallet.created")["id"]
    [request] = wait_for(lambda: receiver.requests("/rotate"), what="the delivery")
    # Two signatures: a receiver with either secret accepts the delivery.
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(request.body, request.headers)

    # No grace: the old secret stops at once. A custom secret (a migration) is taken as it is.
    custom = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="  # 26 bytes
    again = api.post(
        f"/v1/webhooks/endpoints/{endpoint['id']}/secret/rotate", json={"grace_seconds": 0, "secret": custom}
    )
    assert again.status_code == 200 and again.json() == {"secret": custom, "previous_secret_expires_at": None}
    emit(api, "wallet.updated")
    [_, later] = wait_for(lambda: receiver.requests("/rotate")[1:] and receiver.requests("/rotate"))
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    Webhook(custom).verify(later.body, later.headers)
    bad = api.post(f"/v1/webhooks/endpoints/{endpoint['id']}/secret/rotate", json={"secret": "not-a-secret"})
    assert bad.status_code == 422 and "whsec_" in bad.text
    zeros = "whsec_" + base64.b64encode(bytes(32)).decode()  # well-formed, and anyone could guess it
    guessable = api.post(f"/v1/webhooks/endpoints/{endpoint['id']}/secret/rotate", json={"secret": zeros})
    assert guessable.status_code == 422 and "secret is not random" in guessable.text
    assert event_id


def test_custom_headers_are_sent_masked_in_the_api_and_cannot_replace_ours(
    api: httpx.Client, receiver: Receiver
) -> None:
    headers = {"Authorization": "Bearer gateway-token-1234", "X-Team": "billing"}
    endpoint = create_endpoint(api, receiver.script("/headers", [Answer(500), Answer(200)]), headers=headers)
    # Authorization is named like a credential: masked; X-Team is not, nor marked secret: shown.
    assert endpoint["headers"] == {"Authorization": "••••1234", "X-Team": "billing"}
    event_id = emit(api, "customer.created")["id"]
    wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
    for request in receiver.requests("/headers"):  # on every attempt
        assert request.headers["authorization"] == "Bearer gateway-token-1234"
        assert request.headers["x-team"] == "billing"
        Webhook(endpoint["secret"]).verify(request.body, request.headers)
    for reserved in ("webhook-signature", "Content-Type", "User-Agent", "webhook-id", "Host"):
        response = api.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"headers": {reserved: "x"}})
        assert response.status_code == 422, reserved
        assert "set by the service itself" in response.text
    for not_ours in ("Cookie", "X-Forwarded-For", "Via", "Expect"):
        response = api.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"headers": {not_ours: "x"}})
        assert response.status_code == 422, not_ours
        assert "speaks for proxies, clients or HTTP itself" in response.text
    assert (
        api.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"headers": {"Bad Name": "x"}}).status_code
        == 422
    )
    assert (
        api.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"headers": {"X-A": "a\r\nb"}}).status_code
        == 422
    )
    cleared = api.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"headers": None})
    assert cleared.status_code == 200 and cleared.json()["headers"] == {}


def test_an_endpoint_s_own_retry_schedule(api: httpx.Client, receiver: Receiver) -> None:
    short = create_endpoint(api, receiver.script("/short", [Answer(500)]), retry_schedule=[1])
    usual = create_endpoint(api, receiver.script("/usual", [Answer(500)]))
    assert short["retry_schedule"] == [1] and usual["retry_schedule"] is None
    event_id = emit(api, "fee.created")["id"]
    assert len(wait_delivery(api, f"{event_id}:{short['id']}", settled)["attempts"]) == 2
    assert len(wait_delivery(api, f"{event_id}:{usual['id']}", settled)["attempts"]) == 4  # the stack's
    for schedule in ([], [0], [-1], [1] * 21):
        response = api.patch(f"/v1/webhooks/endpoints/{short['id']}", json={"retry_schedule": schedule})
        assert response.status_code == 422, schedule


def _max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + 1) for start in times)


def test_a_rate_limit_holds_across_two_workers_and_leaves_other_endpoints_alone(
    stack: Stack, api: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    limited = create_endpoint(api, receiver.script("/limited", []), rate_limit_per_second=2)
    free = create_endpoint(api, receiver.script("/free", []))
    # A second worker beside the stack's: a limiter per process would let through twice the limit.
    second_log = tmp_path / "worker2.log"
    with second_worker(stack, second_log):
        # At once, so that the limited endpoint's backlog forms however slowly each emission is answered.
        with ThreadPoolExecutor(12) as pool:
            events = [e["id"] for e in pool.map(lambda _: emit_accepted(api, "invoice.generated"), range(12))]
        wait_for(lambda: len(receiver.requests("/free")) == 12, timeout=60, what="the free endpoint's 12")
        free_done = max(r.at for r in receiver.requests("/free"))
        wait_for(lambda: len(receiver.requests("/limited")) == 12, timeout=90, what="the limited 12")
    # Both workers sent some of them (each POST is a line of its worker's log, with its outcome; an attempt
    # held back by the limit is a line without): the limit held across two processes, not inside one.
    posted_by = [
        sum(
            f"endpoint_id={limited['id']} " in line and " outcome=" in line
            for line in path.read_text().splitlines()
        )
        for path in (STACK_LOG, second_log)
    ]
    assert all(posted_by) and sum(posted_by) == 12, posted_by
    # Waiting for the limiter is not an attempt: one attempt each, all delivered.
    times = []
    for event_id in events:
        final = wait_delivery(api, f"{event_id}:{limited['id']}", settled)
        assert final["status"] == "succeeded" and len(final["attempts"]) == 1
        # When it was let through (the attempt starts once admitted): the receiver's arrivals would also
        # count a stall of the receiver's or the worker's process, which bunches them on a loaded machine.
        times.append(datetime.fromisoformat(final["attempts"][0]["started_at"]).timestamp())
    # The bucket lets through at most the limit plus one of burst in any second (3 here), as tokens are
    # taken, and one more for a token taken just before its attempt's clock started. A limiter per worker
    # would let through twice as many (6 in a second, the 12 within 3 s).
    assert _max_in_any_second(times) <= 4, sorted(times)
    assert max(times) - min(times) >= 3.5, sorted(times)  # 11 tokens after the first take 5.5 s at 2/s
    # The other endpoint was not held up: its deliveries were done before the limited ones.
    assert free_done < max(times)
    del free
