"""Health and the public keys of the jwt signature method, one JWKS per tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import ErrorPublic
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


@router.get(
    "/v1/webhooks/jwks/{tenant}.json",
    responses={404: {"model": ErrorPublic, "description": "No such tenant (or one with no keys yet)"}},
)
def jwks(tenant: str, services: ServicesDep, response: Response) -> dict[str, Any]:
    """A tenant's public keys for its jwt-signed deliveries; public, so receivers need no API key."""
    # A tenant gets its first key here if it has none; a tenant whose API key was withdrawn may still have
    # deliveries in flight, so its keys are served, but no key is ever made for a name nobody configured.
    found = (
        services.jwt_signer.jwks(tenant, create=tenant in services.settings.tenant_ids)
        if TENANT_ID_PATTERN.fullmatch(tenant)
        else {"keys": []}
    )
    if not found["keys"]:
        raise HTTPException(404, f"no tenant {tenant!r}: GET /v1/me says which tenant your API key is for")
    response.headers["cache-control"] = f"public, max-age={JWKS_MAX_AGE_SECONDS}"
    return found


@router.get("/v1/webhooks/jwks.json", include_in_schema=False)
def jwks_of_every_tenant() -> None:
    """Gone: it served one key for every tenant."""
    raise HTTPException(
        410,
        "each tenant has its own signing keys now: fetch GET /v1/webhooks/jwks/{tenant}.json (GET /v1/me "
        "gives your tenant and that path) and check that each token's aud is your endpoint's id",
    )
