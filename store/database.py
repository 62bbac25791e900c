"""The endpoint store: each tenant's webhook endpoints, jwt signing keys and revoked portal sessions
(SQLAlchemy 2).

Configuration is relational data read on every emission and every attempt, so it lives in SQL: a SQLite
file in the data dir by default, PostgreSQL in `docker-compose.yml`. Temporal keeps everything about
deliveries. Every function takes the tenant, so one tenant's rows are invisible to another.

`SigningKeyStore` keeps the private keys of the jwt method, one set per tenant (store/keys.py decides
which key signs and which are published). `SessionRevocations` lists the portal sessions a tenant ended
early (core/sessions.py: sessions themselves are signed tokens, stored nowhere).

Secrets are encrypted at rest (core/crypto.py, the keys of the Temporal payload codec): an endpoint's
hmac secret and URL (which often carries a token) and a signing key's private half are sealed as they
are written and opened as they are read, each bound to the row it belongs to. A store written before
that is sealed by its upgrade (store/migrate.py). The schema is made and changed by migrations only
(store/migrations/), never by the processes that use it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.crypto import DecryptionError, Keyring, is_sealed, seal, sealed_with, unseal
from core.signing import generate_secret
from domain import ids
from domain.catalog import receives
from domain.endpoint_headers import HeaderSetting, merged
from domain.models import OrderedOnFailure, SignatureMethod
from store.health import Transition, owe
from store.tables import (
    EndpointHealthRow,
    EndpointRow,
    SessionRevocationRow,
    SigningKeyRow,
)


@dataclass(frozen=True, slots=True)
class Disabled:
    reason: str
    by: str  # "api": a person; "rule": failing for WEBHOOKS_DISABLE_AFTER
    at: datetime


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    tenant: str
    url: str
    description: str
    signature_method: SignatureMethod
    secret: str
    event_types: list[str] | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    rate_limit_per_second: float | None = None
    retry_schedule: list[float] | None = None
    previous_secret: str | None = None  # still signs, beside `secret`, until it expires
    previous_secret_expires_at: datetime | None = None
    disabled: Disabled | None = None
    ordered: bool = False  # its events are delivered one at a time per ordering key (workflows/lane.py)
    ordered_on_failure: OrderedOnFailure = OrderedOnFailure.BLOCK
    alert_emails: list[str] = field(default_factory=list)  # mailed when its health changes
    secret_headers: frozenset[str] = frozenset()  # lower-case names of headers marked secret

    def subscribes_to(self, webhook_type: str) -> bool:
        return receives(self.event_types, webhook_type)

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the previous one while a
        rotation's grace period lasts."""
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and now < expires:
            return [self.secret, self.previous_secret]
        return [self.secret]


def _marks(marked: Collection[str], headers: Mapping[str, str]) -> list[str]:
    """The lower-case names marked secret among `headers`, as stored ([]: none; NULL is a row written
    before headers could be marked, whose every header counts as marked: see `_stored_marks`)."""
    names = {n.lower() for n in headers}
    return sorted({m.lower() for m in marked} & names)


def _stored_marks(stored: list[str] | None, headers: Mapping[str, str]) -> frozenset[str]:
    """The marks a row holds. A row from before migration 0006 has none stored, and the API then showed
    every header's value masked: each of its headers stays so until the tenant says otherwise."""
    if stored is None:
        return frozenset(n.lower() for n in headers)
    return frozenset(stored)


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes even for timezone=True columns; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _endpoint_purpose(column: str) -> Callable[[str, str], str]:
    """The purpose an endpoint row's sealed `column` is bound to, of a tenant's endpoint (tenant, endpoint
    id): a value copied to another column, endpoint or tenant does not open there."""

    def purpose(tenant: str, endpoint_id: str) -> str:
        return f"endpoint-{column}:{tenant}:{endpoint_id}"

    return purpose


_secret_purpose = _endpoint_purpose("secret")
_url_purpose = _endpoint_purpose("url")
_headers_purpose = _endpoint_purpose("headers")
_previous_secret_purpose = _endpoint_purpose("previous-secret")
_alert_emails_purpose = _endpoint_purpose("alert-emails")


