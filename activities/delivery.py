"""The signed-POST activity: one attempt to deliver one event to one endpoint.

`deliver_once` never raises for what the receiver did: every HTTP outcome, timeout and network error
becomes an `AttemptRecord`, so the workflow can log it and decide when to try again. It raises only for
our own faults (the store unreachable, every connection to the endpoint busy, a bug): Temporal retries
those with backoff, and the attempt, once made, records how many tries failed first and why.

A try heartbeats while it runs, so that Temporal notices within `HEARTBEAT_TIMEOUT` that its worker
died or froze and makes it again, on any worker, rather than after the whole start-to-close timeout. The
POST's own deadline is the attempt's timeout, whatever the heartbeats do. The lost try may have sent its
POST: the next one sends it again with the same `webhook-id`, which receivers dedupe on (at-least-once).

A try that fails on our side is one warning line with its cause; the traceback of each kind of cause is
logged once, not at every try of an outage (`FaultTracebacks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, TypeVar

import httpx
from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError

from activities.listen import ListenHandoffs
from activities.stalls import LoopStalls
from core import tracing
from core.crypto import NotYetReadable
from core.egress import DestinationRefused
from core.logs import FIELDS
from core.signing import JwtSigner, signature_headers
from domain.endpoint_headers import masked
from domain.models import AttemptOutcome, AttemptRecord, DeliverRequest
from history.events import EventBodies, read_delivery_body
from store.database import Endpoint, EndpointStore
from store.flow import Admission, EndpointFlow, Lease, Signal
from store.health import EndpointHealth, Tell
from store.listen import is_listening

RESPONSE_BODY_LIMIT = 4096
SEQUENCE_HEADER = "webhook-sequence"  # docs/receiving.md, "Ordered delivery"
RESPONSE_HEADERS_LOGGED = 12  # the first few of the answer's headers, each value cut at 256 characters
_SIGNATURES = frozenset({"webhook-signature", "x-webhook-signature"})
# Words in the name of an answer's header that can carry a credential or a session (a gateway's token, a
# cookie): its value is logged masked, whoever the receiver is.
_SECRET_NAME_WORDS = ("auth", "cookie", "token", "secret", "key", "session", "password", "signature")
STORE_TIMEOUT = 5.0  # seconds an attempt waits for the endpoint store before it counts as unavailable
# The most a receiver's Retry-After is honoured (the workflow also caps it at a day): a number kept small
# enough for any timedelta, whatever a receiver sends.
RETRY_AFTER_CAP_SECONDS = 86_400.0
# Seconds an attempt gives, after its POST, to counting it in the endpoint's health and sending the
# operational events that follow (store writes and reads, a Temporal start).
HEALTH_BUDGET = 10.0
USER_AGENT = "flexprice-webhooks/1.0"
# An endpoint's turn that comes within this many seconds is waited for in the try; a later one ends it.
LOCAL_WAIT = 1.0
# How long an attempt's lease of its endpoint's flow outlives its timeout (the POST, a stall of the
# worker's loop): then a lease left by a worker that died is freed.
LEASE_GRACE = 15.0
# A try heartbeats this often while it runs (the first after this long: most tries are over by then and
# cost Temporal no heartbeat), and the worker sends each at once (its `max_heartbeat_throttle_interval`,
# worker.py; the SDK would otherwise hold them back for 80 % of the timeout).
HEARTBEAT_EVERY = timedelta(seconds=2)
# Temporal makes a try again when it has not heartbeaten for this long: its worker died, froze, or lost
# touch with Temporal. A worker frozen for less than this less `HEARTBEAT_EVERY` (8 s) reads the answer
# waiting for it when it resumes (activities/stalls.py); one frozen longer finds its try made again, as a
# killed worker's is.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# The longest wait before the next try after a fault of ours (1 s, 2, 4, 8, then this): once the store is
# back, every attempt that waited for it is made within this. Each delivery waiting costs Temporal one
# try per interval (an activity task, no history event), as many as the worker's slots let through.
FAULT_RETRY_CAP = timedelta(seconds=10)
# A kind of fault whose traceback was logged is logged again only after this long without it: once per
# outage, not once per try (about 300 tracebacks in a 25 s outage, with the tries of 100 deliveries).
TRACEBACK_QUIET_SECONDS = 300.0
# How long a try waits for Temporal to read the body it sends (the event's history, or the delivery's).
BODY_READ_TIMEOUT = timedelta(seconds=10)
# What a delivery whose payload Temporal no longer keeps records: nothing can be sent. Only a delivery
# whose event's history was deleted (its retention over) before its first attempt ended, which kept no
# copy, comes to this (docs/delivery.md, "Where the payload is kept").
PAYLOAD_NOT_KEPT = (
    "the event's payload is no longer kept (its history is older than WEBHOOKS_LOG_RETENTION_DAYS); "
    "nothing was sent: emit the event again with a new id"
)
_RETRY_AFTER_STATUSES = frozenset({429, 503})
T = TypeVar("T")
attempt_log = logging.getLogger("webhooks.attempts")


def classify(status_code: int) -> AttemptOutcome:
    if 200 <= status_code <= 299:
        return AttemptOutcome.SUCCEEDED
    if status_code == 410:
        return AttemptOutcome.GONE
    return AttemptOutcome.RETRYABLE


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds asked for by a `Retry-After` header (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit alone takes "²", which float() refuses
        return min(float(value), RETRY_AFTER_CAP_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), RETRY_AFTER_CAP_SECONDS)


class InfraFault(Exception):
    """A fault of ours that kept an attempt from being made. Temporal retries the activity with backoff;
    the message, shown in the delivery's log, says what happened without naming our internals.
    """


class StoreUnavailable(InfraFault):
    def __init__(self) -> None:
        super().__init__("the endpoint store could not be read")


class PayloadUnreadable(InfraFault):
    def __init__(self) -> None:
        super().__init__("the event's payload could not be read from Temporal")


class PayloadNotYetReadable(InfraFault):
    """Sealed with a key this worker lacks, or by a later version (a rotation or an upgrade under way): the
    event is kept, and this try is made again until a worker with the key or the version reads it."""

    def __init__(self) -> None:
        super().__init__("this worker cannot read the event's payload yet (a key or an upgrade it lacks)")


class EndpointNotYetReadable(InfraFault):
    """The endpoint's row (its secret, URL, headers) or its tenant's signing key sealed with a key this
    worker lacks: a rotation under way. Tried again until a worker with the key makes the attempt."""

    def __init__(self) -> None:
        super().__init__("this worker cannot read the endpoint's settings yet (a key it lacks)")


class EndpointThrottled(InfraFault):
    """The endpoint's limits held the attempt back: its attempts in flight, its rate limit, or the pause
    its receiver asked for. Not a fault: the try ends, freeing the worker's slot, and Temporal makes the
    next one when the endpoint's turn for it comes (`retry_in` seconds)."""

    def __init__(self, reason: str, retry_in: float, turn: float | None = None) -> None:
        super().__init__(f"held back by {reason}")
        self.reason = reason
        self.retry_in = retry_in
        self.turn = turn  # its place in the endpoint's queue, kept for the next try


