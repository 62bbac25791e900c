"""What a delivery costs Temporal, read from recorded histories and from the server's own metrics.

`history_cost` counts, in one workflow's history, the billable actions of Temporal Cloud as its
documentation lists them (docs.temporal.io/cloud/actions, read 2026-11-27; see BENCHMARKS.md), the
history events and their bytes, and the visibility records the server writes for them. `ServerMetrics`
reads the dev server's Prometheus endpoint, whose `action` counter is the server's own count of the
same actions, and whose persistence counters say how many writes the work took.

Not in any history: queries (the API makes none: it reads a delivery from its history), activity
heartbeats (`deliver_once` records one for a try that failed on our side, and one every 2 s of a try
that lasts longer than that) and workflow-task heartbeats (a local activity longer than the task
timeout); none occurs in the bench's scenarios, whose receivers answer at once.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

LOCAL_ACTIVITY_MARKER = "core_local_activity"
CHANGE_VERSION = "TemporalChangeVersion"
_COUNTERS = frozenset(
    {"action", "visibility_persistence_requests", "persistence_requests", "service_requests"}
)
# The lines of those families in the server's exposition (its declarations and its counters' values): the
# page is about 800 KB of thousands of series, and parsing all of it took 170 ms of the bench's CPU per
# snapshot, several a second while the bench waits for the server to settle, on the cores it measures.
_COUNTER_LINES = tuple(
    prefix
    for name in sorted(_COUNTERS)
    for prefix in (f"{name}{{", f"{name} ", f"{name}_total", f"# TYPE {name} ", f"# HELP {name} ")
)


def counter_lines(text: str) -> str:
    """The lines of an exposition that belong to the counters `ServerMetrics` sums."""
    return "\n".join(line for line in text.splitlines() if line.startswith(_COUNTER_LINES)) + "\n"


@dataclass
class HistoryCost:
    actions: Counter[str] = field(default_factory=Counter)
    events: int = 0
    bytes: int = 0
    bytes_by_event: Counter[str] = field(default_factory=Counter)
    workflows: int = 0

    def __iadd__(self, other: HistoryCost) -> HistoryCost:
        self.actions.update(other.actions)
        self.events += other.events
        self.bytes += other.bytes
        self.bytes_by_event.update(other.bytes_by_event)
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
        kind = event.event_type
        size = event.ByteSize()
        cost.bytes += size
        cost.bytes_by_event[EventType.Name(kind).removeprefix("EVENT_TYPE_").lower()] += size
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
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            # Counted where the signal arrives, so once: a workflow's signal to another is also in the
            # sender's history (SignalExternalWorkflowExecutionInitiated). One that never arrives is not
            # counted; none of the bench's scenarios sends a signal.
            cost.actions["signal"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            cost.actions["update"] += 1
    if local_activity_tasks:
        cost.actions["local activities (per workflow task)"] += len(local_activity_tasks)
    return cost


async def runs_cost(client: Client, workflow_id: str) -> HistoryCost:
    """`history_cost` of every run of `workflow_id`: the latest, and each it continued as new from."""
    cost = HistoryCost()
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        cost += history_cost(history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
        if not run_id:
            return cost


class ServerMetrics:
    """Counters of the dev server's `/metrics` (started with `--metrics-port`), summed over labels."""

    def __init__(self, url: str, namespace: str = "default") -> None:
        self.url = url
        self.namespace = namespace

    async def snapshot(self, client: httpx.AsyncClient) -> dict[str, float]:
        """`actions`, `actions:<type>`, `visibility:<operation>`, `persistence:<operation>`, and
        `matching:<operation>` (requests to the matching service) so far."""
        text = counter_lines((await client.get(self.url, timeout=10)).text)
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
                elif (
                    family.name == "service_requests"
                    and labels.get("namespace") == self.namespace
                    and labels.get("service_name") == "matching"
                ):  # tasks through matching (an eager activity or workflow start skips it)
                    totals[f"matching:{labels.get('operation', '')}"] += sample.value
        return dict(totals)


@dataclass(frozen=True)
class DatabaseSize:
    """The dev server's SQLite database at one moment: `used`, the bytes of its pages that hold data (the
    file's pages less its free list) as a reader sees them, the WAL's pages not checkpointed yet included;
    `files`, the database file's and its WAL's sizes on disk; `by_table`, `used` by table and index."""

    used: int
    files: int
    by_table: dict[str, int]


def database_size(path: Path) -> DatabaseSize:
    """`path`'s size now, read through a read-only connection of our own beside the dev server's (SQLite's
    WAL mode lets a reader in; it writes nothing and never checkpoints).

    Used bytes, not the file's size, make the figure: the file grows by whole chunks and never shrinks,
    the WAL stays at its checkpoint size whatever it holds, and pages freed by the server's deleted tasks
    are reused. `dbstat` counts each table's pages (the B-trees' free space inside them included, as it
    is on disk)."""
    wal = path.with_name(path.name + "-wal")
    files = sum(p.stat().st_size for p in (path, wal) if p.exists())
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        by_table = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    return DatabaseSize(used=(pages - free) * page_size, files=files, by_table=by_table)


