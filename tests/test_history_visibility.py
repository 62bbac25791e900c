"""history/visibility.py and service/pages.py: visibility queries, delivery statuses, list cursors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from domain import search_attributes as sa
from domain.models import (
    AttemptOutcome,
    AttemptRecord,
    AttemptTrigger,
    DeliveryInput,
    DeliveryPolicy,
    DeliveryStatus,
)
from history import visibility
from service import pages
from service.errors import InvalidInput

KEY = b"k" * 32


def test_a_query_has_every_filter_and_never_a_continued_run() -> None:
    query = visibility.delivery_query(
        tenant="a'cme",
        endpoint_id="ep_1",
        status=DeliveryStatus.FAILED,
        event_type="invoice.created",
        created_since=datetime(2026, 11, 27, tzinfo=UTC),
    )
    assert query.startswith("WorkflowType = 'DeliveryWorkflow' AND ExecutionStatus != 'ContinuedAsNew'")
    assert "WebhookTenant = 'a\\'cme'" in query  # quoted, so a value cannot end the string
    assert "WebhookEndpointId = 'ep_1'" in query
    assert "WebhookEventType = 'invoice.created'" in query
    assert "WebhookCreatedAt >= '2026-11-27T00:00:00Z'" in query
    # Failed: settled as failed, or ended without settling.
    assert "(WebhookDeliveryStatus = 'failed' OR (WebhookDeliveryStatus = 'pending' AND" in query


def test_a_window_of_deliveries_still_or_no_longer_running() -> None:
    since, until = datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)
    query = visibility.delivery_query(created_since=since, created_until=until, running=True)
    assert (
        "WebhookCreatedAt >= '2026-11-26T00:00:00Z' AND WebhookCreatedAt <= '2026-11-27T00:00:00Z'" in query
    )
    assert query.endswith("ExecutionStatus = 'Running'")
    assert visibility.delivery_query(running=False).endswith("ExecutionStatus != 'Running'")
    assert "WebhookEventId IN ('e1', 'e\\'2')" in visibility.delivery_query(event_ids=["e1", "e'2"])


def test_a_created_window_must_not_end_before_it_starts() -> None:
    start, end = datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)
    for after, before in ((start, end), (start, start), (None, end), (start, None), (None, None)):
        pages.check_created_window(after, before)
    with pytest.raises(InvalidInput, match="swap them") as refused:
        pages.check_created_window(end, start)
    assert (refused.value.field, refused.value.location) == (("created_after",), "query")
    # Year 1 at +01:00 is no time in UTC: a 422, never the OverflowError (a 500) that reaching it would be.
    first = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(InvalidInput, match="out of range") as out:
        pages.check_created_window(None, first)
    assert out.value.field == ("created_before",)


def test_events_of_a_window_and_types() -> None:
    query = visibility.event_query(
        tenant="acme",
        accepted_since=datetime(2026, 11, 26, tzinfo=UTC),
        accepted_until=datetime(2026, 11, 27, tzinfo=UTC),
        event_types=["invoice.created", "customer.updated"],
    )
    assert query == (
        "WorkflowType = 'EventWorkflow' AND WebhookTenant = 'acme' AND StartTime >= '2026-11-26T00:00:00Z' "
        "AND StartTime <= '2026-11-27T00:00:00Z' AND WebhookEventType IN ('invoice.created', "
        "'customer.updated')"
    )


def test_recoveries_of_an_endpoint() -> None:
    query = visibility.recovery_query(tenant="acme", endpoint_id="ep_1", recovery_id="rec_1")
    assert query == (
        "WorkflowType = 'RecoveryWorkflow' AND ExecutionStatus != 'ContinuedAsNew' AND WebhookTenant = "
        "'acme' AND WebhookEndpointId = 'ep_1' AND WebhookRecoveryId = 'rec_1'"
    )


def _attrs(status: str) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(sa.DELIVERY_STATUS, status)])


def test_a_workflow_that_ended_without_settling_is_failed() -> None:
    running, terminated = WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.TERMINATED
    assert visibility.status_of(_attrs("pending"), running) is DeliveryStatus.PENDING
    assert visibility.status_of(_attrs("pending"), terminated) is DeliveryStatus.FAILED
    assert visibility.status_of(_attrs("succeeded"), terminated) is DeliveryStatus.SUCCEEDED


SCHEDULED, MANUAL = AttemptTrigger.SCHEDULED, AttemptTrigger.MANUAL
OK, FAIL, GONE = AttemptOutcome.SUCCEEDED, AttemptOutcome.RETRYABLE, AttemptOutcome.GONE
NEXT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
# A schedule of one retry: two scheduled attempts.
STARTED = DeliveryInput(
    tenant="t",
    event_id="evt_1",
    endpoint_id="ep_1",
    delivery_id="evt_1:ep_1",
    webhook_type="invoice.created",
    created_at=NEXT,
    policy=DeliveryPolicy(retry_delays=[60.0], attempt_timeout=5),
)


def _tried(*attempts: tuple[AttemptTrigger, AttemptOutcome]) -> list[AttemptRecord]:
    return [
        AttemptRecord(attempt=n, trigger=trigger, started_at=NEXT, duration_ms=1, outcome=outcome)
        for n, (trigger, outcome) in enumerate(attempts, 1)
    ]


def _read(
    status: str,
    count: int | None,
    *attempts: tuple[AttemptTrigger, AttemptOutcome],
    execution: WorkflowExecutionStatus = WorkflowExecutionStatus.RUNNING,
) -> tuple[DeliveryStatus, datetime | None]:
    """What the log reads: the attributes published after `count` attempts, beside `attempts`."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.DELIVERY_STATUS, status),
        SearchAttributePair(sa.NEXT_ATTEMPT_AT, NEXT),
    ]
    if count is not None:
        pairs.append(SearchAttributePair(sa.ATTEMPT_COUNT, count))
    read = visibility.status_beside(STARTED, _tried(*attempts), TypedSearchAttributes(pairs), execution)
    return read.status, read.next_attempt_at


