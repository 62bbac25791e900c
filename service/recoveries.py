"""Recoveries: an endpoint's failed deliveries re-attempted (recover), or the events it never received
delivered to it (replay), each as one durable `RecoveryWorkflow` (workflows/recovery.py).

- **One at a time per endpoint.** Every recovery of an endpoint runs on the workflow id
  `recovery:{tenant}:{endpoint_id}`, started with the conflict policy FAIL: a second one while one runs
  is refused by Temporal itself, whatever the timing, and answered with the running one's id.
- **Bounded.** The window reaches back at most the log retention (`WEBHOOKS_LOG_RETENTION_DAYS`), since
  nothing older is kept, and ends at the latest when the request is made. The candidates are counted
  when it starts: more than `WEBHOOKS_RECOVERY_MAX_DELIVERIES` is refused with a 422 that says to narrow
  the window (a replay's window also stays an hour inside the retention). A tenant has at most
  `WEBHOOKS_RECOVERIES_PER_TENANT` running at once, each holding a slot taken in the endpoint store one
  request at a time on every API replica (store/recoveries.py); one more is a 409 that says to wait or
  cancel one.
- **After live traffic.** A recovery, its pages and the deliveries it makes are bulk work: Temporal
  dispatches them after live deliveries and scheduled retries, the tenant's own included
  (domain/fairness.py).
- **Paced.** At `WEBHOOKS_RECOVERY_RATE` deliveries per second, read when it starts and kept by it.
- **Read from Temporal.** A running recovery answers the `progress` query (a worker is needed); a closed
  one's final state is in its memo, which lists read too.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core.logs import FIELDS
from core.settings import Settings
from core.temporal import is_timeout
from domain import fairness, ids
from domain import search_attributes as sa
from domain.catalog import EVENT_TYPES
from domain.fairness import WorkKind
from domain.models import (
    RecoveryCounts,
    RecoveryInput,
    RecoveryKind,
    RecoveryProgress,
    RecoveryState,
    RecoveryStatus,
)
from history import executions, visibility
from service import pages
from service.boundary import boundary, in_store
from service.errors import Conflict, InvalidInput, LimitReached, NotFound, Unavailable
from service.events import delivery_policy
from service.models import RecoveryView, RecoveryViewPage
from store.database import Endpoint, EndpointStore
from store.recoveries import RecoverySlots, Slot
from workflows.recovery import MEMO_STATE, RecoveryWorkflow

log = logging.getLogger(__name__)

# A page is one activity and at most one timer: about a second of deliveries at the rate, so that a
# receiver sees at most that many at once, and at most this many whatever the rate.
MAX_PAGE_SIZE = 50
_CLOSED_STATUS = {
    WorkflowExecutionStatus.CANCELED: RecoveryStatus.CANCELED,
    WorkflowExecutionStatus.TERMINATED: RecoveryStatus.FAILED,
    WorkflowExecutionStatus.FAILED: RecoveryStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: RecoveryStatus.FAILED,
}


def page_size(rate: float) -> int:
    """Candidates per page at `rate` deliveries per second: a second's worth, 1 to `MAX_PAGE_SIZE`."""
    return max(1, min(MAX_PAGE_SIZE, math.ceil(rate)))


# A recovery slot taken this recently counts while its recovery's run is not there yet: the API that took
# it is starting it (far longer than a start takes; an API that died meanwhile frees it after this).
SLOT_STARTING_SECONDS = 60

# How far inside the log retention a replay's window must stay. An event is deleted a retention after it
# closed (seconds after it was accepted), and a replayed delivery reads its event's body at its first
# attempt, which waits behind live work: an event at the very edge could be gone by then, with nothing
# left to send.
REPLAY_MARGIN = timedelta(hours=1)


