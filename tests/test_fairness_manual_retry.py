"""A manual retry of one delivery goes before a live backlog, whatever kind of work made the delivery
(issue 19, 2), through the real API, worker and Temporal, to a real receiver.

A replayed delivery's workflow runs at bulk priority, behind all live work. Its manual retry's attempt is
live work, but the retry reaches it as an update, which needs a workflow task of the delivery's own, at
the delivery's priority: on a worker with a backlog of live workflow tasks, the retry waited for all of
them, and its attempt was queued behind every live attempt they made (and the API, waiting for the
update to be taken, answered 503 when the backlog took longer than its bound).

Built deterministically: the worker is stopped, a live backlog is emitted, the retry is asked for, and a
worker with two workflow-task slots starts. The task queue has one partition, so that Temporal's order
is exact (with the dev server's four, each partition keeps its own order and the pollers take turns:
the same, less sharply). Asserted as an order of receipt, never milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse

from core.temporal import connect
from domain import ids
from launcher import Stack
from tests.conftest import (
    STACK_LOG,
    api_client,
    create_endpoint,
    emit_accepted,
    running_stack,
    wait_for,
    wait_visible,
)
from tests.receiver import Answer, Receiver

pytestmark = [pytest.mark.slow, pytest.mark.stack]

log = logging.getLogger(__name__)
BACKLOG = 40
SLOW = Answer(200, delay=0.2)  # two at a time: the live backlog takes 4 s to drain


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two workflow-task and two activity slots, so that a backlog forms; the API waits for Temporal
    long enough for a worker to start (the retry is asked for while none runs)."""
    with running_stack(
        tmp_path_factory.mktemp("manual-retry-priority"),
        STACK_LOG.resolve(),
        server_args=[
            arg
            for name in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions")
            for arg in ("--dynamic-config-value", f"{name}=1")
        ],
        WEBHOOKS_TEMPORAL_RPC_TIMEOUT="45",
        WEBHOOKS_WORKER_MAX_ACTIVITIES="2",
        WEBHOOKS_WORKER_MAX_WORKFLOW_TASKS="2",
    ) as stack:
        yield stack


def test_a_manual_retry_of_a_replayed_delivery_goes_before_a_live_backlog(stack: Stack) -> None:
    with api_client(stack, "tenant_a") as api, Receiver() as receiver:
        since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
        create_endpoint(api, receiver.script("/first", []), event_types=["invoice.created"])
        event_id = emit_accepted(api, "invoice.created")["id"]
        wait_for(lambda: receiver.requests("/first"), what="the event's first delivery")
        wait_visible(stack, since, ["invoice.created"], 1)
        # A new endpoint is sent the event again: a replay, whose delivery is bulk work.
        replayed = create_endpoint(api, receiver.script("/replayed", []), event_types=["invoice.created"])
        started = api.post(f"/v1/webhooks/endpoints/{replayed['id']}/replay", json={"since": since})
        assert started.status_code == 202, started.text
        wait_for(lambda: receiver.requests("/replayed"), what="the replayed delivery")
        create_endpoint(api, receiver.script("/live", [SLOW]), event_types=["invoice.payment_status_updated"])

        stack.stop_worker()
        with ThreadPoolExecutor(8) as pool:  # a live backlog, every event of it accepted
            list(pool.map(lambda _: emit_accepted(api, "invoice.payment_status_updated"), range(BACKLOG)))
        answers: list[httpx.Response] = []
        delivery_id = f"{event_id}:{replayed['id']}"
        retry = f"/v1/webhooks/deliveries/{delivery_id}/retry"
        asked = threading.Thread(target=lambda: answers.append(api.post(retry, timeout=60)))
        asked.start()
        wait_for(
            lambda: _described(stack, delivery_id).HasField("pending_workflow_task"),
            what="the retry to reach Temporal: its update's workflow task, waiting for a worker",
        )
        stack.start_worker()

        wait_for(lambda: len(receiver.requests("/replayed")) == 2, timeout=120, what="the retry's attempt")
        retried = receiver.requests("/replayed")[1]
        asked.join(timeout=60)
        wait_for(lambda: len(receiver.requests("/live")) == BACKLOG, timeout=120, what="the live backlog")
        before = len([request for request in receiver.requests("/live") if request.at < retried.at])
    assert [answer.status_code for answer in answers] == [202], [a.text for a in answers]
    log.info("the retry's attempt came after %d of the %d live deliveries", before, BACKLOG)
    # First-in first-out by priority, it came after all of them; a live attempt, it comes among the first.
    assert before < BACKLOG / 2, f"the manual retry's attempt waited for {before} of {BACKLOG} live ones"
    # Raised to the live priority, still its tenant's work at its weight (fairness between tenants holds).
    priority = _described(stack, delivery_id).workflow_execution_info.priority
    assert (priority.priority_key, priority.fairness_key) == (1, "tenant_a"), priority


def test_a_manual_retry_of_a_live_delivery_leaves_its_priority_alone(stack: Stack) -> None:
    with api_client(stack, "tenant_a") as api, Receiver() as receiver:
        endpoint = create_endpoint(api, receiver.script("/live", []))
        delivery_id = f"{emit_accepted(api)['id']}:{endpoint['id']}"
        wait_for(lambda: receiver.requests("/live"), what="the first attempt")
        assert api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").status_code == 202
        wait_for(lambda: len(receiver.requests("/live")) == 2, what="the retry's attempt")
    # Already live work: no change asked of Temporal, none in the delivery's history.
    assert _options_updates(stack, delivery_id) == 0


def _described(stack: Stack, delivery_id: str) -> DescribeWorkflowExecutionResponse:
    async def described() -> DescribeWorkflowExecutionResponse:
        client = await connect(stack.settings)
        handle = client.get_workflow_handle(ids.delivery_workflow_id("tenant_a", delivery_id))
        return (await handle.describe()).raw_description

    return asyncio.run(described())


def _options_updates(stack: Stack, delivery_id: str) -> int:
    """How many times the delivery's workflow had its options (its priority) changed."""

    async def counted() -> int:
        client = await connect(stack.settings)
        handle = client.get_workflow_handle(ids.delivery_workflow_id("tenant_a", delivery_id))
        updated = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED
        return len([e async for e in handle.fetch_history_events() if e.event_type == updated])

    return asyncio.run(counted())
