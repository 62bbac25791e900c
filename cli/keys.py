"""`python -m cli.keys`: an operator's view and rotation of each tenant's jwt signing keys (store/keys.py
says how a key lives)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from core.settings import Settings
from domain import durations
from store.database import EndpointStore, KeyConflictError, SigningKeyStore, require_keys
from store.keys import PUBLISH_FOR, RETIRE_AFTER, TenantKeys, key_state, utcnow
from store.revision import require_current


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
    now = utcnow()
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
        prog="python -m cli.keys",
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
        require_keys(store)
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
