"""`LaneWorkflow`: one ordered lane, (endpoint, ordering key), delivering its events one at a time, in order.

An ordered endpoint's events do not go through the event workflow's fan-out. The API sends each one to its
lane with signal-with-start (`enqueue`) before it answers 202, so a lane receives its events in the order
their 202s were given, whatever order their event workflows run in. The lane is the only one who hands out
sequence numbers, so they are dense and follow that order.

The lane starts the delivery of its head, one `DeliveryWorkflow` child like any other (its log, manual
retry, the dashboard and the API work as for every delivery), carrying its sequence number, and waits until
the delivery tells it (`settled`) that its schedule ended. A 2xx: the next one. No 2xx: with `skip` the lane
moves on; with `block` it waits (other keys' lanes go on) until the head is retried by hand and succeeds,
or is skipped by hand (`skip`).

The sequence is handed out when a delivery starts, not when its event arrives: an event that reaches the
lane twice (a client's retry of an emission whose 202 was lost) is started once, because its delivery's
workflow id refuses a second start, and uses no number. The lane never closes by itself (a new run would
number from 1 again): an idle lane is an open workflow waiting for a signal, which costs no action. Its
history is bounded by continue-as-new, carrying the queue, the sequence and the head.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.lanes import LaneActivities
    from domain import ids
    from domain.models import (
        DeliveryStatus,
        LaneBlocked,
        LaneHead,
        LaneInput,
        LaneItem,
        LaneRef,
        LaneSettled,
        LaneState,
        LaneView,
        OrderedOnFailure,
    )
    from workflows.delivery import DeliveryWorkflow, start_delivery

# Deliveries started per run before it continues as new, unless Temporal suggests it sooner: each one adds
# about ten events (the child's start, its settled signal, the workflow tasks), so a run stays far below
# Temporal's history limits and a replay after a worker's crash reads little.
DELIVERIES_PER_RUN = 500
# The operational event's outbox write: a fault of ours, retried until the store answers.
OUR_FAULTS = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)


@workflow.defn
class LaneWorkflow:
    @workflow.init
    def __init__(self, input: LaneInput) -> None:
        self._input = input
        state = input.state
        self._sequence = state.sequence
        self._head = state.head
        self._queue: list[LaneItem] = list(state.queue)
        self._skip_requested = state.skip_requested
        self._started = 0  # deliveries started by this run

    @workflow.run
    async def run(self, input: LaneInput) -> None:
        while True:
            if self._head is None:
                self._continue_as_new_if_due()
                await workflow.wait_condition(lambda: bool(self._queue))
                await self._start(self._queue.pop(0))
                continue
            await workflow.wait_condition(self._head_done)
            head = self._head
            if head.status is DeliveryStatus.SUCCEEDED or self._skip_requested:
                await self._pass(head)
            elif head.on_failure is OrderedOnFailure.SKIP:
                self._head = None  # failed: its delivery's log says so, and the lane moves on
            elif head.blocked_since is None:
                head.blocked_since = workflow.now()
                await self._tell_blocked(head)
                self._continue_as_new_if_due()

    def _head_done(self) -> bool:
        """Whether the lane can act on its head: it succeeded, was skipped by hand, or failed anew."""
        head = self._head
        assert head is not None
        if head.status is DeliveryStatus.SUCCEEDED or self._skip_requested:
            return True
        return head.status is DeliveryStatus.FAILED and head.blocked_since is None

    async def _start(self, item: LaneItem) -> None:
        sequence = self._sequence + 1
        delivery = item.delivery.model_copy(
            update={
                "lane": LaneRef(
                    workflow_id=workflow.info().workflow_id, sequence=sequence, on_failure=item.on_failure
                )
            }
        )
        if not await start_delivery(delivery):
            # The same event twice (an emission retried after its 202 was lost, or an endpoint made
            # ordered after its event was fanned out): delivered once, and no number is used up.
            return
        self._sequence = sequence
        self._started += 1
        self._head = LaneHead(delivery_id=delivery.delivery_id, sequence=sequence, on_failure=item.on_failure)

    async def _pass(self, head: LaneHead) -> None:
        """The lane moves on; a head skipped by hand is told, so that it takes no more manual retries."""
        skipped = head.status is not DeliveryStatus.SUCCEEDED
        self._head = None
        self._skip_requested = False
        if skipped:
            delivery = workflow.get_external_workflow_handle(
                ids.delivery_workflow_id(self._input.tenant, head.delivery_id)
            )
            try:
                await delivery.signal(DeliveryWorkflow.passed)
            except Exception:  # its retry window is over: nothing left to tell
                workflow.logger.info("delivery %s skipped after it closed", head.delivery_id)

    async def _tell_blocked(self, head: LaneHead) -> None:
        """The tenant is told (`webhook_endpoint.lane_blocked`), through the store's outbox of operational
        events, as for an endpoint's failing or disabled."""
        await workflow.execute_activity_method(
            LaneActivities.lane_blocked,
            LaneBlocked(
                tenant=self._input.tenant,
                endpoint_id=self._input.endpoint_id,
                ordering_key=self._input.ordering_key,
                delivery_id=head.delivery_id,
                sequence=head.sequence,
                at=workflow.now(),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=OUR_FAULTS,
        )

    def _continue_as_new_if_due(self) -> None:
        """A fresh history, carrying where the lane stands, when this one has grown: only between
        deliveries or while blocked, with no update running."""
        due = self._started >= DELIVERIES_PER_RUN or workflow.info().is_continue_as_new_suggested()
        if not due or not workflow.all_handlers_finished():
            return
        workflow.continue_as_new(
            self._input.model_copy(
                update={
                    "state": LaneState(
                        sequence=self._sequence,
                        head=self._head,
                        queue=self._queue,
                        skip_requested=self._skip_requested,
                    )
                }
            )
        )

    @workflow.signal
    def enqueue(self, item: LaneItem) -> None:
        """An event for this lane, in the order the API was told of it; one already here is ignored."""
        delivery_id = item.delivery.delivery_id
        if self._head is not None and self._head.delivery_id == delivery_id:
            return
        if any(queued.delivery.delivery_id == delivery_id for queued in self._queue):
            return
        self._queue.append(item)

    @workflow.signal
    def settled(self, settled: LaneSettled) -> None:
        """The head's schedule ended (or a manual retry of it succeeded since)."""
        head = self._head
        if head is None or head.delivery_id != settled.delivery_id:
            return  # an earlier head, retried by hand after the lane moved past it
        if settled.status is DeliveryStatus.SUCCEEDED:
            head.status = DeliveryStatus.SUCCEEDED
        elif head.status is not DeliveryStatus.FAILED:
            head.status = DeliveryStatus.FAILED

    @workflow.update
    def skip(self, delivery_id: str) -> LaneView:
        """Move past the blocked head `delivery_id` (named, so that a skip meant for one head never
        passes the next): it stays failed, and the lane starts the next event."""
        self._skip_requested = True
        return self.view()

    @skip.validator
    def _skip_allowed(self, delivery_id: str) -> None:
        head = self._head
        if head is None or head.blocked_since is None:
            raise ValueError("this lane is not blocked: only a blocked lane's head can be skipped")
        if head.delivery_id != delivery_id:
            raise ValueError(f"the lane's blocked head is {head.delivery_id}, not {delivery_id}")
        if self._skip_requested:
            raise ValueError(f"{delivery_id} is being skipped already")

    @workflow.query
    def view(self) -> LaneView:
        head = self._head
        return LaneView(
            endpoint_id=self._input.endpoint_id,
            ordering_key=self._input.ordering_key,
            sequence=self._sequence,
            head=head,
            queued=len(self._queue),
            blocked=head is not None and head.blocked_since is not None and not self._skip_requested,
        )
