"""jwt deliveries are bound to their endpoint and tenant, end to end: the real stack, and
examples/receiver.py run as a real server the way docs/receiving.md sets it up.

The forgery (security issue, part 1): tenant A points a jwt endpoint at a server of its own, emits an event
with a forged `data.object`, captures the delivery and replays it unchanged to tenant B's receiver. Also
a key rotation that a receiver caching the JWKS goes through without refusing a single delivery.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from launcher import Stack
from store.database import EndpointStore
from tests.conftest import (
    NOWHERE,
    TEST_KEYRING,
    api_replica,
    create_endpoint,
    emit,
    receiving_guide_code,
    run_guide_code,
    settled,
    wait_delivery,
    wait_for,
)
from tests.receiver import Received, Receiver
from tests.test_example_receiver import ROOT, example_receiver

# What a replay carries over from the captured request: everything but what the HTTP client sets itself.
_NOT_REPLAYED = {"host", "content-length", "connection", "accept-encoding"}


def _replay(captured: Received, url: str) -> httpx.Response:
    headers = {k: v for k, v in captured.headers.items() if k not in _NOT_REPLAYED}
    return httpx.post(url, content=captured.body, headers=headers, timeout=30)


def docs_recipe(jwks_url: str, endpoint_id: str) -> Callable[[bytes, dict[str, str]], Any]:
    """The jwt recipe of docs/receiving.md, run as written but for its two constants: its `verify`."""
    code = receiving_guide_code("## jwt with PyJWT and your JWKS")
    code, found_url = re.subn(r'(?m)^JWKS_URL = ".*"', f"JWKS_URL = {jwks_url!r}", code)
    code, found_id = re.subn(r'(?m)^ENDPOINT_ID = ".*"', f"ENDPOINT_ID = {endpoint_id!r}", code)
    assert found_url == found_id == 1, "the recipe of docs/receiving.md changed shape"
    return run_guide_code(code)["verify"]  # type: ignore[no-any-return]


def _jwt_receiver_env(stack: Stack, client: httpx.Client, endpoint_id: str, **extra: str) -> dict[str, str]:
    """What docs/receiving.md tells a receiver of a jwt endpoint: its tenant's JWKS and its endpoint's id."""
    jwks_path = client.get("/v1/me").json()["jwks_path"]
    return {"WEBHOOKS_JWKS_URL": f"{stack.api_url}{jwks_path}", "WEBHOOKS_ENDPOINT_ID": endpoint_id, **extra}


def test_a_delivery_captured_by_one_tenant_is_refused_by_another_tenants_receiver(
    stack: Stack, api: httpx.Client, api_b: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    # Tenant B: a jwt endpoint served by the example receiver, and a second jwt endpoint of B's elsewhere.
    b_endpoint = create_endpoint(api_b, NOWHERE, signature_method="jwt")
    b_elsewhere = create_endpoint(api_b, receiver.script("/b-elsewhere", []), signature_method="jwt")
    log = tmp_path / "receiver-b.log"
    with example_receiver(_jwt_receiver_env(stack, api_b, b_endpoint["id"]), log) as base:
        b_url = f"{base}/webhooks/flexprice"
        api_b.patch(f"/v1/webhooks/endpoints/{b_endpoint['id']}", json={"url": b_url})

        # Tenant A: a jwt endpoint at its own server, and an event whose object claims B's invoice is paid,
        # with an id of A's choosing.
        a_endpoint = create_endpoint(api, receiver.script("/a-capture", []), signature_method="jwt")
        forged = {"id": "inv_b_0042", "customer_id": "cus_b_1", "payment_status": "succeeded"}
        emit(api, "invoice.payment_status_updated", id="inv_b_0042_paid", data={"object": forged})
        [captured] = wait_for(lambda: receiver.requests("/a-capture"), what="A's own delivery")
        assert captured.headers["webhook-id"] == f"inv_b_0042_paid:{a_endpoint['id']}"

        # Replayed unchanged at B's receiver: refused, however often (no retry makes it pass).
        for _ in range(2):
            replayed = _replay(captured, b_url)
            assert replayed.status_code == 401, replayed.text
            assert "unknown key" in replayed.text  # A's key is not in B's JWKS

        # Why: A's token names A's endpoint and tenant, and was signed with a key B's JWKS does not hold.
        token = captured.headers["x-webhook-signature"]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert (claims["aud"], claims["sub"]) == (a_endpoint["id"], "tenant_a")
        b_jwks = httpx.get(f"{stack.api_url}/v1/webhooks/jwks/tenant_b.json").json()
        assert jwt.get_unverified_header(token)["kid"] not in {k["kid"] for k in b_jwks["keys"]}

        # A genuine delivery to B is accepted, on its first attempt.
        b_event = emit(api_b, "invoice.payment_status_updated", data={"object": {"id": "inv_b_0043"}})["id"]
        genuine = wait_delivery(api_b, f"{b_event}:{b_endpoint['id']}", settled)
        assert genuine["status"] == "succeeded"
        assert [a["status_code"] for a in genuine["attempts"]] == [200]

        # The same event's delivery to B's other endpoint, replayed at this one: B's own key, but a token
        # made for another endpoint. The aud check refuses it.
        [elsewhere] = wait_for(lambda: receiver.requests("/b-elsewhere"), what="B's other delivery")
        replayed = _replay(elsewhere, b_url)
        assert replayed.status_code == 401, replayed.text
        assert "for another endpoint" in replayed.text

        # The docs' recipe, set up for B's endpoint, says the same; set up for B's other endpoint, it
        # accepts that endpoint's genuine delivery.
        b_jwks_url = _jwt_receiver_env(stack, api_b, "")["WEBHOOKS_JWKS_URL"]
        verify_for_b = docs_recipe(b_jwks_url, b_endpoint["id"])
        with pytest.raises(jwt.PyJWKClientError):
            verify_for_b(captured.body, captured.headers)
        with pytest.raises(jwt.InvalidAudienceError):
            verify_for_b(elsewhere.body, elsewhere.headers)
        verify_elsewhere = docs_recipe(b_jwks_url, b_elsewhere["id"])
        assert (
            verify_elsewhere(elsewhere.body, elsewhere.headers)["webhook_type"]
            == "invoice.payment_status_updated"
        )

        printed = str(wait_for(lambda: f"id={b_event}:" in log.read_text() and log.read_text()))
        assert f"id={b_event}:{b_endpoint['id']} (jwt verified, key " in printed
        assert "inv_b_0042_paid" not in printed  # the forged event was never handled
        assert f"id={b_event}:{b_elsewhere['id']}" not in printed


def test_the_jwks_is_per_tenant_and_the_single_one_is_gone(
    stack: Stack, api: httpx.Client, api_b: httpx.Client
) -> None:
    for client in (api, api_b):  # each tenant's first jwt endpoint publishes its first key
        create_endpoint(client, NOWHERE, signature_method="jwt")
    me = api.get("/v1/me").json()
    assert (me["tenant"], me["jwks_path"]) == ("tenant_a", "/v1/webhooks/jwks/tenant_a.json")
    a = httpx.get(f"{stack.api_url}{me['jwks_path']}")
    b = httpx.get(f"{stack.api_url}{api_b.get('/v1/me').json()['jwks_path']}")
    assert a.status_code == b.status_code == 200
    assert a.headers["cache-control"] == "public, max-age=300"
    assert a.json()["keys"] and b.json()["keys"]
    assert {k["kid"] for k in a.json()["keys"]}.isdisjoint(k["kid"] for k in b.json()["keys"])

    gone = httpx.get(f"{stack.api_url}/v1/webhooks/jwks.json")
    assert gone.status_code == 410
    assert "/v1/webhooks/jwks/{tenant}.json" in gone.json()["detail"]
    assert "aud" in gone.json()["detail"]


def test_an_unknown_tenant_gets_the_jwks_of_a_tenant_without_keys_and_nothing_is_stored(
    stack: Stack, receiver: Receiver
) -> None:
    """Issue 20, 5: the JWKS was 200 for a configured tenant (its fetch made the first key) and 404 for
    any other name, so anyone could list the tenants. Both now get an empty JWKS alike, and no fetch
    stores anything; a tenant's first jwt endpoint publishes its first key, before any delivery."""
    tenant, key = f"tenant_c{secrets.token_hex(4)}", "key_c_" + secrets.token_urlsafe(20)
    switching, switching_key = f"tenant_d{secrets.token_hex(4)}", "key_d_" + secrets.token_urlsafe(20)
    store = EndpointStore(stack.settings.sqlalchemy_url, TEST_KEYRING)
    keys_setting = f"{stack.env['WEBHOOKS_API_KEYS']},{tenant}:{key},{switching}:{switching_key}"
    try:
        with api_replica(stack, WEBHOOKS_API_KEYS=keys_setting) as base_url:

            def jwks(name: str) -> httpx.Response:
                return httpx.get(f"{base_url}/v1/webhooks/jwks/{name}.json", timeout=30)

            configured, unknown = jwks(tenant), jwks("tenant_nobody")
            for answer in (configured, unknown):
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"keys": []}
            shown = ("cache-control", "content-type", "content-length")
            assert {h: configured.headers.get(h) for h in shown} == {h: unknown.headers.get(h) for h in shown}
            assert configured.headers["cache-control"] == "no-cache"  # a key made later is seen at once
            assert store.signing_keys.for_tenant(tenant) == []
            assert store.signing_keys.for_tenant("tenant_nobody") == []

            with httpx.Client(base_url=base_url, headers={"x-api-key": key}, timeout=30) as api_c:
                endpoint = create_endpoint(api_c, receiver.script("/c", []), signature_method="jwt")
                published = jwks(tenant)  # fetched by the receiver before any delivery
                [jwk] = published.json()["keys"]
                assert published.headers["cache-control"] == "public, max-age=300"
                emit(api_c, "invoice.created")
                [first] = wait_for(lambda: receiver.requests("/c"), what="the tenant's first jwt delivery")

            # The same when an hmac endpoint (which needs no key) is switched to jwt.
            with httpx.Client(base_url=base_url, headers={"x-api-key": switching_key}, timeout=30) as api_d:
                hmac_endpoint = create_endpoint(api_d, NOWHERE)
                assert jwks(switching).json() == {"keys": []}
                switched = api_d.patch(
                    f"/v1/webhooks/endpoints/{hmac_endpoint['id']}", json={"signature_method": "jwt"}
                )
                assert switched.status_code == 200, switched.text
                assert len(jwks(switching).json()["keys"]) == 1
        token = first.headers["x-webhook-signature"]
        claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=endpoint["id"])
        assert claims["sub"] == tenant
        assert [k.kid for k in store.signing_keys.for_tenant(tenant)] == [jwk["kid"]]
        assert store.signing_keys.for_tenant("tenant_nobody") == []
    finally:
        store.close()


