"""The webhook logs: each endpoint's deliveries, every attempt of one, and manual retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from api import webhook_logs
from api.deps import ServicesDep, TenantDep
from api.schemas import DeliveryDetail, DeliveryList, EndpointStatsPublic, RetryAcceptedPublic
from core import temporal as ids
from core.catalog import EVENT_TYPES_BY_NAME
from core.models import DeliveryStatus

router = APIRouter(prefix="/v1/webhooks", tags=["deliveries"])

LimitQuery = Annotated[int, Query(ge=1, le=100)]


async def _list(
    services: ServicesDep,
    tenant: str,
    *,
    endpoint_id: str | None,
    status: DeliveryStatus | None,
    event_type: str | None,
    limit: int,
    cursor: str | None,
) -> DeliveryList:
    if event_type is not None and event_type not in EVENT_TYPES_BY_NAME:
        raise _invalid_query(
            "event_type", event_type, f"unknown event_type {event_type!r}; GET /v1/webhooks/event-types"
        )
    try:
        return await services.logs.list_deliveries(
            tenant,
            endpoint_id=endpoint_id,
            status=status,
            event_type=event_type,
            limit=limit,
            cursor=cursor,
        )
    except webhook_logs.InvalidCursor as err:
        raise _invalid_query("cursor", cursor, str(err)) from None


def _invalid_query(name: str, value: str | None, msg: str) -> RequestValidationError:
    # FastAPI's own 422 shape, as documented in the OpenAPI schema for every route with parameters.
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", name), "msg": msg, "input": value}]
    )


@router.get("/endpoints/{endpoint_id}/deliveries")
async def list_endpoint_deliveries(
    endpoint_id: str,
    tenant: TenantDep,
    services: ServicesDep,
    status: DeliveryStatus | None = None,
    event_type: str | None = None,
    limit: LimitQuery = 50,
    cursor: str | None = None,
) -> DeliveryList:
    """An endpoint's event history: deliveries still in flight first, then the most recently attempted."""
    if await run_in_threadpool(services.store.get, tenant, endpoint_id) is None:
        raise HTTPException(404, f"endpoint {endpoint_id} not found")
    return await _list(
        services,
        tenant,
        endpoint_id=endpoint_id,
        status=status,
        event_type=event_type,
        limit=limit,
        cursor=cursor,
    )


@router.get("/endpoints/{endpoint_id}/stats")
async def endpoint_stats(
    endpoint_id: str,
    tenant: TenantDep,
    services: ServicesDep,
    hours: Annotated[int, Query(ge=1, le=24 * 90)] = 24,
) -> EndpointStatsPublic:
    """How many of the endpoint's deliveries of the last `hours` are pending, succeeded and failed."""
    if await run_in_threadpool(services.store.get, tenant, endpoint_id) is None:
        raise HTTPException(404, f"endpoint {endpoint_id} not found")
    since = datetime.now(UTC) - timedelta(hours=hours)
    return await services.logs.count_deliveries(tenant, endpoint_id, since=since)


@router.get("/deliveries")
async def list_all_deliveries(
    tenant: TenantDep,
    services: ServicesDep,
    status: DeliveryStatus | None = None,
    event_type: str | None = None,
    limit: LimitQuery = 50,
    cursor: str | None = None,
) -> DeliveryList:
    """Deliveries across all your endpoints, e.g. `?status=failed` for everything that needs a retry."""
    return await _list(
        services, tenant, endpoint_id=None, status=status, event_type=event_type, limit=limit, cursor=cursor
    )


def _checked(delivery_id: str) -> str:
    if ids.split_delivery_id(delivery_id) is None:
        raise HTTPException(404, f"delivery {delivery_id} not found")
    return delivery_id


@router.get("/deliveries/{delivery_id}")
async def get_delivery(delivery_id: str, tenant: TenantDep, services: ServicesDep) -> DeliveryDetail:
    """One delivery: the exact payload sent and every attempt with its response."""
    try:
        return await services.logs.get_delivery(tenant, _checked(delivery_id))
    except webhook_logs.NotFound:
        raise HTTPException(404, f"delivery {delivery_id} not found") from None


@router.post("/deliveries/{delivery_id}/retry", status_code=202)
async def retry_delivery(delivery_id: str, tenant: TenantDep, services: ServicesDep) -> RetryAcceptedPublic:
    """Make one attempt now, marked manual, for a delivery within its retry window; joins one in flight."""
    parts = ids.split_delivery_id(_checked(delivery_id))
    assert parts is not None
    endpoint = await run_in_threadpool(services.store.get, tenant, parts[1])
    if endpoint is None:
        raise HTTPException(404, f"delivery {delivery_id} not found (its endpoint was deleted)")
    if not endpoint.enabled:
        raise HTTPException(409, f"endpoint {endpoint.id} is disabled; enable it before retrying")
    try:
        accepted = await services.logs.retry_delivery(tenant, delivery_id)
    except webhook_logs.NotFound:
        raise HTTPException(404, f"delivery {delivery_id} not found") from None
    except webhook_logs.RetryRefused as err:
        raise HTTPException(409, str(err)) from None
    except webhook_logs.RetryPending:
        raise HTTPException(
            503,
            f"no worker took the retry within {services.settings.temporal_rpc_timeout:g} s; it may still "
            "be made when a worker is back, so check the delivery's log before retrying again",
            headers={"Retry-After": "5"},
        ) from None
    return RetryAcceptedPublic(delivery_id=delivery_id, attempt=accepted.attempt)
