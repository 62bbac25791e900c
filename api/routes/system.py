"""Health and the public keys of the jwt signature method."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
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
    """200 when Temporal answers and a worker polls the task queue; 503 with the reason otherwise."""
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
        return JSONResponse({"status": "unavailable", "temporal": f"unreachable: {err}"}, 503)
    # Temporal lists pollers seen in the last few minutes; a live worker's long poll renews within ~70 s.
    now = time.time()
    live = [p for p in queue.pollers if now - p.last_access_time.ToSeconds() < POLLER_FRESHNESS_SECONDS]
    if not live:
        return JSONResponse(
            {"status": "unavailable", "temporal": "ok", "workers": "no worker polls the task queue"}, 503
        )
    return JSONResponse({"status": "ok", "temporal": "ok", "workers": len(live)})


@router.get("/v1/webhooks/jwks.json")
def jwks(services: ServicesDep) -> dict[str, Any]:
    """Public keys that verify jwt-signed deliveries; public, so receivers need no API key."""
    return services.jwt_signer.jwks()
