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
lane twice (a client's retry of an emission whose 202 was lost, or the event workflow telling the lane as
well as the API) is started once, because its delivery's workflow id refuses a second start, and uses no
number. The last number handed out is also written to the store (`lane_sequences`) before each start, and a
fresh run (the lane terminated by an operator and started again by the next event) reads it first: numbers
never start again at 1, which receivers would take for repeats. A run replaced between the write and the
start may leave a gap of one, never a repeat.

The lane's state holds references to its events (`LaneItem`), never their bodies: the body is read from the
event's workflow (`lane_body`) when its turn comes. Its history is bounded by continue-as-new, carrying the
queue, the sequence and the head, whenever Temporal suggests it, whatever the lane is waiting for; its queue
is capped (WEBHOOKS_LANE_MAX_QUEUED, which each event brings: `LaneItem.max_queued`; `MAX_QUEUED` for events
of before it), and the API refuses a full lane's new events, which a memo (`lane_full`) shows.

A lane ends with its endpoint. The API tells the endpoint's lanes (`endpoint_deleted`) once it has deleted
it, and a lane whose head failed because its endpoint was gone asks the store too (a lane the API missed:
one started a moment before, by an emission in flight). Either way the lane checks the store, then starts
each event it still holds as a delivery of its own (`close_out`), which fails as any delivery to a deleted
endpoint does, its log saying so, and completes. Its head is left to its own delivery, whose next attempt
fails the same way.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.lanes import LaneActivities
    from domain import ids
    from domain.models import (
        DeliveryInput,
        DeliveryStatus,
        LaneBlocked,
        LaneBody,
        LaneCloseOut,
        LaneEndpoint,
        LaneHead,
        LaneInput,
        LaneItem,
        LaneRef,
        LaneSequence,
        LaneSettled,
        LaneSkip,
        LaneState,
        LaneView,
        OrderedOnFailure,
    )
    from workflows.delivery import OUR_FAULTS, DeliveryWorkflow, start_delivery

# Deliveries started per run before it continues as new, unless Temporal suggests it sooner: each one adds
# about twenty events (two activities, the child's start, its settled signal, the workflow tasks), so a run
# stays far below Temporal's history limits and a replay after a worker's crash reads little.
DELIVERIES_PER_RUN = 250
# Events a lane holds behind its head. Each is a reference of a few hundred bytes (no body), so a full
# queue is a few MB of continue-as-new input, under Temporal's limits; a lane this far behind is blocked or
# its receiver is far too slow, and more events would only wait longer. The API refuses more (429). The
# default of WEBHOOKS_LANE_MAX_QUEUED, and the cap of a lane whose events came before that setting.
MAX_QUEUED = 10_000
# The memo key that says the queue is full: the API reads it (describe, which needs no worker) before
# accepting an event for the lane.
FULL_MEMO = "lane_full"
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Events of a deleted endpoint's lane started per activity (each a history read and a workflow start).
CLOSE_OUT_BATCH = 100
CLOSE_OUT_TIMEOUT = timedelta(minutes=2)
# Histories recorded before a lane ended with its endpoint replay without asking the store.
ENDS_WITH_ITS_ENDPOINT = "lane-ends-with-its-endpoint"


