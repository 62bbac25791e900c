"""Emitting events. Each accepted event is one durable `EventWorkflow`, started before the 202."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from api import webhook_logs
from api.deps import ServicesDep, TenantDep
from api.metrics import EVENTS_ACCEPTED, EVENTS_DUPLICATE
from api.schemas import EventAccepted, EventCreate, EventDetail
from core import temporal as ids
from core.catalog import EVENT_TYPES_BY_NAME
from core.models import DeliveryPolicy, EventInput
from workflows.event import EventWorkflow

router = APIRouter(prefix="/v1/events", tags=["events"])
FANOUT_BUDGET_BYTES = 32_000_000


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


@router.post("", status_code=202)
async def emit_event(body: EventCreate, tenant: TenantDep, services: ServicesDep) -> EventAccepted:
    """Accept an event for delivery to every enabled endpoint subscribed to its type."""
    object_type = EVENT_TYPES_BY_NAME[body.webhook_type].object_type
    if body.object_type is not None and body.object_type != object_type:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "object_type"),
                    "msg": f"object_type of {body.webhook_type} is {object_type!r}, not {body.object_type!r}",
                    "input": body.object_type,
                }
            ]
        )
    try:
        payload = json.dumps(
            {
                "webhook_type": body.webhook_type,
                "object_type": object_type,
                "data": {"object": body.data.object},
            },
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,  # NaN and Infinity are not JSON: receivers' parsers would refuse them
        )
    except ValueError:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "data", "object"),
                    "msg": "numbers must be finite: NaN and Infinity are not valid JSON",
                    "input": None,
                }
            ]
        ) from None
    limit = services.settings.max_payload_bytes
    if len(payload.encode()) > limit:
        raise HTTPException(413, f"the payload is larger than {limit} bytes")
    event_id = body.id or new_event_id()
    body_sha256 = hashlib.sha256(payload.encode()).hexdigest()
    workflow_id = ids.event_workflow_id(tenant, event_id)
    created_at = datetime.now(UTC)
    endpoint_ids = await run_in_threadpool(services.store.subscribed, tenant, body.webhook_type)
    if len(payload.encode()) * max(1, len(endpoint_ids)) > FANOUT_BUDGET_BYTES:
        # Every delivery's history holds the body: past this, Temporal's history limits would fail the
        # event after its 202. Refuse it now instead.
        raise HTTPException(
            413,
            f"this payload ({len(payload.encode())} bytes) to {len(endpoint_ids)} endpoints is more than "
            f"{FANOUT_BUDGET_BYTES // 1_000_000} MB in all; send a smaller payload",
        )
    settings = services.settings
    try:
        await services.temporal.start_workflow(
            EventWorkflow.run,
            EventInput(
                tenant=tenant,
                event_id=event_id,
                webhook_type=body.webhook_type,
                object_type=object_type,
                body=payload,
                created_at=created_at,
                endpoint_ids=endpoint_ids,
                policy=DeliveryPolicy(
                    retry_delays=settings.retry_delays,
                    attempt_timeout=settings.delivery_timeout,
                    retry_window=settings.retry_window_seconds,
                ),
            ),
            id=workflow_id,
            task_queue=settings.task_queue,
            # The event id is the workflow id: a second emission of it, running or closed, is refused
            # here and answered with the first one.
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(ids.TENANT, tenant),
                    SearchAttributePair(ids.EVENT_ID, event_id),
                    SearchAttributePair(ids.EVENT_TYPE, body.webhook_type),
                ]
            ),
            memo={"created_at": created_at.isoformat(), "body_sha256": body_sha256},
            rpc_timeout=timedelta(seconds=settings.temporal_rpc_timeout),
        )
    except WorkflowAlreadyStartedError:
        first = await _already_accepted(services, workflow_id, event_id, body_sha256)
        EVENTS_DUPLICATE.labels(body.webhook_type).inc()
        return first
    EVENTS_ACCEPTED.labels(body.webhook_type).inc()
    return EventAccepted(
        id=event_id, webhook_type=body.webhook_type, object_type=object_type, created_at=created_at
    )


async def _already_accepted(
    services: ServicesDep, workflow_id: str, event_id: str, body_sha256: str
) -> EventAccepted:
    description = await services.temporal.get_workflow_handle(workflow_id).describe(
        rpc_timeout=timedelta(seconds=services.settings.temporal_rpc_timeout)
    )
    accepted_sha256 = await description.memo_value("body_sha256", None)
    if accepted_sha256 is not None and accepted_sha256 != body_sha256:
        # As with Stripe's idempotency keys: the same id with other content is a client bug, not a retry.
        raise HTTPException(
            409, f"event id {event_id} was already used for a different payload; use a new id for a new event"
        )
    webhook_type = description.typed_search_attributes.get(ids.EVENT_TYPE) or ""
    created_at = datetime.fromisoformat(str(await description.memo_value("created_at")))
    return EventAccepted(
        id=event_id,
        webhook_type=webhook_type,
        object_type=EVENT_TYPES_BY_NAME[webhook_type].object_type,
        created_at=created_at,
    )


@router.get("/{event_id}")
async def get_event(event_id: str, tenant: TenantDep, services: ServicesDep) -> EventDetail:
    """An event, the payload its endpoints receive, and each endpoint's delivery status."""
    try:
        return await services.logs.get_event(tenant, event_id)
    except webhook_logs.NotFound:
        raise HTTPException(404, f"event {event_id} not found") from None