_LOST_TRY = "an earlier try did not finish (its worker stopped or lost touch with Temporal)"
_INTERNAL = "an internal error (the worker's log has the details)"


@dataclass(frozen=True, slots=True)
class EarlierTries:
    """What the tries of this attempt before this one came to: those that failed on our side (or were
    lost with their worker) and the last reason, and those the endpoint's limits held back, and which of
    the two the last try was.

    Each try that ends without a record leaves notes as heartbeat details, which Temporal hands to the
    next try: `[fault reason or "", {"tries": n, "throttled": m, "throttled_by": ..., "held": bool,
    "turn": unix seconds or null}]`.
    A try whose worker died left none; a worker of the version before left the reason alone.
    """

    faults: int = 0
    fault: str | None = None
    throttled: int = 0
    throttled_by: str | None = None
    last_held: bool = False  # the last try was held back by the endpoint's limits, not a fault
    turn: float | None = None  # the place in the endpoint's queue the last held try was given
    last_lost: bool = False  # the last try did not end: its worker died, froze or lost touch

    @classmethod
    def of(cls, info: activity.Info) -> EarlierTries:
        return cls.from_details(info.attempt, info.heartbeat_details)

    @classmethod
    def from_details(cls, attempt: int, details: Sequence[Any]) -> EarlierTries:
        """Before try number `attempt`, from the heartbeat details the tries before it left."""
        tries = attempt - 1
        if not tries:
            return cls()
        if not details:
            return cls(tries, _LOST_TRY, last_lost=True)
        if len(details) < 2 or not isinstance(details[1], dict):
            return cls(tries, str(details[0]))
        notes: dict[str, Any] = details[1]
        throttled = int(notes.get("throttled", 0))
        fault = str(details[0]) or None
        held = bool(notes.get("held", False))
        lost = int(notes.get("tries", tries)) < tries  # tries since the notes: their worker died
        if lost:
            fault, held = _LOST_TRY, False
        throttled_by = notes.get("throttled_by")
        turn = notes.get("turn") if held else None
        return cls(
            tries - throttled,
            fault,
            throttled,
            str(throttled_by) if throttled_by else None,
            held,
            float(turn) if isinstance(turn, int | float) else None,
            lost,
        )

    def notes(
        self,
        attempt: int,
        *,
        fault: str | None = None,
        throttled_by: str | None = None,
        turn: float | None = None,
    ) -> list[Any]:
        """The heartbeat details try number `attempt` leaves as it ends: faulted, or held back."""
        held = throttled_by is not None
        return [
            fault or self.fault or "",
            {
                "tries": attempt,
                "throttled": self.throttled + (1 if held else 0),
                "throttled_by": throttled_by or self.throttled_by,
                "held": held,
                "turn": turn if held else None,
            },
        ]


