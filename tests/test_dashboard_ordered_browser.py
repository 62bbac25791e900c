"""Ordered delivery in the dashboard (issue 21), in Chromium against the real stack and a real receiver.

The endpoint form makes an endpoint ordered and sets what its lanes do when an event fails every attempt;
the endpoint page says so and looks up a lane; a blocked lane's head is retried and then skipped from the
page, and the lane moves on; a delivery says its ordering key and its `webhook-sequence`. The receiver's
ledger and the API check what the page claims. Waits are Playwright's `expect`, never a sleep.
"""

from __future__ import annotations

import json
import threading

import httpx
from playwright.sync_api import Browser, expect

from launcher import Stack
from tests.conftest import emit, wait_delivery
from tests.receiver import Answer, Received, Receiver
from tests.test_dashboard_browser import Session, tab

__all__ = ["tab"]  # the fixture, shared


class Ledger:
    """The receiver's answers by the event's object id, and (object id, webhook-sequence, status) of every
    request in arrival order."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.arrivals: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()

    def __call__(self, request: Received) -> Answer:
        key = json.loads(request.body)["data"]["object"]["id"]
        with self._lock:
            status = 500 if key in self.failing else 200
            self.arrivals.append((key, int(request.headers["webhook-sequence"]), status))
        return Answer(status)

    def acked(self) -> list[tuple[str, int]]:
        with self._lock:
            return [(key, sequence) for key, sequence, status in self.arrivals if status < 300]


def test_a_blocked_lane_is_shown_retried_and_skipped_from_the_page_and_moves_on(
    tab: Session, browser: Browser, stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    ledger = Ledger(failing={"lane_1", "lane_2"})
    url = receiver.respond("/ordered-dashboard", ledger)
    tab.sign_in("tenant_a")

    # The form: ordered, blocking on failure (the default), a short schedule so that a head fails fast.
    page.get_by_role("link", name="Add a webhook").first.click()
    page.get_by_label("Endpoint URL").fill(url)
    expect(page.get_by_label("Block the lane")).to_be_hidden()  # only for an ordered endpoint
    page.get_by_label("Deliver in order, per ordering key").check()
    expect(page.get_by_label("Block the lane")).to_be_checked()
    page.locator("summary", has_text="Delivery settings").click()
    page.get_by_label("Retry schedule (seconds between attempts)").fill("0.2")
    tab.check_view()
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_role("heading", name="Webhook added")).to_be_focused()
    [endpoint] = [e for e in api.get("/v1/webhooks/endpoints").json()["items"] if e["url"] == url]
    assert (endpoint["ordered"], endpoint["ordered_on_failure"]) == (True, "block")
    expect(page.locator("#ordered-detail")).to_contain_text("In order per ordering key")
    expect(page.locator("#ordered-detail [data-policy]")).to_have_attribute("data-policy", "block")

    # Three events of one key: the first fails every attempt and blocks the lane.
    e1, e2, e3 = (
        f"{emit(api, data={'object': {'id': f'lane_{n}'}}, ordering_key='cus_dash')['id']}:{endpoint['id']}"
        for n in (1, 2, 3)
    )
    page.get_by_label("Ordering key").fill("cus_dash")
    page.get_by_role("button", name="Show lane").click()
    expect(page.locator("#lane-state")).to_contain_text("Blocked")  # followed while its head is in flight
    expect(page.locator("#lane-head")).to_have_text(e1)
    expect(page.locator("#lane-sequence")).to_have_text("1")
    expect(page.locator("#lane-queued")).to_have_text("2")
    assert ledger.acked() == []
    waiting = api.get(f"/v1/webhooks/deliveries/{e3}").json()  # behind the head: no sequence yet
    assert (waiting["ordered"], waiting["ordering_key"], waiting["sequence"]) == (True, "cus_dash", None)
    tab.check_view()
    # The page as a later visit shows it (the secret shown once gone, the failed head in the history).
    page.reload()  # the lane looked up is shown again
    expect(page.get_by_label("Ordering key")).to_have_value("cus_dash")
    expect(page.locator("#lane-state")).to_contain_text("Blocked")
    expect(page.locator(f'tr[data-delivery-id="{e1}"]')).to_contain_text("Failed")
    expect(page.locator("#endpoint-health")).to_contain_text("Failing")
    tab.shot("ordered-endpoint")  # docs/dashboard.md shows it

    # The head's delivery says its key and its webhook-sequence.
    page.locator("#lane-head").click()
    expect(page.locator("#delivery-status")).to_contain_text("Failed")
    expect(page.locator("#delivery-ordering-key")).to_have_text("cus_dash")
    expect(page.locator("#delivery-sequence")).to_have_text("1")
    tab.check_view()
    page.go_back()  # the lane looked up is shown again
    expect(page.get_by_label("Ordering key")).to_have_value("cus_dash")
    expect(page.locator("#lane-head")).to_have_text(e1)

    # A read-only session sees the blocked lane, and neither Retry nor Skip.
    portal = api.post("/v1/portal/sessions", json={"read_only": True}).json()["url"]
    reader = Session(browser, stack.api_url)
    reader.page.goto(portal)
    expect(reader.page.locator("#session-ends")).to_be_visible()
    reader.page.goto(f"{stack.api_url}/dashboard/#/webhooks/{endpoint['id']}")
    reader.page.get_by_label("Ordering key").fill("cus_dash")
    reader.page.get_by_role("button", name="Show lane").click()
    expect(reader.page.locator("#lane-state")).to_contain_text("Blocked")
    expect(reader.page.get_by_text("it cannot retry or skip the head")).to_be_visible()
    expect(reader.page.locator("#lane-retry, #lane-skip")).to_have_count(0)
    reader.close()

    # Retry: the receiver is fixed for the head; it succeeds, the lane goes on and blocks on the next.
    ledger.failing.discard("lane_1")
    page.locator("#lane-retry").click()
    expect(page.locator("#lane-action")).to_contain_text("is on its way")
    expect(page.locator("#lane-head")).to_have_text(e2)
    expect(page.locator("#lane-state")).to_contain_text("Blocked")
    expect(page.locator("#lane-sequence")).to_have_text("2")
    expect(page.locator("#lane-queued")).to_have_text("1")
    assert ledger.acked() == [("lane_1", 1)]

    # Skip, behind a confirmation that opens on Cancel: the head stays failed, the lane sends the next.
    page.locator("#lane-skip").click()
    dialog = page.get_by_role("dialog", name="Skip this event?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    tab.shot("ordered-lane-skip")
    dialog.get_by_role("button", name="Skip event").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#lane-action")).to_contain_text("Skipped sequence 2")
    expect(page.locator("#lane-state")).to_contain_text("Idle")
    expect(page.locator("#lane-sequence")).to_have_text("3")
    expect(page.locator("#lane-head")).to_have_text("None")
    assert ledger.acked() == [("lane_1", 1), ("lane_3", 3)]  # the receiver sees 2 missing
    skipped = wait_delivery(api, e2, lambda d: d["status"] == "failed")
    assert skipped["sequence"] == 2
    refused = api.post(f"/v1/webhooks/deliveries/{e2}/retry")
    assert refused.status_code == 409 and "skipped" in refused.text
    tab.check_view()

    # Edit: the failure policy changes to skip, and the page says so.
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Deliver in order, per ordering key")).to_be_checked()
    expect(page.get_by_label("Block the lane")).to_be_checked()
    page.get_by_label("Skip the event and go on").check()
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#ordered-detail [data-policy]")).to_have_attribute("data-policy", "skip")
    changed = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json()
    assert (changed["ordered"], changed["ordered_on_failure"]) == (True, "skip")
    tab.shot("ordered-endpoint-edited")


def test_an_unordered_endpoint_has_no_lane_view_and_its_deliveries_no_sequence(
    tab: Session, api: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    url = receiver.script("/unordered-dashboard", [Answer(200)])
    endpoint = api.post("/v1/webhooks/endpoints", json={"url": url}).json()
    delivery_id = f"{emit(api, ordering_key='cus_x')['id']}:{endpoint['id']}"
    found = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    assert (found["ordered"], found["ordering_key"], found["sequence"]) == (False, None, None)
    tab.sign_in("tenant_a")
    page.goto(f"{tab.base_url}/dashboard/#/webhooks/{endpoint['id']}")
    expect(page.locator("#ordered-detail")).to_contain_text("Not ordered")
    expect(page.get_by_role("heading", name="Ordered lanes")).to_have_count(0)
    page.goto(f"{tab.base_url}/dashboard/#/deliveries/{delivery_id}")
    expect(page.locator("#delivery-status")).to_contain_text("Succeeded")
    expect(page.locator("#delivery-ordering-key")).to_have_count(0)
    assert "webhook-sequence" not in receiver.requests("/unordered-dashboard")[0].headers