def window(
    since: datetime,
    until: datetime | None,
    *,
    now: datetime,
    retention_days: int,
    margin: timedelta = timedelta(0),
) -> tuple[datetime, datetime]:
    """The window `[since, until]`, `until` at the latest `now`; refused when it reaches further back
    than the log retention (less `margin`), or is empty."""
    until = min(until, now) if until is not None else now
    oldest = now - timedelta(days=retention_days) + margin
    if since < oldest:
        less = f", less {margin.total_seconds() / 3600:g} h for the events to be read" if margin else ""
        raise InvalidInput(
            f"since reaches back further than the log retention ({retention_days} days{less}): nothing "
            f"from before {oldest:%Y-%m-%d %H:%M} UTC can be used; give a since after it",
            field=("since",),
            value=since.isoformat(),
        )
    if since >= until:
        raise InvalidInput(
            "since must be before until (and until is at the latest now)",
            field=("since",),
            value=since.isoformat(),
        )
    return since, until


def bounded(count: int, what: str, *, limit: int) -> None:
    if count > limit:
        raise InvalidInput(
            f"the window holds {count} {what}, more than the {limit} one recovery takes "
            "(WEBHOOKS_RECOVERY_MAX_DELIVERIES); narrow it (a later since or an earlier until) and start "
            "one recovery after another",
            field=("since",),
        )


def left(state: RecoveryState) -> int:
    """Candidates not dealt with yet: none once completed (some may have left the window meanwhile, a
    delivery retried by hand, say); what was left untouched when it stopped early."""
    if state.status is RecoveryStatus.COMPLETED:
        return 0
    return max(0, state.total - state.counts.processed)


