"""The webhook logs, read from Temporal: visibility for lists and counts, histories for detail.

Nothing here keeps a copy. A delivery's log is its `DeliveryWorkflow`: listing is a visibility query
over the search attributes the workflow upserts (eventually consistent, ~100 ms); one delivery is read
from its workflow's history (the input, then each attempt's result), so no worker is needed to read a
log; a closed delivery's state is its result. Manual retry is the `retry_now` update: a delivery's
workflow stays open for a retry window after its schedule, so there is always one run to update.

Every call to Temporal carries `rpc_timeout`: an answer comes within it whatever Temporal does, and a
call that timed out is reported as one that may have been applied.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from api.schemas import (
    AttemptInProgress,
    AttemptPublic,
    DeliveryDetail,
    DeliveryList,
    DeliveryPublic,
    DeliveryStatusPublic,
    EndpointStatsPublic,
    EventDetail,
)
from core import temporal as ids
from core.models import AttemptRecord, DeliveryInput, DeliveryState, DeliveryStatus, EventInput, RetryAccepted
from workflows.delivery import DeliveryWorkflow


class NotFound(Exception):
    pass


class InvalidCursor(ValueError):
    pass


class RetryPending(Exception):
    """No worker took the retry in time; Temporal may still apply it when one does."""


class RetryRefused(Exception):
    """The delivery cannot take another attempt now; the message says why."""


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _timestamp(value: datetime) -> str:
    return _quoted(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))


# A delivery's workflow continued as new leaves closed runs behind that are the same delivery: only the
# newest run of a delivery is ever listed or counted.
_DELIVERIES = "WorkflowType = 'DeliveryWorkflow' AND ExecutionStatus != 'ContinuedAsNew'"
# A delivery whose workflow ended without settling (terminated by an operator, failed by a bug, over
# Temporal's limits) did not deliver, whatever its last upsert said: it is failed, and listed so.
_STATUS_CLAUSES = {
    DeliveryStatus.PENDING: f"{ids.DELIVERY_STATUS.name} = 'pending' AND ExecutionStatus = 'Running'",
    DeliveryStatus.SUCCEEDED: f"{ids.DELIVERY_STATUS.name} = 'succeeded'",
    DeliveryStatus.FAILED: (
        f"({ids.DELIVERY_STATUS.name} = 'failed' OR "
        f"({ids.DELIVERY_STATUS.name} = 'pending' AND ExecutionStatus != 'Running'))"
    ),
}


def delivery_query(
    *,
    tenant: str | None = None,
    endpoint_id: str | None = None,
    status: DeliveryStatus | None = None,
    event_type: str | None = None,
    created_since: datetime | None = None,
) -> str:
    """The visibility query for deliveries matching every filter given."""
    clauses = [_DELIVERIES]
    if tenant is not None:
        clauses.append(f"{ids.TENANT.name} = {_quoted(tenant)}")
    if endpoint_id is not None:
        clauses.append(f"{ids.ENDPOINT_ID.name} = {_quoted(endpoint_id)}")
    if status is not None:
        clauses.append(_STATUS_CLAUSES[status])
    if event_type is not None:
        clauses.append(f"{ids.EVENT_TYPE.name} = {_quoted(event_type)}")
    if created_since is not None:
        clauses.append(f"{ids.CREATED_AT.name} >= {_timestamp(created_since)}")
    return " AND ".join(clauses)


def public_status(attrs: TypedSearchAttributes, execution: WorkflowExecutionStatus | None) -> DeliveryStatus:
    """The delivery's status from its search attributes and the state of its workflow."""
    status = DeliveryStatus(attrs.get(ids.DELIVERY_STATUS) or DeliveryStatus.PENDING.value)
    unsettled_close = execution not in (None, WorkflowExecutionStatus.RUNNING)
    return DeliveryStatus.FAILED if status is DeliveryStatus.PENDING and unsettled_close else status


def _summary(
    attrs: TypedSearchAttributes,
    execution: WorkflowExecutionStatus | None,
    *,
    created: datetime,
    delivery: str,
    event_id: str,
    webhook_type: str = "",
) -> DeliveryPublic:
    created = attrs.get(ids.CREATED_AT) or created
    return DeliveryPublic(
        id=delivery,
        event_id=event_id,
        endpoint_id=delivery.rpartition(":")[2],
        webhook_type=attrs.get(ids.EVENT_TYPE) or webhook_type,
        status=DeliveryStatusPublic(public_status(attrs, execution).value),
        attempt_count=attrs.get(ids.ATTEMPT_COUNT) or 0,
        last_status_code=attrs.get(ids.LAST_STATUS_CODE),
        created_at=created,
        updated_at=attrs.get(ids.LAST_ATTEMPT_AT) or created,
    )


