"""A webhook receiver to try the service with, and to copy from: verify, dedupe, answer 2xx, work later.

    WEBHOOK_SECRET=whsec_... uvicorn examples.receiver:app --port 9000                 # hmac endpoints
    WEBHOOKS_JWKS_URL=http://127.0.0.1:8000/v1/webhooks/jwks/TENANT.json \
    WEBHOOKS_ENDPOINT_ID=ep_... uvicorn examples.receiver:app --port 9000               # jwt endpoints

`make receiver` runs it on port 9000. With neither method set up it cannot verify, says so, and still
acknowledges, so a newcomer sees deliveries arrive before wiring up a secret. Set `FAIL_FIRST=N` to
answer 500 to the first N deliveries and watch the retries in the webhook log.

The three rules it follows (docs/receiving.md):
1. Verify the raw body before parsing it: the signature covers the exact bytes sent. A jwt is verified
   with your tenant's JWKS (`GET /v1/me` gives its path) and must name your endpoint as its audience:
   without that check, a token captured at any other endpoint would pass here.
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

import jwt
from fastapi import BackgroundTasks, FastAPI, HTTPException, Request
from standardwebhooks import Webhook, WebhookVerificationError

TOLERANCE_SECONDS = 5 * 60  # the same window the standardwebhooks library allows for hmac
JWKS_URL = os.environ.get("WEBHOOKS_JWKS_URL")
ENDPOINT_ID = os.environ.get("WEBHOOKS_ENDPOINT_ID")  # the `aud` every token for this receiver carries
ISSUER = os.environ.get("WEBHOOKS_JWT_ISSUER", "flexprice-webhooks")
if JWKS_URL and not ENDPOINT_ID:
    raise SystemExit(
        "WEBHOOKS_JWKS_URL needs WEBHOOKS_ENDPOINT_ID, the id of the endpoint this receiver serves: "
        "a token is only for the endpoint named in its aud claim"
    )


class _Jwks(jwt.PyJWKClient):
    """PyJWT's JWKS client, which says when it fetches: at first use and when its cache has expired."""

    def fetch_data(self) -> Any:
        data = super().fetch_data()
        kids = ", ".join(str(k.get("kid")) for k in data.get("keys", []))
        print(f"fetched the JWKS: {kids}", flush=True)  # noqa: T201
        return data


# The JWKS is reused for JWKS_CACHE_SECONDS (the API's Cache-Control says 300): a key rotation publishes
# the next key an hour before it signs, so a cache that short always holds it in time. An unknown kid
# also makes PyJWKClient fetch again, at most every 30 s.
_jwks = (
    _Jwks(JWKS_URL, lifespan=float(os.environ.get("JWKS_CACHE_SECONDS", "300")), timeout=5)
    if JWKS_URL
    else None
)
app = FastAPI(title="Example webhook receiver")
_seen: set[str] = set()  # a real receiver keeps processed webhook-ids in its database, with a TTL
_failures_left = int(os.environ.get("FAIL_FIRST", "0"))


def _verify_jwt(
    body: bytes, headers: dict[str, str], jwks: jwt.PyJWKClient, audience: str
) -> tuple[dict[str, Any], str]:
    """The payload, and the `kid` of the key that verified it."""
    token = headers.get("x-webhook-signature", "")
    try:
        timestamp = int(headers["webhook-timestamp"])
    except (KeyError, ValueError):
        raise HTTPException(401, "missing or malformed webhook-timestamp") from None
    if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
        raise HTTPException(401, "timestamp outside the 5-minute tolerance")
    try:
        key = jwks.get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError:
        raise HTTPException(503, "cannot fetch the JWKS now; try again later") from None
    except jwt.PyJWKClientError:
        # Another tenant's key, a retired key, or no key of ours at all.
        raise HTTPException(401, "signed with an unknown key: not in this tenant's JWKS") from None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],  # never the algorithm the token names
            issuer=ISSUER,
            audience=audience,  # this endpoint's id: a token made for another endpoint is refused
            options={"require": ["aud", "exp", "iat", "iss", "jti", "sub"]},
        )
    except jwt.InvalidAudienceError:
        raise HTTPException(401, f"the token is for another endpoint, not {audience} (its aud)") from None
    if claims["iat"] != timestamp or claims["jti"] != headers.get("webhook-id"):
        raise HTTPException(401, "headers do not match their signature")
    if claims.get("body_sha256") != hashlib.sha256(body).hexdigest():
        raise HTTPException(401, "body does not match its signature")
    return dict(json.loads(body)), str(key.key_id)


def handle_event(payload: dict[str, Any], webhook_id: str, how: str) -> None:
    """The real work (update your database, send an email, …): runs after the answer has gone."""
    print(f"{payload['webhook_type']:40} id={webhook_id} ({how})", flush=True)  # noqa: T201


@app.post("/{path:path}")
async def receive(request: Request, background: BackgroundTasks) -> dict[str, Any]:
    global _failures_left
    body = await request.body()  # 1. the raw bytes, verified before any JSON parsing
    headers = {k.lower(): v for k, v in request.headers.items()}
    secret = os.environ.get("WEBHOOK_SECRET")
    try:
        # What is required comes from our configuration: the request's header only picks between
        # methods we accept, so leaving it out or changing it never skips verification.
        if _jwks and ENDPOINT_ID and (headers.get("x-webhook-signature-algorithm") == "jwt" or not secret):
            payload, kid = _verify_jwt(body, headers, _jwks, ENDPOINT_ID)
            how = f"jwt verified, key {kid}"
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
