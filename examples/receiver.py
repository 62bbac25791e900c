"""A webhook receiver to try the service with: verifies each delivery, dedupes, prints it, answers 2xx.

    WEBHOOK_SECRET=whsec_... uvicorn examples.receiver:app --port 9000        # hmac endpoints
    WEBHOOKS_JWKS_URL=http://127.0.0.1:8000/v1/webhooks/jwks.json uvicorn ...  # jwt endpoints

`make receiver` runs it on port 9000. With neither variable set it cannot verify, says so, and still
acknowledges, so a newcomer sees deliveries arrive before wiring up a secret. Set `FAIL_FIRST=N` to
answer 500 to the first N deliveries and watch the retries in the webhook log.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import httpx
import jwt
from fastapi import FastAPI, HTTPException, Request
from standardwebhooks import Webhook, WebhookVerificationError

app = FastAPI(title="Example webhook receiver")
_seen: set[str] = set()  # a real receiver keeps processed webhook-ids in its database
_failures_left = int(os.environ.get("FAIL_FIRST", "0"))


def _verify_jwt(body: bytes, headers: dict[str, str], jwks_url: str) -> dict[str, Any]:
    token = headers.get("x-webhook-signature", "")
    keys = httpx.get(jwks_url, timeout=5).json()["keys"]
    kid = jwt.get_unverified_header(token).get("kid")
    [jwk] = [k for k in keys if k["kid"] == kid] or [None]
    if jwk is None:
        raise HTTPException(401, "unknown signing key")
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], leeway=300)
    if claims["body_sha256"] != hashlib.sha256(body).hexdigest():
        raise HTTPException(401, "body does not match its signature")
    if claims["jti"] != headers.get("webhook-id"):
        raise HTTPException(401, "webhook-id does not match its signature")
    return dict(json.loads(body))


@app.post("/{path:path}")
async def receive(request: Request) -> dict[str, Any]:
    global _failures_left
    body = await request.body()  # verify the raw bytes, before any JSON parsing
    headers = {k.lower(): v for k, v in request.headers.items()}
    secret, jwks_url = os.environ.get("WEBHOOK_SECRET"), os.environ.get("WEBHOOKS_JWKS_URL")
    try:
        if headers.get("x-webhook-signature-algorithm") == "jwt" and jwks_url:
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
    duplicate = webhook_id in _seen
    _seen.add(webhook_id)
    print(  # noqa: T201
        f"{payload['webhook_type']:40} id={webhook_id} ({how}{', duplicate' if duplicate else ''})",
        flush=True,
    )
    return {"received": True, "duplicate": duplicate}
