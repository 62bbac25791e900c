"""The worker: runs `EventWorkflow`, `DeliveryWorkflow` and the signed-POST activity.

Stateless: any number of workers can poll the same task queue. One shared httpx client per process.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import httpx
from temporalio.worker import Worker

from activities.delivery import DeliveryActivities
from core.settings import Settings, load_jwt_signer
from core.store import EndpointStore
from core.temporal import connect
from workflows.delivery import DeliveryWorkflow
from workflows.event import EventWorkflow

log = logging.getLogger("webhooks.worker")


def http_client() -> httpx.AsyncClient:
    # httpcore's pool slows down with many open connections, so it stays modest; the per-endpoint
    # gates keep one slow endpoint from holding it all. Redirects are never followed.
    return httpx.AsyncClient(
        follow_redirects=False,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        trust_env=False,
    )


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    client = await connect(settings.temporal_target, settings.temporal_namespace)
    store = EndpointStore(settings.sqlalchemy_url)
    store.create_schema()
    http = http_client()
    try:
        activities = DeliveryActivities(
            http,
            store,
            load_jwt_signer(settings),
            allow_private_urls=settings.allow_private_urls,
            endpoint_concurrency=settings.endpoint_concurrency,
        )
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[EventWorkflow, DeliveryWorkflow],
            activities=[activities.deliver_once],
            # Attempts are asyncio tasks waiting on the network: cheap, so many may be in flight. An
            # attempt waiting at a slow endpoint's gate holds a slot; plenty of slots keep it from
            # holding up the others.
            max_concurrent_activities=1000,
            max_concurrent_local_activities=1000,
            # A first attempt runs as a local activity and keeps its workflow task open until the
            # receiver answers: a slow endpoint must not take every workflow task slot.
            max_concurrent_workflow_tasks=1000,
        )
        async with worker:
            log.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_target)
            await stop.wait()
    finally:
        await http.aclose()
        store.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines would carry endpoint URLs
    settings = Settings()

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
