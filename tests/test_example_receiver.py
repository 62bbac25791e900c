"""examples/receiver.py as a real server (uvicorn on a free port): it accepts our deliveries, hmac and
jwt, and rejects what it must, for requests we sign ourselves with core/signing.py and the stack's keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from core.signing import FixedKey, JwtSigner, SigningKey, generate_secret, signature_headers
from launcher import Stack, free_port
from store.database import EndpointStore
from store.keys import TenantKeys
from tests.conftest import TEST_KEYRING, create_endpoint, emit, settled, wait_delivery, wait_for

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def example_receiver(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    ours = {"WEBHOOK_SECRET", "FAIL_FIRST", "WEBHOOKS_JWKS_URL", "WEBHOOKS_ENDPOINT_ID", "JWKS_CACHE_SECONDS"}
    full_env = {**{k: v for k, v in os.environ.items() if k not in ours}, **env}
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "examples.receiver:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=full_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, what="the example receiver")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _post(url: str, body: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=body.encode(), headers={**headers, "content-type": "application/json"})


def _signed(
    method: str,
    *,
    body: str,
    secret: str,
    signer: JwtSigner,
    msg_id: str,
    at: float,
    endpoint_id: str = "ep_x",
    tenant: str = "tenant_a",
) -> dict[str, str]:
    return signature_headers(
        method=method,
        msg_id=msg_id,
        timestamp=int(at),
        body=body,
        secret=secret,
        jwt_signer=signer,
        tenant=tenant,
        endpoint_id=endpoint_id,
    )


@pytest.fixture
def stack_signer(stack: Stack) -> Iterator[JwtSigner]:
    """A signer with the keys the stack signs with: every tenant's, from its endpoint store."""
    store = EndpointStore(stack.settings.sqlalchemy_url, TEST_KEYRING)
    yield JwtSigner(TenantKeys(store.signing_keys), issuer=stack.settings.jwt_issuer)
    store.close()


