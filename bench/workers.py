"""Entry points of the bench's variant processes: the product's worker or API with one thing changed.

Each change is made here, in the bench's own process, never through a product setting:

- `python -m bench.workers local-first`: the product worker with `LocalFirstDeliveryWorkflow`;
- `python -m bench.workers workflows-only`: the product's workflows and no activity, so that attempts
  queue up in Temporal (the slot-size scenario starts its real worker on a queue already full);
- `python -m bench.workers plaintext`: the product worker without the payload codec;
- `uvicorn --factory bench.workers:plaintext_app`: the API without the payload codec;
- `uvicorn --factory bench.workers:window0_app`: the API with a retry window of 0 (deliveries close as
  soon as their schedule ends).
"""

from __future__ import annotations

import functools
import sys
from contextlib import AbstractContextManager
from typing import Any
from unittest import mock

from fastapi import FastAPI
from temporalio.client import Client
from temporalio.worker import Worker

import api.main
import worker
from bench.variants import LocalFirstDeliveryWorkflow
from core.settings import Settings
from core.temporal import connect

_plaintext_connect = functools.partial(connect, encrypted=False)


def _worker_without_activities(client: Client, **options: Any) -> Worker:
    return Worker(client, **{**options, "activities": []})


def _change(kind: str) -> AbstractContextManager[Any]:
    if kind == "local-first":
        return mock.patch.object(worker, "DeliveryWorkflow", LocalFirstDeliveryWorkflow)
    if kind == "workflows-only":
        return mock.patch.object(worker, "Worker", _worker_without_activities)
    if kind == "plaintext":
        return mock.patch.object(worker, "connect", _plaintext_connect)
    raise SystemExit(f"usage: python -m bench.workers local-first|workflows-only|plaintext (not {kind!r})")


def plaintext_app() -> FastAPI:
    """The API, its Temporal client without the payload codec (for the life of this process)."""
    mock.patch.object(api.main, "connect", _plaintext_connect).start()
    return api.main.create_app()


def window0_app() -> FastAPI:
    """The API, with deliveries accepted with a retry window of 0 (the setting itself refuses 0)."""
    return api.main.create_app(Settings().model_copy(update={"retry_window_seconds": 0.0}))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    with _change(args[0] if args else ""):
        worker.main()


if __name__ == "__main__":
    main()
