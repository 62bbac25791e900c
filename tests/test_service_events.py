"""`service.events` on its own: what it refuses before anything reaches Temporal."""

from __future__ import annotations

from typing import Any, cast

import pytest
from temporalio.client import Client

from core.settings import Settings
from service.errors import PayloadTooLarge
from service.events import Events
from service.models import EventSubmission
from store.database import EndpointStore
from tests.conftest import TEST_ENCRYPTION_KEYS, add_endpoint


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