def test_an_attempt_history_holds_before_the_workflow_publishes_it_reads_as_the_workflow_holds_it() -> None:
    pending, failed, succeeded = DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED
    # Published: the attributes say it, running or closed (terminated while pending: failed).
    assert _read("pending", 1, (SCHEDULED, FAIL)) == (pending, NEXT)
    assert _read("pending", 1, (SCHEDULED, FAIL), execution=WorkflowExecutionStatus.TERMINATED) == (
        failed,
        NEXT,
    )
    # Nothing to compare with (no count published): the attributes.
    assert _read("pending", None, (SCHEDULED, OK)) == (pending, NEXT)

    # One attempt more than published. A success or a 410 settles it, whatever came before.
    assert _read("failed", 2, (SCHEDULED, FAIL), (SCHEDULED, FAIL), (MANUAL, OK)) == (succeeded, None)
    assert _read("pending", 0, (SCHEDULED, GONE)) == (failed, None)
    # A failed scheduled attempt: pending while retries are left, its next one still to be chosen; failed
    # after the last.
    assert _read("pending", 0, (SCHEDULED, FAIL)) == (pending, None)
    assert _read("pending", 1, (SCHEDULED, FAIL), (SCHEDULED, FAIL)) == (failed, None)
    # A failed retry by hand: during the schedule, pending and its next attempt unchanged; once the
    # schedule is over (failed, or succeeded and sent again), failed.
    assert _read("pending", 1, (SCHEDULED, FAIL), (MANUAL, FAIL)) == (pending, NEXT)
    assert _read("failed", 2, (SCHEDULED, FAIL), (SCHEDULED, FAIL), (MANUAL, FAIL)) == (failed, None)
    assert _read("succeeded", 1, (SCHEDULED, OK), (MANUAL, FAIL)) == (failed, None)


