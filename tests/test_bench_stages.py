"""`make bench`'s split of a delivery's latency into stages (bench/stages.py), on recorded histories."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from bench.stages import STAGES, stages

HISTORIES = Path(__file__).parent / "histories"


def _events(name: str) -> list[HistoryEvent]:
    return list(WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text()).events)


def _time(events: list[HistoryEvent], kind: EventType.ValueType) -> float:
    return next(e for e in events if e.event_type == kind).event_time.ToNanoseconds() / 1e9


def test_the_stages_of_a_recorded_delivery_follow_its_histories_and_add_up_to_its_latency() -> None:
    event = _events("v6_event_fanout_two_endpoints")
    delivery = _events("v6_delivery_jwt_first_try")
    started = _time(delivery, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    accepted = _time(event, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED) + 0.004
    received = started + 0.030
    split = stages(event, delivery, accepted=accepted, received=received)
    assert tuple(split) == STAGES
    assert sum(split.values()) == pytest.approx(1000 * (received - accepted))
    assert split["attempt"] == pytest.approx(30)
    # The event's first task, as the file has it: scheduled 02:35:41.404416750, started .410605108.
    assert split["event_task_wait"] == pytest.approx(6.188, abs=0.001)
    for stage in STAGES[1:]:  # only the first can be negative: a task scheduled before the 202 was read
        if stage != "child_start":  # these two histories are of different events
            assert split[stage] >= 0, stage


def test_a_delivery_without_an_attempt_says_what_is_missing() -> None:
    event = _events("v6_event_fanout_two_endpoints")
    with pytest.raises(ValueError, match="ACTIVITY_TASK_STARTED"):
        stages(event, event, accepted=0, received=0)
