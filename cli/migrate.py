"""`python -m cli.migrate`: the endpoint store's schema migrations, run by an operator, by `make run`'s
launcher and by compose's one-shot `migrate` service (store/migrate.py says what each command does)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from alembic import command

from core.settings import Settings
from store.database import EndpointStore
from store.migrate import config, config_on, downgrade, migration, upgrade
from store.revision import current, head


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cli.migrate", description="The endpoint store's schema migrations."
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("upgrade", help="upgrade the store to this version's schema (the default)")
    commands.add_parser("current", help="the revision the store is at, and this version's")
    commands.add_parser("history", help="every revision, newest first")
    commands.add_parser("sql", help="the SQL an upgrade of an empty database runs, not run")
    down = commands.add_parser("downgrade", help="back to a revision, before running an older version")
    down.add_argument("revision", help="the revision to go back to (`base`: before migrations, rows kept)")
    draft = commands.add_parser("revision", help="draft the next migration from store/tables.py")
    draft.add_argument("-m", "--message", required=True, help="what the migration changes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    if args.command == "history":
        command.history(config())
        return 0
    if args.command == "sql":
        command.upgrade(config(settings.sqlalchemy_url), "head", sql=True)
        return 0
    store = EndpointStore(settings.sqlalchemy_url, settings.keyring)
    try:
        if args.command == "current":
            with store.engine.connect() as conn:
                print(f"store: {current(conn) or 'none'}; this version: {head()}")  # noqa: T201
        elif args.command == "downgrade":
            downgrade(store, args.revision)
        elif args.command == "revision":
            with migration(store.engine) as conn:
                # Numbered in order: 0001, 0002, … (the file is named after it and the message).
                command.revision(
                    config_on(conn), args.message, autogenerate=True, rev_id=f"{int(head()) + 1:04d}"
                )
        else:
            upgrade(store)
            print(f"endpoint store at schema revision {head()}")  # noqa: T201
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
