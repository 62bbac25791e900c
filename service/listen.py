"""`webhooks listen`: a CLI takes the tenant's deliveries over a long poll and forwards them to a local URL.

The CLI opens nothing inbound. It opens a session (the credential's listening endpoint enabled, its
signing secret shown), then polls: each poll waits up to `wait` seconds for attempts handed off by
`deliver_once` (activities/listen.py) and returns them signed, as they would be POSTed. The CLI POSTs each
to the local URL and reports what it answered; that report completes the attempt's activity through
Temporal's async-completion client, so the attempt is logged, retried and retried by hand as any other.

While a session's attempts wait, each poll heartbeats their activities (they have the same heartbeat
timeout as any attempt): a session nobody polls lets them time out, and Temporal makes them again. A
session whose CLI is silent for `WEBHOOKS_LISTEN_SESSION_TIMEOUT` ends (`sweep`, run by every worker):
its endpoint is disabled and its attempts fail as "listener gone". Ending one by hand does the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import AsyncActivityHandle, Client
from temporalio.converter import ActivitySerializationContext
from temporalio.service import RPCError, RPCStatusCode

from activities.delivery import classify, logged_request_headers, logged_response_headers
from activities.listen import kept_body, listener_gone
from core.settings import Settings
from domain.access import Principal
from domain.catalog import unknown_event_types
from domain.listen import SILENT_CLI
from domain.models import AttemptOutcome, AttemptRecord
from service.boundary import boundary, in_store, translated
from service.errors import Conflict, InvalidInput, LimitReached, NotFound, Unavailable
from store.database import Endpoint, EndpointStore, TooManyEndpoints
from store.listen import Handoff, ListenSession, ListenStore

log = logging.getLogger("webhooks.listen")
POLL_EVERY = 0.25  # seconds between two looks at the store while a poll waits: the hand-off's latency
# How often a session's waiting attempts are heartbeaten, and its CLI marked as heard from: well inside
# the attempts' heartbeat timeout (10 s, activities/delivery.py).
HEARTBEAT_EVERY = timedelta(seconds=2)
MAX_WAIT = 30.0  # the longest a poll may wait: under the idle timeouts of common proxies (60 s)
RESPONSE_BODY_LIMIT = 4096  # as activities/delivery.py keeps of any answer


@dataclass(frozen=True, slots=True)
class LocalAnswer:
    """What the local server did with one forwarded attempt, as the CLI reports it."""

    status_code: int | None
    duration_ms: int
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    status_line: str | None = None
    error: str | None = None  # the local server not reached, or timed out


class Listening:
    def __init__(self, client: Client, store: EndpointStore, settings: Settings) -> None:
        self._client = client
        self._listen = ListenStore(store)
        self._timeout = timedelta(seconds=settings.listen_session_timeout)
        self._max_per_tenant = settings.max_endpoints_per_tenant
        self._rpc = timedelta(seconds=settings.temporal_rpc_timeout)
        self._namespace = settings.temporal_namespace

    def _activity(self, token: bytes, request: dict[str, Any] | None = None) -> AsyncActivityHandle:
        """The handle of a handed-off attempt's activity, in its workflow's serialization context: the
        payload codec binds a result to the workflow it is for, and refuses one bound to none."""
        handle = self._client.get_async_activity_handle(task_token=token)
        if request is None:  # a heartbeat carries no payload
            return handle
        return handle.with_context(
            ActivitySerializationContext(
                namespace=self._namespace,
                activity_id=None,
                activity_type=request.get("activity_type"),
                activity_task_queue=None,
                workflow_id=request.get("workflow_id"),
                workflow_type=request.get("workflow_type"),
                is_local=False,
            )
        )

    @property
    def session_timeout(self) -> timedelta:
        return self._timeout

    @boundary
    async def open(
        self, caller: Principal, *, event_types: list[str] | None, forward_to: str | None
    ) -> tuple[ListenSession, Endpoint]:
        """A new session of the caller's credential, and its listening endpoint (with its secret)."""
        if event_types is not None:
            unknown = unknown_event_types(event_types)
            if unknown:
                raise InvalidInput(
                    f"unknown event type {unknown[0]!r}; `GET /v1/webhooks/event-types` lists them",
                    field=("event_types",),
                    value=unknown[0],
                )
            if not event_types:
                raise InvalidInput(
                    "event_types is a list of types, or null for every type", field=("event_types",)
                )
        description = "webhooks listen" + (f" → {forward_to[:200]}" if forward_to else "")
        try:
            return await in_store(
                self._listen.open,
                caller.tenant,
                caller.credentials,
                event_types=event_types,
                description=description,
                max_per_tenant=self._max_per_tenant,
            )
        except TooManyEndpoints as err:
            raise LimitReached(
                f"this account has {err.limit} endpoints, the most one may have, and `webhooks listen` needs "
                "one of its own; delete one it no longer uses",
                setting="WEBHOOKS_MAX_ENDPOINTS_PER_TENANT",
            ) from None

    async def _session(self, caller: Principal, session_id: str, *, open_only: bool = True) -> ListenSession:
        session = await in_store(self._listen.get, caller.tenant, session_id)
        # Another credential's session is not this caller's to poll, even in the same tenant.
        if session is None or session.credential not in caller.credentials:
            raise NotFound(f"listen session {session_id} not found")
        if open_only and session.closed_at is not None:
            raise Conflict(f"listen session {session_id} has ended ({session.close_reason}); start a new one")
        return session

    @boundary
    async def poll(self, caller: Principal, session_id: str, *, wait: float) -> list[Handoff]:
        """The session's attempts waiting for the CLI, as soon as there is one, or none after `wait`."""
        deadline = time.monotonic() + min(max(wait, 0.0), MAX_WAIT)
        touched = 0.0
        while True:
            await self._session(caller, session_id)
            if time.monotonic() - touched >= HEARTBEAT_EVERY.total_seconds():
                touched = time.monotonic()
                await in_store(self._listen.touch, session_id)
                await self._heartbeat(session_id)
            claimed = await in_store(self._listen.claim, session_id)
            if claimed or time.monotonic() >= deadline:
                return claimed
            await asyncio.sleep(POLL_EVERY)

    async def _heartbeat(self, session_id: str) -> None:
        """Heartbeat the activities of the session's attempts: its CLI is there, they wait for it."""
        tokens = await in_store(self._listen.due_heartbeats, session_id, every=HEARTBEAT_EVERY)
        for token in tokens:
            try:
                await self._client.get_async_activity_handle(task_token=token).heartbeat(
                    rpc_timeout=self._rpc
                )
            except RPCError as err:  # that try is over (timed out and made again): its hand-off is replaced
                log.debug("heartbeat of a handed-off attempt refused: %s", err.message)

    @boundary(changes_temporal=True)
    async def answer(
        self, caller: Principal, session_id: str, handoff_id: str, answer: LocalAnswer
    ) -> AttemptRecord:
        """Complete a handed-off attempt with what the local server answered; the attempt's record."""
        await self._session(caller, session_id, open_only=False)
        handoff = await in_store(self._listen.handoff, caller.tenant, session_id, handoff_id)
        if handoff is None:
            raise NotFound(
                f"no attempt {handoff_id} waits for this session: it was answered already, or timed out and "
                "is made again"
            )
        record = _record(handoff, answer)
        try:
            await self._complete(handoff, record)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            await in_store(self._listen.remove, handoff.id, handoff.task_token)
            raise Conflict(
                "this attempt timed out before the answer came; Temporal makes it again, and it comes back "
                "on a poll"
            ) from None
        await in_store(self._listen.remove, handoff.id, handoff.task_token)
        return record

    async def _complete(self, handoff: Handoff, record: AttemptRecord) -> None:
        await self._activity(handoff.task_token, handoff.request).complete(record, rpc_timeout=self._rpc)

    @boundary(changes_temporal=True)
    async def close(self, caller: Principal, session_id: str) -> None:
        """End a session: its endpoint is disabled, what it held fails as "listener gone"."""
        await self._session(caller, session_id, open_only=False)
        await self._end(session_id, "the CLI ended the session")

    async def _end(self, session_id: str, reason: str) -> int:
        left = await in_store(self._listen.close, session_id, reason)
        for handoff in left:
            record = listener_gone(
                handoff.request, reason=reason, started_at=handoff.claimed_at or handoff.created_at
            )
            try:
                await self._complete(handoff, record)
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise  # left in the store: the next sweep fails it
            await in_store(self._listen.remove, handoff.id, handoff.task_token)
        return len(left)

    async def sweep(self) -> int:
        """End the sessions whose CLI went silent, failing what they held; how many attempts. Never raises:
        what is left is swept next time."""
        failed = 0
        try:
            with translated(changes_temporal=True):
                for session_id in await in_store(self._listen.expired, timeout=self._timeout):
                    failed += await self._end(
                        session_id,
                        f"{SILENT_CLI} for {self._timeout.total_seconds():g} s "
                        "(WEBHOOKS_LISTEN_SESSION_TIMEOUT)",
                    )
        except Unavailable as err:
            log.warning("listen sessions not swept yet: %s", err.message)
        return failed


