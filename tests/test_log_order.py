"""The delivery log reads by time (issue 23, 1): newest first by when the event was accepted, across
pages, however the workflows happened to start; Temporal's SQL visibility cannot order by it, so
`service.pages.Lister.newest_first` does, with windows of acceptance time it narrows by counting."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from core.temporal import connect
from history import visibility
from launcher import Stack
from service import pages
from tests.conftest import create_endpoint, emit_accepted, wait_for
from tests.receiver import Receiver

RPC = timedelta(seconds=10)


def _by_time(items: list[dict[str, Any]]) -> list[str]:
    """The ids in the log's promised order: newest acceptance first, ties by id, descending."""
    ordered = sorted(items, key=lambda d: (datetime.fromisoformat(d["created_at"]), d["id"]), reverse=True)
    return [d["id"] for d in ordered]


def _all_listed(api: httpx.Client, endpoint_id: str, count: int) -> list[dict[str, Any]]:
    def listed() -> list[dict[str, Any]] | None:
        items = api.get(f"/v1/webhooks/endpoints/{endpoint_id}/deliveries", params={"limit": 100}).json()[
            "items"
        ]
        return items if len(items) == count else None

    return wait_for(listed, timeout=90, what=f"{count} deliveries listed")


def _burst(api: httpx.Client, count: int) -> None:
    """`count` events at once from six threads, as the issue's 30 events in 3 s."""
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda n: emit_accepted(api, data={"object": {"id": f"inv_{n}"}}), range(count)))


def test_the_log_is_newest_first_by_acceptance_time_on_every_page(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    endpoint = create_endpoint(api, receiver.script(f"/order-{uuid.uuid4().hex[:6]}", []))
    _burst(api, 30)
    everything = _all_listed(api, endpoint["id"], 30)
    assert [d["id"] for d in everything] == _by_time(everything)
    # Page by page, the same order, nothing twice and nothing left out.
    paged: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", params=params).json()
        paged += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert paged == _by_time(everything)
    # The failed deliveries across endpoints read the same way (none here: an empty, final page).
    failed = api.get("/v1/webhooks/deliveries", params={"status": "failed", "limit": 5}).json()
    assert [d["id"] for d in failed["items"]] == _by_time(failed["items"])


@pytest.mark.parametrize("window_max", [4, 9, 13])
async def test_windows_narrowed_by_counting_give_the_same_order(
    stack: Stack, api: httpx.Client, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, window_max: int
) -> None:
    """More deliveries than one window may hold: the window is narrowed by counts against the real
    visibility store, and the pages still come newest first, whole."""
    endpoint = create_endpoint(api, receiver.script(f"/windows-{uuid.uuid4().hex[:6]}", []))
    _burst(api, 14)
    everything = _all_listed(api, endpoint["id"], 14)
    monkeypatch.setattr(pages, "WINDOW_MAX", window_max)
    client = await connect(stack.settings)
    query = visibility.delivery_query(tenant="tenant_a", endpoint_id=endpoint["id"])
    lister = pages.Lister(client, cursor_keys=(b"test cursor key",), rpc_timeout=RPC)
    paged: list[str] = []
    cursor = None
    while True:
        page = await lister.newest_first(query, tenant="tenant_a", cursor=cursor, limit=3)
        paged += [e.id.removeprefix("delivery:tenant_a:") for e in page.executions]
        cursor = page.next_cursor
        if not cursor:
            break
    assert paged == _by_time(everything)


def test_an_endpoints_counts_over_a_window_of_acceptance(api: httpx.Client, receiver: Receiver) -> None:
    """The dashboard's chart counts each twelfth of a window (`created_after`, `created_before`)."""
    endpoint = create_endpoint(api, receiver.script(f"/counted-{uuid.uuid4().hex[:6]}", []))
    _burst(api, 3)
    listed = _all_listed(api, endpoint["id"], 3)
    wait_for(
        lambda: all(d["status"] == "succeeded" for d in _all_listed(api, endpoint["id"], 3)), what="done"
    )
    stats = f"/v1/webhooks/endpoints/{endpoint['id']}/stats"
    oldest = min(datetime.fromisoformat(d["created_at"]) for d in listed)
    newest = max(datetime.fromisoformat(d["created_at"]) for d in listed)

    def counted(after: datetime, before: datetime) -> dict[str, Any]:
        response = api.get(
            stats, params={"created_after": after.isoformat(), "created_before": before.isoformat()}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    # A second either side: the store may keep a time finer than the one the API gives back.
    second = timedelta(seconds=1)
    around = wait_for(
        lambda: (c := counted(oldest - second, newest + second))["succeeded"] == 3 and c,
        what="the window's counts",
    )
    assert around["until"] is not None and (around["failed"], around["pending"]) == (0, 0)
    earlier = counted(oldest - timedelta(hours=2), oldest - timedelta(hours=1))
    assert (earlier["succeeded"], earlier["failed"], earlier["pending"]) == (0, 0, 0)
    # A window that ends before it starts: 422 saying what to do, never a count of nothing.
    refused = api.get(
        stats, params={"created_after": newest.isoformat(), "created_before": oldest.isoformat()}
    )
    assert refused.status_code == 422 and "swap them" in refused.text
