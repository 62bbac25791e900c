"""Health and the public keys of the jwt signature method."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError

from api.deps import ServicesDep
from core.temporal import is_unreachable

router = APIRouter(tags=["system"])
_TIMEOUT = timedelta(seconds=3)
POLLER_FRESHNESS_SECONDS = 90


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


@router.get("/v1/webhooks/jwks.json")
def jwks(services: ServicesDep) -> dict[str, Any]:
    """Public keys that verify jwt-signed deliveries; public, so receivers need no API key."""
    return services.jwt_signer.jwks()
