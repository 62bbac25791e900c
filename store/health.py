"""Each endpoint's health, kept by the worker at every attempt, in the endpoint store (not in Temporal).

No Temporal action is spent on bookkeeping: the activity that made the attempt updates two rows in the
same database that holds the endpoint (its health, and the hour's counts of successes and failures).
Every statement is one atomic write, so workers racing on one endpoint count every attempt.

- `healthy`: the last attempt succeeded (or none yet). `failing`: since the first failed attempt after a
  success. `disabled`: by a person, or by the rule below.
- Transitions the tenant is told of (operational webhooks): `failing` once `FAILING_NOTICE_AFTER`
  attempts in a row have failed; `recovered` at the first success after that; `disabled` when the rule
  disables it: every attempt failed for `disable_after` (WEBHOOKS_DISABLE_AFTER, Svix's 5 days by
  default) with no 2xx meanwhile.
- Each transition is owed as an event (`operational_notices`, an outbox) in the transaction that makes
  it (here, or `EndpointStore.update` for one disabled by hand), so that it is told even if Temporal
  cannot be reached at that moment or the process dies right after: `service.events.Events` sends what
  is owed and marks it sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from domain import ids
from store.tables import AttemptCountRow, EndpointHealthRow, EndpointRow, OperationalNoticeRow

FAILING_NOTICE_AFTER = 3  # attempts in a row, before `webhook_endpoint.failing` is sent
KEEP_COUNTS = timedelta(hours=48)
KEEP_SENT = timedelta(days=1)  # rows of operational events sent, kept to look at, then deleted
OWED_PER_SWEEP = 100


class Transition(StrEnum):
    FAILING = "failing"
    RECOVERED = "recovered"
    DISABLED = "disabled"
    LANE_BLOCKED = "lane_blocked"  # an ordered lane's head failed its schedule and the lane waits


class HealthState(StrEnum):
    HEALTHY = "healthy"
    FAILING = "failing"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Health:
    state: HealthState
    failing_since: datetime | None
    consecutive_failures: int
    last_error: str | None
    last_status_code: int | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    succeeded_24h: int
    failed_24h: int

    @property
    def success_rate_24h(self) -> float | None:
        total = self.succeeded_24h + self.failed_24h
        return round(self.succeeded_24h / total, 4) if total else None


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def _spoken(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} seconds"


# Sends what is owed about an endpoint whose health just changed (tenant, endpoint id); what the activity
# and the API are given: `service.events.Events.tell`.
Tell = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OwedNotice:
    """A `webhook_endpoint.*` event not yet accepted by Temporal; `id` is the event's."""

    id: str
    tenant: str
    endpoint_id: str
    transition: Transition
    at: datetime
    object: dict[str, Any]


