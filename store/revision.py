"""Which schema revision a store is at, and whether this version runs on it: what the API, every worker
and the operator commands check as they start (`require_current`), without Alembic.

Importing Alembic and loading every migration costs each of those processes about an eighth of a second
as it starts, for a question one SELECT answers; store/migrate.py, which changes the schema, uses Alembic.
What this module reads is Alembic's own record (its `alembic_version` table) and its files' names:
migrations are numbered in order, 0001, 0002, …, each file named after its revision (`cli.migrate
revision` names them so), and tests/test_migrations.py checks that Alembic agrees on every one and on
the head.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from store.database import StoreRefused

VERSIONS = Path(__file__).with_name("migrations") / "versions"
VERSION_TABLE = "alembic_version"  # Alembic's default, which store/migrations/env.py keeps


class SchemaNotCurrent(StoreRefused):
    """The store's schema is not the one this version runs on: the message says what to do."""


def known() -> list[str]:
    """Every revision this version has, oldest first."""
    return sorted(path.name.partition("_")[0] for path in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def head() -> str:
    """This version's schema revision: its newest migration's."""
    return known()[-1]


def current(conn: Connection) -> str | None:
    """The revision the store is at (None: a store made before migrations, or none at all)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()  # noqa: S608
    if len(rows) > 1:  # Alembic's branches, which this project's linear numbering never makes
        where = conn.engine.url.render_as_string(hide_password=True)
        raise SchemaNotCurrent(
            f"the endpoint store at {where} has more than one schema revision ({', '.join(sorted(rows))}): "
            f"it was changed by hand or by another tool: leave one row in {VERSION_TABLE}, the revision the "
            "schema is really at (`python -m cli.migrate history` lists them)"
        )
    return rows[0] if rows else None


def require_current(engine: Engine) -> None:
    """Raise `SchemaNotCurrent` unless the store is at this version's revision (the store's own error if
    it cannot be read)."""
    where = engine.url.render_as_string(hide_password=True)
    want = head()
    with engine.connect() as conn:
        have = current(conn)
        if have == want:
            return
        empty = have is None and not inspect(conn).get_table_names()
    run = "run `python -m cli.migrate` (make run does it; in compose, the `migrate` service)"
    if empty:
        message = f"the endpoint store at {where} has no schema yet: {run}"
    elif have is None:
        message = (
            f"the endpoint store at {where} was made by a version before migrations: {run} to upgrade it"
        )
    elif have in known():
        message = (
            f"the endpoint store at {where} is at schema revision {have}, this version needs {want}: {run}"
        )
    else:
        message = (
            f"the endpoint store at {where} is at schema revision {have}, which this version does not know "
            f"(it needs {want}): a newer version upgraded it. Run that version, or downgrade the store to "
            f"{want} with the newer version's `python -m cli.migrate downgrade {want}`"
        )
    raise SchemaNotCurrent(message)
