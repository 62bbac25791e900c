"""The endpoint store's schema, by migrations (Alembic, store/migrations/): made and upgraded by one
command run before the API and the workers start, never by them.

    python -m cli.migrate              upgrade the store to this version's schema (make run does it,
                                        and compose's `migrate` service)
    python -m cli.migrate current      the revision the store is at, and this version's
    python -m cli.migrate history      every revision, newest first
    python -m cli.migrate sql          the SQL an upgrade of an empty database runs, without running it
    python -m cli.migrate downgrade R  back to revision R (before running an older version; `base`:
                                        to before migrations, every row an older version reads kept;
                                        only `webhooks listen`'s moment-long tables go)
    python -m cli.migrate revision -m "what changes"
                                        a developer's draft of the next migration: what store/tables.py
                                        declares beyond the store's schema (read it, then edit it)

The API, every worker and the operator commands check the revision as they start and refuse to run on
a schema they do not know, with what to do (store/revision.py, without Alembic): two processes never
race to make it.
One upgrade runs at a time: it holds an advisory lock on PostgreSQL and a file lock beside a SQLite file.
Each runs in one transaction, DDL included, on SQLite too: a migration that fails leaves nothing done.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

from store.database import EndpointStore, sqlite_pragmas

SCRIPTS = Path(__file__).with_name("migrations")
# Alembic says which dialect it runs as it looks at a store: noise in every migration's output.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
# pg_advisory_xact_lock's key: any constant of ours, the same in every process ("whmi" in ASCII).
POSTGRES_LOCK = 0x77686D69


def config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def config_on(conn: Connection) -> Config:
    """The configuration env.py runs the migrations with: on `conn`, in its transaction."""
    cfg = config()
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(store: EndpointStore, target: str = "head") -> None:
    """Bring the store to `target` (this version's schema), then seal any secret a version before
    encryption at rest left in plain text (on SQLite still under the file lock; on PostgreSQL two
    upgrades may seal at once, which writes the same sealed values twice)."""
    with _one_at_a_time(store.engine):
        with migration(store.engine) as conn:
            command.upgrade(config_on(conn), target)
        store.seal_plaintext()


def downgrade(store: EndpointStore, target: str) -> None:
    with _one_at_a_time(store.engine), migration(store.engine) as conn:
        command.downgrade(config_on(conn), target)


@contextmanager
def migration(engine: Engine) -> Iterator[Connection]:
    """One transaction that every statement of a migration runs in, DDL included: all of it, or none.

    On PostgreSQL it holds the migration lock until it ends. On SQLite the driver would commit a CREATE,
    DROP or ALTER on its own: the transaction is begun by hand instead (BEGIN IMMEDIATE, which also takes
    the write lock at once), on an engine of its own, used for this and closed.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK})
            yield conn
        return
    own = create_engine(engine.url, poolclass=NullPool)
    event.listen(own, "connect", _sqlite_by_hand)
    event.listen(own, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    try:
        with own.begin() as conn:
            yield conn
    finally:
        own.dispose()


def _sqlite_by_hand(dbapi_connection: Any, record: Any) -> None:
    sqlite_pragmas(dbapi_connection, record)
    dbapi_connection.isolation_level = None  # the driver begins nothing: `migration` does


@contextmanager
def _one_at_a_time(engine: Engine) -> Iterator[None]:
    """A lock beside a SQLite file, held across the migration and what follows it (PostgreSQL's is the
    migration transaction's own)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with Path(f"{database}.migrate-lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
