"""`LaneWorkflow` and its deliveries on the time-skipping server, with made-up activities: the races and
restarts of an ordered lane, which the end-to-end tests (tests/test_ordered_delivery.py) cannot provoke."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.delivery import DeliveryActivities
from activities.lanes import LaneActivities
from domain import ids
from domain.models import (
    AttemptOutcome,
    AttemptRecord,
    DeliverRequest,
    DeliveryPolicy,
    DeliveryStatus,
    EventInput,
    LaneBlocked,
    LaneBody,
    LaneCloseOut,
    LaneEndpoint,
    LaneInput,
    LaneItem,
    LaneSequence,
    LaneSettled,
    LaneSkip,
    LaneView,
)
from tests.conftest import made_up_attempt
from workflows.delivery import DeliveryWorkflow
from workflows.lane import LaneWorkflow

POLICY = DeliveryPolicy(retry_delays=[1.0], attempt_timeout=5, retry_window=3600)
# A retry an hour away: the head stays on its schedule (not blocked) for as long as a test looks at it.
SLOW = DeliveryPolicy(retry_delays=[3600.0], attempt_timeout=5, retry_window=3600)


@dataclass
class World:
    """What the made-up activities see and do: the store's last sequence per lane, each POST's sequence,
    and which events' POSTs fail; `hold_body` holds the lane in the middle of starting its head."""

    stored: dict[str, int] = field(default_factory=dict)
    posts: list[tuple[str, int | None, str]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    hold_body: asyncio.Event | None = None
    hold_post: asyncio.Event | None = None
    deleted: bool = False  # the endpoint is gone: every attempt finds it so, and the store says so
    closed_out: list[str] = field(default_factory=list)


def made_up_activities(world: World) -> list[Callable[..., Any]]:
    @activity.defn(name=DeliveryActivities.deliver_once.__name__)
    async def deliver_once(request: DeliverRequest) -> AttemptRecord:
        world.posts.append((request.delivery_id, request.sequence, request.trigger.value))
        if request.trigger.value == "manual" and world.hold_post is not None:
            await world.hold_post.wait()
        failed = request.delivery_id.split(":")[0] in world.failing
        if world.deleted:
            return made_up_attempt(request, AttemptOutcome.ENDPOINT_UNAVAILABLE, error="endpoint was deleted")
        return made_up_attempt(
            request,
            AttemptOutcome.RETRYABLE if failed else AttemptOutcome.SUCCEEDED,
            status_code=500 if failed else 200,
        )

    @activity.defn(name=LaneActivities.last_sequence.__name__)
    async def last_sequence(lane: LaneSequence) -> int:
        return world.stored.get(ids.lane_key(lane.ordering_key), 0)

    @activity.defn(name=LaneActivities.advance_sequence.__name__)
    async def advance_sequence(lane: LaneSequence) -> None:
        key = ids.lane_key(lane.ordering_key)
        world.stored[key] = max(world.stored.get(key, 0), lane.sequence)

    @activity.defn(name=LaneActivities.lane_body.__name__)
    async def lane_body(event: LaneBody) -> str:
        if world.hold_body is not None:
            await world.hold_body.wait()
        return json.dumps({"id": event.event_id})

    @activity.defn(name=LaneActivities.lane_blocked.__name__)
    async def lane_blocked(blocked: LaneBlocked) -> None:
        pass

    @activity.defn(name=LaneActivities.tell_lanes.__name__)
    async def tell_lanes(event: EventInput) -> None:
        pass

    @activity.defn(name=LaneActivities.endpoint_exists.__name__)
    async def endpoint_exists(endpoint: LaneEndpoint) -> bool:
        return not world.deleted

    @activity.defn(name=LaneActivities.close_out.__name__)
    async def close_out(lane: LaneCloseOut) -> int:
        world.closed_out.extend(item.delivery_id for item in lane.items)
        return len(lane.items)

    return [
        deliver_once,
        last_sequence,
        advance_sequence,
        lane_body,
        lane_blocked,
        tell_lanes,
        endpoint_exists,
        close_out,
    ]


@pytest.fixture
async def lane_worker(workflow_env: WorkflowEnvironment) -> AsyncIterator[tuple[Client, str, World]]:
    world = World()
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        workflow_env.client,
        task_queue=task_queue,
        workflows=[LaneWorkflow, DeliveryWorkflow],
        activities=made_up_activities(world),
    ):
        yield workflow_env.client, task_queue, world


