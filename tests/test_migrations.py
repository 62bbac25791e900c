"""store/migrate.py: the store's schema made and upgraded by migrations, and refused when it is not current.

The stores made before migrations are the schemas two commits of main made (tests/stores/), filled with
rows through today's code, then upgraded. PostgreSQL's side is in tests/test_core_store.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, Table, insert, inspect, select, text

from cli.migrate import main as migrate_main
from core.crypto import is_sealed
from domain.models import SignatureMethod
from launcher import free_port
from service.events import Events
from store import migrate, revision
from store.database import Endpoint, EndpointStore
from store.keys import TenantKeys
from store.tables import Base, EndpointRow
from tests.conftest import (
    KEYS,
    OUTPUT,
    TEST_ENCRYPTION_KEYS,
    TEST_KEYRING,
    add_endpoint,
    start_stack,
    wait_for,
)
from worker import send_owed_notices

STORES = Path(__file__).with_name("stores")


def schema_drift(engine: Engine) -> list[object]:
    """What differs between the store and store/tables.py (tables, columns, types, indexes): nothing, when
    the migrations and the tables agree."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def stored_revision(engine: Engine) -> str | None:
    """The revision the store is at, as Alembic reads it (store/revision.py reads it without Alembic)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "webhooks.db"


@pytest.fixture
def store(path: Path) -> Iterator[EndpointStore]:
    store = EndpointStore(f"sqlite:///{path}", TEST_KEYRING)
    yield store
    store.close()


def written_by_that_version(store: EndpointStore, scratch: Path, **fields: Any) -> Endpoint:
    """An endpoint as the version that made the store wrote it: today's row (sealed as today seals it),
    without the columns that version's table lacks (those added by later migrations)."""
    other = EndpointStore(f"sqlite:///{scratch}", store.keyring)
    try:
        migrate.upgrade(other)
        endpoint = other.create("tenant_a", **fields)
        with other.engine.connect() as conn:
            row = dict(conn.execute(select(EndpointRow.__table__)).mappings().one())
    finally:
        other.close()
    table = Table("endpoints", MetaData(), autoload_with=store.engine)  # the columns it has, no defaults
    with store.engine.begin() as conn:
        conn.execute(insert(table).values({k: v for k, v in row.items() if k in table.c}))
    return endpoint


def made_by(path: Path, dump: str) -> None:
    """A store file with the schema an older main made (no alembic_version: it had no migrations)."""
    with sqlite3.connect(path) as conn:
        conn.executescript((STORES / dump).read_text())


def test_the_migrations_make_exactly_the_schema_the_code_declares(store: EndpointStore) -> None:
    migrate.upgrade(store)
    assert stored_revision(store.engine) == revision.head()
    assert schema_drift(store.engine) == []
    revision.require_current(store.engine)  # what the API and the worker check as they start