def _iso(value: datetime | None) -> str | None:
    value = _aware(value)  # PostgreSQL answers in its session's time zone, SQLite naive (UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def operational_object(
    endpoint_id: str,
    transition: Transition,
    *,
    description: str,
    enabled: bool,
    disabled: tuple[str, str, datetime] | None,
    failing_since: datetime | None,
    consecutive_failures: int,
    last_error: str | None,
    last_status_code: int | None,
    lane: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a `webhook_endpoint.*` event says about an endpoint (`disabled`: reason, by, at): never its
    secret, its headers or its URL (which may hold a token, and goes to the tenant's other receivers)."""
    about = {
        "id": endpoint_id,
        "description": description,
        "enabled": enabled,
        "transition": transition.value,
        "failing_since": _iso(failing_since),
        "consecutive_failures": consecutive_failures,
        "last_error": last_error,
        "last_status_code": last_status_code,
        "disabled": {"reason": disabled[0], "by": disabled[1], "at": _iso(disabled[2])} if disabled else None,
    }
    if lane is not None:  # `lane_blocked`: which lane, and the head it waits on
        about["lane"] = lane
    return about


def owe(
    conn: Connection,
    tenant: str,
    endpoint_id: str,
    transition: Transition,
    at: datetime,
    *,
    failing_since: datetime | None = None,
    lane: dict[str, Any] | None = None,
) -> None:
    """Owe the event of `transition` (begun `at`) in `conn`'s transaction, once per event id, saying what
    the endpoint and its health are now in it (`failing_since`: the run a recovery ended; `lane`: the
    blocked lane of `lane_blocked`)."""
    endpoint = conn.execute(
        select(
            EndpointRow.description,
            EndpointRow.enabled,
            EndpointRow.disabled_reason,
            EndpointRow.disabled_by,
            EndpointRow.disabled_at,
        ).where(EndpointRow.id == endpoint_id)
    ).one_or_none()
    if endpoint is None:
        return  # deleted while its attempt was made: no endpoint left to tell of
    health = conn.execute(
        select(
            EndpointHealthRow.failing_since,
            EndpointHealthRow.consecutive_failures,
            EndpointHealthRow.last_error,
            EndpointHealthRow.last_status_code,
        ).where(EndpointHealthRow.endpoint_id == endpoint_id)
    ).one_or_none()
    about = operational_object(
        endpoint_id,
        transition,
        description=endpoint.description,
        enabled=endpoint.enabled,
        disabled=(endpoint.disabled_reason or "", endpoint.disabled_by, endpoint.disabled_at)
        if endpoint.disabled_by and endpoint.disabled_at
        else None,
        failing_since=failing_since or (health.failing_since if health else None),
        consecutive_failures=health.consecutive_failures if health else 0,
        last_error=health.last_error if health else None,
        last_status_code=health.last_status_code if health else None,
        lane=lane,
    )
    # A lane's blocking names the lane and its head too: two lanes of one endpoint may block at once.
    notice_id = (
        ids.lane_blocked_event_id(endpoint_id, lane["ordering_key"], lane["head"]["sequence"], at)
        if lane is not None
        else ids.operational_event_id(endpoint_id, transition.value, at)
    )
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    conn.execute(
        dialect.insert(OperationalNoticeRow)
        .values(
            id=notice_id,
            tenant=tenant,
            endpoint_id=endpoint_id,
            transition=transition.value,
            at=at,
            owed_at=datetime.now(UTC),
            object=about,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


def _upsert_counts(engine: Engine, endpoint_id: str, hour: datetime, *, succeeded: int, failed: int) -> Any:
    values = {"endpoint_id": endpoint_id, "hour": hour, "succeeded": succeeded, "failed": failed}
    dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
    insert = dialect.insert(AttemptCountRow).values(**values)
    return insert.on_conflict_do_update(
        index_elements=["endpoint_id", "hour"],
        set_={
            "succeeded": AttemptCountRow.succeeded + succeeded,
            "failed": AttemptCountRow.failed + failed,
        },
    )


def _insert_health(engine: Engine, tenant: str, endpoint_id: str) -> Any:
    dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
    return (
        dialect.insert(EndpointHealthRow)
        .values(endpoint_id=endpoint_id, tenant=tenant, consecutive_failures=0, failing_notified=False)
        .on_conflict_do_nothing(index_elements=["endpoint_id"])
    )


class EndpointHealth:
    """Records attempts and reads health, in the endpoint store's database."""

    def __init__(self, engine: Engine, *, disable_after: timedelta) -> None:
        self._engine = engine
        self._disable_after = disable_after

    def record(
        self,
        tenant: str,
        endpoint_id: str,
        *,
        succeeded: bool,
        status_code: int | None,
        error: str | None,
        at: datetime,
    ) -> list[Transition]:
        """Count one attempt the receiver answered (or did not); the transitions it caused, once each."""
        hour = at.replace(minute=0, second=0, microsecond=0)
        transitions: list[Transition] = []
        mine = EndpointHealthRow.endpoint_id == endpoint_id
        with self._engine.begin() as conn:
            conn.execute(_insert_health(self._engine, tenant, endpoint_id))
            conn.execute(
                _upsert_counts(
                    self._engine, endpoint_id, hour, succeeded=int(succeeded), failed=int(not succeeded)
                )
            )
            if succeeded:
                ended = _aware(conn.execute(select(EndpointHealthRow.failing_since).where(mine)).scalar_one())
                told = conn.execute(
                    update(EndpointHealthRow)
                    .where(mine, EndpointHealthRow.failing_notified.is_(True))
                    .values(failing_notified=False)
                )
                conn.execute(
                    update(EndpointHealthRow)
                    .where(mine)
                    .values(
                        consecutive_failures=0,
                        failing_since=None,
                        last_error=None,
                        last_status_code=status_code,
                        last_attempt_at=at,
                        last_success_at=at,
                    )
                )
                if told.rowcount:
                    transitions.append(Transition.RECOVERED)
                    owe(conn, tenant, endpoint_id, Transition.RECOVERED, at, failing_since=ended)
            else:
                conn.execute(
                    update(EndpointHealthRow)
                    .where(mine)
                    .values(
                        consecutive_failures=EndpointHealthRow.consecutive_failures + 1,
                        failing_since=func.coalesce(EndpointHealthRow.failing_since, at),
                        last_error=error,
                        last_status_code=status_code,
                        last_attempt_at=at,
                    )
                )
                notice = conn.execute(
                    update(EndpointHealthRow)
                    .where(
                        mine,
                        EndpointHealthRow.failing_notified.is_(False),
                        EndpointHealthRow.consecutive_failures >= FAILING_NOTICE_AFTER,
                    )
                    .values(failing_notified=True)
                )
                since = _aware(conn.execute(select(EndpointHealthRow.failing_since).where(mine)).scalar_one())
                if notice.rowcount:
                    transitions.append(Transition.FAILING)
                    owe(conn, tenant, endpoint_id, Transition.FAILING, since or at)
                if since is not None and since <= at - self._disable_after:
                    disabled = conn.execute(
                        update(EndpointRow)
                        .where(EndpointRow.id == endpoint_id, EndpointRow.enabled.is_(True))
                        .values(
                            enabled=False,
                            disabled_by="rule",
                            disabled_at=at,
                            disabled_reason=(
                                f"every attempt failed for {_spoken(self._disable_after)} or more, since "
                                f"{since:%Y-%m-%d %H:%M:%S} UTC, with no 2xx"
                            ),
                        )
                    )
                    if disabled.rowcount:
                        transitions.append(Transition.DISABLED)
                        owe(conn, tenant, endpoint_id, Transition.DISABLED, at)
            if at - hour < timedelta(minutes=1):
                # Early in each hour, forget counts older than anything shown.
                conn.execute(
                    delete(AttemptCountRow).where(
                        AttemptCountRow.endpoint_id == endpoint_id, AttemptCountRow.hour < at - KEEP_COUNTS
                    )
                )
        return transitions

    def owed(
        self, *, tenant: str | None = None, endpoint_id: str | None = None, before: datetime | None = None
    ) -> list[OwedNotice]:
        """Events owed and not sent, oldest first: of one endpoint, or owed since before `before`."""
        row = OperationalNoticeRow
        query = select(row.id, row.tenant, row.endpoint_id, row.transition, row.at, row.object).where(
            row.sent_at.is_(None)
        )
        if tenant is not None and endpoint_id is not None:
            query = query.where(row.tenant == tenant, row.endpoint_id == endpoint_id)
        if before is not None:
            query = query.where(row.owed_at < before)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(row.at).limit(OWED_PER_SWEEP)).all()
        return [
            OwedNotice(notice_id, tenant, endpoint_id, Transition(transition), _aware(at) or at, about)
            for notice_id, tenant, endpoint_id, transition, at, about in rows
        ]

    def sent(self, notice_id: str, *, at: datetime) -> None:
        """Temporal has the event: it is owed no more. Rows sent more than a day before are deleted."""
        with self._engine.begin() as conn:
            conn.execute(
                update(OperationalNoticeRow).where(OperationalNoticeRow.id == notice_id).values(sent_at=at)
            )
            conn.execute(delete(OperationalNoticeRow).where(OperationalNoticeRow.sent_at < at - KEEP_SENT))

    def read(self, endpoints: Iterable[tuple[str, bool]], *, now: datetime) -> dict[str, Health]:
        """The health of each `(endpoint id, enabled)`: disabled ones say so, whatever their counts."""
        wanted = dict(endpoints)
        if not wanted:
            return {}
        since = now - timedelta(hours=24)
        with self._engine.connect() as conn:
            rows = {
                r.endpoint_id: r
                for r in conn.execute(
                    select(EndpointHealthRow).where(EndpointHealthRow.endpoint_id.in_(list(wanted)))
                )
            }
            counts = {
                endpoint_id: (int(ok or 0), int(bad or 0))
                for endpoint_id, ok, bad in conn.execute(
                    select(
                        AttemptCountRow.endpoint_id,
                        func.sum(AttemptCountRow.succeeded),
                        func.sum(AttemptCountRow.failed),
                    )
                    .where(and_(AttemptCountRow.endpoint_id.in_(list(wanted)), AttemptCountRow.hour >= since))
                    .group_by(AttemptCountRow.endpoint_id)
                )
            }
        found: dict[str, Health] = {}
        for endpoint_id, enabled in wanted.items():
            row = rows.get(endpoint_id)
            ok, bad = counts.get(endpoint_id, (0, 0))
            failing = row is not None and row.consecutive_failures > 0
            state = (
                HealthState.DISABLED
                if not enabled
                else HealthState.FAILING
                if failing
                else HealthState.HEALTHY
            )
            found[endpoint_id] = Health(
                state=state,
                failing_since=_aware(row.failing_since) if row is not None else None,
                consecutive_failures=row.consecutive_failures if row is not None else 0,
                last_error=row.last_error if row is not None else None,
                last_status_code=row.last_status_code if row is not None else None,
                last_attempt_at=_aware(row.last_attempt_at) if row is not None else None,
                last_success_at=_aware(row.last_success_at) if row is not None else None,
                succeeded_24h=ok,
                failed_24h=bad,
            )
        return found