def item(event_id: str, endpoint_id: str, policy: DeliveryPolicy = POLICY) -> LaneItem:
    return LaneItem(
        event_id=event_id,
        delivery_id=ids.delivery_id(event_id, endpoint_id),
        webhook_type="invoice.created",
        created_at=datetime.now(UTC),
        policy=policy,
    )


async def enqueue(
    client: Client, task_queue: str, endpoint_id: str, *event_ids: str, policy: DeliveryPolicy = POLICY
) -> str:
    lane = LaneInput(tenant="t", endpoint_id=endpoint_id, ordering_key="k")
    workflow_id = ids.lane_workflow_id("t", endpoint_id, "k")
    for event_id in event_ids:
        await client.start_workflow(
            LaneWorkflow.run,
            lane,
            id=workflow_id,
            task_queue=task_queue,
            start_signal="enqueue",
            start_signal_args=[item(event_id, endpoint_id, policy)],
        )
    return workflow_id


async def view(client: Client, workflow_id: str) -> LaneView:
    return await client.get_workflow_handle_for(LaneWorkflow.run, workflow_id).query(LaneWorkflow.view)


async def until(check: object, what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.1)


async def test_a_lane_started_again_goes_on_numbering_from_the_store(
    lane_worker: tuple[Client, str, World],
) -> None:
    client, task_queue, world = lane_worker
    endpoint_id = f"ep_{uuid.uuid4().hex[:8]}"
    world.stored[ids.lane_key("k")] = 41  # a run before this one (terminated since) handed out 41
    workflow_id = await enqueue(client, task_queue, endpoint_id, "evt_a", "evt_b")

    async def both_sent() -> bool:
        return (await view(client, workflow_id)).sequence == 43 and len(world.posts) == 2

    await until(both_sent, "both delivered")
    assert [sequence for _id, sequence, _t in world.posts] == [42, 43]
    assert world.stored[ids.lane_key("k")] == 43


async def test_a_settled_signal_during_the_heads_start_is_not_lost(
    lane_worker: tuple[Client, str, World],
) -> None:
    client, task_queue, world = lane_worker
    endpoint_id = f"ep_{uuid.uuid4().hex[:8]}"
    world.hold_body = asyncio.Event()
    workflow_id = await enqueue(client, task_queue, endpoint_id, "evt_1", "evt_2")
    handle = client.get_workflow_handle_for(LaneWorkflow.run, workflow_id)

    async def starting() -> bool:
        lane = await view(client, workflow_id)
        return lane.head is not None and lane.head.delivery_id == ids.delivery_id("evt_1", endpoint_id)

    await until(starting, "the head recorded before its start resolves")
    # What the child says as it settles, delivered in the activation that resolves its start.
    await handle.signal(
        LaneWorkflow.settled,
        LaneSettled(delivery_id=ids.delivery_id("evt_1", endpoint_id), status=DeliveryStatus.SUCCEEDED),
    )
    world.hold_body.set()

    async def second_sent() -> bool:
        return any(d == ids.delivery_id("evt_2", endpoint_id) for d, _s, _t in world.posts)

    await until(second_sent, "the lane moved on to its second event")


async def test_a_head_whose_delivery_was_terminated_can_be_skipped(
    lane_worker: tuple[Client, str, World],
) -> None:
    client, task_queue, world = lane_worker
    endpoint_id = f"ep_{uuid.uuid4().hex[:8]}"
    world.failing.add("evt_x")
    workflow_id = await enqueue(client, task_queue, endpoint_id, "evt_x", "evt_y", policy=SLOW)
    handle = client.get_workflow_handle_for(LaneWorkflow.run, workflow_id)
    head = ids.delivery_id("evt_x", endpoint_id)

    async def started() -> bool:
        return any(d == head for d, _s, _t in world.posts)

    await until(started, "the head's first attempt")
    await client.get_workflow_handle(ids.delivery_workflow_id("t", head)).terminate("an operator")
    with pytest.raises(WorkflowUpdateFailedError) as refused:  # as far as the lane knows, it still runs
        await handle.execute_update(LaneWorkflow.skip, LaneSkip(delivery_id=head))
    assert "not blocked" in str(refused.value.cause)
    skipped = await handle.execute_update(LaneWorkflow.skip, LaneSkip(delivery_id=head, delivery_closed=True))
    assert skipped.head is not None and skipped.head.delivery_id == head

    async def next_sent() -> bool:
        return any(d == ids.delivery_id("evt_y", endpoint_id) for d, _s, _t in world.posts)

    await until(next_sent, "the event after the terminated head")


