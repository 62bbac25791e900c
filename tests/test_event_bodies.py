"""Where an attempt's body comes from now that a delivery's input carries none (docs/delivery.md, "Where
the payload is kept"): a worker's cache of events' bodies (`EventBodies`), read once per event however many
attempts ask together, and `deliver_once` given no body: it sends the event's exact body, its first
attempt's record keeps the delivery's own copy, and an event Temporal no longer keeps is an attempt that
says so, never a silent loss.

The reader given to `EventBodies` here is a function standing in for a history read (the unit under test
is the cache); the end-to-end test of the same path, through Temporal, is tests/test_body_kept_once.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import pytest
from standardwebhooks import Webhook
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.delivery import PAYLOAD_NOT_KEPT, DeliveryActivities
from core.crypto import EncryptionCodec, LaterForm, MissingKey
from core.signing import JwtSigner, load_or_create_rsa_key
from domain import ids
from domain.models import (
    AttemptOutcome,
    AttemptRecord,
    AttemptTrigger,
    DeliverRequest,
    DeliveryInput,
    DeliveryPolicy,
    DeliveryProgress,
    EventInput,
)
from history.events import EventBodies, converter_for, kept_body, read_delivery_body, read_event_input
from store.database import EndpointStore
from tests.conftest import TEST_KEYRING, add_endpoint
from tests.receiver import Receiver

BODY = '{"webhook_type":"invoice.created","object_type":"invoice","data":{"object":{"id":"inv_1"}}}'


class Events:
    """What Temporal would answer for each event's body, and how many times it was asked."""

    def __init__(self, bodies: dict[tuple[str, str], str], *, delay: float = 0.0) -> None:
        self.bodies = bodies
        self.delay = delay
        self.asked: list[tuple[str, str]] = []

    async def read(self, tenant: str, event_id: str) -> str | None:
        self.asked.append((tenant, event_id))
        await asyncio.sleep(self.delay)
        return self.bodies.get((tenant, event_id))


async def test_an_event_s_body_is_read_once_and_then_served_from_memory() -> None:
    events = Events({("t", "evt_1"): BODY})
    bodies = EventBodies(events.read)
    assert await bodies.get("t", "evt_1") == BODY
    assert await bodies.get("t", "evt_1") == BODY
    assert events.asked == [("t", "evt_1")]
    # Another tenant's event of the same id is another event.
    assert await bodies.get("u", "evt_1") is None
    assert events.asked == [("t", "evt_1"), ("u", "evt_1")]


async def test_a_body_kept_for_its_time_is_read_again_so_an_id_used_again_is_its_new_event_s() -> None:
    """An event id may be used again once its event's history is deleted (a day at the least): a worker
    that kept the first event's body for longer would send it for the second."""
    now = 0.0
    events = Events({("t", "evt_1"): BODY})
    bodies = EventBodies(events.read, max_age=3600, clock=lambda: now)
    assert await bodies.get("t", "evt_1") == BODY
    now = 3599.0
    assert await bodies.get("t", "evt_1") == BODY
    assert len(events.asked) == 1
    # A day later the id names another event, of another body.
    now = 86_400.0
    events.bodies[("t", "evt_1")] = BODY.replace("inv_1", "inv_2")
    assert await bodies.get("t", "evt_1") == BODY.replace("inv_1", "inv_2")
    assert len(events.asked) == 2 and len(bodies) == 1


async def test_attempts_of_one_fan_out_that_ask_together_share_one_read() -> None:
    events = Events({("t", "evt_1"): BODY}, delay=0.2)
    bodies = EventBodies(events.read)
    got = await asyncio.gather(*(bodies.get("t", "evt_1") for _ in range(5)))
    assert got == [BODY] * 5
    assert events.asked == [("t", "evt_1")]


async def test_an_event_no_longer_kept_is_not_remembered_as_such() -> None:
    events = Events({})
    bodies = EventBodies(events.read)
    assert await bodies.get("t", "gone") is None
    assert await bodies.get("t", "gone") is None
    assert len(events.asked) == 2 and len(bodies) == 0


async def test_a_failed_read_reaches_every_attempt_waiting_for_it_and_is_tried_again_next_time() -> None:
    calls = 0

    async def read(_tenant: str, _event_id: str) -> str | None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        if calls == 1:
            raise TimeoutError("Temporal did not answer")
        return BODY

    bodies = EventBodies(read)
    outcomes = await asyncio.gather(*(bodies.get("t", "evt_1") for _ in range(3)), return_exceptions=True)
    assert [type(o) for o in outcomes] == [TimeoutError] * 3
    assert await bodies.get("t", "evt_1") == BODY
    assert calls == 2


