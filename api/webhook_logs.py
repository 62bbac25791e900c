"""The webhook logs, read from Temporal: visibility for lists, workflow results and queries for detail.

Nothing here keeps a copy: a delivery's log is its `DeliveryWorkflow`'s state, and listing is a
visibility query over the search attributes the workflow upserts (eventually consistent, ~100 ms).
Manual retry is the `retry_now` update, or a new run carrying the log forward once the old one closed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from temporalio.api.common.v1 import WorkflowExecution as WorkflowExecutionRef
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.schemas import (
    AttemptPublic,
    DeliveryDetail,
    DeliveryList,
    DeliveryPublic,
    EndpointStatsPublic,
    EventDetail,
)
from core import temporal as ids
from core.models import (
    DELIVERY_VERSION,
    DeliveryInput,
    DeliveryState,
    DeliveryStatus,
    EventInput,
    RetryAccepted,
)
from workflows.delivery import MAX_ATTEMPTS, DeliveryWorkflow, delivery_search_attributes

log = logging.getLogger("webhooks.api")
UPDATE_TIMEOUT = timedelta(seconds=10)


class NotFound(Exception):
    pass


class InvalidCursor(ValueError):
    pass


class RetryPending(Exception):
    """No worker took the retry in time; Temporal may still apply it when one does."""


class RetryRefused(Exception):
    """The delivery cannot take another attempt now; the message says why."""


async def _describe(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionDescription | None:
    try:
        return await handle.describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise


def _summary(
    attrs: TypedSearchAttributes,
    *,
    fallback_created: datetime,
    delivery: str,
    event_id: str,
    webhook_type: str = "",
) -> DeliveryPublic:
    status = attrs.get(ids.DELIVERY_STATUS) or DeliveryStatus.PENDING.value
    endpoint_id = delivery.rpartition(":")[2]
    created = attrs.get(ids.CREATED_AT) or fallback_created
    return DeliveryPublic(
        id=delivery,
        event_id=event_id,
        endpoint_id=endpoint_id,
        webhook_type=attrs.get(ids.EVENT_TYPE) or webhook_type,
        status=DeliveryStatus(status),
        attempt_count=attrs.get(ids.ATTEMPT_COUNT) or 0,
        last_status_code=attrs.get(ids.LAST_STATUS_CODE),
        created_at=created,
        updated_at=attrs.get(ids.LAST_ATTEMPT_AT) or created,
    )


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def list_deliveries(
    client: Client,
    tenant: str,
    *,
    endpoint_id: str | None,
    status: DeliveryStatus | None,
    event_type: str | None,
    limit: int,
    cursor: str | None,
    cursor_key: bytes,
) -> DeliveryList:
    clauses = ["WorkflowType = 'DeliveryWorkflow'", f"{ids.TENANT.name} = {_quoted(tenant)}"]
    if endpoint_id:
        clauses.append(f"{ids.ENDPOINT_ID.name} = {_quoted(endpoint_id)}")
    if status:
        clauses.append(f"{ids.DELIVERY_STATUS.name} = {_quoted(status.value)}")
    if event_type:
        clauses.append(f"{ids.EVENT_TYPE.name} = {_quoted(event_type)}")
    token = decode_cursor(cursor, tenant=tenant, key=cursor_key) if cursor else None
    pages = client.list_workflows(" AND ".join(clauses), page_size=limit, next_page_token=token)
    try:
        await pages.fetch_next_page()
    except RPCError as err:
        if err.status is RPCStatusCode.INVALID_ARGUMENT:
            raise InvalidCursor(_INVALID_CURSOR) from None
        raise
    page = pages.current_page or []
    current = await _current_runs(client, tenant, {e.id for e in page if e.status is not _RUNNING})
    items: dict[str, DeliveryPublic] = {}
    for execution in page:
        if current.get(execution.id, execution.run_id) != execution.run_id:
            continue  # a closed run that a manual retry replaced, listed until Temporal deletes it
        items.setdefault(execution.id, _from_execution(execution))
    # Temporal's SQL visibility orders running workflows first, then by close time, newest first, and
    # cannot order otherwise; within a page we make that exact with our own timestamps.
    ordered = sorted(
        items.values(), key=lambda d: (d.status is not DeliveryStatus.PENDING, -d.updated_at.timestamp())
    )
    next_token = pages.next_page_token
    return DeliveryList(
        items=ordered,
        next_cursor=encode_cursor(next_token, tenant=tenant, key=cursor_key) if next_token else None,
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


_RUNNING = WorkflowExecutionStatus.RUNNING
# Up to this many deliveries in a window are counted exactly (one visibility page, deduplicated by
# workflow id); beyond it, Temporal's counts, which may include replaced runs for a while.
EXACT_COUNT_LIMIT = 1000


async def _current_runs(client: Client, tenant: str, workflow_ids: set[str]) -> dict[str, str]:
    """The newest run id of each of these delivery workflows.

    A manual retry of a closed delivery starts a new run and deletes the closed one, but Temporal deletes
    asynchronously (up to a minute or so), so until then visibility still lists the old run, under its
    old status: a delivery retried into success would still show under `status=failed`.
    """
    if not workflow_ids:
        return {}
    query = (
        f"WorkflowType = 'DeliveryWorkflow' AND {ids.TENANT.name} = {_quoted(tenant)} AND WorkflowId IN ("
        + ", ".join(_quoted(i) for i in sorted(workflow_ids))
        + ")"
    )
    newest: dict[str, WorkflowExecution] = {}
    async for execution in client.list_workflows(query, page_size=1000):
        _keep_newest(newest, execution)
    return {workflow_id: e.run_id for workflow_id, e in newest.items()}


def _keep_newest(newest: dict[str, WorkflowExecution], execution: WorkflowExecution) -> None:
    seen = newest.get(execution.id)
    if seen is None or execution.start_time > seen.start_time:
        newest[execution.id] = execution


async def count_deliveries(
    client: Client, tenant: str, endpoint_id: str, *, since: datetime
) -> EndpointStatsPublic:
    """How many of an endpoint's deliveries since `since` are pending, succeeded and failed.

    As eventually consistent as the lists. Up to `EXACT_COUNT_LIMIT` deliveries each is counted once, by
    its newest run; past that, visibility counts, which can count a delivery retried by hand after it
    closed twice until Temporal has deleted the run it replaced.
    """
    base = " AND ".join(
        [
            "WorkflowType = 'DeliveryWorkflow'",
            f"{ids.TENANT.name} = {_quoted(tenant)}",
            f"{ids.ENDPOINT_ID.name} = {_quoted(endpoint_id)}",
            f"{ids.CREATED_AT.name} >= {_quoted(since.astimezone(UTC).isoformat().replace('+00:00', 'Z'))}",
        ]
    )

    pages = client.list_workflows(base, page_size=EXACT_COUNT_LIMIT)
    await pages.fetch_next_page()
    if not pages.next_page_token:
        newest: dict[str, WorkflowExecution] = {}
        for execution in pages.current_page or []:
            _keep_newest(newest, execution)
        tally = {status: 0 for status in DeliveryStatus}
        for execution in newest.values():
            value = execution.typed_search_attributes.get(ids.DELIVERY_STATUS) or DeliveryStatus.PENDING.value
            tally[DeliveryStatus(value)] += 1
        return EndpointStatsPublic(
            endpoint_id=endpoint_id,
            since=since,
            pending=tally[DeliveryStatus.PENDING],
            succeeded=tally[DeliveryStatus.SUCCEEDED],
            failed=tally[DeliveryStatus.FAILED],
        )

    async def count(status: DeliveryStatus) -> int:
        query = f"{base} AND {ids.DELIVERY_STATUS.name} = {_quoted(status.value)}"
        return (await client.count_workflows(query)).count

    pending, succeeded, failed = await asyncio.gather(
        *(count(s) for s in (DeliveryStatus.PENDING, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED))
    )
    return EndpointStatsPublic(
        endpoint_id=endpoint_id, since=since, pending=pending, succeeded=succeeded, failed=failed
    )


def _from_execution(execution: WorkflowExecution) -> DeliveryPublic:
    delivery = execution.id.split(":", 2)[2]
    return _summary(
        execution.typed_search_attributes,
        fallback_created=execution.start_time,
        delivery=delivery,
        event_id=ids.split_delivery_id(delivery)[0],  # type: ignore[index]
    )


async def read_delivery_state(
    handle: WorkflowHandle[DeliveryWorkflow, DeliveryState],
    description: WorkflowExecutionDescription,
) -> DeliveryState:
    """A closed delivery's state is its result (no worker needed); a running one answers a query."""
    if description.status is WorkflowExecutionStatus.COMPLETED:
        return await handle.result()
    return await handle.query(DeliveryWorkflow.state)


