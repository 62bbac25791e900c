"""`DeliveryWorkflow`: one event to one endpoint, every attempt recorded, then a window for manual retries.

The retry schedule is driven here rather than by an activity retry policy, because Temporal keeps only
the last failure of a retried activity and the webhook log needs every attempt the receiver answered.
Each attempt is one `deliver_once` execution; between attempts the workflow waits on a durable timer
that a manual retry (the `retry_now` update) can cut short. Retries that come together make one attempt:
one in flight, already asked for, or just made (`RETRY_JOIN_WINDOW`) is joined, not repeated.

Two kinds of failure are kept apart. What the receiver did (a status, a timeout, a refused connection)
is an attempt and counts against the schedule. A fault of ours (the endpoint store unreachable, a bug,
a worker lost mid-attempt) makes `deliver_once` raise, and Temporal retries it with backoff under
`OUR_FAULTS`, for as long as it takes: the schedule never pays for it and no exception of ours can fail
the workflow. The attempt, once made, records how many tries of ours failed before it and why.

When the schedule ends the workflow stays open for the policy's retry window, so that a manual retry is
always an update on the one run that holds the whole log; then it closes with its state as result.

A delivery to an ordered endpoint is started by its lane (workflows/lane.py) with `input.lane` set: each
attempt carries its sequence number, the lane is told (`settled`) when the schedule ends and when a manual
retry succeeds after that, and a manual retry is refused once the lane has moved past it. Every one of
those steps depends on `input.lane` alone, which no delivery started before lanes has: their histories
replay as they were, with no `workflow.patched` needed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributeUpdate,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.delivery import HEARTBEAT_TIMEOUT, DeliveryActivities
    from domain import ids
    from domain import search_attributes as sa
    from domain.fairness import WorkKind, attempt_kind, of_kind
    from domain.models import (
        ENDS_SCHEDULE,
        AttemptOutcome,
        AttemptRecord,
        AttemptTrigger,
        DeliverRequest,
        DeliveryInput,
        DeliveryOrigin,
        DeliveryProgress,
        DeliveryState,
        DeliveryStatus,
        LaneSettled,
        OrderedOnFailure,
        RetryAccepted,
    )
    from history.events import delivery_state
    from history.visibility import delivery_search_attributes

# Bounds the log; with continue-as-new the history stays bounded whatever the body's size.
MAX_ATTEMPTS = 100
JITTER = 0.2  # each delay is drawn from [80%, 120%] of its value
MAX_RETRY_AFTER = timedelta(days=1)  # honour Retry-After, within reason
# Temporal's slack on top of the two attempt timeouts `deliver_once` may use (waiting for the endpoint's
# turn, then the POST): the store's calls (5 s each at most: the endpoint's read, the last admission,
# signing, the lease's release) and the health that follows (10 s), with room to spare. A try whose worker
# is lost is found by its heartbeats stopping (`HEARTBEAT_TIMEOUT`) well before; this bounds one whose
# worker heartbeats but never finishes. Timeouts only: changing them changes no running workflow's history.
ACTIVITY_GRACE = timedelta(seconds=40)
# The lane's signal, by name: workflows/lane.py imports this module, so it cannot be imported here.
LANE_SETTLED_SIGNAL = "settled"
# Our own faults: retried by Temporal until they clear, never by the receiver's schedule. A fault of ours
# sets its own wait (1 s, 2, 4, 8, then 10 s: activities/delivery.py, FAULT_RETRY_CAP), so that attempts
# resume within seconds of the store's return; the maximum interval here bounds a try held back by its
# endpoint's limits, which asks for its turn (Temporal caps that at this too), and a lost try's backoff.
# The other workflows' activities retry the faults of ours they meet (the store, Temporal) under it too.
OUR_FAULTS = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=0,
)
# A retry that comes less than this after the end of an attempt asked for the same way (a manual retry,
# or a recovery's) joins that attempt, which has just answered, instead of making another POST: twenty
# requests sent at once reach the workflow over one to three seconds (each is an update, taken in turn
# by the workflow's tasks), and those arriving after the first one's attempt ended used to make one
# POST each (three to five in all). A caller that has read the attempt's answer and wants another says
# so (`after`) and is never joined to it. Which requests join is part of a run's history: another value
# needs another patch id.
RETRY_JOIN_WINDOW = timedelta(seconds=5)
# The patch under which a retry joins an attempt just made; histories recorded before it replay the old way.
RETRY_JOIN_PATCH = "retry-joins-attempt-just-made"
# A try's notes (its heartbeat details: earlier tries' faults, the endpoint's turn) are sealed by the worker
# that made it. The SDK opens them before the next try runs, and fails that activity for good if it cannot
# (`temporalio/worker/_activity.py`: "Failed decoding heartbeat details", non-retryable): a worker without
# the key the last one sealed them with, mid-rotation, or one of a version before theirs, after a rollback.
# Not the receiver's doing and not the delivery's end: the attempt is made again as a new activity, which
# has no notes, under this patch (a history of before it failed the workflow there), after a wait that
# doubles each time it happens again to the same attempt (a rotation not finished on every worker), up to
# the longest. Each time costs the attempt its count of earlier faults in the log.
NOTES_UNREADABLE = "Failed decoding heartbeat details"
NOTES_UNREADABLE_WAIT = timedelta(seconds=10)
NOTES_UNREADABLE_LONGEST_WAIT = timedelta(minutes=10)
NOTES_UNREADABLE_PATCH = "attempt-again-when-its-notes-cannot-be-read"


def notes_unreadable(err: ActivityError) -> bool:
    """Whether the activity failed before it ran, on an earlier try's notes its worker could not open: the
    SDK's own failure, non-retryable and of no type (every failure of ours has one)."""
    cause = err.cause
    return (
        isinstance(cause, ApplicationError)
        and cause.non_retryable
        and not cause.type
        and cause.message == NOTES_UNREADABLE
    )


