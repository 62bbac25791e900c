"""service/deliveries.py, in-process: what a delivery's log says of an attempt in progress from Temporal's
record of it (the end-to-end reads are test_lost_worker.py's and test_store_outage.py's)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.delivery import EarlierTries
from core.crypto import EncryptionCodec, Keyring, new_key_entry
from history.events import converter_for
from service.deliveries import NOTES_NOT_READABLE_YET, Deliveries
from store.database import EndpointStore
from tests.conftest import TEST_ENCRYPTION_KEYS

WORKFLOW_ID = "delivery:t:evt_1:ep_1"


def _client(keys: str) -> Client:
    """As much of a client as reading a description takes: its converter, sealing with `keys`."""
    converter = dataclasses.replace(
        pydantic_data_converter, payload_codec=EncryptionCodec(Keyring.parse(keys))
    )
    return cast(Client, SimpleNamespace(data_converter=converter, namespace="default"))


async def _in_progress_after_two_failed_tries(sealed_by: str, read_by: str, tmp_path: Path) -> EarlierTries:
    notes = EarlierTries(1, "the endpoint store could not be read").notes(2, fault="store down (try 2)")
    payloads = await converter_for(_client(sealed_by), WORKFLOW_ID).encode(notes)
    pending = PendingActivityInfo(
        attempt=3,
        state=PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED,
        heartbeat_details=Payloads(payloads=payloads),
    )
    description = cast(
        WorkflowExecutionDescription,
        SimpleNamespace(
            id=WORKFLOW_ID, raw_description=DescribeWorkflowExecutionResponse(pending_activities=[pending])
        ),
    )
    store = EndpointStore(f"sqlite:///{tmp_path / 'unused.db'}", Keyring.parse(read_by))
    deliveries = Deliveries(
        _client(read_by), store, rpc_timeout=timedelta(seconds=1), ui_base=None, cursor_keys=(b"k" * 32,)
    )
    found = await deliveries._attempt_in_progress(description, 1)
    store.close()
    assert found is not None
    return EarlierTries(found.infra_failures, found.infra_error)


async def test_an_attempt_s_failed_tries_say_why_from_their_notes(tmp_path: Path) -> None:
    earlier = await _in_progress_after_two_failed_tries(TEST_ENCRYPTION_KEYS, TEST_ENCRYPTION_KEYS, tmp_path)
    assert (earlier.faults, earlier.fault) == (2, "store down (try 2)")


async def test_tries_whose_notes_this_process_cannot_read_yet_were_not_lost(tmp_path: Path) -> None:
    """Mid-rotation, a worker with the new key made the tries; this API process is not given it yet. The
    notes are there: the tries ended and left them, and the log says so, not that a worker was lost."""
    rotated = f"{new_key_entry('rotated')},{TEST_ENCRYPTION_KEYS}"
    earlier = await _in_progress_after_two_failed_tries(rotated, TEST_ENCRYPTION_KEYS, tmp_path)
    assert (earlier.faults, earlier.fault) == (2, NOTES_NOT_READABLE_YET)
