"""Health and the public keys of the jwt signature method, one JWKS per tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from core.settings import TENANT_ID_PATTERN
from service import health

router = APIRouter(tags=["system"])
# How long a receiver or a proxy may reuse a JWKS. Key rotation publishes the next key an hour before it
# signs (store/keys.py), far longer than this, so a receiver that honours it never misses a key.
JWKS_MAX_AGE_SECONDS = 300


@router.get("/healthz")
async def healthz(services: ServicesDep) -> JSONResponse:
    """200 when the store answers and can write, Temporal answers and a worker polls the task queue; 503
    with the reason."""
    settings = services.settings
    found = await health.check(
        services.temporal, services.store, settings.task_queue, worker_window=settings.worker_health_window
    )
    return JSONResponse(
        {"status": "ok" if found.ok else "unavailable", **found.checks}, 200 if found.ok else 503
    )


@router.get("/v1/webhooks/jwks/{tenant}.json")
def jwks(tenant: str, services: ServicesDep, response: Response) -> dict[str, Any]:
    """A tenant's public keys for its jwt-signed deliveries; public, so receivers need no API key."""
    # Nothing is made here (a tenant's first key comes with its first jwt endpoint), and a name nobody
    # configured gets what a tenant without keys yet gets: an empty set, with the same headers. A 404,
    # or a key made on fetch, told anyone which tenants exist.
    found = (
        services.jwt_signer.jwks(tenant, create=False)
        if TENANT_ID_PATTERN.fullmatch(tenant)
        else {"keys": []}
    )
    # An empty set is not to be kept: the key its tenant's first jwt endpoint makes must be in the next
    # fetch, not 5 minutes later.
    response.headers["cache-control"] = (
        f"public, max-age={JWKS_MAX_AGE_SECONDS}" if found["keys"] else "no-cache"
    )
    return found


@router.get("/v1/webhooks/jwks.json", include_in_schema=False)
def jwks_of_every_tenant() -> None:
    """Gone: it served one key for every tenant."""
    raise HTTPException(
        410,
        "each tenant has its own signing keys now: fetch GET /v1/webhooks/jwks/{tenant}.json (GET /v1/me "
        "gives your tenant and that path) and check that each token's aud is your endpoint's id",
    )
