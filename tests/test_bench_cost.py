"""What `make bench` bills (bench/cost.py): actions read from histories, and the Temporal Cloud bill
against the pricing page's own examples."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from bench.cost import (
    BUSINESS_ACTIONS_INCLUDED,
    BUSINESS_ACTIVE_GBH_INCLUDED,
    HistoryCost,
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
