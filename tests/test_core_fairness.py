"""Priorities and tenant weights (domain/fairness.py)."""

from __future__ import annotations

import pytest
from temporalio.common import Priority

from core.settings import Settings
from domain.fairness import (
    PRIORITY_KEYS,
    TenantWeights,
    WorkKind,
    attempt_kind,
    for_tenant,
    ranks_after,
    with_kind,
)
from domain.models import AttemptTrigger, DeliveryOrigin

EVENT, TEST, REPLAY = DeliveryOrigin.EVENT, DeliveryOrigin.TEST, DeliveryOrigin.REPLAY
SCHEDULED, MANUAL, RECOVER = AttemptTrigger.SCHEDULED, AttemptTrigger.MANUAL, AttemptTrigger.RECOVER


@pytest.mark.parametrize(
    ("origin", "trigger", "first", "bulk", "kind"),
    [
        (EVENT, SCHEDULED, True, False, WorkKind.LIVE),  # an event's first attempt
        (TEST, SCHEDULED, True, False, WorkKind.LIVE),  # a test event
        (EVENT, MANUAL, False, False, WorkKind.LIVE),  # a manual retry of one delivery
        (REPLAY, MANUAL, False, False, WorkKind.LIVE),  # ... of a replayed one too
        (EVENT, SCHEDULED, False, False, WorkKind.RETRY),  # a scheduled retry
        (TEST, SCHEDULED, False, False, WorkKind.RETRY),
        (EVENT, MANUAL, False, True, WorkKind.BULK),  # "retry all"
        (EVENT, RECOVER, False, False, WorkKind.BULK),  # a recovery
        (REPLAY, SCHEDULED, True, False, WorkKind.BULK),  # a replay, first attempt to last
        (REPLAY, SCHEDULED, False, False, WorkKind.BULK),
    ],
)
def test_each_kind_of_attempt_has_its_priority(
    origin: DeliveryOrigin, trigger: AttemptTrigger, first: bool, bulk: bool, kind: WorkKind
) -> None:
    assert attempt_kind(origin, trigger, first=first, bulk=bulk) is kind


@pytest.mark.parametrize(
    ("origin", "trigger", "first", "bulk", "kind"),
    [
        (REPLAY, SCHEDULED, True, False, WorkKind.RETRY),  # a replayed event, the head of its lane
        (EVENT, RECOVER, False, False, WorkKind.RETRY),  # a blocked head, recovered
        (EVENT, MANUAL, False, True, WorkKind.RETRY),  # ... or retried with "retry all"
        (EVENT, SCHEDULED, True, False, WorkKind.LIVE),  # what is live stays live
        (EVENT, SCHEDULED, False, False, WorkKind.RETRY),
    ],
)
def test_an_ordered_lane_s_head_is_never_bulk_work(
    origin: DeliveryOrigin, trigger: AttemptTrigger, first: bool, bulk: bool, kind: WorkKind
) -> None:
    """Every later event of its key waits behind it, live ones too: at bulk priority it would wait for all
    live work, and they with it."""
    assert attempt_kind(origin, trigger, first=first, bulk=bulk, ordered=True) is kind


def test_live_goes_before_retries_before_bulk() -> None:
    assert PRIORITY_KEYS[WorkKind.LIVE] < PRIORITY_KEYS[WorkKind.RETRY] < PRIORITY_KEYS[WorkKind.BULK]


@pytest.mark.parametrize(
    ("priority_key", "after_live"),
    [(1, False), (2, True), (3, True), (5, True), (None, True)],  # None: started without one, ranked 3
)
def test_what_a_manual_retry_raises_to_the_live_priority(priority_key: int | None, after_live: bool) -> None:
    assert ranks_after(priority_key, WorkKind.LIVE) is after_live


def test_weights_from_the_setting() -> None:
    weights = TenantWeights.parse("acme:5, *:0.5,globex:1.5")
    assert (weights.of("acme"), weights.of("globex"), weights.of("initech")) == (5, 1.5, 0.5)
    assert TenantWeights.parse("").of("anyone") == 1.0
    assert Settings(tenant_weights="acme:5,*:1").weights.of("acme") == 5


@pytest.mark.parametrize("value", ["acme", "acme:", "acme:five", "acme:0", "acme:2000", "a cme:1", "*:-1"])
def test_a_weight_that_means_nothing_is_refused_with_the_form_to_use(value: str) -> None:
    with pytest.raises(ValueError, match=r"like acme:5,\*:1"):
        TenantWeights.parse(value)


def test_a_tenant_named_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="names acme twice"):
        TenantWeights.parse("acme:5,acme:1")


def test_a_tenant_starts_with_its_key_and_weight_and_activities_keep_them() -> None:
    weights = TenantWeights.parse("acme:5")
    started = for_tenant("acme", WorkKind.LIVE, weights)
    assert started == Priority(priority_key=1, fairness_key="acme", fairness_weight=5)
    assert for_tenant("acme", WorkKind.BULK, weights, fair=False) == Priority(priority_key=5)
    assert with_kind(Priority(priority_key=5), WorkKind.BULK, tenant="acme") == Priority(priority_key=5)
    assert with_kind(started, WorkKind.BULK, tenant="acme") == Priority(
        priority_key=5, fairness_key="acme", fairness_weight=5
    )
