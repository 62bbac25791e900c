"""What every worker shares about sending to one endpoint: how many attempts may be in flight, whether its
receiver asked us to wait, its rate limit, and when an attempt told to wait should come back.

One endpoint must not take every worker's slots, nor be sent more than it can take. A limit per worker
process would let N workers send N times as much, so the state is one row per endpoint in the store
(`endpoint_flow`) and one row per attempt in flight (`endpoint_leases`), changed by every worker in
short transactions:

- **Attempts in flight** are at most the endpoint's *window*, which adapts between 1 and
  `WEBHOOKS_ENDPOINT_CONCURRENCY` as TCP's congestion window does (additive increase, multiplicative
  decrease): a 429, a 503 or a timeout halves it, each 2xx adds 1/window (one more after a window's
  worth of successes). Attempts that started before the last decrease do not decrease it again: one
  overload seen by eight attempts in flight halves the window once, not eight times.
- **Retry-After** on a 429 or 503 pauses the whole endpoint until then (at most a day), for every
  worker; a 2xx to an attempt made after it ends the pause. An attempt someone is waiting for (a manual
  retry of one delivery, a test event) is not held back by it, nor is the delivery that was answered
  (its own schedule waits it out).
- **The rate limit** (the endpoint's own, else the server's maximum) is a token bucket holding at most
  one token: at most R + 1 deliveries in any one second, paced 1/R apart when busy.
- **Turns.** An attempt that may not go now is told when to come back: the endpoint's next free turn,
  handed out one after another, spaced by what the endpoint can take (its mean attempt time, or the age
  of its oldest attempt in flight if longer, over its window; or 1/R; never under 50 ms). Waiting
  attempts then come back one at a time instead of all at once, and a backlog for one endpoint costs
  one or two tries per delivery, not one every few seconds. An attempt may come back before its turn
  (to find room left by an endpoint that has recovered): it keeps its place. A turn is an estimate: one
  further ahead
  than two minutes (ten, after a pause's end) is replaced by a time drawn from the horizon's second
  half, so that an estimate made while the endpoint was slow cannot keep its backlog waiting long after
  it is fast again, and the attempts past the horizon do not come back together.

A lease left by a worker that died expires after `lease_seconds`, unless the try Temporal makes again in
its place frees it first (`replaces`): an endpoint whose every slot a dead worker held would otherwise
take nothing until they expire. (A worker that was only frozen may still be sending when it resumes: one
attempt more than the limit, for that long.) Every decision is made in one transaction that holds the
endpoint's row: on PostgreSQL, a row lock; on SQLite, the write lock. Times are each process's clock:
workers and API hosts must keep theirs synchronized (NTP), as leases expire and buckets refill by them.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store.tables import EndpointFlowRow, EndpointLeaseRow

MAX_PAUSE_SECONDS = 86_400.0  # a Retry-After is honoured for a day at most, as a delivery's own is
# How far ahead an attempt held back is told to come back at most: a turn estimated while the endpoint
# was slow, or a pause a 2xx may end early, is checked again within this.
MAX_TURN_AHEAD = 120.0
MAX_PAUSE_WAIT = 600.0
MIN_SPACING = 0.05  # seconds between turns at least: no endpoint is polled faster for its next one
FIRST_MEAN_SECONDS = 1.0  # an endpoint's mean attempt time before any was measured
MEAN_WEIGHT = 0.2  # how much each attempt moves the moving average


class Signal(StrEnum):
    """What an attempt's answer says about the endpoint's capacity."""

    SUCCESS = "success"  # a 2xx: the window may grow
    OVERLOAD = "overload"  # a 429, a 503 or a timeout: it halves
    NEUTRAL = "neutral"  # anything else: the receiver's own fault, not its capacity


@dataclass(frozen=True, slots=True)
class Lease:
    id: str
    endpoint_id: str
    started_at: float


@dataclass(frozen=True, slots=True)
class Admission:
    """An attempt's answer: a lease to go now, or when to come back and why not now."""

    lease: Lease | None
    retry_in: float = 0.0
    reason: str | None = None
    turn: float | None = None  # the attempt's place in the endpoint's queue, to keep when it comes back


