"""Emitting events through the real API: 202, idempotency, validation, reading an event back."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import create_endpoint, emit, wait_for
from tests.receiver import Receiver


def test_emit_returns_202_with_the_event(api: httpx.Client) -> None:
    accepted = emit(api, "customer.created")
    assert accepted["id"].startswith("evt_")
    assert accepted["webhook_type"] == "customer.created"
    assert accepted["object_type"] == "customer"
    assert accepted["created_at"]


def test_same_id_twice_is_one_event(api: httpx.Client, receiver: Receiver) -> None:
    url = receiver.script("/dedupe", [])
    endpoint_id = create_endpoint(api, url)["id"]
    first = emit(api, "invoice.voided", id="inv-42-voided")
    second = emit(api, "invoice.voided", id="inv-42-voided")
    assert first == second
    assert first["id"] == "inv-42-voided"
    wait_for(lambda: receiver.requests("/dedupe"), what="the delivery")
    # Emitted again once the first is delivered and its workflow closed: still one event.
    third = emit(api, "invoice.voided", id="inv-42-voided")
    assert third == first
    event = api.get("/v1/events/inv-42-voided").json()
    assert [d["endpoint_id"] for d in event["deliveries"]] == [endpoint_id]
    assert len(receiver.requests("/dedupe")) == 1


def test_get_event_shows_payload_and_each_delivery(api: httpx.Client, receiver: Receiver) -> None:
    ok = create_endpoint(api, receiver.script("/ev-ok", []))["id"]
    failing = create_endpoint(api, receiver.script("/ev-fail", [_answer(500)]))["id"]
    event_id = emit(api, "wallet.updated", data={"object": {"id": "w_1", "balance": "10.00"}})["id"]

    def settled() -> dict[str, object] | None:
        event = api.get(f"/v1/events/{event_id}").json()
        statuses = {d["endpoint_id"]: d["status"] for d in event["deliveries"]}
        return event if statuses.get(ok) == "succeeded" and statuses.get(failing) == "failed" else None

    event = wait_for(settled, what="both deliveries to settle")
    assert event["payload"] == {
        "webhook_type": "wallet.updated",
        "object_type": "wallet",
        "data": {"object": {"id": "w_1", "balance": "10.00"}},
    }
    by_endpoint = {d["endpoint_id"]: d for d in event["deliveries"]}  # type: ignore[attr-defined]
    assert by_endpoint[failing]["last_status_code"] == 500
    assert by_endpoint[failing]["attempt_count"] == 4
    assert by_endpoint[ok]["id"] == f"{event_id}:{ok}"


def _answer(status: int):  # type: ignore[no-untyped-def]
    from tests.receiver import Answer

    return Answer(status=status)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"webhook_type": "invoice.paid", "data": {"object": {}}}, "unknown webhook_type"),
        ({"webhook_type": "invoice.created"}, "Field required"),
        ({"webhook_type": "invoice.created", "data": {}}, "Field required"),
        ({"webhook_type": "invoice.created", "data": {"object": [1, 2]}}, "valid dictionary"),
        ({"webhook_type": "invoice.created", "data": {"object": "inv_1"}}, "valid dictionary"),
        (
            {"webhook_type": "invoice.created", "object_type": "wallet", "data": {"object": {}}},
            "object_type of invoice.created is 'invoice'",
        ),
        ({"webhook_type": "invoice.created", "data": {"object": {}}, "id": "a b"}, "id must be"),
        ({"webhook_type": "invoice.created", "data": {"object": {}}, "id": "x:y"}, "id must be"),
        # Matched whole: a trailing newline was accepted, then failed every attempt.
        ({"webhook_type": "invoice.created", "data": {"object": {}}, "id": "abc\n"}, "id must be"),
    ],
)
def test_invalid_events_are_422_with_a_message(
    api: httpx.Client, body: dict[str, object], words: str
) -> None:
    response = api.post("/v1/events", json=body)
    assert response.status_code == 422, response.text
    assert any(words in e["msg"] for e in response.json()["detail"]), response.json()


def test_malformed_json_is_422(api: httpx.Client) -> None:
    response = api.post(
        "/v1/events",
        content=b'{"webhook_type": "invoice.created",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"][0]["msg"]


def test_oversized_payload_is_413(api: httpx.Client) -> None:
    big = {"webhook_type": "invoice.created", "data": {"object": {"blob": "x" * 300_000}}}
    response = api.post("/v1/events", json=big)
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_matching_object_type_is_accepted(api: httpx.Client) -> None:
    assert emit(api, "fee.created", object_type="fee")["object_type"] == "fee"


def test_unknown_event_is_404(api: httpx.Client) -> None:
    assert api.get("/v1/events/evt_never").status_code == 404


def test_events_of_one_tenant_never_reach_another(
    api: httpx.Client, api_b: httpx.Client, receiver: Receiver
) -> None:
    a_endpoint = create_endpoint(api, receiver.script("/tenant-a", []))["id"]
    b_endpoint = create_endpoint(api_b, receiver.script("/tenant-b", []))["id"]
    event_id = emit(api, "subscription.started", id="shared-id-1")["id"]
    wait_for(lambda: receiver.requests("/tenant-a"), what="tenant a's delivery")
    # The same event id is free for another tenant and is another event.
    emit(api_b, "subscription.started", id="shared-id-1")
    wait_for(lambda: receiver.requests("/tenant-b"), what="tenant b's delivery")
    assert len(receiver.requests("/tenant-a")) == 1
    assert len(receiver.requests("/tenant-b")) == 1
    delivery_id = f"{event_id}:{a_endpoint}"
    assert api_b.get(f"/v1/webhooks/deliveries/{delivery_id}").status_code == 404
    assert api_b.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").status_code == 404
    b_event = api_b.get("/v1/events/shared-id-1").json()
    assert [d["endpoint_id"] for d in b_event["deliveries"]] == [b_endpoint]
    listed = api_b.get("/v1/webhooks/deliveries").json()["items"]
    assert a_endpoint not in {d["endpoint_id"] for d in listed}


def test_nan_and_infinity_are_422_not_invalid_json(api: httpx.Client) -> None:
    for number in (b"NaN", b"Infinity", b"1e999"):
        body = b'{"webhook_type": "invoice.created", "data": {"object": {"amount": ' + number + b"}}}"
        response = api.post("/v1/events", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (number, response.text)
        assert "finite" in response.json()["detail"][0]["msg"]
    # Where no field takes a number, nor a credential is asked: was a 500 (the 422 echoed the NaN).
    refused = httpx.post(
        str(api.base_url).rstrip("/") + "/codec/decode",
        content=b'{"payloads": NaN}',
        headers={"content-type": "application/json"},
    )
    assert refused.status_code == 422 and "finite" in refused.json()["detail"][0]["msg"], refused.text


def test_an_event_nested_deeper_than_its_log_can_show_is_422(api: httpx.Client) -> None:
    """Nested 300 deep, an event was accepted and delivered, then its log was a 500 for good."""
    deep = b"[" * 300 + b"]" * 300
    body = b'{"webhook_type": "invoice.created", "data": {"object": {"x": ' + deep + b"}}}"
    response = api.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "deeper than 64 levels" in response.json()["detail"][0]["msg"]


def test_same_id_with_another_payload_is_409(api: httpx.Client) -> None:
    first = emit(api, "wallet.created", id="wallet-1-created", data={"object": {"id": "w_1"}})
    again = api.post(
        "/v1/events",
        json={"id": "wallet-1-created", "webhook_type": "wallet.created", "data": {"object": {"id": "w_2"}}},
    )
    assert again.status_code == 409
    assert "different payload" in again.json()["detail"]
    assert emit(api, "wallet.created", id="wallet-1-created", data={"object": {"id": "w_1"}}) == first
