"""Each tenant's jwt signing keys (store/keys.py) on a real SQLite store, with a clock the test moves:
one set of keys per tenant, made once, and a rotation that receivers caching the JWKS never notice."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from cli.keys import main, parse_duration
from cli.migrate import main as migrate_main
from core.settings import Settings
from core.signing import JwtSigner
from store.database import EndpointStore, KeyConflictError, SigningKeyStore
from store.keys import TenantKeys, key_state
from store.revision import SchemaNotCurrent
from tests.conftest import TEST_ENCRYPTION_KEYS, TEST_KEYRING

BODY = '{"webhook_type":"invoice.created","object_type":"invoice","data":{"object":{}}}'
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def key_store(store: EndpointStore) -> SigningKeyStore:
    return store.signing_keys


def _signer(key_store: SigningKeyStore, clock: Clock) -> tuple[TenantKeys, JwtSigner]:
    # No row cache: every call reads the store, as the API's JWKS route does.
    keys = TenantKeys(key_store, clock=clock, cache_seconds=0)
    return keys, JwtSigner(keys, issuer="flexprice-webhooks")


def _token(signer: JwtSigner, clock: Clock, tenant: str = "acme", endpoint_id: str = "ep_1") -> str:
    ts = int(clock().timestamp())
    return signer.sign(
        tenant=tenant, endpoint_id=endpoint_id, msg_id=f"evt:{endpoint_id}", timestamp=ts, body=BODY
    )


def _verifies(token: str, cached_jwks: dict[str, Any], clock: Clock, audience: str = "ep_1") -> bool:
    """What a receiver holding `cached_jwks` (and not fetching again) says about `token`."""
    keys = {k["kid"]: k for k in cached_jwks["keys"]}
    kid = jwt.get_unverified_header(token)["kid"]
    if kid not in keys:
        return False
    jwt.decode(
        token,
        jwt.PyJWK(keys[kid]).key,
        algorithms=["RS256"],
        audience=audience,
        options={"verify_exp": False, "verify_iat": False},  # the test's clock is not the machine's
    )
    return True


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_each_tenant_has_its_own_keys_made_once_and_shared_by_every_process(
    key_store: SigningKeyStore,
) -> None:
    clock = Clock()
    api_keys, api = _signer(key_store, clock)
    worker_keys, worker = _signer(key_store, clock)  # another process, the same database

    jwks_a = api.jwks("tenant_a")
    token_a = _token(worker, clock, tenant="tenant_a")
    assert [k["kid"] for k in jwks_a["keys"]] == [
        _kid(token_a)
    ]  # the worker signs with what the API publishes
    assert worker.jwks("tenant_a") == jwks_a

    jwks_b = worker.jwks("tenant_b")
    assert {k["kid"] for k in jwks_b["keys"]}.isdisjoint(k["kid"] for k in jwks_a["keys"])
    assert _verifies(token_a, jwks_a, clock)
    assert not _verifies(token_a, jwks_b, clock)  # B's receivers never hold A's key
    assert key_store.tenants() == ["tenant_a", "tenant_b"]


def test_a_tenant_without_keys_gets_none_unless_asked(key_store: SigningKeyStore) -> None:
    keys, signer = _signer(key_store, Clock())
    assert signer.jwks("nobody", create=False) == {"keys": []}
    assert key_store.tenants() == []
    # Nor in memory: the JWKS route reads any name a stranger asks for, and a cache entry for each would
    # grow without bound.
    assert "nobody" not in keys._rows
    assert len(signer.jwks("somebody")["keys"]) == 1
    assert keys.stored_keys("somebody", create=False)


def test_two_processes_making_a_first_key_at_once_keep_the_first_stored(key_store: SigningKeyStore) -> None:
    clock = Clock()
    api_keys, _ = _signer(key_store, clock)
    worker_keys, worker = _signer(key_store, clock)
    first = api_keys.stored_keys("acme", create=True)[0]
    # The worker read an empty store just before the API's insert, and inserts generation 1 too.
    with pytest.raises(KeyConflictError):
        key_store.add(dataclasses.replace(first, kid="someone-else"))
    assert worker_keys._first_key("acme", [], clock()).kid == first.kid
    assert _kid(_token(worker, clock)) == first.kid


def test_rotation_that_a_receiver_which_cached_the_jwks_10_minutes_ago_never_notices(
    key_store: SigningKeyStore,
) -> None:
    clock = Clock()
    keys, signer = _signer(key_store, clock)
    old_kid = _kid(_token(signer, clock))
    cached_at_t0 = signer.jwks("acme")  # a receiver fetches the JWKS and keeps it

    clock.advance(minutes=5)
    new = keys.rotate("acme", publish_for=timedelta(hours=1), retire_after=timedelta(hours=1))
    published = signer.jwks("acme")
    assert [k["kid"] for k in published["keys"]] == [old_kid, new.kid]  # beside the old one, at once
    assert new.signs_from == clock() + timedelta(hours=1)

    # Ten minutes after its fetch (five after the rotation), that receiver knows only the old key, and
    # the old key is still the one that signs: it verifies without fetching anything.
    clock.advance(minutes=5)
    token = _token(signer, clock)
    assert _kid(token) == old_kid
    assert _verifies(token, cached_at_t0, clock)

    # The switch: one hour after the rotation. Any receiver that caches the JWKS for less than that (the
    # API says max-age=300) fetched it after the rotation, so it holds the new key already.
    clock.now = new.signs_from
    token = _token(signer, clock)
    assert _kid(token) == new.kid
    assert _verifies(token, published, clock)
    assert not _verifies(token, cached_at_t0, clock)  # only a cache older than the whole window misses it
    states = {
        k.kid: key_state(k, key_store.for_tenant("acme"), clock()) for k in key_store.for_tenant("acme")
    }
    assert states == {old_kid: "published", new.kid: "signing"}

    # Retirement: an hour after the switch the old key leaves the JWKS.
    clock.advance(minutes=59)
    assert len(signer.jwks("acme")["keys"]) == 2
    clock.advance(minutes=1)
    assert [k["kid"] for k in signer.jwks("acme")["keys"]] == [new.kid]
    states = {
        k.kid: key_state(k, key_store.for_tenant("acme"), clock()) for k in key_store.for_tenant("acme")
    }
    assert states == {old_kid: "retired", new.kid: "signing"}


def test_a_key_that_signed_at_once_would_be_refused_by_that_same_receiver(key_store: SigningKeyStore) -> None:
    # Why a rotation publishes first: the receiver that fetched ten minutes ago meets a kid it lacks, and
    # must fetch again at the right moment (PyJWKClient will not within 30 s of its last fetch).
    clock = Clock()
    keys, signer = _signer(key_store, clock)
    cached_at_t0 = signer.jwks("acme")
    clock.advance(minutes=5)
    keys.rotate("acme", publish_for=timedelta(0), retire_after=timedelta(hours=1))
    clock.advance(minutes=5)
    assert not _verifies(_token(signer, clock), cached_at_t0, clock)


def test_a_leaked_key_is_replaced_and_unpublished_at_once(key_store: SigningKeyStore) -> None:
    clock = Clock()
    keys, signer = _signer(key_store, clock)
    leaked = _kid(_token(signer, clock))
    clock.advance(seconds=1)
    new = keys.rotate("acme", publish_for=timedelta(0), retire_after=timedelta(0))
    assert _kid(_token(signer, clock)) == new.kid
    assert [k["kid"] for k in signer.jwks("acme")["keys"]] == [new.kid]
    assert leaked in {k.kid for k in key_store.for_tenant("acme")}
    # The next rotation deletes what was retired before it: a retired private key serves nothing.
    clock.advance(seconds=1)
    newest = keys.rotate("acme", publish_for=timedelta(0), retire_after=timedelta(0))
    assert [k.kid for k in key_store.for_tenant("acme")] == [new.kid, newest.kid]


def test_a_worker_reads_the_keys_again_once_its_cache_has_aged(key_store: SigningKeyStore) -> None:
    clock = Clock()
    elapsed = [0.0]
    admin, _ = _signer(key_store, clock)
    worker = JwtSigner(TenantKeys(key_store, clock=clock, timer=lambda: elapsed[0]), issuer="i")
    first = _kid(_token(worker, clock))
    new = admin.rotate("acme", publish_for=timedelta(0), retire_after=timedelta(minutes=5))
    elapsed[0] = 9.9
    assert _kid(_token(worker, clock)) == first  # its cached rows predate the rotation
    elapsed[0] = 10.0
    assert _kid(_token(worker, clock)) == new.kid


def test_rotate_refuses_negative_durations(key_store: SigningKeyStore) -> None:
    keys, _ = _signer(key_store, Clock())
    with pytest.raises(ValueError, match="negative"):
        keys.rotate("acme", publish_for=timedelta(seconds=-1))


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), ("0", 0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_the_operator_command_lists_and_rotates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("WEBHOOKS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WEBHOOKS_DATA_DIR", str(tmp_path))
    # Without the encryption keys the command refuses to touch the store, and says what to set.
    with pytest.raises(SystemExit, match="WEBHOOKS_ENCRYPTION_KEYS"):
        main(["list"])
    monkeypatch.setenv("WEBHOOKS_ENCRYPTION_KEYS", TEST_ENCRYPTION_KEYS)
    # Nor on a store without this version's schema.
    with pytest.raises(SchemaNotCurrent, match="python -m cli.migrate"):
        main(["list"])
    assert migrate_main([]) == 0
    capsys.readouterr()
    assert main(["list"]) == 0
    assert "no signing keys yet" in capsys.readouterr().out

    # A name with no keys is a typo until proven otherwise: nothing is made for it.
    assert main(["rotate", "--tenant", "acme"]) == 1
    assert "no signing keys for acme" in capsys.readouterr().err

    store = EndpointStore(Settings().sqlalchemy_url, TEST_KEYRING)
    first = TenantKeys(store.signing_keys).signing_key("acme").kid
    store.close()

    assert main(["rotate", "--tenant", "acme", "--publish-for", "15m", "--retire-after", "2h", "--json"]) == 0
    [rotated] = json.loads(capsys.readouterr().out)
    assert rotated["tenant"] == "acme" and rotated["kid"] != first
    signs_from = datetime.fromisoformat(rotated["signs_from"])
    assert datetime.fromisoformat(rotated["retires_others_at"]) - signs_from == timedelta(hours=2)

    assert main(["list", "--json"]) == 0
    listed = {k["kid"]: k for k in json.loads(capsys.readouterr().out)}
    assert (listed[first]["state"], listed[rotated["kid"]]["state"]) == ("signing", "next")
    assert listed[first]["retires_at"] == rotated["retires_others_at"]

    assert main(["rotate", "--all"]) == 0
    assert capsys.readouterr().out.startswith("acme: new key ")
    assert main(["rotate", "--all", "--tenant", "acme"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["rotate", "--tenant", "acme", "--publish-for", "soon"])
    assert exit_info.value.code == 2
    assert "is not a duration" in capsys.readouterr().err


def test_the_single_key_setting_is_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match="own jwt signing keys"):
        Settings(jwt_private_key="-----BEGIN PRIVATE KEY-----")