def test_the_sql_of_an_upgrade_makes_exactly_the_schema_the_code_declares(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m cli.migrate sql`, for a DBA to read and run: every revision's SQL for an empty database,
    which run there makes today's schema at this version's revision (a revision that looked at the store
    offline failed it: there is no store to look at)."""
    monkeypatch.setenv("WEBHOOKS_DATA_DIR", str(path.parent))
    monkeypatch.setenv("WEBHOOKS_ENCRYPTION_KEYS", TEST_ENCRYPTION_KEYS)
    assert migrate_main(["sql"]) == 0
    script = capsys.readouterr().out
    assert not path.exists(), "the SQL is printed, not run"
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
    store = EndpointStore(f"sqlite:///{path}", TEST_KEYRING)
    try:
        assert schema_drift(store.engine) == []
        assert stored_revision(store.engine) == revision.head()
    finally:
        store.close()


def test_upgrading_twice_changes_nothing_and_a_downgrade_keeps_every_row(store: EndpointStore) -> None:
    migrate.upgrade(store)
    migrate.upgrade(store)
    assert schema_drift(store.engine) == []
    kept = add_endpoint(store, "tenant_a", url="https://example.com/kept")
    # Back to before migrations, as for a version that made its own tables: they stay, with their rows.
    migrate.downgrade(store, "base")
    assert stored_revision(store.engine) is None
    assert store.get("tenant_a", kept.id) == kept
    migrate.upgrade(store)
    assert schema_drift(store.engine) == []
    assert store.get("tenant_a", kept.id) == kept


def test_a_migration_that_fails_leaves_nothing_half_done(store: EndpointStore) -> None:
    """On SQLite too, where the driver would commit a CREATE TABLE by itself."""
    migrate.upgrade(store)
    with pytest.raises(RuntimeError, match="half way"), migrate.migration(store.engine) as conn:
        conn.exec_driver_sql("CREATE TABLE half_done (id INTEGER)")
        conn.exec_driver_sql("ALTER TABLE endpoints ADD COLUMN half_done TEXT")
        raise RuntimeError("a migration failed half way")
    assert schema_drift(store.engine) == []


def test_a_store_of_a_development_version_is_refused_saying_why(store: EndpointStore, path: Path) -> None:
    """A table that lacks a column no release left out (it cannot be added to the rows there)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE operational_notices (id VARCHAR(160) NOT NULL PRIMARY KEY, tenant VARCHAR(64));"
        )
    with pytest.raises(
        RuntimeError, match="operational_notices table lacks endpoint_id, a column every row must fill"
    ):
        migrate.upgrade(store)
    assert stored_revision(store.engine) is None  # nothing of the upgrade stayed
    assert "endpoints" not in inspect(store.engine).get_table_names()


@pytest.mark.parametrize("dump", ["main-81c04a3.sql", "main-42564f6.sql"])
def test_a_store_made_before_migrations_is_upgraded_without_loss(
    store: EndpointStore, path: Path, dump: str
) -> None:
    made_by(path, dump)
    with pytest.raises(revision.SchemaNotCurrent, match="made by a version before migrations"):
        revision.require_current(store.engine)
    kept = written_by_that_version(
        store,
        path.with_name("scratch.db"),
        url="https://example.com/hook?token=t0k",
        signature_method=SignatureMethod.HMAC,
        event_types=["invoice.created"],
        description="kept",
        enabled=True,
    )
    signing = TenantKeys(store.signing_keys).signing_key("tenant_a")  # sealed, as the API makes one

    migrate.upgrade(store)

    assert stored_revision(store.engine) == revision.head()
    assert schema_drift(store.engine) == []
    assert store.get("tenant_a", kept.id) == kept
    assert [k.kid for k in store.signing_keys.for_tenant("tenant_a")] == [signing.kid]
    tables = set(inspect(store.engine).get_table_names())
    assert "endpoint_rate_buckets" not in tables  # replaced by endpoint_flow, whose state is a moment's


def test_an_older_store_gains_what_it_lacks_and_its_plain_secrets_are_sealed(
    store: EndpointStore, path: Path
) -> None:
    """The endpoints table as the first release made it (17ea2a3): without the columns added since, its
    url and secret declared narrower than sealing writes (SQLite keeps the lengths, and cannot alter a
    column), holding a secret written before encryption at rest."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE endpoints (
                id VARCHAR(40) NOT NULL PRIMARY KEY, tenant VARCHAR(64) NOT NULL, url VARCHAR(2048) NOT NULL,
                description VARCHAR(1024) NOT NULL, signature_method VARCHAR(8) NOT NULL,
                secret VARCHAR(128) NOT NULL, event_types JSON, enabled BOOLEAN NOT NULL,
                created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL
            );
            CREATE INDEX ix_endpoints_tenant ON endpoints (tenant);
            """
        )
        now = datetime(2026, 1, 2, tzinfo=UTC).isoformat(sep=" ")
        conn.execute(
            "INSERT INTO endpoints VALUES ('ep_old', 'tenant_a', 'https://example.com/old', 'first', "
            "'hmac', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', NULL, 1, ?, ?)",
            (now, now),
        )

    migrate.upgrade(store)

    assert schema_drift(store.engine) == []
    old = store.get("tenant_a", "ep_old")
    assert old is not None
    assert (old.url, old.secret, old.description) == (
        "https://example.com/old",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "first",
    )
    with store.engine.connect() as conn:
        url, secret = conn.execute(text("SELECT url, secret FROM endpoints")).one()
    assert is_sealed(url) and is_sealed(secret)


def upgraded_together(stores: list[EndpointStore]) -> list[BaseException]:
    """Every store upgraded at the same moment, each from a thread of its own: what each raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def upgrade(store: EndpointStore) -> None:
        start.wait()
        try:
            migrate.upgrade(store)
        except BaseException as err:  # noqa: B036 - returned
            errors.append(err)

    threads = [threading.Thread(target=upgrade, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_the_revision_read_without_alembic_is_alembics_at_every_step(store: EndpointStore) -> None:
    """store/revision.py reads the files' names and Alembic's table: Alembic agrees on every revision, on
    the head, and on where the store is after each upgrade and downgrade."""
    scripts = ScriptDirectory.from_config(migrate.config())
    assert scripts.get_current_head() == revision.head()
    assert [script.revision for script in reversed(list(scripts.walk_revisions()))] == revision.known()
    for script in scripts.walk_revisions():
        assert script.path is not None and Path(script.path).name.startswith(f"{script.revision}_")

    def both() -> tuple[str | None, str | None]:
        with store.engine.connect() as conn:
            return revision.current(conn), stored_revision(store.engine)

    assert both() == (None, None)
    for rev in revision.known():  # one migration at a time (`migrate.upgrade` also seals, at the head)
        with migrate.migration(store.engine) as conn:
            command.upgrade(migrate.config_on(conn), rev)
        assert both() == (rev, rev)
    *older, newest = revision.known()
    migrate.downgrade(store, older[-1])
    assert both() == (older[-1], older[-1])
    with pytest.raises(
        revision.SchemaNotCurrent, match=f"at schema revision {older[-1]}, this version needs {newest}"
    ):
        revision.require_current(store.engine)
    migrate.downgrade(store, "base")
    assert both() == (None, None)


def test_the_api_and_the_worker_start_without_alembic() -> None:
    """What they check as they start costs no import of Alembic or of a migration."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, api.main, worker, cli.keys; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    ).stdout
    assert "alembic" not in loaded and "store.migrat" not in loaded


def test_two_upgrades_at_once_make_one_schema(path: Path) -> None:
    stores = [EndpointStore(f"sqlite:///{path}", TEST_KEYRING) for _ in range(3)]
    try:
        assert upgraded_together(stores) == []
        assert schema_drift(stores[0].engine) == []
    finally:
        for store in stores:
            store.close()


def test_a_schema_this_version_does_not_know_is_refused_with_what_to_do(store: EndpointStore) -> None:
    with pytest.raises(revision.SchemaNotCurrent, match=r"no schema yet: run `python -m cli.migrate`"):
        revision.require_current(store.engine)
    migrate.upgrade(store)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(revision.SchemaNotCurrent, match="revision 9999, which this version does not know"):
        revision.require_current(store.engine)


async def test_a_worker_started_while_the_store_was_down_stops_once_it_finds_an_unknown_schema(
    store: EndpointStore,
) -> None:
    """The sweep checks what the start could not; the store here was never migrated."""
    stop = asyncio.Event()
    events = cast(Events, None)  # never reached: the check comes first
    with pytest.raises(revision.SchemaNotCurrent, match="no schema yet"):
        await send_owed_notices(events, store, stop, checked=False)
    assert stop.is_set()  # the worker stops polling


def run_module(
    module: str, data_dir: Path, timeout: float = 60, **settings: str
) -> subprocess.CompletedProcess[str]:
    """`python -m module` on `data_dir`, with the tests' keys unless `settings` (WEBHOOKS_…) say others."""
    env = {
        "PATH": "/usr/bin:/bin",
        "WEBHOOKS_DATA_DIR": str(data_dir),
        "WEBHOOKS_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS,
        "WEBHOOKS_API_KEYS": f"tenant_a:{KEYS['tenant_a']}",
        "WEBHOOKS_WORKER_METRICS_PORT": "0",
        **settings,
    }
    return subprocess.run(
        [sys.executable, "-m", *module.split()], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.stack  # a worker and an API process
def test_the_worker_and_the_api_refuse_a_store_without_the_schema_and_say_what_to_run(
    tmp_path: Path,
) -> None:
    made_by(tmp_path / "webhooks.db", "main-81c04a3.sql")
    refused = run_module("worker", tmp_path)
    assert refused.returncode != 0
    assert "made by a version before migrations: run `python -m cli.migrate`" in refused.stderr
    assert "Traceback" not in refused.stderr
    api = run_module(f"api --port {free_port()}", tmp_path)
    assert api.returncode != 0  # it never serves
    assert "made by a version before migrations: run `python -m cli.migrate`" in api.stderr

    migrated = run_module("cli.migrate", tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert f"at schema revision {revision.head()}" in migrated.stdout
    current = run_module("cli.migrate current", tmp_path)
    assert current.stdout.strip() == f"store: {revision.head()}; this version: {revision.head()}"


@pytest.mark.stack  # a stack of its own
def test_make_run_upgrades_a_data_dir_made_before_migrations(tmp_path: Path) -> None:
    """The launcher migrates before the worker and the API start: what a store held is served after."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    made_by(data_dir / "webhooks.db", "main-42564f6.sql")
    old = EndpointStore(f"sqlite:///{data_dir / 'webhooks.db'}", TEST_KEYRING)
    kept = written_by_that_version(
        old,
        tmp_path / "scratch.db",
        url="https://example.com/kept",
        signature_method=SignatureMethod.HMAC,
        event_types=None,
        description="made before migrations",
        enabled=True,
    )
    old.close()
    log = (OUTPUT / "migrations-stack.log").resolve()
    log.unlink(missing_ok=True)
    stack = start_stack(data_dir, log)
    try:
        response = httpx.get(
            f"{stack.api_url}/v1/webhooks/endpoints/{kept.id}", headers={"x-api-key": KEYS["tenant_a"]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["description"] == "made before migrations"
    finally:
        stack.stop()
    assert "already exists" not in log.read_text()


@pytest.mark.stack  # a stack of its own
def test_the_first_start_on_a_fresh_data_dir_logs_no_store_error(tmp_path: Path) -> None:
    """Issue 23: the first `make run` on a fresh data dir logged "endpoint store cannot be reached … table
    operational_notices already exists" (the worker and the API made the tables at once). The launcher now
    migrates once before either starts: neither makes a table, and nothing says the store is unreachable."""
    log = (OUTPUT / "first-start-stack.log").resolve()
    log.unlink(missing_ok=True)
    stack = start_stack(tmp_path / "data", log)
    try:
        headers = {"x-api-key": KEYS["tenant_a"]}
        made = httpx.post(
            f"{stack.api_url}/v1/webhooks/endpoints",
            headers=headers,
            json={"url": "http://127.0.0.1:9/first", "event_types": ["wallet.created"]},
        )
        assert made.status_code == 201, made.text
        # The worker reads the store for this event's delivery: it has used the store by the end.
        emitted = httpx.post(
            f"{stack.api_url}/v1/events",
            headers=headers,
            json={"webhook_type": "wallet.created", "data": {"object": {"id": "wal_1"}}},
        )
        assert emitted.status_code == 202, emitted.text
        delivery = f"{stack.api_url}/v1/webhooks/deliveries/{emitted.json()['id']}:{made.json()['id']}"

        def attempted() -> bool:
            answer = httpx.get(delivery, headers=headers)
            return answer.status_code == 200 and bool(answer.json()["attempts"])

        wait_for(attempted, timeout=60, what="the first delivery's first attempt")
    finally:
        stack.stop()
    written = log.read_text()
    assert "already exists" not in written
    assert "cannot be reached" not in written
