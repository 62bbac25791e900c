"""Recorded histories replay through the current workflow code (a non-deterministic change fails here).

The histories were recorded by tests/histories/record.py on a stack encrypting with the tests' fixed key
(tests/conftest.py), and replay with it: the same codec as production, with a key that is no secret.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from core.crypto import EncryptionCodec
from domain import search_attributes as sa
from domain.models import EventInput
from tests.conftest import TEST_KEYRING
from workflows.alert import AlertMailWorkflow
from workflows.delivery import DeliveryWorkflow
from workflows.event import EventWorkflow
from workflows.lane import LaneWorkflow
from workflows.recovery import RecoveryWorkflow

WORKFLOWS = [EventWorkflow, DeliveryWorkflow, RecoveryWorkflow, LaneWorkflow, AlertMailWorkflow]

HERE = Path(__file__).parent / "histories"
HISTORIES = sorted(p for p in HERE.glob("*.json") if p.name != "workflow-ids.json")
WORKFLOW_IDS: dict[str, str] = json.loads((HERE / "workflow-ids.json").read_text())


def test_there_are_histories_to_replay() -> None:
    assert len(HISTORIES) >= 6


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(TEST_KEYRING))
    replayer = Replayer(workflows=WORKFLOWS, data_converter=converter)
    history = WorkflowHistory.from_json(WORKFLOW_IDS[path.stem], path.read_text())
    await replayer.replay_workflow(history)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_with_the_tracing_interceptor(path: Path) -> None:
    """A worker that traces (core/tracing.py) replays the same histories: its interceptor makes no
    command, and no span while replaying."""
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(TEST_KEYRING))
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=converter,
        interceptors=[TracingInterceptor()],
    )
    history = WorkflowHistory.from_json(WORKFLOW_IDS[path.stem], path.read_text())
    await replayer.replay_workflow(history)


async def test_a_fanout_recorded_before_business_ids_replays_though_its_children_now_start_with_them() -> (
    None
):
    """The event workflow now starts each delivery with `WebhookObjectId` (history/visibility.py); its
    children recorded before that have none. Search attributes are not part of the command Temporal
    matches on replay, so no `workflow.patched` is needed: this checks the history does hold such a
    start, whose child today's code would index, and that it replays."""
    path = HERE / "v4_event_fanout_two_endpoints.json"
    recorded = json.loads(path.read_text())
    starts = [
        e["startChildWorkflowExecutionInitiatedEventAttributes"]
        for e in recorded["events"]
        if "startChildWorkflowExecutionInitiatedEventAttributes" in e
    ]
    assert starts
    for start in starts:
        attributes = start["searchAttributes"]["indexedFields"]
        assert "WebhookEventId" in attributes and "WebhookObjectId" not in attributes
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(TEST_KEYRING))
    [payload] = await converter.decode(
        WorkflowHistory.from_json("x", path.read_text())
        .events[0]
        .workflow_execution_started_event_attributes.input.payloads,
        [EventInput],
    )
    assert sa.business_ids(payload.body)[0] is not None  # today's code indexes it
    replayer = Replayer(workflows=[EventWorkflow, DeliveryWorkflow], data_converter=converter)
    await replayer.replay_workflow(WorkflowHistory.from_json(WORKFLOW_IDS[path.stem], path.read_text()))
