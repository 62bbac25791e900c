"""Bounds at the door (service/limits.py), through real API processes sharing one store and Temporal.

Each bound is set low on API replicas of the session's stack (`api_replica`): two replicas share one
emission bucket, and each refusal is a 4xx that names the bound and says how to go on.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx

from launcher import Stack
from tests.conftest import KEYS, api_replica, create_endpoint, emit, wait_for
from tests.receiver import Answer, Receiver

_POLICY = re.compile(r'"emit";q=3;w=\d+')
_REMAINING = re.compile(r'"emit";r=(\d+);t=(\d+)')


def _client(base_url: str, tenant: str = "tenant_a") -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"x-api-key": KEYS[tenant]}, timeout=30)


def _event() -> dict[str, object]:
    return {"webhook_type": "invoice.created", "data": {"object": {"id": "inv_1"}}}


def test_an_api_key_s_emission_rate_is_shared_by_every_api_process(stack: Stack, api: httpx.Client) -> None:
    # Three at once, and next to nothing a second after: one bucket, whichever process answers.
    bounds = {"WEBHOOKS_EMIT_BURST": "3", "WEBHOOKS_EMIT_RATE": "0.001"}
    with api_replica(stack, **bounds) as one, api_replica(stack, **bounds) as two:
        with _client(one) as first, _client(two) as second, _client(one, "tenant_b") as other:
            answers = [first.post("/v1/events", json=_event()) for _ in range(2)]
            answers += [second.post("/v1/events", json=_event()) for _ in range(2)]
            other_key = other.post("/v1/events", json=_event())
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    for answer in answers:  # every answer says the quota and what is left of it
        assert _POLICY.fullmatch(answer.headers["ratelimit-policy"]), answer.headers
        assert _REMAINING.fullmatch(answer.headers["ratelimit"]), answer.headers
    remaining = [int(_REMAINING.fullmatch(a.headers["ratelimit"])[1]) for a in answers]  # type: ignore[index]
    assert remaining == [2, 1, 0, 0]
    refused = answers[-1]
    assert int(refused.headers["retry-after"]) > 0
    detail = refused.json()["detail"]
    assert "WEBHOOKS_EMIT_BURST" in detail and "nothing was accepted" in detail and "Retry-After" in detail
    assert other_key.status_code == 202  # another key has a bucket of its own


def test_test_events_are_bounded_per_minute(stack: Stack, api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/tests", []))
    with api_replica(stack, WEBHOOKS_TEST_EVENTS_PER_MINUTE="2") as base_url, _client(base_url) as client:
        path = f"/v1/webhooks/endpoints/{endpoint['id']}/test"
        answers = [client.post(path, json={}) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert "WEBHOOKS_TEST_EVENTS_PER_MINUTE" in answers[-1].json()["detail"]
    assert 0 < int(answers[-1].headers["retry-after"]) <= 30  # one of two a minute comes back within 30 s


def test_a_tenant_s_endpoints_are_bounded(stack: Stack, api: httpx.Client, receiver: Receiver) -> None:
    url = receiver.script("/many", [])
    with api_replica(stack, WEBHOOKS_MAX_ENDPOINTS_PER_TENANT="2") as base_url, _client(base_url) as client:
        answers = [client.post("/v1/webhooks/endpoints", json={"url": url}) for _ in range(3)]
        assert [a.status_code for a in answers] == [201, 201, 409]
        assert "WEBHOOKS_MAX_ENDPOINTS_PER_TENANT" in answers[-1].json()["detail"]
        # Room again once one is deleted.
        client.delete(f"/v1/webhooks/endpoints/{answers[0].json()['id']}")
        assert client.post("/v1/webhooks/endpoints", json={"url": url}).status_code == 201


def test_an_endpoint_s_rate_limit_is_bounded_by_the_server_s_maximum(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    url = receiver.script("/rated", [])
    with api_replica(stack, WEBHOOKS_ENDPOINT_MAX_RATE="5") as base_url, _client(base_url) as client:
        too_fast = client.post("/v1/webhooks/endpoints", json={"url": url, "rate_limit_per_second": 10})
        assert too_fast.status_code == 422
        assert "WEBHOOKS_ENDPOINT_MAX_RATE" in too_fast.text
        endpoint = client.post("/v1/webhooks/endpoints", json={"url": url, "rate_limit_per_second": 2}).json()
        assert endpoint["flow"]["rate_limit_per_second"] == 2
        # null is no longer "no limit": it is the server's maximum.
        unset = client.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"rate_limit_per_second": None})
        assert unset.status_code == 200, unset.text
        assert (unset.json()["rate_limit_per_second"], unset.json()["flow"]["rate_limit_per_second"]) == (
            None,
            5,
        )
        patched = client.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"rate_limit_per_second": 6})
        assert patched.status_code == 422


# A tenant of this test's own: recoveries other tests leave running on the session's stack count for theirs.
BOUNDED = "tenant_bounded"
BOUNDED_KEY = "key_bounded_" + "b" * 20


def test_recoveries_running_at_once_and_the_deliveries_of_one_are_bounded(
    stack: Stack, receiver: Receiver
) -> None:
    keys = {"WEBHOOKS_API_KEYS": f"{BOUNDED}:{BOUNDED_KEY}"}
    bounds = {**keys, "WEBHOOKS_RECOVERIES_PER_TENANT": "2", "WEBHOOKS_RECOVERY_RATE": "0.2"}
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    with (
        api_replica(stack, **bounds) as one,
        api_replica(stack, **bounds) as two,
        httpx.Client(base_url=one, headers={"x-api-key": BOUNDED_KEY}, timeout=30) as via_one,
        httpx.Client(base_url=two, headers={"x-api-key": BOUNDED_KEY}, timeout=30) as via_two,
    ):
        for _ in range(3):
            emit(via_one, "invoice.created")
        time.sleep(1.5)  # visibility lists the events
        endpoints = [
            create_endpoint(via_one, receiver.script(f"/bounded{n}", [Answer(200)]))["id"] for n in range(6)
        ]
        # Six replays asked at the same moment, of six endpoints, through two API processes: visibility,
        # which lags, would let several more than two through. Two run (three events at one every five
        # seconds each).
        start = threading.Barrier(len(endpoints))

        def replay(n: int) -> httpx.Response:
            client = (via_one, via_two)[n % 2]
            start.wait()
            return client.post(f"/v1/webhooks/endpoints/{endpoints[n]}/replay", json={"since": since})

        with ThreadPoolExecutor(len(endpoints)) as pool:
            answers = list(pool.map(replay, range(len(endpoints))))
        assert sorted(a.status_code for a in answers) == [202] * 2 + [409] * 4, [a.text for a in answers]
        for answer, endpoint_id in zip(answers, endpoints, strict=True):
            if answer.is_success:
                via_one.delete(f"/v1/webhooks/endpoints/{endpoint_id}/recoveries/{answer.json()['id']}")
            else:
                assert "WEBHOOKS_RECOVERIES_PER_TENANT" in answer.json()["detail"]
        # Canceled, the two give their slots back at the next start (Temporal says they no longer run),
        # well before a slot never started would be given up (a minute).
        waiting = next(e for a, e in zip(answers, endpoints, strict=True) if not a.is_success)

        def replayed() -> httpx.Response | None:
            answer = via_two.post(f"/v1/webhooks/endpoints/{waiting}/replay", json={"since": since})
            return answer if answer.is_success else None

        later = wait_for(replayed, timeout=45, what="a replay once the others were canceled")
        via_two.delete(f"/v1/webhooks/endpoints/{waiting}/recoveries/{later.json()['id']}")
    with (
        api_replica(stack, **keys, WEBHOOKS_RECOVERY_MAX_DELIVERIES="2") as base_url,
        httpx.Client(base_url=base_url, headers={"x-api-key": BOUNDED_KEY}, timeout=30) as client,
    ):
        too_many = client.post(f"/v1/webhooks/endpoints/{endpoints[1]}/replay", json={"since": since})
    assert too_many.status_code == 422
    assert "WEBHOOKS_RECOVERY_MAX_DELIVERIES" in too_many.text and "narrow it" in too_many.text


def test_an_emission_refused_after_it_was_counted_says_what_is_left_of_the_rate(api: httpx.Client) -> None:
    """The key's token is taken before the event is checked and started: the 409 of an event id used for
    another payload says the quota and what is left of it, as the 202 before it did."""
    first = api.post("/v1/events", json={**_event(), "id": "evt_limits_reused"})
    reused = api.post(
        "/v1/events",
        json={**_event(), "id": "evt_limits_reused", "data": {"object": {"id": "inv_other"}}},
    )
    assert (first.status_code, reused.status_code) == (202, 409), reused.text
    for answer in (first, reused):
        assert re.fullmatch(r'"emit";q=\d+;w=\d+', answer.headers["ratelimit-policy"]), answer.headers
        assert _REMAINING.fullmatch(answer.headers["ratelimit"]), answer.headers
