"""Signing, checked by third-party verifiers: `standardwebhooks` for hmac, PyJWT for jwt."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import jwt
import pytest
from standardwebhooks import Webhook
from standardwebhooks import WebhookVerificationError as StdVerificationError

from core.signing import (
    JwtSigner,
    WebhookVerificationError,
    generate_secret,
    load_or_create_rsa_key,
    sign_hmac,
    signature_headers,
    verify_hmac,
)

BODY = json.dumps({"webhook_type": "invoice.created", "object_type": "invoice", "data": {"object": {}}})


def test_secret_format() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 64


def test_hmac_signature_verifies_with_standardwebhooks() -> None:
    secret = generate_secret()
    ts = int(time.time())
    headers = {"webhook-id": "evt_1:ep_1", "webhook-timestamp": str(ts)}
    headers["webhook-signature"] = sign_hmac(secret, "evt_1:ep_1", ts, BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(StdVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)
    with pytest.raises(StdVerificationError):
        Webhook(secret).verify(BODY.replace("invoice.created", "invoice.voided"), headers)


def test_our_verifier_accepts_standardwebhooks_signatures_and_rejects_forgeries() -> None:
    secret = generate_secret()
    now = int(time.time())
    signature = Webhook(secret).sign("msg_1", _dt(now), BODY)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    verify_hmac(secret, headers, BODY)
    verify_hmac(secret, {**headers, "webhook-signature": "v2,other " + signature}, BODY.encode())
    with pytest.raises(WebhookVerificationError):
        verify_hmac(secret, headers, BODY + " ")
    stale = now - 301
    old = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stale),
        "webhook-signature": sign_hmac(secret, "msg_1", stale, BODY),
    }
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_hmac(secret, old, BODY)
    with pytest.raises(WebhookVerificationError):
        verify_hmac(secret, {"webhook-id": "msg_1"}, BODY)
    # A malformed signature is a refusal, not a crash inside the library.
    with pytest.raises(WebhookVerificationError):
        verify_hmac(secret, {**headers, "webhook-signature": "v1,bogus"}, BODY)


def _dt(ts: int):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)


def test_jwt_signature_verifies_with_pyjwt_and_the_jwks(tmp_path: Path) -> None:
    signer = JwtSigner.from_pem(load_or_create_rsa_key(tmp_path / "key.pem"), issuer="flexprice-webhooks")
    ts = int(time.time())
    token = signer.sign("evt_1:ep_1", ts, BODY)
    [jwk] = signer.jwks()["keys"]
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"] == signer.kid
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=["RS256"], issuer="flexprice-webhooks")
    assert claims["jti"] == "evt_1:ep_1"
    assert claims["iat"] == ts
    assert claims["body_sha256"] == hashlib.sha256(BODY.encode()).hexdigest()
    other = JwtSigner.from_pem(load_or_create_rsa_key(tmp_path / "other.pem"), issuer="x")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, jwt.PyJWK(other.jwks()["keys"][0]).key, algorithms=["RS256"])


def test_rsa_key_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "jwt.pem"
    first = load_or_create_rsa_key(path)
    assert load_or_create_rsa_key(path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_signature_headers_per_method(tmp_path: Path) -> None:
    signer = JwtSigner.from_pem(load_or_create_rsa_key(tmp_path / "k.pem"), issuer="i")
    secret = generate_secret()
    common = {"msg_id": "m", "timestamp": 1, "body": BODY, "secret": secret, "jwt_signer": signer}
    hmac_headers = signature_headers(method="hmac", **common)  # type: ignore[arg-type]
    assert set(hmac_headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    jwt_headers = signature_headers(method="jwt", **common)  # type: ignore[arg-type]
    assert set(jwt_headers) == {
        "webhook-id",
        "webhook-timestamp",
        "x-webhook-signature",
        "x-webhook-signature-algorithm",
    }
    assert jwt_headers["x-webhook-signature-algorithm"] == "jwt"


def test_a_body_that_is_not_utf8_is_a_verification_error() -> None:
    secret = generate_secret()
    headers = {"webhook-id": "m", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,x"}
    with pytest.raises(WebhookVerificationError):
        verify_hmac(secret, headers, b"\xff\xfe")
