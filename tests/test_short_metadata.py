"""`WEBHOOKS_PAYLOAD_SHORT_METADATA=true` end to end (issue 25, 3; docs/production.md): every payload is
written in the short form, and everything that reads them works as with the long form, through the real
API, worker and Temporal dev server: the delivery signed and received, the event and the delivery read
back, a manual retry, an event emitted again. The event's memo keeps no copy of `created_at` (its
`WebhookCreatedAt` holds it): a process that reads only the memo is older than any the setting allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from standardwebhooks import Webhook
from temporalio.api.common.v1 import Payload

from core.crypto import BOUND_TO, ENCODING, SHORT_KEY_ID
from core.temporal import connect
from domain import ids
from launcher import Stack
from tests.conftest import api_client, create_endpoint, emit, running_stack, settled, wait_delivery, wait_for
from tests.receiver import Receiver

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def short_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("short-metadata"), WEBHOOKS_PAYLOAD_SHORT_METADATA="true"
    ) as stack:
        yield stack


def _first_payloads(stack: Stack, workflow_id: str) -> tuple[list[Payload], dict[str, Payload]]:
    """The input payloads of a workflow's start, and its memo, as Temporal keeps them (still sealed)."""

    async def read() -> tuple[list[Payload], dict[str, Payload]]:
        client = await connect(stack.settings)
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            started = event.workflow_execution_started_event_attributes
            return list(started.input.payloads), dict(started.memo.fields)
        raise AssertionError(f"{workflow_id} has no history")

    return asyncio.run(read())


def test_with_the_short_metadata_every_reader_works_as_with_the_long_form(short_stack: Stack) -> None:
    with api_client(short_stack) as api, Receiver() as receiver:
        endpoint = create_endpoint(api, receiver.script("/short", []))
        data = {"object": {"id": "inv_short_1", "amount_due": "12.00"}}
        accepted = emit(api, "invoice.created", id="inv-short-1-created", data=data)
        delivery_id = f"{accepted['id']}:{endpoint['id']}"
        delivered = wait_delivery(api, delivery_id, settled)
        assert delivered["status"] == "succeeded"
        [received] = receiver.requests("/short")
        Webhook(endpoint["secret"]).verify(received.body, received.headers)

        # Both workflows' payloads in the short form: key id under `k`, the workflow id's digest under `w`.
        event_id = ids.event_workflow_id("tenant_a", accepted["id"])
        for workflow_id in (event_id, ids.delivery_workflow_id("tenant_a", delivery_id)):
            payloads, memo = _first_payloads(short_stack, workflow_id)
            for payload in [*payloads, *memo.values()]:
                assert set(payload.metadata) == {"encoding", SHORT_KEY_ID, BOUND_TO}, workflow_id
                assert payload.metadata["encoding"] == ENCODING
        # The memo holds what only it holds: the body's digest, which an emission again is checked against.
        assert set(_first_payloads(short_stack, event_id)[1]) == {"body_sha256"}

        # Read back: the event, the delivery's log.
        event = api.get(f"/v1/events/{accepted['id']}").json()
        assert event["payload"]["data"] == data
        assert delivered["payload"]["data"] == data and delivered["attempts"][0]["status_code"] == 200

        # Emitted again, the same body: the same event, accepted when it was; another body: refused.
        assert emit(api, "invoice.created", id="inv-short-1-created", data=data) == accepted
        other = {
            "id": "inv-short-1-created",
            "webhook_type": "invoice.created",
            "data": {"object": {"id": "x"}},
        }
        conflict = api.post("/v1/events", json=other)
        assert conflict.status_code == 409, conflict.text

        # A manual retry sends the same body again, signed afresh.
        assert api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").status_code == 202
        wait_for(lambda: len(receiver.requests("/short")) == 2, what="the manual retry")
        again = receiver.requests("/short")[1]
        assert again.body == received.body
        Webhook(endpoint["secret"]).verify(again.body, again.headers)
