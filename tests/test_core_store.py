"""store/database.py: the endpoint store, on SQLite and on a real PostgreSQL (as docker-compose.yml)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, timedelta
from pathlib import Path

import httpx
import pytest

from core.signing import SigningKey
from domain.models import SignatureMethod
from store import migrate, revision
from store.database import EndpointStore, KeyConflictError
from store.keys import TenantKeys
from store.tables import Base
from tests.conftest import KEYS, TEST_KEYRING, add_endpoint, standalone_api
from tests.postgres import PostgresServer
from tests.test_migrations import schema_drift, upgraded_together


def test_concurrent_migrations_make_the_schema_once_and_as_the_tables_declare(
    postgres: PostgresServer,
) -> None:
    """Two launchers, or a migrate job run twice: one upgrade at a time (an advisory lock), on PostgreSQL
    as on SQLite (tests/test_migrations.py), and the schema is exactly store/tables.py's."""
    stores = [EndpointStore(postgres.url, TEST_KEYRING) for _ in range(4)]
    try:
        assert upgraded_together(stores) == []
        assert schema_drift(stores[0].engine) == []
        revision.require_current(stores[0].engine)
    finally:
        for store in stores:
            store.close()


def test_a_postgres_store_made_before_migrations_is_upgraded_without_loss(
    postgres: PostgresServer,
) -> None:
    """What the start-up code made before migrations (a database of its own, today's tables, no
    alembic_version), with a row, upgraded."""
    url = postgres.create_database("before_migrations")
    store = EndpointStore(url, TEST_KEYRING)
    try:
        Base.metadata.create_all(store.engine)
        kept = add_endpoint(
            store,
            "tenant_pg",
            url="https://example.com/kept",
            signature_method=SignatureMethod.JWT,
            event_types=["invoice.created"],
            description="kept",
        )
        with pytest.raises(revision.SchemaNotCurrent, match="before migrations"):
            revision.require_current(store.engine)
        migrate.upgrade(store)
        assert store.get("tenant_pg", kept.id) == kept
        assert schema_drift(store.engine) == []
    finally:
        store.close()


def test_a_first_release_postgres_store_has_its_narrow_columns_widened(postgres: PostgresServer) -> None:
    """The first releases made url VARCHAR(2048) and secret VARCHAR(128) on PostgreSQL: too narrow for
    what sealing writes (a secret's sealed form is over 128 characters with a long key id)."""
    url = postgres.create_database("first_release")
    store = EndpointStore(url, TEST_KEYRING)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE endpoints (id VARCHAR(40) PRIMARY KEY, tenant VARCHAR(64) NOT NULL, "
                "url VARCHAR(2048) NOT NULL, description VARCHAR(1024) NOT NULL, "
                "signature_method VARCHAR(8) NOT NULL, secret VARCHAR(128) NOT NULL, event_types JSON, "
                "enabled BOOLEAN NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, "
                "updated_at TIMESTAMP WITH TIME ZONE NOT NULL)"
            )
            conn.exec_driver_sql("CREATE INDEX ix_endpoints_tenant ON endpoints (tenant)")
            conn.exec_driver_sql(
                "INSERT INTO endpoints VALUES ('ep_old', 't', 'https://example.com/' || repeat('p', 1900), "
                "'', 'hmac', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', NULL, true, now(), now())"
            )
        migrate.upgrade(store)  # seals the URL and the secret: both longer than their old columns
        assert schema_drift(store.engine) == []
        old = store.get("t", "ep_old")
        assert old is not None and old.url.endswith("p" * 1900)
        assert old.secret == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    finally:
        store.close()


