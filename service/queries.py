"""The visibility queries of deliveries, events and recoveries, the statuses they read, and the cursors
that page through them.

A delivery's status is its `WebhookDeliveryStatus` search attribute, corrected by its workflow's state: a
workflow that ended without settling (terminated, failed, timed out) did not deliver. A delivery whose
workflow continued as new leaves closed runs behind that are the same delivery: only its newest run is
ever listed or counted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from core import search_attributes as sa
from core.models import DeliveryStatus
from service.errors import InvalidInput

DELIVERIES = "WorkflowType = 'DeliveryWorkflow' AND ExecutionStatus != 'ContinuedAsNew'"
EVENTS = "WorkflowType = 'EventWorkflow'"
RECOVERIES = "WorkflowType = 'RecoveryWorkflow' AND ExecutionStatus != 'ContinuedAsNew'"
_STATUS_CLAUSES = {
    DeliveryStatus.PENDING: f"{sa.DELIVERY_STATUS.name} = 'pending' AND ExecutionStatus = 'Running'",
    DeliveryStatus.SUCCEEDED: f"{sa.DELIVERY_STATUS.name} = 'succeeded'",
    DeliveryStatus.FAILED: (
        f"({sa.DELIVERY_STATUS.name} = 'failed' OR "
        f"({sa.DELIVERY_STATUS.name} = 'pending' AND ExecutionStatus != 'Running'))"
    ),
}
# Scheduled for retry: still running, not succeeded yet, and at least one attempt behind it.
RETRY_SCHEDULED = (
    f"{DELIVERIES} AND {_STATUS_CLAUSES[DeliveryStatus.PENDING]} AND {sa.ATTEMPT_COUNT.name} > 0"
)
# Our workflows never fail on purpose: one closed failed, terminated or timed out is a bug or an operator's.
ABNORMAL_CLOSE = "ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut', 'Canceled')"


def quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_literal(value: datetime) -> str:
    return quoted(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))


def one_of(attribute: str, values: Sequence[str]) -> str:
    return f"{attribute} IN ({', '.join(quoted(v) for v in values)})"


def delivery_query(
    *,
    tenant: str | None = None,
    endpoint_id: str | None = None,
    status: DeliveryStatus | None = None,
    event_type: str | None = None,
    event_ids: Sequence[str] | None = None,
    created_since: datetime | None = None,
    created_until: datetime | None = None,
    running: bool | None = None,
) -> str:
    """The visibility query for deliveries matching every filter given; `running`: whose workflow is still
    running (within its schedule or retry window), or no longer."""
    clauses = [DELIVERIES]
    if tenant is not None:
        clauses.append(f"{sa.TENANT.name} = {quoted(tenant)}")
    if endpoint_id is not None:
        clauses.append(f"{sa.ENDPOINT_ID.name} = {quoted(endpoint_id)}")
    if status is not None:
        clauses.append(_STATUS_CLAUSES[status])
    if event_type is not None:
        clauses.append(f"{sa.EVENT_TYPE.name} = {quoted(event_type)}")
    if event_ids is not None:
        clauses.append(one_of(sa.EVENT_ID.name, event_ids))
    if created_since is not None:
        clauses.append(f"{sa.CREATED_AT.name} >= {time_literal(created_since)}")
    if created_until is not None:
        clauses.append(f"{sa.CREATED_AT.name} <= {time_literal(created_until)}")
    if running is not None:
        clauses.append("ExecutionStatus = 'Running'" if running else "ExecutionStatus != 'Running'")
    return " AND ".join(clauses)


def check_created_window(created_after: datetime | None, created_before: datetime | None) -> None:
    """`InvalidInput` for a window on `created_at` that ends before it starts (it could list nothing), or
    an end that is no time in UTC (a year 1 or 9999 whose offset takes it out of the calendar)."""
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        try:
            if value is not None:
                value.astimezone(UTC)
        except OverflowError:
            raise InvalidInput(
                f"{name} is out of range: give a time between the years 1 and 9999 in UTC",
                field=(name,),
                value=value.isoformat() if value else None,
                location="query",
            ) from None
    if created_after is not None and created_before is not None and created_after > created_before:
        raise InvalidInput(
            "created_after is later than created_before; swap them, or leave one out",
            field=("created_after",),
            value=created_after.isoformat(),
            location="query",
        )


def event_query(
    *, tenant: str, accepted_since: datetime, accepted_until: datetime, event_types: Sequence[str]
) -> str:
    """The visibility query for a tenant's events of `event_types` accepted in a window (an event's
    workflow starts when it is accepted)."""
    return " AND ".join(
        [
            EVENTS,
            f"{sa.TENANT.name} = {quoted(tenant)}",
            f"StartTime >= {time_literal(accepted_since)}",
            f"StartTime <= {time_literal(accepted_until)}",
            one_of(sa.EVENT_TYPE.name, event_types),
        ]
    )


def recovery_query(*, tenant: str, endpoint_id: str, recovery_id: str | None = None) -> str:
    """The visibility query for an endpoint's recoveries (the newest run of each), or one of them."""
    clauses = [
        RECOVERIES,
        f"{sa.TENANT.name} = {quoted(tenant)}",
        f"{sa.ENDPOINT_ID.name} = {quoted(endpoint_id)}",
    ]
    if recovery_id is not None:
        clauses.append(f"{sa.RECOVERY_ID.name} = {quoted(recovery_id)}")
    return " AND ".join(clauses)


