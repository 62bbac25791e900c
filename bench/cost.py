"""What a delivery costs Temporal, read from recorded histories and from the server's own metrics.

`history_cost` counts, in one workflow's history, the billable actions of Temporal Cloud as its
documentation lists them (docs.temporal.io/cloud/actions, read 2026-11-27; see BENCHMARKS.md), the
history events and their bytes, and the visibility records the server writes for them. `ServerMetrics`
reads the dev server's Prometheus endpoint, whose `action` counter is the server's own count of the
same actions, and whose persistence counters say how many writes the work took.

Not in any history: queries (the API makes none: it reads a delivery from its history), activity
heartbeats (`deliver_once` records one only for a try that failed on our side) and workflow-task
heartbeats (a local activity longer than the task timeout); none occurs in the bench's scenarios.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

LOCAL_ACTIVITY_MARKER = "core_local_activity"
CHANGE_VERSION = "TemporalChangeVersion"
_COUNTERS = frozenset({"action", "visibility_persistence_requests", "persistence_requests"})


@dataclass
class HistoryCost:
    actions: Counter[str] = field(default_factory=Counter)
    events: int = 0
    bytes: int = 0
    workflows: int = 0

    def __iadd__(self, other: HistoryCost) -> HistoryCost:
        self.actions.update(other.actions)
        self.events += other.events
        self.bytes += other.bytes
        self.workflows += other.workflows
        return self

    @property
    def total_actions(self) -> int:
        return sum(self.actions.values())


def history_cost(history: WorkflowHistory) -> HistoryCost:
    """Billable actions by kind, events and bytes of one workflow run's history."""
    cost = HistoryCost(events=len(history.events), workflows=1)
    local_activity_tasks: set[int] = set()
    for event in history.events:
        cost.bytes += event.ByteSize()
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            # A client's start, or the second of a child's two actions (its start, after the intent).
            cost.actions["workflow start"] += 1
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            cost.actions["child start (intent)"] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            cost.actions["activity"] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            retries = event.activity_task_started_event_attributes.attempt - 1
            if retries > 0:
                cost.actions["activity retry"] += retries
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                # All local activities of one workflow task are one action.
                local_activity_tasks.add(marker.workflow_task_completed_event_id)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            metering = event.workflow_task_completed_event_attributes.metering_metadata
            if metering.nonfirst_local_activity_execution_attempts:
                cost.actions["local activity retry"] += metering.nonfirst_local_activity_execution_attempts
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            cost.actions["timer"] += 1
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if set(fields) != {CHANGE_VERSION}:  # a patch's version marker is not billed
                cost.actions["search attribute upsert"] += 1
        elif kind in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
            EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        ):
            cost.actions["signal"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            cost.actions["update"] += 1
    if local_activity_tasks:
        cost.actions["local activities (per workflow task)"] += len(local_activity_tasks)
    return cost


class ServerMetrics:
    """Counters of the dev server's `/metrics` (started with `--metrics-port`), summed over labels."""

    def __init__(self, url: str, namespace: str = "default") -> None:
        self.url = url
        self.namespace = namespace

    async def snapshot(self, client: httpx.AsyncClient) -> dict[str, float]:
        """`actions`, `actions:<type>`, `visibility:<operation>`, `persistence:<operation>` so far."""
        text = (await client.get(self.url, timeout=10)).text
        totals: defaultdict[str, float] = defaultdict(float)
        for family in text_string_to_metric_families(text):
            if family.name not in _COUNTERS:
                continue
            for sample in family.samples:
                labels = sample.labels
                if sample.name != f"{family.name}_total":  # the parser names a counter's value so
                    continue
                if family.name == "action" and labels.get("namespace") == self.namespace:
                    totals["actions"] += sample.value
                    totals[f"actions:{labels.get('action_type', '')}"] += sample.value
                elif family.name == "visibility_persistence_requests":  # no namespace label
                    totals["visibility"] += sample.value
                    totals[f"visibility:{labels.get('operation', '')}"] += sample.value
                elif family.name == "persistence_requests" and labels.get("namespace") == self.namespace:
                    totals["persistence"] += sample.value
                    totals[f"persistence:{labels.get('operation', '')}"] += sample.value
        return dict(totals)


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
