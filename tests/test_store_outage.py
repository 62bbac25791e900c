"""The endpoint store unavailable for longer than a whole retry schedule: nothing accepted is lost.

The store is read by the API to accept an event (which endpoints subscribe) and by the worker at every
attempt (the endpoint's URL and secret). An outage is our fault, not the receiver's: accepted deliveries
wait for the store, Temporal retries them with backoff, and none uses up its retry schedule meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from launcher import Stack, free_port
from tests.conftest import (
    api_client,
    create_endpoint,
    settled,
    start_stack,
    wait_delivery,
    wait_for,
)
from tests.faults import sqlite_locked
from tests.postgres import PostgresServer, require_postgres
from tests.receiver import Receiver

pytestmark = [pytest.mark.stack]

# Longer than the test schedule (1, 1, 1 s between four attempts, each at most 2 s): with the old code
# every delivery whose attempts fell in the outage had used up its schedule, or failed outright.
OUTAGE_SECONDS = 12


def _emit(api: httpx.Client, event_id: str) -> int:
    body = {"id": event_id, "webhook_type": "invoice.generated", "data": {"object": {"id": event_id}}}
    return api.post("/v1/events", json=body).status_code


def run_outage(stack: Stack, api: httpx.Client, receiver: Receiver, outage: Callable[[], Any]) -> None:
    """Events accepted before and during an outage of the store, all delivered once it ends."""
    endpoint = create_endpoint(api, receiver.script("/outage", []))
    # Accepted while no worker runs, so that every first attempt falls inside the outage.
    stack.stop_worker()
    accepted = [f"before-{i}" for i in range(10)]
    for event_id in accepted:
        assert _emit(api, event_id) == 202
    refused: list[str] = []
    with outage():
        stack.start_worker()
        deadline = time.monotonic() + OUTAGE_SECONDS
        i = 0
        while time.monotonic() < deadline:
            event_id = f"during-{i}"
            asked = time.monotonic()
            status = _emit(api, event_id)
            # The API bounds its store calls (5 s): an answer, not a client's timeout.
            assert time.monotonic() - asked < 10, "the API waited on the store past its bound"
            # The API cannot tell which endpoints subscribe: it refuses, and nothing is accepted.
            assert status in (202, 503), status
            (accepted if status == 202 else refused).append(event_id)
            i += 1
            time.sleep(0.5)
        assert not receiver.requests("/outage"), "a delivery was made without the store"
    assert refused, "the API accepted every event during the outage: the store was not down"
    # A client retries what was refused, with the same ids, once the store is back.
    for event_id in refused:
        assert _emit(api, event_id) == 202
    accepted += refused

    for event_id in accepted:
        final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled, timeout=120)
        assert final["status"] == "succeeded", final
        # The schedule counts what the receiver did: one attempt, the one that succeeded.
        assert [a["status_code"] for a in final["attempts"]] == [200], final["attempts"]
    delivered = {r.headers["webhook-id"].rpartition(":")[0] for r in receiver.requests("/outage")}
    assert delivered == set(accepted)
    # What could not be made, and why, is in the log of the deliveries that waited.
    first = wait_delivery(api, f"before-0:{endpoint['id']}", lambda d: True)
    attempt = first["attempts"][0]
    assert attempt["infra_failures"] >= 1
    assert "endpoint store" in attempt["infra_error"]


def test_sqlite_store_locked_for_longer_than_the_schedule(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    database = Path(stack.settings.sqlalchemy_url.removeprefix("sqlite:///"))
    run_outage(stack, api, receiver, lambda: sqlite_locked(database))


@pytest.fixture(scope="module")
def postgres_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, PostgresServer]]:
    with PostgresServer(require_postgres(), free_port()) as server:
        data_dir = tmp_path_factory.mktemp("pg-stack")
        stack = start_stack(data_dir, data_dir / "stack.log", WEBHOOKS_DATABASE_URL=server.url)
        try:
            yield stack, server
        finally:
            stack.stop()


def test_postgres_store_stopped_for_longer_than_the_schedule(
    postgres_stack: tuple[Stack, PostgresServer], receiver: Receiver
) -> None:
    stack, server = postgres_stack
    with api_client(stack) as api:
        run_outage(stack, api, receiver, server.stopped)
    # The API found the store again on its own too.
    with api_client(stack) as api:
        assert wait_for(lambda: api.get("/v1/webhooks/endpoints").status_code == 200, what="the API")
