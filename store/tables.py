"""The endpoint store's schema: every table, in one place (SQLAlchemy 2).

store/database.py works with endpoints and signing keys, store/health.py with health, counts and
the operational events owed, store/flow.py with what workers share about each endpoint, and
store/rate_limits.py with the API's token buckets.

A change here is a migration too: `alembic revision --autogenerate` with store/migrations/ (see
store/migrate.py) drafts it, and tests/test_migrations.py fails while the two disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class EndpointRow(Base):
    __tablename__ = "endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(Text)  # sealed: a URL often carries a token
    description: Mapped[str] = mapped_column(String(1024), default="")
    signature_method: Mapped[str] = mapped_column(String(8))
    secret: Mapped[str] = mapped_column(String(512))  # sealed: enc:v1:{kid}:{base64}
    event_types: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # None: every type
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Added after the first release: nullable, so that an older table could gain them (migration 0001).
    headers: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed JSON: values may be tokens
    rate_limit_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)
    retry_schedule: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    previous_secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed, during a rotation
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    disabled_by: Mapped[str | None] = mapped_column(String(16), nullable=True)  # "api" or "rule"
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Ordered delivery (migration 0002): with server defaults, so that rows of before it, and rows an older
    # version writes after a downgrade, are unordered endpoints.
    ordered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    ordered_on_failure: Mapped[str] = mapped_column(
        String(8), default="block", server_default=text("'block'")
    )
    # Who is mailed when its health changes (migration 0005): sealed JSON of addresses, NULL for none.
    alert_emails: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The custom headers marked secret, by lower-case name (migration 0006): names only, the values are
    # in the sealed `headers`. NULL: a row from before it, whose every header counts as marked.
    secret_headers: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class SigningKeyRow(Base):
    __tablename__ = "signing_keys"
    # Two processes making a tenant's first key, or two rotations at once: one insert wins.
    __table_args__ = (UniqueConstraint("tenant", "generation"),)

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    private_key: Mapped[str] = mapped_column(Text)  # sealed PEM
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # published from then
    signs_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EndpointHealthRow(Base):
    __tablename__ = "endpoint_health"

    endpoint_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failing_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OperationalNoticeRow(Base):
    """A `webhook_endpoint.*` event owed to a tenant: written with the health change it tells of, in the
    same transaction, and marked sent once Temporal has accepted it (an outbox)."""

    __tablename__ = "operational_notices"

    id: Mapped[str] = mapped_column(String(160), primary_key=True)  # the event's id (domain/ids.py)
    tenant: Mapped[str] = mapped_column(String(64))
    endpoint_id: Mapped[str] = mapped_column(String(40))
    transition: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # when the transition began
    owed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # when it was written here
    object: Mapped[dict[str, Any]] = mapped_column(JSON)  # what it says: the endpoint as the change left it
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


class AttemptCountRow(Base):
    """An endpoint's attempts in one hour: the success rate over the last 24 h is a sum of 24 rows."""

    __tablename__ = "endpoint_attempt_counts"

    endpoint_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)


class EndpointFlowRow(Base):
    """What every worker shares about sending to one endpoint (store/flow.py): its adaptive limit
    of attempts in flight, the pause its receiver asked for, its rate limit's bucket, and when the next
    attempt told to wait should come back. Times are unix seconds, the store's one clock for it."""

    __tablename__ = "endpoint_flow"

    endpoint_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    window: Mapped[float] = mapped_column(Float)  # attempts in flight allowed now (AIMD)
    lowered_at: Mapped[float] = mapped_column(Float, default=0.0)  # the window's last decrease
    lowered_by: Mapped[str | None] = mapped_column(Text, nullable=True)  # what the receiver did then
    paused_until: Mapped[float] = mapped_column(Float, default=0.0)  # Retry-After, for every worker
    paused_at: Mapped[float] = mapped_column(Float, default=0.0)  # when it was asked for
    pause_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The delivery whose answer asked for the pause: it waits on its own schedule, which honours it too.
    paused_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tokens: Mapped[float] = mapped_column(Float)  # the rate limit's bucket (at most one token)
    tokens_at: Mapped[float] = mapped_column(Float)
    next_turn_at: Mapped[float] = mapped_column(Float, default=0.0)  # the last turn handed out
    mean_seconds: Mapped[float] = mapped_column(Float)  # an attempt's duration, moving average
    updated_at: Mapped[float] = mapped_column(Float)


class EndpointLeaseRow(Base):
    """One attempt in flight to an endpoint; a worker that dies leaves it to expire."""

    __tablename__ = "endpoint_leases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(40), index=True)
    started_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class TokenBucketRow(Base):
    """A token bucket of a limit at the API's door (store/rate_limits.py), shared by every API replica:
    `emit:{credential}`, `test:{tenant}`."""

    __tablename__ = "token_buckets"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)  # unix seconds: the bucket's clock


class SessionRevocationRow(Base):
    __tablename__ = "portal_session_revocations"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Kept until the session would have expired anyway; then the row is deleted.
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LaneSequenceRow(Base):
    """The last sequence number an ordered lane (workflows/lane.py) handed out, kept outside its workflow so
    that a lane started again after its run was terminated goes on numbering where it stopped."""

    __tablename__ = "lane_sequences"

    endpoint_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    lane_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # domain/ids.py, `lane_key`
    tenant: Mapped[str] = mapped_column(String(64))
    last_sequence: Mapped[int] = mapped_column(Integer)


class ListenSessionRow(Base):
    """A `webhooks listen` session (store/listen.py): the CLI that holds it, the listening endpoint its
    deliveries go to, and when the CLI was last heard from. Kept after it ends (`closed_at`), so that a
    credential's next session finds its listening endpoint again."""

    __tablename__ = "listen_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    endpoint_id: Mapped[str] = mapped_column(String(40), index=True)
    credential: Mapped[str] = mapped_column(String(200))  # Principal.credential: names no secret
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    close_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class ListenHandoffRow(Base):
    """One attempt to a listening endpoint, waiting for its CLI: the activity's task token, and the signed
    request, sealed (it holds the customer's payload). Deleted when the attempt is completed."""

    __tablename__ = "listen_handoffs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # of the delivery and attempt
    session_id: Mapped[str] = mapped_column(String(40), index=True)
    tenant: Mapped[str] = mapped_column(String(64))
    task_token: Mapped[str] = mapped_column(Text)  # base64; the activity try it completes
    request: Mapped[str] = mapped_column(Text)  # sealed JSON: headers, body, attempt, trigger, timeout
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the poll that took it
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RecoverySlotRow(Base):
    """A recovery or replay of the tenant's, running or starting (store/recoveries.py): what the bound on
    those running at once (`WEBHOOKS_RECOVERIES_PER_TENANT`) counts, one at a time, on every API replica.
    A row outlives its recovery until the tenant's next start finds that recovery closed."""

    __tablename__ = "recovery_slots"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(40), primary_key=True)  # one recovery an endpoint
    reserved_at: Mapped[float] = mapped_column(Float)  # unix seconds, when the API took it
    token: Mapped[str] = mapped_column(String(32))  # new each time it is taken: freed only as it was read
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # its recovery's, once started
