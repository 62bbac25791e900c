"""A key rotation done out of order, end to end on a stack of its own: a worker or an API meets data sealed
with a key it lacks, waits for it, and loses nothing (docs/data-protection.md, "Keys").

The documented order gives every process the new key before any seals with it; these tests break it on
purpose, with API replicas and workers of other keyrings. Each such worker seals what it writes with its
own first key, which the stack's processes may lack: so the stack is this module's, not the session's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from temporalio.api.enums.v1 import EventType

from activities.delivery import EndpointNotYetReadable
from core.crypto import new_key_entry
from core.temporal import connect
from domain.ids import delivery_workflow_id
from launcher import Stack
from service.deliveries import NOTES_NOT_READABLE_YET
from tests.conftest import (
    KEYS,
    TEST_ENCRYPTION_KEYS,
    api_replica,
    create_endpoint,
    delivery,
    emit,
    running_stack,
    second_worker,
    settled,
    start_polling_worker,
    wait_delivery,
    wait_for,
)
from tests.receiver import Answer, Receiver
from workflows.delivery import NOTES_UNREADABLE

pytestmark = pytest.mark.stack

# How long the endpoint asks to be left alone (Retry-After): long enough for a worker with another key to
# be started and try the held delivery before the wait ends (a try after it would deliver), on a loaded
# machine too: the stack's worker stopped, the other one started, its next try's doubled delay.
PAUSE_SECONDS = 90
# What a delivery's log says of tries that could not read their endpoint.
ENDPOINT_NOT_READABLE = str(EndpointNotYetReadable())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("key-rotation")) as stack:
        yield stack


def test_an_endpoint_sealed_with_a_key_the_worker_lacks_waits_for_a_worker_that_has_it(
    stack: Stack, api: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    """Mid-rotation, an API process with the new key saves an endpoint (its secret sealed with that key)
    before the worker has the key: each try says so in the log, as a fault of ours that moves no attempt
    of the schedule, never a failed attempt or "an internal error"; the worker restarted with the key
    delivers it as attempt 1, signed with the endpoint's secret."""
    rotated = f"{new_key_entry('rotated')},{TEST_ENCRYPTION_KEYS}"
    with api_replica(stack, WEBHOOKS_ENCRYPTION_KEYS=rotated) as base_url:
        with httpx.Client(base_url=base_url, headers={"x-api-key": KEYS["tenant_a"]}, timeout=30) as new:
            # One type only: the other tests' events do not wait on an endpoint their worker cannot read.
            endpoint = create_endpoint(
                new, receiver.script("/rotated", []), event_types=["wallet.terminated"]
            )
            try:
                # Emitted through the API of before: the worker reads the event; only the endpoint is new.
                event_id = emit(api, "wallet.terminated")["id"]
                delivery_id = f"{event_id}:{endpoint['id']}"

                def waiting_for_the_key() -> dict[str, Any] | None:
                    log = api.get(f"/v1/webhooks/deliveries/{delivery_id}").json()
                    trying = log.get("attempt_in_progress") or {}
                    return log if trying.get("infra_failures", 0) >= 2 else None

                log = wait_for(waiting_for_the_key, timeout=60, what="tries that cannot read the endpoint")
                assert log["status"] == "pending" and log["attempts"] == [], log
                assert log["attempt_in_progress"]["attempt"] == 1, log
                assert log["attempt_in_progress"]["infra_error"] == ENDPOINT_NOT_READABLE, log
                assert receiver.requests("/rotated") == []

                stack.stop_worker()
                with second_worker(stack, tmp_path / "rotated-worker.log", WEBHOOKS_ENCRYPTION_KEYS=rotated):
                    # Read through the API with the key: the new worker seals its attempt's record with it.
                    # Within the next fault's delay, which doubles with each try (1, 2, 4 … s).
                    delivered = wait_delivery(new, delivery_id, settled, timeout=90)
            finally:
                # Gone before the worker of before starts again: it refuses a store that holds secrets
                # sealed with a key it lacks (store/database.py, `require_keys`).
                deleted = new.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")
                if stack.worker is None:
                    start_polling_worker(stack)
    assert deleted.status_code == 204, deleted.text
    assert delivered["status"] == "succeeded", delivered
    [attempt] = delivered["attempts"]
    assert attempt["attempt"] == 1 and attempt["status_code"] == 200, attempt
    [received] = receiver.requests("/rotated")
    Webhook(endpoint["secret"]).verify(received.body, received.headers)


