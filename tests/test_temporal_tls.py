"""Temporal over TLS and with an API key: the service runs against a secured cluster or Temporal Cloud.

A TLS-terminating proxy (tests/tls.py) with a test CA stands in for a secured frontend in front of the
session's dev server: a whole stack (worker and API) runs through it, with server-only TLS and with
mutual TLS; a wrong CA or a missing client certificate is refused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from core import temporal
from core.settings import Settings
from launcher import Stack
from tests.conftest import (
    TEST_ENCRYPTION_KEYS,
    assert_delivers,
    stack_env,
)
from tests.receiver import Receiver
from tests.tls import make_ca, tls_proxy

SERVER_NAME = "temporal.webhooks.test"


def _temporal_port(stack: Stack) -> int:
    return int(stack.settings.temporal_target.rpartition(":")[2])


def _deliver_through(env: dict[str, str], tmp_path: Path, receiver: Receiver) -> None:
    other = Stack(env, log_file=tmp_path / "stack.log")
    try:
        other.start()
        assert_delivers(other, receiver, "/tls", "wallet.created")
    finally:
        other.stop()


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mtls"])
def test_a_stack_runs_against_temporal_behind_tls(
    stack: Stack, tmp_path: Path, receiver: Receiver, mutual: bool
) -> None:
    ca, server, client = make_ca(tmp_path, server_name=SERVER_NAME)
    with tls_proxy(_temporal_port(stack), server, client_ca=ca.cert if mutual else None) as port:
        env = stack_env(
            tmp_path / "data",
            WEBHOOKS_TEMPORAL_ADDRESS=f"127.0.0.1:{port}",
            WEBHOOKS_TASK_QUEUE=f"tls-{'mtls' if mutual else 'tls'}",
            WEBHOOKS_TEMPORAL_TLS_CA=str(ca.cert),
            WEBHOOKS_TEMPORAL_TLS_SERVER_NAME=SERVER_NAME,
            **(
                {"WEBHOOKS_TEMPORAL_TLS_CERT": str(client.cert), "WEBHOOKS_TEMPORAL_TLS_KEY": str(client.key)}
                if mutual
                else {}
            ),
        )
        _deliver_through(env, tmp_path, receiver)


def test_tls_is_refused_with_another_ca_or_without_the_client_certificate(
    stack: Stack, tmp_path: Path
) -> None:
    for name in ("right", "other"):
        (tmp_path / name).mkdir()
    ca, server, client = make_ca(tmp_path / "right", server_name=SERVER_NAME)
    other_ca, _, _ = make_ca(tmp_path / "other", server_name=SERVER_NAME)

    async def connects(**settings: Any) -> bool:
        try:
            found = await temporal.connect(Settings(encryption_keys=TEST_ENCRYPTION_KEYS, **settings))
            await found.count_workflows()
            return True
        except RuntimeError:
            return False

    with tls_proxy(_temporal_port(stack), server, client_ca=ca.cert) as port:
        base = {"temporal_address": f"127.0.0.1:{port}", "temporal_tls_server_name": SERVER_NAME}
        mutual = {"temporal_tls_cert": client.cert, "temporal_tls_key": client.key}
        assert asyncio.run(connects(**base, temporal_tls_ca=ca.cert, **mutual))
        assert not asyncio.run(connects(**base, temporal_tls_ca=other_ca.cert, **mutual))
        assert not asyncio.run(connects(**base, temporal_tls_ca=ca.cert))


def test_the_api_key_and_tls_reach_the_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Temporal Cloud: an API key over TLS with the system's CAs (the key cannot be checked on a dev
    server, so this unit test looks at what `connect` hands the SDK)."""
    seen: dict[str, Any] = {}

    async def fake_connect(target: str, **kwargs: Any) -> Client:
        seen.update(kwargs, target=target)
        raise RuntimeError("not connecting in a unit test")

    monkeypatch.setattr(Client, "connect", fake_connect)
    settings = Settings(
        encryption_keys=TEST_ENCRYPTION_KEYS,
        temporal_address="my-ns.a1b2c.tmprl.cloud:7233",
        temporal_namespace="my-ns.a1b2c",
        temporal_api_key="tcl_secret",
        temporal_tls=True,
    )
    with pytest.raises(RuntimeError):
        asyncio.run(temporal.connect(settings))
    assert seen["target"] == "my-ns.a1b2c.tmprl.cloud:7233"
    assert seen["namespace"] == "my-ns.a1b2c"
    assert seen["api_key"] == "tcl_secret"
    assert seen["tls"] is not False
    assert temporal.tls_config(Settings()) is False