def _key_purpose(tenant: str, kid: str) -> str:
    return f"signing-key:{tenant}:{kid}"


# The purposes an endpoint row's sealed columns are bound to: secret, url, headers, previous secret, alert
# addresses (customer data: people's addresses).
_ENDPOINT_PURPOSES = (
    _secret_purpose,
    _url_purpose,
    _headers_purpose,
    _previous_secret_purpose,
    _alert_emails_purpose,
)


def _open(keyring: Keyring, stored: str, purpose: str) -> str:
    # A value written before secrets were sealed is read as it is, until the upgrade seals it.
    return unseal(keyring, stored, purpose=purpose) if is_sealed(stored) else stored


def _to_endpoint(row: EndpointRow, keyring: Keyring) -> Endpoint:
    headers: dict[str, str] = (
        json.loads(_open(keyring, row.headers, _headers_purpose(row.tenant, row.id))) if row.headers else {}
    )
    return Endpoint(
        id=row.id,
        tenant=row.tenant,
        url=_open(keyring, row.url, _url_purpose(row.tenant, row.id)),
        description=row.description,
        signature_method=SignatureMethod(row.signature_method),
        secret=_open(keyring, row.secret, _secret_purpose(row.tenant, row.id)),
        event_types=list(row.event_types) if row.event_types is not None else None,
        enabled=row.enabled,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
        headers=headers,
        rate_limit_per_second=row.rate_limit_per_second,
        retry_schedule=list(row.retry_schedule) if row.retry_schedule is not None else None,
        previous_secret=_open(keyring, row.previous_secret, _previous_secret_purpose(row.tenant, row.id))
        if row.previous_secret
        else None,
        previous_secret_expires_at=_aware(row.previous_secret_expires_at)
        if row.previous_secret_expires_at
        else None,
        disabled=Disabled(row.disabled_reason or "", row.disabled_by or "api", _aware(row.disabled_at))
        if not row.enabled and row.disabled_at is not None
        else None,
        ordered=bool(row.ordered),
        ordered_on_failure=OrderedOnFailure(row.ordered_on_failure or OrderedOnFailure.BLOCK),
        alert_emails=json.loads(_open(keyring, row.alert_emails, _alert_emails_purpose(row.tenant, row.id)))
        if row.alert_emails
        else [],
        secret_headers=_stored_marks(row.secret_headers, headers),
    )


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A tenant's signing key as stored: published from `created_at`, signing from `signs_from` (until a
    newer key signs), gone from the JWKS at `retires_at`."""

    tenant: str
    kid: str
    generation: int
    private_pem: bytes
    created_at: datetime
    signs_from: datetime
    retires_at: datetime | None


def _to_key(row: SigningKeyRow, keyring: Keyring) -> StoredKey:
    return StoredKey(
        tenant=row.tenant,
        kid=row.kid,
        generation=row.generation,
        private_pem=_open(keyring, row.private_key, _key_purpose(row.tenant, row.kid)).encode(),
        created_at=_aware(row.created_at),
        signs_from=_aware(row.signs_from),
        retires_at=_aware(row.retires_at) if row.retires_at is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Subscriber:
    endpoint_id: str
    retry_schedule: list[float] | None  # None: the service's schedule
    ordered: bool = False
    ordered_on_failure: OrderedOnFailure = OrderedOnFailure.BLOCK


log = logging.getLogger("webhooks.store")
UNSET: Any = object()
CONNECT_TIMEOUT_SECONDS = 5


class EndpointStore:
    def __init__(self, url: str, keyring: Keyring) -> None:
        self.keyring = keyring
        sqlite = url.startswith("sqlite")
        # A server database (PostgreSQL in docker-compose.yml) can restart under us: check a pooled
        # connection before use rather than fail the request or attempt that draws a dead one.
        # A server that does not answer must not hold a request or an attempt for long.
        connect_args = {} if sqlite else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        self.engine: Engine = create_engine(url, pool_pre_ping=not sqlite, connect_args=connect_args)
        if sqlite:
            event.listen(self.engine, "connect", sqlite_pragmas)
            database = self.engine.url.database
            if database and database != ":memory:":
                # A first start (the API or a worker alone, say in a container) makes the data dir.
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        # The same database, for state that is only ever a moment's (an endpoint's attempts in flight,
        # the door's token buckets, store/flow.py and store/rate_limits.py): written twice an
        # attempt, so its commits are not waited onto disk. A crash of the machine may take back the last
        # of them, which costs a lease freed early or late, or a token; never an endpoint or a delivery.
        self.soft_engine: Engine = create_engine(url, pool_pre_ping=not sqlite, connect_args=connect_args)
        if sqlite:
            event.listen(self.soft_engine, "connect", _sqlite_soft_pragmas)
        else:
            event.listen(self.soft_engine, "begin", _postgres_async_commit)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self.signing_keys = SigningKeyStore(self.engine, keyring)
        self.session_revocations = SessionRevocations(self.engine)
        self._keys_checked: tuple[float, list[str]] | None = None  # when, and what unopened_keys said
        self._keys_lock = threading.Lock()
        self._keys_reading = False

    def seal_plaintext(self) -> int:
        """Seal every secret written before secrets were encrypted; how many there were."""
        sealed = 0
        with self._session.begin() as session:
            for row in session.scalars(
                select(EndpointRow).where(
                    or_(EndpointRow.secret.not_like("enc:%"), EndpointRow.url.not_like("enc:%"))
                )
            ):
                if not is_sealed(row.secret):
                    row.secret = seal(self.keyring, row.secret, purpose=_secret_purpose(row.tenant, row.id))
                if not is_sealed(row.url):
                    row.url = seal(self.keyring, row.url, purpose=_url_purpose(row.tenant, row.id))
                sealed += 1
            plain_keys = select(SigningKeyRow).where(SigningKeyRow.private_key.not_like("enc:%"))
            for key in session.scalars(plain_keys):
                key.private_key = seal(
                    self.keyring, key.private_key, purpose=_key_purpose(key.tenant, key.kid)
                )
                sealed += 1
        return sealed

    def unopened_keys_lately(self, max_age: float) -> list[str]:
        """What `unopened_keys` said last, without waiting: once that is older than `max_age` seconds, it
        is read again in a thread of its own, one at a time (/healthz asks on every poll, and a read goes
        through every sealed value of the store). Nothing before its first read, which the API's start
        makes (`require_keys`)."""
        with self._keys_lock:
            checked = self._keys_checked
            stale = checked is None or time.monotonic() - checked[0] > max_age
            if stale and not self._keys_reading:
                self._keys_reading = True
                threading.Thread(target=self._read_keys_again, name="key-check", daemon=True).start()
        return checked[1] if checked is not None else []

    def _read_keys_again(self) -> None:
        try:
            self.unopened_keys()
        except Exception as err:  # the store down: /healthz says so by its own check; read again next time
            log.warning("the encryption keys were not checked against the store: %s", err)
        finally:
            with self._keys_lock:
                self._keys_reading = False

    def unopened_keys(self) -> list[str]:
        """What the configured encryption keys cannot open of the store's sealed values, one line per key
        id: a key id missing from WEBHOOKS_ENCRYPTION_KEYS, or a key listed under an id it was not made
        with. One value of each key id is opened, as a key check value would be checked: every value
        sealed with a key opens with it."""
        tried: dict[str, str | None] = {}
        with self._session() as session:
            endpoints = session.execute(
                select(
                    EndpointRow.tenant,
                    EndpointRow.id,
                    EndpointRow.secret,
                    EndpointRow.url,
                    EndpointRow.headers,
                    EndpointRow.previous_secret,
                    EndpointRow.alert_emails,
                )
            )
            sealed = [
                (value, purpose(tenant, endpoint_id))
                for tenant, endpoint_id, *values in endpoints
                for value, purpose in zip(values, _ENDPOINT_PURPOSES, strict=True)
                if value
            ]
            keys = session.execute(select(SigningKeyRow.tenant, SigningKeyRow.kid, SigningKeyRow.private_key))
            sealed += [(private, _key_purpose(tenant, kid)) for tenant, kid, private in keys]
        for value, purpose in sealed:
            kid = sealed_with(value) if is_sealed(value) else None
            if kid is None or kid in tried:
                continue
            if kid not in self.keyring.keys:
                tried[kid] = (
                    f"key id {kid!r} sealed secrets in the store, and WEBHOOKS_ENCRYPTION_KEYS lacks it"
                )
                continue
            try:
                unseal(self.keyring, value, purpose=purpose)
                tried[kid] = None
            except DecryptionError:
                tried[kid] = (
                    f"key id {kid!r} in WEBHOOKS_ENCRYPTION_KEYS is not the key the store's secrets were "
                    "sealed with"
                )
        problems = [problem for problem in tried.values() if problem is not None]
        with self._keys_lock:
            self._keys_checked = (time.monotonic(), problems)
        return problems

    def close(self) -> None:
        self.engine.dispose()
        self.soft_engine.dispose()

    def ping(self) -> None:
        """Raise the store's error if it cannot be read now."""
        with self._session() as session:
            session.execute(select(EndpointRow.id).limit(1))

    def free_bytes(self) -> int | None:
        """How much this process may still write on the filesystem of a SQLite store's file; None for a
        database server (its disk is the server's to watch) or a store in memory."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        found = os.statvfs(Path(database).parent)
        # Root may write into the blocks a filesystem keeps for it (5 % on ext4), anyone else may not.
        blocks = found.f_bfree if os.geteuid() == 0 else found.f_bavail
        return blocks * found.f_frsize

    def create(
        self,
        tenant: str,
        *,
        url: str,
        signature_method: SignatureMethod,
        event_types: list[str] | None,
        description: str,
        enabled: bool,
        headers: dict[str, str] | None = None,
        secret_headers: Collection[str] = (),
        rate_limit_per_second: float | None = None,
        retry_schedule: list[float] | None = None,
        ordered: bool = False,
        ordered_on_failure: OrderedOnFailure = OrderedOnFailure.BLOCK,
        alert_emails: list[str] | None = None,
        max_per_tenant: int | None = None,
    ) -> Endpoint:
        """A new endpoint; `TooManyEndpoints` if the tenant has `max_per_tenant` already."""
        now = datetime.now(UTC)
        endpoint_id = ids.new_endpoint_id()
        row = EndpointRow(
            id=endpoint_id,
            tenant=tenant,
            url=seal(self.keyring, url, purpose=_url_purpose(tenant, endpoint_id)),
            description=description,
            signature_method=signature_method.value,
            # Every endpoint has a secret, so switching a jwt endpoint to hmac needs no extra step.
            secret=seal(self.keyring, generate_secret(), purpose=_secret_purpose(tenant, endpoint_id)),
            event_types=event_types,
            enabled=enabled,
            created_at=now,
            updated_at=now,
            headers=self._sealed_headers(tenant, endpoint_id, headers),
            secret_headers=_marks(secret_headers, headers or {}),
            rate_limit_per_second=rate_limit_per_second,
            retry_schedule=retry_schedule,
            ordered=ordered,
            ordered_on_failure=OrderedOnFailure(ordered_on_failure).value,
            alert_emails=self._sealed_alert_emails(tenant, endpoint_id, alert_emails),
            disabled_reason=None if enabled else "created disabled",
            disabled_by=None if enabled else "api",
            disabled_at=None if enabled else now,
        )
        with self._session.begin() as session:
            if max_per_tenant is not None and self.engine.dialect.name == "postgresql":
                # Two API replicas creating the tenant's last allowed endpoint at once: one at a time.
                session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"endpoints:{tenant}"))))
            # Written first, then counted: on SQLite the write lock makes the count exact, as the
            # advisory lock does on PostgreSQL.
            session.add(row)
            session.flush()
            if max_per_tenant is not None:
                count = session.scalar(select(func.count()).where(EndpointRow.tenant == tenant)) or 0
                if count > max_per_tenant:  # raised inside the transaction: it is rolled back
                    raise TooManyEndpoints(max_per_tenant)
        return _to_endpoint(row, self.keyring)

    def for_tenant(self, tenant: str) -> list[Endpoint]:
        with self._session() as session:
            rows = session.scalars(
                select(EndpointRow).where(EndpointRow.tenant == tenant).order_by(EndpointRow.created_at)
            )
            return [_to_endpoint(r, self.keyring) for r in rows]

    def get(self, tenant: str, endpoint_id: str) -> Endpoint | None:
        with self._session() as session:
            row = session.get(EndpointRow, endpoint_id)
            return _to_endpoint(row, self.keyring) if row is not None and row.tenant == tenant else None

    def _sealed_headers(self, tenant: str, endpoint_id: str, headers: dict[str, str] | None) -> str | None:
        if not headers:
            return None
        return seal(self.keyring, json.dumps(headers), purpose=_headers_purpose(tenant, endpoint_id))

    def _sealed_alert_emails(self, tenant: str, endpoint_id: str, addresses: list[str] | None) -> str | None:
        if not addresses:
            return None
        return seal(self.keyring, json.dumps(addresses), purpose=_alert_emails_purpose(tenant, endpoint_id))

    def update(
        self,
        tenant: str,
        endpoint_id: str,
        *,
        url: str = UNSET,
        signature_method: SignatureMethod = UNSET,
        event_types: list[str] | None = UNSET,
        description: str = UNSET,
        enabled: bool = UNSET,
        headers: dict[str, str] | None = UNSET,
        header_changes: Mapping[str, HeaderSetting | None] = UNSET,
        rate_limit_per_second: float | None = UNSET,
        retry_schedule: list[float] | None = UNSET,
        ordered: bool = UNSET,
        ordered_on_failure: OrderedOnFailure = UNSET,
        alert_emails: list[str] | None = UNSET,
        disabled_reason: str = "disabled by hand",
        disabled_by: str = "api",
    ) -> Endpoint | None:
        """Change the fields given; disabling records why and by whom, enabling forgets it. `headers`
        replaces them all (None: none, and no marks); `header_changes` changes them one by one
        (`domain.endpoint_headers.merged`, `ValueError` if the result could not be sent)."""
        changes: dict[str, Any] = {
            "url": seal(self.keyring, url, purpose=_url_purpose(tenant, endpoint_id))
            if url is not UNSET
            else UNSET,
            "signature_method": signature_method.value if signature_method is not UNSET else UNSET,
            "event_types": event_types,
            "description": description,
            "headers": self._sealed_headers(tenant, endpoint_id, headers) if headers is not UNSET else UNSET,
            "rate_limit_per_second": rate_limit_per_second,
            "retry_schedule": retry_schedule,
            "ordered": ordered,
            "ordered_on_failure": OrderedOnFailure(ordered_on_failure).value
            if ordered_on_failure is not UNSET
            else UNSET,
            "alert_emails": self._sealed_alert_emails(tenant, endpoint_id, alert_emails)
            if alert_emails is not UNSET
            else UNSET,
        }
        with self._session.begin() as session:
            row = session.get(EndpointRow, endpoint_id)
            if row is None or row.tenant != tenant:
                return None
            if header_changes is not UNSET:
                # Headers changed one by one are merged into what the store holds under the row's write
                # lock, taken by a write before the read (SQLite begins a transaction at its first write;
                # PostgreSQL locks the row): two PATCHes at once each keep the other's change.
                session.execute(
                    update(EndpointRow)
                    .where(EndpointRow.id == endpoint_id)
                    .values(updated_at=datetime.now(UTC))
                )
                session.refresh(row)
            for name, value in changes.items():
                if value is not UNSET:
                    setattr(row, name, value)
            if headers is not UNSET and not headers:
                row.secret_headers = []
            if header_changes is not UNSET:
                purpose = _headers_purpose(tenant, endpoint_id)
                current = json.loads(_open(self.keyring, row.headers, purpose)) if row.headers else {}
                new, marked = merged(current, _stored_marks(row.secret_headers, current), header_changes)
                row.headers = self._sealed_headers(tenant, endpoint_id, new)
                row.secret_headers = _marks(marked, new)
            now = datetime.now(UTC)
            if enabled is not UNSET and enabled != row.enabled:
                row.enabled = enabled
                row.disabled_reason = None if enabled else disabled_reason
                row.disabled_by = None if enabled else disabled_by
                row.disabled_at = None if enabled else now
                if enabled:
                    # A fresh start: the failures that disabled it must not disable it again at once.
                    session.execute(
                        update(EndpointHealthRow)
                        .where(EndpointHealthRow.endpoint_id == endpoint_id)
                        .values(consecutive_failures=0, failing_since=None, failing_notified=False)
                    )
                else:  # told as an event, owed with the change (store/health.py)
                    session.flush()  # the event says what this change makes of the endpoint
                    owe(session.connection(), tenant, endpoint_id, Transition.DISABLED, now)
            row.updated_at = now
        return _to_endpoint(row, self.keyring)

    def rotate_secret(
        self, tenant: str, endpoint_id: str, *, secret: str, grace: timedelta
    ) -> Endpoint | None:
        """Make `secret` the endpoint's secret; the one it replaces still signs for `grace`."""
        with self._session.begin() as session:
            row = session.get(EndpointRow, endpoint_id)
            if row is None or row.tenant != tenant:
                return None
            now = datetime.now(UTC)
            current = _open(self.keyring, row.secret, _secret_purpose(tenant, endpoint_id))
            row.previous_secret = (
                seal(self.keyring, current, purpose=_previous_secret_purpose(tenant, endpoint_id))
                if grace > timedelta(0)
                else None
            )
            row.previous_secret_expires_at = now + grace if grace > timedelta(0) else None
            row.secret = seal(self.keyring, secret, purpose=_secret_purpose(tenant, endpoint_id))
            row.updated_at = now
        return _to_endpoint(row, self.keyring)

    def delete(self, tenant: str, endpoint_id: str) -> bool:
        with self._session.begin() as session:
            row = session.get(EndpointRow, endpoint_id)
            if row is None or row.tenant != tenant:
                return False
            session.delete(row)
            return True

    def subscribed(self, tenant: str, webhook_type: str) -> list[str]:
        """Ids of the tenant's enabled endpoints that receive `webhook_type`, oldest first."""
        return [s.endpoint_id for s in self.subscribers(tenant, webhook_type)]

    def subscribers(self, tenant: str, webhook_type: str) -> list[Subscriber]:
        """The tenant's enabled endpoints that receive `webhook_type`, oldest first, with their schedule."""
        with self._session() as session:
            rows = session.execute(
                select(
                    EndpointRow.id,
                    EndpointRow.event_types,
                    EndpointRow.retry_schedule,
                    EndpointRow.ordered,
                    EndpointRow.ordered_on_failure,
                )
                .where(EndpointRow.tenant == tenant, EndpointRow.enabled.is_(True))
                .order_by(EndpointRow.created_at)
            )
            return [
                Subscriber(
                    endpoint_id,
                    list(schedule) if schedule is not None else None,
                    bool(ordered),
                    OrderedOnFailure(on_failure or OrderedOnFailure.BLOCK),
                )
                for endpoint_id, types, schedule, ordered, on_failure in rows
                if receives(types, webhook_type)
            ]


