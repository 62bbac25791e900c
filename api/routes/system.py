"""Health and the public keys of the jwt signature method, one JWKS per tenant."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError

from api.deps import ServicesDep
from api.schemas import ErrorPublic
from core.settings import TENANT_ID_PATTERN
from core.temporal import is_unreachable

router = APIRouter(tags=["system"])
_TIMEOUT = timedelta(seconds=3)
POLLER_FRESHNESS_SECONDS = 90
# How long a receiver or a proxy may reuse a JWKS. Key rotation publishes the next key an hour before it
# signs (core/keys.py), far longer than this, so a receiver that honours it never misses a key.
JWKS_MAX_AGE_SECONDS = 300


def jwks_path(tenant: str) -> str:
    return f"/v1/webhooks/jwks/{tenant}.json"


@router.get("/healthz")
async def healthz(services: ServicesDep) -> JSONResponse:
    """200 when the store and Temporal answer and a worker polls the task queue; 503 with the reason."""
    try:
        await asyncio.wait_for(asyncio.to_thread(services.store.ping), _TIMEOUT.total_seconds())
    except (SQLAlchemyError, TimeoutError) as err:
        reason = "no answer in time" if isinstance(err, TimeoutError) else type(err).__name__
        return JSONResponse({"status": "unavailable", "store": f"unreachable: {reason}"}, 503)
    try:
        queue = await services.temporal.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=services.temporal.namespace,
                task_queue=TaskQueue(name=services.settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=_TIMEOUT,
        )
    except (RPCError, RuntimeError) as err:
        if not is_unreachable(err) and not isinstance(err, RPCError):
            raise
        return JSONResponse({"status": "unavailable", "store": "ok", "temporal": f"unreachable: {err}"}, 503)
    # Temporal lists pollers seen in the last few minutes; a live worker's long poll renews within ~70 s.
    now = time.time()
    live = [p for p in queue.pollers if now - p.last_access_time.ToSeconds() < POLLER_FRESHNESS_SECONDS]
    if not live:
        return JSONResponse(
            {
                "status": "unavailable",
                "store": "ok",
                "temporal": "ok",
                "workers": f"no worker has polled the task queue in the last {POLLER_FRESHNESS_SECONDS} s",
            },
            503,
        )
    return JSONResponse({"status": "ok", "store": "ok", "temporal": "ok", "workers": len(live)})


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