def notes_unreadable_wait(times: int) -> timedelta:
    """The wait before making an attempt again the `times`-th time (1, 2, …) its notes could not be read."""
    return min(NOTES_UNREADABLE_WAIT * (1 << min(times - 1, 16)), NOTES_UNREADABLE_LONGEST_WAIT)


@workflow.defn
class DeliveryWorkflow:
    @workflow.init
    def __init__(self, input: DeliveryInput) -> None:
        self._input = input
        progress = input.progress  # empty for a new delivery; filled in by continue-as-new
        self._attempts: list[AttemptRecord] = list(progress.attempts)
        self._status = progress.status
        self._scheduled_attempts = progress.scheduled_attempts
        self._next_attempt_at = progress.next_attempt_at
        self._retry_until = progress.retry_until
        self._manual_requested = progress.manual_requested
        self._manual_trigger = progress.manual_trigger  # who asked: a retry, or a recovery
        self._manual_bulk = progress.manual_bulk  # asked as part of "retry all": bulk work, not live
        self._passed = progress.passed  # its ordered lane moved past it: no manual retry any more
        self._attempt_in_flight = False
        self._last_attempt_ended_at = progress.last_attempt_ended_at  # workflow time: a retry may join it
        # What visibility holds: set at start (`delivery_search_attributes`) or carried over.
        self._published = self._visible()

    @workflow.run
    async def run(self, input: DeliveryInput) -> DeliveryState:
        if self._retry_until is None:
            await self._follow_schedule()
            self._retry_until = workflow.now() + timedelta(seconds=input.policy.retry_window)
            await self._tell_lane()
        await self._take_manual_retries()
        self._publish()
        # Neither the body nor the attempts: the history holds them already (its first attempt's record
        # keeps the body), and the log reads them from there.
        return self.state().model_copy(update={"body": None, "attempts": [], "in_history": True})

    async def _follow_schedule(self) -> None:
        delays = self._input.policy.retry_delays
        while True:
            if self._next_attempt_at is not None:
                if await self._serve_manual_until(self._next_attempt_at):
                    return
                self._next_attempt_at = None
            record = await self._attempt(AttemptTrigger.SCHEDULED)
            self._scheduled_attempts += 1
            if record.outcome in ENDS_SCHEDULE or self._scheduled_attempts > len(delays):
                self._settle(record)
                return
            base = delays[self._scheduled_attempts - 1]
            delay = timedelta(seconds=base * workflow.random().uniform(1 - JITTER, 1 + JITTER))
            if record.retry_after_seconds is not None:
                delay = max(delay, min(timedelta(seconds=record.retry_after_seconds), MAX_RETRY_AFTER))
            self._next_attempt_at = workflow.now() + delay

    async def _serve_manual_until(self, deadline: datetime) -> bool:
        """Wait for the next scheduled attempt, making manual ones meanwhile; True if one ended it."""
        while await self._wait_for_manual_request(deadline):
            record = await self._manual_attempt()
            if record.outcome in ENDS_SCHEDULE:
                self._next_attempt_at = None
                return True
        return False

    async def _take_manual_retries(self) -> None:
        """The retry window: one attempt per manual request until the window ends."""
        assert self._retry_until is not None
        while len(self._attempts) < MAX_ATTEMPTS and await self._wait_for_manual_request(self._retry_until):
            record = await self._manual_attempt()
            if record.outcome is AttemptOutcome.SUCCEEDED:
                await self._tell_lane()  # a blocked lane's head, retried by hand: the lane goes on

    async def _tell_lane(self) -> None:
        """Tell an ordered delivery's lane how its schedule (or a later manual retry) ended. Never raises:
        a lane that is gone (terminated by an operator) has nobody waiting."""
        lane = self._input.lane
        if lane is None:
            return
        handle = workflow.get_external_workflow_handle(lane.workflow_id)
        try:
            await handle.signal(
                LANE_SETTLED_SIGNAL,
                LaneSettled(
                    delivery_id=self._input.delivery_id, status=self._status, unavailable=self._unavailable()
                ),
            )
        except Exception:
            workflow.logger.warning(
                "lane %s of delivery %s not found", lane.workflow_id, self._input.delivery_id
            )

    def _unavailable(self) -> bool:
        """Its last attempt found the endpoint disabled or gone: the receiver never failed it."""
        return bool(self._attempts) and self._attempts[-1].outcome is AttemptOutcome.ENDPOINT_UNAVAILABLE

    async def _wait_for_manual_request(self, deadline: datetime) -> bool:
        """True when a manual retry is asked for before `deadline`, False when the deadline comes."""
        self._publish()
        self._continue_as_new_if_suggested()
        if self._manual_requested:
            return True
        remaining = deadline - workflow.now()
        if remaining <= timedelta(0):
            return False
        try:
            await workflow.wait_condition(lambda: self._manual_requested, timeout=remaining)
        except TimeoutError:
            return False
        return True

    async def _manual_attempt(self) -> AttemptRecord:
        trigger, self._manual_trigger = self._manual_trigger, AttemptTrigger.MANUAL
        bulk, self._manual_bulk = self._manual_bulk, False
        record = await self._attempt(trigger, bulk=bulk)
        if record.outcome in ENDS_SCHEDULE or self._next_attempt_at is None:
            self._settle(record)
        return record

    def _settle(self, record: AttemptRecord) -> None:
        succeeded = record.outcome is AttemptOutcome.SUCCEEDED
        self._status = DeliveryStatus.SUCCEEDED if succeeded else DeliveryStatus.FAILED

    def _request(self, trigger: AttemptTrigger, *, interactive: bool) -> DeliverRequest:
        """What the next attempt's activity is given."""
        return DeliverRequest(
            tenant=self._input.tenant,
            endpoint_id=self._input.endpoint_id,
            delivery_id=self._input.delivery_id,
            # None: the attempt reads it from the event's history (the input of deliveries of before has it).
            body=self._input.body,
            event_id=self._input.event_id,
            attempt=len(self._attempts) + 1,
            trigger=trigger,
            timeout=self._input.policy.attempt_timeout,
            interactive=interactive,
            sequence=self._input.lane.sequence if self._input.lane else None,
        )

    async def _attempt(self, trigger: AttemptTrigger, *, bulk: bool = False) -> AttemptRecord:
        # Before anything changes: whether this is the delivery's first scheduled attempt.
        kind = attempt_kind(
            self._input.origin,
            trigger,
            first=self._scheduled_attempts == 0,
            bulk=bulk,
            ordered=self._input.lane is not None,
        )
        # A person waits for it: a manual retry of this one delivery, or a test event's first attempt.
        test = self._input.origin is DeliveryOrigin.TEST
        interactive = kind is WorkKind.LIVE and (trigger is AttemptTrigger.MANUAL or test)
        self._status = DeliveryStatus.PENDING
        self._attempt_in_flight = True
        self._manual_requested = False  # whatever asked for an attempt gets this one
        timeout = self._input.policy.attempt_timeout
        notes_lost = 0
        while True:
            try:
                record = await workflow.execute_activity_method(
                    DeliveryActivities.deliver_once,
                    self._request(trigger, interactive=interactive),
                    start_to_close_timeout=2 * timedelta(seconds=timeout) + ACTIVITY_GRACE,
                    # A lost try is made again within seconds; a slow receiver still has its whole timeout.
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=OUR_FAULTS,
                    # Live attempts before scheduled retries before bulk work, each tenant its share
                    # (domain/fairness.py); the tenant's key and weight are the workflow's own.
                    priority=of_kind(kind),
                )
                break
            except ActivityError as err:
                if not notes_unreadable(err) or not workflow.patched(NOTES_UNREADABLE_PATCH):
                    raise
                workflow.logger.warning(
                    "attempt made again: its worker could not open an earlier try's notes"
                )
                notes_lost += 1
                await workflow.sleep(notes_unreadable_wait(notes_lost))
        self._attempt_in_flight = False
        self._last_attempt_ended_at = workflow.now()
        self._attempts.append(record)
        return record

    def _visible(self) -> dict[SearchAttributeKey[Any], Any]:
        last = self._attempts[-1] if self._attempts else None
        return {
            sa.DELIVERY_STATUS: self._status.value,
            sa.ATTEMPT_COUNT: len(self._attempts),
            sa.LAST_ATTEMPT_AT: last.started_at if last else None,
            sa.LAST_STATUS_CODE: last.status_code if last else None,
            sa.NEXT_ATTEMPT_AT: self._next_attempt_at,
        }

    def _publish(self) -> None:
        """Bring the search attributes up to date in one upsert, before the workflow waits or closes."""
        current = self._visible()
        updates: list[SearchAttributeUpdate[Any]] = [
            key.value_set(value) if value is not None else key.value_unset()
            for key, value in current.items()
            if value != self._published.get(key)
        ]
        if updates:
            workflow.upsert_search_attributes(updates)
            self._published = current

    def _continue_as_new_if_suggested(self) -> None:
        """Start a fresh history, carrying the log, when Temporal says this one grows too large.

        Called only where the workflow is about to wait, with no attempt in flight; `retry_now` does
        nothing asynchronous, and a `pass_over` still waiting puts it off, so no update is cut off.
        """
        if not workflow.info().is_continue_as_new_suggested() or not workflow.all_handlers_finished():
            return
        workflow.continue_as_new(
            self._input.model_copy(
                update={
                    "progress": DeliveryProgress(
                        attempts=self._attempts,
                        status=self._status,
                        scheduled_attempts=self._scheduled_attempts,
                        next_attempt_at=self._next_attempt_at,
                        retry_until=self._retry_until,
                        manual_requested=self._manual_requested,
                        manual_trigger=self._manual_trigger,
                        manual_bulk=self._manual_bulk,
                        passed=self._passed,
                        last_attempt_ended_at=self._last_attempt_ended_at,
                    )
                }
            )
        )

    @workflow.update
    async def retry_now(
        self,
        trigger: AttemptTrigger = AttemptTrigger.MANUAL,
        bulk: bool = False,
        after: int | None = None,
    ) -> RetryAccepted:
        """Make one attempt now, logged with `trigger` (a manual retry, or a recovery); the scheduled
        ones go on if it fails. `bulk`: one of many retries asked for at once ("retry all"), made after
        live traffic rather than before it. `after`: the last attempt whose answer the caller has read;
        the attempt it gets is a later one.

        A request joins an attempt rather than make another: one in flight, one already asked for, or
        one asked for the same way (`trigger`) that ended less than `RETRY_JOIN_WINDOW` ago, unless the
        caller has read its answer (`after`). A double click, or twenty operators at once, make one
        POST; the answer names the attempt joined, which may already be in the log.
        """
        made = len(self._attempts)
        in_flight = self._attempt_in_flight
        # `after` is never set in a history of before it, so what depends on it needs no patch.
        if in_flight and not self._manual_requested and (after is None or after <= made):
            return RetryAccepted(attempt=made + 1)
        # The attempt asked for: the next one, or, while one the caller has read is still in flight (its
        # answer logged, the workflow not yet woken by it), the one after that.
        asked = made + (2 if in_flight else 1)
        if self._manual_requested:  # one person waiting for it makes the joined attempt live
            self._manual_bulk = self._manual_bulk and bulk
            return RetryAccepted(attempt=asked)
        if self._just_made(trigger, after) and workflow.patched(RETRY_JOIN_PATCH):
            return RetryAccepted(attempt=made)
        if asked > MAX_ATTEMPTS:  # only with one in flight: the validator counted those made
            raise ApplicationError(
                f"this delivery has had {MAX_ATTEMPTS} attempts, the most one can have", non_retryable=True
            )
        self._manual_trigger = trigger
        self._manual_bulk = bulk
        self._manual_requested = True
        return RetryAccepted(attempt=asked)

    def _just_made(self, trigger: AttemptTrigger, after: int | None) -> bool:
        """Whether the last attempt was asked for as `trigger` asks, ended less than `RETRY_JOIN_WINDOW`
        ago and is not one the caller has read (`after`): a retry joins it."""
        if not self._attempts or self._last_attempt_ended_at is None:
            return False
        if self._attempts[-1].trigger != trigger or (after is not None and after >= len(self._attempts)):
            return False
        return workflow.now() - self._last_attempt_ended_at < RETRY_JOIN_WINDOW

    @workflow.update
    async def pass_over(self) -> DeliveryStatus:
        """Its ordered lane is about to be skipped past it by hand: wait until no attempt of it is in flight
        or asked for (a manual retry being POSTed now), then take no more, and say how it ended. The lane is
        skipped only if it did not succeed meanwhile (service/lanes.py): so the next event is never sent
        while this one is."""
        await workflow.wait_condition(lambda: not self._attempt_in_flight and not self._manual_requested)
        if self._status is not DeliveryStatus.SUCCEEDED:
            self._passed = True
        return self._status

    @pass_over.validator
    def _pass_over_allowed(self) -> None:
        if self._input.lane is None:
            raise ValueError("this delivery is not in an ordered lane")

    @workflow.signal
    def passed(self) -> None:
        """Its ordered lane moved past it (skipped by hand while it failed)."""
        self._passed = True

    @retry_now.validator
    def _retry_allowed(
        self,
        trigger: AttemptTrigger = AttemptTrigger.MANUAL,
        bulk: bool = False,
        after: int | None = None,
    ) -> None:
        lane = self._input.lane
        if lane is not None:
            # Sending it again now would send it after the events its lane has delivered since.
            if self._status is DeliveryStatus.SUCCEEDED:
                raise ValueError(
                    f"this delivery (sequence {lane.sequence} of an ordered lane) was acknowledged; its lane "
                    "has moved on, so it is not sent again. Emit the event again with a new id to send it "
                    "at the end of its lane"
                )
            # A `skip` lane holds on a head its endpoint's being disabled failed (workflows/lane.py): that
            # head can be retried, once the endpoint is enabled again.
            if self._passed or (
                self._status is DeliveryStatus.FAILED
                and lane.on_failure is OrderedOnFailure.SKIP
                and not self._unavailable()
            ):
                raise ValueError(
                    f"this delivery (sequence {lane.sequence} of an ordered lane) was skipped; its lane has "
                    "moved on, so it is not sent again. Emit the event again with a new id to send it at "
                    "the end of its lane"
                )
        # At the most attempts, a retry of the burst that made the last one still joins it (validators
        # run only when not replaying, where `patched` is true).
        if len(self._attempts) >= MAX_ATTEMPTS and not self._just_made(trigger, after):
            raise ValueError(f"this delivery has had {MAX_ATTEMPTS} attempts, the most one can have")
        # Its window's end may come in the same workflow task as the request: refused, never accepted
        # and then dropped by the workflow as it closes.
        if self._retry_until is not None and workflow.now() >= self._retry_until:
            raise ValueError("this delivery's retry window has ended")

    @workflow.query
    def state(self) -> DeliveryState:
        return delivery_state(
            self._input, self._attempts, status=self._status, next_attempt_at=self._next_attempt_at
        )


async def start_delivery(delivery: DeliveryInput, *, body: str) -> bool:
    """Start `delivery` as a child of the running workflow (an event's fan-out, or an ordered lane);
    False if it was started already.

    It lives on through its retry window whatever its parent does (abandoned on close). A delivery runs
    once: an id already used, by a run still open or one that has closed (its parent reset, say), is
    that delivery, not a second one. Its workflow tasks go before scheduled retries and bulk work; the
    tenant's fairness key and weight are its parent's (domain/fairness.py). `body`: the event's, for the
    business ids it is found by (its input carries no body: its attempts read it from the event).
    """
    try:
        await workflow.start_child_workflow(
            DeliveryWorkflow.run,
            delivery,
            id=ids.delivery_workflow_id(delivery.tenant, delivery.delivery_id),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=delivery_search_attributes(delivery, body),
            priority=of_kind(WorkKind.LIVE),
        )
    except WorkflowAlreadyStartedError:
        workflow.logger.info("delivery %s already started", delivery.delivery_id)
        return False
    return True