@workflow.defn
class LaneWorkflow:
    @workflow.init
    def __init__(self, input: LaneInput) -> None:
        self._input = input
        state = input.state
        self._sequence = state.sequence
        self._sequence_read = state.sequence_read
        self._head = state.head
        self._queue: list[LaneItem] = list(state.queue)
        self._skip_requested = state.skip_requested
        self._ending = state.ending  # its endpoint is gone (checked): the lane closes out its queue
        self._told_deleted = False  # the API says its endpoint was deleted: checked before ending
        self._starting = False  # the head is recorded, its delivery not started yet
        self._full = False  # as the memo last said
        self._max_queued = state.max_queued or MAX_QUEUED
        self._started = 0  # deliveries started by this run

    @workflow.run
    async def run(self, input: LaneInput) -> None:
        if not self._sequence_read:
            await self._read_sequence()
        self._show_full()
        while True:
            if self._told_deleted:
                self._told_deleted = False
                self._ending = self._ending or not await self._endpoint_exists()
            if self._ending:
                await self._end()
                return
            if self._head is None:
                self._continue_as_new_if_due()
                await workflow.wait_condition(lambda: bool(self._queue) or self._due() or self._told_deleted)
                if self._told_deleted:
                    continue
                if self._queue:
                    await self._start(self._queue.pop(0))
                    self._show_full()
                continue
            # Continued as new while the head is in flight or the lane is blocked too: a lane blocked for
            # days takes events all along, and its history grows with them.
            await workflow.wait_condition(lambda: self._head_done() or self._due() or self._told_deleted)
            if self._told_deleted:
                continue
            if not self._head_done():
                self._continue_as_new_if_due()
                continue
            head = self._head
            if head.status is DeliveryStatus.SUCCEEDED or self._skip_requested:
                await self._pass(head)
            elif head.on_failure is OrderedOnFailure.SKIP and not head.unavailable:
                self._head = None  # failed: its delivery's log says so, and the lane moves on
            elif head.blocked_since is None:
                # Its endpoint disabled, or deleted: a deleted one's lane ends rather than block forever.
                if head.unavailable and workflow.patched(ENDS_WITH_ITS_ENDPOINT):
                    if not await self._endpoint_exists():
                        self._ending = True
                        continue
                head.blocked_since = workflow.now()
                await self._tell_blocked(head)

    async def _endpoint_exists(self) -> bool:
        return await workflow.execute_activity_method(
            LaneActivities.endpoint_exists,
            LaneEndpoint(tenant=self._input.tenant, endpoint_id=self._input.endpoint_id),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=OUR_FAULTS,
        )

    async def _end(self) -> None:
        """Its endpoint is gone: every event still queued is started as a delivery of its own, which fails
        as any delivery to a deleted endpoint does (its log says so; nothing is sent), and the lane ends.
        Events that reach it meanwhile (an emission in flight as the endpoint was deleted) go the same way."""
        lane = self._input
        while self._queue:
            batch = self._queue[:CLOSE_OUT_BATCH]
            await workflow.execute_activity_method(
                LaneActivities.close_out,
                LaneCloseOut(tenant=lane.tenant, endpoint_id=lane.endpoint_id, items=batch),
                start_to_close_timeout=CLOSE_OUT_TIMEOUT,
                retry_policy=OUR_FAULTS,
            )
            del self._queue[: len(batch)]
            self._continue_as_new_if_due()
        workflow.logger.info("lane of deleted endpoint %s ended", lane.endpoint_id)

    def _head_done(self) -> bool:
        """Whether the lane can act on its head: it succeeded, was skipped by hand, or failed anew."""
        head = self._head
        assert head is not None
        if head.status is DeliveryStatus.SUCCEEDED or self._skip_requested:
            return True
        return head.status is DeliveryStatus.FAILED and head.blocked_since is None

    async def _read_sequence(self) -> None:
        """A fresh run goes on from the last number any earlier run of this lane handed out."""
        stored = await workflow.execute_activity_method(
            LaneActivities.last_sequence,
            self._lane_sequence(0),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=OUR_FAULTS,
        )
        self._sequence = max(self._sequence, stored)
        self._sequence_read = True

    def _lane_sequence(self, sequence: int) -> LaneSequence:
        lane = self._input
        return LaneSequence(
            tenant=lane.tenant,
            endpoint_id=lane.endpoint_id,
            ordering_key=lane.ordering_key,
            sequence=sequence,
        )

    async def _start(self, item: LaneItem) -> None:
        sequence = self._sequence + 1
        # Recorded before anything is awaited: the child's `settled` may come in the same activation as
        # its start's resolution, and signal handlers run first; it must find its head.
        self._head = LaneHead(delivery_id=item.delivery_id, sequence=sequence, on_failure=item.on_failure)
        self._sequence = sequence
        self._starting = True
        try:
            await workflow.execute_activity_method(
                LaneActivities.advance_sequence,
                self._lane_sequence(sequence),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=OUR_FAULTS,
            )
            body = await workflow.execute_activity_method(
                LaneActivities.lane_body,
                LaneBody(tenant=self._input.tenant, event_id=item.event_id),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=OUR_FAULTS,
            )
            started = body is not None and await start_delivery(self._delivery(item, sequence), body=body)
        finally:
            self._starting = False
        if not started:
            # The same event twice (an emission retried after its 202 was lost, the event workflow telling
            # the lane too, or an endpoint made ordered after its event was fanned out): delivered once,
            # and no number is used up. Or its event is no longer kept (older than the log's retention).
            if body is None:
                workflow.logger.warning("event %s of lane is no longer kept: not delivered", item.event_id)
            self._head = None
            self._sequence = sequence - 1
            return
        self._started += 1

    def _delivery(self, item: LaneItem, sequence: int) -> DeliveryInput:
        """Its input carries no body: its attempts read it from the event's history, as every delivery's
        do (the body read here is for the business ids it is found by, and says the event is kept)."""
        lane = self._input
        return item.delivery(
            lane.tenant,
            lane.endpoint_id,
            lane=LaneRef(
                workflow_id=workflow.info().workflow_id, sequence=sequence, on_failure=item.on_failure
            ),
        )

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
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=OUR_FAULTS,
        )

    def _show_full(self) -> None:
        """Keep the memo that the API reads in step with the queue, written only when it changes."""
        full = len(self._queue) >= self._max_queued
        if full != self._full:
            workflow.upsert_memo({FULL_MEMO: full})
            self._full = full

    def _due(self) -> bool:
        """Whether this run's history has grown enough to continue as new, and nothing stops it now."""
        grown = self._started >= DELIVERIES_PER_RUN or workflow.info().is_continue_as_new_suggested()
        return grown and not self._starting and workflow.all_handlers_finished()

    def _continue_as_new_if_due(self) -> None:
        """A fresh history, carrying where the lane stands, when this one has grown: between deliveries,
        while the head is in flight, or while blocked, never in the middle of starting one."""
        if not self._due():
            return
        workflow.continue_as_new(
            self._input.model_copy(
                update={
                    "state": LaneState(
                        sequence=self._sequence,
                        sequence_read=self._sequence_read,
                        head=self._head,
                        queue=self._queue,
                        skip_requested=self._skip_requested,
                        ending=self._ending,
                        max_queued=self._max_queued if self._max_queued != MAX_QUEUED else None,
                    )
                }
            )
        )

    @workflow.signal
    def enqueue(self, item: LaneItem) -> None:
        """An event for this lane, in the order the API was told of it; one already here is ignored. Past
        the cap it is still kept (a signal cannot be refused, and the API said 202): the API stops
        accepting events for a full lane, so only the few in flight when it filled go past the cap. The
        cap is the one the event came with (the setting of the process that sent it)."""
        if item.max_queued is not None and item.max_queued != self._max_queued:
            self._max_queued = item.max_queued
            self._show_full()
        if self._head is not None and self._head.delivery_id == item.delivery_id:
            return
        if any(queued.delivery_id == item.delivery_id for queued in self._queue):
            return
        self._queue.append(item)
        self._show_full()

    @workflow.signal
    def endpoint_deleted(self) -> None:
        """The API deleted the lane's endpoint (service/lanes.py): the lane checks the store, and ends."""
        self._told_deleted = True

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
            head.unavailable = settled.unavailable

    @workflow.update
    def skip(self, skip: LaneSkip) -> LaneView:
        """Move past the blocked head `skip.delivery_id` (named, so that a skip meant for one head never
        passes the next): it stays failed, and the lane starts the next event. The service has made sure
        first that no attempt of it is in flight (service/lanes.py)."""
        self._skip_requested = True
        return self.view()

    @skip.validator
    def _skip_allowed(self, skip: LaneSkip) -> None:
        head = self._head
        # A head whose delivery closed without telling the lane (terminated, say) would hold it forever.
        stuck = head is not None and skip.delivery_closed and head.status is DeliveryStatus.PENDING
        if head is None or self._starting or (head.blocked_since is None and not stuck):
            raise ValueError("this lane is not blocked: only a blocked lane's head can be skipped")
        if head.delivery_id != skip.delivery_id:
            raise ValueError(f"the lane's blocked head is {head.delivery_id}, not {skip.delivery_id}")
        if self._skip_requested:
            raise ValueError(f"{skip.delivery_id} is being skipped already")

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
            full=self._full,
        )
