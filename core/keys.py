"""Each tenant's jwt signing keys: made on first use, published in the tenant's own JWKS, rotated by an
operator with `python -m core.keys`.

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

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core import durations
from core.migrate import require_current
from core.settings import Settings
from core.signing import JwtSigner, SigningKey
from core.store import EndpointStore, KeyConflictError, SigningKeyStore, StoredKey

PUBLISH_FOR = timedelta(hours=1)
RETIRE_AFTER = timedelta(hours=1)
CACHE_SECONDS = 10.0


def jwks_path(tenant: str) -> str:
    """Where a tenant's receivers fetch its public keys (no API key needed)."""
    return f"/v1/webhooks/jwks/{tenant}.json"


def _utcnow() -> datetime:
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
        clock: Callable[[], datetime] = _utcnow,
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
        self._rows[tenant] = _Cached(self._timer(), keys)
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


# The operator's command ---------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`"90"`, `"90s"`, `"15m"`, `"1h"`, `"2d"` → a timedelta, for argparse."""
    try:
        return durations.parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _when(value: datetime | None) -> str:
    # Milliseconds: a script that waits for a switch must not read it as up to a second early.
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else "-"


def _list(keys: TenantKeys, store: SigningKeyStore, args: argparse.Namespace) -> int:
    now = _utcnow()
    rows = []
    for tenant in args.tenants or store.tenants():
        stored = store.for_tenant(tenant)
        rows += [
            {
                "tenant": tenant,
                "kid": k.kid,
                "state": key_state(k, stored, now),
                "created_at": _when(k.created_at),
                "signs_from": _when(k.signs_from),
                "retires_at": _when(k.retires_at),
            }
            for k in stored
        ]
    if args.json:
        print(json.dumps(rows, indent=2))  # noqa: T201
    elif not rows:
        print("no signing keys yet: a tenant's first is made when it is first needed")  # noqa: T201
    else:
        header = ["TENANT", "KID", "STATE", "PUBLISHED", "SIGNS FROM", "RETIRES"]
        table = [header] + [
            [r["tenant"], r["kid"], r["state"], r["created_at"], r["signs_from"], r["retires_at"]]
            for r in rows
        ]
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        for line in table:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())  # noqa: T201
    return 0


def _rotate(keys: TenantKeys, store: SigningKeyStore, args: argparse.Namespace) -> int:
    known = store.tenants()
    tenants = known if args.all else args.tenants
    if not tenants:
        print("rotate: name a tenant with --tenant, or give --all", file=sys.stderr)  # noqa: T201
        return 0 if args.all else 2
    unknown = sorted(set(tenants) - set(known))
    if unknown:
        # A typo must not mint keys for a tenant that does not exist; a real tenant gets its first key
        # when it is first needed, and there is nothing to rotate before that.
        print(  # noqa: T201
            f"rotate: no signing keys for {', '.join(unknown)}: check the name (`list` shows every tenant "
            "with keys); a tenant's first key is made when it is first needed",
            file=sys.stderr,
        )
        return 1
    results = []
    for tenant in tenants:
        new = keys.rotate(tenant, publish_for=args.publish_for, retire_after=args.retire_after)
        retires = new.signs_from + args.retire_after
        results.append(
            {
                "tenant": tenant,
                "kid": new.kid,
                "signs_from": _when(new.signs_from),
                "retires_others_at": _when(retires),
            }
        )
    for r in results:
        if args.json:
            continue
        print(  # noqa: T201
            f"{r['tenant']}: new key {r['kid']} is published now and signs from {r['signs_from']}; "
            f"the older keys leave the JWKS at {r['retires_others_at']}"
        )
    if args.json:
        print(json.dumps(results, indent=2))  # noqa: T201
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.keys",
        description="The jwt method's signing keys, one set per tenant, in the endpoint store "
        "(WEBHOOKS_DATABASE_URL, or the SQLite file in WEBHOOKS_DATA_DIR).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="every tenant's keys and their state")
    rotate = commands.add_parser(
        "rotate",
        help="publish a new key, sign with it later, retire the old ones after that",
        description="Publish a new key now, sign with it from --publish-for later, and drop the older "
        "keys from the JWKS --retire-after past that. A leaked key: --publish-for 0 --retire-after 0.",
    )
    for sub in (listing, rotate):
        sub.add_argument("--tenant", dest="tenants", action="append", metavar="TENANT", help="repeatable")
        sub.add_argument("--json", action="store_true", help="print JSON")
    rotate.add_argument("--all", action="store_true", help="every tenant that has keys")
    rotate.add_argument(
        "--publish-for",
        type=parse_duration,
        default=PUBLISH_FOR,
        metavar="DURATION",
        help="how long the new key is published before it signs; longer than receivers cache the JWKS (1h)",
    )
    rotate.add_argument(
        "--retire-after",
        type=parse_duration,
        default=RETIRE_AFTER,
        metavar="DURATION",
        help="how long the older keys stay published once the new one signs (1h)",
    )
    listing.set_defaults(handler=_list)
    rotate.set_defaults(handler=_rotate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "rotate" and args.all and args.tenants:
        print("rotate: give --tenant or --all, not both", file=sys.stderr)  # noqa: T201
        return 2
    settings = Settings()
    store = EndpointStore(settings.sqlalchemy_url, settings.keyring)
    try:
        require_current(store.engine)
        keys_store = store.signing_keys
        handler: Callable[[TenantKeys, SigningKeyStore, argparse.Namespace], int] = args.handler
        return handler(TenantKeys(keys_store), keys_store, args)
    except KeyConflictError as err:
        print(f"rotate: {err}; nothing of this tenant was changed, run it again", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
