"""`GET /metrics`: the API's Prometheus metrics.

Each number comes from where it can honestly be known. The API sees emissions, so it counts them. Attempts
happen in the workers, which count them on their own Prometheus endpoint (`WEBHOOKS_WORKER_METRICS_PORT`).
How many deliveries are pending, succeeded, failed or waiting for a retry is Temporal's to say: those
gauges are visibility counts over our search attributes, made when Prometheus scrapes. They are the same
on every API replica, so aggregate them with `max`, not `sum`. They are counted at most once every
`WEBHOOKS_METRICS_CACHE_SECONDS` per replica, however often it is scraped: each count is a visibility query.
With `WEBHOOKS_METRICS_TOKEN` set, only a scrape that sends it is answered.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

from api.deps import DeliveriesDep, SettingsDep
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


class _Counted:
    """The last visibility counts of this process, and when they were made."""

    registry: CollectorRegistry | None = None
    at = 0.0


async def visibility_counts(deliveries: Deliveries, *, fresh_for: float) -> CollectorRegistry:
    """The delivery gauges, counted again only if the last count is older than `fresh_for` seconds."""
    if _Counted.registry is None or time.monotonic() - _Counted.at >= fresh_for:
        _Counted.registry = await visibility_registry(deliveries)
        _Counted.at = time.monotonic()
    return _Counted.registry


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
async def metrics(
    deliveries: DeliveriesDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Prometheus metrics: events accepted, and deliveries by status from Temporal visibility."""
    token = settings.metrics_token.get_secret_value()
    if token and not hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode()):
        return JSONResponse(
            {"detail": "/metrics needs Authorization: Bearer <WEBHOOKS_METRICS_TOKEN>"},
            401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = generate_latest(REGISTRY) + generate_latest(
        await visibility_counts(deliveries, fresh_for=settings.metrics_cache_seconds)
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST)