class StoreRefused(SystemExit):
    """The store is not one this process may run on (its schema, store/revision.py; or keys): the message
    says what to do."""


class KeysDoNotOpen(StoreRefused):
    """The configured encryption keys cannot open what the store holds: the message names each key id."""


def require_keys(store: EndpointStore) -> None:
    """`KeysDoNotOpen` unless the configured keys open every key id the store's secrets were sealed
    with: a process that started without them would answer 500 on every read of an endpoint."""
    problems = store.unopened_keys()
    if problems:
        raise KeysDoNotOpen(
            "the encryption keys cannot open the endpoint store: "
            + "; ".join(problems)
            + ". Start with the WEBHOOKS_ENCRYPTION_KEYS (or WEBHOOKS_ENCRYPTION_KEYS_FILE) the store was "
            "written with; a new key goes first in the list, the old ones after it (docs/data-protection.md)"
        )


class TooManyEndpoints(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the tenant has {limit} endpoints, the most it may have")
        self.limit = limit


class KeyConflictError(Exception):
    """Another process added a key of the same generation first (a concurrent first key or rotation)."""


class SigningKeyStore:
    """Each tenant's jwt signing keys, in the endpoint store's database."""

    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._keyring = keyring

    def for_tenant(self, tenant: str) -> list[StoredKey]:
        """The tenant's keys, oldest first, retired ones included until a rotation deletes them."""
        with self._session() as session:
            rows = session.scalars(
                select(SigningKeyRow).where(SigningKeyRow.tenant == tenant).order_by(SigningKeyRow.generation)
            )
            return [_to_key(r, self._keyring) for r in rows]

    def tenants(self) -> list[str]:
        with self._session() as session:
            return list(
                session.scalars(select(SigningKeyRow.tenant).distinct().order_by(SigningKeyRow.tenant))
            )

    def add(self, key: StoredKey, *, retire_others_at: datetime | None = None) -> None:
        """Store `key`; with `retire_others_at`, every other key of its tenant leaves the JWKS then at the
        latest, and keys already retired are deleted (their private halves serve nothing any more).
        All in one transaction. Raises `KeyConflictError` if the generation was taken meanwhile.
        """
        row = SigningKeyRow(
            kid=key.kid,
            tenant=key.tenant,
            generation=key.generation,
            private_key=seal(
                self._keyring, key.private_pem.decode(), purpose=_key_purpose(key.tenant, key.kid)
            ),
            created_at=key.created_at,
            signs_from=key.signs_from,
            retires_at=key.retires_at,
        )
        try:
            with self._session.begin() as session:
                if retire_others_at is not None:
                    mine = SigningKeyRow.tenant == key.tenant
                    session.execute(
                        delete(SigningKeyRow).where(mine, SigningKeyRow.retires_at <= key.created_at)
                    )
                    session.execute(
                        update(SigningKeyRow)
                        .where(
                            mine,
                            or_(
                                SigningKeyRow.retires_at.is_(None),
                                SigningKeyRow.retires_at > retire_others_at,
                            ),
                        )
                        .values(retires_at=retire_others_at)
                    )
                session.add(row)
        except IntegrityError:
            raise KeyConflictError(
                f"tenant {key.tenant} got a key of generation {key.generation} from another process"
            ) from None


class SessionRevocations:
    """The portal sessions each tenant revoked, each kept until it would have expired anyway."""

    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def revoke(self, tenant: str, session_id: str, *, until: datetime) -> None:
        """Revoke `session_id` of `tenant` (again is the same); forget revocations past their `until`."""
        try:
            with self._session.begin() as session:
                session.execute(
                    delete(SessionRevocationRow).where(SessionRevocationRow.until < datetime.now(UTC))
                )
                if session.get(SessionRevocationRow, (tenant, session_id)) is None:
                    session.add(SessionRevocationRow(tenant=tenant, session_id=session_id, until=until))
        except IntegrityError:
            pass  # revoked by another request at the same moment: revoked all the same

    def is_revoked(self, tenant: str, session_id: str) -> bool:
        with self._session() as session:
            return session.get(SessionRevocationRow, (tenant, session_id)) is not None


def _sqlite_soft_pragmas(dbapi_connection: Any, record: Any) -> None:
    sqlite_pragmas(dbapi_connection, record)
    # WAL with NORMAL: a commit survives the process, and may not survive the machine.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _postgres_async_commit(connection: Any) -> None:
    # This transaction's commit is not waited onto disk (PostgreSQL's synchronous_commit, per transaction).
    connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The API and the worker share the file: WAL lets readers run beside a writer, and the busy
    # timeout makes a writer wait for the other process instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
