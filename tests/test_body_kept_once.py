"""An event's body is kept once per event and once per delivery (issue 25, 3; docs/delivery.md, "Where the
payload is kept"), through the real API, worker and Temporal dev server.

Each history is decoded with the codec and every payload in it searched for a marker value of the body:
the event's history holds it once (its input), a delivery's once (its first attempt's record), an ordered
lane's once (its read of the event), whatever else happens (a manual retry, a replay). The log shows the
payload for an open delivery and for a closed one, the latter also once the event's history is deleted
(as Temporal does when the log's retention is over: the event closes at once, its deliveries days later).
Every body received is the event's exact body, its signature checked with `standardwebhooks`. Both
copies are kept compressed (then encrypted).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from standardwebhooks import Webhook
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus

from core.crypto import ENCODING
from core.temporal import connect
from domain import ids
from history.events import read_delivery_body
from history.visibility import event_query
from launcher import Stack
from tests.conftest import api_client, create_endpoint, emit, stack_env, wait_delivery, wait_for
from tests.receiver import Answer, Receiver

# A delivery's retry window here: it closes within seconds of its schedule's end, and is still open for
# the manual retry a test makes after reading the delivery and its workflow's status (6 s was too short
# for that on a loaded machine, where each of those calls can take up to the API's 2 s).
WINDOW_SECONDS = 12


@pytest.fixture(scope="module")
def window_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose deliveries close `WINDOW_SECONDS` after their schedule (the default keeps them open
    seven days)."""
    data_dir = tmp_path_factory.mktemp("kept-once")
    stack = Stack(
        stack_env(data_dir, WEBHOOKS_RETRY_WINDOW_SECONDS=str(WINDOW_SECONDS)),
        log_file=data_dir / "stack.log",
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def api(window_stack: Stack) -> Iterator[httpx.Client]:
    with api_client(window_stack) as client:
        yield client


def _payloads(message: Message) -> Iterator[Payload]:
    """Every payload anywhere in a history event: inputs, results, search attributes, memos, headers."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if isinstance(value, Message):
            items: list[Any] = [value]
        elif hasattr(value, "values"):  # a map of messages (search attributes, memo, header fields)
            items = list(value.values())
        else:  # a repeated field
            items = list(value)
        for item in items:
            yield from _payloads(item)


def opened_payloads(stack: Stack, workflow_id: str) -> list[tuple[Payload, Payload]]:
    """Every payload of every run of `workflow_id`, as Temporal keeps it and decoded by the codec."""

    async def read() -> list[tuple[Payload, Payload]]:
        client = await connect(stack.settings)
        codec = client.data_converter.payload_codec
        assert codec is not None
        found = []
        run_id: str | None = None
        while True:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
            for event in history.events:
                for payload in _payloads(event):
                    opened = payload
                    if payload.metadata.get("encoding") == ENCODING:
                        [opened] = await codec.decode([payload])
                    found.append((payload, opened))
            run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
            if not run_id:
                return found

    return asyncio.run(read())


def copies(stack: Stack, workflow_id: str, marker: str) -> int:
    """How many times `marker` appears in the decoded payloads of every run of `workflow_id`."""
    return sum(
        opened.data.decode("utf-8", errors="replace").count(marker)
        for _, opened in opened_payloads(stack, workflow_id)
    )


def kept_compressed(stack: Stack, workflow_id: str, marker: str) -> bool:
    """Whether every payload of `workflow_id` that holds `marker` is kept shorter than it reads: encryption
    alone makes it 28 bytes longer (AES-GCM's nonce and tag), so shorter is compressed."""
    holding = [
        (kept, opened)
        for kept, opened in opened_payloads(stack, workflow_id)
        if marker.encode() in opened.data
    ]
    return bool(holding) and all(
        kept.metadata.get("encoding") == ENCODING and len(kept.data) < opened.ByteSize()
        for kept, opened in holding
    )


def status(stack: Stack, workflow_id: str) -> WorkflowExecutionStatus | None:
    async def describe() -> WorkflowExecutionStatus | None:
        client = await connect(stack.settings)
        return (await client.get_workflow_handle(workflow_id).describe()).status

    return asyncio.run(describe())


def delete_event_history(stack: Stack, api: httpx.Client, event_id: str) -> None:
    """What Temporal does when the event's retention is over: its history deleted, the event unknown."""

    async def delete() -> None:
        client = await connect(stack.settings)
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=ids.event_workflow_id("tenant_a", event_id)),
            )
        )

    asyncio.run(delete())
    wait_for(
        lambda: api.get(f"/v1/events/{event_id}").status_code == 404, timeout=60, what="the event deleted"
    )


def exact_and_signed(receiver: Receiver, path: str, secret: str, payload: dict[str, Any]) -> list[bytes]:
    """The bodies `path` received, each checked: signed by `secret`, and the event's payload."""
    bodies = []
    for request in receiver.requests(path):
        assert Webhook(secret).verify(request.body, request.headers) == payload
        bodies.append(request.body)
    return bodies


