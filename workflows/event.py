"""`EventWorkflow`: one accepted event, fanned out to one `DeliveryWorkflow` per subscribed endpoint.

Its id is derived from the tenant and the event id, so the same event emitted twice is one workflow and
one set of deliveries. The children are started concurrently and abandoned on completion: each lives
on through its own retry schedule, while the event workflow closes as soon as all of them have started.

Its input is where the event's body is kept: the children's inputs leave it out, and each delivery's
attempts read it from this history (docs/delivery.md, "Where the payload is kept"). It returns nothing:
what it started is its history's child events, and a result that listed them again cost each event a
few hundred bytes more (histories of before kept an `EventSummary` there).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.lanes import LaneActivities
    from domain import ids
    from domain.models import DeliveryInput, EventInput
    from workflows.delivery import OUR_FAULTS, start_delivery


BATCH_BYTES = 1_000_000
# Histories recorded before the event workflow told its lanes itself replay without it.
TELLS_ITS_LANES = "event-tells-its-lanes"


@workflow.defn
class EventWorkflow:
    @workflow.run
    async def run(self, input: EventInput) -> None:
        self._body = input.body
        deliveries = [
            DeliveryInput(
                tenant=input.tenant,
                event_id=input.event_id,
                endpoint_id=endpoint_id,
                delivery_id=ids.delivery_id(input.event_id, endpoint_id),
                webhook_type=input.webhook_type,
                # No body: this workflow's input is its one copy; each attempt reads it from there.
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
        # The API told them before its 202; told again here, so that an event accepted by an API that died
        # before telling them still reaches them (later than its turn, in that case only). A lane that
        # has the event already ignores it.
        if input.ordered_endpoint_ids and workflow.patched(TELLS_ITS_LANES):
            await workflow.execute_activity_method(
                LaneActivities.tell_lanes,
                # Without the body, which a lane never takes (it reads it from this history in its turn).
                input.model_copy(update={"body": ""}),
                start_to_close_timeout=timedelta(seconds=60),
                # A fault of ours (Temporal or the store unreachable), retried until it clears.
                retry_policy=OUR_FAULTS,
            )
        # Children started in batches, each concurrently in one workflow task, as when each child's input
        # carried the body and a task's completion had to stay under Temporal's few MB (one batch for any
        # ordinary event). Their inputs no longer carry it, but the batches stay as they were: another
        # batch size would start another number of children per task than recorded histories hold.
        per_batch = max(1, BATCH_BYTES // max(1, len(input.body.encode())))
        for first in range(0, len(to_start), per_batch):
            await asyncio.gather(*(self._start(d) for d in to_start[first : first + per_batch]))

    async def _start(self, delivery: DeliveryInput) -> None:
        await start_delivery(delivery, body=self._body)
