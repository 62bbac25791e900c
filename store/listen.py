"""`webhooks listen`'s state in the store: sessions, and the attempts handed off to their CLI.

A session binds a CLI to a listening endpoint: an ordinary endpoint of the tenant whose URL is
`LISTEN_URL`, one per credential, kept between sessions (its signing secret stays the same from one
`listen` to the next, as Stripe's does) and enabled only while a session of it is open. So the event
fan-out, the webhook log, retries and manual retries treat it as any other endpoint.

An attempt to a listening endpoint is an activity completed asynchronously (activities/listen.py): the
activity leaves a hand-off here (its task token and the signed request, sealed) and returns; the API
replica that the CLI polls claims it, and whichever replica the CLI reports to completes the activity
with the token it reads here. The hand-offs live in the store rather than in a process's memory so that
any number of API replicas serve one session, and rather than in a workflow so that handing one over
costs Temporal nothing (docs/architecture.md, "Decisions").
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import sessionmaker

from core.crypto import seal, unseal
from domain.listen import LISTEN_URL
from domain.models import SignatureMethod
from store.database import Endpoint, EndpointStore, TooManyEndpoints
from store.tables import EndpointRow, ListenHandoffRow, ListenSessionRow

__all__ = [
    "Handoff",
    "ListenSession",
    "ListenStore",
    "TooManyEndpoints",
    "is_listening",
]


def is_listening(endpoint: Endpoint) -> bool:
    return endpoint.url == LISTEN_URL


def handoff_id(delivery_id: str, attempt: int) -> str:
    """One per attempt: a try made again (its activity's heartbeat lapsed) replaces its hand-off."""
    return "lh_" + hashlib.sha256(f"{delivery_id}:{attempt}".encode()).hexdigest()[:32]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _purpose(tenant: str, handoff: str) -> str:
    return f"listen-handoff:{tenant}:{handoff}"


@dataclass(frozen=True, slots=True)
class ListenSession:
    id: str
    tenant: str
    endpoint_id: str
    credential: str
    seen_at: datetime
    closed_at: datetime | None
    close_reason: str | None


@dataclass(frozen=True, slots=True)
class Handoff:
    """An attempt waiting for (or being made by) a session's CLI: `request` holds `delivery_id`,
    `attempt`, `trigger`, `timeout`, `headers` and `body`."""

    id: str
    session_id: str
    tenant: str
    task_token: bytes
    request: dict[str, Any]
    created_at: datetime
    claimed_at: datetime | None


def _session(row: ListenSessionRow) -> ListenSession:
    return ListenSession(
        id=row.id,
        tenant=row.tenant,
        endpoint_id=row.endpoint_id,
        credential=row.credential,
        seen_at=_aware(row.seen_at),
        closed_at=_aware(row.closed_at) if row.closed_at else None,
        close_reason=row.close_reason,
    )


class ListenStore:
    def __init__(self, store: EndpointStore) -> None:
        self._store = store
        self._keyring = store.keyring
        self._session = sessionmaker(store.engine, expire_on_commit=False)

    def _handoff(self, row: ListenHandoffRow) -> Handoff:
        return Handoff(
            id=row.id,
            session_id=row.session_id,
            tenant=row.tenant,
            task_token=base64.b64decode(row.task_token),
            request=json.loads(unseal(self._keyring, row.request, purpose=_purpose(row.tenant, row.id))),
            created_at=_aware(row.created_at),
            claimed_at=_aware(row.claimed_at) if row.claimed_at else None,
        )

    def open(
        self,
        tenant: str,
        credentials: tuple[str, ...],
        *,
        event_types: list[str] | None,
        description: str,
        max_per_tenant: int,
    ) -> tuple[ListenSession, Endpoint]:
        """A new session of the credential named `credentials` (its name under each encryption key, the
        current key's first, which the session is kept under), on its listening endpoint (made on its
        first session, enabled with `event_types` now). A session of the same endpoint still open is
        replaced: its attempts waiting are this one's. `TooManyEndpoints` if a first listening endpoint
        would be one too many."""
        endpoint = self._listening_endpoint(tenant, credentials)
        if endpoint is None:
            endpoint = self._store.create(
                tenant,
                url=LISTEN_URL,
                signature_method=SignatureMethod.HMAC,
                event_types=event_types,
                description=description,
                enabled=True,
                max_per_tenant=max_per_tenant,
            )
        now = datetime.now(UTC)
        session_id = "ls_" + secrets.token_hex(12)
        with self._session.begin() as db:
            # Enabled without the endpoint store's update, which would tell the tenant of every session's
            # end (`webhook_endpoint.disabled`): a listening endpoint's state is the session's.
            db.execute(
                update(EndpointRow)
                .where(EndpointRow.id == endpoint.id, EndpointRow.tenant == tenant)
                .values(
                    enabled=True,
                    event_types=event_types,
                    description=description,
                    disabled_reason=None,
                    disabled_by=None,
                    disabled_at=None,
                    updated_at=now,
                )
            )
            earlier = list(
                db.scalars(
                    select(ListenSessionRow.id).where(
                        ListenSessionRow.endpoint_id == endpoint.id, ListenSessionRow.closed_at.is_(None)
                    )
                )
            )
            if earlier:
                db.execute(
                    update(ListenSessionRow)
                    .where(ListenSessionRow.id.in_(earlier))
                    .values(closed_at=now, close_reason="replaced by a newer `webhooks listen`")
                )
                db.execute(
                    update(ListenHandoffRow)
                    .where(ListenHandoffRow.session_id.in_(earlier))
                    .values(session_id=session_id, claimed_by=None, claimed_at=None)
                )
            row = ListenSessionRow(
                id=session_id,
                tenant=tenant,
                endpoint_id=endpoint.id,
                credential=credentials[0],
                opened_at=now,
                seen_at=now,
            )
            db.add(row)
        opened = self._store.get(tenant, endpoint.id)
        assert opened is not None
        return _session(row), opened

    def _listening_endpoint(self, tenant: str, credentials: tuple[str, ...]) -> Endpoint | None:
        """The listening endpoint of the credential's latest session under any of its names, if it still
        is one: after a new encryption key, the one its sessions had under the key before."""
        with self._session() as db:
            endpoint_id = db.scalar(
                select(ListenSessionRow.endpoint_id)
                .where(ListenSessionRow.tenant == tenant, ListenSessionRow.credential.in_(credentials))
                .order_by(ListenSessionRow.opened_at.desc())
                .limit(1)
            )
        if endpoint_id is None:
            return None
        endpoint = self._store.get(tenant, endpoint_id)
        return endpoint if endpoint is not None and is_listening(endpoint) else None

    def get(self, tenant: str, session_id: str) -> ListenSession | None:
        with self._session() as db:
            row = db.get(ListenSessionRow, session_id)
            return _session(row) if row is not None and row.tenant == tenant else None

    def live_session(self, endpoint_id: str, *, timeout: timedelta) -> ListenSession | None:
        """The open session of a listening endpoint whose CLI was heard from within `timeout`."""
        with self._session() as db:
            row = db.scalar(
                select(ListenSessionRow)
                .where(
                    ListenSessionRow.endpoint_id == endpoint_id,
                    ListenSessionRow.closed_at.is_(None),
                    ListenSessionRow.seen_at >= datetime.now(UTC) - timeout,
                )
                .order_by(ListenSessionRow.opened_at.desc())
                .limit(1)
            )
            return _session(row) if row is not None else None

    def touch(self, session_id: str) -> None:
        with self._session.begin() as db:
            db.execute(
                update(ListenSessionRow)
                .where(ListenSessionRow.id == session_id, ListenSessionRow.closed_at.is_(None))
                .values(seen_at=datetime.now(UTC))
            )

    def put(self, session: ListenSession, handoff: str, task_token: bytes, request: dict[str, Any]) -> None:
        """Hand an attempt to the session's CLI; a try of it made again replaces the earlier one's."""
        now = datetime.now(UTC)
        values = {
            "session_id": session.id,
            "tenant": session.tenant,
            "task_token": base64.b64encode(task_token).decode(),
            "request": seal(self._keyring, json.dumps(request), purpose=_purpose(session.tenant, handoff)),
            "created_at": now,
            "claimed_by": None,
            "claimed_at": None,
            "heartbeat_at": now,
        }
        with self._session.begin() as db:
            row = db.get(ListenHandoffRow, handoff)
            if row is None:
                db.add(ListenHandoffRow(id=handoff, **values))
            else:
                for name, value in values.items():
                    setattr(row, name, value)

    def claim(self, session_id: str) -> list[Handoff]:
        """The session's attempts no poll has taken yet, taken by this one: two polls (two API replicas)
        never take the same one."""
        poll = secrets.token_hex(8)
        now = datetime.now(UTC)
        with self._session.begin() as db:
            waiting = db.scalar(
                select(ListenHandoffRow.id)
                .where(ListenHandoffRow.session_id == session_id, ListenHandoffRow.claimed_by.is_(None))
                .limit(1)
            )
            if waiting is None:
                return []
            db.execute(
                update(ListenHandoffRow)
                .where(ListenHandoffRow.session_id == session_id, ListenHandoffRow.claimed_by.is_(None))
                .values(claimed_by=poll, claimed_at=now)
            )
            rows = db.scalars(
                select(ListenHandoffRow)
                .where(ListenHandoffRow.claimed_by == poll)
                .order_by(ListenHandoffRow.created_at)
            )
            return [self._handoff(r) for r in rows]

    def due_heartbeats(self, session_id: str, *, every: timedelta) -> list[bytes]:
        """Task tokens of the session's attempts not heartbeaten for `every`, marked as heartbeaten now."""
        now = datetime.now(UTC)
        with self._session.begin() as db:
            rows = list(
                db.scalars(
                    select(ListenHandoffRow).where(
                        ListenHandoffRow.session_id == session_id,
                        ListenHandoffRow.heartbeat_at < now - every,
                    )
                )
            )
            for row in rows:
                row.heartbeat_at = now
            return [base64.b64decode(r.task_token) for r in rows]

    def handoff(self, tenant: str, session_id: str, handoff: str) -> Handoff | None:
        with self._session() as db:
            row = db.get(ListenHandoffRow, handoff)
            if row is None or row.tenant != tenant or row.session_id != session_id:
                return None
            return self._handoff(row)

    def remove(self, handoff: str, task_token: bytes) -> None:
        """Forget a completed hand-off, unless a try made again has replaced it meanwhile."""
        with self._session.begin() as db:
            db.execute(
                delete(ListenHandoffRow).where(
                    ListenHandoffRow.id == handoff,
                    ListenHandoffRow.task_token == base64.b64encode(task_token).decode(),
                )
            )

    def close(self, session_id: str, reason: str) -> list[Handoff]:
        """End a session (once) and disable its endpoint unless a newer session holds it; the attempts it
        left waiting, for the caller to fail."""
        now = datetime.now(UTC)
        with self._session.begin() as db:
            row = db.get(ListenSessionRow, session_id)
            if row is None:
                return []
            if row.closed_at is None:
                row.closed_at = now
                row.close_reason = reason
                others = db.scalar(
                    select(ListenSessionRow.id).where(
                        ListenSessionRow.endpoint_id == row.endpoint_id,
                        ListenSessionRow.closed_at.is_(None),
                        ListenSessionRow.id != session_id,
                    )
                )
                if others is None:
                    db.execute(
                        update(EndpointRow)
                        .where(EndpointRow.id == row.endpoint_id)
                        .values(
                            enabled=False,
                            disabled_reason=f"webhooks listen session ended: {reason}",
                            disabled_by="listen",
                            disabled_at=now,
                            updated_at=now,
                        )
                    )
            left = db.scalars(select(ListenHandoffRow).where(ListenHandoffRow.session_id == session_id))
            return [self._handoff(r) for r in left]

    def expired(self, *, timeout: timedelta) -> list[str]:
        """Sessions to end: open ones whose CLI has not been heard from for `timeout`, and ended ones that
        still hold attempts (the process that ended them stopped before it failed them)."""
        with self._session() as db:
            silent = db.scalars(
                select(ListenSessionRow.id).where(
                    ListenSessionRow.closed_at.is_(None),
                    ListenSessionRow.seen_at < datetime.now(UTC) - timeout,
                )
            )
            left = db.scalars(
                select(ListenHandoffRow.session_id)
                .join(ListenSessionRow, ListenSessionRow.id == ListenHandoffRow.session_id)
                .where(ListenSessionRow.closed_at.is_not(None))
                .distinct()
            )
            return sorted({*silent, *left})
