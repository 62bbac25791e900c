"""Entry points of the bench's variant processes: the product's worker or API with one thing changed.

Each change is made here, in the bench's own process, never through a product setting:

- `python -m bench.workers local-first`: the product worker with `LocalFirstDeliveryWorkflow`;
- `python -m bench.workers workflows-only`: the product's workflows and no activity, so that attempts
  queue up in Temporal (the slot-size scenario starts its real worker on a queue already full);
- `python -m bench.workers plaintext`: the product worker without the payload codec;
- `python -m bench.workers no-health`: the product worker without counting each attempt in its
  endpoint's health (the store write behind auto-disable and operational webhooks);
- `python -m bench.workers no-flow`: the product worker without its endpoints' shared limits (the
  admission and release of each attempt, store/flow.py);
- `python -m bench.workers quiet-close|bare-start`: the product worker with `QuietCloseDeliveryWorkflow`
  or `BareStartEventWorkflow` (bench/variants.py);
- `python -m bench.workers no-eager`: the product worker with no activity handed back eagerly, every
  first attempt through the task queue as before issue 25's item 2 (workflows/eager.py);
- `python -m bench.workers no-tracing`: the product worker with no tracing code at all (`without_tracing`),
  the baseline against which tracing off must cost nothing measurable (issue 24);
- `uvicorn --factory bench.workers:plaintext_app`: the API without the payload codec;
- `uvicorn --factory bench.workers:window0_app`: the API with a retry window of 0 (deliveries close as
  soon as their schedule ends);
- `uvicorn --factory bench.workers:untraced_app`: the API with no tracing code at all;
- `uvicorn --factory bench.workers:eager_app`: the API with a worker of the product's workflows in its
  own process, starting events with eager workflow start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Any
from unittest import mock

from fastapi import FastAPI
from temporalio.client import Client
from temporalio.worker import Worker

import api.main
import core.logs
import core.temporal
import worker
from activities.delivery import DeliveryActivities
from bench.variants import BareStartEventWorkflow, LocalFirstDeliveryWorkflow, QuietCloseDeliveryWorkflow
from core import tracing
from core.settings import Settings
from core.temporal import connect
from domain.models import AttemptRecord
from store.database import Endpoint
from store.flow import Lease
from workflows.delivery import DeliveryWorkflow
from workflows.event import EventWorkflow

_plaintext_connect = functools.partial(connect, encrypted=False)


def _worker_without_activities(client: Client, **options: Any) -> Worker:
    return Worker(client, **{**options, "activities": []})


def _worker_never_eager(client: Client, **options: Any) -> Worker:
    return Worker(client, **{**options, "disable_eager_activity_execution": True})


async def _no_health(self: DeliveryActivities, endpoint: Endpoint, record: AttemptRecord) -> None:
    """What `_keep_health` costs, measured by not doing it."""


async def _no_admission(self: DeliveryActivities, request: Any, endpoint: Endpoint, earlier: Any) -> Any:
    """What an attempt's admission costs, measured by not asking: a lease nobody holds."""
    return Lease("bench-no-flow", endpoint.id, 0.0), None


async def _no_release(self: DeliveryActivities, *args: Any) -> None:
    """What an attempt's release costs, measured by not doing it."""


@contextlib.contextmanager
def _no_span(request: Any) -> Iterator[None]:
    yield None


def _nothing(*args: Any) -> None:
    return None


def without_tracing() -> AbstractContextManager[Any]:
    """Every call the product makes into core/tracing.py replaced by nothing: no provider is looked for,
    no interceptor is asked for, no span (not even the API's no-op one) is made around an attempt, no
    `traceparent` injected, no trace id read for the attempt log or a log line. What is left of tracing
    in the product is the `with` around an attempt, here a bare generator."""
    stack = ExitStack()
    for target, name, value in (
        (tracing, "attempt_span", _no_span),
        (tracing, "end_attempt", _nothing),
        (tracing, "end_try_held", _nothing),
        (tracing, "end_try_failed", _nothing),
        (tracing, "inject_traceparent", _nothing),
        (tracing, "current_trace_id", _nothing),
        (core.logs, "current_ids", _nothing),
        (core.temporal, "temporal_interceptors", list),
        (worker, "configure_tracing", lambda name: False),
        (worker, "shutdown_tracing", _nothing),
        (api.main, "configure_tracing", lambda name: False),
    ):
        stack.enter_context(mock.patch.object(target, name, value))
    return stack


def _change(kind: str) -> AbstractContextManager[Any]:
    if kind == "local-first":
        return mock.patch.object(worker, "DeliveryWorkflow", LocalFirstDeliveryWorkflow)
    if kind == "workflows-only":
        return mock.patch.object(worker, "Worker", _worker_without_activities)
    if kind == "plaintext":
        return mock.patch.object(worker, "connect", _plaintext_connect)
    if kind == "no-health":
        return mock.patch.object(DeliveryActivities, "_keep_health", _no_health)
    if kind == "no-flow":
        stack = ExitStack()
        stack.enter_context(mock.patch.object(DeliveryActivities, "_admitted", _no_admission))
        stack.enter_context(mock.patch.object(DeliveryActivities, "_release", _no_release))
        return stack
    if kind == "quiet-close":
        return mock.patch.object(worker, "DeliveryWorkflow", QuietCloseDeliveryWorkflow)
    if kind == "bare-start":
        return mock.patch.object(worker, "EventWorkflow", BareStartEventWorkflow)
    if kind == "no-tracing":
        return without_tracing()
    if kind == "no-eager":
        return mock.patch.object(worker, "Worker", _worker_never_eager)
    raise SystemExit(f"usage: python -m bench.workers {'|'.join(KINDS)} (not {kind!r})")


KINDS = (
    "local-first",
    "workflows-only",
    "plaintext",
    "no-health",
    "no-flow",
    "quiet-close",
    "bare-start",
    "no-tracing",
    "no-eager",
)


def plaintext_app() -> FastAPI:
    """The API, its Temporal client without the payload codec (for the life of this process)."""
    mock.patch.object(api.main, "connect", _plaintext_connect).start()
    return api.main.create_app()


def untraced_app() -> FastAPI:
    """The API with no tracing code at all (`without_tracing`, for the life of this process)."""
    without_tracing().__enter__()
    return api.main.create_app()


def window0_app() -> FastAPI:
    """The API, with deliveries accepted with a retry window of 0 (closed with their schedule)."""
    return api.main.create_app(Settings().model_copy(update={"retry_window_seconds": 0.0}))


_workers: list[asyncio.Task[None]] = []


async def _connect_with_worker(settings: Settings, **options: Any) -> Client:
    """The API's client, also running the product's workflows (no activity) in this process, and asking
    Temporal to hand each started event's first workflow task straight to it."""
    client = await connect(settings)  # not lazy: the worker needs the connection now
    in_process = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[EventWorkflow, DeliveryWorkflow],
        max_concurrent_workflow_tasks=settings.worker_max_workflow_tasks,
    )
    _workers.append(asyncio.get_running_loop().create_task(in_process.run()))
    eager = functools.partial(client.start_workflow, request_eager_start=True)
    mock.patch.object(client, "start_workflow", eager).start()
    return client


def eager_app() -> FastAPI:
    """The API, with eager workflow start from a worker in its own process."""
    mock.patch.object(api.main, "connect", _connect_with_worker).start()
    return api.main.create_app()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    with _change(args[0] if args else ""):
        worker.main()


if __name__ == "__main__":
    main()
