"""What `make bench` bills (bench/cost.py): actions read from histories, and the Temporal Cloud bill
against the pricing page's own examples."""

from __future__ import annotations

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from bench.cost import (
    BUSINESS_ACTIONS_INCLUDED,
    BUSINESS_ACTIVE_GBH_INCLUDED,
    HistoryCost,
    ServerMetrics,
    actions_dollars,
    cloud_cost,
    history_cost,
)


def _cost(*kinds: EventType.ValueType) -> HistoryCost:
    events = [HistoryEvent(event_id=n, event_type=kind) for n, kind in enumerate(kinds, start=1)]
    return history_cost(WorkflowHistory(workflow_id="wf", events=events))


def test_a_signal_between_two_workflows_is_one_action_in_their_two_histories() -> None:
    total = _cost(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    )
    total += _cost(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )
    assert total.actions == {"workflow start": 2, "signal": 1}


def test_actions_are_priced_tier_by_tier_as_the_pricing_page_shows() -> None:
    # "11.25M Actions in excess of your plan's allocation": $250 + $225 + $50.
    assert actions_dollars(11.25e6) == pytest.approx(525)


def test_the_plans_allowances_come_off_before_anything_is_billed() -> None:
    # 500 k deliveries of 4 actions: 2 M actions, inside the 2.5 M included; 1 KB closed at once.
    small = cloud_cost(500_000, actions_per_delivery=4, history_bytes_per_delivery=1_000, open_days=0)
    assert (small.actions_dollars, small.active_dollars, small.retained_dollars) == (0, 0, 0)
    assert small.total == 500  # the Business plan's minimum, nothing else
    # 1 M deliveries of 4 actions: 1.5 M billed at $50 per million.
    assert cloud_cost(
        1e6, actions_per_delivery=4, history_bytes_per_delivery=1_000, open_days=0
    ).actions_dollars == pytest.approx(75)


def test_active_storage_is_bytes_times_the_hours_a_delivery_stays_open() -> None:
    # 10 M deliveries of 10 KB open 7 days: 100 GB for 168 h each, less the plan's 2.5 GB of 744 h.
    bill = cloud_cost(10e6, actions_per_delivery=0, history_bytes_per_delivery=10_000, open_days=7)
    assert bill.active_dollars == pytest.approx((100 * 7 * 24 - BUSINESS_ACTIVE_GBH_INCLUDED) * 0.042)
    # The plan is a tenth of the usage once that is above its minimum.
    assert bill.plan_dollars == pytest.approx(max(500, 0.1 * (bill.active_dollars + bill.retained_dollars)))
    assert BUSINESS_ACTIONS_INCLUDED == 2.5e6


# A dev server's exposition, cut down and in its own form (a counter's series named without `_total`): the
# counters the bench sums beside series whose names begin alike (a visibility family that ends like the
# persistence one, a histogram named after it, an error counter of the same service).
EXPOSITION = """\
# HELP action action counter
# TYPE action counter
action{action_type="grpc_StartWorkflowExecution",namespace="default"} 3
action{action_type="command_ScheduleActivityTask",namespace="default"} 2
action{action_type="command_ScheduleActivityTask",namespace="temporal-system"} 7
# HELP persistence_requests persistence_requests counter
# TYPE persistence_requests counter
persistence_requests{namespace="default",operation="AppendHistoryNodes"} 5
persistence_requests{namespace="default",operation="UpdateWorkflowExecution"} 4
persistence_requests{namespace="temporal-system",operation="UpdateWorkflowExecution"} 9
# HELP persistence_requests_latency persistence_requests_latency histogram
# TYPE persistence_requests_latency histogram
persistence_requests_latency_bucket{namespace="default",operation="AppendHistoryNodes",le="1"} 5
persistence_requests_latency_sum{namespace="default",operation="AppendHistoryNodes"} 2.5
persistence_requests_latency_count{namespace="default",operation="AppendHistoryNodes"} 5
# HELP visibility_persistence_requests visibility_persistence_requests counter
# TYPE visibility_persistence_requests counter
visibility_persistence_requests{operation="RecordWorkflowExecutionStarted"} 6
# HELP service_requests service_requests counter
# TYPE service_requests counter
service_requests{namespace="default",operation="PollActivityTaskQueue",service_name="matching"} 8
service_requests{namespace="default",operation="PollActivityTaskQueue",service_name="frontend"} 11
# HELP service_errors service_errors counter
# TYPE service_errors counter
service_errors{namespace="default",operation="PollActivityTaskQueue",service_name="matching"} 1
"""


async def test_the_server_s_counters_are_summed_from_their_own_lines_of_its_metrics() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=EXPOSITION))
    async with httpx.AsyncClient(transport=transport) as client:
        totals = await ServerMetrics("http://server/metrics").snapshot(client)
    assert totals == {
        "actions": 5,
        "actions:grpc_StartWorkflowExecution": 3,
        "actions:command_ScheduleActivityTask": 2,
        "persistence": 9,
        "persistence:AppendHistoryNodes": 5,
        "persistence:UpdateWorkflowExecution": 4,
        "visibility": 6,
        "visibility:RecordWorkflowExecutionStarted": 6,
        "matching:PollActivityTaskQueue": 8,
    }