def test_a_delivery_keeps_one_copy_and_its_log_shows_the_payload_open_closed_and_after_its_event(
    window_stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    stack = window_stack
    marker = f"kept-once-{uuid.uuid4().hex}"
    endpoint = create_endpoint(api, receiver.script("/once", [Answer(200)]))
    event_id = emit(api, data={"object": {"id": "inv_1", "note": marker}})["id"]
    payload = api.get(f"/v1/events/{event_id}").json()["payload"]
    assert payload["data"]["object"]["note"] == marker
    delivery_id = f"{event_id}:{endpoint['id']}"
    workflow_id = ids.delivery_workflow_id("tenant_a", delivery_id)

    # Open (in its retry window): the log shows the payload sent, which is the event's.
    opened = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    assert status(stack, workflow_id) is WorkflowExecutionStatus.RUNNING
    assert opened["payload"] == payload
    # A manual retry sends the same bytes, signed again.
    assert api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").status_code == 202
    wait_delivery(api, delivery_id, lambda d: len(d["attempts"]) == 2 and d["status"] == "succeeded")
    bodies = exact_and_signed(receiver, "/once", endpoint["secret"], payload)
    assert len(bodies) == 2 and bodies[0] == bodies[1]

    # Closed at the end of its window: the event's history holds the body once, the delivery's once (its
    # first attempt's record), whatever attempts it made; and its log still shows it.
    wait_for(
        lambda: status(stack, workflow_id) is WorkflowExecutionStatus.COMPLETED,
        timeout=WINDOW_SECONDS + 30,
        what="the delivery closed",
    )
    assert copies(stack, ids.event_workflow_id("tenant_a", event_id), marker) == 1
    assert copies(stack, workflow_id, marker) == 1
    # Both copies compressed before they were encrypted (WEBHOOKS_PAYLOAD_COMPRESSION, on by default).
    assert kept_compressed(stack, ids.event_workflow_id("tenant_a", event_id), marker)
    assert kept_compressed(stack, workflow_id, marker)
    closed = api.get(f"/v1/webhooks/deliveries/{delivery_id}").json()
    assert closed["payload"] == payload and len(closed["attempts"]) == 2
    # The event's history gone (its retention over): the closed delivery's log does not need it.
    delete_event_history(stack, api, event_id)
    after = api.get(f"/v1/webhooks/deliveries/{delivery_id}").json()
    assert after["payload"] == payload
    assert [a["status_code"] for a in after["attempts"]] == [200, 200]


def test_an_open_delivery_whose_event_is_gone_still_has_its_payload(
    window_stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    stack = window_stack
    marker = f"kept-once-{uuid.uuid4().hex}"
    # Failing: the delivery stays on its schedule, then in its window.
    endpoint = create_endpoint(api, receiver.script("/failing", [Answer(500)]), retry_schedule=[60])
    event_id = emit(api, data={"object": {"id": "inv_2", "note": marker}})["id"]
    payload = api.get(f"/v1/events/{event_id}").json()["payload"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: len(d["attempts"]) == 1)
    delete_event_history(stack, api, event_id)
    # Its log, and what its next attempt reads when no worker has the event in memory: its own copy.
    assert api.get(f"/v1/webhooks/deliveries/{delivery_id}").json()["payload"] == payload

    async def own_copy() -> str | None:
        client = await connect(stack.settings)
        return await read_delivery_body(client, "tenant_a", delivery_id, rpc_timeout=timedelta(seconds=10))

    kept = asyncio.run(own_copy())
    assert kept is not None and json.loads(kept) == payload
    # A manual retry still sends the exact body.
    receiver.script("/failing", [Answer(200)])
    assert api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").status_code == 202
    wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    assert len(exact_and_signed(receiver, "/failing", endpoint["secret"], payload)) == 2
    assert copies(stack, ids.delivery_workflow_id("tenant_a", delivery_id), marker) == 1


def test_an_ordered_endpoint_and_a_replay_send_the_exact_body_and_keep_one_copy(
    window_stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    stack = window_stack
    marker = f"kept-once-{uuid.uuid4().hex}"
    ordered = create_endpoint(api, receiver.script("/ordered", [Answer(200)]), ordered=True)
    # Disabled when the event is accepted: it misses it, and gets it by replay.
    missed = create_endpoint(api, receiver.script("/replayed", [Answer(200)]), enabled=False)
    since = datetime.now(UTC).isoformat()
    event_id = emit(api, data={"object": {"id": "inv_3", "note": marker}}, ordering_key="cus_kept")["id"]
    payload = api.get(f"/v1/events/{event_id}").json()["payload"]

    wait_delivery(api, f"{event_id}:{ordered['id']}", lambda d: d["status"] == "succeeded")
    [body] = exact_and_signed(receiver, "/ordered", ordered["secret"], payload)
    assert receiver.requests("/ordered")[0].headers["webhook-sequence"] == "1"
    lane = ids.lane_workflow_id("tenant_a", ordered["id"], "cus_kept")
    assert copies(stack, lane, marker) == 1  # the lane's read of the event, which finds it kept
    assert copies(stack, ids.delivery_workflow_id("tenant_a", f"{event_id}:{ordered['id']}"), marker) == 1

    api.patch(f"/v1/webhooks/endpoints/{missed['id']}", json={"enabled": True})
    query = event_query(
        tenant="tenant_a",
        accepted_since=datetime.fromisoformat(since),
        accepted_until=datetime.now(UTC) + timedelta(minutes=1),
        event_types=["invoice.created"],
    )

    async def visible() -> int:
        return (await (await connect(stack.settings)).count_workflows(query)).count

    wait_for(lambda: asyncio.run(visible()) >= 1, what="the event in visibility")
    started = api.post(f"/v1/webhooks/endpoints/{missed['id']}/replay", json={"since": since})
    assert started.status_code == 202, started.text
    replayed = wait_delivery(api, f"{event_id}:{missed['id']}", lambda d: d["status"] == "succeeded")
    assert replayed["origin"] == "replay" and replayed["payload"] == payload
    [again] = exact_and_signed(receiver, "/replayed", missed["secret"], payload)
    assert again == body
    assert copies(stack, ids.delivery_workflow_id("tenant_a", f"{event_id}:{missed['id']}"), marker) == 1
    assert copies(stack, ids.event_workflow_id("tenant_a", event_id), marker) == 1