def test_a_cursor_reads_back_for_its_tenant_only() -> None:
    cursor = pages.encode_cursor(b"temporal page token", tenant="acme", key=KEY)
    assert pages.decode_cursor(cursor, tenant="acme", keys=(KEY,)) == b"temporal page token"
    # Made with the key of another replica's current encryption key, which this one lists second.
    assert pages.decode_cursor(cursor, tenant="acme", keys=(b"x" * 32, KEY)) == b"temporal page token"
    for tenant, keys, value in (
        ("other", (KEY,), cursor),
        ("acme", (b"x" * 32,), cursor),
        ("acme", (KEY,), "x" + cursor),
    ):
        with pytest.raises(InvalidInput) as refused:
            pages.decode_cursor(value, tenant=tenant, keys=keys)
        assert refused.value.location == "query" and refused.value.field == ("cursor",)


def _body(webhook_type: str, data_object: object) -> str:
    return json.dumps(
        {
            "webhook_type": webhook_type,
            "object_type": webhook_type.split(".")[0],
            "data": {"object": data_object},
        }
    )


@pytest.mark.parametrize(
    ("webhook_type", "data_object", "expected"),
    [
        ("invoice.created", {"id": "inv_1", "customer_id": "cus_7"}, ("inv_1", "cus_7")),
        ("customer.updated", {"id": "cus_7", "external_id": "acme"}, ("cus_7", "cus_7")),
        ("customer.checkout_url_generated", {"customer_id": "cus_7"}, (None, "cus_7")),
        ("billable_metric.created", {"id": 42}, ("42", None)),  # a number is an id too
        ("invoice.created", {"id": "has space", "customer_id": "x" * 129}, (None, None)),  # not indexed
        ("invoice.created", {"id": True, "customer_id": {"id": "cus_7"}}, (None, None)),
        ("invoice.created", ["not", "an", "object"], (None, None)),
    ],
)
def test_an_event_is_indexed_by_its_object_and_customer(
    webhook_type: str, data_object: object, expected: tuple[str | None, str | None]
) -> None:
    assert sa.business_ids(_body(webhook_type, data_object)) == expected


def test_a_delivery_starts_with_its_business_ids() -> None:
    pairs = visibility.business_search_attributes(
        _body("invoice.created", {"id": "inv_1", "customer_id": "c"})
    )
    assert [(p.key.name, p.value) for p in pairs] == [
        ("WebhookObjectId", "inv_1"),
        ("WebhookCustomerId", "c"),
    ]
    assert visibility.business_search_attributes(_body("events.errors", {"event_name": "x"})) == []


def test_a_search_by_business_object_is_exact_or_a_prefix() -> None:
    business = visibility.BusinessIds(object_id="inv_00", object_id_prefix=True, customer_id="cus_7")
    query = visibility.delivery_query(tenant="acme", business=business)
    assert query.endswith("WebhookObjectId STARTS_WITH 'inv_00' AND WebhookCustomerId = 'cus_7'")
    events = visibility.events_listed(tenant="acme", business=visibility.BusinessIds(object_id="inv_1"))
    assert events == (
        "WorkflowType = 'EventWorkflow' AND WebhookTenant = 'acme' "
        "AND WebhookCreatedAt >= '1970-01-01T00:00:00Z' AND WebhookObjectId = 'inv_1'"
    )


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        ("*", "object_id is empty"),
        ("x" * 129 + "*", "longer than 128"),
        ("inv 1", "letters, digits"),
        ("inv_*0", r"one \* at the end"),
        ("inv'1", "letters, digits"),
    ],
)
def test_a_search_that_could_find_nothing_says_what_to_fix(value: str, fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        sa.business_id_search(value, "object_id")
    assert sa.business_id_search("inv_0042", "object_id") == ("inv_0042", False)