def test_example_receiver_accepts_our_deliveries_and_rejects_forgeries(
    stack: Stack, api: httpx.Client, stack_signer: JwtSigner, tmp_path: Path
) -> None:
    # The endpoints exist first: the receiver is started with the hmac one's secret and the jwt one's id,
    # as in the quick start.
    hmac_endpoint = create_endpoint(api, "http://127.0.0.1:9/placeholder")
    jwt_endpoint = create_endpoint(api, "http://127.0.0.1:9/placeholder", signature_method="jwt")
    env = {
        "WEBHOOK_SECRET": hmac_endpoint["secret"],
        "WEBHOOKS_JWKS_URL": f"{stack.api_url}/v1/webhooks/jwks/tenant_a.json",
        "WEBHOOKS_ENDPOINT_ID": jwt_endpoint["id"],
        "FAIL_FIRST": "1",
    }
    log = tmp_path / "receiver.log"
    with example_receiver(env, log) as base:
        api.patch(f"/v1/webhooks/endpoints/{hmac_endpoint['id']}", json={"url": f"{base}/hmac"})
        api.patch(f"/v1/webhooks/endpoints/{jwt_endpoint['id']}", json={"url": f"{base}/jwt"})

        event_id = emit(api, "invoice.created", data={"object": {"id": "inv_ex"}})["id"]
        hmac_delivery = wait_delivery(api, f"{event_id}:{hmac_endpoint['id']}", settled)
        jwt_delivery = wait_delivery(api, f"{event_id}:{jwt_endpoint['id']}", settled)
        # FAIL_FIRST=1: whichever came first got a 500 and was retried; both end acknowledged.
        assert hmac_delivery["status"] == jwt_delivery["status"] == "succeeded"
        codes = sorted(a["status_code"] for d in (hmac_delivery, jwt_delivery) for a in d["attempts"])
        assert codes == [200, 200, 500]
        printed = str(wait_for(lambda: log.read_text().count(f"id={event_id}:") >= 2 and log.read_text()))
        assert f"id={event_id}:{hmac_endpoint['id']} (hmac verified)" in printed
        assert f"id={event_id}:{jwt_endpoint['id']} (jwt verified, key " in printed

        # A resend has the same webhook-id: acknowledged again, not handled again.
        delivery_id = f"{event_id}:{hmac_endpoint['id']}"
        api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")
        attempts = len(hmac_delivery["attempts"]) + 1
        wait_delivery(api, delivery_id, lambda d: len(d["attempts"]) == attempts and settled(d))
        wait_for(lambda: "duplicate: ignored" in log.read_text(), what="the duplicate line")

        body = json.dumps(
            {"webhook_type": "invoice.voided", "object_type": "invoice", "data": {"object": {}}}
        )
        now = time.time()
        secret = hmac_endpoint["secret"]

        def send(
            method: str,
            path: str,
            *,
            sign_body: str = body,
            at: float = now,
            key: str = secret,
            signer: JwtSigner = stack_signer,
            msg_id: str = "evt_forged:ep_x",
            audience: str = jwt_endpoint["id"],
            tenant: str = "tenant_a",
        ) -> httpx.Response:
            headers = _signed(
                method,
                body=sign_body,
                secret=key,
                signer=signer,
                msg_id=msg_id,
                at=at,
                endpoint_id=audience,
                tenant=tenant,
            )
            return _post(f"{base}{path}", body, headers)

        # Genuine requests signed here pass, so each rejection below is for its one reason.
        assert send("hmac", "/hmac", msg_id="evt_ok1:ep_x").status_code == 200
        assert send("jwt", "/jwt", msg_id="evt_ok2:ep_x").status_code == 200

        tampered = body.replace("invoice.voided", "invoice.created")
        other_key = JwtSigner(FixedKey(SigningKey.generate()), issuer="flexprice-webhooks")
        rejected = {
            "hmac tampered body": send("hmac", "/hmac", sign_body=tampered),
            "hmac stale timestamp": send("hmac", "/hmac", at=now - 10 * 60),
            "hmac future timestamp": send("hmac", "/hmac", at=now + 10 * 60),
            "hmac wrong secret": send("hmac", "/hmac", key=generate_secret()),
            "jwt tampered body": send("jwt", "/jwt", sign_body=tampered),
            "jwt stale timestamp": send("jwt", "/jwt", at=now - 10 * 60),
            "jwt unknown key": send("jwt", "/jwt", signer=other_key),
            "jwt another tenant's key": send("jwt", "/jwt", tenant="tenant_b"),
            "jwt for another endpoint": send("jwt", "/jwt", audience=hmac_endpoint["id"]),
        }
        assert {reason: r.status_code for reason, r in rejected.items()} == {
            reason: 401 for reason in rejected
        }
        assert "unknown key" in rejected["jwt unknown key"].text
        assert "body does not match" in rejected["jwt tampered body"].text
        assert "unknown key" in rejected["jwt another tenant's key"].text
        assert "for another endpoint" in rejected["jwt for another endpoint"].text
        # A jwt whose headers were swapped onto another delivery id does not pass either.
        headers = _signed(
            "jwt",
            body=body,
            secret=secret,
            signer=stack_signer,
            msg_id="evt_a:ep_x",
            at=now,
            endpoint_id=jwt_endpoint["id"],
        )
        headers["webhook-id"] = "evt_b:ep_x"
        assert _post(f"{base}/jwt", body, headers).status_code == 401


def test_a_receiver_set_up_for_jwt_refuses_requests_that_skip_the_jwt(
    stack: Stack, stack_signer: JwtSigner, tmp_path: Path
) -> None:
    env = {
        "WEBHOOKS_JWKS_URL": f"{stack.api_url}/v1/webhooks/jwks/tenant_a.json",
        "WEBHOOKS_ENDPOINT_ID": "ep_mine",
    }
    body = '{"webhook_type":"invoice.created","object_type":"invoice","data":{"object":{}}}'
    with example_receiver(env, tmp_path / "receiver.log") as url:
        # No signature headers at all, and an hmac signature it has no secret for: both refused.
        assert _post(f"{url}/hooks", body, {"webhook-id": "x", "webhook-timestamp": "1"}).status_code == 401
        forged = _signed(
            "hmac", body=body, secret=generate_secret(), signer=stack_signer, msg_id="m", at=time.time()
        )
        assert _post(f"{url}/hooks", body, forged).status_code == 401
        genuine = _signed(
            "jwt",
            body=body,
            secret="",
            signer=stack_signer,
            msg_id="m2",
            at=time.time(),
            endpoint_id="ep_mine",
        )
        assert _post(f"{url}/hooks", body, genuine).status_code == 200


def test_a_jwt_receiver_without_its_endpoint_id_refuses_to_start(stack: Stack, tmp_path: Path) -> None:
    env = {**os.environ, "WEBHOOKS_JWKS_URL": f"{stack.api_url}/v1/webhooks/jwks/tenant_a.json"}
    env.pop("WEBHOOKS_ENDPOINT_ID", None)
    done = subprocess.run(
        [sys.executable, "-c", "import examples.receiver"], env=env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode != 0
    assert b"WEBHOOKS_ENDPOINT_ID" in done.stderr
