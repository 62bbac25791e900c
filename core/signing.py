"""Signing deliveries, in the two methods an endpoint can choose.

`hmac` is Standard Webhooks v1: `webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{ts}.{body}")>`,
verifiable with the `standardwebhooks` library in any language. `jwt` is an RS256 token over the body's
SHA-256, verifiable with any JWT library and the JWKS the API publishes. Standard-library code except
for RSA, which needs `cryptography`; receivers may import `verify_hmac` from here.

Exceptions: `WebhookVerificationError` (a signature or timestamp that does not check out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SECRET_PREFIX = "whsec_"
TIMESTAMP_TOLERANCE_SECONDS = 5 * 60


class WebhookVerificationError(Exception):
    """A delivery's signature or timestamp did not verify."""


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign_hmac(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header value for one delivery attempt."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_hmac(
    secret: str, headers: Mapping[str, str], body: str | bytes, *, now: float | None = None
) -> None:
    """Check a Standard Webhooks delivery; raises `WebhookVerificationError` when it is not genuine.

    `headers` keys must be lower-case (as ASGI and most frameworks give them).
    """
    try:
        msg_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"]
    except (KeyError, ValueError):
        raise WebhookVerificationError("missing or malformed webhook-* headers") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > TIMESTAMP_TOLERANCE_SECONDS:
        raise WebhookVerificationError("timestamp outside the 5-minute tolerance")
    try:
        text = body.decode() if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise WebhookVerificationError("body is not UTF-8, so it is not one of ours") from None
    expected = sign_hmac(secret, msg_id, timestamp, text).encode()
    for candidate in signatures.split():
        if hmac.compare_digest(candidate.encode(), expected):
            return
    raise WebhookVerificationError("no matching signature")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class JwtSigner:
    """RS256 signer for the `jwt` method; `kid` is the key's RFC 7638 thumbprint."""

    def __init__(self, private_key: rsa.RSAPrivateKey, *, issuer: str) -> None:
        self._key = private_key
        self.issuer = issuer
        numbers = private_key.public_key().public_numbers()
        self._public_jwk = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
        canonical = json.dumps(self._public_jwk, separators=(",", ":"), sort_keys=True)
        self.kid = _b64url(hashlib.sha256(canonical.encode()).digest())

    @classmethod
    def from_pem(cls, pem: bytes, *, issuer: str) -> JwtSigner:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the jwt signing key must be an RSA private key")
        return cls(key, issuer=issuer)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [{**self._public_jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def sign(self, msg_id: str, timestamp: int, body: str) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        claims = {
            "iss": self.issuer,
            "iat": timestamp,
            "exp": timestamp + TIMESTAMP_TOLERANCE_SECONDS,
            "jti": msg_id,
            "body_sha256": hashlib.sha256(body.encode()).hexdigest(),
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def load_or_create_rsa_key(path: Path) -> bytes:
    """The PEM at `path`, made on first use. Safe when the API and the worker start together."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        os.link(tmp, path)  # atomic and fails if another process won the race: keep theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def signature_headers(
    *,
    method: str,
    msg_id: str,
    timestamp: int,
    body: str,
    secret: str,
    jwt_signer: JwtSigner,
) -> dict[str, str]:
    """The headers that authenticate one attempt, for an endpoint's signature method."""
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if method == "jwt":
        headers["x-webhook-signature"] = jwt_signer.sign(msg_id, timestamp, body)
        headers["x-webhook-signature-algorithm"] = "jwt"
    else:
        headers["webhook-signature"] = sign_hmac(secret, msg_id, timestamp, body)
    return headers
