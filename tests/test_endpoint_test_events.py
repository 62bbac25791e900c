"""Test events on the real stack: `POST /v1/webhooks/endpoints/{id}/test` reaches that endpoint alone, signed
and logged like any delivery and marked test, and never crosses tenants."""

from __future__ import annotations

import hashlib
import json

import httpx
import jwt
from standardwebhooks import Webhook

from domain.catalog import SUBSCRIBABLE_BY_NAME
from tests.conftest import create_endpoint, delivery, emit, wait_delivery, wait_for
from tests.receiver import Answer, Receiver


def send_test(api: httpx.Client, endpoint_id: str, webhook_type: str | None = None) -> dict[str, object]:
    body = {"webhook_type": webhook_type} if webhook_type else None
    response = api.post(f"/v1/webhooks/endpoints/{endpoint_id}/test", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_a_test_event_reaches_its_endpoint_alone_signed_and_logged_as_test(
    api: httpx.Client, api_b: httpx.Client, receiver: Receiver
) -> None:
    # It subscribes to invoice.created only: a test of another type still goes (it is a test).
    tested = create_endpoint(
        api, receiver.script("/tested", [Answer(500), Answer(200)]), event_types=["invoice.created"]
    )
    sibling = create_endpoint(api, receiver.script("/sibling", []))  # every type, same tenant
    other_tenant = create_endpoint(api_b, receiver.script("/other-tenant", []))

    sent = send_test(api, tested["id"], "invoice.voided")
    event_id = str(sent["event_id"])
    assert event_id.startswith("test_")
    assert sent["delivery_id"] == f"{event_id}:{tested['id']}"
    assert (sent["endpoint_id"], sent["webhook_type"]) == (tested["id"], "invoice.voided")

    # Retried like any other delivery: the 500 first, then the 200.
    log = wait_delivery(api, f"{event_id}:{tested['id']}", lambda d: d["status"] == "succeeded")
    assert log["origin"] == "test"
    assert [a["status_code"] for a in log["attempts"]] == [500, 200]
    expected = {
        "webhook_type": "invoice.voided",
        "object_type": "invoice",
        "data": {"object": SUBSCRIBABLE_BY_NAME["invoice.voided"].example},
    }
    assert log["payload"] == expected
    first, second = receiver.requests("/tested")
    for request in (first, second):
        # The same headers and signature as any delivery, and the id that says "test".
        assert Webhook(tested["secret"]).verify(request.body, request.headers) == expected
        assert request.headers["webhook-id"] == sent["delivery_id"]
        assert request.headers["content-type"] == "application/json"

    # In the endpoint's history like any delivery; the event went to this endpoint and no other.
    history = wait_for(  # from Temporal's visibility, a moment behind the delivery's own state
        lambda: api.get(f"/v1/webhooks/endpoints/{tested['id']}/deliveries").json()["items"],
        what="the test delivery listed",
    )
    assert [d["id"] for d in history] == [sent["delivery_id"]]
    event = api.get(f"/v1/events/{event_id}").json()
    assert [d["endpoint_id"] for d in event["deliveries"]] == [tested["id"]]
    assert receiver.requests("/sibling") == [] and receiver.requests("/other-tenant") == []
    assert api.get(f"/v1/webhooks/endpoints/{sibling['id']}/deliveries").json()["items"] == []
    # The other tenant sees nothing of it.
    assert api_b.get(f"/v1/events/{event_id}").status_code == 404
    assert api_b.get(f"/v1/webhooks/deliveries/{sent['delivery_id']}").status_code == 404
    assert api_b.get(f"/v1/webhooks/endpoints/{other_tenant['id']}/deliveries").json()["items"] == []


def test_another_tenants_endpoint_cannot_be_tested(
    api: httpx.Client, api_b: httpx.Client, receiver: Receiver
) -> None:
    endpoint = create_endpoint(api, receiver.script("/mine", []))
    response = api_b.post(f"/v1/webhooks/endpoints/{endpoint['id']}/test", json={})
    assert (response.status_code, response.json()) == (
        404,
        {"detail": f"endpoint {endpoint['id']} not found"},
    )
    # A barrier: a test event of the owner, sent after, arrives, and is the only request there.
    sent = send_test(api, endpoint["id"])
    wait_delivery(api, str(sent["delivery_id"]), lambda d: d["status"] == "succeeded")
    assert [r.headers["webhook-id"] for r in receiver.requests("/mine")] == [sent["delivery_id"]]


def test_the_type_defaults_to_the_first_subscribed_else_invoice_created(
    api: httpx.Client, receiver: Receiver
) -> None:
    named = create_endpoint(
        api, receiver.script("/named", []), event_types=["webhook_endpoint.disabled", "invoice.created"]
    )
    every = create_endpoint(api, receiver.script("/every", []))
    to_named, to_every = send_test(api, named["id"]), send_test(api, every["id"])
    assert (to_named["webhook_type"], to_every["webhook_type"]) == (
        "webhook_endpoint.disabled",
        "invoice.created",
    )
    # An operational type is sent with its own object type and the endpoint-shaped example.
    log = wait_delivery(api, str(to_named["delivery_id"]), lambda d: d["status"] == "succeeded")
    assert log["payload"] == {
        "webhook_type": "webhook_endpoint.disabled",
        "object_type": "webhook_endpoint",
        "data": {"object": SUBSCRIBABLE_BY_NAME["webhook_endpoint.disabled"].example},
    }
    wait_delivery(api, str(to_every["delivery_id"]), lambda d: d["status"] == "succeeded")
    assert json.loads(receiver.requests("/every")[0].body)["webhook_type"] == "invoice.created"


def test_a_jwt_endpoints_test_event_carries_its_token(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/jwt-test", []), signature_method="jwt")
    sent = send_test(api, endpoint["id"], "customer.created")
    [request] = wait_for(lambda: receiver.requests("/jwt-test"), what="the jwt test delivery")
    jwks = httpx.get(f"{api.base_url}{api.get('/v1/me').json()['jwks_path']}").json()
    token = request.headers["x-webhook-signature"]
    [jwk] = [k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=["RS256"], issuer="flexprice-webhooks", audience=endpoint["id"]
    )
    assert claims["jti"] == request.headers["webhook-id"] == sent["delivery_id"]
    assert claims["body_sha256"] == hashlib.sha256(request.body).hexdigest()


def test_a_missing_or_disabled_endpoint_is_refused_with_what_to_do(
    api: httpx.Client, receiver: Receiver
) -> None:
    missing = api.post("/v1/webhooks/endpoints/ep_nope/test", json={})
    assert (missing.status_code, missing.json()) == (404, {"detail": "endpoint ep_nope not found"})
    endpoint = create_endpoint(api, receiver.script("/off", []), enabled=False)
    disabled = api.post(f"/v1/webhooks/endpoints/{endpoint['id']}/test", json={"webhook_type": "fee.created"})
    assert disabled.status_code == 409
    assert "is disabled; enable it" in disabled.json()["detail"]
    unknown = api.post(f"/v1/webhooks/endpoints/{endpoint['id']}/test", json={"webhook_type": "fee.nope"})
    assert unknown.status_code == 422
    # Nothing was sent: an event emitted after it, with the endpoint enabled, is its first delivery.
    assert api.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"enabled": True}).status_code == 200
    event_id = emit(api, "fee.created")["id"]
    wait_delivery(api, f"{event_id}:{endpoint['id']}", lambda d: d["status"] == "succeeded")
    assert [r.headers["webhook-id"] for r in receiver.requests("/off")] == [f"{event_id}:{endpoint['id']}"]
    assert delivery(api, f"{event_id}:{endpoint['id']}")["origin"] == "event"
