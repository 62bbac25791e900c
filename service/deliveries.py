"""Deliveries: list, count, read and retry them, from Temporal's own record.

Nothing here keeps a copy. A delivery's log is its `DeliveryWorkflow`: listing is a visibility query over
the search attributes the workflow upserts (eventually consistent, ~100 ms); one delivery is read from its
workflow's history (the input, then each attempt's result), so no worker is needed to read a log, and a
closed delivery's state is its result. Manual retry is the `retry_now` update: a delivery's workflow stays
open for a retry window after its schedule, so there is always one run to update, and it decides whether a
retry joins an attempt (in flight, asked for, or just made) or makes one.

Every call to Temporal carries `rpc_timeout`: an answer comes within it whatever Temporal does.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from activities.delivery import EarlierTries
from core.crypto import DecryptionError, NotYetReadable
from core.logs import FIELDS
from domain import ids
from domain import search_attributes as sa
from domain.models import (
    AttemptRecord,
    AttemptTrigger,
    DeliveryInput,
    DeliveryState,
    DeliveryStatus,
    EventInput,
    RetryAccepted,
)
from history import executions, visibility
from history.events import converter_for, delivery_state, kept_body, read_event_input
from service import pages
from service.boundary import boundary, in_store, updated
from service.errors import Conflict, MayHaveBeenApplied, NotFound, RateLimited
from service.models import (
    AttemptInProgress,
    DeliveryCounts,
    DeliveryLog,
    DeliveryPage,
    DeliverySummary,
    Overview,
)
from service.urgency import LiveRaise
from store.database import Endpoint, EndpointStore
from workflows.delivery import MAX_ATTEMPTS, DeliveryWorkflow

log = logging.getLogger(__name__)

LISTED_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)
WORKFLOW_TYPES = ("EventWorkflow", "DeliveryWorkflow", "RecoveryWorkflow")
# An event page lists at most this many deliveries started after the event (replays); every one of them
# is also in its endpoint's history.
LATER_DELIVERIES_SHOWN = 1000
# A retry Temporal refused for the updates already in flight on its delivery is asked again after this.
UPDATE_BUSY_PAUSE = 0.1
# Of a manual retry's bound, what raising its delivery to the live priority may take (service/urgency.py):
# a describe, and a change or two (and, once per process, Temporal's version), each a few milliseconds on
# a Temporal that answers.
RAISE_SHARE = 0.25
# What an attempt in progress says of its earlier tries when their notes (heartbeat details, sealed by the
# worker that made them) are sealed with a key or by a version this process does not have yet: each ended
# without a record, a fault of ours or a hold of the endpoint's limits, which only the notes tell apart.
NOTES_NOT_READABLE_YET = (
    "earlier tries ended; this API process cannot read why yet (a key or an upgrade it lacks)"
)


def summary(
    attrs: TypedSearchAttributes,
    execution: WorkflowExecutionStatus | None,
    *,
    delivery: ids.DeliveryId,
    created: datetime,
    webhook_type: str = "",
) -> DeliverySummary:
    """A delivery as its search attributes describe it (the workflow's state corrects the status)."""
    created = attrs.get(sa.CREATED_AT) or created
    return DeliverySummary(
        id=str(delivery),
        event_id=delivery.event_id,
        endpoint_id=delivery.endpoint_id,
        webhook_type=attrs.get(sa.EVENT_TYPE) or webhook_type,
        status=visibility.status_of(attrs, execution),
        attempt_count=attrs.get(sa.ATTEMPT_COUNT) or 0,
        last_status_code=attrs.get(sa.LAST_STATUS_CODE),
        created_at=created,
        updated_at=attrs.get(sa.LAST_ATTEMPT_AT) or created,
        next_attempt_at=attrs.get(sa.NEXT_ATTEMPT_AT),
    )


def scheduled(event: EventInput, endpoint_id: str) -> DeliverySummary:
    """A delivery of an accepted event whose workflow has not started yet."""
    return DeliverySummary(
        id=ids.delivery_id(event.event_id, endpoint_id),
        event_id=event.event_id,
        endpoint_id=endpoint_id,
        webhook_type=event.webhook_type,
        status=DeliveryStatus.SCHEDULED,
        attempt_count=0,
        last_status_code=None,
        created_at=event.created_at,
        updated_at=event.created_at,
    )


def _of_execution(execution: WorkflowExecution) -> DeliverySummary:
    delivery = ids.delivery_of_workflow(execution.id)
    assert delivery is not None, execution.id  # listed by a query on DeliveryWorkflow
    return summary(
        execution.typed_search_attributes, execution.status, delivery=delivery, created=execution.start_time
    )


@dataclass(frozen=True, slots=True)
class _Started:
    """What a delivery's history says: its input and the attempts its run has completed so far."""

    input: DeliveryInput
    attempts: list[AttemptRecord]


class Deliveries:
    """Reads and retries deliveries, every Temporal call bounded by `rpc_timeout`."""

    def __init__(
        self,
        client: Client,
        store: EndpointStore,
        *,
        rpc_timeout: timedelta,
        ui_base: str | None,
        cursor_keys: tuple[bytes, ...],
    ) -> None:
        self._client = client
        self._store = store
        self._rpc = rpc_timeout
        self._ui_base = ui_base
        self._lister = pages.Lister(client, cursor_keys=cursor_keys, rpc_timeout=rpc_timeout)
        self._raise_to_live = LiveRaise(client)

    async def _endpoint(self, tenant: str, endpoint_id: str) -> Endpoint:
        endpoint = await in_store(self._store.get, tenant, endpoint_id)
        if endpoint is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        return endpoint

    async def _describe(self, workflow_id: str) -> WorkflowExecutionDescription | None:
        return await executions.describe(self._client, workflow_id, rpc_timeout=self._rpc)

    @boundary
    async def list(
        self,
        tenant: str,
        *,
        endpoint_id: str | None = None,
        status: DeliveryStatus | None = None,
        event_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        business: visibility.BusinessIds | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> DeliveryPage:
        """Newest first by when the event was accepted (`pages.Lister.newest_first`: Temporal's SQL
        visibility cannot order by it). `created_after` and `created_before` bound that time (the
        `WebhookCreatedAt` attribute); `business` finds those of one business object or customer (set when
        the delivery started)."""
        pages.check_created_window(created_after, created_before)
        if endpoint_id is not None:
            await self._endpoint(tenant, endpoint_id)
        query = visibility.delivery_query(
            tenant=tenant,
            endpoint_id=endpoint_id,
            status=status,
            event_type=event_type,
            created_since=created_after,
            created_until=created_before,
            business=business,
        )
        page = await self._lister.newest_first(query, tenant=tenant, cursor=cursor, limit=limit)
        return DeliveryPage(items=[_of_execution(e) for e in page.executions], next_cursor=page.next_cursor)

    @boundary
    async def count(
        self, tenant: str, endpoint_id: str, *, since: datetime, until: datetime | None = None
    ) -> DeliveryCounts:
        """How many of an endpoint's deliveries since `since` (and until `until`, if given) are pending,
        succeeded and failed."""
        pages.check_created_window(since, until)
        await self._endpoint(tenant, endpoint_id)

        async def count(status: DeliveryStatus) -> int:
            query = visibility.delivery_query(
                tenant=tenant,
                endpoint_id=endpoint_id,
                status=status,
                created_since=since,
                created_until=until,
            )
            return (await self._client.count_workflows(query, rpc_timeout=self._rpc)).count

        pending, succeeded, failed = await asyncio.gather(*(count(s) for s in LISTED_STATUSES))
        return DeliveryCounts(
            endpoint_id=endpoint_id,
            since=since,
            until=until,
            pending=pending,
            succeeded=succeeded,
            failed=failed,
        )

    @boundary
    async def overview(self) -> Overview:
        """Every tenant's deliveries by status, those waiting for a retry, and workflows closed abnormally."""

        async def count(query: str) -> int:
            return (await self._client.count_workflows(query, rpc_timeout=self._rpc)).count

        counts = await asyncio.gather(
            *(count(visibility.delivery_query(status=s)) for s in LISTED_STATUSES),
            count(visibility.RETRY_SCHEDULED),
            *(count(visibility.workflows_closed_abnormally(t)) for t in WORKFLOW_TYPES),
        )
        by_status = dict(zip(LISTED_STATUSES, counts, strict=False))
        return Overview(
            deliveries=by_status,
            retry_scheduled=counts[len(LISTED_STATUSES)],
            closed_abnormally=dict(zip(WORKFLOW_TYPES, counts[len(LISTED_STATUSES) + 1 :], strict=True)),
        )

    async def _attempt_in_progress(
        self, description: WorkflowExecutionDescription, number: int
    ) -> AttemptInProgress | None:
        """The attempt being made, from Temporal's record of the pending activity: how many tries of ours
        failed so far and why (the reason a failed try left as heartbeat details), and the next try."""
        pending = description.raw_description.pending_activities
        if not pending:
            return None
        activity = pending[0]
        details: list[Any] = []
        earlier: EarlierTries | None = None
        if activity.attempt > 1 and activity.heartbeat_details.payloads:
            converter = converter_for(self._client, description.id)
            try:
                details = await converter.decode(activity.heartbeat_details.payloads)
            except NotYetReadable:  # a worker's newer key or version: the tries left notes, none was lost
                earlier = EarlierTries(activity.attempt - 1, NOTES_NOT_READABLE_YET)
            except DecryptionError:  # only ever what the log tells of the tries: none, then
                details = []
        if earlier is None:
            earlier = EarlierTries.from_details(activity.attempt, details)
        next_try = None
        if activity.attempt > 1 and activity.state is PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED:
            next_try = activity.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
        return AttemptInProgress(
            attempt=number,
            infra_failures=earlier.faults,
            infra_error=earlier.fault,
            next_try_at=next_try,
            throttled_by=earlier.throttled_by if earlier.last_held else None,
        )

    async def _read_history(self, workflow_id: str, run_id: str | None) -> _Started | None:
        """The input of a run and the attempts it completed, in order, from its history."""
        handle = self._client.get_workflow_handle(workflow_id, run_id=run_id)
        # In the delivery's own context: the codec refuses what was made for another workflow and copied
        # into this one (another tenant's delivery, say), which the log then does not show.
        converter = converter_for(self._client, workflow_id)
        started: DeliveryInput | None = None
        attempts: list[AttemptRecord] = []
        try:
            async for event in handle.fetch_history_events(rpc_timeout=self._rpc):
                if event.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                    payloads = event.workflow_execution_started_event_attributes.input.payloads
                    [started] = await converter.decode(payloads, [DeliveryInput])
                elif event.event_type is EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    payloads = event.activity_task_completed_event_attributes.result.payloads
                    [record] = await converter.decode(payloads, [AttemptRecord])
                    attempts.append(record)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        except NotYetReadable:  # kept, and read once this process has the key or version (a 503)
            raise
        except DecryptionError as err:  # not this delivery's as made (copied in, or changed since)
            log.warning("delivery refused", extra={FIELDS: {"workflow_id": workflow_id, "error": str(err)}})
            return None
        if started is None:
            return None
        return _Started(started, started.progress.attempts + attempts)

    async def _state(self, workflow_id: str, description: WorkflowExecutionDescription) -> DeliveryState:
        """A delivery's state, read without a worker: its history's input and attempts, with the status of
        its result once completed (results of before the body was kept once hold the whole state)."""
        result: DeliveryState | None = None
        if description.status is WorkflowExecutionStatus.COMPLETED:
            handle: WorkflowHandle[DeliveryWorkflow, DeliveryState] = self._client.get_workflow_handle_for(
                DeliveryWorkflow.run, workflow_id, run_id=description.run_id
            )
            try:
                result = await handle.result(follow_runs=False, rpc_timeout=self._rpc)
            except NotYetReadable:
                raise
            except DecryptionError as err:  # a result not this delivery's (copied in, or changed since)
                log.warning(
                    "delivery refused", extra={FIELDS: {"workflow_id": workflow_id, "error": str(err)}}
                )
                raise NotFound(f"delivery {workflow_id} not found") from None
            if not result.in_history:
                return result
        found = await self._read_history(workflow_id, description.run_id)
        if found is None:
            raise NotFound(f"delivery {workflow_id} not found")
        if result is not None:
            return result.model_copy(
                update={"body": kept_body(found.input, found.attempts), "attempts": found.attempts}
            )
        read = visibility.status_beside(
            found.input, found.attempts, description.typed_search_attributes, description.status
        )
        return delivery_state(
            found.input, found.attempts, status=read.status, next_attempt_at=read.next_attempt_at
        )

    def _workflow_url(self, workflow_id: str) -> str | None:
        if not self._ui_base:
            return None
        namespace = quote(self._client.namespace)
        return f"{self._ui_base}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"

    @boundary
    async def get(self, tenant: str, delivery_id: str) -> DeliveryLog:
        """One delivery: the payload sent and every attempt; `scheduled` if its workflow has yet to start."""
        delivery = _parsed(delivery_id)
        workflow_id = ids.delivery_workflow_id(tenant, delivery)
        description = await self._describe(workflow_id)
        if description is None:
            return await self._scheduled_log(tenant, delivery)
        state = await self._state(workflow_id, description)
        last = state.attempts[-1] if state.attempts else None
        # An attempt just ended and not yet taken in by its workflow: none is in progress, whatever the
        # description (read before the history) still says.
        may_be_attempting = (
            description.status is WorkflowExecutionStatus.RUNNING
            and not visibility.unpublished(state.attempts, description.typed_search_attributes)
        )
        # The key is the event's, not the delivery's: read only for a delivery its lane started; and the
        # body, before the delivery's first attempt has ended and kept its own copy.
        needs_event = state.sequence is not None or state.body is None
        event = await self.event_input(tenant, state.event_id) if needs_event else None
        body = state.body if state.body is not None else event.body if event is not None else None
        return DeliveryLog(
            summary=DeliverySummary(
                id=str(delivery),
                event_id=state.event_id,
                endpoint_id=state.endpoint_id,
                webhook_type=state.webhook_type,
                status=state.status,
                attempt_count=len(state.attempts),
                last_status_code=last.status_code if last else None,
                created_at=state.created_at,
                updated_at=last.started_at if last else state.created_at,
                next_attempt_at=state.next_attempt_at,
            ),
            payload=json.loads(body) if body is not None else None,
            attempts=state.attempts,
            origin=state.origin,
            next_attempt_at=state.next_attempt_at,
            attempt_in_progress=(
                await self._attempt_in_progress(description, len(state.attempts) + 1)
                if may_be_attempting
                else None
            ),
            workflow_url=self._workflow_url(workflow_id),
            sequence=state.sequence,
            ordered=state.sequence is not None,
            ordering_key=event.ordering_key if event and state.sequence is not None else None,
        )

    async def _scheduled_log(self, tenant: str, delivery: ids.DeliveryId) -> DeliveryLog:
        event = await self.event_input(tenant, delivery.event_id)
        if event is None or delivery.endpoint_id not in event.endpoint_ids:
            raise NotFound(f"delivery {delivery} not found")
        return DeliveryLog(
            summary=scheduled(event, delivery.endpoint_id),
            payload=json.loads(event.body),
            attempts=[],
            origin=event.origin,
            next_attempt_at=None,
            attempt_in_progress=None,
            workflow_url=None,
            # Waiting in its lane for the deliveries ahead of it: no sequence until the lane starts it.
            ordered=delivery.endpoint_id in event.ordered_endpoint_ids,
            ordering_key=event.ordering_key if delivery.endpoint_id in event.ordered_endpoint_ids else None,
        )

    @boundary(changes_temporal=True)
    async def retry(
        self,
        tenant: str,
        delivery_id: str,
        *,
        trigger: AttemptTrigger = AttemptTrigger.MANUAL,
        bulk: bool = False,
        after: int | None = None,
    ) -> RetryAccepted:
        """One attempt now, logged with `trigger`: an update on the delivery's workflow, which joins one
        in flight, asked for, or made less than `RETRY_JOIN_WINDOW` ago (workflows/delivery.py). `bulk`:
        one of many asked for at once, made after live traffic (domain/fairness.py). `after`: the last
        attempt whose answer the caller has read, never the one it is given."""
        delivery = _parsed(delivery_id)
        endpoint = await in_store(self._store.get, tenant, delivery.endpoint_id)
        if endpoint is None:
            raise NotFound(
                f"delivery {delivery} not found: no endpoint {delivery.endpoint_id} (never made, or deleted)"
            )
        if not endpoint.enabled:
            raise Conflict(f"endpoint {endpoint.id} is disabled; enable it before retrying")
        workflow_id = ids.delivery_workflow_id(tenant, delivery)
        # One bound for the whole call, as for every other: a share of it to raise the delivery first.
        loop = asyncio.get_running_loop()
        busy_until = loop.time() + self._rpc.total_seconds()
        if trigger is AttemptTrigger.MANUAL and not bulk:  # live work, whatever made the delivery
            await self._raise_to_live(workflow_id, within=self._rpc * RAISE_SHARE)
        handle = self._client.get_workflow_handle_for(DeliveryWorkflow.run, workflow_id)
        # `bulk` and `after` only when set: a worker of the version before each takes fewer arguments.
        args: list[Any] = [trigger]
        if bulk or after is not None:
            args.append(bulk)
        if after is not None:
            args.append(after)
        # One id for every ask of this call: an update Temporal took before it aborted it is answered, not
        # taken again, when it is asked for again.
        update_id = f"retry-{uuid.uuid4()}"
        aborted = False
        while True:
            left = timedelta(seconds=max(busy_until - loop.time(), UPDATE_BUSY_PAUSE))
            try:
                # An update waits for a worker to accept it: without a worker it would wait for ever.
                return await updated(
                    handle.execute_update(
                        DeliveryWorkflow.retry_now, args=args, id=update_id, rpc_timeout=left
                    ),
                    not_taken=f"no worker took the retry within {self._rpc.total_seconds():g} s (none is "
                    "running, or none can read it yet: mid-rotation, a worker lacks the API's encryption "
                    "key); it may still be made when one can, so check the delivery's log before retrying "
                    "again",
                )
            except RPCError as err:
                # Temporal takes a few updates in flight per workflow (10 by default): a retry past them is
                # refused, not applied (busy). Of those it admitted, it aborts some, taken or not, when it
                # drops the workflow's updates in memory: with a crowd of them on one workflow, and as it
                # recovers from a fault of its own. Either is asked again, with the same id, as the others
                # are answered (they ask for the attempt this one would join), while one call may take.
                busy, aborted_now = err.status is RPCStatusCode.RESOURCE_EXHAUSTED, update_aborted(err)
                aborted = aborted or aborted_now
                if busy or aborted_now:
                    if loop.time() + UPDATE_BUSY_PAUSE <= busy_until:
                        await asyncio.sleep(UPDATE_BUSY_PAUSE * random.uniform(1.0, 2.0))
                        continue
                    if aborted:
                        raise MayHaveBeenApplied(
                            f"Temporal aborted the retry of delivery {delivery} (it does with many at once "
                            "on one delivery, and while it recovers from a fault): it may have been made; "
                            "read the delivery's log before retrying again"
                        ) from None
                    raise RateLimited(
                        f"too many retries of delivery {delivery} at once; nothing was done for this one: "
                        "read the delivery's log, or retry in a second",
                        retry_after=1,
                    ) from None
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise
            break
        # No open run: the retry window is over, the event is still being fanned out, or no such delivery.
        description = await self._describe(workflow_id)
        if description is not None:
            closed = f"{description.close_time:%Y-%m-%d %H:%M} UTC" if description.close_time else "closed"
            attempts = description.typed_search_attributes.get(sa.ATTEMPT_COUNT) or 0
            why = (
                f"it has had {MAX_ATTEMPTS} attempts, the most one delivery makes, manual ones included, "
                f"and its workflow closed with the last ({closed})"
                if attempts >= MAX_ATTEMPTS
                else f"its retry window ended when its workflow closed ({closed})"
            )
            raise Conflict(
                f"delivery {delivery} can no longer be retried: {why}. Emit the event again with a new id "
                "to deliver it once more"
            )
        await self._scheduled_log(tenant, delivery)  # NotFound unless it is about to start
        raise Conflict(f"delivery {delivery} has not started yet: its first attempt comes first")

    async def event_input(self, tenant: str, event_id: str) -> EventInput | None:
        """The event as accepted: its workflow's input, from the first event of its history."""
        return await read_event_input(self._client, tenant, event_id, rpc_timeout=self._rpc)

    async def summaries(self, tenant: str, event: EventInput) -> builtins.list[DeliverySummary]:
        """Each delivery of an event as it stands (`scheduled` until its workflow starts)."""

        async def one(endpoint_id: str) -> DeliverySummary:
            delivery = ids.DeliveryId(event.event_id, endpoint_id)
            description = await self._describe(ids.delivery_workflow_id(tenant, delivery))
            if description is None:
                return scheduled(event, endpoint_id)
            return summary(
                description.typed_search_attributes,
                description.status,
                delivery=delivery,
                created=event.created_at,
                webhook_type=event.webhook_type,
            )

        decided = list(await asyncio.gather(*(one(e) for e in event.endpoint_ids)))
        return decided + await self._later_deliveries(tenant, event)

    async def _later_deliveries(self, tenant: str, event: EventInput) -> builtins.list[DeliverySummary]:
        """Deliveries of the event started after it was accepted (a replay to an endpoint that missed it),
        from visibility, which sees them a moment after they start."""
        decided = set(event.endpoint_ids)
        query = visibility.delivery_query(tenant=tenant, event_ids=[event.event_id])
        found = [
            _of_execution(execution)
            async for execution in self._client.list_workflows(
                query, limit=LATER_DELIVERIES_SHOWN, rpc_timeout=self._rpc
            )
        ]
        return sorted((d for d in found if d.endpoint_id not in decided), key=lambda d: d.created_at)


def update_aborted(err: RPCError) -> bool:
    """Temporal aborted an update it had admitted (its workflow's updates in memory were dropped, which
    a crowd of them on one workflow makes happen on a healthy server): UNAVAILABLE, told apart from an
    unreachable server only by its message."""
    return err.status is RPCStatusCode.UNAVAILABLE and "update was aborted" in err.message.lower()


def _parsed(delivery_id: str) -> ids.DeliveryId:
    delivery = ids.DeliveryId.parse(delivery_id)
    if delivery is None:
        raise NotFound(f"delivery {delivery_id} not found")
    return delivery