async def test_an_attempt_that_gives_up_waiting_fails_the_others_with_a_timeout_not_a_cancellation() -> None:
    gate = asyncio.Event()  # Temporal does not answer until the test says so
    reads = 0

    async def read(_tenant: str, _event_id: str) -> str | None:
        nonlocal reads
        reads += 1
        await gate.wait()
        return BODY

    bodies = EventBodies(read)
    first = asyncio.create_task(asyncio.wait_for(bodies.get("t", "evt_1"), 0.2))
    while reads == 0:  # the first attempt's read is under way: the second joins it
        await asyncio.sleep(0)
    second = asyncio.create_task(bodies.get("t", "evt_1"))
    outcomes = await asyncio.gather(first, second, return_exceptions=True)
    assert [type(o) for o in outcomes] == [TimeoutError, TimeoutError]
    gate.set()
    assert await bodies.get("t", "evt_1") == BODY  # read again, whole this time
    assert reads == 2


async def test_the_cache_keeps_the_most_recently_used_bodies_within_its_bytes() -> None:
    events = Events({("t", f"evt_{n}"): "x" * 400 for n in range(4)})
    bodies = EventBodies(events.read, max_bytes=1000)  # two bodies of 400 fit, not three
    for n in (0, 1):
        await bodies.get("t", f"evt_{n}")
    await bodies.get("t", "evt_0")  # used last: evt_1 is the least recently used now
    await bodies.get("t", "evt_2")
    assert len(bodies) == 2
    events.asked.clear()
    await bodies.get("t", "evt_0")
    await bodies.get("t", "evt_2")
    assert events.asked == []
    await bodies.get("t", "evt_1")
    assert events.asked == [("t", "evt_1")]
    # A body larger than the whole cache is served, never kept.
    big = EventBodies(Events({("t", "big"): "y" * 2000}).read, max_bytes=1000)
    assert await big.get("t", "big") == "y" * 2000 and len(big) == 0


def _record(n: int, body: str | None = None) -> AttemptRecord:
    return AttemptRecord(
        attempt=n,
        trigger=AttemptTrigger.SCHEDULED,
        started_at=datetime.now(UTC),
        duration_ms=1,
        outcome=AttemptOutcome.RETRYABLE,
        body=body,
    )


def test_a_delivery_s_own_copy_is_its_input_s_or_its_first_attempt_s() -> None:
    policy = DeliveryPolicy(retry_delays=[1.0], attempt_timeout=5)
    common = {
        "tenant": "t",
        "event_id": "evt_1",
        "endpoint_id": "ep_1",
        "delivery_id": "evt_1:ep_1",
        "webhook_type": "invoice.created",
        "created_at": datetime.now(UTC),
        "policy": policy,
    }
    # A delivery started before the body was kept once: its input's.
    assert kept_body(DeliveryInput(**common, body=BODY), [_record(1)]) == BODY
    # Now: none before its first attempt has ended, then that attempt's record's.
    started = DeliveryInput(**common)
    assert kept_body(started, []) is None
    assert kept_body(started, [_record(1, BODY), _record(2)]) == BODY
    # A run continued as new carries the record in its input.
    carried = DeliveryInput(**common, progress=DeliveryProgress(attempts=[_record(1, BODY)]))
    assert kept_body(carried, [_record(2)]) == BODY


@pytest.fixture
def signer(tmp_path: Path) -> JwtSigner:
    return JwtSigner.from_pem(load_or_create_rsa_key(tmp_path / "k.pem"), issuer="t")


def _request(endpoint_id: str, attempt: int, event_id: str = "evt_1") -> DeliverRequest:
    return DeliverRequest(
        tenant="t",
        endpoint_id=endpoint_id,
        delivery_id=f"{event_id}:{endpoint_id}",
        event_id=event_id,
        attempt=attempt,
        trigger=AttemptTrigger.SCHEDULED,
        timeout=5,
    )


def _env() -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, scheduled_time=datetime.now(UTC))
    return env


async def test_an_attempt_given_no_body_sends_the_event_s_and_only_its_first_record_keeps_it(
    store: EndpointStore, signer: JwtSigner
) -> None:
    events = Events({("t", "evt_1"): BODY})
    with Receiver() as receiver:
        endpoint = add_endpoint(store, "t", url=receiver.script("/in", []))
        async with httpx.AsyncClient() as http:
            activities = DeliveryActivities(http, store, signer, bodies=EventBodies(events.read))
            first = await _env().run(activities.deliver_once, _request(endpoint.id, 1))
            second = await _env().run(activities.deliver_once, _request(endpoint.id, 2))
        sent = receiver.requests("/in")
    assert first.outcome is AttemptOutcome.SUCCEEDED and second.outcome is AttemptOutcome.SUCCEEDED
    assert first.body == BODY and second.body is None
    assert [r.body for r in sent] == [BODY.encode()] * 2
    # Signed over the exact bytes sent, as a receiver checks them with its own library.
    for request in sent:
        Webhook(endpoint.secret).verify(request.body, request.headers)
    assert events.asked == [("t", "evt_1")]  # read once for both attempts