# A cursor is Temporal's page token behind a MAC of it and the tenant. Temporal cannot tell a damaged
# token from its own failure (it answers "something went wrong"), so a cursor is checked here: one this
# API did not hand to this tenant is a 422, and never reaches Temporal.
_CURSOR_MAC_BYTES = 16
_INVALID_CURSOR = "cursor is not one this API returned to you; list again without it, from the first page"


def _cursor_mac(token: bytes, tenant: str, key: bytes) -> bytes:
    return hmac.new(key, tenant.encode() + b"\0" + token, hashlib.sha256).digest()[:_CURSOR_MAC_BYTES]


def encode_cursor(token: bytes, *, tenant: str, key: bytes) -> str:
    return base64.urlsafe_b64encode(_cursor_mac(token, tenant, key) + token).rstrip(b"=").decode()


def decode_cursor(cursor: str, *, tenant: str, key: bytes) -> bytes:
    """Temporal's page token inside `cursor`; `InvalidCursor` unless this API made it for `tenant`."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCursor(_INVALID_CURSOR) from None
    mac, token = raw[:_CURSOR_MAC_BYTES], raw[_CURSOR_MAC_BYTES:]
    if not token or not hmac.compare_digest(mac, _cursor_mac(token, tenant, key)):
        raise InvalidCursor(_INVALID_CURSOR)
    return token


def _from_execution(execution: WorkflowExecution) -> DeliveryPublic:
    delivery = execution.id.split(":", 2)[2]
    return _summary(
        execution.typed_search_attributes,
        execution.status,
        created=execution.start_time,
        delivery=delivery,
        event_id=ids.split_delivery_id(delivery)[0],  # type: ignore[index]
    )


def workflow_url(ui_base: str | None, namespace: str, workflow_id: str) -> str | None:
    if not ui_base:
        return None
    return f"{ui_base}/namespaces/{quote(namespace)}/workflows/{quote(workflow_id, safe='')}"


@dataclass(frozen=True, slots=True)
class _Started:
    """What a delivery's history says: its input and the attempts its run has completed so far."""

    input: DeliveryInput
    attempts: list[AttemptRecord]


