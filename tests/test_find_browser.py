"""The dashboard's Find box finds the events of a business object (issue 23, item 2), in Chromium against
the real stack: an invoice's events by its exact id, several invoices by a prefix, a customer's by its id,
and a search that cannot match said plainly. Waits are Playwright's `expect`; the API is waited on only
until visibility lists what the page will be asked for.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import expect

from launcher import Stack
from tests.conftest import create_endpoint, wait_for
from tests.receiver import Receiver
from tests.test_dashboard_browser import Session, tab  # noqa: F401 (the fixture)

SEARCH = "Event, delivery, endpoint, object or customer id"


def emitted(api: httpx.Client, webhook_type: str, data_object: dict[str, Any]) -> str:
    response = api.post("/v1/events", json={"webhook_type": webhook_type, "data": {"object": data_object}})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_the_find_box_lists_an_invoices_and_a_customers_events(
    tab: Session,  # noqa: F811
    stack: Stack,
    api: httpx.Client,
    receiver: Receiver,
) -> None:
    page = tab.page
    run = uuid.uuid4().hex[:8]
    inv, cus = f"inv_{run}_", f"cus_{run}_"
    create_endpoint(api, receiver.url(f"/find-box-{run}"), event_types=["invoice.created", "invoice.voided"])
    created = emitted(api, "invoice.created", {"id": f"{inv}0042", "customer_id": f"{cus}a"})
    voided = emitted(api, "invoice.voided", {"id": f"{inv}0042", "customer_id": f"{cus}a"})
    other = emitted(api, "invoice.created", {"id": f"{inv}0043", "customer_id": f"{cus}b"})
    elsewhere = emitted(api, "invoice.created", {"id": f"{inv}1042", "customer_id": f"{cus}b"})
    wait_for(
        lambda: len(api.get("/v1/events", params={"object_id": f"{inv}*"}).json()["items"]) == 4,
        what="the run's events to be listed",
    )
    tab.sign_in("tenant_a")
    search = page.get_by_label(SEARCH)
    rows = page.locator("#found-events tbody tr")

    # One invoice: both of its events, newest first, each opening the event with its deliveries.
    search.fill(f"{inv}0042")
    search.press("Enter")
    expect(page.get_by_role("heading", name=f"Events of {inv}0042")).to_be_visible()
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(voided)
    expect(rows.nth(1)).to_contain_text(created)
    expect(rows.nth(0)).to_contain_text(f"{cus}a")
    tab.check_view()
    tab.shot("find-by-object")
    page.get_by_role("link", name="invoice.voided").click()
    expect(page).to_have_url(re.compile(re.escape(f"#/events/{voided}") + "$"))
    expect(page.get_by_role("heading", name="invoice.voided")).to_be_visible()

    # A prefix: 0042 and 0043, not 1042.
    search.fill(f"{inv}004*")
    search.press("Enter")
    expect(page.get_by_role("heading", name=f"Events of ids starting {inv}004")).to_be_visible()
    expect(rows).to_have_count(3)
    expect(page.locator("#found-events")).to_contain_text(other)
    expect(page.locator("#found-events")).not_to_contain_text(elsewhere)

    # A customer: its invoices' events, found by the customer id.
    search.fill(f"{cus}b")
    search.press("Enter")
    expect(page.get_by_role("heading", name=f"Events of {cus}b")).to_be_visible()
    expect(rows).to_have_count(2)
    expect(page.locator("#found-events")).to_contain_text(f"{inv}1042")
    tab.check_view()

    # A * that does not end the search cannot match: said, with what to type instead.
    search.fill(f"{inv}*42")
    search.press("Enter")
    expect(page.get_by_role("heading", name="Nothing found")).to_be_visible()
    expect(page.get_by_text("A * may only end a search")).to_be_visible()
    tab.check_view()


def test_found_events_fit_a_phone(browser: Any, stack: Stack, api: httpx.Client, receiver: Receiver) -> None:
    run = uuid.uuid4().hex[:8]
    create_endpoint(api, receiver.url(f"/find-phone-{run}"), event_types=["invoice.payment_status_updated"])
    emitted(api, "invoice.payment_status_updated", {"id": f"inv_{run}_" + "9" * 60, "customer_id": "c"})
    wait_for(
        lambda: api.get("/v1/events", params={"object_id": f"inv_{run}_*"}).json()["items"],
        what="the event to be listed",
    )
    phone = Session(browser, stack.api_url, width=390, height=800)
    try:
        phone.sign_in("tenant_a")
        search = phone.page.get_by_label(SEARCH)
        search.fill(f"inv_{run}_*")
        search.press("Enter")
        expect(phone.page.locator("#found-events tbody tr")).to_have_count(1)
        phone.check_view()
    finally:
        phone.close()
