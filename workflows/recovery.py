"""`RecoveryWorkflow`: an endpoint's failed deliveries re-attempted (recover), or the events it missed
delivered (replay), one page at a time, paced, durable, cancellable.

One run per recovery on the workflow id `recovery:{tenant}:{endpoint_id}`, so that Temporal itself keeps
one recovery at a time per endpoint. Each page is one activity (activities/recovery.py lists it from
visibility and acts on it); after a page that made deliveries, one durable timer holds the pace at the
recovery's rate (deliveries per second): a page of `page_size` deliveries, then a wait until
`page_size / rate` seconds after the page was due. Timers are per page, not per delivery, to keep
Temporal's actions down; a receiver sees at most a page at once, and the rate on average.

History stays small: after `pages_per_run` pages, or when Temporal suggests it, the run continues as new
with the page cursor and the counts. The state (`progress` query, the result, and the memo, which lists
read) says what was done.

Cancelling (a Temporal cancel request: the API's DELETE, or the Web UI) stops it cleanly: the page in
flight finishes and is counted, no further page starts, and the workflow completes with status
`canceled`. It also stops, `canceled` with a reason, when a page finds its endpoint disabled or deleted.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.recovery import RecoveryActivities
    from domain.models import (
        RecoveryInput,
        RecoveryKind,
        RecoveryPage,
        RecoveryPageRequest,
        RecoveryProgress,
        RecoveryState,
        RecoveryStatus,
    )
    from workflows.delivery import (
        NOTES_UNREADABLE_PATCH,
        OUR_FAULTS,
        notes_unreadable,
        notes_unreadable_wait,
    )

# A page is a few dozen visibility and update calls, each bounded by its own RPC timeout.
PAGE_TIMEOUT = timedelta(minutes=2)
# How long a cancelled recovery lets its page in flight finish; a page stuck on a fault of ours (the
# store down, say) is abandoned after this, uncounted, rather than holding the cancel for as long.
CANCEL_GRACE = timedelta(minutes=1)
MEMO_STATE = "state"  # the memo key lists read a recovery's state from


@workflow.defn
class RecoveryWorkflow:
    @workflow.init
    def __init__(self, input: RecoveryInput) -> None:
        self._input = input
        self._state = input.state.model_copy(update={"counts": input.progress.counts})
        self._cursor = input.progress.cursor
        self._listed_first_page = input.progress.started
        self._next_page_due: datetime | None = None  # the rate's schedule (see `_pace`)

    @workflow.run
    async def run(self, input: RecoveryInput) -> RecoveryState:
        pages = 0
        try:
            while not self._cancelled() and not self._listed_everything():
                if pages >= input.pages_per_run or workflow.info().is_continue_as_new_suggested():
                    self._continue_as_new()
                began = workflow.now()
                page = await self._next_page()
                pages += 1
                self._state.counts += page.counts
                self._cursor, self._listed_first_page = page.next_cursor, True
                workflow.set_current_details(self._details())
                if page.stopped is not None:
                    self._state.reason = page.stopped
                    break
                if not self._cancelled() and not self._listed_everything():
                    await self._pace(page.counts.done, began)
        except asyncio.CancelledError:
            if not self._cancelled():  # not a cancel request: the worker evicting the workflow
                raise
        return self._finish()

    def _cancelled(self) -> bool:
        return workflow.cancellation_reason() is not None

    def _listed_everything(self) -> bool:
        return self._listed_first_page and self._cursor is None

    async def _next_page(self) -> RecoveryPage:
        method = (
            RecoveryActivities.recover_page
            if self._input.state.kind is RecoveryKind.RECOVER
            else RecoveryActivities.replay_page
        )
        state = self._state
        request = RecoveryPageRequest(
            tenant=state.tenant,
            endpoint_id=state.endpoint_id,
            recovery_id=state.recovery_id,
            since=state.since,
            until=state.until,
            event_types=state.event_types,
            cursor=self._cursor,
            page_size=self._input.page_size,
            policy=self._input.policy,
            ordered=self._input.ordered,
        )
        notes_lost = 0
        while True:
            page = workflow.start_activity_method(
                method, request, start_to_close_timeout=PAGE_TIMEOUT, retry_policy=OUR_FAULTS
            )
            try:
                # `wait`, unlike awaiting the activity, does not pass a cancel request on to it: the page in
                # flight finishes, and what it did is counted.
                await workflow.wait([page])
            except asyncio.CancelledError:
                if not self._cancelled():
                    raise
                await workflow.wait([page], timeout=CANCEL_GRACE.total_seconds())
                if not page.done():
                    page.cancel()
                    raise
            try:
                return page.result()
            except ActivityError as err:
                # An earlier try's notes (what the page had done) its worker could not open: the page is
                # made again from its start. Its deliveries are started once each (a replay's are found
                # started), but a recover page's retry of a delivery still failing may be made once more.
                # Not once the recovery is cancelled: the cancel came once, and nothing more may start.
                if not notes_unreadable(err) or not workflow.patched(NOTES_UNREADABLE_PATCH):
                    raise
                if self._cancelled():
                    raise asyncio.CancelledError() from err
                notes_lost += 1
                workflow.logger.warning("page made again: its worker could not open an earlier try's notes")
                await workflow.sleep(notes_unreadable_wait(notes_lost))

    async def _pace(self, made: int, began: datetime) -> None:
        """Hold the rate: `made` deliveries take `made / rate` seconds on the recovery's schedule.

        The schedule runs on from where the last page was due, not from when it began, so that the time
        between pages (a workflow task, an activity dispatched) does not slow the rate down (measured:
        pages 1.2 to 1.4 s apart at 10 a second when paced from each page's start). A recovery that fell
        further behind (a worker down) takes up the schedule from one page back: it catches up by one
        page at most, so a receiver never sees more than the rate and a page in any second.
        """
        if made <= 0:
            return
        page_time = timedelta(seconds=self._input.page_size / self._input.rate)
        due = began if self._next_page_due is None else max(self._next_page_due, began - page_time)
        self._next_page_due = due + timedelta(seconds=made / self._input.rate)
        remaining = self._next_page_due - workflow.now()
        if remaining > timedelta(0):
            await workflow.sleep(remaining)

    def _details(self) -> str:
        """What the Web UI shows as the workflow's current details."""
        c = self._state.counts
        return (
            f"{self._state.kind.value} {self._state.endpoint_id}: {c.done} done, {c.failed} failed, "
            f"{c.skipped} skipped, {c.expired} expired of {self._state.total}"
        )

    def _finish(self) -> RecoveryState:
        if self._state.reason is not None or self._cancelled():
            self._state.status = RecoveryStatus.CANCELED
            self._state.reason = self._state.reason or "canceled on request"
        else:
            self._state.status = RecoveryStatus.COMPLETED
        self._state.finished_at = workflow.now()
        # Lists read the final state from the memo, without a worker and without one call per recovery.
        workflow.upsert_memo({MEMO_STATE: self._state})
        return self._state

    def _continue_as_new(self) -> None:
        """A fresh history for the pages to come, carrying the cursor and the counts."""
        workflow.continue_as_new(
            self._input.model_copy(
                update={
                    "progress": RecoveryProgress(
                        counts=self._state.counts, cursor=self._cursor, started=self._listed_first_page
                    )
                }
            ),
            memo={MEMO_STATE: self._state},
        )

    @workflow.query
    def progress(self) -> RecoveryState:
        return self._state.model_copy(update={"cancel_requested": self._cancelled()})
