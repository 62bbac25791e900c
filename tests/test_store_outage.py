"""The endpoint store unavailable for longer than a whole retry schedule: nothing accepted is lost. Its
disk full: /healthz says the store cannot write.

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
    NOWHERE,
    api_client,
    create_endpoint,
    emit,
    emit_accepted,
    running_stack,
    settled,
    start_polling_worker,
    start_stack,
    wait_delivery,
    wait_for,
)
from tests.faults import disk_full, small_filesystem, sqlite_locked
from tests.postgres import PostgresServer, require_postgres
from tests.receiver import Receiver

pytestmark = [pytest.mark.stack]

# Longer than the test schedule (1, 1, 1 s between four attempts, each at most 2 s): with the old code
# every delivery whose attempts fell in the outage had used up its schedule, or failed outright.
OUTAGE_SECONDS = 12
# Long enough for the backoff of before (1, 2, 4, … up to 60 s between tries) to reach 32 s: the next try
# after the store came back was then up to half a minute away.
LONG_OUTAGE_SECONDS = 45
# After the store is back, every delivery arrives within the longest wait between two tries of ours
# (FAULT_RETRY_CAP, 10 s), with room for a loaded machine.
RESUMED_WITHIN = 16


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
        start_polling_worker(stack)
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
    # A client retries what was refused, with the same ids, once the store is back (and again after a 503:
    # every delivery held back by the outage resumes at that moment, and Temporal can be slow to answer).
    for event_id in refused:
        emit_accepted(api, "invoice.generated", id=event_id, data={"object": {"id": event_id}})
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
        with running_stack(tmp_path_factory.mktemp("pg-stack"), WEBHOOKS_DATABASE_URL=server.url) as stack:
            yield stack, server


def test_postgres_store_stopped_for_longer_than_the_schedule(
    postgres_stack: tuple[Stack, PostgresServer], receiver: Receiver
) -> None:
    stack, server = postgres_stack
    with api_client(stack) as api:
        run_outage(stack, api, receiver, server.stopped)
    # The API found the store again on its own too.
    with api_client(stack) as api:
        assert wait_for(lambda: api.get("/v1/webhooks/endpoints").status_code == 200, what="the API")


def _health(stack: Stack) -> httpx.Response:
    return httpx.get(f"{stack.api_url}/healthz", timeout=30)


def test_healthz_says_the_store_cannot_write_while_its_disk_is_full(tmp_path: Path) -> None:
    """Issue 20, 9: with the data dir full, every emit and endpoint write was 503 and /healthz 200 "ok".

    The store's file alone is on the small filesystem: Temporal keeps its own data elsewhere (its server's
    disk, in production), so what /healthz must see is the store.
    """
    with small_filesystem(tmp_path / "disk", size_mib=16) as disk:
        stack = start_stack(
            tmp_path / "data", tmp_path / "stack.log", WEBHOOKS_DATABASE_URL=f"sqlite:///{disk}/webhooks.db"
        )
        try:
            with api_client(stack) as api:
                endpoint = create_endpoint(api, NOWHERE)
                assert _health(stack).status_code == 200
                with disk_full(disk):
                    emitted = api.post(
                        "/v1/events", json={"webhook_type": "invoice.created", "data": {"object": {}}}
                    )
                    assert emitted.status_code == 503, emitted.text
                    added = api.post("/v1/webhooks/endpoints", json={"url": NOWHERE})
                    assert added.status_code == 503, added.text
                    read = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}")
                    assert read.status_code == 200  # reads go on

                    health = _health(stack)
                    assert health.status_code == 503, health.text
                    assert health.json()["status"] == "unavailable"
                    assert health.json()["store"].startswith("cannot write: disk full"), health.json()
                # Space again: healthy, and the writes it refused are made.
                wait_for(lambda: _health(stack).status_code == 200, what="healthz to be 200 again")
                create_endpoint(api, NOWHERE)
                emit(api, "invoice.created")
        finally:
            stack.stop()


def test_after_a_long_outage_deliveries_resume_within_seconds_and_each_try_is_one_line(
    postgres_stack: tuple[Stack, PostgresServer], receiver: Receiver
) -> None:
    """Issue 20, 8: deliveries waited up to ~30 s after the store came back (tries of ours backed off
    toward a minute), and the worker logged a whole traceback for each try that failed."""
    stack, server = postgres_stack
    log = stack.settings.data_dir / "stack.log"
    with api_client(stack) as api:
        endpoint = create_endpoint(api, receiver.script("/resumed", []))
        stack.stop_worker()  # so that every first try falls inside the outage
        events = [f"long-{i}" for i in range(5)]
        for event_id in events:
            assert _emit(api, event_id) == 202
        logged_before = log.stat().st_size
        with server.stopped():
            start_polling_worker(stack)
            time.sleep(LONG_OUTAGE_SECONDS)
            assert not receiver.requests("/resumed")
        back = time.time()
        wait_for(lambda: len(receiver.requests("/resumed")) == len(events), timeout=120, what="deliveries")
        resumed = max(r.at for r in receiver.requests("/resumed")) - back
        for event_id in events:
            final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
            assert [a["status_code"] for a in final["attempts"]] == [200]
    assert resumed < RESUMED_WITHIN, f"the last delivery came {resumed:.1f} s after the store was back"
    with log.open("rb") as f:
        f.seek(logged_before)
        logged = f.read().decode(errors="replace")
    failed = [line for line in logged.splitlines() if "attempt could not be made" in line]
    # Each delivery's tries of ours failed for most of 45 s: several lines each, each with its cause.
    assert len(failed) >= 3 * len(events), len(failed)
    assert all("OperationalError" in line for line in failed), failed[:3]
    # The traceback of the cause once (one record, with its chain), not one per try; nor the SDK's own
    # report of each failed try, with its traceback.
    assert _records_with_a_traceback(logged) == 1, logged[-6000:]
    assert "Completing activity as failed" not in logged


def _records_with_a_traceback(logged: str) -> int:
    """Log records followed by a traceback (a chained one has several, one after another)."""
    lines = logged.splitlines()
    return sum(
        1
        for before, line in zip(lines, lines[1:], strict=False)
        if line.startswith("Traceback (most recent call last)") and before[:2] == "20"
    )
