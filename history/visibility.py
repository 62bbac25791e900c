"""The visibility queries of deliveries, events and recoveries, the search attributes a delivery is
listed by, and the statuses they read: the read side of Temporal's own record, which the API's service
and the recovery activities both use.

A delivery's status is its `WebhookDeliveryStatus` search attribute, corrected by its workflow's state: a
workflow that ended without settling (terminated, failed, timed out) did not deliver. A delivery whose
workflow continued as new leaves closed runs behind that are the same delivery: only its newest run is
ever listed or counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from domain import search_attributes as sa
from domain.models import (
    ENDS_SCHEDULE,
    AttemptOutcome,
    AttemptRecord,
    AttemptTrigger,
    DeliveryInput,
    DeliveryStatus,
)

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


def matching(attribute: str, value: str, *, prefix: bool) -> str:
    """An exact match on a keyword attribute, or its start (`STARTS_WITH`: Temporal 1.28 and later, on
    SQL and Elasticsearch visibility alike)."""
    return f"{attribute} {'STARTS_WITH' if prefix else '='} {quoted(value)}"


@dataclass(frozen=True, slots=True)
class BusinessIds:
    """A search by the business object: its id, or its customer's, each exact or a prefix."""

    object_id: str | None = None
    object_id_prefix: bool = False
    customer_id: str | None = None
    customer_id_prefix: bool = False

    def clauses(self) -> list[str]:
        found = []
        if self.object_id is not None:
            found.append(matching(sa.OBJECT_ID.name, self.object_id, prefix=self.object_id_prefix))
        if self.customer_id is not None:
            found.append(matching(sa.CUSTOMER_ID.name, self.customer_id, prefix=self.customer_id_prefix))
        return found


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
    business: BusinessIds | None = None,
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
    if business is not None:
        clauses += business.clauses()
    return " AND ".join(clauses)


def failed_deliveries(
    *, tenant: str, endpoint_id: str, since: datetime, until: datetime, running: bool
) -> str:
    """The endpoint's failed deliveries created in a recover's window: those still `running` (within
    their retry window) are what it re-attempts, the others it counts as expired. One query, so that the
    count made before a recover starts and the pages it goes through find the same deliveries."""
    return delivery_query(
        tenant=tenant,
        endpoint_id=endpoint_id,
        status=DeliveryStatus.FAILED,
        created_since=since,
        created_until=until,
        running=running,
    )


def event_query(
    *,
    tenant: str,
    accepted_since: datetime,
    accepted_until: datetime | None = None,
    accepted_before: datetime | None = None,
    event_types: Sequence[str],
) -> str:
    """The visibility query for a tenant's events of `event_types` accepted in a window (an event's
    workflow starts when it is accepted): from `accepted_since` to `accepted_until` (included) or to
    `accepted_before` (excluded)."""
    clauses = [EVENTS, f"{sa.TENANT.name} = {quoted(tenant)}", f"StartTime >= {time_literal(accepted_since)}"]
    if accepted_until is not None:
        clauses.append(f"StartTime <= {time_literal(accepted_until)}")
    if accepted_before is not None:
        clauses.append(f"StartTime < {time_literal(accepted_before)}")
    clauses.append(one_of(sa.EVENT_TYPE.name, event_types))
    return " AND ".join(clauses)


def running_lanes(*, tenant: str, endpoint_id: str) -> str:
    """The visibility query for an endpoint's ordered lanes that are running (workflows/lane.py)."""
    return " AND ".join(
        [
            "WorkflowType = 'LaneWorkflow' AND ExecutionStatus = 'Running'",
            f"{sa.TENANT.name} = {quoted(tenant)}",
            f"{sa.ENDPOINT_ID.name} = {quoted(endpoint_id)}",
        ]
    )


