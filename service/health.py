"""Is the service able to work: the endpoint store answers, Temporal answers, a worker polls the queue."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from core.temporal import is_unreachable
from service.models import Health
from store.database import EndpointStore

TIMEOUT = timedelta(seconds=3)


async def check(client: Client, store: EndpointStore, task_queue: str, *, worker_window: float) -> Health:
    """Each check's answer, stopping at the first that fails (what is behind it cannot be known).

    Temporal lists the pollers it saw lately, each with the time of its latest poll; a live worker polls
    again as soon as a long poll ends empty, so one that has not polled for `worker_window` (longer than
    the server's long poll) is gone.
    """
    try:
        await asyncio.wait_for(asyncio.to_thread(store.ping), TIMEOUT.total_seconds())
    except (SQLAlchemyError, TimeoutError) as err:
        reason = "no answer in time" if isinstance(err, TimeoutError) else type(err).__name__
        return Health(False, {"store": f"unreachable: {reason}"})
    try:
        queue = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=TIMEOUT,
        )
    except (RPCError, RuntimeError) as err:
        if not is_unreachable(err) and not isinstance(err, RPCError):
            raise
        return Health(False, {"store": "ok", "temporal": f"unreachable: {err}"})
    now = time.time()
    live = [p for p in queue.pollers if now - p.last_access_time.ToSeconds() < worker_window]
    if not live:
        workers = f"no worker has polled the task queue in the last {worker_window:g} s"
        return Health(False, {"store": "ok", "temporal": "ok", "workers": workers})
    return Health(True, {"store": "ok", "temporal": "ok", "workers": len(live)})
