"""activities/recovery.py in isolation: what a replay may deliver, and a page tried again after a fault
of ours does not send what its earlier try sent. The pages against Temporal are tested end to end
(test_recovery_e2e.py)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.recovery import _each_once, operational_subject, replayable
from domain.models import DeliveryOrigin, DeliveryPolicy, EventInput


def _event(webhook_type: str = "invoice.created", **fields: Any) -> EventInput:
    values: dict[str, Any] = {
        "tenant": "acme",
        "event_id": "evt_1",
        "webhook_type": webhook_type,
        "object_type": webhook_type.split(".")[0],
        "body": json.dumps({"webhook_type": webhook_type, "data": {"object": {"id": "ep_1"}}}),
        "created_at": datetime(2026, 11, 27, tzinfo=UTC),
        "endpoint_ids": ["ep_2"],
        "policy": DeliveryPolicy(retry_delays=[1.0], attempt_timeout=5),
    }
    return EventInput(**{**values, **fields})


def test_a_replay_delivers_an_emitted_event_the_endpoint_was_not_sent() -> None:
    assert replayable(_event(), "ep_1")
    assert not replayable(_event(), "ep_2")  # it was meant for ep_2 when accepted: ep_2 has it
    assert not replayable(_event(origin=DeliveryOrigin.TEST), "ep_1")  # a test event was for one endpoint


def test_an_operational_event_is_never_replayed_to_the_endpoint_it_is_about() -> None:
    about_ep_1 = _event("webhook_endpoint.disabled")
    assert operational_subject(about_ep_1) == "ep_1"
    assert not replayable(about_ep_1, "ep_1")
    assert replayable(about_ep_1, "ep_3")  # a monitoring endpoint that names the type receives it
    assert operational_subject(_event()) is None  # a business event is about its object, not an endpoint
    assert operational_subject(_event("webhook_endpoint.failing", body="{}")) is None


async def test_a_page_tried_again_does_not_redo_what_its_earlier_try_did() -> None:
    calls: list[str] = []
    heartbeats: list[Any] = []

    def work(key: str, fail: bool) -> Any:
        async def run() -> str:
            calls.append(key)
            if fail:
                raise RuntimeError("Temporal did not answer")
            return "done"

        return run

    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.extend(details)
    with pytest.raises(RuntimeError):
        await env.run(_each_once, {"a": work("a", False), "b": work("b", True), "c": work("c", False)})
    assert heartbeats == [{"a": "done", "c": "done"}]

    # The next try is handed what the first one did, and makes only the rest.
    calls.clear()
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[heartbeats[-1]])
    outcomes = await env.run(
        _each_once, {"a": work("a", False), "b": work("b", False), "c": work("c", False)}
    )
    assert calls == ["b"]
    assert outcomes == {"a": "done", "b": "done", "c": "done"}
