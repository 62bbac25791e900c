"""The webhook logs: each endpoint's deliveries, every attempt of one, and manual retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, TypedDict

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from api.deps import DeliveriesDep, ManageTenant, ReadTenant, SettingsDep, WebUiLinks
from api.errors import RATE_LIMITED, validation_error
from api.schemas import DeliveryDetail, DeliveryList, EndpointStatsPublic, RetryAcceptedPublic
from domain import search_attributes as sa
from domain.catalog import SUBSCRIBABLE_BY_NAME
from domain.models import DeliveryStatus
from history.visibility import BusinessIds

router = APIRouter(prefix="/v1/webhooks", tags=["deliveries"])

LimitQuery = Annotated[int, Query(ge=1, le=100)]
# A window on when the event was accepted (its deliveries' `created_at`), each end with its timezone.
CreatedAfter = Annotated[
    AwareDatetime | None,
    Query(description="Only deliveries created at or after this time (with its timezone)"),
]
CreatedBefore = Annotated[
    AwareDatetime | None,
    Query(description="Only deliveries created at or before this time (with its timezone)"),
]


class StatusFilter(StrEnum):
    """The statuses a list can be filtered by (a `scheduled` delivery is not listed until it starts)."""

    PENDING = DeliveryStatus.PENDING.value
    SUCCEEDED = DeliveryStatus.SUCCEEDED.value
    FAILED = DeliveryStatus.FAILED.value


def _event_type(value: str | None) -> str | None:
    if value is not None and value not in SUBSCRIBABLE_BY_NAME:
        raise validation_error(
            ("event_type",),
            f"unknown event_type {value!r}; GET /v1/webhooks/event-types lists them",
            value=value,
            location="query",
        )
    return value


def _business_id(value: str | None, name: str) -> tuple[str | None, bool]:
    if value is None:
        return None, False
    try:
        return sa.business_id_search(value, name)
    except ValueError as err:
        raise validation_error((name,), str(err), value=value, location="query") from None


ObjectIdQuery = Annotated[
    str | None,
    Query(
        description="Only those of this business object (the event's `data.object.id`, e.g. `inv_0042`); "
        "a trailing `*` finds every id that starts so (`inv_00*`)"
    ),
]
CustomerIdQuery = Annotated[
    str | None,
    Query(
        description="Only those concerning this customer (`data.object.customer_id`, or a customer "
        "event's own id); a trailing `*` finds every id that starts so"
    ),
]


def business_filter(
    object_id: ObjectIdQuery = None, customer_id: CustomerIdQuery = None
) -> BusinessIds | None:
    """A search by the business object, checked: None when none is asked for."""
    if object_id is None and customer_id is None:
        return None
    object_text, object_prefix = _business_id(object_id, "object_id")
    customer_text, customer_prefix = _business_id(customer_id, "customer_id")
    return BusinessIds(
        object_id=object_text,
        object_id_prefix=object_prefix,
        customer_id=customer_text,
        customer_id_prefix=customer_prefix,
    )


Business = Annotated[BusinessIds | None, Depends(business_filter)]


class ListFilters(TypedDict):
    status: DeliveryStatus | None
    event_type: str | None
    created_after: datetime | None
    created_before: datetime | None
    business: BusinessIds | None
    limit: int
    cursor: str | None


def list_filters(
    business: Business,
    status: StatusFilter | None = None,
    event_type: str | None = None,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
    limit: LimitQuery = 50,
    cursor: str | None = None,
) -> ListFilters:
    """The query every list of deliveries takes, checked."""
    return ListFilters(
        status=DeliveryStatus(status) if status else None,
        event_type=_event_type(event_type),
        created_after=created_after,
        created_before=created_before,
        business=business,
        limit=limit,
        cursor=cursor,
    )


Filters = Annotated[ListFilters, Depends(list_filters)]


@router.get("/endpoints/{endpoint_id}/deliveries")
async def list_endpoint_deliveries(
    endpoint_id: str, tenant: ReadTenant, deliveries: DeliveriesDep, filters: Filters
) -> DeliveryList:
    """An endpoint's event history, newest first."""
    return DeliveryList.of(await deliveries.list(tenant, endpoint_id=endpoint_id, **filters))


@router.get("/endpoints/{endpoint_id}/stats")
async def endpoint_stats(
    endpoint_id: str,
    tenant: ReadTenant,
    deliveries: DeliveriesDep,
    hours: Annotated[int, Query(ge=1, le=24 * 90)] = 24,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
) -> EndpointStatsPublic:
    """How many of the endpoint's deliveries of the last `hours` (or of events accepted between
    `created_after` and `created_before`; `created_before` alone: the `hours` before it) are pending,
    succeeded and failed."""
    since = created_after or _hours_before(created_before or datetime.now(UTC), hours)
    counts = await deliveries.count(tenant, endpoint_id, since=since, until=created_before)
    return EndpointStatsPublic.of(counts)


def _hours_before(end: datetime, hours: int) -> datetime:
    """`hours` before `end`, or the earliest time there is when that would come before it (a
    `created_before` in year 1)."""
    try:
        return end - timedelta(hours=hours)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


@router.get("/deliveries")
async def list_all_deliveries(
    tenant: ReadTenant, deliveries: DeliveriesDep, filters: Filters
) -> DeliveryList:
    """Deliveries across all your endpoints, e.g. `?status=failed` for everything that needs a retry."""
    return DeliveryList.of(await deliveries.list(tenant, **filters))


@router.get("/deliveries/{delivery_id}")
async def get_delivery(
    delivery_id: str,
    tenant: ReadTenant,
    deliveries: DeliveriesDep,
    links: WebUiLinks,
    settings: SettingsDep,
) -> DeliveryDetail:
    """One delivery: the exact payload sent and every attempt with its response."""
    log = await deliveries.get(tenant, delivery_id)
    return DeliveryDetail.of_log(log, links=links, trace_url=settings.trace_url)


BulkQuery = Annotated[
    bool,
    Query(
        description="One of many retries sent at once (a retry of everything failed): made after live "
        "deliveries and scheduled retries rather than before them"
    ),
]
AfterQuery = Annotated[
    int | None,
    Query(
        ge=0,
        description="The last attempt whose answer you have read (the number of attempts the log showed "
        "you): the retry is never joined to it or an earlier one, so it makes a new attempt even within "
        "5 s of that one's end",
    ),
]


@router.post("/deliveries/{delivery_id}/retry", status_code=202, responses=RATE_LIMITED)
async def retry_delivery(
    delivery_id: str,
    tenant: ManageTenant,
    deliveries: DeliveriesDep,
    bulk: BulkQuery = False,
    after: AfterQuery = None,
) -> RetryAcceptedPublic:
    """Make one attempt now, marked manual; joins an attempt in flight, asked for or just made (5 s)."""
    accepted = await deliveries.retry(tenant, delivery_id, bulk=bulk, after=after)
    return RetryAcceptedPublic(delivery_id=delivery_id, attempt=accepted.attempt)
