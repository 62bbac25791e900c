"""A webhook receiver to try the service with, and to copy from: verify, dedupe, answer 2xx, work later.

    WEBHOOK_SECRET=whsec_... uvicorn examples.receiver:app --port 9000        # hmac endpoints
    WEBHOOKS_JWKS_URL=http://127.0.0.1:8000/v1/webhooks/jwks.json uvicorn ...  # jwt endpoints

`make receiver` runs it on port 9000. With neither variable set it cannot verify, says so, and still
acknowledges, so a newcomer sees deliveries arrive before wiring up a secret. Set `FAIL_FIRST=N` to
answer 500 to the first N deliveries and watch the retries in the webhook log.

The three rules it follows (README, "Receiving webhooks"):
1. Verify the raw body before parsing it: the signature covers the exact bytes sent.
2. Deduplicate by `webhook-id`: every attempt of one delivery carries the same id, and delivery is at
   least once, so the same event can arrive twice.
3. Answer 2xx fast and do the work afterwards: a slow answer times out (15 s) and is retried.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

import httpx
import jwt
from fastapi import BackgroundTasks, FastAPI, HTTPException, Request
from standardwebhooks import Webhook, WebhookVerificationError

TOLERANCE_SECONDS = 5 * 60  # the same window the standardwebhooks library allows for hmac

app = FastAPI(title="Example webhook receiver")
_seen: set[str] = set()  # a real receiver keeps processed webhook-ids in its database, with a TTL
_failures_left = int(os.environ.get("FAIL_FIRST", "0"))
_jwks: dict[str, dict[str, Any]] = {}  # kid → JWK, fetched once and again for an unknown kid


def _signing_key(kid: str, jwks_url: str) -> jwt.PyJWK:
    if kid not in _jwks:  # a new key (rotation): fetch the set again
        keys = httpx.get(jwks_url, timeout=5).json()["keys"]
        _jwks.update({k["kid"]: k for k in keys})
    if kid not in _jwks:
        raise HTTPException(401, "signed with an unknown key")
    return jwt.PyJWK(_jwks[kid])


def _verify_jwt(body: bytes, headers: dict[str, str], jwks_url: str) -> dict[str, Any]:
    token = headers.get("x-webhook-signature", "")
    try:
        timestamp = int(headers["webhook-timestamp"])
    except (KeyError, ValueError):
        raise HTTPException(401, "missing or malformed webhook-timestamp") from None
    if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
        raise HTTPException(401, "timestamp outside the 5-minute tolerance")
    kid = jwt.get_unverified_header(token).get("kid", "")
    claims = jwt.decode(
        token,
        _signing_key(kid, jwks_url),
        algorithms=["RS256"],
        issuer=os.environ.get("WEBHOOKS_JWT_ISSUER", "flexprice-webhooks"),
        options={"require": ["exp", "iat", "iss", "jti"]},
    )
    if claims["iat"] != timestamp or claims["jti"] != headers.get("webhook-id"):
        raise HTTPException(401, "headers do not match their signature")
    if claims.get("body_sha256") != hashlib.sha256(body).hexdigest():
        raise HTTPException(401, "body does not match its signature")
    return dict(json.loads(body))


def handle_event(payload: dict[str, Any], webhook_id: str, how: str) -> None:
    """The real work (update your database, send an email, …): runs after the answer has gone."""
    print(f"{payload['webhook_type']:40} id={webhook_id} ({how})", flush=True)  # noqa: T201


@app.post("/{path:path}")
async def receive(request: Request, background: BackgroundTasks) -> dict[str, Any]:
    global _failures_left
    body = await request.body()  # 1. the raw bytes, verified before any JSON parsing
    headers = {k.lower(): v for k, v in request.headers.items()}
    secret, jwks_url = os.environ.get("WEBHOOK_SECRET"), os.environ.get("WEBHOOKS_JWKS_URL")
    try:
        # What is required comes from our configuration: the request's header only picks between
        # methods we accept, so leaving it out or changing it never skips verification.
        if jwks_url and (headers.get("x-webhook-signature-algorithm") == "jwt" or not secret):
            payload, how = _verify_jwt(body, headers, jwks_url), "jwt verified"
        elif secret:
            payload, how = Webhook(secret).verify(body, headers), "hmac verified"
        else:
            payload, how = json.loads(body), "NOT verified: set WEBHOOK_SECRET or WEBHOOKS_JWKS_URL"
    except (WebhookVerificationError, jwt.PyJWTError) as err:
        raise HTTPException(401, f"signature check failed: {err}") from None
    if _failures_left > 0:
        _failures_left -= 1
        raise HTTPException(500, "failing on purpose (FAIL_FIRST)")
    webhook_id = headers.get("webhook-id", "")
    if webhook_id in _seen:  # 2. already handled: acknowledge again, do nothing again
        print(f"{payload['webhook_type']:40} id={webhook_id} ({how}, duplicate: ignored)", flush=True)  # noqa: T201
        return {"received": True, "duplicate": True}
    _seen.add(webhook_id)
    background.add_task(handle_event, payload, webhook_id, how)  # 3. answer now, work after
    return {"received": True, "duplicate": False}
