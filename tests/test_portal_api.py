"""Portal sessions and scoped API keys, through the real API, worker and Temporal.

Each rule of who may call what: a session manages and reads its own tenant's endpoints and deliveries,
never emits, never opens another session, never sees another tenant; a read-only one changes nothing; an
expired, revoked or forged token is 401 saying which, before any body is read; an API key does what its
scopes say. A second API process of the same stack (`api_replica`) shows what replicas share: the key
that signs sessions, and the list of revoked ones.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.routing import APIRoute

from api.deps import declared_scopes
from api.main import ROUTERS
from core.sessions import AUDIENCE
from domain.access import Scope
from launcher import Stack
from tests.conftest import (
    KEYS,
    NOWHERE,
    STARTED_WITHIN,
    api_replica,
    create_endpoint,
    emit,
    standalone_api,
    wait_delivery,
    wait_for,
)
from tests.faults import sqlite_locked
from tests.receiver import Receiver
from tests.test_request_limits import HUNDRED_MB, send_raw

# Keys of tenant_a that can do one thing each, on the replica beside the stack's own keys.
SCOPED = {
    "emit": "key_a_emit_" + "e" * 20,
    "manage": "key_a_manage_" + "m" * 20,
    "read": "key_a_read_" + "r" * 20,
    "portal": "key_a_portal_" + "p" * 20,
    "emit+read": "key_a_emitread_" + "q" * 20,
}
FRAMING_ORIGINS = "https://billing.example.com, http://127.0.0.1:8123"

# Every /v1 route and the one scope it declares (None: any valid credential). A new route must be added
# here, which makes whoever adds it decide who may call it.
EXPECTED_SCOPES: dict[tuple[str, str], Scope | None] = {
    ("GET", "/v1/me"): None,
    ("GET", "/v1/webhooks/event-types"): Scope.READ,
    ("GET", "/v1/webhooks/event-types/{name}"): Scope.READ,
    # `webhooks listen` makes and enables an endpoint, and shows its secret.
    ("POST", "/v1/webhooks/listen"): Scope.MANAGE,
    ("POST", "/v1/webhooks/listen/{session_id}/poll"): Scope.MANAGE,
    ("POST", "/v1/webhooks/listen/{session_id}/answers/{delivery_key}"): Scope.MANAGE,
    ("DELETE", "/v1/webhooks/listen/{session_id}"): Scope.MANAGE,
    ("POST", "/v1/portal/sessions"): Scope.PORTAL,
    ("DELETE", "/v1/portal/sessions/{session_id}"): Scope.PORTAL,
    ("POST", "/v1/webhooks/endpoints"): Scope.MANAGE,
    ("GET", "/v1/webhooks/endpoints"): Scope.READ,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}"): Scope.READ,
    ("PATCH", "/v1/webhooks/endpoints/{endpoint_id}"): Scope.MANAGE,
    ("DELETE", "/v1/webhooks/endpoints/{endpoint_id}"): Scope.MANAGE,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}/secret"): Scope.MANAGE,
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/secret/rotate"): Scope.MANAGE,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}/lane"): Scope.READ,
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/lane/skip"): Scope.MANAGE,
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/test"): Scope.MANAGE,
    ("POST", "/v1/events"): Scope.EMIT,
    ("GET", "/v1/events"): Scope.READ,
    ("GET", "/v1/events/{event_id}"): Scope.READ,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}/deliveries"): Scope.READ,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}/stats"): Scope.READ,
    ("GET", "/v1/webhooks/deliveries"): Scope.READ,
    ("GET", "/v1/webhooks/deliveries/{delivery_id}"): Scope.READ,
    ("POST", "/v1/webhooks/deliveries/{delivery_id}/retry"): Scope.MANAGE,
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/recover"): Scope.MANAGE,
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/replay"): Scope.MANAGE,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}/recoveries"): Scope.READ,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}/recoveries/{recovery_id}"): Scope.READ,
    ("DELETE", "/v1/webhooks/endpoints/{endpoint_id}/recoveries/{recovery_id}"): Scope.MANAGE,
}
PUBLIC_V1 = {("GET", "/v1/webhooks/jwks/{tenant}.json"), ("GET", "/v1/webhooks/jwks.json")}


def test_every_v1_route_declares_the_scope_it_needs() -> None:
    found: dict[tuple[str, str], Scope | None] = {}
    public: set[tuple[str, str]] = set()
    for route in (r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)):
        for method in route.methods or ():
            if not route.path.startswith("/v1/"):
                continue
            declared = declared_scopes(route.dependant)
            assert len(declared) <= 1, f"{method} {route.path} declares {declared}: one scope, in one place"
            if declared:
                found[(method, route.path)] = declared[0]
            else:
                public.add((method, route.path))
    assert found == EXPECTED_SCOPES
    assert public == PUBLIC_V1


@pytest.fixture(scope="module")
def replica(stack: Stack) -> Iterator[str]:
    keys = ",".join(
        [*(f"{t}:{k}" for t, k in KEYS.items()), *(f"tenant_a:{k}:{s}" for s, k in SCOPED.items())]
    )
    with api_replica(
        stack,
        WEBHOOKS_API_KEYS=keys,
        WEBHOOKS_PORTAL_FRAME_ANCESTORS=FRAMING_ORIGINS,
        WEBHOOKS_PUBLIC_API_URL="https://webhooks.example.com/",
    ) as base_url:
        yield base_url


def open_session(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/portal/sessions", json=body or None)
    assert response.status_code == 201, response.text
    return dict(response.json())


def as_session(base_url: str | httpx.URL, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {token}"}, timeout=30)


def test_a_session_opens_the_dashboard_for_an_hour_by_default(api: httpx.Client) -> None:
    opened = open_session(api)
    assert set(opened) == {"id", "token", "url", "expires_at", "read_only", "appearance"}
    assert opened["appearance"] is None
    assert opened["url"] == f"{api.base_url}/dashboard/#session={opened['token']}"
    assert opened["read_only"] is False
    with as_session(api.base_url, opened["token"]) as session:
        me = session.get("/v1/me").json()
    assert me["tenant"] == "tenant_a"
    assert me["scopes"] == ["read", "manage"]
    assert me["session"] == {"id": opened["id"], "expires_at": opened["expires_at"], "appearance": None}
    claims = jwt.decode(opened["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["aud"] == AUDIENCE and claims["sub"] == "tenant_a"
    # The token holds no secret: the tenant, the scopes and the times only.
    assert KEYS["tenant_a"] not in json.dumps(claims)


@pytest.mark.parametrize(
    "body", [{"expires_in": 0}, {"expires_in": 86_401}, {"expires_in": "soon"}, {"read_only": "maybe"}]
)
def test_a_bad_session_request_is_422_naming_the_field(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/v1/portal/sessions", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", next(iter(body))]


def test_a_session_manages_and_reads_its_tenants_webhooks(api: httpx.Client, receiver: Receiver) -> None:
    token = open_session(api, expires_in=600)["token"]
    with as_session(api.base_url, token) as session:
        created = session.post("/v1/webhooks/endpoints", json={"url": receiver.url("/portal")})
        assert created.status_code == 201, created.text
        endpoint = created.json()
        assert endpoint["secret"].startswith("whsec_")
        assert session.get(f"/v1/webhooks/endpoints/{endpoint['id']}/secret").status_code == 200
        changed = session.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"description": "portal"})
        assert changed.json()["description"] == "portal"
        assert [e["id"] for e in session.get("/v1/webhooks/endpoints").json()["items"]] == [endpoint["id"]]
        assert len(session.get("/v1/webhooks/event-types").json()["items"]) >= 31

        event = emit(api, "invoice.created")  # the tenant's backend emits, with its key
        delivery_id = f"{event['id']}:{endpoint['id']}"
        wait_delivery(session, delivery_id, lambda d: d["status"] == "succeeded")
        # Our Temporal Web UI is the operator's: its address and workflow ids are no customer's business.
        assert session.get(f"/v1/webhooks/deliveries/{delivery_id}").json()["workflow_url"] is None
        assert api.get(f"/v1/webhooks/deliveries/{delivery_id}").json()["workflow_url"]
        # The list reads Temporal's visibility, a moment behind the delivery's own state.
        listed = wait_for(
            lambda: session.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries").json()["items"],
            what="the delivery listed",
        )
        assert [d["id"] for d in listed] == [delivery_id]
        assert session.get(f"/v1/events/{event['id']}").status_code == 200
        assert session.get(f"/v1/webhooks/endpoints/{endpoint['id']}/stats").status_code == 200
        retried = session.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")
        assert retried.status_code == 202, retried.text
        assert session.delete(f"/v1/webhooks/endpoints/{endpoint['id']}").status_code == 204


def test_a_session_never_emits_nor_opens_another_session(api: httpx.Client) -> None:
    token = open_session(api)["token"]
    with as_session(api.base_url, token) as session:
        refused = session.post("/v1/events", json={"webhook_type": "invoice.created", "data": {"object": {}}})
        assert refused.status_code == 403
        assert "needs the emit scope" in refused.json()["detail"]
        again = session.post("/v1/portal/sessions", json={"expires_in": 86_400})
        assert again.status_code == 403
        assert "needs the portal scope" in again.json()["detail"]
        revoke = session.delete(f"/v1/portal/sessions/{open_session(api)['id']}")
        assert revoke.status_code == 403


def test_a_read_only_session_reads_and_changes_nothing(api: httpx.Client) -> None:
    endpoint = create_endpoint(api, f"{NOWHERE}/read-only")
    event = emit(api, "invoice.created")
    delivery_id = f"{event['id']}:{endpoint['id']}"
    opened = open_session(api, read_only=True)
    assert opened["read_only"] is True
    with as_session(api.base_url, opened["token"]) as session:
        assert session.get("/v1/me").json()["scopes"] == ["read"]
        assert session.get(f"/v1/webhooks/endpoints/{endpoint['id']}").status_code == 200
        wait_for(
            lambda: session.get(f"/v1/webhooks/deliveries/{delivery_id}").status_code == 200,
            what="the delivery, read by the read-only session",
        )
        for method, path, body in [
            ("POST", "/v1/webhooks/endpoints", {"url": f"{NOWHERE}/x"}),
            ("PATCH", f"/v1/webhooks/endpoints/{endpoint['id']}", {"enabled": False}),
            ("DELETE", f"/v1/webhooks/endpoints/{endpoint['id']}", None),
            ("GET", f"/v1/webhooks/endpoints/{endpoint['id']}/secret", None),
            ("POST", f"/v1/webhooks/deliveries/{delivery_id}/retry", None),
        ]:
            response = session.request(method, path, json=body)
            assert response.status_code == 403, (method, path)
            assert "read-only" in response.json()["detail"] and "manage" in response.json()["detail"]
    assert api.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json()["enabled"] is True


def test_a_session_sees_only_its_own_tenant(api: httpx.Client, api_b: httpx.Client) -> None:
    theirs = create_endpoint(api_b, f"{NOWHERE}/b")
    event = emit(api_b, "invoice.created")
    delivery_id = f"{event['id']}:{theirs['id']}"
    wait_delivery(api_b, delivery_id, lambda d: d["status"] != "scheduled")
    token = open_session(api)["token"]
    with as_session(api.base_url, token) as session:
        assert session.get("/v1/me").json()["tenant"] == "tenant_a"
        assert theirs["id"] not in [e["id"] for e in session.get("/v1/webhooks/endpoints").json()["items"]]
        for method, path in [
            ("GET", f"/v1/webhooks/endpoints/{theirs['id']}"),
            ("PATCH", f"/v1/webhooks/endpoints/{theirs['id']}"),
            ("DELETE", f"/v1/webhooks/endpoints/{theirs['id']}"),
            ("GET", f"/v1/webhooks/endpoints/{theirs['id']}/secret"),
            ("GET", f"/v1/webhooks/endpoints/{theirs['id']}/stats"),
            ("GET", f"/v1/webhooks/deliveries/{delivery_id}"),
            ("POST", f"/v1/webhooks/deliveries/{delivery_id}/retry"),
            ("GET", f"/v1/events/{event['id']}"),
        ]:
            response = session.request(method, path, json={} if method == "PATCH" else None)
            assert response.status_code == 404, (method, path, response.text)
        assert delivery_id not in [d["id"] for d in session.get("/v1/webhooks/deliveries").json()["items"]]
    assert api_b.get(f"/v1/webhooks/endpoints/{theirs['id']}").status_code == 200


def _refusal(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer ")
    return str(response.json()["detail"])


def test_an_expired_session_is_401_saying_so(api: httpx.Client) -> None:
    opened = open_session(api, expires_in=1)
    with as_session(api.base_url, opened["token"]) as session:
        # An end, not a speed: the second the session was given is over once this answers 401.

        def refused() -> httpx.Response | None:
            response = session.get("/v1/webhooks/endpoints")
            return response if response.status_code == 401 else None

        expired = wait_for(refused, what="the session to end")
    detail = _refusal(expired)
    assert "expired at" in detail and opened["expires_at"].replace("+00:00", "Z")[:19] in detail
    assert "start a new one" in detail


def test_a_revoked_session_is_401_on_every_replica(
    api: httpx.Client, api_b: httpx.Client, replica: str
) -> None:
    opened = open_session(api)
    # Tenant B cannot end tenant A's session, nor store revocations of ids nobody made (issue 20, 5):
    # an id carries a MAC of its tenant.
    assert api_b.delete(f"/v1/portal/sessions/{opened['id']}").status_code == 404
    made_up = "ps_" + "0" * 24
    missing = api.delete(f"/v1/portal/sessions/{made_up}")
    assert missing.status_code == 404 and "no portal session" in missing.json()["detail"]
    with (
        as_session(replica, opened["token"]) as on_replica,
        as_session(api.base_url, opened["token"]) as here,
    ):
        # Signed on one replica, taken by the other: the key is derived from the shared encryption keys.
        assert on_replica.get("/v1/webhooks/endpoints").status_code == 200
        assert api.delete(f"/v1/portal/sessions/{opened['id']}").status_code == 204
        assert api.delete(f"/v1/portal/sessions/{opened['id']}").status_code == 204  # again: the same
        for client in (on_replica, here):
            detail = _refusal(client.get("/v1/webhooks/endpoints"))
            assert "was revoked" in detail
    assert api.delete("/v1/portal/sessions/not-a-session").status_code == 422


@pytest.mark.stack  # an API process of its own
def test_a_session_is_refused_not_trusted_while_the_store_is_down(tmp_path: Path) -> None:
    # The store lists revoked sessions: unread, a session could be one of them.
    with standalone_api({"WEBHOOKS_DATA_DIR": str(tmp_path), "WEBHOOKS_API_KEYS": "t:k"}) as base_url:
        opened = httpx.post(f"{base_url}/v1/portal/sessions", headers={"x-api-key": "k"}, timeout=30)
        with as_session(base_url, opened.json()["token"]) as session:
            assert session.get("/v1/me").status_code == 200
            with sqlite_locked(tmp_path / "webhooks.db"):
                down = session.get("/v1/me")
            assert down.status_code == 503, down.text
            assert "store is unavailable" in down.json()["detail"] and down.headers["retry-after"] == "5"
            assert session.get("/v1/me").status_code == 200


@pytest.mark.stack  # API processes of their own
# Five API processes one after the other, each given as long as any to start: on a machine loaded well
# past a CPU hog (a CI run beside another stack and an attack), they took more than the suite's 180 s.
@pytest.mark.timeout(5 * (STARTED_WITHIN + 30))  # and each one's migration and stop
def test_a_session_ends_with_the_key_that_opened_it(tmp_path: Path) -> None:
    """Issue 20: restarted without `alice:…:portal`, the API still took the sessions that key opened."""
    portal, other = "key_alice_portal_0123", "key_alice_manage_0123"
    env = {"WEBHOOKS_DATA_DIR": str(tmp_path)}
    with standalone_api({**env, "WEBHOOKS_API_KEYS": f"alice:{portal}:portal,alice:{other}"}) as base_url:
        opened = httpx.post(f"{base_url}/v1/portal/sessions", headers={"x-api-key": portal}, timeout=30)
        assert opened.status_code == 201, opened.text
        token = opened.json()["token"]
    for keys, valid in (
        (f"alice:{portal}:portal,alice:{other}", True),  # restarted as it was: the session goes on
        (f"alice:{other}", False),  # the key removed, alice keeps another
        (f"alice:{portal}:read,alice:{other}", False),  # the key kept, without the portal scope
        (f"bob:{portal}:portal,alice:{other}", False),  # the key given to another tenant
    ):
        with (
            standalone_api({**env, "WEBHOOKS_API_KEYS": keys}) as base_url,
            as_session(base_url, token) as session,
        ):
            me = session.get("/v1/me")
            change = session.patch("/v1/webhooks/endpoints/ep_none", json={"description": "x"})
            if valid:
                assert me.status_code == 200, (keys, me.text)
                assert change.status_code == 404, (keys, change.text)  # let in: no such endpoint
            else:
                assert "API key that opened this portal session was removed" in _refusal(me), keys
                assert change.status_code == 401, keys


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _forgeries(api: httpx.Client) -> dict[str, str]:
    token = open_session(api)["token"]
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    return {
        "signature changed": f"{header}.{payload}.{signature[:-4]}AAAA",
        "claims changed": f"{header}.{_b64({**claims, 'sub': 'tenant_b'})}.{signature}",
        "signed with another key": jwt.encode(claims, b"k" * 32, algorithm="HS256"),
        "unsigned (alg none)": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "an emitting session": jwt.encode({**claims, "scope": "emit"}, b"k" * 32, algorithm="HS256"),
        "not a token at all": "hello",
        "the API key as a bearer": KEYS["tenant_a"],
    }


def test_a_forged_or_altered_token_is_401(api: httpx.Client) -> None:
    for name, forged in _forgeries(api).items():
        with as_session(api.base_url, forged) as session:
            detail = _refusal(session.get("/v1/webhooks/endpoints"))
            assert "invalid portal session token" in detail, name


def test_bad_session_tokens_are_401_before_the_body_is_read(api: httpx.Client) -> None:
    expired = open_session(api, expires_in=1)
    revoked = open_session(api)
    api.delete(f"/v1/portal/sessions/{revoked['id']}")
    tokens = {
        "expired": expired["token"],
        "was revoked": revoked["token"],
        "invalid portal session token": _forgeries(api)["signed with another key"],
    }
    with as_session(api.base_url, expired["token"]) as session:
        wait_for(lambda: session.get("/v1/me").status_code == 401, what="the session to expire")
    for says, token in tokens.items():
        # 100 MB announced and none of it sent: the answer comes from the headers alone.
        head = "\r\n".join(
            [
                "POST /v1/webhooks/endpoints HTTP/1.1",
                "Host: 127.0.0.1",
                "Content-Type: application/json",
                f"Authorization: Bearer {token}",
                f"Content-Length: {HUNDRED_MB}",
            ]
        )
        answer = send_raw(str(api.base_url), head + "\r\n\r\n")
        assert answer.status == 401, says
        assert says in json.loads(answer.body)["detail"]
        assert answer.headers["connection"] == "close"


def test_scoped_keys_do_what_their_scopes_say(replica: str) -> None:
    def client(scopes: str) -> httpx.Client:
        return httpx.Client(base_url=replica, headers={"x-api-key": SCOPED[scopes]}, timeout=30)

    event = {"webhook_type": "invoice.created", "data": {"object": {"id": "inv_scoped"}}}
    with client("emit") as emitter:
        assert emitter.get("/v1/me").json()["scopes"] == ["emit"]
        assert emitter.post("/v1/events", json=event).status_code == 202
        refused = emitter.get("/v1/webhooks/endpoints")
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("this API key lacks the read scope this route needs")
    with client("emit+read") as emitter:
        accepted = emitter.post("/v1/events", json=event).json()
        assert emitter.get(f"/v1/events/{accepted['id']}").status_code == 200
    with client("manage") as manager:
        assert manager.get("/v1/me").json()["scopes"] == ["read", "manage"]  # manage implies read
        endpoint = manager.post("/v1/webhooks/endpoints", json={"url": f"{NOWHERE}/scoped"})
        assert endpoint.status_code == 201
        assert manager.get("/v1/webhooks/endpoints").status_code == 200
        for method, path, scope in [
            ("POST", "/v1/events", "emit"),
            ("POST", "/v1/portal/sessions", "portal"),
        ]:
            response = manager.request(method, path, json=event if scope == "emit" else None)
            assert response.status_code == 403
            assert f"lacks the {scope} scope" in response.json()["detail"]
        assert manager.delete(f"/v1/webhooks/endpoints/{endpoint.json()['id']}").status_code == 204
    with client("read") as reader:
        response = reader.post("/v1/webhooks/endpoints", json={"url": f"{NOWHERE}/x"})
        assert response.status_code == 403 and "lacks the manage scope" in response.json()["detail"]
    with client("portal") as host_backend:
        # The host product's backend needs no more than this: it cannot emit or read by itself, and the
        # sessions it opens manage and read.
        assert host_backend.get("/v1/webhooks/endpoints").status_code == 403
        assert host_backend.post("/v1/events", json=event).status_code == 403
        opened = host_backend.post("/v1/portal/sessions").json()
        token = opened["token"]
        # The address browsers know, not the one the backend called (WEBHOOKS_PUBLIC_API_URL).
        assert opened["url"] == f"https://webhooks.example.com/dashboard/#session={token}"
    with as_session(replica, token) as session:
        assert session.get("/v1/me").json()["scopes"] == ["read", "manage"]


def test_the_dashboard_may_be_framed_by_the_listed_origins_only(replica: str, stack: Stack) -> None:
    for path in ("/dashboard/", "/dashboard/js/app.js", "/dashboard/embedding.json"):
        headers = httpx.get(f"{replica}{path}", timeout=30).headers
        policy = headers["content-security-policy"]
        assert policy.endswith("; frame-ancestors https://billing.example.com http://127.0.0.1:8123"), path
        # The host's logo (a session's appearance) comes from an origin that frames the page, no other.
        assert "img-src 'self' data: https://billing.example.com http://127.0.0.1:8123;" in policy, path
        # X-Frame-Options cannot list origins: left out, so that it never contradicts the list.
        assert "x-frame-options" not in headers, path
    listed = httpx.get(f"{replica}/dashboard/embedding.json", timeout=30).json()
    assert listed == {
        "frame_ancestors": ["https://billing.example.com", "http://127.0.0.1:8123"],
        "temporal_links": False,
    }
    default = httpx.get(f"{stack.api_url}/dashboard/", timeout=30).headers
    assert default["content-security-policy"].endswith("; frame-ancestors 'none'")
    assert "img-src 'self' data:;" in default["content-security-policy"]
    assert default["x-frame-options"] == "DENY"
    assert httpx.get(f"{stack.api_url}/dashboard/embedding.json", timeout=30).json() == {
        "frame_ancestors": [],
        "temporal_links": False,
    }


HOST_LOOK = {
    "title": "Acme Billing · Webhooks",
    "accent_color": "#0F9D58",
    "logo_url": "https://billing.example.com/static/logo.svg?v=3",
}


def test_a_session_carries_the_hosts_title_accent_and_logo(replica: str) -> None:
    with httpx.Client(base_url=replica, headers={"x-api-key": SCOPED["portal"]}, timeout=30) as host_backend:
        response = host_backend.post("/v1/portal/sessions", json={"appearance": HOST_LOOK})
        assert response.status_code == 201, response.text
        opened = response.json()
        plain = host_backend.post("/v1/portal/sessions").json()
    look = {**HOST_LOOK, "accent_color": "#0f9d58"}  # as browsers spell it
    assert opened["appearance"] == look
    # Signed into the token: the page learns it from the API, and nobody changes it on the way.
    with as_session(replica, opened["token"]) as session:
        assert session.get("/v1/me").json()["session"]["appearance"] == look
    with as_session(replica, plain["token"]) as session:
        assert session.get("/v1/me").json()["session"]["appearance"] is None
    claims = jwt.decode(opened["token"], options={"verify_signature": False})
    assert claims["look"] == {
        "title": look["title"],
        "accent": look["accent_color"],
        "logo": look["logo_url"],
    }


def test_a_session_may_set_part_of_its_appearance(replica: str) -> None:
    with httpx.Client(base_url=replica, headers={"x-api-key": SCOPED["portal"]}, timeout=30) as host_backend:
        opened = host_backend.post(
            "/v1/portal/sessions", json={"appearance": {"title": "  Webhooks  "}}
        ).json()
    assert opened["appearance"] == {"title": "Webhooks", "accent_color": None, "logo_url": None}
    with as_session(replica, opened["token"]) as session:
        assert session.get("/v1/me").json()["session"]["appearance"]["title"] == "Webhooks"


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("accent_color", "green", "#rrggbb"),
        ("accent_color", "#0f9", "#rrggbb"),
        ("accent_color", "#0f9d58; background: url(x)", "#rrggbb"),
        ("title", "<b>Acme</b>", "no markup"),
        ("title", "Acme\nBilling", "one line"),
        ("title", "A" * 81, "at most 80 characters"),
        ("title", "   ", "at least one character"),
        ("logo_url", "javascript:alert(1)", "https URL"),
        ("logo_url", "data:image/svg+xml,<svg/>", "https URL"),
        ("logo_url", "http://billing.example.com/logo.png", "https URL"),
        ("logo_url", "https://user:pw@billing.example.com/logo.png", "no user name"),
        ("logo_url", "https://billing.example.com/" + "a" * 2048, "at most 2048 characters"),
        ("logo_url", 'https://billing.example.com/a".png', "https URL"),
        # Not an origin the dashboard may be framed by: its Content-Security-Policy would block the image.
        ("logo_url", "https://cdn.example.net/logo.png", "WEBHOOKS_PORTAL_FRAME_ANCESTORS"),
        ("colour", "#0f9d58", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_appearance_is_422_saying_what_to_fix(replica: str, field: str, value: str, said: str) -> None:
    with httpx.Client(base_url=replica, headers={"x-api-key": SCOPED["portal"]}, timeout=30) as host_backend:
        response = host_backend.post("/v1/portal/sessions", json={"appearance": {field: value}})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "appearance", field]
    assert said in error["msg"], error["msg"]


def test_a_logo_may_be_served_over_http_from_this_machine_for_development(replica: str) -> None:
    with httpx.Client(base_url=replica, headers={"x-api-key": SCOPED["portal"]}, timeout=30) as host_backend:
        logo = "http://127.0.0.1:8123/logo.svg"
        response = host_backend.post("/v1/portal/sessions", json={"appearance": {"logo_url": logo}})
    assert response.status_code == 201, response.text
    assert response.json()["appearance"]["logo_url"] == logo