async def test_an_event_no_longer_kept_makes_an_attempt_that_says_so_and_sends_nothing(
    store: EndpointStore, signer: JwtSigner
) -> None:
    with Receiver() as receiver:
        endpoint = add_endpoint(store, "t", url=receiver.script("/in", []))
        async with httpx.AsyncClient() as http:
            activities = DeliveryActivities(http, store, signer, bodies=EventBodies(Events({}).read))
            record = await _env().run(activities.deliver_once, _request(endpoint.id, 1, "evt_gone"))
        assert receiver.requests("/in") == []
    # Logged as an attempt (the delivery's status, its filters and alerts see it), never dropped.
    assert record.outcome is AttemptOutcome.RETRYABLE
    assert record.error == PAYLOAD_NOT_KEPT and record.body is None


@pytest.mark.parametrize(
    "unreadable",
    [MissingKey("encrypted with key 'k2', which is not in WEBHOOKS_ENCRYPTION_KEYS"), LaterForm("form")],
)
async def test_an_event_this_worker_cannot_read_yet_fails_the_try_as_ours_and_sends_nothing(
    store: EndpointStore, signer: JwtSigner, unreadable: Exception
) -> None:
    """Sealed with a key this worker lacks, or by a later version: not an event no longer kept (an attempt
    logged as made, its delivery's schedule moved on), but a fault of ours, tried again until it reads."""

    async def read(tenant: str, event_id: str) -> str | None:
        raise unreadable

    with Receiver() as receiver:
        endpoint = add_endpoint(store, "t", url=receiver.script("/in", []))
        async with httpx.AsyncClient() as http:
            activities = DeliveryActivities(http, store, signer, bodies=EventBodies(read))
            with pytest.raises(ApplicationError, match="cannot read the event.s payload yet") as raised:
                await _env().run(activities.deliver_once, _request(endpoint.id, 1))
        assert receiver.requests("/in") == []
    assert raised.value.type == "PayloadNotYetReadable" and not raised.value.non_retryable


class _OneHistory:
    """A client whose every workflow's history starts with `started` (no payload codec: the input reads
    as it is), as `read_event_input` reads it; or with `sealed`, payloads our codec made, which its
    converter `sealing` opens in the context of the workflow read."""

    def __init__(
        self,
        started: EventInput | None = None,
        *,
        sealed: list[Payload] | None = None,
        sealing: DataConverter = pydantic_data_converter,
    ) -> None:
        self.namespace = "default"
        self.data_converter = sealing
        self._input = (
            sealed if sealed is not None else pydantic_data_converter.payload_converter.to_payloads([started])
        )

    def get_workflow_handle(self, workflow_id: str) -> _OneHistory:
        return self

    async def fetch_history_events(self, **_: object) -> AsyncIterator[HistoryEvent]:
        event = HistoryEvent(event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
        event.workflow_execution_started_event_attributes.input.payloads.extend(self._input)
        yield event


@pytest.mark.parametrize(("tenant", "event_id"), [("tenant_b", "evt_1"), ("tenant_a", "evt_2")])
async def test_an_event_workflow_holding_another_event_s_input_holds_no_event(
    tenant: str, event_id: str
) -> None:
    """The codec binds an input to its workflow by the id's SHA-256 when the short metadata is on
    (core/crypto.py): the read checks the event it opened is the one asked for, as defence in depth."""
    started = EventInput(
        tenant="tenant_a",
        event_id="evt_1",
        webhook_type="invoice.created",
        object_type="invoice",
        body=BODY,
        created_at=datetime.now(UTC),
        endpoint_ids=["ep_1"],
        policy=DeliveryPolicy(retry_delays=[], attempt_timeout=10, retry_window=3600),
    )
    client = cast(Client, _OneHistory(started))
    timeout = timedelta(seconds=5)
    assert await read_event_input(client, "tenant_a", "evt_1", rpc_timeout=timeout) == started
    assert await read_event_input(client, tenant, event_id, rpc_timeout=timeout) is None


async def test_a_delivery_workflow_holding_another_delivery_s_input_holds_no_body_of_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An input copied in from another delivery's history (by someone who can write to Temporal): the
    codec's binding refuses it, and the delivery has no copy of its own to send, as an event holding
    another's has no body (above): said once in the log, not an error every try makes again."""
    sealing = dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(TEST_KEYRING))
    started = DeliveryInput(
        tenant="tenant_a",
        event_id="evt_2",
        endpoint_id="ep_1",
        delivery_id="evt_2:ep_1",
        webhook_type="invoice.created",
        body=BODY,  # a delivery of before the body was kept once: its input holds it
        created_at=datetime.now(UTC),
        policy=DeliveryPolicy(retry_delays=[], attempt_timeout=10),
    )
    client = cast(Client, SimpleNamespace(data_converter=sealing, namespace="default"))
    made_for = converter_for(client, ids.delivery_workflow_id("tenant_a", "evt_2:ep_1"))
    history = cast(Client, _OneHistory(sealed=await made_for.encode([started]), sealing=sealing))
    timeout = timedelta(seconds=5)
    assert await read_delivery_body(history, "tenant_a", "evt_2:ep_1", rpc_timeout=timeout) == BODY
    with caplog.at_level(logging.WARNING, logger="history.events"):
        assert await read_delivery_body(history, "tenant_a", "evt_1:ep_1", rpc_timeout=timeout) is None
    [refused] = caplog.records
    assert refused.getMessage() == "delivery refused"
