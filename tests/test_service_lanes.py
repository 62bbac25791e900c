"""Telling a deleted endpoint's lanes (service/lanes.py), with the Temporal client faked: the one function
under test is how long a DELETE may spend on it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import pytest
from temporalio.client import Client

from service.lanes import TELL_AT_ONCE, Lanes
from store.database import EndpointStore


@dataclass
class _Execution:
    id: str


class _SlowTemporal:
    """A Temporal that lists `count` running lanes and takes `seconds` to take each signal: every call
    within its RPC timeout, the whole many times longer."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.seconds = seconds
        self.signalled: list[str] = []

    async def _executions(self) -> AsyncIterator[_Execution]:
        for n in range(self.count):
            yield _Execution(f"lane-{n}")

    def list_workflows(self, query: str, **_: Any) -> AsyncIterator[_Execution]:
        return self._executions()

    def get_workflow_handle_for(self, _run: Any, workflow_id: str) -> Any:
        temporal = self

        class Handle:
            async def signal(self, *_: Any, **__: Any) -> None:
                await asyncio.sleep(temporal.seconds)
                temporal.signalled.append(workflow_id)

        return Handle()


async def test_a_delete_stops_telling_lanes_at_its_deadline_and_says_how_many_were_told(
    store: EndpointStore, caplog: pytest.LogCaptureFixture
) -> None:
    # Ten batches of 0.3 s each against a deadline of two 0.3 s RPC timeouts.
    temporal = _SlowTemporal(count=10 * TELL_AT_ONCE, seconds=0.3)
    lanes = Lanes(cast(Client, temporal), store, rpc_timeout=timedelta(seconds=0.3))
    with caplog.at_level(logging.WARNING, logger="webhooks.lanes"):
        await lanes.end("t", "ep_many_keys")
    told = len(temporal.signalled)
    assert told < temporal.count, "the delete was answered while lanes were still untold"
    [record] = [r for r in caplog.records if "not all told" in r.getMessage()]
    assert f"({told} were)" in record.getMessage()
    assert "TimeoutError" in record.getMessage()


async def test_every_lane_is_told_when_there_is_time(store: EndpointStore) -> None:
    temporal = _SlowTemporal(count=2 * TELL_AT_ONCE + 3, seconds=0)
    lanes = Lanes(cast(Client, temporal), store, rpc_timeout=timedelta(seconds=30))
    await lanes.end("t", "ep_some_keys")
    assert sorted(temporal.signalled) == sorted(f"lane-{n}" for n in range(temporal.count))