def _record(handoff: Handoff, answer: LocalAnswer) -> AttemptRecord:
    request = handoff.request
    started_at = handoff.claimed_at or datetime.now(UTC)
    sent = logged_request_headers(dict(request["headers"]), custom={})
    common = {
        "attempt": int(request["attempt"]),
        "trigger": request["trigger"],
        "started_at": started_at,
        "duration_ms": max(0, answer.duration_ms),
        "request_headers": sent,
        "queued_ms": max(0, round((started_at - handoff.created_at).total_seconds() * 1000)),
        "body": kept_body(request),
    }
    if answer.status_code is None:
        return AttemptRecord(
            **common,
            outcome=AttemptOutcome.RETRYABLE,
            error=f"local server: {answer.error or 'no answer'}"[:1000],
        )
    outcome = classify(answer.status_code)
    error = None
    if 300 <= answer.status_code < 400:
        error = "redirects are not followed"
    elif outcome is AttemptOutcome.GONE:
        error = "410 Gone: the receiver asked to stop this delivery"
    return AttemptRecord(
        **common,
        outcome=outcome,
        status_code=answer.status_code,
        response_body=answer.body[:RESPONSE_BODY_LIMIT],
        error=error,
        response_status_line=answer.status_line,
        response_headers=logged_response_headers(list(answer.headers)),
    )