class Recoveries:
    """Starts, reads, lists and cancels recoveries, every Temporal call bounded by the RPC timeout."""

    def __init__(
        self,
        client: Client,
        store: EndpointStore,
        settings: Settings,
    ) -> None:
        self._client = client
        self._store = store
        self._settings = settings
        self._rpc = timedelta(seconds=settings.temporal_rpc_timeout)
        self._max = settings.recovery_max_deliveries
        cursor_keys = settings.keyring.derive(
            "flexprice-webhooks recovery list cursor", retired=settings.retired_key_ids
        )
        self._lister = pages.Lister(client, cursor_keys=cursor_keys, rpc_timeout=self._rpc)
        self._slots = RecoverySlots(store.engine)

    async def _endpoint(self, tenant: str, endpoint_id: str, *, enabled: bool = False) -> Endpoint:
        endpoint = await in_store(self._store.get, tenant, endpoint_id)
        if endpoint is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        if enabled and not endpoint.enabled:
            raise Conflict(
                f"endpoint {endpoint_id} is disabled; enable it first (PATCH it with "
                '{"enabled": true}), then recover or replay what it missed'
            )
        return endpoint

    async def _count(self, query: str) -> int:
        return (await self._client.count_workflows(query, rpc_timeout=self._rpc)).count

    @boundary(changes_temporal=True)
    async def recover(
        self, tenant: str, endpoint_id: str, *, since: datetime, until: datetime | None = None
    ) -> RecoveryView:
        """Re-attempt, once each, the endpoint's failed deliveries created in the window; those whose
        retry window is over are counted as expired."""
        endpoint = await self._endpoint(tenant, endpoint_id, enabled=True)
        since, until = window(
            since, until, now=datetime.now(UTC), retention_days=self._settings.log_retention_days
        )

        def failed(running: bool) -> str:
            return visibility.failed_deliveries(
                tenant=tenant, endpoint_id=endpoint.id, since=since, until=until, running=running
            )

        open_, expired = await asyncio.gather(self._count(failed(True)), self._count(failed(False)))
        bounded(open_, "failed deliveries still within their retry window", limit=self._max)
        return await self._start(
            endpoint,
            RecoveryKind.RECOVER,
            since=since,
            until=until,
            event_types=None,
            total=open_ + expired,
            counts=RecoveryCounts(expired=expired),
        )

    @boundary(changes_temporal=True)
    async def replay(
        self,
        tenant: str,
        endpoint_id: str,
        *,
        since: datetime,
        until: datetime | None = None,
        event_types: Sequence[str] | None = None,
    ) -> RecoveryView:
        """Deliver to the endpoint the events of the window it never received: of `event_types`, or of
        the types it subscribes to now."""
        endpoint = await self._endpoint(tenant, endpoint_id, enabled=True)
        since, until = window(
            since,
            until,
            now=datetime.now(UTC),
            retention_days=self._settings.log_retention_days,
            margin=REPLAY_MARGIN,
        )
        types = list(event_types) if event_types is not None else endpoint.event_types
        if types is None:  # every event type, as a subscription to all means
            types = [t.name for t in EVENT_TYPES]
        total = await self._count(
            visibility.event_query(
                tenant=tenant, accepted_since=since, accepted_until=until, event_types=types
            )
        )
        bounded(total, "events", limit=self._max)
        return await self._start(
            endpoint, RecoveryKind.REPLAY, since=since, until=until, event_types=types, total=total
        )

    async def _start(
        self,
        endpoint: Endpoint,
        kind: RecoveryKind,
        *,
        since: datetime,
        until: datetime,
        event_types: list[str] | None,
        total: int,
        counts: RecoveryCounts | None = None,
    ) -> RecoveryView:
        settings = self._settings
        # Visibility first (it also sees recoveries started before slots were kept), then a slot, taken
        # in the store one request at a time: requests at the same moment cannot pass the bound together.
        running = await self._count(visibility.running_recoveries(tenant=endpoint.tenant))
        slot = await self._take_slot(endpoint) if running < settings.recoveries_per_tenant else None
        if slot is None:
            raise LimitReached(
                f"this account has {max(running, settings.recoveries_per_tenant)} recoveries and replays "
                "running, the most at once (WEBHOOKS_RECOVERIES_PER_TENANT); wait for one to finish, or "
                "cancel one (DELETE /v1/webhooks/endpoints/{endpoint_id}/recoveries/{recovery_id})",
                setting="WEBHOOKS_RECOVERIES_PER_TENANT",
            )
        state = RecoveryState(
            recovery_id=ids.new_recovery_id(),
            kind=kind,
            tenant=endpoint.tenant,
            endpoint_id=endpoint.id,
            since=since,
            until=until,
            event_types=event_types,
            total=total,
            counts=counts or RecoveryCounts(),
            started_at=datetime.now(UTC),
        )
        workflow_id = ids.recovery_workflow_id(endpoint.tenant, endpoint.id)
        try:
            handle = await self._client.start_workflow(
                RecoveryWorkflow.run,
                RecoveryInput(
                    state=state,
                    rate=settings.recovery_rate,
                    page_size=page_size(settings.recovery_rate),
                    # A replay's deliveries are made with the policy an event accepted now would have.
                    policy=delivery_policy(settings, endpoint.retry_schedule),
                    progress=RecoveryProgress(counts=state.counts),
                    # An ordered endpoint's replay goes through its lanes, in emission order, whatever
                    # the endpoint becomes while it runs.
                    ordered=kind is RecoveryKind.REPLAY and endpoint.ordered,
                ),
                id=workflow_id,
                task_queue=settings.task_queue,
                # One at a time: refused while a run of this id is open; a new one once it has closed.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=sa.of_endpoint(
                    endpoint.tenant, endpoint.id, SearchAttributePair(sa.RECOVERY_ID, state.recovery_id)
                ),
                memo={MEMO_STATE: state},
                # Bulk work: after live traffic and scheduled retries, its tenant's own included; its pages
                # and the deliveries it makes inherit that, and the tenant's key and weight.
                priority=fairness.for_tenant(
                    endpoint.tenant, WorkKind.BULK, settings.weights, fair=settings.fairness
                ),
                rpc_timeout=self._rpc,
            )
        except WorkflowAlreadyStartedError:  # the endpoint's running recovery keeps the slot
            raise await self._already_running(endpoint) from None
        except Exception:
            await self._give_back(endpoint, slot)
            raise
        try:
            await in_store(self._slots.started, endpoint.tenant, slot, handle.run_id or "")
        except Exception as err:  # started all the same; the slot counts while its recovery runs
            log.warning("recovery slot not marked started", extra={FIELDS: {"error": str(err)}})
        return RecoveryView(state=state, left=left(state), workflow_url=self._url(workflow_id, handle.run_id))

    async def _already_running(self, endpoint: Endpoint) -> Conflict:
        running = await self._describe(ids.recovery_workflow_id(endpoint.tenant, endpoint.id))
        recovery_id = running.typed_search_attributes.get(sa.RECOVERY_ID) if running else None
        path = f"/v1/webhooks/endpoints/{endpoint.id}/recoveries/{recovery_id}"
        return Conflict(
            f"recovery {recovery_id} is running for endpoint {endpoint.id}, and one runs at a time: follow "
            f"it at GET {path}, or cancel it with DELETE {path}"
        )

    async def _take_slot(self, endpoint: Endpoint) -> Slot | None:
        """The endpoint's slot among its tenant's recoveries running at once, once the slots of those
        that no longer run are freed; None if the tenant holds them all."""
        # Its own is taken again: Temporal refuses a second run of the endpoint's recovery.
        others = [
            s for s in await in_store(self._slots.held, endpoint.tenant) if s.endpoint_id != endpoint.id
        ]
        still = await asyncio.gather(*(self._holds(endpoint.tenant, s) for s in others))
        gone = [s for s, holds in zip(others, still, strict=True) if not holds]
        await in_store(self._slots.free, endpoint.tenant, gone)
        return await in_store(
            self._slots.take, endpoint.tenant, endpoint.id, most=self._settings.recoveries_per_tenant
        )

    async def _give_back(self, endpoint: Endpoint, slot: Slot) -> None:
        """The slot of a start that failed, freed if nothing runs on the endpoint now: a start that did
        not answer may have been applied, and the endpoint's running recovery, if it has one, keeps it."""
        try:
            found = await self._describe(ids.recovery_workflow_id(endpoint.tenant, endpoint.id))
            if found is None or found.status is not WorkflowExecutionStatus.RUNNING:
                await in_store(self._slots.free, endpoint.tenant, [slot])
        except Exception as err:  # Temporal or the store down too: freed a minute after it was taken
            log.warning("recovery slot kept after a failed start", extra={FIELDS: {"error": str(err)}})

    async def _holds(self, tenant: str, slot: Slot) -> bool:
        """Whether the slot still counts: the endpoint's recovery runs (an endpoint has one at a time), or
        none has started on it yet and it was taken less than `SLOT_STARTING_SECONDS` ago (its API is
        starting it). No clock is compared with Temporal's."""
        found = await self._describe(ids.recovery_workflow_id(tenant, slot.endpoint_id))
        if found is not None and found.status is WorkflowExecutionStatus.RUNNING:
            return True
        return slot.run_id is None and time.time() - slot.reserved_at < SLOT_STARTING_SECONDS

    async def _describe(self, workflow_id: str) -> WorkflowExecutionDescription | None:
        return await executions.describe(self._client, workflow_id, rpc_timeout=self._rpc)

    async def _find(self, tenant: str, endpoint_id: str, recovery_id: str) -> WorkflowExecution:
        """The newest run of a recovery of this tenant's endpoint: the endpoint's newest run when it is
        that recovery (just started, it may not be listed yet), else found by visibility."""
        await self._endpoint(tenant, endpoint_id)
        not_found = NotFound(f"recovery {recovery_id} of endpoint {endpoint_id} not found")
        if not recovery_id.startswith("rec_"):
            raise not_found
        workflow_id = ids.recovery_workflow_id(tenant, endpoint_id)
        latest = await self._describe(workflow_id)
        if latest is not None and latest.typed_search_attributes.get(sa.RECOVERY_ID) == recovery_id:
            return latest
        query = visibility.recovery_query(tenant=tenant, endpoint_id=endpoint_id, recovery_id=recovery_id)
        async for execution in self._client.list_workflows(query, limit=1, rpc_timeout=self._rpc):
            if execution.id == workflow_id:
                return execution
        raise not_found

    async def _view(self, execution: WorkflowExecution) -> RecoveryView:
        state: RecoveryState = await execution.memo_value(MEMO_STATE, type_hint=RecoveryState)
        if execution.status is WorkflowExecutionStatus.RUNNING:
            state = await self._progress(execution)
        elif execution.status in _CLOSED_STATUS:  # not by its own hand: it has no final state
            status = _CLOSED_STATUS[execution.status]
            state = state.model_copy(
                update={
                    "status": status,
                    "finished_at": execution.close_time,
                    "reason": f"its workflow was {execution.status.name.lower().replace('_', ' ')}",
                }
            )
        return RecoveryView(
            state=state, left=left(state), workflow_url=self._url(execution.id, execution.run_id)
        )

    async def _progress(self, execution: WorkflowExecution) -> RecoveryState:
        handle = self._client.get_workflow_handle_for(
            RecoveryWorkflow.run, execution.id, run_id=execution.run_id
        )
        try:
            return await handle.query(RecoveryWorkflow.progress, rpc_timeout=self._rpc)
        except WorkflowQueryFailedError:
            raise Unavailable("the recovery could not say how far it is; try again") from None
        except RPCError as err:
            if is_timeout(err):  # a query is answered by a worker: none did in time
                raise Unavailable(
                    f"no worker answered within {self._rpc.total_seconds():g} s to say how far the recovery "
                    "is; it goes on once one is back. Try again"
                ) from None
            raise

    def _url(self, workflow_id: str, run_id: str | None) -> str | None:
        base = self._settings.ui_url
        if not base:
            return None
        url = f"{base}/namespaces/{quote(self._client.namespace)}/workflows/{quote(workflow_id, safe='')}"
        return f"{url}/{quote(run_id, safe='')}/history" if run_id else url

    @boundary
    async def get(self, tenant: str, endpoint_id: str, recovery_id: str) -> RecoveryView:
        """One recovery: what it did so far, or in all once it has finished."""
        return await self._view(await self._find(tenant, endpoint_id, recovery_id))

    @boundary
    async def list(
        self, tenant: str, endpoint_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> RecoveryViewPage:
        """The endpoint's recoveries, the running one first, then the newest."""
        await self._endpoint(tenant, endpoint_id)
        page = await self._lister.page(
            visibility.recovery_query(tenant=tenant, endpoint_id=endpoint_id),
            tenant=tenant,
            cursor=cursor,
            limit=limit,
        )
        views = await asyncio.gather(*(self._view(e) for e in page.executions))
        return RecoveryViewPage(items=builtins.list(views), next_cursor=page.next_cursor)

    @boundary(changes_temporal=True)
    async def cancel(self, tenant: str, endpoint_id: str, recovery_id: str) -> RecoveryView:
        """Ask a running recovery to stop: the page in flight finishes and is counted, no other starts.
        Answers once it has stopped, or after the RPC timeout with it still stopping."""
        execution = await self._find(tenant, endpoint_id, recovery_id)
        if execution.status is not WorkflowExecutionStatus.RUNNING:
            status = (await self._view(execution)).state.status.value
            raise Conflict(f"recovery {recovery_id} is {status} already; there is nothing to cancel")
        handle = self._client.get_workflow_handle_for(
            RecoveryWorkflow.run, execution.id, run_id=execution.run_id
        )
        try:
            await handle.cancel(rpc_timeout=self._rpc)
        except RPCError as err:
            # Closed, or continued as new, since it was found: ask the run it is now.
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            return await self.cancel(tenant, endpoint_id, recovery_id)
        try:
            await asyncio.wait_for(handle.result(follow_runs=False), self._rpc.total_seconds())
        except TimeoutError:
            pass  # still finishing its page: the answer says `cancel_requested`
        except WorkflowFailureError:
            pass  # ended otherwise (terminated meanwhile, say): the answer says how
        found = await self._find(tenant, endpoint_id, recovery_id)
        try:
            return await self._view(found)
        except Unavailable:
            # No worker to say how far it is: the cancel is recorded all the same, and is answered so.
            state = await found.memo_value(MEMO_STATE, type_hint=RecoveryState)
            state = state.model_copy(update={"cancel_requested": True})
            return RecoveryView(state=state, left=left(state), workflow_url=self._url(found.id, found.run_id))
