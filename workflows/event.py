"""`EventWorkflow`: one accepted event, fanned out to one `DeliveryWorkflow` per subscribed endpoint.

Its id is derived from the tenant and the event id, so the same event emitted twice is one workflow and
one set of deliveries. The children are started concurrently and abandoned on completion: each lives
on through its own retry schedule, while the event workflow closes as soon as all of them have started.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from domain import ids
    from domain.fairness import WorkKind, of_kind
    from domain.models import DeliveryInput, EventInput, EventSummary
    from history.visibility import delivery_search_attributes
    from workflows.delivery import DeliveryWorkflow


BATCH_BYTES = 1_000_000


@workflow.defn
class EventWorkflow:
    @workflow.run
    async def run(self, input: EventInput) -> EventSummary:
        deliveries = [
            DeliveryInput(
                tenant=input.tenant,
                event_id=input.event_id,
                endpoint_id=endpoint_id,
                delivery_id=ids.delivery_id(input.event_id, endpoint_id),
                webhook_type=input.webhook_type,
                body=input.body,
                created_at=input.created_at,
                policy=input.policies.get(endpoint_id, input.policy),
                origin=input.origin,
            )
            for endpoint_id in input.endpoint_ids
        ]
        # An ordered endpoint's delivery is started by its lane, in its turn (workflows/lane.py): the API
        # has sent it there before answering 202. Events accepted before lanes have none of these.
        ordered = set(input.ordered_endpoint_ids)
        to_start = [d for d in deliveries if d.endpoint_id not in ordered]
        # Each child's input carries the body, and Temporal refuses a workflow task completion of more
        # than a few MB: start the children in batches that stay well under it (one batch for any
        # ordinary event), each batch concurrently in one workflow task.
        per_batch = max(1, BATCH_BYTES // max(1, len(input.body.encode())))
        for first in range(0, len(to_start), per_batch):
            await asyncio.gather(*(self._start(d) for d in to_start[first : first + per_batch]))
        return EventSummary(
            tenant=input.tenant,
            event_id=input.event_id,
            webhook_type=input.webhook_type,
            object_type=input.object_type,
            body=input.body,
            created_at=input.created_at,
            delivery_ids=[d.delivery_id for d in deliveries],
        )

    async def _start(self, delivery: DeliveryInput) -> None:
        try:
            await workflow.start_child_workflow(
                DeliveryWorkflow.run,
                delivery,
                id=ids.delivery_workflow_id(delivery.tenant, delivery.delivery_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                # A delivery runs once: an id already used, by a run still open or one that has closed
                # (this workflow reset, say), is that delivery, not a second one.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=delivery_search_attributes(delivery),
                # Its workflow tasks go before scheduled retries and bulk work; the tenant's fairness key
                # and weight are this workflow's (domain/fairness.py).
                priority=of_kind(WorkKind.LIVE),
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("delivery %s already started", delivery.delivery_id)
