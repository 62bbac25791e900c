"""Deliveries end to end: real API, worker and Temporal dev server, real receivers, third-party verifiers."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime

import httpx
import jwt
from standardwebhooks import Webhook

from domain.catalog import EVENT_TYPES
from tests.conftest import create_endpoint, emit, settled, wait_delivery, wait_for
from tests.local_http import RECEIVER_KEEP_ALIVE, idle_closing_receiver
from tests.receiver import Answer, Receiver


def test_each_of_the_31_events_is_delivered_and_verifies(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/all", []))
    secret = endpoint["secret"]
    sent = {}
    for index, event_type in enumerate(EVENT_TYPES):
        obj = {"id": f"obj_{index}", "note": "caf\u00e9 \u2713", "amount": index * 1.5, "tags": ["a"]}
        sent[emit(api, event_type.name, data={"object": obj})["id"]] = (event_type, obj)
    wait_for(lambda: len(receiver.requests("/all")) >= 31, what="31 POSTs")
    requests = receiver.requests("/all")
    assert len(requests) == 31
    for request in requests:
        payload = Webhook(secret).verify(request.body, request.headers)
        event_id, _, endpoint_id = request.headers["webhook-id"].rpartition(":")
        assert endpoint_id == endpoint["id"]
        event_type, obj = sent[event_id]
        assert payload == {
            "webhook_type": event_type.name,
            "object_type": event_type.object_type,
            "data": {"object": obj},
        }
        assert list(payload) == ["webhook_type", "object_type", "data"]
        assert request.headers["content-type"] == "application/json"


def test_jwt_method_verifies_with_pyjwt_and_the_published_jwks(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/jwt", []), signature_method="jwt")
    event_id = emit(api, "invoice.generated")["id"]
    [request] = wait_for(lambda: receiver.requests("/jwt"), what="the jwt delivery")
    assert "webhook-signature" not in request.headers
    assert request.headers["x-webhook-signature-algorithm"] == "jwt"
    jwks_path = api.get("/v1/me").json()["jwks_path"]
    assert jwks_path == "/v1/webhooks/jwks/tenant_a.json"
    jwks = httpx.get(f"{api.base_url}{jwks_path}").json()  # public: receivers have no key
    token = request.headers["x-webhook-signature"]
    kid = jwt.get_unverified_header(token)["kid"]
    [jwk] = [k for k in jwks["keys"] if k["kid"] == kid]
    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        issuer="flexprice-webhooks",
        audience=endpoint["id"],
    )
    assert (claims["aud"], claims["sub"]) == (endpoint["id"], "tenant_a")
    assert claims["jti"] == request.headers["webhook-id"]
    assert claims["jti"].startswith(f"{event_id}:")
    assert claims["iat"] == int(request.headers["webhook-timestamp"])
    assert claims["body_sha256"] == hashlib.sha256(request.body).hexdigest()
    assert json.loads(request.body)["webhook_type"] == "invoice.generated"


def test_event_type_filter(api: httpx.Client, receiver: Receiver) -> None:
    only_invoices = create_endpoint(
        api, receiver.script("/filtered", []), event_types=["invoice.created", "invoice.voided"]
    )
    everything = create_endpoint(api, receiver.script("/everything", []))
    customer_event = emit(api, "customer.created")["id"]
    invoice_event = emit(api, "invoice.voided")["id"]
    wait_for(lambda: len(receiver.requests("/everything")) == 2, what="both events at the catch-all")
    [request] = wait_for(lambda: receiver.requests("/filtered"), what="the filtered delivery")
    assert json.loads(request.body)["webhook_type"] == "invoice.voided"
    customer = api.get(f"/v1/events/{customer_event}").json()
    assert [d["endpoint_id"] for d in customer["deliveries"]] == [everything["id"]]
    invoice = api.get(f"/v1/events/{invoice_event}").json()
    assert {d["endpoint_id"] for d in invoice["deliveries"]} == {only_invoices["id"], everything["id"]}


def test_disabled_and_deleted_endpoints_receive_nothing(api: httpx.Client, receiver: Receiver) -> None:
    disabled = create_endpoint(api, receiver.script("/disabled", []), enabled=False)
    deleted = create_endpoint(api, receiver.script("/deleted", []))
    assert api.delete(f"/v1/webhooks/endpoints/{deleted['id']}").status_code == 204
    live = create_endpoint(api, receiver.script("/live", []))
    event_id = emit(api, "credit_note.created")["id"]
    wait_for(lambda: receiver.requests("/live"), what="the live endpoint's delivery")
    assert receiver.requests("/disabled") == []
    assert receiver.requests("/deleted") == []
    event = api.get(f"/v1/events/{event_id}").json()
    assert [d["endpoint_id"] for d in event["deliveries"]] == [live["id"]]
    # Re-enabled, it receives what comes next.
    api.patch(f"/v1/webhooks/endpoints/{disabled['id']}", json={"enabled": True})
    emit(api, "credit_note.generated")
    wait_for(lambda: receiver.requests("/disabled"), what="the re-enabled endpoint's delivery")


def test_endpoint_deleted_mid_schedule_stops_its_delivery(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/doomed", [Answer(status=500)]))
    event_id = emit(api, "wallet.terminated")["id"]
    wait_for(lambda: receiver.requests("/doomed"), what="the first attempt")
    api.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")
    final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
    assert final["status"] == "failed"
    assert final["attempts"][-1]["error"] == "endpoint was deleted"
    assert final["attempts"][-1]["status_code"] is None
    assert len(receiver.requests("/doomed")) < len(final["attempts"])


def test_retries_are_logged_attempt_by_attempt(api: httpx.Client, receiver: Receiver) -> None:
    url = receiver.script(
        "/flaky",
        [Answer(500, b"oops 1"), Answer(500, b"oops 2"), Answer(200, b"thanks")],
    )
    endpoint = create_endpoint(api, url)
    event_id = emit(api, "subscription.trial_ended")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    final = wait_delivery(api, delivery_id, settled)
    assert final["status"] == "succeeded"
    assert [a["status_code"] for a in final["attempts"]] == [500, 500, 200]
    assert [a["response_body"] for a in final["attempts"]] == ["oops 1", "oops 2", "thanks"]
    assert [a["trigger"] for a in final["attempts"]] == ["scheduled"] * 3
    assert [a["attempt"] for a in final["attempts"]] == [1, 2, 3]
    assert all(a["duration_ms"] >= 0 and a["error"] is None for a in final["attempts"])
    assert final["attempt_count"] == 3
    assert final["last_status_code"] == 200
    assert final["next_attempt_at"] is None
    assert final["payload"]["webhook_type"] == "subscription.trial_ended"
    assert final["workflow_url"].endswith(
        "/workflows/" + f"delivery:tenant_a:{delivery_id}".replace(":", "%3A")
    )
    requests = receiver.requests("/flaky")
    # One webhook-id for every attempt, so receivers can dedupe; the body is the one in the log.
    assert {r.headers["webhook-id"] for r in requests} == {delivery_id}
    assert {r.body for r in requests} == {json.dumps(final["payload"], separators=(",", ":")).encode()}
    for request in requests:
        Webhook(endpoint["secret"]).verify(request.body, request.headers)
    # The schedule waits about one second (±20%) between attempts.
    starts = [datetime.fromisoformat(a["started_at"]) for a in final["attempts"]]
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
    assert all(0.8 <= g < 5 for g in gaps), gaps


def test_exhausted_delivery_is_failed_and_retryable_by_hand(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/down", [Answer(503, b"down")]))
    event_id = emit(api, "invoice.payment_failure")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    failed = wait_delivery(api, delivery_id, settled)
    assert failed["status"] == "failed"
    assert [a["status_code"] for a in failed["attempts"]] == [503] * 4  # the test schedule: 1 + 3 retries

    def listed_as_failed() -> bool:
        # The delivery reads its own workflow; the list reads Temporal's visibility, written a moment after.
        listed = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries?status=failed").json()
        return [d["id"] for d in listed["items"]] == [delivery_id]

    wait_for(listed_as_failed, what="the delivery to be listed as failed")

    receiver.script("/down", [Answer(200, b"back")])
    response = api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")
    assert response.status_code == 202
    assert response.json() == {"delivery_id": delivery_id, "attempt": 5}
    final = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    assert [a["trigger"] for a in final["attempts"]] == ["scheduled"] * 4 + ["manual"]
    assert final["attempts"][-1]["status_code"] == 200
    assert final["attempts"][-1]["response_body"] == "back"
    assert len(receiver.requests("/down")) == 5

    def listed_once() -> list[dict[str, object]] | None:
        items = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries").json()["items"]
        return items if items and items[0]["status"] == "succeeded" else None

    # Still one delivery in the log, now succeeded, not the old failed run beside a new one.
    items = wait_for(listed_once, what="the log to show the retried delivery")
    assert [(d["id"], d["attempt_count"]) for d in items] == [(delivery_id, 5)]


def test_succeeded_delivery_can_be_resent(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/resend", []))
    event_id = emit(api, "fee.created")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    assert api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").status_code == 202
    final = wait_delivery(api, delivery_id, lambda d: len(d["attempts"]) == 2 and settled(d))
    assert final["status"] == "succeeded"
    assert [a["trigger"] for a in final["attempts"]] == ["scheduled", "manual"]
    first, second = receiver.requests("/resend")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery_id
    assert first.body == second.body


def test_manual_retry_of_a_scheduled_delivery_goes_now(api: httpx.Client, receiver: Receiver) -> None:
    url = receiver.script("/later", [Answer(429, b"slow down", {"Retry-After": "120"}), Answer(200)])
    endpoint = create_endpoint(api, url)
    event_id = emit(api, "customer.updated")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    waiting = wait_delivery(api, delivery_id, lambda d: d["next_attempt_at"] is not None)
    assert waiting["status"] == "pending"
    next_at = datetime.fromisoformat(waiting["next_attempt_at"])
    first_at = datetime.fromisoformat(waiting["attempts"][0]["started_at"])
    assert (next_at - first_at).total_seconds() >= 120  # Retry-After outranks the one-second schedule
    assert api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").json()["attempt"] == 2
    final = wait_delivery(api, delivery_id, settled, timeout=20)
    assert final["status"] == "succeeded"
    assert [(a["trigger"], a["status_code"]) for a in final["attempts"]] == [
        ("scheduled", 429),
        ("manual", 200),
    ]
    assert final["next_attempt_at"] is None


def test_retry_after_delays_the_next_attempt(api: httpx.Client, receiver: Receiver) -> None:
    url = receiver.script("/busy", [Answer(503, b"busy", {"Retry-After": "3"}), Answer(204, b"")])
    endpoint = create_endpoint(api, url)
    event_id = emit(api, "wallet.created")["id"]
    final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
    assert [a["status_code"] for a in final["attempts"]] == [503, 204]
    first, second = (datetime.fromisoformat(a["started_at"]) for a in final["attempts"])
    assert (second - first).total_seconds() >= 3


def test_any_2xx_acknowledges(api: httpx.Client, receiver: Receiver) -> None:
    for status in (201, 202, 204):
        path = f"/ack-{status}"
        endpoint = create_endpoint(api, receiver.script(path, [Answer(status, b"")]))
        event_id = emit(api, "invoice.drafted")["id"]
        final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
        assert final["status"] == "succeeded", status
        assert [a["status_code"] for a in final["attempts"]] == [status]
        api.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")


def test_redirects_are_not_followed_and_count_as_failures(api: httpx.Client, receiver: Receiver) -> None:
    target = receiver.script("/moved-here", [])
    endpoint = create_endpoint(api, receiver.script("/moved", [Answer(302, b"", {"Location": target})]))
    event_id = emit(api, "invoice.one_off_created")["id"]
    final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
    assert final["status"] == "failed"
    assert {a["status_code"] for a in final["attempts"]} == {302}
    assert "redirects are not followed" in final["attempts"][0]["error"]
    assert receiver.requests("/moved-here") == []


def test_410_gone_stops_the_schedule(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/gone", [Answer(410, b"gone")]))
    event_id = emit(api, "customer.payment_provider_error")["id"]
    final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
    assert final["status"] == "failed"
    assert [a["status_code"] for a in final["attempts"]] == [410]
    assert "410" in final["attempts"][0]["error"]
    assert len(receiver.requests("/gone")) == 1


def test_slow_receiver_times_out_and_is_retried(api: httpx.Client, receiver: Receiver) -> None:
    # The stack's timeout is 5 s; a stall of the worker's loop is not counted in it (activities/stalls.py),
    # so the answer comes long after it, or a loaded machine's pause of 1 s would let it in time.
    url = receiver.script("/slow", [Answer(200, delay=15), Answer(200)])
    endpoint = create_endpoint(api, url)
    event_id = emit(api, "events.errors")["id"]
    final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
    assert final["status"] == "succeeded"
    first, second = final["attempts"]
    assert first["status_code"] is None and first["error"] == "timed out after 5 s"
    assert second["status_code"] == 200


def test_unreachable_receiver_is_a_logged_network_error(api: httpx.Client) -> None:
    endpoint = create_endpoint(api, "http://127.0.0.1:9/nothing-listens")
    event_id = emit(api, "subscription.terminated")["id"]
    final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
    assert final["status"] == "failed"
    assert all(a["status_code"] is None and "ConnectError" in a["error"] for a in final["attempts"])


def test_an_attempt_without_a_status_clears_the_last_status_code(
    api: httpx.Client, receiver: Receiver
) -> None:
    endpoint = create_endpoint(api, receiver.script("/then-nothing", [Answer(500)]))
    event_id = emit(api, "customer.created")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: d["last_status_code"] == 500)
    # From the second attempt on, nothing listens: the last attempt has no status code, and the list,
    # read from the search attributes, must not go on showing the 500.
    api.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"url": "http://127.0.0.1:9/gone"})
    final = wait_delivery(api, delivery_id, settled)
    assert [a["status_code"] for a in final["attempts"]][-1] is None
    assert final["last_status_code"] is None

    def listed() -> dict[str, object] | None:
        items = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries").json()["items"]
        return items[0] if items and items[0]["status"] == "failed" else None

    assert wait_for(listed, what="the list to show the failed delivery")["last_status_code"] is None


def test_retry_of_a_disabled_endpoints_delivery_is_409(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/off", []))
    event_id = emit(api, "wallet.depleted_ongoing_balance")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    wait_delivery(api, delivery_id, settled)
    api.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"enabled": False})
    response = api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")
    assert response.status_code == 409
    assert "enable it" in response.json()["detail"]


def test_unknown_delivery_is_404(api: httpx.Client) -> None:
    for delivery_id in ("evt_nope:ep_nope", "no-colon"):
        assert api.get(f"/v1/webhooks/deliveries/{delivery_id}").status_code == 404
        assert api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").status_code == 404


def test_delivery_lists_filter_and_page(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(
        api,
        receiver.script("/mixed", []),
        event_types=["invoice.created", "invoice.voided", "invoice.payment_overdue"],
    )
    # One after the other, each delivered before the next is emitted: a list is in the order deliveries
    # started, which events accepted moments apart need not follow (docs/api.md, "Order of the history").
    ids: dict[str, str] = {}
    for webhook_type in ("invoice.created", "invoice.voided", "invoice.payment_overdue"):
        ids[webhook_type] = emit(api, webhook_type)["id"]
        wait_delivery(api, f"{ids[webhook_type]}:{endpoint['id']}", lambda d: d["status"] == "succeeded")
    base = f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries"

    def all_succeeded() -> list[dict[str, object]] | None:
        items = api.get(base, params={"status": "succeeded"}).json()["items"]
        return items if len(items) == 3 else None

    items = wait_for(all_succeeded, what="three succeeded deliveries in the log")
    assert {d["event_id"] for d in items} == set(ids.values())
    assert set(items[0]) == {
        "id",
        "event_id",
        "endpoint_id",
        "webhook_type",
        "status",
        "attempt_count",
        "last_status_code",
        "created_at",
        "updated_at",
        "next_attempt_at",
    }
    assert items[0]["next_attempt_at"] is None  # succeeded: no attempt is due
    assert api.get(base, params={"status": "failed"}).json()["items"] == []
    voided = api.get(base, params={"event_type": "invoice.voided"}).json()["items"]
    assert [d["event_id"] for d in voided] == [ids["invoice.voided"]]

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = api.get(base, params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(f"{e}:{endpoint['id']}" for e in ids.values())
    # Newest first.
    assert [d["event_id"] for d in api.get(base).json()["items"]] == list(reversed(ids.values()))

    assert api.get(base, params={"cursor": "garbage!"}).status_code == 422
    assert api.get(base, params={"limit": 0}).status_code == 422
    assert api.get(base, params={"status": "lost"}).status_code == 422
    assert api.get(base, params={"event_type": "invoice.nope"}).status_code == 422
    everywhere = api.get("/v1/webhooks/deliveries", params={"status": "succeeded", "limit": 100}).json()
    assert set(ids.values()) <= {d["event_id"] for d in everywhere["items"]}


def test_a_large_event_reaches_many_endpoints(api: httpx.Client, receiver: Receiver) -> None:
    # 200 KB to 24 endpoints (4.8 MB) is more than one workflow task may carry: children start in batches.
    ids = [create_endpoint(api, receiver.script(f"/big-{i}", []))["id"] for i in range(24)]
    blob = "x" * 200_000
    event_id = emit(api, "invoice.generated", data={"object": {"pdf": blob}})["id"]
    for endpoint_id in ids:
        final = wait_delivery(api, f"{event_id}:{endpoint_id}", settled, timeout=60)
        assert final["status"] == "succeeded"
    assert all(
        json.loads(receiver.requests(f"/big-{i}")[0].body)["data"]["object"]["pdf"] == blob for i in range(8)
    )


def test_a_receiver_that_closes_idle_connections_gets_each_delivery_at_its_first_attempt(
    api: httpx.Client,
) -> None:
    # The worker keeps a connection idle for less than a receiver's keep-alive (gunicorn's 2 s): the
    # second delivery goes out on a new one, not on the one the receiver is closing as it arrives.
    with idle_closing_receiver() as receiver:
        endpoint_id = create_endpoint(api, receiver.url("/idle-closing"))["id"]
        delivered = []
        for n in range(2):
            if n:
                time.sleep(RECEIVER_KEEP_ALIVE)  # the connection idle as long as the receiver keeps one
            event_id = emit(api, "invoice.created", data={"object": {"id": f"inv_idle_{n}"}})["id"]
            delivered.append(wait_delivery(api, f"{event_id}:{endpoint_id}", settled))
    for delivery in delivered:
        assert delivery["status"] == "succeeded"
        assert [a["status_code"] for a in delivery["attempts"]] == [200], delivery["attempts"]
    assert receiver.dropped == [] and len(receiver.answered) == 2
