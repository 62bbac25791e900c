"""Is the service able to work: the endpoint store answers, has room to write and opens with our keys,
Temporal answers, a worker polls the queue."""

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
# Less free space than this where a SQLite store's file lives is a full disk: SQLite answers "database or
# disk is full" to the next write that grows its WAL or its file, so every emit (its rate bucket is a
# write) and every endpoint change is a 503. One of the API's transactions writes a few 4 KiB pages; this
# is hundreds of them. Read with statvfs, one system call, as /healthz is polled. A probe write would
# not tell: after a checkpoint SQLite writes into the WAL file's existing space, and such a write
# succeeds on a full disk while the next one that needs more fails.
MIN_FREE_BYTES = 1 << 20
# How often /healthz opens the store's sealed values again: a replica started with other keys, which then
# sealed secrets these keys cannot open, is reported within this (the API refuses to start on it anyway).
KEY_CHECK_SECONDS = 60.0


def store_problem(store: EndpointStore) -> str | None:
    """What keeps the store from working: None when it answers, has room to write, and its secrets open
    with the configured keys (checked again every KEY_CHECK_SECONDS)."""
    store.ping()
    free = store.free_bytes()
    if free is not None and free < MIN_FREE_BYTES:
        return (
            f"cannot write: disk full ({free // 1024} KiB free on the store's filesystem, "
            f"{MIN_FREE_BYTES // 1024} KiB needed)"
        )
    unopened = store.unopened_keys_lately(KEY_CHECK_SECONDS)
    if unopened:
        return "its secrets do not open with the configured encryption keys: " + "; ".join(unopened)
    return None


async def check(client: Client, store: EndpointStore, task_queue: str, *, worker_window: float) -> Health:
    """Each check's answer, stopping at the first that fails (what is behind it cannot be known; a store
    that cannot write fails every emission, whatever Temporal says).

    Temporal lists the pollers it saw lately, each with the time of its latest poll; a live worker polls
    again as soon as a long poll ends empty, so one that has not polled for `worker_window` (longer than
    the server's long poll) is gone.
    """
    try:
        problem = await asyncio.wait_for(asyncio.to_thread(store_problem, store), TIMEOUT.total_seconds())
    except (SQLAlchemyError, OSError, TimeoutError) as err:  # OSError: its directory cannot be read
        reason = "no answer in time" if isinstance(err, TimeoutError) else type(err).__name__
        return Health(False, {"store": f"unreachable: {reason}"})
    if problem is not None:
        return Health(False, {"store": problem})
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
