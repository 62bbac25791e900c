"""domain/ids.py: every id the service makes, and reading them back."""

from __future__ import annotations

import pytest

from domain import ids


def test_a_delivery_id_is_event_then_endpoint_and_reads_back() -> None:
    delivery = ids.DeliveryId("inv_1.created", "ep_abc")
    assert str(delivery) == ids.delivery_id("inv_1.created", "ep_abc") == "inv_1.created:ep_abc"
    assert ids.DeliveryId.parse(str(delivery)) == delivery


@pytest.mark.parametrize("value", ["no-colon", ":ep_abc", "evt_1:", ""])
def test_what_is_not_a_delivery_id(value: str) -> None:
    assert ids.DeliveryId.parse(value) is None


def test_workflow_ids_carry_the_tenant() -> None:
    delivery = ids.DeliveryId("evt_1", "ep_1")
    assert ids.event_workflow_id("acme", "evt_1") == "event:acme:evt_1"
    assert ids.delivery_workflow_id("acme", delivery) == "delivery:acme:evt_1:ep_1"
    assert ids.delivery_of_workflow("delivery:acme:evt_1:ep_1") == delivery
    assert ids.delivery_of_workflow("event:acme:evt_1") is None
    # One workflow id per endpoint, whose runs are its recoveries: one at a time.
    assert ids.recovery_workflow_id("acme", "ep_1") == "recovery:acme:ep_1"
    assert ids.delivery_of_workflow("recovery:acme:ep_1") is None


def test_new_ids_are_prefixed_and_distinct() -> None:
    assert ids.new_event_id().startswith("evt_") and ids.new_endpoint_id().startswith("ep_")
    assert ids.new_recovery_id().startswith("rec_") and ids.new_recovery_id() != ids.new_recovery_id()
    assert len({ids.new_event_id() for _ in range(100)}) == 100


def test_a_test_events_id_says_so() -> None:
    made = ids.new_test_event_id()
    assert made.startswith("test_") and ids.is_test_event_id(made)
    assert made != ids.new_test_event_id()
    assert not ids.is_test_event_id(ids.new_event_id())
    assert not ids.is_test_event_id("TEST_1")  # what receivers look for is exactly `test_`
