"""Signing, checked by third-party verifiers: `standardwebhooks` for hmac, PyJWT for jwt."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from standardwebhooks import Webhook
from standardwebhooks import WebhookVerificationError as StdVerificationError

from core.signing import (
    FixedKey,
    JwtSigner,
    SigningKey,
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
    signature = Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, UTC), BODY)
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


def _signer(tmp_path: Path, name: str = "key.pem") -> JwtSigner:
    return JwtSigner.from_pem(load_or_create_rsa_key(tmp_path / name), issuer="flexprice-webhooks")


def test_jwt_is_bound_to_its_delivery_endpoint_and_tenant(tmp_path: Path) -> None:
    signer = _signer(tmp_path)
    ts = int(time.time())
    token = signer.sign(tenant="acme", endpoint_id="ep_1", msg_id="evt_1:ep_1", timestamp=ts, body=BODY)
    [jwk] = signer.jwks("acme")["keys"]
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": jwk["kid"]}
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=["RS256"], issuer="flexprice-webhooks", audience="ep_1")
    assert claims == {
        "iss": "flexprice-webhooks",
        "sub": "acme",
        "aud": "ep_1",
        "iat": ts,
        "exp": ts + 300,
        "jti": "evt_1:ep_1",
        "body_sha256": hashlib.sha256(BODY.encode()).hexdigest(),
    }
    # Made for ep_1: a receiver of any other endpoint refuses it, and so does one that forgets to say
    # which endpoint it is (PyJWT refuses a token with an aud when no audience is expected).
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key, algorithms=["RS256"], audience="ep_2")
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key, algorithms=["RS256"])
    other = _signer(tmp_path, "other.pem")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, jwt.PyJWK(other.jwks("acme")["keys"][0]).key, algorithms=["RS256"], audience="ep_1")


def test_jwk_is_pyjwts_own_export_with_a_thumbprint_kid() -> None:
    key = SigningKey.generate()
    jwk = key.public_jwk()
    assert set(jwk) == {"kty", "n", "e", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["use"], jwk["alg"]) == ("RSA", "sig", "RS256")
    assert jwt.PyJWKSet.from_dict({"keys": [jwk]})[key.kid].key_id == key.kid
    # RFC 7638: the same key always has the same kid, whoever computes it.
    assert SigningKey.from_pem(key.to_pem()).kid == key.kid
    assert SigningKey.generate().kid != key.kid


def test_rsa_key_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "jwt.pem"
    first = load_or_create_rsa_key(path)
    assert load_or_create_rsa_key(path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_signature_headers_per_method(tmp_path: Path) -> None:
    signer = JwtSigner(FixedKey(SigningKey.generate()), issuer="i")
    secret = generate_secret()
    common = {
        "msg_id": "m",
        "timestamp": 1,
        "body": BODY,
        "secret": secret,
        "jwt_signer": signer,
        "tenant": "acme",
        "endpoint_id": "ep_1",
    }
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
    claims = jwt.decode(jwt_headers["x-webhook-signature"], options={"verify_signature": False})
    assert (claims["aud"], claims["sub"], claims["jti"]) == ("ep_1", "acme", "m")


def test_a_body_that_is_not_utf8_is_a_verification_error() -> None:
    secret = generate_secret()
    headers = {"webhook-id": "m", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,x"}
    with pytest.raises(WebhookVerificationError):
        verify_hmac(secret, headers, b"\xff\xfe")
