"""A delivery's log read between an attempt's completion and the workflow task that takes it in.

The log reads a running delivery without a worker: its attempts from history, its status from the
search attributes the workflow publishes. The workflow publishes them in the task after the attempt's
completion is written; a log read in between showed the new attempt beside the status of the one before
(one run beside a CPU hog saw a succeeded recover attempt under "failed").

Here that window is held open for real: the delivery runs on a task queue of the test's own, whose
workflow worker stops while the attempt is in flight, so the attempt's completion waits in history for a
workflow task no worker takes. The log is read through the stack's API.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.delivery import DeliveryActivities
from core.temporal import connect
from domain import ids
from domain import search_attributes as sa
from domain.models import DeliveryState
from launcher import Stack
from store.database import EndpointStore
from store.keys import jwt_signer
from tests.conftest import create_endpoint, delivery, settled, wait_delivery, wait_for
from tests.own_queue import start_delivery
from tests.receiver import Answer, Receiver
from workflows.delivery import DeliveryWorkflow

# Long enough for the workflow worker to stop while the POST is in flight (asserted below); within the
# attempt's timeout (10 s).
RECEIVER_HOLDS = 5.0


async def _until_completed_twice(handle: WorkflowHandle[DeliveryWorkflow, DeliveryState]) -> None:
    """Wait until the history holds the completion of both attempts."""
    for _ in range(600):
        history = await handle.fetch_history()
        done = [e for e in history.events if e.event_type is EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
        if len(done) == 2:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the retry's completion never reached history")


async def test_a_retry_in_history_before_its_workflow_task_shows_its_own_status(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    path = f"/between-{uuid.uuid4().hex[:6]}"
    # The schedule's one attempt fails; the retry by hand succeeds, slowly.
    url = receiver.script(path, [Answer(500), Answer(200, delay=RECEIVER_HOLDS)])
    endpoint = create_endpoint(api, url)
    client = await connect(stack.settings)
    store = EndpointStore(stack.settings.sqlalchemy_url, stack.settings.keyring)
    task_queue = f"between-{uuid.uuid4()}"
    handle: WorkflowHandle[DeliveryWorkflow, DeliveryState] | None = None
    try:
        async with httpx.AsyncClient() as http:
            activities = DeliveryActivities(http, store, jwt_signer(stack.settings, store), client=client)
            async with Worker(client, task_queue=task_queue, activities=[activities.deliver_once]):
                async with Worker(client, task_queue=task_queue, workflows=[DeliveryWorkflow]):
                    handle = await start_delivery(client, task_queue, endpoint["id"])
                    delivery_id = str(ids.delivery_of_workflow(handle.id))
                    failed = await asyncio.to_thread(wait_delivery, api, delivery_id, settled)
                    assert (failed["status"], failed["attempt_count"]) == ("failed", 1), failed
                    retry = f"/v1/webhooks/deliveries/{delivery_id}/retry"
                    retried = await asyncio.to_thread(api.post, retry)
                    assert retried.status_code == 202, retried.text
                    await asyncio.to_thread(
                        wait_for, lambda: receiver.requests(path)[1:], what="the retry's POST"
                    )
                # No workflow worker from here: the attempt ends, its completion is written, and the task
                # that would publish its status waits.
                await _until_completed_twice(handle)
                found = await asyncio.to_thread(delivery, api, delivery_id)
                # Still in the window when read: the workflow has published one attempt, not two (else
                # the workflow worker took the task before it stopped, and this test proves nothing).
                published = (await handle.describe()).typed_search_attributes.get(sa.ATTEMPT_COUNT)
                assert published == 1, "the workflow task ran: no window to read in"
                assert [a["status_code"] for a in found["attempts"]] == [500, 200]
                assert found["status"] == "succeeded", found["attempts"]
                assert (found["attempt_count"], found["last_status_code"]) == (2, 200)
                # Nothing in progress and nothing scheduled: the retry settled it.
                assert (found["attempt_in_progress"], found["next_attempt_at"]) == (None, None)
    finally:
        if handle is not None:
            with contextlib.suppress(RPCError):
                await handle.terminate("the test is over")
        store.close()