def workflow_url(ui_base: str | None, namespace: str, workflow_id: str) -> str | None:
    if not ui_base:
        return None
    return f"{ui_base}/namespaces/{quote(namespace)}/workflows/{quote(workflow_id, safe='')}"


async def get_delivery(client: Client, tenant: str, delivery: str, *, ui_base: str | None) -> DeliveryDetail:
    workflow_id = ids.delivery_workflow_id(tenant, delivery)
    handle = client.get_workflow_handle_for(DeliveryWorkflow.run, workflow_id)
    description = await _describe(handle)
    if description is None:
        raise NotFound(delivery)
    state = await read_delivery_state(handle, description)
    summary = _summary(
        description.typed_search_attributes,
        fallback_created=state.created_at,
        delivery=delivery,
        event_id=state.event_id,
        webhook_type=state.webhook_type,
    )
    last = state.attempts[-1] if state.attempts else None
    return DeliveryDetail(
        **{
            **summary.model_dump(),
            # The workflow's own state is fresher than its search attributes.
            "status": state.status,
            "attempt_count": len(state.attempts),
            "last_status_code": last.status_code if last else None,
            "updated_at": last.started_at if last else state.created_at,
        },
        payload=json.loads(state.body),
        attempts=[AttemptPublic.model_validate(a, from_attributes=True) for a in state.attempts],
        next_attempt_at=state.next_attempt_at,
        workflow_url=workflow_url(ui_base, client.namespace, workflow_id),
    )