@dataclass(frozen=True, slots=True)
class FlowView:
    """An endpoint's flow as the API shows it."""

    in_flight: int
    limit: int  # attempts in flight allowed now
    max_limit: int  # WEBHOOKS_ENDPOINT_CONCURRENCY
    lowered_by: str | None  # why the limit is below the maximum (the answer that lowered it)
    lowered_at: datetime | None
    paused_until: datetime | None  # a Retry-After still in force
    pause_reason: str | None


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class EndpointFlow:
    def __init__(self, engine: Engine, *, max_concurrency: int) -> None:
        self._engine = engine
        self.max_concurrency = max_concurrency
        self._dialect: Any = sqlite if engine.dialect.name == "sqlite" else postgresql

    @staticmethod
    def _mine(endpoint_id: str) -> Any:
        return EndpointFlowRow.endpoint_id == endpoint_id

    def _limit(self, window: float) -> int:
        return max(1, min(self.max_concurrency, int(window)))

    def _held(self, conn: Any, endpoint_id: str, now: float) -> Any:
        """The endpoint's row, held until the transaction ends (None if it has none): one UPDATE that
        returns it, which takes the row lock on PostgreSQL and the write lock on SQLite."""
        return conn.execute(
            update(EndpointFlowRow)
            .where(self._mine(endpoint_id))
            .values(updated_at=now)
            .returning(*EndpointFlowRow.__table__.columns)
        ).one_or_none()

    def _row(self, conn: Any, endpoint_id: str, tenant: str, now: float) -> Any:
        """The endpoint's row, made if missing, held until the transaction ends."""
        row = self._held(conn, endpoint_id, now)
        if row is not None:
            return row
        conn.execute(
            self._dialect.insert(EndpointFlowRow)
            .values(
                endpoint_id=endpoint_id,
                tenant=tenant,
                window=float(self.max_concurrency),
                lowered_at=0.0,
                paused_until=0.0,
                paused_at=0.0,
                tokens=1.0,
                tokens_at=now,
                next_turn_at=0.0,
                mean_seconds=FIRST_MEAN_SECONDS,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["endpoint_id"])
        )
        return self._held(conn, endpoint_id, now)

    def admit(
        self,
        endpoint_id: str,
        tenant: str,
        *,
        rate: float,
        lease_seconds: float,
        lease_id: str | None = None,
        delivery_id: str = "",
        honour_pause: bool = True,
        turn: float | None = None,
        replaces: str | None = None,
        now: float | None = None,
    ) -> Admission:
        """A lease for one attempt of `delivery_id` to go now, or when to come back (`retry_in` seconds)
        and why. `honour_pause=False`: a person waits for this attempt, which a Retry-After does not hold
        back; nor is the delivery whose answer asked for it, whose own schedule already waits it out.
        `lease_id`: the id the lease gets, chosen by a caller that may give up waiting for this answer
        (and then frees the lease by it, `abandon`). `turn`: the place in the queue this attempt was
        given when last held back: coming back before it (to see whether the endpoint has room after
        all), it keeps it rather than join the queue again. `replaces`: the lease of the try this one
        replaces, lost with its worker; freed first, as its attempt is being made again now."""
        now = time.time() if now is None else now
        with self._engine.begin() as conn:
            row = self._row(conn, endpoint_id, tenant, now)
            if replaces is not None:
                conn.execute(
                    delete(EndpointLeaseRow).where(
                        EndpointLeaseRow.id == replaces, EndpointLeaseRow.endpoint_id == endpoint_id
                    )
                )
            # Leases left by workers that died do not count (they are deleted as attempts end).
            live = (EndpointLeaseRow.endpoint_id == endpoint_id, EndpointLeaseRow.expires_at >= now)
            in_flight, oldest = conn.execute(
                select(func.count(), func.min(EndpointLeaseRow.started_at)).where(*live)
            ).one()
            limit = self._limit(row.window)
            # A clock behind the one that wrote the bucket must not take tokens away.
            tokens = min(1.0, row.tokens + max(0.0, now - row.tokens_at) * rate)
            # What a turn is worth: an attempt's mean time, or longer while the oldest one in flight has
            # taken longer (an endpoint that has started to hang shows it before any attempt ends).
            mean = max(row.mean_seconds, now - oldest if oldest is not None else 0.0)
            spacing = max(MIN_SPACING, mean / limit)
            not_before = now
            waits_out_pause = honour_pause and row.paused_by != delivery_id
            if waits_out_pause and row.paused_until > now:
                reason = (
                    f"the receiver asked to wait (Retry-After) until {_when(row.paused_until):%H:%M:%S} UTC"
                )
                not_before = row.paused_until
            elif in_flight >= limit:
                reason = f"the endpoint's limit of {limit} attempts in flight at once"
            elif tokens < 1.0:
                reason = f"the endpoint's rate limit ({rate:g}/s)"
                spacing = max(MIN_SPACING, 1.0 / rate)
            else:
                lease = Lease(lease_id or secrets.token_hex(16), endpoint_id, now)
                conn.execute(
                    self._dialect.insert(EndpointLeaseRow).values(
                        id=lease.id, endpoint_id=endpoint_id, started_at=now, expires_at=now + lease_seconds
                    )
                )
                changes: dict[str, Any] = {"tokens": tokens - 1.0, "tokens_at": now, "updated_at": now}
                if in_flight + 1 < limit and row.next_turn_at > now:  # room to spare: nobody is queued
                    changes["next_turn_at"] = now
                conn.execute(
                    update(EndpointFlowRow)
                    .where(EndpointFlowRow.endpoint_id == endpoint_id)
                    .values(**changes)
                )
                return Admission(lease)
            if not waits_out_pause:  # not in the queue of those the pause holds: a turn of its own
                return Admission(None, retry_in=spacing, reason=reason)
            if turn is not None and turn > now:  # back before its turn, which it keeps
                return Admission(None, retry_in=turn - now, reason=reason, turn=turn)
            turn = max(not_before, row.next_turn_at) + spacing
            conn.execute(
                update(EndpointFlowRow)
                .where(EndpointFlowRow.endpoint_id == endpoint_id)
                .values(next_turn_at=turn, updated_at=now)
            )
        # A turn far ahead is an estimate, which the endpoint recovering would make stale: come back
        # within the horizon instead, at a time drawn from its second half, so that the attempts past it
        # do not all come back at once (a pause is not an estimate: its end is kept, to a longer bound).
        horizon = MAX_PAUSE_WAIT if not_before > now else MAX_TURN_AHEAD
        retry_in = turn - now
        if retry_in > horizon:
            retry_in = random.uniform(horizon / 2, horizon)
        return Admission(None, retry_in=retry_in, reason=reason, turn=turn)

    def abandon(self, lease_id: str) -> None:
        """Free a lease its caller gave up waiting for (`admit` may have made it after all)."""
        with self._engine.begin() as conn:
            conn.execute(delete(EndpointLeaseRow).where(EndpointLeaseRow.id == lease_id))

    def release(
        self,
        lease: Lease,
        *,
        signal: Signal,
        seconds: float,
        retry_after: float | None = None,
        reason: str | None = None,
        delivery_id: str = "",
        now: float | None = None,
    ) -> None:
        """The attempt is over: its lease freed, and what its answer says applied to the endpoint.

        `seconds`: how long the attempt took. `retry_after`: the pause its 429 or 503 asked for.
        `reason`: the answer, in words, for the dashboard (`HTTP 503`, `timed out after 15 s`). An
        endpoint deleted meanwhile (its row gone) keeps nothing.
        """
        now = time.time() if now is None else now
        with self._engine.begin() as conn:
            row = self._held(conn, lease.endpoint_id, now)
            # This attempt's lease, and any of the endpoint's that a worker which died left to expire.
            ended = EndpointLeaseRow.id == lease.id
            expired = and_(
                EndpointLeaseRow.endpoint_id == lease.endpoint_id, EndpointLeaseRow.expires_at < now
            )
            conn.execute(delete(EndpointLeaseRow).where(or_(ended, expired)))
            if row is None:
                return
            changes: dict[str, Any] = {
                "mean_seconds": (1 - MEAN_WEIGHT) * row.mean_seconds + MEAN_WEIGHT * seconds,
                "updated_at": now,
            }
            window = min(float(self.max_concurrency), row.window)
            if signal is Signal.OVERLOAD and lease.started_at >= row.lowered_at:
                changes.update(window=max(1.0, window / 2), lowered_at=now, lowered_by=reason)
            elif signal is Signal.SUCCESS:
                changes["window"] = min(float(self.max_concurrency), window + 1.0 / window)
            if retry_after is not None:
                until = now + min(retry_after, MAX_PAUSE_SECONDS)
                if until > row.paused_until:
                    changes.update(
                        paused_until=until, paused_at=now, pause_reason=reason, paused_by=delivery_id
                    )
            elif signal is Signal.SUCCESS and row.paused_until > now and lease.started_at >= row.paused_at:
                # A 2xx to an attempt made after the receiver asked for the pause: it takes deliveries
                # again. (One made before says nothing: it was in flight when it asked.)
                changes.update(
                    paused_until=0.0,
                    pause_reason=None,
                    paused_by=None,
                    next_turn_at=min(row.next_turn_at, now),
                )
            conn.execute(
                update(EndpointFlowRow)
                .where(EndpointFlowRow.endpoint_id == lease.endpoint_id)
                .values(**changes)
            )

    def read(self, endpoint_ids: list[str], *, now: float | None = None) -> dict[str, FlowView]:
        """Each endpoint's flow now (an endpoint never sent to has the full limit and nothing in flight)."""
        now = time.time() if now is None else now
        with self._engine.connect() as conn:
            rows = {
                r.endpoint_id: r
                for r in conn.execute(
                    select(EndpointFlowRow).where(EndpointFlowRow.endpoint_id.in_(endpoint_ids))
                )
            }
            counts = dict(
                conn.execute(
                    select(EndpointLeaseRow.endpoint_id, func.count())
                    .where(EndpointLeaseRow.endpoint_id.in_(endpoint_ids), EndpointLeaseRow.expires_at >= now)
                    .group_by(EndpointLeaseRow.endpoint_id)
                ).all()
            )
        views: dict[str, FlowView] = {}
        for endpoint_id in endpoint_ids:
            row = rows.get(endpoint_id)
            limit = self._limit(row.window) if row is not None else self.max_concurrency
            lowered = row is not None and limit < self.max_concurrency
            paused = row is not None and row.paused_until > now
            views[endpoint_id] = FlowView(
                in_flight=int(counts.get(endpoint_id, 0)),
                limit=limit,
                max_limit=self.max_concurrency,
                lowered_by=row.lowered_by if row is not None and lowered else None,
                lowered_at=_when(row.lowered_at) if row is not None and lowered else None,
                paused_until=_when(row.paused_until) if row is not None and paused else None,
                pause_reason=row.pause_reason if row is not None and paused else None,
            )
        return views

    def forget(self, endpoint_id: str) -> None:
        """A deleted endpoint's flow and leases (its row first, in the order `admit` and `release` take
        them: on PostgreSQL, the other order could deadlock with them)."""
        with self._engine.begin() as conn:
            conn.execute(delete(EndpointFlowRow).where(EndpointFlowRow.endpoint_id == endpoint_id))
            conn.execute(delete(EndpointLeaseRow).where(EndpointLeaseRow.endpoint_id == endpoint_id))