async def test_pass_over_waits_for_a_manual_retry_in_flight(lane_worker: tuple[Client, str, World]) -> None:
    client, task_queue, world = lane_worker
    endpoint_id = f"ep_{uuid.uuid4().hex[:8]}"
    world.failing.add("evt_h")
    workflow_id = await enqueue(client, task_queue, endpoint_id, "evt_h", "evt_n")
    head = ids.delivery_id("evt_h", endpoint_id)

    async def blocked() -> bool:
        return (await view(client, workflow_id)).blocked

    await until(blocked, "the lane blocked on its head")
    delivery = client.get_workflow_handle_for(DeliveryWorkflow.run, ids.delivery_workflow_id("t", head))
    world.hold_post = asyncio.Event()
    world.failing.discard("evt_h")
    await delivery.execute_update(DeliveryWorkflow.retry_now)

    async def posting() -> bool:
        return any(t == "manual" for _d, _s, t in world.posts)

    await until(posting, "the manual retry in flight")
    passing = await delivery.start_update(
        DeliveryWorkflow.pass_over, wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    await asyncio.sleep(1)
    assert not any(d == ids.delivery_id("evt_n", endpoint_id) for d, _s, _t in world.posts)
    world.hold_post.set()
    # The retry succeeded while the skip waited: not skipped, and the lane went on by itself, after it.
    assert await passing.result() is DeliveryStatus.SUCCEEDED

    async def next_sent() -> bool:
        return any(d == ids.delivery_id("evt_n", endpoint_id) for d, _s, _t in world.posts)

    await until(next_sent, "the next event, after the retry's answer")


def test_the_same_body_under_another_ordering_key_is_another_emission() -> None:
    from service.events import emission_sha256

    assert emission_sha256("{}", "cus_1") != emission_sha256("{}", "cus_2") != emission_sha256("{}", None)
    assert emission_sha256("{}", None) == emission_sha256("{}", None)


def test_two_lanes_blocking_in_the_same_millisecond_are_two_notices() -> None:
    at = datetime.now(UTC)
    assert ids.lane_blocked_event_id("ep_1", "a", 3, at) != ids.lane_blocked_event_id("ep_1", "b", 3, at)
    assert ids.lane_blocked_event_id("ep_1", "a", 3, at) != ids.lane_blocked_event_id("ep_1", "a", 4, at)


async def test_a_lane_whose_head_finds_its_endpoint_deleted_closes_out_its_queue_and_ends(
    lane_worker: tuple[Client, str, World],
) -> None:
    """The lane the API did not tell (one started by an emission in flight as the endpoint was deleted):
    its head fails as the endpoint is gone, the store says it is, and the lane ends instead of blocking."""
    client, task_queue, world = lane_worker
    endpoint_id = f"ep_{uuid.uuid4().hex[:8]}"
    world.deleted = True
    workflow_id = await enqueue(client, task_queue, endpoint_id, "evt_1", "evt_2", "evt_3")
    await asyncio.wait_for(client.get_workflow_handle(workflow_id).result(), timeout=30)
    assert world.closed_out == [ids.delivery_id(e, endpoint_id) for e in ("evt_2", "evt_3")]
    assert [d for d, _s, _t in world.posts] == [ids.delivery_id("evt_1", endpoint_id)]


async def test_a_lane_told_of_a_deletion_that_did_not_happen_goes_on(
    lane_worker: tuple[Client, str, World],
) -> None:
    """`endpoint_deleted` is checked against the store: a lane told by mistake neither ends nor sends
    its events outside their order."""
    client, task_queue, world = lane_worker
    endpoint_id = f"ep_{uuid.uuid4().hex[:8]}"
    world.failing.add("evt_a")
    workflow_id = await enqueue(client, task_queue, endpoint_id, "evt_a", "evt_b")

    async def blocked() -> bool:
        return (await view(client, workflow_id)).blocked

    await until(blocked, "the lane blocked on its head")
    await client.get_workflow_handle_for(LaneWorkflow.run, workflow_id).signal(LaneWorkflow.endpoint_deleted)
    world.failing.discard("evt_a")
    delivery = client.get_workflow_handle_for(
        DeliveryWorkflow.run, ids.delivery_workflow_id("t", ids.delivery_id("evt_a", endpoint_id))
    )
    await delivery.execute_update(DeliveryWorkflow.retry_now)

    async def next_sent() -> bool:
        return any(d == ids.delivery_id("evt_b", endpoint_id) for d, _s, _t in world.posts)

    await until(next_sent, "the event after the retried head")
    assert world.closed_out == []