def earlier_failures(info: activity.Info) -> tuple[int, str | None]:
    """How many tries of this attempt failed on our side before this one, and the last reason recorded."""
    earlier = EarlierTries.of(info)
    return earlier.faults, earlier.fault


class _Clock:
    """Times one attempt from when it is made (after any wait for a slot) and turns it into a record."""

    def __init__(
        self, request: DeliverRequest, earlier: EarlierTries, *, throttled_by: str | None = None
    ) -> None:
        self.request = request
        self.earlier = earlier
        self.throttled_by = throttled_by or earlier.throttled_by
        self.started_at = datetime.now(UTC)
        self._start = time.perf_counter()
        self.queued_ms = max(
            0, round((self.started_at - activity.info().scheduled_time).total_seconds() * 1000)
        )

    def record(self, outcome: AttemptOutcome, **fields: Any) -> AttemptRecord:
        seconds = time.perf_counter() - self._start
        attempt = AttemptRecord(
            attempt=self.request.attempt,
            trigger=self.request.trigger,
            started_at=self.started_at,
            duration_ms=round(seconds * 1000),
            outcome=outcome,
            infra_failures=self.earlier.faults,
            infra_error=self.earlier.fault,
            queued_ms=self.queued_ms,
            throttled_by=self.throttled_by,
            trace_id=tracing.current_trace_id(),
            **fields,
        )
        report_attempt(self.request, attempt, seconds=seconds)
        return attempt


async def _nobody(_tenant: str, _endpoint_id: str) -> None:
    pass


def fault_retry_delay(faults_before: int) -> timedelta:
    """When to try again after a fault of ours that `faults_before` failed tries of this attempt came
    before: 1 s, then twice as long each time, at most `FAULT_RETRY_CAP`.

    Set on the failure itself (`next_retry_delay`) rather than as the retry policy's maximum interval,
    which also bounds how long a try held back by its endpoint's limits waits (a minute): a backlog held
    by a receiver's Retry-After would otherwise come back six times as often.
    """
    return min(FAULT_RETRY_CAP, timedelta(seconds=2.0 ** min(faults_before, 10)))


class FaultTracebacks:
    """Whether a fault's traceback is due in the log: the first time its kind is seen, and again once
    it has not been seen for `TRACEBACK_QUIET_SECONDS` (the next outage). A kind: the fault's type, its
    cause's type, and where the innermost of the two was raised; few exist, so none is forgotten."""

    def __init__(self, quiet: float = TRACEBACK_QUIET_SECONDS) -> None:
        self._quiet = quiet
        self._last_seen: dict[tuple[str, str, str, int], float] = {}

    def due(self, err: BaseException, *, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        kind = fault_kind(err)
        last = self._last_seen.get(kind)
        self._last_seen[kind] = now
        return last is None or now - last > self._quiet


def fault_kind(err: BaseException) -> tuple[str, str, str, int]:
    cause = err.__cause__
    tb = (cause or err).__traceback__
    where = ("", 0)
    while tb is not None:
        where = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return (type(err).__qualname__, type(cause).__qualname__ if cause else "", *where)


def _cause(err: BaseException) -> str | None:
    """What made a fault of ours, in one line: the first of its cause's message (a database error's
    next lines quote the statement and its parameters)."""
    cause = err.__cause__
    if cause is None:
        return None
    first = str(cause).strip().split("\n", 1)[0][:300]
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


@contextlib.asynccontextmanager
async def heartbeating(details: Sequence[Any]) -> AsyncIterator[None]:
    """Heartbeat `details` every `HEARTBEAT_EVERY` while the block runs; none after it, so that the notes
    a try leaves as it ends are the last details Temporal has.

    From a task of its own: a POST, a store call in a thread or a wait for the endpoint's turn heartbeat
    alike. An event loop that stands still (a frozen worker) stops them too, which is what they tell.
    """

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY.total_seconds())
            try:
                activity.heartbeat(*details)
            except Exception:  # a beat that could not be queued must not end the try, or replace its result
                attempt_log.exception(
                    "a heartbeat could not be sent; the next is tried in %s", HEARTBEAT_EVERY
                )

    beats = asyncio.create_task(beat())
    try:
        yield
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats


