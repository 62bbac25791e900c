"""The plain design, the baseline every figure of `make bench` is compared with.

The same shape as the product, with nothing of ours added: an event workflow starts one child per
endpoint, and each child runs one activity that signs and POSTs the body, retried by a Temporal retry
policy. No search attributes, no endpoint store (the URL and secret travel in the input), no attempt
log, no retry window, no payload codec, no manual retry. What the product costs beyond this is what
its logs, search attributes and checks cost.

`python -m bench.plain` runs its worker on `BENCH_PLAIN_TASK_QUEUE` of the Temporal at
`WEBHOOKS_TEMPORAL_ADDRESS`, with the product's default slot sizes; the bench starts events with
`start_event`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

# The sandbox re-imports this module for the workflows: what only the activity uses passes through.
with workflow.unsafe.imports_passed_through():
    import httpx

    from core.settings import Settings
    from core.signing import sign_hmac

TASK_QUEUE = "bench-plain"
ATTEMPT_TIMEOUT = timedelta(seconds=15)


@dataclass
class PlainEndpoint:
    endpoint_id: str
    url: str
    secret: str


@dataclass
class PlainRetry:
    """Temporal's own retry policy stands in for the product's schedule: 8 attempts by default."""

    first_delay_seconds: float = 5.0
    backoff: float = 6.0
    attempts: int = 8


@dataclass
class PlainEvent:
    event_id: str
    body: str
    endpoints: list[PlainEndpoint]
    retry: PlainRetry = field(default_factory=PlainRetry)


@dataclass
class PlainDelivery:
    delivery_id: str
    url: str
    secret: str
    body: str
    retry: PlainRetry


class PlainActivities:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    @activity.defn
    async def plain_deliver(self, delivery: PlainDelivery) -> int:
        """Sign and POST; anything but a 2xx raises, and Temporal retries it."""
        timestamp = int(time.time())
        headers = {
            "webhook-id": delivery.delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_hmac(delivery.secret, delivery.delivery_id, timestamp, delivery.body),
            "content-type": "application/json",
        }
        response = await self._http.post(
            delivery.url, content=delivery.body.encode(), headers=headers, timeout=ATTEMPT_TIMEOUT.seconds
        )
        if not response.is_success:
            raise ApplicationError(f"status {response.status_code}")
        return response.status_code


@workflow.defn
class PlainDeliveryWorkflow:
    @workflow.run
    async def run(self, delivery: PlainDelivery) -> int:
        return await workflow.execute_activity_method(
            PlainActivities.plain_deliver,
            delivery,
            start_to_close_timeout=ATTEMPT_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=delivery.retry.first_delay_seconds),
                backoff_coefficient=delivery.retry.backoff,
                maximum_attempts=delivery.retry.attempts,
            ),
        )


@workflow.defn
class PlainEventWorkflow:
    @workflow.run
    async def run(self, event: PlainEvent) -> None:
        await asyncio.gather(
            *(
                workflow.start_child_workflow(
                    PlainDeliveryWorkflow.run,
                    PlainDelivery(
                        delivery_id=delivery_id(event.event_id, endpoint.endpoint_id),
                        url=endpoint.url,
                        secret=endpoint.secret,
                        body=event.body,
                        retry=event.retry,
                    ),
                    id=delivery_workflow_id(event.event_id, endpoint.endpoint_id),
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
                for endpoint in event.endpoints
            )
        )


def delivery_id(event_id: str, endpoint_id: str) -> str:
    return f"{event_id}:{endpoint_id}"


def event_workflow_id(event_id: str) -> str:
    return f"plain-event:{event_id}"


def delivery_workflow_id(event_id: str, endpoint_id: str) -> str:
    return f"plain-delivery:{delivery_id(event_id, endpoint_id)}"


async def start_event(client: Client, event: PlainEvent, *, task_queue: str = TASK_QUEUE) -> None:
    """What the plain design's API would do: start the event's workflow (durably stored on return)."""
    await client.start_workflow(
        PlainEventWorkflow.run, event, id=event_workflow_id(event.event_id), task_queue=task_queue
    )


async def run_worker(address: str, namespace: str, task_queue: str, stop: asyncio.Event) -> None:
    from worker import http_client  # the product's own client: the same pool and limits

    client = await Client.connect(address, namespace=namespace)
    defaults = Settings.model_fields
    async with http_client(allow_private_urls=True) as http:
        activities = PlainActivities(http)
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[PlainEventWorkflow, PlainDeliveryWorkflow],
            activities=[activities.plain_deliver],
            max_concurrent_activities=defaults["worker_max_activities"].default,
            max_concurrent_workflow_tasks=defaults["worker_max_workflow_tasks"].default,
        ):
            await stop.wait()


def main() -> None:
    address = os.environ["WEBHOOKS_TEMPORAL_ADDRESS"]
    namespace = os.environ.get("WEBHOOKS_TEMPORAL_NAMESPACE", "default")
    task_queue = os.environ.get("BENCH_PLAIN_TASK_QUEUE", TASK_QUEUE)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(address, namespace, task_queue, stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
