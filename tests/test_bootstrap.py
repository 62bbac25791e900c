"""`python -m bootstrap`, the one-shot job of docker-compose.yml, against the session's Temporal."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from core.temporal import connect
from domain import search_attributes
from launcher import Stack, free_port


def _bootstrap(stack: Stack, namespace: str) -> subprocess.CompletedProcess[str]:
    env = {
        **stack.env,
        "WEBHOOKS_TEMPORAL_ADDRESS": stack.settings.temporal_target,
        "WEBHOOKS_TEMPORAL_NAMESPACE": namespace,
        "WEBHOOKS_LOG_RETENTION_DAYS": "7",
    }
    return subprocess.run(
        [sys.executable, "-m", "bootstrap", "--timeout", "120"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_bootstrap_prepares_a_new_namespace_and_is_idempotent(stack: Stack) -> None:
    namespace = f"bootstrap-{secrets.token_hex(4)}"
    first = _bootstrap(stack, namespace)
    assert first.returncode == 0, first.stderr
    assert "namespace_created=True" in first.stderr
    second = _bootstrap(stack, namespace)
    assert second.returncode == 0, second.stderr
    assert "namespace_created=False" in second.stderr

    async def check() -> None:
        client = await connect(stack.settings, namespace=namespace)
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
        assert described.config.workflow_execution_retention_ttl.seconds == 7 * 86400
        attributes = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        for key in search_attributes.ALL:
            assert key.name in attributes.custom_attributes
            assert attributes.custom_attributes[key.name] == int(key.indexed_value_type)

    asyncio.run(check())


def test_bootstrap_gives_up_when_temporal_never_answers(stack: Stack) -> None:
    env = {**stack.env, "WEBHOOKS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    result = subprocess.run(
        [sys.executable, "-m", "bootstrap", "--timeout", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Temporal not ready yet" in result.stderr
    assert "gave up preparing Temporal" in result.stderr
    assert "Traceback" not in result.stderr
