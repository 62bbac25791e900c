"""Bench-only shapes of the product's workflows, measured beside it in `make bench` and never shipped.

Each is registered under the product's own type name, on a task queue of its own (its lane, see
`bench/lanes.py`): the product's `EventWorkflow` starts it as its child, and the lane's API reads and
retries it as it would a product delivery, while no product worker ever sees one.

- `LocalFirstDeliveryWorkflow`: the first attempt as a local activity, inside the workflow task that
  starts the delivery, as the product did before its reliability rework (one activity task round trip
  and three history events fewer, but the workflow task stays open for the whole POST).
- `QuietCloseDeliveryWorkflow` and `BareStartEventWorkflow`: what one upsert, and the search
  attributes given at a delivery's start, cost (`make bench`'s "tried" table; not in its default run).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.delivery import DeliveryActivities
    from domain import ids
    from domain.models import (
        AttemptRecord,
        AttemptTrigger,
        DeliveryInput,
        DeliveryState,
        EventInput,
    )
    from workflows.delivery import ACTIVITY_GRACE, OUR_FAULTS, DeliveryWorkflow
    from workflows.event import EventWorkflow


@workflow.defn(name="DeliveryWorkflow")
class LocalFirstDeliveryWorkflow(DeliveryWorkflow):
    @workflow.run
    async def run(self, input: DeliveryInput) -> DeliveryState:
        return await super().run(input)

    async def _attempt(self, trigger: AttemptTrigger, *, bulk: bool = False) -> AttemptRecord:
        if self._attempts or trigger is not AttemptTrigger.SCHEDULED:
            return await super()._attempt(trigger, bulk=bulk)
        # The product's `_attempt`, with the activity made local.
        self._attempt_in_flight = True
        self._manual_requested = False
        timeout = self._input.policy.attempt_timeout
        record = await workflow.execute_local_activity_method(
            DeliveryActivities.deliver_once,
            self._request(trigger, interactive=False),
            start_to_close_timeout=2 * timedelta(seconds=timeout) + ACTIVITY_GRACE,
            retry_policy=OUR_FAULTS,
        )  # a local activity has no task to queue: no priority
        self._attempt_in_flight = False
        self._attempts.append(record)
        return record


@workflow.defn(name="DeliveryWorkflow")
class QuietCloseDeliveryWorkflow(DeliveryWorkflow):
    """Closes without its last upsert, leaving visibility to tell the outcome from the closed execution
    (only meaningful with a retry window of 0: an open workflow's status can come from nowhere else)."""

    @workflow.run
    async def run(self, input: DeliveryInput) -> DeliveryState:
        return await super().run(input)

    def _publish(self) -> None:
        closing = self._retry_until is not None and workflow.now() >= self._retry_until
        if not closing:
            super()._publish()


@workflow.defn(name="EventWorkflow")
class BareStartEventWorkflow(EventWorkflow):
    """Starts each delivery with no search attributes: the most that fewer of them at start could save."""

    @workflow.run
    async def run(self, input: EventInput) -> None:
        await super().run(input)

    async def _start(self, delivery: DeliveryInput) -> None:
        try:
            await workflow.start_child_workflow(
                DeliveryWorkflow.run,
                delivery,
                id=ids.delivery_workflow_id(delivery.tenant, delivery.delivery_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("delivery %s already started", delivery.delivery_id)
