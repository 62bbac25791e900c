"""Each tenant's jwt signing keys: made with its first jwt endpoint (or its first signature, whichever
comes first), published in the tenant's own JWKS, rotated by an operator with `python -m cli.keys`. A
fetch of the JWKS never makes one: it would tell anyone which tenant names exist.

A key's life, in the times `SigningKeyStore` keeps:

    created_at ──── published (in the JWKS) ──── signs_from ──── signing ──── (next key signs) ──── retires_at
                    beside the key that signs                                  still published     gone

`rotate` publishes a new key at once and lets it sign only `publish_for` later (1 h by default), so that
a receiver whose cached JWKS predates the rotation has fetched it again, new key included, before the
first token signed with that key arrives: it needs no refetch on an unknown `kid` (which PyJWT's
`PyJWKClient`, for one, allows only 30 s after its last fetch). The older keys stay published
`retire_after` (1 h) past the switch, for tokens already on their way, then leave the JWKS. A leaked key
is rotated with both set to 0: the new key signs, and the old one leaves the JWKS, at once.

Workers read a tenant's keys again at most `CACHE_SECONDS` after their last read: a rotation's switch
falls on its time exactly when `publish_for` is longer than that, and otherwise within that many seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.settings import Settings
from core.signing import JwtSigner, SigningKey
from store.database import EndpointStore, KeyConflictError, SigningKeyStore, StoredKey

PUBLISH_FOR = timedelta(hours=1)
RETIRE_AFTER = timedelta(hours=1)
CACHE_SECONDS = 10.0


def jwks_path(tenant: str) -> str:
    """Where a tenant's receivers fetch its public keys (no API key needed)."""
    return f"/v1/webhooks/jwks/{tenant}.json"


def utcnow() -> datetime:
    return datetime.now(UTC)


def key_state(key: StoredKey, keys: Sequence[StoredKey], now: datetime) -> str:
    """`next` (published, not signing yet), `signing`, `published` (no longer signing) or `retired`."""
    if key.retires_at is not None and key.retires_at <= now:
        return "retired"
    if key.signs_from > now:
        return "next"
    signing = _signing(keys, now)
    return "signing" if signing is not None and signing.kid == key.kid else "published"


def _live(keys: Sequence[StoredKey], now: datetime) -> list[StoredKey]:
    return [k for k in keys if k.retires_at is None or k.retires_at > now]


def _signing(keys: Sequence[StoredKey], now: datetime) -> StoredKey | None:
    ready = [k for k in _live(keys, now) if k.signs_from <= now]
    return max(ready, key=lambda k: (k.signs_from, k.generation), default=None)


@dataclass(frozen=True, slots=True)
class _Cached:
    read_at: float
    keys: list[StoredKey]


class TenantKeys:
    """The `KeySource` of the service: each tenant's keys from the store, one set per tenant.

    Thread-safe: the API calls it from its thread pool. Parsed keys are kept by `kid` (a PEM takes 27 ms
    to load), and a tenant's rows for `CACHE_SECONDS`: the worker signs on its event loop, where a
    database read on every jwt attempt would block every other attempt.
    """

    def __init__(
        self,
        store: SigningKeyStore,
        *,
        clock: Callable[[], datetime] = utcnow,
        cache_seconds: float = CACHE_SECONDS,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._timer = timer  # ages the row cache; a separate clock, so the wall clock may jump
        self._cache_seconds = cache_seconds
        self._rows: dict[str, _Cached] = {}
        self._parsed: dict[str, SigningKey] = {}
        self._lock = threading.Lock()

    def signing_key(self, tenant: str) -> SigningKey:
        now = self._clock()
        chosen = _signing(self._read(tenant), now)
        if chosen is None:  # none yet, or the cached rows are out of date
            keys = self._read(tenant, fresh=True)
            chosen = _signing(keys, now) or self._first_key(tenant, keys, now)
        return self._parse(chosen)

    def published_keys(self, tenant: str, *, create: bool = True) -> list[SigningKey]:
        return [self._parse(k) for k in self.stored_keys(tenant, create=create)]

    def stored_keys(self, tenant: str, *, create: bool) -> list[StoredKey]:
        """The tenant's published keys, read now; with `create`, a tenant without one gets its first."""
        now = self._clock()
        keys = self._read(tenant, fresh=True)
        live = _live(keys, now)
        if not live and create:
            live = [self._first_key(tenant, keys, now)]
        return live

    def rotate(
        self, tenant: str, *, publish_for: timedelta = PUBLISH_FOR, retire_after: timedelta = RETIRE_AFTER
    ) -> StoredKey:
        """Publish a new key now; it signs from `now + publish_for`, when the older keys get `retire_after`
        more before they leave the JWKS. Raises `KeyConflictError` if another rotation ran at once."""
        if publish_for < timedelta(0) or retire_after < timedelta(0):
            raise ValueError("publish_for and retire_after cannot be negative")
        now = self._clock()
        keys = self._read(tenant, fresh=True)
        # A tenant with nothing published has no receiver to warn: its new key signs at once.
        signs_from = now + publish_for if _live(keys, now) else now
        new = _new_key(tenant, keys, now, signs_from=signs_from)
        self._store.add(new, retire_others_at=new.signs_from + retire_after)
        self._read(tenant, fresh=True)
        return new

    def _first_key(self, tenant: str, keys: Sequence[StoredKey], now: datetime) -> StoredKey:
        new = _new_key(tenant, keys, now, signs_from=now)
        try:
            self._store.add(new)
        except KeyConflictError:
            # The API and a worker both made one: keep the one that was stored first.
            stored = _signing(self._read(tenant, fresh=True), now)
            if stored is None:
                raise
            return stored
        self._read(tenant, fresh=True)
        return new

    def _read(self, tenant: str, *, fresh: bool = False) -> list[StoredKey]:
        cached = self._rows.get(tenant)
        if not fresh and cached is not None and self._timer() - cached.read_at < self._cache_seconds:
            return cached.keys
        keys = self._store.for_tenant(tenant)
        if keys:
            self._rows[tenant] = _Cached(self._timer(), keys)
        else:
            # Not kept: the JWKS route reads whatever name anyone asks for, and an empty read saves
            # nothing (`signing_key` reads again when it finds no key).
            self._rows.pop(tenant, None)
        return keys

    def _parse(self, stored: StoredKey) -> SigningKey:
        with self._lock:
            key = self._parsed.get(stored.kid)
            if key is None:
                key = self._parsed[stored.kid] = SigningKey.from_pem(stored.private_pem)
            return key


def _new_key(tenant: str, keys: Sequence[StoredKey], now: datetime, *, signs_from: datetime) -> StoredKey:
    key = SigningKey.generate()  # about 30 ms, once per tenant and rotation
    return StoredKey(
        tenant=tenant,
        kid=key.kid,
        generation=max((k.generation for k in keys), default=0) + 1,
        private_pem=key.to_pem(),
        created_at=now,
        signs_from=signs_from,
        retires_at=None,
    )


def jwt_signer(settings: Settings, store: EndpointStore) -> JwtSigner:
    """The signer of the jwt method: each tenant's keys, kept in the endpoint store's database."""
    return JwtSigner(TenantKeys(store.signing_keys), issuer=settings.jwt_issuer)
