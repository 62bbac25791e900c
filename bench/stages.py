"""Where the time from an event's 202 to the receiver's receipt goes, read from the two histories.

Temporal stamps every history event with the server's clock, on the machine the bench runs on, so an
event's workflow and its delivery's workflow split one delivery's latency into consecutive stages that
add up to it exactly:

- `accepted`: the client's 202 to the event's first workflow task scheduled (negative when the task
  was scheduled before the client read its 202);
- `event_task_wait`: that task scheduled to started: the task queue, matching handing it to a worker;
- `event_task_run`: started to completed: the worker runs the event workflow's first task;
- `child_start`: completed to the delivery's first workflow task scheduled: history's start-child
  transfer task creates the delivery;
- `delivery_task_wait` and `delivery_task_run`: the same two for the delivery's first task;
- `activity_wait`: completed to the attempt's activity started: the task queue, for the activity;
- `attempt`: started to the receiver's receipt: the activity before and during its POST.

Both designs (the product and bench/plain.py) take these same steps for a first-try delivery, so the
stages compare one to one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

STAGES = (
    "accepted",
    "event_task_wait",
    "event_task_run",
    "child_start",
    "delivery_task_wait",
    "delivery_task_run",
    "activity_wait",
    "attempt",
)


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e9


def _first(events: Iterable[HistoryEvent], kind: EventType.ValueType) -> HistoryEvent:
    for event in events:
        if event.event_type == kind:
            return event
    raise ValueError(f"no {EventType.Name(kind)} in the history")


def _first_task(events: Sequence[HistoryEvent]) -> tuple[float, float, float]:
    """When a workflow's first workflow task was scheduled, started and completed."""
    return (
        _seconds(_first(events, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)),
        _seconds(_first(events, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)),
        _seconds(_first(events, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)),
    )


def stages(
    event: Sequence[HistoryEvent], delivery: Sequence[HistoryEvent], *, accepted: float, received: float
) -> dict[str, float]:
    """Milliseconds in each of `STAGES` for one first-try delivery. `accepted` and `received` are Unix
    times: when the client had its 202, and when the receiver had the first attempt's request."""
    event_scheduled, event_started, event_completed = _first_task(event)
    delivery_scheduled, delivery_started, delivery_completed = _first_task(delivery)
    attempt_started = _seconds(_first(delivery, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED))
    marks = (
        accepted,
        event_scheduled,
        event_started,
        event_completed,
        delivery_scheduled,
        delivery_started,
        delivery_completed,
        attempt_started,
        received,
    )
    return {
        name: 1000 * (end - start)
        for name, (start, end) in zip(STAGES, itertools.pairwise(marks), strict=True)
    }
