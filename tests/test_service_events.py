"""`service.events` on its own: what it refuses before anything reaches Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.client import Client, WorkflowExecution
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.converter import DataConverter, encode_search_attributes

from core.crypto import MissingKey
from core.settings import Settings
from domain import search_attributes as sa
from service.errors import PayloadTooLarge
from service.events import Events, accepted_at
from service.models import EventSubmission
from store.database import EndpointStore
from store.health import OwedNotice, Transition
from tests.conftest import TEST_ENCRYPTION_KEYS, add_endpoint

START = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


class NoTemporal:
    """Stands in for the Temporal client where the test expects a refusal before any call to it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Temporal was called ({name}) for an event that should have been refused")


async def test_the_fan_out_budget_counts_the_body_as_each_delivery_stores_it(store: EndpointStore) -> None:
    """A body of backslashes is twice its size once stored as each delivery's JSON string: 100 copies of
    260 KB are 26 MB as sent, 52 MB as stored, past what one event's history may hold."""
    for n in range(100):
        add_endpoint(store, "acme", url=f"https://example.com/{n}")
    settings = Settings(api_keys="acme:k", encryption_keys=TEST_ENCRYPTION_KEYS)
    events = Events(cast(Client, NoTemporal()), store, settings)
    submission = EventSubmission(webhook_type="customer.updated", object={"note": "\\" * 130_000})
    with pytest.raises(PayloadTooLarge) as refused:
        await events.emit("acme", submission)
    assert "to 100 endpoints is more than 32 MB in all" in refused.value.message


def _event_execution(*, created_at: datetime | None, memo: str | None) -> WorkflowExecution:
    """An event workflow as visibility lists it: started at START, with what an event of its time kept."""
    info = WorkflowExecutionInfo()
    info.start_time.FromDatetime(START)
    converter = DataConverter.default
    if memo is not None:
        info.memo.fields["created_at"].CopyFrom(converter.payload_converter.to_payload(memo))
    if created_at is not None:
        attrs = TypedSearchAttributes([SearchAttributePair(sa.CREATED_AT, created_at)])
        encode_search_attributes(attrs, info.search_attributes)
    return WorkflowExecution._from_raw_info(info, "default", converter)


async def test_when_an_event_was_accepted_is_read_from_what_its_time_kept() -> None:
    accepted = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=UTC)
    # Today: the search attribute, before the memo (which a later version may stop writing).
    assert await accepted_at(_event_execution(created_at=accepted, memo=None)) == accepted
    assert await accepted_at(_event_execution(created_at=accepted, memo=START.isoformat())) == accepted
    # Accepted before the search attribute was set at the start: the memo.
    assert await accepted_at(_event_execution(created_at=None, memo=accepted.isoformat())) == accepted
    # Older still: the workflow's start.
    assert await accepted_at(_event_execution(created_at=None, memo=None)) == START


async def test_a_notice_that_cannot_be_read_yet_holds_its_endpoint_s_and_no_other_s(
    store: EndpointStore,
) -> None:
    """The sweep of owed operational events: one whose send meets data this process cannot read yet (a key
    it lacks, mid-rotation) waits with the rest of its endpoint's, as any failure of one endpoint's does;
    the other endpoints' are sent. Only Temporal or the store unreachable ends the sweep."""
    settings = Settings(api_keys="acme:k", encryption_keys=TEST_ENCRYPTION_KEYS)
    events = Events(cast(Client, NoTemporal()), store, settings)
    owed = [
        OwedNotice(f"n{n}", "acme", endpoint, Transition.DISABLED, START, {})
        for n, endpoint in enumerate(["ep_locked", "ep_open", "ep_locked", "ep_open"])
    ]
    tried: list[str] = []
    sent: list[str] = []

    async def send(notice: OwedNotice) -> None:
        tried.append(notice.id)
        if notice.endpoint_id == "ep_locked":
            raise MissingKey("encrypted with key 'k2', which is not in WEBHOOKS_ENCRYPTION_KEYS")

    async def mail(notice: OwedNotice) -> None:
        pass

    def marked_sent(notice_id: str, *, at: datetime) -> None:
        sent.append(notice_id)

    events._health.owed = lambda **_: owed  # type: ignore[method-assign]
    events._health.sent = marked_sent  # type: ignore[method-assign]
    events._send = send  # type: ignore[method-assign]
    events._alerts.mail = mail  # type: ignore[method-assign]
    assert await events.send_owed(older_than=timedelta(0)) == 2
    assert tried == ["n0", "n1", "n3"]  # n2 waits behind n0, its endpoint's
    assert sent == ["n1", "n3"]
