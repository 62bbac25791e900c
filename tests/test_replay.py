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