class DeliveryActivities:
    """Holds what every attempt shares: one HTTP client per worker, the store and the JWT signer, the
    endpoints' health and flow (store/flow.py), and whom to tell when an endpoint's health
    changes."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        store: EndpointStore,
        jwt_signer: JwtSigner,
        *,
        endpoint_concurrency: int = 8,
        endpoint_max_rate: float = 100.0,
        disable_after: timedelta = timedelta(days=5),
        tell: Tell = _nobody,
        listen_timeout: timedelta = timedelta(seconds=30),
        client: Client | None = None,
        bodies: EventBodies | None = None,
    ) -> None:
        self._http = http
        self._store = store
        self._jwt = jwt_signer
        self._stalls = LoopStalls()
        self._health = EndpointHealth(store.engine, disable_after=disable_after)
        self._flow = EndpointFlow(store.engine, max_concurrency=endpoint_concurrency)
        self._max_rate = endpoint_max_rate
        # Attempts of this worker waiting for their endpoint's turn, by endpoint: at most its concurrency,
        # so that one endpoint never holds more of this worker's slots than twice that.
        self._waiting: dict[str, int] = {}
        self._tell = tell
        self._tracebacks = FaultTracebacks()
        self._listen = ListenHandoffs(store, jwt_signer, session_timeout=listen_timeout)
        # Where an attempt given no body reads it: the event's history, through this worker's cache, and,
        # once that is gone, the delivery's own copy (its first attempt's record).
        self._client = client
        if bodies is None and client is not None:
            bodies = EventBodies.of(client, rpc_timeout=BODY_READ_TIMEOUT)
        self._bodies = bodies

    @activity.defn
    async def deliver_once(self, request: DeliverRequest) -> AttemptRecord:
        """One attempt: an `AttemptRecord` for whatever the receiver did; raises only for our faults,
        and when the endpoint's limits hold the attempt back."""
        info = activity.info()
        earlier = EarlierTries.of(info)
        with tracing.attempt_span(request) as span:
            try:
                record = await self._try(request, info, earlier)
            except ApplicationError as err:
                if err.category is ApplicationErrorCategory.BENIGN and err.type == "EndpointThrottled":
                    tracing.end_try_held(span, err.message)
                else:
                    tracing.end_try_failed(span, err.message)
                raise
            tracing.end_attempt(span, record)
            return record

    async def _try(
        self, request: DeliverRequest, info: activity.Info, earlier: EarlierTries
    ) -> AttemptRecord:
        try:
            # The details this try was given, as it runs: if it is lost, the next try counts it as one.
            async with heartbeating(info.heartbeat_details):
                return await self._deliver(request, earlier)
        except EndpointThrottled as held:
            report_throttled(request, held)
            # The next try reads it: the log says what held the attempt back.
            activity.heartbeat(*earlier.notes(info.attempt, throttled_by=held.reason, turn=held.turn))
            raise ApplicationError(
                str(held),
                type=type(held).__name__,
                # Jitter, so that attempts given the same turn on different workers do not meet again.
                next_retry_delay=timedelta(seconds=held.retry_in * random.uniform(1.0, 1.1)),
                category=ApplicationErrorCategory.BENIGN,
            ) from None
        except Exception as err:
            reason = str(err) if isinstance(err, InfraFault) else _INTERNAL
            retry_in = fault_retry_delay(earlier.faults)
            report_infra_failure(request, err, reason, retry_in, traceback=self._tracebacks.due(err))
            activity.heartbeat(*earlier.notes(info.attempt, fault=reason))
            raise ApplicationError(
                reason,
                type=type(err).__name__ if isinstance(err, InfraFault) else "InternalError",
                next_retry_delay=retry_in,
                # Reported above in one line, its traceback once per kind: the SDK would log a warning
                # with the whole traceback at every try (a benign error only at debug level).
                category=ApplicationErrorCategory.BENIGN,
            ) from None

    async def _deliver(self, request: DeliverRequest, earlier: EarlierTries) -> AttemptRecord:
        """The attempt, with its body read first if it was given none; the first attempt's record keeps
        the body (`AttemptRecord.body`): the delivery's own copy, in its history."""
        keeps_body = request.body is None and request.attempt == 1
        body = await self._body(request)
        if body is None:
            return _Clock(request, earlier).record(AttemptOutcome.RETRYABLE, error=PAYLOAD_NOT_KEPT)
        request = request.model_copy(update={"body": body})
        record = await self._deliver_body(request, earlier, keeps_body=keeps_body)
        return record.model_copy(update={"body": body}) if keeps_body else record

    async def _body(self, request: DeliverRequest) -> str | None:
        """The body to send: the request's, else the event's (read once per worker), else the delivery's
        own copy; None if Temporal keeps neither. Temporal unreachable is a fault of ours."""
        if request.body is not None:
            return request.body
        if self._bodies is None or request.event_id is None:
            raise RuntimeError("an attempt given no body, on a worker that cannot read events")
        try:
            body = await asyncio.wait_for(
                self._bodies.get(request.tenant, request.event_id), BODY_READ_TIMEOUT.total_seconds()
            )
            if body is None and self._client is not None:
                body = await read_delivery_body(
                    self._client, request.tenant, request.delivery_id, rpc_timeout=BODY_READ_TIMEOUT
                )
        except (RPCError, TimeoutError) as err:
            raise PayloadUnreadable() from err
        except NotYetReadable as err:
            raise PayloadNotYetReadable() from err
        return body

    async def _deliver_body(
        self, request: DeliverRequest, earlier: EarlierTries, *, keeps_body: bool
    ) -> AttemptRecord:
        endpoint = await self._endpoint(request)
        if endpoint is None:
            return _Clock(request, earlier).record(
                AttemptOutcome.ENDPOINT_UNAVAILABLE, error="endpoint was deleted"
            )
        if is_listening(endpoint):  # `webhooks listen`: its CLI makes the POST (activities/listen.py)
            try:
                gone = await self._listen.hand_off(request, endpoint, keeps_body=keeps_body)
            except (SQLAlchemyError, TimeoutError) as err:
                raise StoreUnavailable() from err
            except NotYetReadable as err:  # the tenant's signing key, as for a POST of ours (`_post`)
                raise EndpointNotYetReadable() from err
            return _Clock(request, earlier).record(AttemptOutcome.RETRYABLE, error=gone)
        if not endpoint.enabled:
            return _Clock(request, earlier).record(
                AttemptOutcome.ENDPOINT_UNAVAILABLE, error="endpoint is disabled"
            )
        lease, held_by = await self._admitted(request, endpoint, earlier, activity.info().attempt)
        clock = _Clock(request, earlier, throttled_by=held_by)
        try:
            record = await self._post(request, endpoint, clock)
        except BaseException:
            await self._release(lease, request, endpoint, None)
            raise
        await self._release(lease, request, endpoint, record)
        await self._keep_health(endpoint, record)
        return record

    async def _admitted(
        self, request: DeliverRequest, endpoint: Endpoint, earlier: EarlierTries, try_number: int
    ) -> tuple[Lease, str | None]:
        """A lease of the endpoint's flow for this attempt, and what held it back on the way, if anything.

        Waiting for one is not an attempt. A turn that comes within `LOCAL_WAIT` seconds is waited for
        here; a later one ends the try (`EndpointThrottled`), so that the worker's slot is not held, and
        Temporal makes the next try when the turn comes, or sooner: after 1 s, then 2, 4, … as the tries
        held back add up, so that an endpoint that recovers before the turns it handed out is found
        again within about as long as its attempts have waited. Coming back early keeps the turn. All
        waits here fit in the attempt's timeout, so that waiting, the POST (with its whole timeout) and
        the store's calls fit in the activity's start-to-close timeout (workflows/delivery.py).

        Each try's lease has an id its next try can name: a try made again in place of one lost with its
        worker frees the lease that one may have left, rather than wait for it to expire.
        """
        rate = min(endpoint.rate_limit_per_second or self._max_rate, self._max_rate)
        waits_end = time.monotonic() + request.timeout
        held_by: str | None = None
        turn = earlier.turn
        lease_id = try_lease_id(request, try_number)
        replaces = try_lease_id(request, try_number - 1) if earlier.last_lost else None
        while True:
            admission = await self._admit(request, endpoint, rate, turn, lease_id, replaces)
            if admission.lease is not None:
                return admission.lease, held_by
            held_by, turn = admission.reason or "the endpoint's limits", admission.turn
            waiting = self._waiting.get(endpoint.id, 0)
            if (
                admission.retry_in > LOCAL_WAIT
                or time.monotonic() + admission.retry_in > waits_end
                or waiting >= self._flow.max_concurrency
            ):
                # Never sooner than a local wait would have been: a turn a moment away is waited for here
                # by the attempts already waiting, not by Temporal re-dispatching this one at once.
                sooner = LOCAL_WAIT * 2.0 ** min(earlier.throttled, 10)
                raise EndpointThrottled(held_by, max(LOCAL_WAIT, min(admission.retry_in, sooner)), turn)
            self._waiting[endpoint.id] = waiting + 1
            try:
                await asyncio.sleep(admission.retry_in)
            finally:
                self._waiting[endpoint.id] -= 1
                if not self._waiting[endpoint.id]:  # forget idle endpoints: the map stays small
                    del self._waiting[endpoint.id]

    async def _admit(
        self,
        request: DeliverRequest,
        endpoint: Endpoint,
        rate: float,
        turn: float | None,
        lease_id: str,
        replaces: str | None,
    ) -> Admission:
        """One answer of the endpoint's flow. The lease's id is the caller's, so that one made by a store
        call this attempt gave up waiting for (its thread runs on) is freed rather than left to expire."""
        try:
            return await self._store_call(
                self._flow.admit,
                endpoint.id,
                endpoint.tenant,
                rate=rate,
                lease_seconds=request.timeout + LEASE_GRACE,
                lease_id=lease_id,
                delivery_id=request.delivery_id,
                honour_pause=not request.interactive,
                turn=turn,
                replaces=replaces,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await self._store_call(self._flow.abandon, lease_id)
            raise

    async def _release(
        self, lease: Lease, request: DeliverRequest, endpoint: Endpoint, record: AttemptRecord | None
    ) -> None:
        """Free the attempt's lease and tell the endpoint's flow what the answer said. Best effort: a
        lease not freed expires by itself."""
        signal, reason = flow_signal(record)
        try:
            await self._store_call(
                self._flow.release,
                lease,
                signal=signal,
                seconds=record.duration_ms / 1000 if record is not None else 0.0,
                retry_after=record.retry_after_seconds if record is not None else None,
                reason=reason,
                delivery_id=request.delivery_id,
            )
        except StoreUnavailable as err:
            attempt_log.warning(
                "endpoint flow not updated; the attempt's lease expires by itself",
                extra={FIELDS: {"endpoint_id": endpoint.id, "error": str(err.__cause__ or err)}},
            )

    async def _store_call(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A call to the store in a thread; `StoreUnavailable` if it fails or does not answer in time."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(call, *args, **kwargs), STORE_TIMEOUT)
        except (SQLAlchemyError, TimeoutError) as err:
            raise StoreUnavailable() from err

    async def _keep_health(self, endpoint: Endpoint, record: AttemptRecord) -> None:
        """Count the attempt in the endpoint's health, and tell the tenant of what changed.

        Best effort, within `HEALTH_BUDGET`: the POST is made, and failing the attempt now would only
        send it again.
        """
        try:
            await asyncio.wait_for(self._count_and_tell(endpoint, record), HEALTH_BUDGET)
        except Exception as err:  # logged; the attempt's own record stands
            attempt_log.warning(
                "endpoint health not recorded",
                extra={FIELDS: {"endpoint_id": endpoint.id, "error": f"{type(err).__name__}: {err}"}},
            )

    async def _count_and_tell(self, endpoint: Endpoint, record: AttemptRecord) -> None:
        transitions = await asyncio.to_thread(
            self._health.record,
            endpoint.tenant,
            endpoint.id,
            succeeded=record.outcome is AttemptOutcome.SUCCEEDED,
            status_code=record.status_code,
            error=record.error,
            at=record.started_at,
        )
        if transitions:  # owed in the same transaction: sent now, or by a worker's sweep if not now
            await self._tell(endpoint.tenant, endpoint.id)

    async def _post(self, request: DeliverRequest, endpoint: Endpoint, clock: _Clock) -> AttemptRecord:
        body = request.body
        assert body is not None, "the body is read before the attempt is made (`_deliver`)"
        sign = partial(
            signature_headers,
            method=endpoint.signature_method,
            msg_id=request.delivery_id,
            timestamp=int(clock.started_at.timestamp()),
            body=body,
            secret=endpoint.secret,
            previous_secrets=endpoint.signing_secrets(clock.started_at)[1:],
            jwt_signer=self._jwt,
            tenant=request.tenant,
            endpoint_id=endpoint.id,
        )
        try:
            # In a thread: a jwt tenant's keys are read from the store now and then (store/keys.py).
            headers = await asyncio.wait_for(asyncio.to_thread(sign), STORE_TIMEOUT)
        except (SQLAlchemyError, TimeoutError) as err:
            raise StoreUnavailable() from err
        except NotYetReadable as err:
            raise EndpointNotYetReadable() from err
        headers["content-type"] = "application/json"
        headers["user-agent"] = USER_AGENT
        if request.sequence is not None:  # an ordered endpoint's: the receiver checks it for gaps and repeats
            headers[SEQUENCE_HEADER] = str(request.sequence)
        # The endpoint's own headers first: none can take the place of ours (their names are checked
        # when saved, domain/endpoint_headers.py).
        headers = {**endpoint.headers, **headers}
        # The attempt span's W3C context, so that a receiver that traces continues the same trace; it
        # takes the place of a `traceparent` among the endpoint's own headers.
        tracing.inject_traceparent(headers)
        sent = logged_request_headers(headers, custom=endpoint.headers)
        exchange = asyncio.create_task(self._exchange(endpoint.url, body.encode(), headers))
        try:
            # One deadline for the whole exchange (httpx's own timeouts restart at every read, so a
            # receiver trickling a byte at a time would hold the connection for ever), which a stall of
            # this worker does not use up: an answer sent in time is read, not logged as a timeout.
            response, head = await self._stalls.wait_for(exchange, request.timeout)
        except DestinationRefused as err:  # the client's guard (core/egress.py): nothing was sent
            return clock.record(AttemptOutcome.RETRYABLE, error=str(err))
        except (TimeoutError, httpx.TimeoutException):
            return clock.record(
                AttemptOutcome.RETRYABLE, error=f"timed out after {request.timeout:g} s", request_headers=sent
            )
        except (httpx.HTTPError, httpx.InvalidURL) as err:  # InvalidURL: saved before a stricter check
            return clock.record(
                AttemptOutcome.RETRYABLE,
                error=f"{type(err).__name__}: {err}".rstrip(": "),
                request_headers=sent,
            )
        except UnicodeEncodeError:  # a custom header saved before values had to be ASCII: nothing sent
            return clock.record(
                AttemptOutcome.RETRYABLE,
                error="a custom header's value is not ASCII; change the endpoint's headers",
            )

        outcome = classify(response.status_code)
        error = None
        if response.is_redirect:
            error = f"redirects are not followed (Location: {response.headers.get('location', '')})"
        elif outcome is AttemptOutcome.GONE:
            error = "410 Gone: the receiver asked to stop this delivery"
        retry_after = None
        if response.status_code in _RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(response.headers.get("retry-after"), now=clock.started_at)
        return clock.record(
            outcome,
            status_code=response.status_code,
            response_body=head[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace"),
            error=error,
            retry_after_seconds=retry_after,
            request_headers=sent,
            response_status_line=f"{response.http_version} {response.status_code} {response.reason_phrase}",
            response_headers=logged_response_headers(response.headers.multi_items()),
        )

    async def _exchange(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
        """The POST and the start of the answer (a receiver's error page can be megabytes). No timeout of
        its own: the caller's deadline bounds it."""
        async with self._http.stream(
            "POST", url, content=body, headers=headers, timeout=None, follow_redirects=False
        ) as response:
            head = bytearray()
            async for chunk in response.aiter_bytes():
                head += chunk
                if len(head) >= RESPONSE_BODY_LIMIT:
                    break
        return response, bytes(head)

    async def _endpoint(self, request: DeliverRequest) -> Endpoint | None:
        """The endpoint as it is now; `StoreUnavailable` if the store does not answer in time,
        `EndpointNotYetReadable` if it is sealed with a key this worker lacks.

        The read runs in a thread, which a hung database would keep: the timeout frees the attempt.
        """
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._store.get, request.tenant, request.endpoint_id), STORE_TIMEOUT
            )
        except (SQLAlchemyError, TimeoutError) as err:
            raise StoreUnavailable() from err
        except NotYetReadable as err:
            raise EndpointNotYetReadable() from err


def try_lease_id(request: DeliverRequest, try_number: int) -> str:
    """The id of the lease try number `try_number` of this attempt takes of its endpoint's flow: the same
    for every call of that try, and known to the try after it."""
    key = f"{request.delivery_id}:{request.attempt}:{try_number}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def logged_response_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The answer's first headers as the log shows them: each value cut at 256 characters, and masked
    where the name says it may be a credential or a session (`set-cookie`, `www-authenticate`, …)."""
    return [
        (name, "••••" if any(word in name.lower() for word in _SECRET_NAME_WORDS) else value[:256])
        for name, value in headers[:RESPONSE_HEADERS_LOGGED]
    ]


def logged_request_headers(headers: dict[str, str], *, custom: dict[str, str]) -> list[tuple[str, str]]:
    """The request's headers as the log shows them: ours as sent, signatures and the endpoint's own
    values masked (a custom header often carries a credential; a signature is no use to a reader)."""
    shown: list[tuple[str, str]] = []
    for name, value in headers.items():
        if name in _SIGNATURES:
            value = " ".join(f"{v.split(',', 1)[0]},••••" for v in value.split()) if "," in value else "••••"
        elif name in custom:
            value = masked(value)
        shown.append((name, value))
    return shown


def _status_class(status_code: int | None) -> str:
    return f"{status_code // 100}xx" if status_code is not None else "none"


def _ids(request: DeliverRequest) -> dict[str, str]:
    """What names an attempt's delivery on every line the attempt log writes."""
    return {"tenant": request.tenant, "endpoint_id": request.endpoint_id, "delivery_id": request.delivery_id}


def report_attempt(request: DeliverRequest, attempt: AttemptRecord, *, seconds: float) -> None:
    """The attempt's log line and metrics: ids, outcome, status and timing; never a secret, a signature,
    the URL (it may carry a token) or the payload. Metrics go to the worker's Prometheus endpoint.
    """
    attempt_log.info(
        "attempt",
        extra={
            FIELDS: {
                **_ids(request),
                "attempt": attempt.attempt,
                "trigger": attempt.trigger.value,
                "outcome": attempt.outcome.value,
                "status_code": attempt.status_code,
                "duration_ms": attempt.duration_ms,
                # A redirect's error quotes its Location, which is the receiver's URL: leave it out.
                "error": attempt.error if attempt.status_code is None else None,
            }
        },
    )
    meter = activity.metric_meter()
    meter.create_counter(
        "webhooks_delivery_attempts_total", "Delivery attempts by outcome, status class and trigger"
    ).add(
        1,
        {
            "outcome": attempt.outcome.value,
            "status_class": _status_class(attempt.status_code),
            "trigger": attempt.trigger.value,
        },
    )
    meter.create_histogram_float(
        "webhooks_delivery_attempt_duration_seconds", "Duration of delivery attempts", "s"
    ).record(seconds, {"outcome": attempt.outcome.value})


def flow_signal(record: AttemptRecord | None) -> tuple[Signal, str | None]:
    """What an attempt's answer says about its endpoint's capacity, and the answer in words.

    A 429, a 503 and a timeout say "too much": the endpoint's window shrinks. A 2xx lets it grow. Any
    other answer (a 500, a refused connection) says nothing about capacity. No record: nothing was sent.
    """
    if record is None:
        return Signal.NEUTRAL, None
    if record.status_code is not None:
        answer = f"HTTP {record.status_code}"
        if record.status_code in _RETRY_AFTER_STATUSES:
            return Signal.OVERLOAD, answer
        return (Signal.SUCCESS if record.outcome is AttemptOutcome.SUCCEEDED else Signal.NEUTRAL), answer
    if record.error is not None and record.error.startswith("timed out"):
        return Signal.OVERLOAD, record.error
    return Signal.NEUTRAL, record.error


def report_throttled(request: DeliverRequest, held: EndpointThrottled) -> None:
    """A try the endpoint's limits held back: counted by what held it, never an error."""
    activity.metric_meter().create_counter(
        "webhooks_delivery_throttled_total",
        "Tries of an attempt held back by the endpoint's limits (in flight, rate, Retry-After)",
    ).add(1, {"limit": _limit_kind(held.reason)})
    attempt_log.info(
        "attempt held back",
        extra={
            FIELDS: {
                **_ids(request),
                "attempt": request.attempt,
                "reason": held.reason,
                "retry_in_s": round(held.retry_in, 3),
            }
        },
    )


def _limit_kind(reason: str) -> str:
    for word, kind in (("Retry-After", "retry_after"), ("rate limit", "rate"), ("in flight", "concurrency")):
        if word in reason:
            return kind
    return "other"


def report_infra_failure(
    request: DeliverRequest, err: Exception, reason: str, retry_in: timedelta, *, traceback: bool
) -> None:
    """A try that failed on our side: counted by reason, so an outage of ours is alertable, and logged in
    one line with its cause and when the next try comes; with the traceback when `traceback`."""
    activity.metric_meter().create_counter(
        "webhooks_delivery_infra_failures_total",
        "Tries of an attempt that failed on our side (store, busy endpoint, bug) and were retried",
    ).add(1, {"reason": type(err).__name__ if isinstance(err, InfraFault) else "InternalError"})
    attempt_log.warning(
        "attempt could not be made",
        extra={
            FIELDS: {
                **_ids(request),
                "attempt": request.attempt,
                "reason": reason,
                "error": f"{type(err).__name__}: {err}",
                "cause": _cause(err),
                "retry_in_s": retry_in.total_seconds(),
            }
        },
        exc_info=err if traceback else None,
    )