async def retry_delivery(client: Client, tenant: str, delivery: str, *, task_queue: str) -> RetryAccepted:
    """One manual attempt now: an update on the running delivery, or a new run of a closed one."""
    workflow_id = ids.delivery_workflow_id(tenant, delivery)
    for _ in range(3):  # the delivery can close between our look and our update
        handle = client.get_workflow_handle_for(DeliveryWorkflow.run, workflow_id)
        description = await _describe(handle)
        if description is None:
            raise NotFound(delivery)
        if description.status is WorkflowExecutionStatus.RUNNING:
            try:
                # An update waits for a worker to accept it: without a worker it would wait forever.
                return await handle.execute_update(DeliveryWorkflow.retry_now, rpc_timeout=UPDATE_TIMEOUT)
            except WorkflowUpdateFailedError as err:
                raise RetryRefused(str(err.cause or err)) from None
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                raise RetryPending(delivery) from None
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise
                continue  # it closed meanwhile: start a new run below
        state = await read_delivery_state(handle, description)
        if len(state.attempts) >= MAX_ATTEMPTS:
            raise RetryRefused(f"this delivery has had {MAX_ATTEMPTS} attempts, the most one can have")
        rerun = DeliveryInput(
            tenant=tenant,
            event_id=state.event_id,
            endpoint_id=state.endpoint_id,
            delivery_id=state.delivery_id,
            webhook_type=state.webhook_type,
            body=state.body,
            created_at=state.created_at,
            policy=state.policy,
            prior_attempts=state.attempts,
            manual_only=True,
            version=DELIVERY_VERSION,
        )
        try:
            await client.start_workflow(
                DeliveryWorkflow.run,
                rerun,
                id=workflow_id,
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=delivery_search_attributes(rerun),
            )
        except WorkflowAlreadyStartedError:
            continue  # another retry started a run first: send it our request instead
        # The new run carries every earlier attempt; drop the closed run so the log lists one entry.
        # The retry is accepted either way: lists already show only the newest run of a delivery.
        try:
            await client.workflow_service.delete_workflow_execution(
                DeleteWorkflowExecutionRequest(
                    namespace=client.namespace,
                    workflow_execution=WorkflowExecutionRef(
                        workflow_id=workflow_id, run_id=description.run_id
                    ),
                )
            )
        except RPCError as err:
            log.warning("could not delete the replaced run of %s: %s", workflow_id, err.message)
        return RetryAccepted(attempt=len(state.attempts) + 1)
    raise RetryRefused(f"delivery {delivery} kept changing state; try again")


async def get_event(client: Client, tenant: str, event_id: str) -> EventDetail:
    """The event as accepted (its workflow's input) and each delivery's current status."""
    handle = client.get_workflow_handle(ids.event_workflow_id(tenant, event_id))
    event: EventInput | None = None
    try:
        async for history_event in handle.fetch_history_events():
            if history_event.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                payloads = history_event.workflow_execution_started_event_attributes.input.payloads
                [event] = await client.data_converter.decode(payloads, [EventInput])
            break
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise NotFound(event_id) from None
        raise
    if event is None:
        raise NotFound(event_id)
    found = event

    async def delivery_summary(endpoint_id: str) -> DeliveryPublic:
        delivery = ids.delivery_id(found.event_id, endpoint_id)
        handle = client.get_workflow_handle(ids.delivery_workflow_id(tenant, delivery))
        description = await _describe(handle)
        # Not described yet: the event workflow is still starting its children.
        attrs = description.typed_search_attributes if description else TypedSearchAttributes.empty
        return _summary(
            attrs,
            fallback_created=found.created_at,
            delivery=delivery,
            event_id=found.event_id,
            webhook_type=found.webhook_type,
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
