"""`GET /metrics`: the API's Prometheus metrics.

Each number comes from where it can honestly be known. The API sees emissions, so it counts them. Attempts
happen in the workers, which count them on their own Prometheus endpoint (`WEBHOOKS_WORKER_METRICS_PORT`).
How many deliveries are pending, succeeded, failed or waiting for a retry is Temporal's to say: those
gauges are visibility counts over our search attributes, made when Prometheus scrapes. They are the same
on every API replica, so aggregate them with `max`, not `sum`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from temporalio.client import Client

from api.deps import ServicesDep
from api.webhook_logs import delivery_query
from core import temporal as ids
from core.models import DeliveryStatus

# `_created` series double every counter and nobody graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

EVENTS_ACCEPTED = Counter(
    "webhooks_events_accepted",
    "Events accepted by POST /v1/events (each one is a durable EventWorkflow), by event type",
    ["webhook_type"],
)
EVENTS_DUPLICATE = Counter(
    "webhooks_events_duplicate",
    "Emissions answered with an existing event because their id was already accepted, by event type",
    ["webhook_type"],
)

router = APIRouter(tags=["system"])
_COUNT_TIMEOUT = timedelta(seconds=5)

# Scheduled for retry: still running, not succeeded yet, and at least one attempt behind it.
RETRY_SCHEDULED_QUERY = f"{delivery_query(status=DeliveryStatus.PENDING)} AND {ids.ATTEMPT_COUNT.name} > 0"
# Our workflows never fail on purpose: one that closed failed, terminated or timed out is a bug or an
# operator's act, and is worth an alert.
_ABNORMAL_CLOSE = "ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut', 'Canceled')"
WORKFLOW_TYPES = ("EventWorkflow", "DeliveryWorkflow")


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(query, rpc_timeout=_COUNT_TIMEOUT)).count


async def visibility_registry(client: Client) -> CollectorRegistry:
    """The delivery gauges, counted now; only `webhooks_visibility_up 0` when Temporal does not answer."""
    registry = CollectorRegistry(auto_describe=True)
    up = Gauge(
        "webhooks_visibility_up",
        "1 when the delivery counts below could be read from Temporal visibility at this scrape",
        registry=registry,
    )
    statuses = list(DeliveryStatus)
    try:
        counts = await asyncio.gather(
            *(_count(client, delivery_query(status=status)) for status in statuses),
            _count(client, RETRY_SCHEDULED_QUERY),
            *(_count(client, f"WorkflowType = '{t}' AND {_ABNORMAL_CLOSE}") for t in WORKFLOW_TYPES),
        )
    except Exception:  # unreachable, timed out or refused: say so instead of failing the scrape
        up.set(0)
        return registry
    up.set(1)
    deliveries = Gauge(
        "webhooks_deliveries",
        "Deliveries known to Temporal visibility (closed ones for the retention period), by status",
        ["status"],
        registry=registry,
    )
    for status, count in zip(statuses, counts, strict=False):
        deliveries.labels(status.value).set(count)
    Gauge(
        "webhooks_deliveries_retry_scheduled",
        "Deliveries still running whose attempts so far failed and which wait for their next attempt",
        registry=registry,
    ).set(counts[len(statuses)])
    broken = Gauge(
        "webhooks_workflows_closed_abnormally",
        "Workflows that closed failed, terminated, timed out or canceled (kept for the retention period): "
        "none should, so alert on any",
        ["workflow_type"],
        registry=registry,
    )
    for workflow_type, count in zip(WORKFLOW_TYPES, counts[len(statuses) + 1 :], strict=True):
        broken.labels(workflow_type).set(count)
    return registry


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics: events accepted, and deliveries by status from Temporal visibility."""
    per_scrape = await visibility_registry(services.temporal)
    body = generate_latest(REGISTRY) + generate_latest(per_scrape)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