def events_listed(*, tenant: str, business: BusinessIds | None = None) -> str:
    """The visibility query for a tenant's events, or those of one business object: those accepted since
    events carry `WebhookCreatedAt` (the list reads by it; a range leaves out the events without it, which
    would otherwise be counted in a page's window and never fall inside one)."""
    clauses = [
        EVENTS,
        f"{sa.TENANT.name} = {quoted(tenant)}",
        f"{sa.CREATED_AT.name} >= {time_literal(datetime(1970, 1, 1, tzinfo=UTC))}",
    ]
    if business is not None:
        clauses += business.clauses()
    return " AND ".join(clauses)


def business_search_attributes(body: str) -> list[SearchAttributePair[str]]:
    """The business object's ids an event's workflow and its deliveries are found by, set at start."""
    object_id, customer_id = sa.business_ids(body)
    pairs = []
    if object_id is not None:
        pairs.append(SearchAttributePair(sa.OBJECT_ID, object_id))
    if customer_id is not None:
        pairs.append(SearchAttributePair(sa.CUSTOMER_ID, customer_id))
    return pairs


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


@dataclass(frozen=True, slots=True)
class ReadStatus:
    status: DeliveryStatus
    next_attempt_at: datetime | None


def unpublished(attempts: Sequence[AttemptRecord], attrs: TypedSearchAttributes) -> bool:
    """Whether history holds an attempt the workflow has not published yet. It publishes its status in
    the task after an attempt's completion is written, before it waits or makes another attempt: read
    in between, the attributes count one attempt fewer and hold the status of before it."""
    published = attrs.get(sa.ATTEMPT_COUNT)
    return published is not None and len(attempts) > published


def status_beside(
    started: DeliveryInput,
    attempts: Sequence[AttemptRecord],
    attrs: TypedSearchAttributes,
    execution: WorkflowExecutionStatus | None,
) -> ReadStatus:
    """A delivery's status and next attempt beside the attempts its history holds, for a log read
    without a worker: what the attributes say, or, for an attempt not published yet, what the workflow
    holds once it has taken the attempt in (workflows/delivery.py: a success or a stop settles it; so
    does a failure once its schedule is over; else it stays pending, its next attempt to be chosen)."""
    status = status_of(attrs, execution)
    next_attempt_at = attrs.get(sa.NEXT_ATTEMPT_AT)
    if execution is not WorkflowExecutionStatus.RUNNING or not unpublished(attempts, attrs):
        return ReadStatus(status, next_attempt_at)
    last = attempts[-1]
    if last.outcome in ENDS_SCHEDULE:
        settled = (
            DeliveryStatus.SUCCEEDED if last.outcome is AttemptOutcome.SUCCEEDED else DeliveryStatus.FAILED
        )
        return ReadStatus(settled, None)
    scheduled = sum(1 for a in attempts if a.trigger is AttemptTrigger.SCHEDULED)
    if scheduled > len(started.policy.retry_delays) or status is not DeliveryStatus.PENDING:
        return ReadStatus(DeliveryStatus.FAILED, None)  # the schedule was over, or is now
    if last.trigger is AttemptTrigger.SCHEDULED:
        return ReadStatus(DeliveryStatus.PENDING, None)  # its next attempt is still to be chosen
    return ReadStatus(DeliveryStatus.PENDING, next_attempt_at)  # a retry by hand: the schedule's stands


def delivery_search_attributes(input: DeliveryInput, body: str) -> TypedSearchAttributes:
    """What an operator filters deliveries by in the Temporal Web UI, set when the delivery starts;
    `body`: the event's (a delivery's input no longer carries it)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.TENANT, input.tenant),
            SearchAttributePair(sa.ENDPOINT_ID, input.endpoint_id),
            SearchAttributePair(sa.EVENT_ID, input.event_id),
            SearchAttributePair(sa.EVENT_TYPE, input.webhook_type),
            SearchAttributePair(sa.CREATED_AT, input.created_at),
            SearchAttributePair(sa.DELIVERY_STATUS, DeliveryStatus.PENDING.value),
            SearchAttributePair(sa.ATTEMPT_COUNT, 0),
            *business_search_attributes(body),
        ]
    )
