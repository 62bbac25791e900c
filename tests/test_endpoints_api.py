"""Endpoint management through the real API: status codes, validation, secrets, auth, tenant isolation."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from launcher import Stack
from tests.conftest import NOWHERE, api_client, create_endpoint, standalone_api
from tests.test_core_destinations import REFUSED_FORMS


def test_create_get_list_patch_delete(api: httpx.Client) -> None:
    created = create_endpoint(
        api,
        f"{NOWHERE}/hooks",
        event_types=["invoice.created", "invoice.voided"],
        description="billing",
    )
    assert created["id"].startswith("ep_")
    assert created["secret"].startswith("whsec_")
    assert created["signature_method"] == "hmac"
    assert created["enabled"] is True
    assert created["event_types"] == ["invoice.created", "invoice.voided"]
    assert created["created_at"]
    endpoint_id = created["id"]

    fetched = api.get(f"/v1/webhooks/endpoints/{endpoint_id}").json()
    assert "secret" not in fetched
    assert fetched["url"] == f"{NOWHERE}/hooks"
    listed = api.get("/v1/webhooks/endpoints").json()["items"]
    assert endpoint_id in [e["id"] for e in listed]
    assert all("secret" not in e for e in listed)
    assert api.get(f"/v1/webhooks/endpoints/{endpoint_id}/secret").json() == {"secret": created["secret"]}

    patched = api.patch(
        f"/v1/webhooks/endpoints/{endpoint_id}",
        json={"enabled": False, "event_types": None, "url": f"{NOWHERE}/other"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["enabled"] is False
    assert patched.json()["event_types"] is None
    assert patched.json()["url"] == f"{NOWHERE}/other"
    assert patched.json()["description"] == "billing"

    assert api.delete(f"/v1/webhooks/endpoints/{endpoint_id}").status_code == 204
    assert api.get(f"/v1/webhooks/endpoints/{endpoint_id}").status_code == 404
    assert api.delete(f"/v1/webhooks/endpoints/{endpoint_id}").status_code == 404


def test_jwt_endpoint_has_no_secret_to_show_or_rotate(api: httpx.Client) -> None:
    created = create_endpoint(api, f"{NOWHERE}/jwt", signature_method="jwt")
    assert created["secret"] is None
    response = api.get(f"/v1/webhooks/endpoints/{created['id']}/secret")
    assert response.status_code == 409
    assert "/v1/webhooks/jwks/tenant_a.json" in response.json()["detail"]
    assert f"aud is {created['id']}" in response.json()["detail"]
    # A rotation answered 200 with a whsec_ secret that signed nothing (an attack session's finding).
    rotated = api.post(f"/v1/webhooks/endpoints/{created['id']}/secret/rotate", json={})
    assert rotated.status_code == 409, rotated.text
    assert "no shared secret to rotate" in rotated.json()["detail"]
    assert "python -m cli.keys rotate" in rotated.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "ftp://example.com"}, "url", "http"),
        ({"url": "not a url"}, "url", "http"),
        ({"url": "https://example.com", "event_types": ["invoice.nope"]}, "event_types", "invoice.nope"),
        ({"url": "https://example.com", "event_types": []}, "event_types", "null for every event type"),
        ({"url": "https://example.com", "signature_method": "md5"}, "signature_method", "hmac"),
        ({"url": "https://example.com", "colour": "red"}, "colour", "Extra"),
        ({}, "url", "Field required"),
    ],
)
def test_invalid_endpoint_is_422_with_a_message(
    api: httpx.Client, body: dict[str, object], field: str, words: str
) -> None:
    response = api.post("/v1/webhooks/endpoints", json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][-1] == field
    assert words in error["msg"]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://[abc/", "brackets enclose an IPv6 address only"),
        ("http://a]b/", "brackets enclose an IPv6 address only"),
        ("http://[127.0.0.1]/", "An IPv4 address cannot be in brackets"),
        ("http://exa mple.com/", "spaces or control characters"),
        ("http://example.com/\n", "spaces or control characters"),
        ("http://example.com/\x00", "spaces or control characters"),
    ],
)
def test_malformed_urls_are_422_not_500(api: httpx.Client, url: str, words: str) -> None:
    endpoint_id = create_endpoint(api, f"{NOWHERE}/fine")["id"]
    for response in (
        api.post("/v1/webhooks/endpoints", json={"url": url}),
        api.patch(f"/v1/webhooks/endpoints/{endpoint_id}", json={"url": url}),
    ):
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "url"]
        assert words in error["msg"]


def test_a_description_with_nul_is_422(api: httpx.Client) -> None:
    # PostgreSQL, the production store, cannot keep it: refused here rather than a 500 there.
    response = api.post("/v1/webhooks/endpoints", json={"url": f"{NOWHERE}/n", "description": "a\x00b"})
    assert response.status_code == 422
    assert "NUL" in response.json()["detail"][0]["msg"]


def test_patch_validates_too(api: httpx.Client) -> None:
    endpoint_id = create_endpoint(api, f"{NOWHERE}/p")["id"]
    assert api.patch(f"/v1/webhooks/endpoints/{endpoint_id}", json={"url": "gopher://x"}).status_code == 422
    assert api.patch(f"/v1/webhooks/endpoints/{endpoint_id}", json={"enabled": None}).status_code == 422
    assert api.patch("/v1/webhooks/endpoints/ep_missing", json={"enabled": True}).status_code == 404


@pytest.mark.stack  # an API process of its own
def test_private_urls_are_refused_by_default(tmp_path: Path) -> None:
    # The session stack allows private URLs (its receivers are local); a default API refuses them.
    env = {"WEBHOOKS_DATA_DIR": str(tmp_path), "WEBHOOKS_API_KEYS": "t:k"}
    with (
        standalone_api(env) as base_url,
        httpx.Client(base_url=base_url, headers={"x-api-key": "k"}) as client,
    ):
        created = client.post("/v1/webhooks/endpoints", json={"url": "https://example.com/h"})
        assert created.status_code == 201
        endpoint = f"/v1/webhooks/endpoints/{created.json()['id']}"
        for host, message in [
            ("127.0.0.1:9000", "127.0.0.1, a loopback address"),
            ("localhost", "localhost, a loopback name"),
            ("192.168.1.5", "192.168.1.5, a private address"),
            *REFUSED_FORMS,  # every form that used to be accepted when saved, each in the table
        ]:
            url = f"http://{host}/h"
            for response in (
                client.post("/v1/webhooks/endpoints", json={"url": url}),
                client.patch(endpoint, json={"url": url}),
            ):
                assert response.status_code == 422, (url, response.request.method)
                (error,) = response.json()["detail"]
                assert error["loc"] == ["body", "url"]
                assert f"url points at {message}" in error["msg"], error["msg"]
                assert "use your receiver's public host name" in error["msg"]
        assert client.get(endpoint).json()["url"] == "https://example.com/h"  # no PATCH got through


def test_every_v1_route_needs_a_valid_key(stack: Stack) -> None:
    routes = [
        ("GET", "/v1/webhooks/event-types"),
        ("GET", "/v1/webhooks/endpoints"),
        ("POST", "/v1/webhooks/endpoints"),
        ("GET", "/v1/webhooks/endpoints/ep_x"),
        ("PATCH", "/v1/webhooks/endpoints/ep_x"),
        ("DELETE", "/v1/webhooks/endpoints/ep_x"),
        ("GET", "/v1/webhooks/endpoints/ep_x/secret"),
        ("GET", "/v1/webhooks/endpoints/ep_x/deliveries"),
        ("POST", "/v1/events"),
        ("GET", "/v1/events/evt_x"),
        ("GET", "/v1/webhooks/deliveries"),
        ("GET", "/v1/webhooks/deliveries/evt_x:ep_x"),
        ("POST", "/v1/webhooks/deliveries/evt_x:ep_x/retry"),
        ("POST", "/v1/portal/sessions"),
        ("DELETE", "/v1/portal/sessions/ps_x"),
    ]
    with api_client(stack, tenant=None) as anonymous:
        for method, path in routes:
            for headers in ({}, {"x-api-key": "wrong"}):
                response = anonymous.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers)
                assert response.json()["detail"] == "missing or invalid x-api-key header"


def test_tenants_do_not_see_each_other(api: httpx.Client, api_b: httpx.Client) -> None:
    endpoint_id = create_endpoint(api, f"{NOWHERE}/a")["id"]
    assert endpoint_id not in [e["id"] for e in api_b.get("/v1/webhooks/endpoints").json()["items"]]
    for method, path in [
        ("GET", f"/v1/webhooks/endpoints/{endpoint_id}"),
        ("PATCH", f"/v1/webhooks/endpoints/{endpoint_id}"),
        ("GET", f"/v1/webhooks/endpoints/{endpoint_id}/secret"),
        ("GET", f"/v1/webhooks/endpoints/{endpoint_id}/deliveries"),
        ("DELETE", f"/v1/webhooks/endpoints/{endpoint_id}"),
    ]:
        assert api_b.request(method, path, json={}).status_code == 404, (method, path)
    assert api.get(f"/v1/webhooks/endpoints/{endpoint_id}").status_code == 200


def test_openapi_documents_every_route(stack: Stack) -> None:
    spec = httpx.get(f"{stack.api_url}/openapi.json").json()
    for path in ("/v1/events", "/v1/webhooks/endpoints", "/v1/webhooks/deliveries/{delivery_id}/retry"):
        assert path in spec["paths"]
