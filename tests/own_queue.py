"""Deliveries on a task queue of a test's own, whose workers the test runs in this process.

The stack's worker never sees them, so a test decides when a delivery's workflow tasks and its attempts
are taken: a workflow worker without an activity worker leaves each attempt scheduled and untried. The
delivery is the product's `DeliveryWorkflow`, started as an event's or a replay's would be, and is read
and retried through the stack's API like any other (its id says its tenant).
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client, WorkflowHandle
from temporalio.common import Priority

from domain import ids
from domain.fairness import WorkKind, for_tenant
from domain.models import DeliveryInput, DeliveryOrigin, DeliveryPolicy, DeliveryProgress, DeliveryState
from history.visibility import delivery_search_attributes
from launcher import Stack
from workflows.delivery import DeliveryWorkflow

BODY = '{"webhook_type":"invoice.paid","object_type":"invoice","data":{"object":{"id":"inv_1"}}}'


async def start_delivery(
    client: Client,
    task_queue: str,
    endpoint_id: str,
    *,
    tenant: str = "tenant_a",
    origin: DeliveryOrigin = DeliveryOrigin.EVENT,
    priority_of: tuple[Stack, WorkKind] | None = None,
    progress: DeliveryProgress | None = None,
) -> WorkflowHandle[DeliveryWorkflow, DeliveryState]:
    """A delivery of a new `invoice.paid` event to `endpoint_id`: one scheduled attempt, or as `progress`
    says (where a run continued as new took it). `priority_of`: the stack whose tenant weights it is
    started with, and the kind of work it is (as the API or a replay starts it); none otherwise."""
    event_id = ids.new_event_id()
    started = DeliveryInput(
        tenant=tenant,
        event_id=event_id,
        endpoint_id=endpoint_id,
        delivery_id=ids.delivery_id(event_id, endpoint_id),
        webhook_type="invoice.paid",
        body=BODY,
        created_at=datetime.now(UTC),
        policy=DeliveryPolicy(retry_delays=[], attempt_timeout=10, retry_window=3600),
        origin=origin,
        progress=progress or DeliveryProgress(),
    )
    priority = Priority.default
    if priority_of is not None:
        stack, kind = priority_of
        priority = for_tenant(tenant, kind, stack.settings.weights, fair=stack.settings.fairness)
    return await client.start_workflow(
        DeliveryWorkflow.run,
        started,
        id=ids.delivery_workflow_id(tenant, started.delivery_id),
        task_queue=task_queue,
        search_attributes=delivery_search_attributes(started, BODY),
        priority=priority,
    )