def test_store_round_trip(postgres: PostgresServer) -> None:
    store = EndpointStore(postgres.url, TEST_KEYRING)
    migrate.upgrade(store)
    try:
        created = add_endpoint(
            store,
            "tenant_pg",
            url="https://example.com/hook",
            signature_method=SignatureMethod.JWT,
            event_types=["invoice.created", "wallet.created"],
            description="caf\u00e9",
        )
        every = add_endpoint(store, "tenant_pg", url="https://example.com/all")
        got = store.get("tenant_pg", created.id)
        assert got == created
        assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == UTC.utcoffset(None)
        assert got.event_types == ["invoice.created", "wallet.created"]
        assert store.get("someone_else", created.id) is None
        assert store.subscribed("tenant_pg", "wallet.created") == [created.id, every.id]
        assert store.subscribed("tenant_pg", "fee.created") == [every.id]

        updated = store.update("tenant_pg", created.id, enabled=False, event_types=None)
        assert updated is not None and updated.enabled is False and updated.event_types is None
        assert updated.updated_at > created.updated_at
        assert store.subscribed("tenant_pg", "wallet.created") == [every.id]
        assert [e.id for e in store.for_tenant("tenant_pg")] == [created.id, every.id]
        assert store.delete("someone_else", every.id) is False
        assert store.delete("tenant_pg", every.id) is True
        assert [e.id for e in store.for_tenant("tenant_pg")] == [created.id]
    finally:
        store.close()


def test_api_keeps_endpoints_in_postgres(postgres: PostgresServer) -> None:
    env = {"WEBHOOKS_DATABASE_URL": postgres.url, "WEBHOOKS_API_KEYS": f"tenant_a:{KEYS['tenant_a']}"}
    with standalone_api(env) as base_url:
        api = httpx.Client(base_url=base_url, headers={"x-api-key": KEYS["tenant_a"]}, timeout=30)
        response = api.post("/v1/webhooks/endpoints", json={"url": "https://example.com/pg"})
        assert response.status_code == 201, response.text
        endpoint_id = response.json()["id"]
        api.close()
    store = EndpointStore(postgres.url, TEST_KEYRING)
    try:
        found = store.get("tenant_a", endpoint_id)
        assert found is not None and found.url == "https://example.com/pg"
    finally:
        store.close()


def test_signing_keys_round_trip_and_rotate(postgres: PostgresServer) -> None:
    """Each tenant's jwt keys on PostgreSQL: timestamps with time zones, the generation conflict, and the
    rotation's update and delete in one transaction."""
    store = EndpointStore(postgres.url, TEST_KEYRING)
    migrate.upgrade(store)
    try:
        keys_store = store.signing_keys
        keys = TenantKeys(keys_store, cache_seconds=0)
        first = keys.signing_key("tenant_pg_keys")
        [stored] = keys_store.for_tenant("tenant_pg_keys")
        assert stored.kid == first.kid and stored.created_at.tzinfo is not None
        assert SigningKey.from_pem(stored.private_pem).kid == first.kid
        with pytest.raises(KeyConflictError):
            keys_store.add(dataclasses.replace(stored, kid="another"))

        new = keys.rotate("tenant_pg_keys", publish_for=timedelta(0), retire_after=timedelta(0))
        assert keys.signing_key("tenant_pg_keys").kid == new.kid
        assert [k.kid for k in keys.published_keys("tenant_pg_keys")] == [new.kid]
        newest = keys.rotate("tenant_pg_keys", publish_for=timedelta(hours=1))
        # The key retired by the first rotation is deleted by the second; the signing one stays.
        assert [k.kid for k in keys_store.for_tenant("tenant_pg_keys")] == [new.kid, newest.kid]
        assert keys.signing_key("tenant_pg_keys").kid == new.kid
        assert keys_store.tenants() == ["tenant_pg_keys"]
    finally:
        store.close()


def test_sqlite_store_makes_its_data_dir(tmp_path: Path) -> None:
    # The API or a worker started alone, before anything made the data dir, must not fail to start.
    store = EndpointStore(f"sqlite:///{tmp_path / 'not' / 'yet' / 'webhooks.db'}", TEST_KEYRING)
    migrate.upgrade(store)
    assert store.for_tenant("t") == []
    store.close()