class WebhookLogs:
    """Reads and retries deliveries for the API, every Temporal call bounded by `rpc_timeout`."""

    def __init__(
        self, client: Client, *, rpc_timeout: timedelta, ui_base: str | None, cursor_key: bytes
    ) -> None:
        self._client = client
        self._rpc = rpc_timeout
        self._ui_base = ui_base
        self._cursor_key = cursor_key

    async def _describe(self, handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionDescription | None:
        try:
            return await handle.describe(rpc_timeout=self._rpc)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def list_deliveries(
        self,
        tenant: str,
        *,
        endpoint_id: str | None,
        status: DeliveryStatus | None,
        event_type: str | None,
        limit: int,
        cursor: str | None,
    ) -> DeliveryList:
        query = delivery_query(tenant=tenant, endpoint_id=endpoint_id, status=status, event_type=event_type)
        token = decode_cursor(cursor, tenant=tenant, key=self._cursor_key) if cursor else None
        pages = self._client.list_workflows(
            query, page_size=limit, next_page_token=token, rpc_timeout=self._rpc
        )
        try:
            await pages.fetch_next_page()
        except RPCError as err:
            if err.status is RPCStatusCode.INVALID_ARGUMENT:
                raise InvalidCursor(_INVALID_CURSOR) from None
            raise
        # Temporal's SQL visibility lists running workflows first, newest first, then closed ones by
        # close time: a delivery's workflow runs through its retry window, so this is newest first.
        items = [_from_execution(e) for e in pages.current_page or []]
        next_token = pages.next_page_token
        return DeliveryList(
            items=items,
            next_cursor=encode_cursor(next_token, tenant=tenant, key=self._cursor_key)
            if next_token
            else None,
        )

    async def count_deliveries(
        self, tenant: str, endpoint_id: str, *, since: datetime
    ) -> EndpointStatsPublic:
        """How many of an endpoint's deliveries since `since` are pending, succeeded and failed."""

        async def count(status: DeliveryStatus) -> int:
            query = delivery_query(tenant=tenant, endpoint_id=endpoint_id, status=status, created_since=since)
            return (await self._client.count_workflows(query, rpc_timeout=self._rpc)).count

        pending, succeeded, failed = await asyncio.gather(
            *(count(s) for s in (DeliveryStatus.PENDING, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED))
        )
        return EndpointStatsPublic(
            endpoint_id=endpoint_id, since=since, pending=pending, succeeded=succeeded, failed=failed
        )

    async def _attempt_in_progress(
        self, description: WorkflowExecutionDescription, number: int
    ) -> AttemptInProgress | None:
        """The attempt being made, from Temporal's record of the pending activity: how many tries of ours
        failed so far and why (the reason a failed try left as heartbeat details), and the next try."""
        pending = description.raw_description.pending_activities
        if not pending:
            return None
        activity = pending[0]
        reason = None
        if activity.attempt > 1 and activity.heartbeat_details.payloads:
            [reason] = await self._client.data_converter.decode(activity.heartbeat_details.payloads, [str])
        next_try = None
        if activity.attempt > 1 and activity.state is PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED:
            next_try = activity.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
        return AttemptInProgress(
            attempt=number, infra_failures=activity.attempt - 1, infra_error=reason, next_try_at=next_try
        )

    async def _read_history(self, workflow_id: str, run_id: str | None) -> _Started | None:
        """The input of a run and the attempts it completed, in order, from its history."""
        handle = self._client.get_workflow_handle(workflow_id, run_id=run_id)
        converter = self._client.data_converter
        started: DeliveryInput | None = None
        attempts: list[AttemptRecord] = []
        try:
            async for event in handle.fetch_history_events(rpc_timeout=self._rpc):
                if event.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                    payloads = event.workflow_execution_started_event_attributes.input.payloads
                    [started] = await converter.decode(payloads, [DeliveryInput])
                elif event.event_type is EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    payloads = event.activity_task_completed_event_attributes.result.payloads
                    [record] = await converter.decode(payloads, [AttemptRecord])
                    attempts.append(record)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        if started is None:
            return None
        return _Started(started, started.progress.attempts + attempts)

    async def _state(self, workflow_id: str, description: WorkflowExecutionDescription) -> DeliveryState:
        """A delivery's state: a completed one's result; otherwise read from its history, without a worker."""
        if description.status is WorkflowExecutionStatus.COMPLETED:
            handle = self._client.get_workflow_handle_for(
                DeliveryWorkflow.run, workflow_id, run_id=description.run_id
            )
            return await handle.result(follow_runs=False, rpc_timeout=self._rpc)
        found = await self._read_history(workflow_id, description.run_id)
        if found is None:
            raise NotFound(workflow_id)
        attrs = description.typed_search_attributes
        return DeliveryState(
            delivery_id=found.input.delivery_id,
            event_id=found.input.event_id,
            endpoint_id=found.input.endpoint_id,
            webhook_type=found.input.webhook_type,
            body=found.input.body,
            created_at=found.input.created_at,
            status=public_status(attrs, description.status),
            attempts=found.attempts,
            next_attempt_at=attrs.get(ids.NEXT_ATTEMPT_AT),
            policy=found.input.policy,
        )

    async def get_delivery(self, tenant: str, delivery: str) -> DeliveryDetail:
        workflow_id = ids.delivery_workflow_id(tenant, delivery)
        description = await self._describe(self._client.get_workflow_handle(workflow_id))
        if description is None:
            return await self._scheduled_delivery(tenant, delivery)
        state = await self._state(workflow_id, description)
        last = state.attempts[-1] if state.attempts else None
        running = description.status is WorkflowExecutionStatus.RUNNING
        return DeliveryDetail(
            id=delivery,
            event_id=state.event_id,
            endpoint_id=state.endpoint_id,
            webhook_type=state.webhook_type,
            status=DeliveryStatusPublic(state.status.value),
            attempt_count=len(state.attempts),
            last_status_code=last.status_code if last else None,
            created_at=state.created_at,
            updated_at=last.started_at if last else state.created_at,
            payload=json.loads(state.body),
            attempts=[AttemptPublic.model_validate(a, from_attributes=True) for a in state.attempts],
            next_attempt_at=state.next_attempt_at,
            attempt_in_progress=(
                await self._attempt_in_progress(description, len(state.attempts) + 1) if running else None
            ),
            workflow_url=workflow_url(self._ui_base, self._client.namespace, workflow_id),
        )

    async def _scheduled_delivery(self, tenant: str, delivery: str) -> DeliveryDetail:
        """A delivery of an accepted event whose workflow has not started yet (no worker took the event)."""
        parts = ids.split_delivery_id(delivery)
        event = await self._event_input(tenant, parts[0]) if parts else None
        if event is None or parts is None or parts[1] not in event.endpoint_ids:
            raise NotFound(delivery)
        return DeliveryDetail(
            id=delivery,
            event_id=event.event_id,
            endpoint_id=parts[1],
            webhook_type=event.webhook_type,
            status=DeliveryStatusPublic.SCHEDULED,
            attempt_count=0,
            last_status_code=None,
            created_at=event.created_at,
            updated_at=event.created_at,
            payload=json.loads(event.body),
            attempts=[],
            next_attempt_at=None,
            attempt_in_progress=None,
            workflow_url=None,
        )

    async def retry_delivery(self, tenant: str, delivery: str) -> RetryAccepted:
        """One manual attempt now: an update on the delivery's workflow, which joins one in flight."""
        workflow_id = ids.delivery_workflow_id(tenant, delivery)
        handle = self._client.get_workflow_handle_for(DeliveryWorkflow.run, workflow_id)
        try:
            # An update waits for a worker to accept it: without a worker it would wait for ever.
            return await handle.execute_update(DeliveryWorkflow.retry_now, rpc_timeout=self._rpc)
        except WorkflowUpdateFailedError as err:
            raise RetryRefused(str(err.cause or err)) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise RetryPending(delivery) from None
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
        # No open run: the retry window is over, the event is still being fanned out, or no such delivery.
        description = await self._describe(handle)
        if description is not None:
            raise RetryRefused(
                f"delivery {delivery} can no longer be retried: its retry window ended when its workflow "
                f"closed ({description.close_time:%Y-%m-%d %H:%M} UTC). Emit the event again with a new id "
                "to deliver it once more"
            )
        await self._scheduled_delivery(tenant, delivery)  # NotFound unless it is about to start
        raise RetryRefused(f"delivery {delivery} has not started yet: its first attempt comes first")

    async def _event_input(self, tenant: str, event_id: str) -> EventInput | None:
        """The event as accepted: its workflow's input, from the first event of its history."""
        handle = self._client.get_workflow_handle(ids.event_workflow_id(tenant, event_id))
        try:
            async for history_event in handle.fetch_history_events(rpc_timeout=self._rpc):
                if history_event.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                    payloads = history_event.workflow_execution_started_event_attributes.input.payloads
                    [event] = await self._client.data_converter.decode(payloads, [EventInput])
                    return event  # type: ignore[no-any-return]
                return None
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        return None

    async def get_event(self, tenant: str, event_id: str) -> EventDetail:
        """The event as accepted and each delivery's current status (`scheduled` until it starts)."""
        event = await self._event_input(tenant, event_id)
        if event is None:
            raise NotFound(event_id)

        async def delivery_summary(endpoint_id: str) -> DeliveryPublic:
            delivery = ids.delivery_id(event.event_id, endpoint_id)
            handle = self._client.get_workflow_handle(ids.delivery_workflow_id(tenant, delivery))
            description = await self._describe(handle)
            if description is None:
                return DeliveryPublic(
                    id=delivery,
                    event_id=event.event_id,
                    endpoint_id=endpoint_id,
                    webhook_type=event.webhook_type,
                    status=DeliveryStatusPublic.SCHEDULED,
                    attempt_count=0,
                    last_status_code=None,
                    created_at=event.created_at,
                    updated_at=event.created_at,
                )
            return _summary(
                description.typed_search_attributes,
                description.status,
                created=event.created_at,
                delivery=delivery,
                event_id=event.event_id,
                webhook_type=event.webhook_type,
            )

        deliveries = await asyncio.gather(*(delivery_summary(e) for e in event.endpoint_ids))
        return EventDetail(
            id=event.event_id,
            webhook_type=event.webhook_type,
            object_type=event.object_type,
            created_at=event.created_at,
            payload=json.loads(event.body),
            deliveries=list(deliveries),
        )