# Scaled down from the defaults (publish 1 h, retire 1 h, receivers caching 5 min): the window keeps the
# same order, cache < publish, and the publish window outlasts the worker's 10 s key cache.
RECEIVER_CACHE_SECONDS = 4
PUBLISH_FOR_SECONDS = 12
RETIRE_AFTER_SECONDS = 3


def _keys_command(stack: Stack, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "cli.keys", *args, "--json"],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _wait_until(moment: datetime) -> None:
    time.sleep(max(0.0, moment.timestamp() - time.time()) + 0.5)


def test_a_receiver_caching_the_jwks_verifies_every_delivery_across_a_key_rotation(
    stack: Stack, api_b: httpx.Client, tmp_path: Path
) -> None:
    endpoint = create_endpoint(api_b, NOWHERE, signature_method="jwt")
    env = _jwt_receiver_env(stack, api_b, endpoint["id"], JWKS_CACHE_SECONDS=str(RECEIVER_CACHE_SECONDS))
    log = tmp_path / "receiver.log"
    jwks_url = env["WEBHOOKS_JWKS_URL"]

    def published() -> list[str]:
        return [k["kid"] for k in httpx.get(jwks_url).json()["keys"]]

    with example_receiver(env, log) as base:
        api_b.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"url": f"{base}/hooks"})

        def deliver(name: str) -> str:
            """One delivery, which must be accepted on its first attempt; the kid that verified it."""
            event_id = emit(api_b, "invoice.created", data={"object": {"id": name}})["id"]
            delivery_id = f"{event_id}:{endpoint['id']}"
            found = wait_delivery(api_b, delivery_id, settled)
            assert [a["status_code"] for a in found["attempts"]] == [200], found["attempts"]
            line = wait_for(
                lambda: re.search(
                    rf"id={re.escape(delivery_id)} \(jwt verified, key (\S+)\)", log.read_text()
                ),
                what=f"the receiver's line for {name}",
            )
            return line[1]

        old = deliver("inv_before")  # the receiver fetches the JWKS: the old key alone
        assert published() == [old]

        [rotation] = _keys_command(
            stack,
            "rotate",
            "--tenant",
            "tenant_b",
            "--publish-for",
            str(PUBLISH_FOR_SECONDS),
            "--retire-after",
            str(RETIRE_AFTER_SECONDS),
        )
        new = rotation["kid"]
        assert published() == [old, new]  # published at once, beside the old one

        # During the publish window the old key still signs, so the JWKS the receiver cached before the
        # rotation verifies; once its cache expires it fetches both keys.
        assert deliver("inv_during") == old

        # The switch: by now the receiver's cache, shorter than the window, holds the new key.
        _wait_until(datetime.fromisoformat(rotation["signs_from"]))
        assert deliver("inv_after") == new
        fetches = [line for line in log.read_text().splitlines() if line.startswith("fetched the JWKS")]
        assert fetches[0] == f"fetched the JWKS: {old}"
        assert fetches[-1] == f"fetched the JWKS: {old}, {new}"

        # Retirement: the old key leaves the JWKS, and deliveries go on.
        _wait_until(datetime.fromisoformat(rotation["retires_others_at"]))
        assert published() == [new]
        states = {k["kid"]: k["state"] for k in _keys_command(stack, "list", "--tenant", "tenant_b")}
        assert (states[old], states[new]) == ("retired", "signing")
        assert deliver("inv_retired") == new
