"""Issue 20, item 2 and 4: the wrong or a missing encryption key is refused at start, naming the key id,
instead of a 500 on every read of an endpoint; no new key is made where sealed data exists; the keys
may come from a file outside the data dir."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.crypto import Keyring, new_key_entry
from core.settings import Settings
from launcher import free_port, prepare_data_dir
from service import health
from service.health import store_problem
from store import migrate
from store.database import EndpointStore, KeysDoNotOpen, require_keys
from tests.conftest import TEST_ENCRYPTION_KEYS, TEST_KEYRING, add_endpoint, wait_for
from tests.test_migrations import run_module

# The tests' key id, with other key material under it: what a mistyped or regenerated key looks like.
SAME_ID_OTHER_KEY = "test1:" + base64.b64encode(b"another key under the same id...").decode()


def _add_endpoint(store: EndpointStore, tenant: str) -> None:
    """An endpoint with every sealed column: its secret, a URL with a token, a custom header."""
    add_endpoint(
        store, tenant, url="https://example.com/hooks?token=t0k", headers={"Authorization": "Bearer abc"}
    )


def _store_with_an_endpoint(path: Path) -> EndpointStore:
    store = EndpointStore(f"sqlite:///{path}", TEST_KEYRING)
    migrate.upgrade(store)
    _add_endpoint(store, "tenant_a")
    return store


def _opened_with(path: Path, keys: str) -> list[str]:
    store = EndpointStore(f"sqlite:///{path}", Keyring.parse(keys))
    try:
        return store.unopened_keys()
    finally:
        store.close()


def test_the_store_names_each_key_id_its_keys_cannot_open(tmp_path: Path) -> None:
    path = tmp_path / "webhooks.db"
    _store_with_an_endpoint(path).close()
    assert _opened_with(path, TEST_ENCRYPTION_KEYS) == []
    # A new key first, the old one after it: a rotation, which opens everything.
    assert _opened_with(path, f"{new_key_entry('k2')},{TEST_ENCRYPTION_KEYS}") == []
    [missing] = _opened_with(path, new_key_entry("k2"))
    assert "key id 'test1'" in missing and "lacks it" in missing
    [other] = _opened_with(path, SAME_ID_OTHER_KEY)
    assert "key id 'test1'" in other and "not the key" in other
    store = EndpointStore(f"sqlite:///{path}", Keyring.parse(SAME_ID_OTHER_KEY))
    with pytest.raises(KeysDoNotOpen, match=r"key id 'test1'.*WEBHOOKS_ENCRYPTION_KEYS_FILE"):
        require_keys(store)
    store.close()


def test_an_empty_store_opens_with_any_key(tmp_path: Path) -> None:
    store = EndpointStore(f"sqlite:///{tmp_path / 'webhooks.db'}", Keyring.parse(new_key_entry("k9")))
    migrate.upgrade(store)
    require_keys(store)
    store.close()


@pytest.mark.stack  # a worker and an API process
def test_the_worker_and_the_api_refuse_the_wrong_key_naming_it(tmp_path: Path) -> None:
    _store_with_an_endpoint(tmp_path / "webhooks.db").close()
    for keys, said in ((SAME_ID_OTHER_KEY, "not the key"), (new_key_entry("k2"), "lacks it")):
        worker = run_module("worker", tmp_path, WEBHOOKS_ENCRYPTION_KEYS=keys)
        assert worker.returncode != 0
        assert "key id 'test1'" in worker.stderr and said in worker.stderr, worker.stderr
        assert "Traceback" not in worker.stderr
        api = run_module(
            f"api --port {free_port()}",
            tmp_path,
            WEBHOOKS_ENCRYPTION_KEYS=keys,
        )
        assert api.returncode != 0  # it never serves
        assert "key id 'test1'" in api.stderr and said in api.stderr, api.stderr
        keys_command = run_module("cli.keys list", tmp_path, WEBHOOKS_ENCRYPTION_KEYS=keys)
        assert keys_command.returncode != 0 and "key id 'test1'" in keys_command.stderr


def test_keys_come_from_a_file_outside_the_data_dir(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets" / "encryption-keys"
    key_file.parent.mkdir()
    key_file.write_text(TEST_ENCRYPTION_KEYS + "\n")
    settings = Settings(data_dir=tmp_path / "data", encryption_keys_file=key_file)
    assert settings.keyring.current == "test1"
    # A list one key a line, as secret files often hold it: the first encrypts, every one decrypts.
    key_file.write_text(f"{new_key_entry('k2')}\n\n{TEST_ENCRYPTION_KEYS}\n")
    both = Settings(data_dir=tmp_path / "data", encryption_keys_file=key_file).keyring
    assert both.current == "k2" and set(both.keys) == {"k2", "test1"}
    prepare_data_dir(settings)
    assert not settings.encryption_keys_path.exists()  # no development key beside the data


def test_a_keys_file_that_cannot_be_read_or_parsed_stops_the_start_saying_which(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"WEBHOOKS_ENCRYPTION_KEYS_FILE cannot be read: No such file"):
        _ = Settings(data_dir=tmp_path, encryption_keys_file=tmp_path / "absent").keyring
    bad = tmp_path / "bad"
    bad.write_text("k1:not base64!")
    with pytest.raises(SystemExit, match=r"WEBHOOKS_ENCRYPTION_KEYS_FILE \(.*bad\): encryption key k1"):
        _ = Settings(data_dir=tmp_path, encryption_keys_file=bad).keyring


def test_the_keys_come_from_one_place_only(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not both"):
        Settings(encryption_keys=TEST_ENCRYPTION_KEYS, encryption_keys_file=tmp_path / "keys")


@pytest.mark.parametrize("data", ["webhooks.db", "temporal.db"])
def test_make_run_never_makes_a_new_key_where_sealed_data_exists(tmp_path: Path, data: str) -> None:
    settings = Settings(data_dir=tmp_path)
    prepare_data_dir(settings)
    (tmp_path / data).write_bytes(b"sealed with the key below")
    settings.encryption_keys_path.unlink()  # the key file lost, its data still there
    with pytest.raises(SystemExit, match=rf"encryption-keys is missing, and {data} .*restore it"):
        prepare_data_dir(Settings(data_dir=tmp_path))
    assert not settings.encryption_keys_path.exists()


def test_health_says_when_another_replica_sealed_secrets_these_keys_cannot_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two API replicas with different keys: the one started with a new key first seals with it, and the
    other's /healthz says so (its store check), within KEY_CHECK_SECONDS."""
    path = tmp_path / "webhooks.db"
    ours = _store_with_an_endpoint(path)
    require_keys(ours)  # as the API starts: the first read of the keys against the store
    assert store_problem(ours) is None
    other = EndpointStore(f"sqlite:///{path}", Keyring.parse(f"{new_key_entry('k2')},{TEST_ENCRYPTION_KEYS}"))
    _add_endpoint(other, "tenant_b")
    other.close()
    assert store_problem(ours) is None  # what it read a moment ago, kept for KEY_CHECK_SECONDS
    monkeypatch.setattr(health, "KEY_CHECK_SECONDS", 0.0)  # that long later: read again, in the background
    problem = wait_for(lambda: store_problem(ours), what="the key check to be read again")
    assert "key id 'k2'" in problem and "lacks it" in problem
    ours.close()