def running_recoveries(*, tenant: str) -> str:
    """The visibility query for the tenant's recoveries running now, on any endpoint."""
    running = "WorkflowType = 'RecoveryWorkflow' AND ExecutionStatus = 'Running'"
    return f"{running} AND {sa.TENANT.name} = {quoted(tenant)}"


def workflows_closed_abnormally(workflow_type: str) -> str:
    return f"WorkflowType = {quoted(workflow_type)} AND {ABNORMAL_CLOSE}"


def status_of(attrs: TypedSearchAttributes, execution: WorkflowExecutionStatus | None) -> DeliveryStatus:
    """A delivery's status from its search attributes and the state of its workflow."""
    status = DeliveryStatus(attrs.get(sa.DELIVERY_STATUS) or DeliveryStatus.PENDING.value)
    unsettled_close = execution not in (None, WorkflowExecutionStatus.RUNNING)
    return DeliveryStatus.FAILED if status is DeliveryStatus.PENDING and unsettled_close else status


# A cursor is Temporal's page token behind a MAC of it and the tenant. Temporal cannot tell a damaged
# token from its own failure (it answers "something went wrong"), so a cursor is checked here: one this
# API did not hand to this tenant is refused, and never reaches Temporal.
_CURSOR_MAC_BYTES = 16
INVALID_CURSOR = "cursor is not one this API returned to you; list again without it, from the first page"


def _cursor_mac(token: bytes, tenant: str, key: bytes) -> bytes:
    return hmac.new(key, tenant.encode() + b"\0" + token, hashlib.sha256).digest()[:_CURSOR_MAC_BYTES]


def encode_cursor(token: bytes, *, tenant: str, key: bytes) -> str:
    return base64.urlsafe_b64encode(_cursor_mac(token, tenant, key) + token).rstrip(b"=").decode()


def decode_cursor(cursor: str, *, tenant: str, key: bytes) -> bytes:
    """Temporal's page token inside `cursor`; `InvalidInput` unless this API made it for `tenant`."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(INVALID_CURSOR, field=("cursor",), value=cursor, location="query") from None
    mac, token = raw[:_CURSOR_MAC_BYTES], raw[_CURSOR_MAC_BYTES:]
    if not token or not hmac.compare_digest(mac, _cursor_mac(token, tenant, key)):
        raise InvalidInput(INVALID_CURSOR, field=("cursor",), value=cursor, location="query")
    return token


@dataclass(frozen=True, slots=True)
class Page:
    executions: list[WorkflowExecution]
    next_cursor: str | None


async def list_page(
    client: Client,
    query: str,
    *,
    tenant: str,
    cursor: str | None,
    limit: int,
    cursor_key: bytes,
    rpc_timeout: timedelta,
) -> Page:
    """One page of the workflows `query` finds, from `cursor` on; the next page's cursor, made for
    `tenant`, or None on the last page."""
    token = decode_cursor(cursor, tenant=tenant, key=cursor_key) if cursor else None
    pages = client.list_workflows(query, page_size=limit, next_page_token=token, rpc_timeout=rpc_timeout)
    try:
        await pages.fetch_next_page()
    except RPCError as err:
        if err.status is RPCStatusCode.INVALID_ARGUMENT:  # a token Temporal no longer accepts
            raise InvalidInput(INVALID_CURSOR, field=("cursor",), location="query") from None
        raise
    next_token = pages.next_page_token
    return Page(
        executions=list(pages.current_page or []),
        next_cursor=encode_cursor(next_token, tenant=tenant, key=cursor_key) if next_token else None,
    )