def test_tries_whose_notes_no_process_can_read_yet_are_waited_out_then_delivered(
    stack: Stack, api: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    """A delivery held back by its endpoint's Retry-After, tried by a worker with a key (`other`) that
    neither the API nor the worker after it has: its notes (why each try ended) are sealed with that key.
    The API reads the delivery, not the notes: its log says the tries ended and that it cannot read why
    yet, not that a try did not finish. The worker after it cannot open them either (the SDK fails the
    attempt before it runs): the delivery makes the attempt again (workflows/delivery.py,
    `NOTES_UNREADABLE_PATCH`) and delivers it, as attempt 1, once the endpoint's wait is over."""
    url = receiver.script("/notes", [Answer(429, b"", {"Retry-After": str(PAUSE_SECONDS)}), Answer(200)])
    endpoint = create_endpoint(api, url, event_types=["wallet.terminated"])
    try:
        # The first event's 429 pauses the endpoint for every worker; the second's attempt waits it out.
        first = f"{emit(api, 'wallet.terminated')['id']}:{endpoint['id']}"
        wait_delivery(api, first, lambda d: len(d["attempts"]) == 1)
        held = f"{emit(api, 'wallet.terminated')['id']}:{endpoint['id']}"

        def in_progress(delivery_id: str) -> dict[str, Any]:
            return dict(delivery(api, delivery_id)["attempt_in_progress"] or {})

        wait_for(lambda: in_progress(held).get("throttled_by"), what="the second event's attempt held back")
        stack.stop_worker()
        other = f"{new_key_entry('other')},{TEST_ENCRYPTION_KEYS}"
        with second_worker(stack, tmp_path / "other-worker.log", WEBHOOKS_ENCRYPTION_KEYS=other):
            wait_for(
                lambda: in_progress(held).get("infra_error") == NOTES_NOT_READABLE_YET,
                timeout=PAUSE_SECONDS,
                what="tries whose notes only the other key opens",
            )
        log = delivery(api, held)
        assert log["status"] == "pending" and log["attempts"] == [], log
        assert log["attempt_in_progress"]["throttled_by"] is None, log  # the notes say what held it
    finally:
        if stack.worker is None:
            start_polling_worker(stack)
    delivered = wait_delivery(api, held, settled, timeout=PAUSE_SECONDS + 60)
    assert delivered["status"] == "succeeded", delivered
    [attempt] = delivered["attempts"]
    assert attempt["attempt"] == 1 and attempt["status_code"] == 200, attempt
    received = [r for r in receiver.requests("/notes") if r.headers["webhook-id"] == held]
    assert len(received) == 1, received
    Webhook(endpoint["secret"]).verify(received[0].body, received[0].headers)

    async def failures() -> list[str]:
        history = (
            await (await connect(stack.settings))
            .get_workflow_handle(delivery_workflow_id("tenant_a", held))
            .fetch_history()
        )
        return [
            e.activity_task_failed_event_attributes.failure.message
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
        ]

    # The attempt the SDK failed on the notes, made again.
    assert asyncio.run(failures()) == [NOTES_UNREADABLE]
    assert api.delete(f"/v1/webhooks/endpoints/{endpoint['id']}").status_code == 204


def test_a_rotation_in_the_documented_order_changes_nothing_a_client_holds(
    stack: Stack, api: httpx.Client
) -> None:
    """Every API replica given the new key second, then first (docs/data-protection.md, "Keys"): while
    replicas differ, a client meets no difference between them. A portal session or a list cursor made by
    one is taken by the others; `webhooks listen` finds its listening endpoint, with its secret, rather
    than make one more for each key; and an API key's emission bucket is one, not one per first key."""
    rotated = new_key_entry("rotated")
    limits = {"WEBHOOKS_EMIT_BURST": "2", "WEBHOOKS_EMIT_RATE": "0.001"}
    with (
        api_replica(stack, WEBHOOKS_ENCRYPTION_KEYS=f"{TEST_ENCRYPTION_KEYS},{rotated}", **limits) as second,
        api_replica(stack, WEBHOOKS_ENCRYPTION_KEYS=f"{rotated},{TEST_ENCRYPTION_KEYS}", **limits) as first,
    ):
        # Replicas that run at the same time in the documented order: before ↔ new key second ↔ first.
        replicas = {"before": stack.api_url, "new key second": second, "new key first": first}
        meet = [("before", "new key second"), ("new key second", "new key first")]
        pairs = [*meet, *((b, a) for a, b in meet)]
        clients = {
            name: httpx.Client(base_url=url, headers={"x-api-key": KEYS["tenant_a"]}, timeout=30)
            for name, url in replicas.items()
        }
        listening: set[str] = set()
        try:
            for maker, reader in pairs:
                opened = clients[maker].post("/v1/portal/sessions", json={})
                assert opened.status_code == 201, opened.text
                bearer = {"authorization": f"Bearer {opened.json()['token']}"}
                with httpx.Client(base_url=replicas[reader], headers=bearer, timeout=30) as browser:
                    seen = browser.get("/v1/webhooks/endpoints")
                assert seen.status_code == 200, f"made by {maker}, read by {reader}: {seen.text}"

            for _ in range(2):
                emit(api, "customer.updated")
            page = wait_for(
                lambda: (p := api.get("/v1/events", params={"limit": 1}).json()).get("next_cursor") and p,
                what="a second page of events",
            )
            for maker, reader in pairs:
                made = clients[maker].get("/v1/events", params={"limit": 1})
                cursor = made.json()["next_cursor"]
                assert cursor, (page, made.json())
                followed = clients[reader].get("/v1/events", params={"limit": 1, "cursor": cursor})
                assert followed.status_code == 200, f"made by {maker}, read by {reader}: {followed.text}"

            for name in ("before", "new key second", "new key first", "before"):
                session = clients[name].post(
                    "/v1/webhooks/listen", json={"event_types": ["customer.updated"]}
                )
                assert session.status_code == 201, f"{name}: {session.text}"
                listening.add(session.json()["endpoint_id"])
            assert len(listening) == 1, f"one listening endpoint per key: {listening}"

            # One bucket of 2 for the key: spent on two replicas, the third emission is refused.
            answers = [
                clients[name].post(
                    "/v1/events", json={"webhook_type": "customer.updated", "data": {"object": {"id": name}}}
                )
                for name in ("new key second", "new key first", "new key second")
            ]
            assert [a.status_code for a in answers] == [202, 202, 429], [a.text for a in answers]
        finally:
            # Sealed with the new key, which the stack's processes lack and would refuse at their next start.
            for endpoint_id in listening:
                deleted = clients["new key first"].delete(f"/v1/webhooks/endpoints/{endpoint_id}")
                assert deleted.status_code == 204, deleted.text
            for client in clients.values():
                client.close()


def test_a_retired_key_ends_the_sessions_and_cursors_made_with_it_at_once(
    stack: Stack, api: httpx.Client
) -> None:
    """After a leak, the old key kept to decrypt what it sealed but retired
    (WEBHOOKS_ENCRYPTION_KEYS_RETIRED): what anyone holding it could sign, a portal session or a cursor,
    is refused by a replica that retired it, and what that replica makes holds there."""
    keys = f"{new_key_entry('rotated')},{TEST_ENCRYPTION_KEYS}"
    old_id = TEST_ENCRYPTION_KEYS.split(":")[0]
    with api_replica(stack, WEBHOOKS_ENCRYPTION_KEYS=keys, WEBHOOKS_ENCRYPTION_KEYS_RETIRED=old_id) as url:
        with httpx.Client(base_url=url, headers={"x-api-key": KEYS["tenant_a"]}, timeout=30) as retiring:
            for maker, answer in ((api, 401), (retiring, 200)):
                opened = maker.post("/v1/portal/sessions", json={})
                assert opened.status_code == 201, opened.text
                bearer = {"authorization": f"Bearer {opened.json()['token']}"}
                with httpx.Client(base_url=url, headers=bearer, timeout=30) as browser:
                    seen = browser.get("/v1/webhooks/endpoints")
                assert seen.status_code == answer, seen.text
            for _ in range(2):
                emit(api, "customer.updated")
            cursor = wait_for(
                lambda: api.get("/v1/events", params={"limit": 1}).json().get("next_cursor"),
                what="a second page of events",
            )
            followed = retiring.get("/v1/events", params={"limit": 1, "cursor": cursor})
            assert followed.status_code == 422, followed.text
            # Its data it still reads: the events the stack sealed with the retired key.
            assert retiring.get("/v1/events", params={"limit": 1}).status_code == 200
