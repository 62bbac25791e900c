"""`GET /metrics`: the API's Prometheus metrics.

Each number comes from where it can honestly be known. The API sees emissions, so it counts them. Attempts
happen in the workers, which count them on their own Prometheus endpoint (`WEBHOOKS_WORKER_METRICS_PORT`).
How many deliveries are pending, succeeded, failed or waiting for a retry is Temporal's to say: those
gauges are visibility counts over our search attributes, made when Prometheus scrapes. They are the same
on every API replica, so aggregate them with `max`, not `sum`.
"""

from __future__ import annotations

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

from api.deps import DeliveriesDep
from service.deliveries import Deliveries
from service.errors import WebhooksError

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


async def visibility_registry(deliveries: Deliveries) -> CollectorRegistry:
    """The delivery gauges, counted now; only `webhooks_visibility_up 0` when Temporal does not answer."""
    registry = CollectorRegistry(auto_describe=True)
    up = Gauge(
        "webhooks_visibility_up",
        "1 when the delivery counts below could be read from Temporal visibility at this scrape",
        registry=registry,
    )
    try:
        overview = await deliveries.overview()
    except WebhooksError:  # unreachable, timed out or refused: say so instead of failing the scrape
        up.set(0)
        return registry
    up.set(1)
    by_status = Gauge(
        "webhooks_deliveries",
        "Deliveries known to Temporal visibility (closed ones for the retention period), by status",
        ["status"],
        registry=registry,
    )
    for status, count in overview.deliveries.items():
        by_status.labels(status.value).set(count)
    Gauge(
        "webhooks_deliveries_retry_scheduled",
        "Deliveries still running whose attempts so far failed and which wait for their next attempt",
        registry=registry,
    ).set(overview.retry_scheduled)
    broken = Gauge(
        "webhooks_workflows_closed_abnormally",
        "Workflows that closed failed, terminated, timed out or canceled (kept for the retention period): "
        "none should, so alert on any",
        ["workflow_type"],
        registry=registry,
    )
    for workflow_type, count in overview.closed_abnormally.items():
        broken.labels(workflow_type).set(count)
    return registry


@router.get("/metrics", response_class=Response)
async def metrics(deliveries: DeliveriesDep) -> Response:
    """Prometheus metrics: events accepted, and deliveries by status from Temporal visibility."""
    per_scrape = await visibility_registry(deliveries)
    body = generate_latest(REGISTRY) + generate_latest(per_scrape)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
