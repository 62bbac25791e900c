"""`deliver_once` on its own, against real receivers: per-endpoint gates keep a slow endpoint apart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities
from activities.gates import EndpointGates
from core.models import AttemptOutcome, AttemptRecord, AttemptTrigger, DeliverRequest, SignatureMethod
from core.signing import JwtSigner, load_or_create_rsa_key
from core.store import EndpointStore
from tests.receiver import Answer, Receiver


async def test_gate_limits_attempts_per_endpoint_and_forgets_idle_ones() -> None:
    gates = EndpointGates(limit=1)
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with gates.slot("ep_a"):
            entered.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await entered.wait()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05), gates.slot("ep_a"):
            pass
    async with asyncio.timeout(0.05), gates.slot("ep_b"):  # another endpoint is not held up
        assert gates.in_use() == 2
    release.set()
    await holder
    assert gates.in_use() == 0


def _request(endpoint_id: str, n: int, timeout: float) -> DeliverRequest:
    return DeliverRequest(
        tenant="t",
        endpoint_id=endpoint_id,
        delivery_id=f"evt_{n}:{endpoint_id}",
        body="{}",
        attempt=1,
        trigger=AttemptTrigger.SCHEDULED,
        timeout=timeout,
    )


async def test_a_slow_endpoint_does_not_hold_up_a_healthy_one(store: EndpointStore, tmp_path: Path) -> None:
    signer = JwtSigner.from_pem(load_or_create_rsa_key(tmp_path / "k.pem"), issuer="t")
    with Receiver() as receiver:

        def endpoint(path: str, answers: list[Answer]) -> str:
            return store.create(
                "t",
                url=receiver.script(path, answers),
                signature_method=SignatureMethod.HMAC,
                event_types=None,
                description="",
                enabled=True,
            ).id

        slow = endpoint("/slow", [Answer(200, delay=3)])
        healthy = endpoint("/healthy", [])
        # A pool of two connections: without gates, two slow attempts would take it all.
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        async with httpx.AsyncClient(limits=limits) as http:
            activities = DeliveryActivities(http, store, signer, endpoint_concurrency=1)

            def attempt(request: DeliverRequest) -> Awaitable[AttemptRecord]:
                return ActivityEnvironment().run(activities.deliver_once, request)

            slow_attempts = [asyncio.ensure_future(attempt(_request(slow, n, timeout=2))) for n in range(3)]
            await asyncio.sleep(0.2)
            record = await attempt(_request(healthy, 99, timeout=2))
            assert record.outcome is AttemptOutcome.SUCCEEDED
            # The healthy attempt finished while the slow endpoint's were still waiting their turn.
            assert not any(task.done() for task in slow_attempts)
            slow_records = await asyncio.gather(*slow_attempts)
    assert all(r.error == "timed out after 2 s" for r in slow_records)
