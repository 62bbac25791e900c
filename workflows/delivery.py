"""`DeliveryWorkflow`: one event to one endpoint, every attempt recorded, until it succeeds or gives up.

The retry schedule is driven here rather than by an activity retry policy, because Temporal keeps only
the last failure of a retried activity and the webhook log needs every attempt. Each attempt is one
`deliver_once` execution; between attempts the workflow waits on a durable timer that a manual retry
(the `retry_now` update) can cut short. The delivery's state is the workflow's result, so its log can be
read without a worker once the workflow has closed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.delivery import DeliveryActivities
    from core import temporal as ids
    from core.models import (
        AttemptOutcome,
        AttemptRecord,
        AttemptTrigger,
        DeliverRequest,
        DeliveryInput,
        DeliveryState,
        DeliveryStatus,
        RetryAccepted,
    )

# Bounds the workflow's history (about 13 events per attempt) and the log carried into a new run.
MAX_ATTEMPTS = 100
JITTER = 0.2  # each delay is drawn from [80%, 120%] of its value
MAX_RETRY_AFTER = timedelta(days=1)  # honour Retry-After, within reason
# Temporal's own slack on top of the HTTP timeout, so a lost worker shows up as a failed attempt.
ACTIVITY_GRACE = timedelta(seconds=10)
_STOPS_SCHEDULE = frozenset(
    {AttemptOutcome.SUCCEEDED, AttemptOutcome.GONE, AttemptOutcome.ENDPOINT_UNAVAILABLE}
)


@workflow.defn
class DeliveryWorkflow:
    @workflow.init
    def __init__(self, input: DeliveryInput) -> None:
        self._input = input
        self._attempts: list[AttemptRecord] = list(input.prior_attempts)
        self._status = DeliveryStatus.PENDING
        self._next_attempt_at: datetime | None = None
        self._manual_requested = 0
        self._attempt_in_flight = False
        # Version 2 (`DeliveryInput.version`) makes its first attempt as a local activity, inside the
        # workflow task that starts the delivery (no activity task round trip, three history events
        # fewer), and upserts search attributes once per step. The version travels in the input rather
        # than as a `workflow.patched` marker, which would cost every delivery one more upsert.
        self._lean = input.version >= 2
        # What visibility holds: `delivery_search_attributes` wrote it when the delivery started.
        self._published = self._visible()

    @workflow.run
    async def run(self, input: DeliveryInput) -> DeliveryState:
        if input.manual_only:
            self._manual_requested += 1
        else:
            await self._follow_schedule()
        # Manual retries accepted before the schedule ended still get their attempt.
        while self._manual_requested:
            await self._manual_attempt()
        if self._status is DeliveryStatus.PENDING:
            self._set_status(DeliveryStatus.FAILED)
        self._publish()
        return self.state()

    async def _follow_schedule(self) -> None:
        delays = self._input.policy.retry_delays
        for index in range(len(delays) + 1):
            record = await self._attempt(AttemptTrigger.SCHEDULED)
            if record.outcome in _STOPS_SCHEDULE or index == len(delays):
                self._set_status(
                    DeliveryStatus.SUCCEEDED
                    if record.outcome is AttemptOutcome.SUCCEEDED
                    else DeliveryStatus.FAILED
                )
                return
            delay = timedelta(seconds=delays[index] * workflow.random().uniform(1 - JITTER, 1 + JITTER))
            if record.retry_after_seconds is not None:
                delay = max(delay, min(timedelta(seconds=record.retry_after_seconds), MAX_RETRY_AFTER))
            answered_at = workflow.now()
            if self._lean:
                # A local activity runs inside the workflow task, whose clock stopped when it began:
                # count from the receiver's answer, so Retry-After is honoured from when it was said.
                finished = record.started_at + timedelta(milliseconds=record.duration_ms)
                answered_at = max(answered_at, finished)
            self._next_attempt_at = answered_at + delay
            self._publish()
            if await self._serve_manual_until(self._next_attempt_at):
                return
            self._next_attempt_at = None

    async def _serve_manual_until(self, deadline: datetime) -> bool:
        """Wait for the next scheduled attempt, making manual ones meanwhile; True if one ended it."""
        while (remaining := deadline - workflow.now()) > timedelta(0):
            self._publish()
            try:
                await workflow.wait_condition(lambda: self._manual_requested > 0, timeout=remaining)
            except TimeoutError:
                return False
            record = await self._manual_attempt()
            if record.outcome in _STOPS_SCHEDULE:
                self._next_attempt_at = None
                return True
        return False

    async def _manual_attempt(self) -> AttemptRecord:
        self._manual_requested -= 1
        record = await self._attempt(AttemptTrigger.MANUAL)
        if record.outcome is AttemptOutcome.SUCCEEDED:
            self._set_status(DeliveryStatus.SUCCEEDED)
        elif record.outcome in _STOPS_SCHEDULE or self._next_attempt_at is None:
            self._set_status(DeliveryStatus.FAILED)
        return record

    async def _attempt(self, trigger: AttemptTrigger) -> AttemptRecord:
        number = len(self._attempts) + 1
        started_at = workflow.now()
        self._set_status(DeliveryStatus.PENDING)
        self._attempt_in_flight = True
        request = DeliverRequest(
            tenant=self._input.tenant,
            endpoint_id=self._input.endpoint_id,
            delivery_id=self._input.delivery_id,
            body=self._input.body,
            attempt=number,
            trigger=trigger,
            timeout=self._input.policy.attempt_timeout,
        )
        timeout = timedelta(seconds=self._input.policy.attempt_timeout) + ACTIVITY_GRACE
        # One execution per attempt: the schedule above decides about retries and logs each.
        once = RetryPolicy(maximum_attempts=1)
        try:
            if self._lean and number == 1 and trigger is AttemptTrigger.SCHEDULED:
                record = await workflow.execute_local_activity_method(
                    DeliveryActivities.deliver_once,
                    request,
                    start_to_close_timeout=timeout,
                    retry_policy=once,
                )
            else:
                record = await workflow.execute_activity_method(
                    DeliveryActivities.deliver_once,
                    request,
                    start_to_close_timeout=timeout,
                    retry_policy=once,
                )
        except ActivityError as err:
            cause = err.cause or err
            record = AttemptRecord(
                attempt=number,
                trigger=trigger,
                started_at=started_at,
                duration_ms=int((workflow.now() - started_at).total_seconds() * 1000),
                outcome=AttemptOutcome.RETRYABLE,
                error=f"attempt did not complete: {cause}",
            )
        self._attempt_in_flight = False
        self._attempts.append(record)
        if not self._lean:
            updates: list[SearchAttributeUpdate[Any]] = [
                ids.ATTEMPT_COUNT.value_set(len(self._attempts)),
                ids.LAST_ATTEMPT_AT.value_set(record.started_at),
            ]
            if record.status_code is not None:
                updates.append(ids.LAST_STATUS_CODE.value_set(record.status_code))
            workflow.upsert_search_attributes(updates)
        return record

    def _set_status(self, status: DeliveryStatus) -> None:
        if status is not self._status:
            self._status = status
            if not self._lean:
                workflow.upsert_search_attributes([ids.DELIVERY_STATUS.value_set(status.value)])

    def _visible(self) -> dict[SearchAttributeKey[Any], Any]:
        last = self._attempts[-1] if self._attempts else None
        return {
            ids.DELIVERY_STATUS: self._status.value,
            ids.ATTEMPT_COUNT: len(self._attempts),
            ids.LAST_ATTEMPT_AT: last.started_at if last else None,
            ids.LAST_STATUS_CODE: last.status_code if last else None,
        }

    def _publish(self) -> None:
        """Bring the search attributes up to date in one upsert, before the workflow waits or closes."""
        if not self._lean:
            return  # version 1 upserted as it went
        current = self._visible()
        updates = [
            key.value_set(value)
            for key, value in current.items()
            if value is not None and value != self._published[key]
        ]
        if updates:
            workflow.upsert_search_attributes(updates)
            self._published = current

    @workflow.update
    async def retry_now(self) -> RetryAccepted:
        """Make one attempt now, marked manual; the scheduled ones go on if it fails.

        Requests that arrive while one is still waiting to start share its attempt, so a double click
        sends one POST, not two.
        """
        if not self._manual_requested:
            self._manual_requested = 1
        return RetryAccepted(attempt=len(self._attempts) + int(self._attempt_in_flight) + 1)

    @retry_now.validator
    def _retry_allowed(self) -> None:
        if len(self._attempts) >= MAX_ATTEMPTS:
            raise ValueError(f"this delivery has had {MAX_ATTEMPTS} attempts, the most one can have")

    @workflow.query
    def state(self) -> DeliveryState:
        return DeliveryState(
            delivery_id=self._input.delivery_id,
            event_id=self._input.event_id,
            endpoint_id=self._input.endpoint_id,
            webhook_type=self._input.webhook_type,
            body=self._input.body,
            created_at=self._input.created_at,
            status=self._status,
            attempts=self._attempts,
            next_attempt_at=self._next_attempt_at,
            policy=self._input.policy,
        )


def delivery_search_attributes(input: DeliveryInput) -> TypedSearchAttributes:
    """What an operator filters deliveries by in the Temporal Web UI, set when the delivery starts."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(ids.TENANT, input.tenant),
        SearchAttributePair(ids.ENDPOINT_ID, input.endpoint_id),
        SearchAttributePair(ids.EVENT_ID, input.event_id),
        SearchAttributePair(ids.EVENT_TYPE, input.webhook_type),
        SearchAttributePair(ids.CREATED_AT, input.created_at),
        SearchAttributePair(ids.DELIVERY_STATUS, DeliveryStatus.PENDING.value),
        SearchAttributePair(ids.ATTEMPT_COUNT, len(input.prior_attempts)),
    ]
    if input.prior_attempts:
        last = input.prior_attempts[-1]
        pairs.append(SearchAttributePair(ids.LAST_ATTEMPT_AT, last.started_at))
        if last.status_code is not None:
            pairs.append(SearchAttributePair(ids.LAST_STATUS_CODE, last.status_code))
    return TypedSearchAttributes(pairs)