def database_growth(after: DatabaseSize, before: DatabaseSize, deliveries: int) -> dict[str, Any]:
    """What `deliveries` added to the database, per delivery: used bytes, file bytes, and by table (the
    tables that grew, largest first)."""
    grown = {
        name: (size - before.by_table.get(name, 0)) / deliveries
        for name, size in after.by_table.items()
        if size != before.by_table.get(name, 0)
    }
    return {
        "database_bytes_per_delivery": (after.used - before.used) / deliveries,
        "database_file_bytes_per_delivery": (after.files - before.files) / deliveries,
        "database_bytes_by_table_per_delivery": {
            name: round(size) for name, size in sorted(grown.items(), key=lambda kv: -kv[1])
        },
    }


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}


# Temporal Cloud's published prices (docs.temporal.io/cloud/pricing, "Pay-As-You-Go", as stored in
# temporalio/documentation docs/evaluate/temporal-cloud/pricing.mdx, read 2026-11-27): actions by monthly
# volume tier, storage by gigabyte-hour, and the Business plan: the greater of a minimum and a share of the
# usage, with allowances that are used before any usage is billed.
ACTION_TIERS = (  # (millions of actions in the tier, dollars per million)
    (5, 50.0),
    (5, 45.0),
    (10, 40.0),
    (30, 35.0),
    (50, 30.0),
    (100, 25.0),
)
ACTIVE_STORAGE_PER_GBH = 0.042
RETAINED_STORAGE_PER_GBH = 0.00105
GBH_PER_GB = 744  # how the pricing page turns a plan's GB allowance into GBh
BUSINESS_PLAN_MINIMUM = 500.0
BUSINESS_PLAN_SHARE = 0.10
BUSINESS_ACTIONS_INCLUDED = 2.5e6
BUSINESS_ACTIVE_GBH_INCLUDED = 2.5 * GBH_PER_GB
BUSINESS_RETAINED_GBH_INCLUDED = 100 * GBH_PER_GB
PRICES_READ_ON = "2026-11-27"
# How long a first-try delivery's history is held open (active storage) per lane: the product's runs
# through its retry window (7 days by default); with a window of 0, and in the plain design, it closes
# at once. Then it is retained for the log retention (30 days by default).
OPEN_DAYS = {"product_short": 7.0, "window0_short": 0.0, "local_first_short": 7.0, "plain": 0.0}
RETENTION_DAYS = 30.0


def actions_dollars(actions: float) -> float:
    """Pay-as-you-go price of a month's billable actions, tier by tier (beyond 200 M: the last tier's
    price; the page says to ask Sales)."""
    dollars, left = 0.0, actions / 1e6
    for size, price in ACTION_TIERS:
        used = min(left, size)
        dollars += used * price
        left -= used
    return dollars + left * ACTION_TIERS[-1][1]


@dataclass(frozen=True)
class CloudCost:
    actions: float
    active_dollars: float
    retained_dollars: float
    actions_dollars: float
    plan_dollars: float

    @property
    def total(self) -> float:
        return self.actions_dollars + self.active_dollars + self.retained_dollars + self.plan_dollars


def cloud_cost(
    deliveries: float,
    *,
    actions_per_delivery: float,
    history_bytes_per_delivery: float,
    open_days: float,
    retention_days: float = RETENTION_DAYS,
) -> CloudCost:
    """A month of `deliveries` on Temporal Cloud, Business plan, pay-as-you-go.

    In a steady month each delivery's history is held `open_days` in active storage (its schedule and
    retry window), then `retention_days` in retained storage: its bytes times those hours. The plan's
    allowances come off first; the plan itself is the greater of its minimum and its share of the usage.
    """
    gigabytes = deliveries * history_bytes_per_delivery / 1e9
    active_gbh = gigabytes * open_days * 24
    retained_gbh = gigabytes * retention_days * 24
    actions = deliveries * actions_per_delivery
    billed_actions = actions_dollars(max(0.0, actions - BUSINESS_ACTIONS_INCLUDED))
    active = max(0.0, active_gbh - BUSINESS_ACTIVE_GBH_INCLUDED) * ACTIVE_STORAGE_PER_GBH
    retained = max(0.0, retained_gbh - BUSINESS_RETAINED_GBH_INCLUDED) * RETAINED_STORAGE_PER_GBH
    plan = max(BUSINESS_PLAN_MINIMUM, BUSINESS_PLAN_SHARE * (billed_actions + active + retained))
    return CloudCost(actions, active, retained, billed_actions, plan)


def monthly_bills(costs: dict[str, Any]) -> dict[str, Any]:
    """Temporal Cloud's monthly bill at 1, 10 and 100 million first-try deliveries a month, per lane
    and endpoint count, from a run's measured actions and history bytes (its `costs`)."""
    bills: dict[str, Any] = {"prices_read_on": PRICES_READ_ON}
    for lane, fans in costs.items():
        for fan, cases in fans.items():
            first = cases.get("first_try")
            if first is None or lane not in OPEN_DAYS:
                continue
            for millions in (1, 10, 100):
                bill = cloud_cost(
                    millions * 1e6,
                    actions_per_delivery=first["actions_per_delivery"],
                    history_bytes_per_delivery=first["history_bytes_per_delivery"],
                    open_days=OPEN_DAYS[lane],
                )
                bills.setdefault(lane, {}).setdefault(fan, {})[f"{millions}M"] = {
                    "actions": bill.actions,
                    "actions_dollars": round(bill.actions_dollars),
                    "active_storage_dollars": round(bill.active_dollars),
                    "retained_storage_dollars": round(bill.retained_dollars),
                    "plan_dollars": round(bill.plan_dollars),
                    "total_dollars": round(bill.total),
                }
    return bills
