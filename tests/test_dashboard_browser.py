"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) against the real stack.

What a person does in the Flexprice documentation's two procedures, "Setting Up Webhooks" and
"Webhook Logs", plus failed deliveries and manual retry, through the page only; the API and the
receivers are used to make things happen (emit events, fail, recover) and to check the page's claims.
Every wait is Playwright's auto-waiting `expect`, with timeouts long enough for a slow shared machine.
Screenshots of each main view land in test-output/screenshots/.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route, expect

from launcher import Stack
from tests.conftest import (
    KEYS,
    NOWHERE,
    OUTPUT,
    api_replica,
    create_endpoint,
    emit,
    settled,
    standalone_api,
    wait_counted,
    wait_delivery,
    wait_for,
)
from tests.local_http import QuietHandler
from tests.receiver import Answer, Receiver

TIMEOUT_MS = 45_000
SCREENSHOTS = OUTPUT / "screenshots"

# Every control a person can reach must have a name a screen reader can say.
UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter((el) => el.getClientRects().length > 0)
  .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
    || el.getAttribute('aria-labelledby') || (/^(A|BUTTON)$/.test(el.tagName) && el.textContent.trim())))
  .map((el) => el.outerHTML.slice(0, 160))"""
PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


class Session:
    """A browser tab on one API, refusing any request that would leave 127.0.0.1."""

    def __init__(self, browser: Browser, base_url: str, *, width: int = 1280, height: int = 860) -> None:
        self.base_url = base_url
        self.context = browser.new_context(
            viewport={"width": width, "height": height}, locale="en-US", timezone_id="UTC"
        )
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._only_local)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("pageerror", lambda err: self.errors.append(str(err)))
        self.page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        # A refused CSP rule or a script error; a failed fetch is the page's to report, and tests check that.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _only_local(self, route: Route, request: Request) -> None:
        if request.url.startswith(self.base_url + "/") or request.url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(request.url)
            route.abort()

    def sign_in(self, tenant: str) -> None:
        page = self.page
        page.goto(self.base_url + "/")
        key = page.get_by_label("API key")
        expect(key).to_be_focused()
        page.keyboard.type(KEYS[tenant])  # by keyboard: the field has focus, Enter submits
        page.keyboard.press("Enter")
        expect(page.get_by_text(f"Tenant: {tenant}")).to_be_visible()
        expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def check_view(self) -> None:
        """Labels on every control, nothing wider than the window, no script error."""
        assert self.page.evaluate(UNLABELLED_CONTROLS) == []
        assert self.page.evaluate(PAGE_OVERFLOW) <= 0
        assert self.errors == []

    def close(self) -> None:
        self.context.close()
        assert self.outside == [], "the page tried to load from outside 127.0.0.1"
        assert self.errors == []


@pytest.fixture
def tab(browser: Browser, stack: Stack) -> Iterator[Session]:
    expect.set_options(timeout=TIMEOUT_MS)
    session = Session(browser, stack.api_url)
    yield session
    session.close()


def _row(page: Page, delivery_id: str) -> Any:
    return page.locator(f'tr[data-delivery-id="{delivery_id}"]')


def _failed(api: httpx.Client, **params: str) -> dict[str, int]:
    """The failed deliveries listed (from visibility, which lags each delivery's own state), by id with
    their attempt counts: the Failed deliveries page reads this list once, so tests wait on it first."""
    query = {"status": "failed", "limit": "100", **params}  # 100: the API's largest page
    return {
        d["id"]: d["attempt_count"] for d in api.get("/v1/webhooks/deliveries", params=query).json()["items"]
    }


XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def test_set_up_a_webhook_read_its_log_and_retry_a_failure(
    tab: Session, api_b: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    receiver.script("/hooks", [Answer(200, f"thanks {XSS}".encode())])
    tab.sign_in("tenant_b")
    expect(page.get_by_role("heading", name="No webhook endpoints yet")).to_be_visible()

    # Setting Up Webhooks, steps 1-6: Developers › Webhooks › Add a webhook, URL, method, confirm.
    page.get_by_role("link", name="Add a webhook").first.click()
    expect(page.get_by_role("heading", name="Add a webhook")).to_be_visible()
    page.get_by_label("Endpoint URL").fill("ftp://files.example.com/hooks")
    page.get_by_role("button", name="Add webhook").click()
    url_error = page.locator("#endpoint-url-error")
    expect(url_error).to_be_visible()
    expect(url_error).to_contain_text("http")
    expect(page.get_by_label("Endpoint URL")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Endpoint URL")).to_be_focused()
    tab.shot("add-webhook-invalid-url")

    page.get_by_label("Endpoint URL").fill(receiver.url("/hooks"))
    page.get_by_label("Description").fill("Billing system")
    expect(page.get_by_label("HMAC (Standard Webhooks)")).to_be_checked()
    page.get_by_label("Selected events").check()
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#events-error")).to_contain_text("Pick at least one event type")
    # A group's toggle selects the whole group, folded away; the search finds one type of another.
    page.get_by_label("All invoice events").check()
    expect(page.get_by_label("invoice.voided")).to_be_hidden()
    page.get_by_label("Find event types").fill("customer.created")
    expect(page.get_by_text("1 type match", exact=True)).to_be_visible()
    expect(page.get_by_label("invoice.voided")).to_be_hidden()
    page.get_by_label("customer.created").check()
    page.get_by_label("Find event types").fill("")
    page.locator(".event-group", has_text="All invoice events").get_by_role(
        "button", name=re.compile(r"^Show \d+ types$")
    ).click()
    expect(page.get_by_label("invoice.voided")).to_be_checked()
    example = page.locator('[data-type="invoice.voided"] details.example')
    example.locator("summary").click()
    expect(example.locator("pre")).to_contain_text('"id"')
    tab.check_view()
    tab.shot("add-webhook")
    page.get_by_role("button", name="Add webhook").click()

    # Added: its own page, with the secret shown once; a reload would show the page, not an empty form.
    expect(page.get_by_role("heading", name="Webhook added")).to_be_focused()
    expect(page).to_have_url(re.compile(r"#/webhooks/ep_[0-9a-f]+$"))
    [endpoint] = api_b.get("/v1/webhooks/endpoints").json()["items"]
    assert endpoint["url"] == receiver.url("/hooks")
    assert endpoint["signature_method"] == "hmac"
    assert sorted(endpoint["event_types"]) == sorted(
        ["customer.created"]
        + [f"invoice.{n}" for n in ("drafted", "created", "one_off_created", "generated")]
        + [f"invoice.{n}" for n in ("payment_status_updated", "payment_failure", "payment_overdue", "voided")]
    )
    secret = api_b.get(f"/v1/webhooks/endpoints/{endpoint['id']}/secret").json()["secret"]
    expect(page.get_by_label("Secret", exact=True)).to_have_value(secret)
    page.get_by_role("button", name="Copy secret").click()
    expect(page.get_by_text("Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    tab.check_view()
    tab.shot("secret-shown-once")

    # Webhook Logs, steps 3-4: the endpoint's event history, filling in by itself as events go out.
    expect(page.get_by_role("heading", name=receiver.url("/hooks"))).to_be_visible()
    expect(page.get_by_text("No events sent to this endpoint yet")).to_be_visible()
    created = emit(api_b, "invoice.created", data={"object": {"id": "inv_42", "note": XSS, "total": "12.50"}})
    created_row = _row(page, f"{created['id']}:{endpoint['id']}")
    expect(created_row).to_contain_text("Succeeded")
    customer = emit(api_b, "customer.created", data={"object": {"id": "cus_7", "name": "Ada"}})
    emit(api_b, "wallet.created")  # not subscribed: never listed
    expect(_row(page, f"{customer['id']}:{endpoint['id']}")).to_contain_text("Succeeded")

    # A receiver that fails: the delivery goes through its schedule and ends failed.
    receiver.script("/hooks", [Answer(500, b'{"error":"database is down"}')])
    voided = emit(api_b, "invoice.voided", data={"object": {"id": "inv_43"}})
    voided_id = f"{voided['id']}:{endpoint['id']}"
    expect(_row(page, voided_id)).to_contain_text("Failed")
    expect(page.locator("tbody tr")).to_have_count(3)
    tab.check_view()
    tab.shot("endpoint-history")

    page.get_by_label("Status").select_option("failed")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(_row(page, voided_id)).to_be_visible()
    page.get_by_label("Status").select_option("")
    page.get_by_label("Event type").select_option("customer.created")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("customer.created")
    page.get_by_label("Event type").select_option("")
    expect(page.locator("tbody tr")).to_have_count(3)

    # One event: the exact payload and the receiver's answer, shown as text, never run as markup.
    created_row.get_by_role("link", name="invoice.created").click()
    expect(page.get_by_role("heading", name="invoice.created")).to_be_visible()
    expect(page.locator("#payload")).to_contain_text('"note": "<img src=x onerror=\\"window.__pwned=1\\">')
    expect(page.locator("#payload")).to_contain_text('"total": "12.50"')
    attempt = page.locator('li[data-attempt="1"]')
    expect(attempt).to_contain_text("HTTP 200")
    expect(attempt).to_contain_text("Scheduled")
    expect(attempt.locator("pre")).to_have_text(f"thanks {XSS}")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#payload img, li.attempt img, script:not([src])").count() == 0
    # The endpoint beside its id; no Temporal link: this stack does not say its viewers can open it.
    expect(page.locator("#delivery-endpoint")).to_contain_text(receiver.url("/hooks"))
    expect(page.locator("#delivery-endpoint")).to_contain_text(endpoint["id"])
    expect(page.get_by_role("link", name="Open in Temporal Web UI")).to_have_count(0)
    expect(page.get_by_role("button", name="Resend")).to_be_visible()
    # What was sent and answered: our headers (the signature masked) and the receiver's status line.
    attempt.get_by_text("Request headers sent").click()
    sent = attempt.locator("dl.headers").first
    expect(sent).to_contain_text("webhook-signature")
    expect(sent).to_contain_text("v1,••••")
    expect(sent).to_contain_text(f"{created['id']}:{endpoint['id']}")
    expect(attempt.locator("summary", has_text="Response")).to_contain_text("HTTP/1.1 200 OK")
    tab.check_view()
    tab.shot("delivery-succeeded")

    # The failed one: every scheduled attempt, nothing more scheduled; retried from the page until it lands.
    page.goto(f"{tab.base_url}/dashboard/#/deliveries/{voided_id}")
    expect(page.locator("#delivery-status")).to_have_text("Failed after 4 attempts")
    expect(page.locator("li.attempt")).to_have_count(4)
    expect(page.locator("#next-attempt")).to_contain_text("Retry by hand")
    expect(page.locator('li[data-attempt="4"] pre')).to_have_text('{"error":"database is down"}')
    tab.shot("delivery-failed")
    page.get_by_role("button", name="Retry now").click()
    expect(page.locator("#retry-status")).to_contain_text("Attempt 5: HTTP 500.")
    receiver.script("/hooks", [Answer(200, b"recovered")])
    page.get_by_role("button", name="Retry now").click()
    expect(page.locator("#retry-status")).to_contain_text("Attempt 6: HTTP 200.")
    expect(page.locator("#delivery-status")).to_have_text("Succeeded after 6 attempts")
    expect(page.locator('li[data-attempt="6"]')).to_contain_text("Manual retry")
    expect(page.locator('li[data-attempt="6"] pre')).to_have_text("recovered")
    expect(page.locator("li.attempt")).to_have_count(6)
    tab.shot("delivery-retried")

    # Failed deliveries across the tenant's endpoints, each retryable from the list.
    receiver.script("/hooks", [Answer(503, b"maintenance")])
    overdue = emit(api_b, "invoice.payment_overdue")
    overdue_id = f"{overdue['id']}:{endpoint['id']}"
    wait_delivery(api_b, overdue_id, lambda d: d["status"] == "failed")
    # Listed as the page will be asserted on: the overdue one failed, the one retried into success not.
    wait_for(
        lambda: _failed(api_b).keys() & {overdue_id, voided_id} == {overdue_id},
        timeout=90,
        what=f"{overdue_id} listed as failed and {voided_id} not",
    )
    page.get_by_role("link", name="Failed deliveries").click()
    expect(page.get_by_role("heading", name="Failed deliveries")).to_be_visible()
    row = _row(page, overdue_id)
    expect(row).to_contain_text("invoice.payment_overdue")
    expect(row).to_contain_text(receiver.url("/hooks"))
    # The delivery retried into success above is not listed as failed.
    expect(_row(page, voided_id)).to_have_count(0)
    tab.check_view()
    tab.shot("failed-deliveries")
    # A retry that fails again: the row says so, and still says so once the list has been drawn again.
    row.get_by_role("button", name=re.compile("^Retry")).click()
    expect(row.locator(".retry-result")).to_have_text("Attempt 5: HTTP 503.")
    wait_delivery(api_b, overdue_id, lambda d: d["status"] == "failed" and len(d["attempts"]) == 5)
    wait_for(
        lambda: _failed(api_b).get(overdue_id) == 5, timeout=90, what=f"{overdue_id} listed with 5 attempts"
    )
    row.evaluate("tr => tr.dataset.drawnBefore = 'yes'")
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator(f'tr[data-delivery-id="{overdue_id}"]:not([data-drawn-before])')).to_have_count(1)
    expect(row.locator(".retry-result")).to_have_text("Attempt 5: HTTP 503.")
    expect(row).to_contain_text("Failed after 5 attempts")
    # One that succeeds: the delivery leaves the list of failed ones, and what happened is said above it.
    receiver.script("/hooks", [Answer(204, b"")])
    row.get_by_role("button", name=re.compile("^Retry")).click()
    expect(page.locator("#retry-report")).to_have_text(
        f"invoice.payment_overdue to {receiver.url('/hooks')}: Attempt 6: HTTP 204."
    )
    assert wait_delivery(api_b, overdue_id, settled)["status"] == "succeeded"
    wait_for(
        lambda: overdue_id not in _failed(api_b), timeout=90, what=f"{overdue_id} no longer listed as failed"
    )
    page.get_by_role("button", name="Refresh").click()
    expect(row).to_have_count(0)
    expect(page.locator("#retry-report")).to_contain_text("Attempt 6: HTTP 204.")

    # The list: counts of the last day per endpoint (from Temporal's visibility, a moment behind the log).
    wait_counted(api_b, endpoint["id"], succeeded=4, failed=0, pending=0)
    page.get_by_role("link", name="Endpoints").click()
    endpoint_row = page.locator("tbody tr", has_text=receiver.url("/hooks"))
    # Counted once each, whatever the manual retries.
    expect(endpoint_row).to_contain_text("4 succeeded")
    expect(endpoint_row).to_contain_text("0 failed")
    expect(endpoint_row).to_contain_text("Healthy")
    expect(endpoint_row).to_contain_text("9 event types")
    tab.check_view()
    tab.shot("endpoints")

    # Delete, after a confirmation that opens on Cancel and that Escape cancels.
    endpoint_row.get_by_role("link", name=receiver.url("/hooks")).click()
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete this endpoint?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Delete").click()
    tab.shot("delete-confirmation")
    dialog.get_by_role("button", name="Delete endpoint").click()
    expect(page.get_by_text(f"Endpoint {receiver.url('/hooks')} deleted.")).to_be_visible()
    expect(page.get_by_role("heading", name="No webhook endpoints yet")).to_be_visible()
    assert api_b.get(f"/v1/webhooks/endpoints/{endpoint['id']}").status_code == 404


def test_edit_disable_and_reveal_the_secret(tab: Session, api_b: httpx.Client, receiver: Receiver) -> None:
    page = tab.page
    endpoint = create_endpoint(api_b, receiver.url("/edit"), description="CRM sync")
    tab.sign_in("tenant_b")
    page.get_by_role("link", name=receiver.url("/edit")).click()
    expect(page.get_by_role("heading", name=receiver.url("/edit"))).to_be_visible()

    page.get_by_role("button", name="Reveal secret").click()
    expect(page.get_by_label("Signing secret", exact=True)).to_have_value(endpoint["secret"])
    page.get_by_role("button", name="Hide secret").click()
    expect(page.get_by_label("Signing secret", exact=True)).to_have_count(0)

    # Disabling asks first, with Cancel focused.
    page.get_by_role("button", name="Disable").click()
    dialog = page.get_by_role("dialog", name="Disable this endpoint?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    assert api_b.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json()["enabled"] is True
    page.get_by_role("button", name="Disable").click()
    dialog.get_by_role("button", name="Disable endpoint").click()
    expect(page.get_by_text("Endpoint disabled")).to_be_visible()
    expect(page.locator(".page-header .badge")).to_have_text("Disabled")
    expect(page.locator("#disabled-detail")).to_contain_text("Disabled by hand")
    saved = api_b.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json()
    assert saved["enabled"] is False and saved["disabled"]["by"] == "api"
    page.get_by_role("link", name="Webhooks", exact=True).click()
    expect(page.locator("tbody tr", has_text=receiver.url("/edit"))).to_contain_text("Disabled")
    page.get_by_role("link", name=receiver.url("/edit")).click()
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_text("Replay missed events delivers them")).to_be_visible()
    expect(page.locator(".page-header .badge")).to_contain_text("Healthy")

    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Edit webhook")).to_be_visible()
    expect(page.get_by_label("Endpoint URL")).to_have_value(receiver.url("/edit"))
    expect(page.get_by_label("Description")).to_have_value("CRM sync")
    page.get_by_label("Endpoint URL").fill("not a url")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#endpoint-url-error")).to_be_visible()
    page.get_by_label("Endpoint URL").fill(receiver.url("/edited"))
    page.get_by_label("JWT (RS256)").check()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Changes saved.")).to_be_visible()
    expect(page.get_by_role("heading", name=receiver.url("/edited"))).to_be_visible()
    expect(page.get_by_text(f"{tab.base_url}/v1/webhooks/jwks/tenant_b.json")).to_be_visible()
    expect(page.locator("dt", has_text="Token audience (aud)").locator("+ dd")).to_have_text(endpoint["id"])
    expect(page.get_by_role("button", name="Reveal secret")).to_have_count(0)
    saved = api_b.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json()
    assert (saved["url"], saved["signature_method"]) == (receiver.url("/edited"), "jwt")
    tab.check_view()


def test_narrow_screen_add_a_jwt_webhook(browser: Browser, stack: Stack, api_b: httpx.Client) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    tab = Session(browser, stack.api_url, width=390, height=844)
    try:
        page = tab.page
        tab.sign_in("tenant_b")
        tab.check_view()
        page.get_by_role("link", name="Add a webhook").first.click()
        page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/mobile")
        page.get_by_label("JWT (RS256)").check()
        tab.check_view()
        tab.shot("mobile-add-webhook")
        # The event-type picker stays short at phone width: groups fold away until asked for.
        page.get_by_label("Selected events").check()
        # The picker, not the whole form: the form grows with each endpoint field a release adds. Folded,
        # its groups take about 1,100 px at this width; unfolded, its 35 types take over 4,000.
        height = page.locator(".event-picker").evaluate("e => e.getBoundingClientRect().height")
        assert height < 1600, f"the event-type picker is {height} px tall at 390 px"
        page.get_by_label("All events, including types added later").check()
        page.get_by_role("button", name="Add webhook").click()
        expect(page.get_by_role("heading", name="Webhook added")).to_be_visible()
        expect(page.locator("#jwks-url")).to_have_text(f"{stack.api_url}/v1/webhooks/jwks/tenant_b.json")
        [created] = [
            e for e in api_b.get("/v1/webhooks/endpoints").json()["items"] if e["url"].endswith("/mobile")
        ]
        expect(page.locator("#jwt-audience")).to_have_text(created["id"])
        tab.check_view()
        page.get_by_role("link", name="← Webhooks").click()
        expect(page.locator("tbody tr")).to_contain_text("JWT")
        expect(page.locator("tbody tr")).to_contain_text("All events")
        expect(page.locator("tbody tr")).to_contain_text("0 succeeded")
        tab.check_view()
        tab.shot("mobile-endpoints")
    finally:
        tab.close()


def _tab_to(page: Page, name: str, *, presses: int = 25) -> None:
    """Press Tab until the focused control is the one called `name`."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent.trim()")
        if focused == name:
            return
    raise AssertionError(f"{name!r} cannot be reached with Tab")


def test_keyboard_only_add_a_webhook_and_open_it(tab: Session, api_b: httpx.Client) -> None:
    page = tab.page
    tab.sign_in("tenant_b")  # typed into the focused key field, submitted with Enter
    _tab_to(page, "Add a webhook")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Add a webhook")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Endpoint URL")).to_be_focused()
    page.keyboard.type("http://127.0.0.1:9/keyboard")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Webhook added")).to_be_focused()
    _tab_to(page, "Copy secret")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Copied")).to_be_visible()
    expect(page.get_by_role("heading", name="http://127.0.0.1:9/keyboard")).to_be_visible()
    # The delete dialog opens on Cancel: Enter, Enter deletes nothing.
    _tab_to(page, "Delete")
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert len(api_b.get("/v1/webhooks/endpoints").json()["items"]) == 1
    page.get_by_role("button", name="Delete", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Delete endpoint")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="No webhook endpoints yet")).to_be_visible()
    assert api_b.get("/v1/webhooks/endpoints").json()["items"] == []


def test_a_refused_key_stays_on_the_sign_in_page(tab: Session) -> None:
    page = tab.page
    page.goto(tab.base_url + "/dashboard/")
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That API key was not accepted")
    assert page.evaluate("sessionStorage.length") == 0
    tab.check_view()


@pytest.mark.stack  # starts an API process of its own
def test_a_clear_message_when_temporal_or_the_api_is_down(browser: Browser, tmp_path: Path) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    env = {"WEBHOOKS_DATA_DIR": str(tmp_path), "WEBHOOKS_API_KEYS": f"tenant_a:{KEYS['tenant_a']}"}
    with standalone_api(env) as base_url:
        # Endpoints live in SQL, so they still list; everything Temporal holds says why it is missing.
        httpx.post(
            f"{base_url}/v1/webhooks/endpoints",
            headers={"x-api-key": KEYS["tenant_a"]},
            json={"url": "https://example.com/hooks"},
            timeout=30,
        ).raise_for_status()
        tab = Session(browser, base_url)
        page = tab.page
        tab.sign_in("tenant_a")
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("Delivery logs, counts and retries are unavailable right now")
        expect(alert).to_contain_text("the API cannot reach Temporal")
        # A read changed nothing: said so, and not "the request may have been applied".
        expect(alert).to_contain_text("Nothing changed; try again")
        expect(alert).not_to_contain_text("may have been applied")
        expect(page.locator("tbody tr")).to_contain_text("unavailable")
        tab.check_view()
        tab.shot("temporal-down")
        page.get_by_role("link", name="Failed deliveries").click()
        expect(page.get_by_role("alert")).to_contain_text("the API cannot reach Temporal")
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        expect(page.get_by_role("button", name="Load more")).to_have_count(0)
    # The API process is gone now: the page says it cannot reach it, not a blank page.
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("alert")).to_contain_text(f"Cannot reach the API at {base_url}")
    tab.shot("api-unreachable")
    tab.close()


@contextmanager
def page_server(html: str) -> Iterator[str]:
    """A real web server on another origin (127.0.0.1, a port of its own) serving one page: its URL."""

    class OnePage(QuietHandler):
        def do_GET(self) -> None:
            self.answer(200, html.encode(), {"content-type": "text/html; charset=utf-8"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), OnePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_another_site_cannot_frame_the_dashboard(browser: Browser, stack: Stack) -> None:
    # Beside it, a page of the same API that may be framed (the public JWKS): proof that frames render.
    framing = (
        f'<iframe name="dashboard" src="{stack.api_url}/dashboard/"></iframe>'
        f'<iframe name="control" src="{stack.api_url}/v1/webhooks/jwks/tenant_a.json"></iframe>'
    )
    with page_server(framing) as other_origin:
        context = browser.new_context()
        refused: list[str] = []
        try:
            page = context.new_page()
            page.on("console", lambda message: refused.append(message.text))
            page.goto(other_origin, wait_until="load", timeout=TIMEOUT_MS)
            control = page.frame(name="control")
            assert control is not None
            expect(control.locator("body")).to_contain_text('"keys"', timeout=TIMEOUT_MS)
            dashboard = page.frame(name="dashboard")
            assert dashboard is not None
            assert dashboard.get_by_label("API key").count() == 0
            assert "Flexprice" not in dashboard.evaluate("document.documentElement.innerText")
            assert any("frame-ancestors 'none'" in text for text in refused), refused
        finally:
            context.close()


def test_api_docs_render_without_internet(browser: Browser, stack: Stack) -> None:
    # Swagger UI comes from the API itself; the tab refuses anything else and says so on close.
    expect.set_options(timeout=TIMEOUT_MS)
    tab = Session(browser, stack.api_url)
    page = tab.page
    page.goto(stack.api_url + "/docs")
    expect(page.locator(".opblock-summary-path", has_text="/v1/events").first).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Authorize"))).to_be_visible()
    page.locator(".opblock-summary-path", has_text="/v1/events").first.click()
    expect(page.get_by_text("Accept an event for delivery").first).to_be_visible()
    tab.shot("api-docs")
    tab.close()


# ---- finding things, keeping one's place, words, long values, unknown ids (issue 13) ---------------


def _local(when: datetime) -> str:
    """A time as a datetime-local field takes it, in the tab's zone (UTC, see `Session`)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _succeeded(api: httpx.Client, endpoint_id: str, count: int) -> None:
    def all_done() -> bool:
        items = api.get(f"/v1/webhooks/endpoints/{endpoint_id}/deliveries", params={"limit": 100}).json()[
            "items"
        ]
        return len(items) == count and all(d["status"] == "succeeded" for d in items)

    wait_for(all_done, timeout=90, what=f"{count} deliveries to succeed")


def _wait_scrolled_to(page: Page, y: int) -> None:
    # Polled from here: the page's CSP refuses the string evaluation of Playwright's wait_for_function.
    seen: list[float] = []

    def there() -> bool:
        seen.append(page.evaluate("window.scrollY"))
        return abs(seen[-1] - y) <= 2

    try:
        wait_for(there, timeout=TIMEOUT_MS / 1000, what=f"scroll at {y}")
    except AssertionError as err:
        raise AssertionError(f"{err}; it was at {seen[-1]}") from None


def test_back_restores_the_filter_the_pages_and_the_scroll(
    browser: Browser, stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    endpoint = create_endpoint(api, receiver.script("/many", []))
    for n in range(28):
        emit(api, "invoice.created", data={"object": {"id": f"inv_many_{n}"}})
    for n in range(2):
        emit(api, "customer.created", data={"object": {"id": f"cus_many_{n}"}})
    _succeeded(api, endpoint["id"], 30)
    # An API process of its own, stopped at the end to see what the page does without it.
    with api_replica(stack) as replica:
        tab = Session(browser, replica)
        page = tab.page
        tab.sign_in("tenant_a")
        page.get_by_role("link", name=receiver.url("/many")).click()
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(25)
        page.get_by_label("Event type").select_option("invoice.created")
        expect(page).to_have_url(re.compile(r"\?type=invoice\.created$"))
        expect(rows).to_have_count(25)
        page.get_by_role("button", name="Load more").click()
        expect(rows).to_have_count(28)
        expect(page.get_by_role("button", name="Load more")).to_have_count(0)
        target = rows.nth(26)
        target.scroll_into_view_if_needed()  # and so the click below needs no scrolling of its own
        scrolled = page.evaluate("Math.round(window.scrollY)")
        assert scrolled > 300
        delivery_id = target.get_attribute("data-delivery-id")
        target.get_by_role("link", name="invoice.created").click()
        expect(page.get_by_role("heading", name="invoice.created")).to_be_visible()
        expect(page).to_have_url(re.compile(re.escape(f"#/deliveries/{quote(str(delivery_id), safe='')}")))

        # Back: the same filter, both pages, and the row the person had scrolled to.
        page.go_back()
        expect(page.get_by_label("Event type")).to_have_value("invoice.created")
        expect(rows).to_have_count(28)
        _wait_scrolled_to(page, scrolled)
        expect(_row(page, str(delivery_id))).to_be_in_viewport()
        # A reload keeps them too: the filter is in the address, the pages and scroll in the history entry.
        page.reload()
        expect(page.get_by_label("Event type")).to_have_value("invoice.created")
        expect(rows).to_have_count(28)
        _wait_scrolled_to(page, scrolled)
        tab.shot("history-restored")

        page.get_by_role("button", name="Clear filters").click()
        expect(page).not_to_have_url(re.compile(r"type="))
        expect(rows).to_have_count(25)
        expect(page.get_by_role("button", name="Load more")).to_be_visible()
    # The API is gone: the list says so, and no "Load more" is left under the error.
    page.get_by_role("button", name="Refresh").click()
    expect(page.get_by_role("alert")).to_contain_text(f"Cannot reach the API at {replica}")
    expect(page.get_by_role("button", name="Load more")).to_have_count(0)
    tab.close()


def test_find_an_event_or_a_delivery_by_id_and_see_the_event_everywhere(
    tab: Session, api: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    ok = create_endpoint(api, receiver.script("/found", []), description="Ledger")
    failing = create_endpoint(api, f"{NOWHERE}/found", retry_schedule=[600])  # next attempt in 10 minutes
    event = emit(api, "invoice.voided", data={"object": {"id": "inv_found"}})
    wait_delivery(api, f"{event['id']}:{ok['id']}", lambda d: d["status"] == "succeeded")
    wait_delivery(api, f"{event['id']}:{failing['id']}", lambda d: d["next_attempt_at"] is not None)
    tab.sign_in("tenant_a")

    search = page.get_by_label("Event, delivery, endpoint, object or customer id")
    search.fill(event["id"])
    search.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(f"#/events/{event['id']}") + "$"))
    expect(page.get_by_role("heading", name="invoice.voided")).to_be_visible()
    expect(_row(page, f"{event['id']}:{ok['id']}")).to_contain_text("Succeeded")
    # Three HTTP failures to come are not "Pending": it is failing, and it says when it tries again.
    failing_row = _row(page, f"{event['id']}:{failing['id']}")
    # 600 s, drawn between 80 % and 120 % of it (the schedule's jitter): 8 to 12 minutes from now.
    expect(failing_row).to_contain_text(re.compile(r"Failing · next attempt in ([89]|1[012]) minutes"))
    expect(failing_row).to_contain_text(f"{NOWHERE}/found")
    expect(page.locator("#payload")).to_contain_text('"id": "inv_found"')
    tab.check_view()
    tab.shot("event")

    search.fill(f"{event['id']}:{failing['id']}")
    search.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(f"#/deliveries/{event['id']}%3A{failing['id']}") + "$"))
    expect(page.locator("#delivery-status")).to_contain_text("Failing · next attempt in")
    expect(page.locator("#next-attempt")).to_contain_text("UTC")  # every time says its zone
    # The search result took the search's place in history: Back returns to the event.
    page.go_back()
    expect(page).to_have_url(re.compile(re.escape(f"#/events/{event['id']}") + "$"))
    # The way back is over once the event is shown again (a loaded machine can take its time): a search
    # typed before then would race the browser's own traversal.
    expect(page.get_by_role("heading", name="invoice.voided")).to_be_visible()

    search.fill("no_such_thing_42")
    search.press("Enter")
    expect(page.get_by_role("heading", name="Nothing found")).to_be_visible()
    expect(page.get_by_text("endpoint, object or customer of this account has the id")).to_be_visible()
    tab.check_view()


def test_a_date_range_filters_every_history(tab: Session, api: httpx.Client, receiver: Receiver) -> None:
    page = tab.page
    endpoint = create_endpoint(api, receiver.script("/dated", []))
    for n in range(2):
        emit(api, "wallet.created", data={"object": {"id": f"wal_{n}"}})
    _succeeded(api, endpoint["id"], 2)
    now = datetime.now(UTC)
    tab.sign_in("tenant_a")
    page.get_by_role("link", name=receiver.url("/dated")).click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(page.get_by_text("Times are in your time zone (UTC)")).to_be_visible()

    page.get_by_label("From", exact=True).fill(_local(now + timedelta(hours=1)))
    expect(page.get_by_text("No deliveries match these filters.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"after=\d{4}-\d\d-\d\dT"))
    page.get_by_label("From", exact=True).fill(_local(now - timedelta(hours=1)))
    expect(rows).to_have_count(2)
    page.get_by_label("To", exact=True).fill(_local(now - timedelta(minutes=30)))
    expect(page.get_by_text("No deliveries match these filters.")).to_be_visible()
    # A window that ends before it starts: the API's reason, next to the filters.
    page.get_by_label("From", exact=True).fill(_local(now + timedelta(hours=2)))
    expect(page.get_by_role("alert")).to_contain_text("swap them")
    page.get_by_role("button", name="Clear filters").click()
    expect(rows).to_have_count(2)
    tab.check_view()

    # The failed deliveries have the same filters.
    page.get_by_role("link", name="Failed deliveries").click()
    page.get_by_label("From", exact=True).fill(_local(now + timedelta(hours=1)))
    expect(page.get_by_text("No deliveries match these filters.")).to_be_visible()
    tab.check_view()


LONG_URL = "http://127.0.0.1:9/" + "a" * 1038  # 1,057 characters


@pytest.mark.parametrize("width", [1440, 390])
def test_a_very_long_url_is_cut_with_an_ellipsis_and_shown_whole_on_hover_and_copy(
    browser: Browser, stack: Stack, api: httpx.Client, width: int
) -> None:
    assert len(LONG_URL) == 1057
    expect.set_options(timeout=TIMEOUT_MS)
    endpoint = create_endpoint(api, LONG_URL, description="d" * 900)
    tab = Session(browser, stack.api_url, width=width, height=860)
    page = tab.page
    tab.sign_in("tenant_a")
    row = page.locator(f'tr[data-endpoint-id="{endpoint["id"]}"]')
    link = row.get_by_role("link")
    expect(link).to_have_attribute("title", LONG_URL)
    assert link.evaluate("(el) => el.scrollWidth > el.clientWidth")  # cut, with an ellipsis by CSS
    box = row.bounding_box()
    assert box is not None and box["height"] < (320 if width < 700 else 140), box
    tab.check_view()
    tab.shot(f"long-url-list-{width}")

    link.click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_attribute("title", LONG_URL)
    heading_box = heading.bounding_box()
    assert heading_box is not None and heading_box["height"] < 60, heading_box  # one line, not eighteen
    page.get_by_role("button", name="Copy URL").click()
    expect(page.get_by_text("Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == LONG_URL
    tab.check_view()
    tab.shot(f"long-url-endpoint-{width}")

    page.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Delete endpoint").click()
    message = page.locator(".notice", has_text="deleted.")
    expect(message).to_be_visible()
    inside = message.evaluate(
        "(el) => [...el.querySelectorAll('*')].every((c) => c.getBoundingClientRect().right"
        " <= el.getBoundingClientRect().right + 1)"
    )
    assert inside, "the deleted message overflows its box"
    tab.check_view()
    tab.close()


def test_an_unknown_id_says_so_plainly_with_the_way_back(tab: Session) -> None:
    page = tab.page
    tab.sign_in("tenant_a")
    for route, heading in (
        ("#/webhooks/ep_doesnotexist", "No such endpoint"),
        ("#/webhooks/ep_doesnotexist/edit", "No such endpoint"),
        ("#/deliveries/evt_nope:ep_doesnotexist", "No such delivery"),
        ("#/events/evt_doesnotexist", "No such event"),
    ):
        page.goto(f"{tab.base_url}/dashboard/{route}")
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        expect(page.get_by_text("in this account (tenant_a)")).to_be_visible()
        expect(page.get_by_role("button", name="Try again")).to_have_count(0)
        tab.check_view()
    page.get_by_role("link", name="Back to webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()


def test_temporal_links_only_for_operators_the_setting_names(
    browser: Browser, stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    endpoint = create_endpoint(api, receiver.script("/ops-link", []))
    event = emit(api)
    delivery_id = f"{event['id']}:{endpoint['id']}"
    found = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    with api_replica(stack, WEBHOOKS_DASHBOARD_TEMPORAL_LINKS="true") as replica:
        tab = Session(browser, replica)
        page = tab.page
        tab.sign_in("tenant_a")
        page.goto(f"{replica}/dashboard/#/deliveries/{delivery_id}")
        link = page.get_by_role("link", name="Open in Temporal Web UI")
        expect(link).to_have_attribute("href", found["workflow_url"])
        # Secondary: below the log, not beside Retry.
        expect(
            page.locator(".page-header").get_by_role("link", name="Open in Temporal Web UI")
        ).to_have_count(0)
        tab.close()
        # A portal session's viewer is a customer, who cannot reach the Web UI: never a link for them.
        session_url = api.post(f"{replica}/v1/portal/sessions").json()["url"]
        customer = Session(browser, replica)
        customer.page.goto(session_url)
        expect(customer.page.locator("#session-ends")).to_be_visible()
        customer.page.goto(f"{replica}/dashboard/#/deliveries/{delivery_id}")
        expect(customer.page.locator("#delivery-status")).to_contain_text("Succeeded")
        expect(customer.page.get_by_role("link", name="Open in Temporal Web UI")).to_have_count(0)
        customer.close()


# ---- operating endpoints (issue 12) and read-only sessions (issue 15) -------------------------------


def test_operate_an_endpoint_health_test_events_rotation_and_its_settings(
    tab: Session, api: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    endpoint = create_endpoint(
        api, receiver.script("/ops", []), headers={"Authorization": "Bearer gateway-token-1234"}
    )
    tab.sign_in("tenant_a")
    page.get_by_role("link", name=receiver.url("/ops")).click()
    expect(page.locator("#custom-headers")).to_have_text("Authorization: ••••1234")
    expect(page.locator("#endpoint-health")).to_have_text("Healthy · no attempt yet")

    # Send test event: a type, its example, the receiver's answer.
    page.get_by_role("button", name="Send test event").click()
    page.get_by_label("Type to send").select_option("invoice.voided")
    expect(page.locator("#test-example")).to_contain_text('"webhook_type": "invoice.voided"')
    page.get_by_role("button", name="Send test", exact=True).click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("Delivered: your receiver answered HTTP 200")
    [first] = receiver.requests("/ops")
    assert first.headers["webhook-id"].startswith("test_")
    assert first.headers["authorization"] == "Bearer gateway-token-1234"
    tab.shot("test-event")
    receiver.script("/ops", [Answer(500, b"broken")])
    page.get_by_role("button", name="Send test", exact=True).click()
    expect(result).to_contain_text("Not acknowledged: HTTP 500")
    # The failed test's attempt: the headers that went (custom values masked) and the answer's status line.
    result.get_by_role("link", name="Open the test delivery").click()
    attempt = page.locator('li[data-attempt="1"]')
    attempt.get_by_text("Request headers sent").click()
    expect(attempt.locator("dl.headers").first).to_contain_text("Authorization")
    expect(attempt.locator("dl.headers").first).to_contain_text("••••1234")
    expect(attempt.locator("dl.headers").first).not_to_contain_text("gateway-token")
    expect(attempt.locator("summary", has_text="Response")).to_contain_text(
        "HTTP/1.1 500 Internal Server Error"
    )
    tab.check_view()
    page.go_back()

    # Health: failing since its first failed attempt, in the page and in the list, never a green "Enabled".
    wait_for(
        lambda: api.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json()["health"]["state"] == "failing",
        what="the endpoint to be failing",
    )
    page.reload()
    expect(page.locator("#endpoint-health")).to_contain_text("Failing since")
    expect(page.locator("#health-detail")).to_contain_text("HTTP 500")
    tab.shot("endpoint-failing")
    page.get_by_role("link", name="← Webhooks").click()
    expect(page.locator(f'tr[data-endpoint-id="{endpoint["id"]}"]')).to_contain_text("Failing since")
    tab.shot("endpoints-health")
    page.get_by_role("link", name=receiver.url("/ops")).click()

    # Rotate secret: asked first (Cancel focused), then the new secret once, and the grace period.
    page.get_by_role("button", name="Rotate secret").click()
    dialog = page.get_by_role("dialog", name="Rotate the signing secret?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_label("Keep the old secret signing for").select_option("3600")
    dialog.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_label("New secret")).to_be_visible()
    secret = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/secret").json()["secret"]
    assert secret != endpoint["secret"]
    expect(page.get_by_label("New secret")).to_have_value(secret)
    expect(page.locator("#rotated-grace")).to_contain_text("every delivery carries both signatures")
    page.get_by_role("button", name="Copy new secret").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    tab.check_view()
    tab.shot("secret-rotated")
    page.reload()
    expect(page.get_by_role("heading", name=receiver.url("/ops"))).to_be_visible()
    expect(page.get_by_label("New secret")).to_have_count(0)  # shown once
    expect(page.get_by_text("Still signs beside the new one until")).to_be_visible()

    # The endpoint's own rate limit and retry schedule, shown and edited; without one of its own, the
    # service's maximum applies. Nothing in flight to it now, and its full limit.
    expect(page.locator("#rate-limit")).to_have_text("100 deliveries per second (the service's maximum)")
    expect(page.locator("#flow-detail")).to_have_text("0 of 8 at once")
    page.get_by_role("link", name="Edit").click()
    # Open already: the endpoint has settings of its own (its custom header), shown masked.
    expect(page.locator("details.advanced")).to_have_attribute("open", "")
    expect(page.get_by_label("Current custom headers")).to_contain_text("Authorization: ••••1234")
    page.get_by_label("Rate limit (deliveries per second)").fill("5")
    page.get_by_label("Retry schedule (seconds between attempts)").fill("5, 60")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#rate-limit")).to_have_text("5 deliveries per second")
    expect(page.locator("#retry-schedule")).to_have_text("Its own: 5 s, 1 min")
    expect(page.locator("#custom-headers")).to_have_text("Authorization: ••••1234")  # kept
    saved = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json()
    assert (saved["rate_limit_per_second"], saved["retry_schedule"]) == (5, [5, 60])
    assert saved["headers"] == {"Authorization": "••••1234"}
    tab.check_view()


def test_an_endpoint_throttled_by_its_receiver_says_so_and_until_when(
    tab: Session, api: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    url = receiver.script("/busy", [Answer(429, headers={"Retry-After": "600"})])
    endpoint = create_endpoint(api, url)
    event_id = emit(api)["id"]
    wait_for(
        lambda: api.get(f"/v1/webhooks/endpoints/{endpoint['id']}").json()["flow"]["throttled_until"],
        what="the endpoint throttled",
    )
    tab.sign_in("tenant_a")
    page.get_by_role("link", name=url).click()
    # Its limit of attempts in flight halved by the 429, and every worker holding its deliveries.
    expect(page.locator("#flow-detail")).to_contain_text("0 of 4 at once: lowered from 8 after HTTP 429")
    throttle = page.locator("#throttle-detail")
    expect(throttle).to_contain_text("Its receiver asked us to wait (HTTP 429 with Retry-After)")
    expect(throttle).to_contain_text(re.compile(r"wait until .+ \(in \d+ minutes\)"))
    expect(throttle).to_contain_text("A test event, or a manual retry of a delivery not already waiting")
    tab.check_view()
    tab.shot("endpoint-throttled")
    # The delivery it answered waits for it too, on its own schedule.
    delivery = api.get(f"/v1/webhooks/deliveries/{event_id}:{endpoint['id']}").json()
    next_attempt = datetime.fromisoformat(delivery["next_attempt_at"])
    assert next_attempt >= datetime.fromisoformat(delivery["attempts"][0]["started_at"]) + timedelta(
        seconds=600
    )


def test_recover_and_replay_show_their_progress_and_can_be_canceled(
    browser: Browser, stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    broken = create_endpoint(
        api, receiver.script("/rec", [Answer(500, b"down")]), event_types=["billable_metric.archived"]
    )
    failed = [emit(api, "billable_metric.archived")["id"] for _ in range(3)]
    for event_id in failed:
        wait_delivery(api, f"{event_id}:{broken['id']}", lambda d: d["status"] == "failed")
    receiver.script("/rec", [])  # fixed

    # The recovery finds them through visibility, which lags each delivery's own state.
    wait_counted(api, broken["id"], failed=3, pending=0)
    # A recovery rate of 2 a second: slow enough to watch, and to cancel.
    with api_replica(stack, WEBHOOKS_RECOVERY_RATE="2") as replica:
        tab = Session(browser, replica)
        page = tab.page
        tab.sign_in("tenant_a")
        page.goto(f"{replica}/dashboard/#/webhooks/{broken['id']}")
        page.get_by_role("button", name="Recover failed since…").click()
        expect(page.get_by_label("Since", exact=True)).to_be_focused()
        page.get_by_role("button", name="Start recovery").click()
        progress = page.locator("#recovery-progress")
        expect(progress.locator("progress")).to_be_visible()
        expect(page.locator("#recovery-status")).to_have_text("Completed")
        expect(progress).to_contain_text("Recovery of failed deliveries")  # no more "Recovering"
        expect(page.locator("#recovery-counts")).to_contain_text("3 done")
        tab.shot("recovered")
        for event_id in failed:
            wait_delivery(api, f"{event_id}:{broken['id']}", lambda d: d["status"] == "succeeded")

        # Replay to an endpoint made after the events: 24 of them, at 2 a second, canceled on the way.
        started = datetime.now(UTC) - timedelta(minutes=1)
        for _ in range(24):
            emit(api, "credit_note.refund_failure")
        late = create_endpoint(api, receiver.script("/late", []), event_types=["credit_note.refund_failure"])
        page.goto(f"{replica}/dashboard/#/webhooks/{late['id']}")
        page.get_by_role("button", name="Replay missed events").click()
        page.get_by_label("Since", exact=True).fill(_local(started))
        page.get_by_role("button", name="Start replay").click()
        expect(progress).to_contain_text("Replaying missed events")
        expect(page.locator("#recovery-status")).to_have_text("Running")
        tab.shot("replay-running")
        page.get_by_role("button", name="Cancel", exact=True).click()
        expect(page.locator("#recovery-status")).to_have_text("Canceled")
        counts = page.locator("#recovery-counts").inner_text()
        left = int(re.search(r"(\d+) left", counts).group(1))  # type: ignore[union-attr]
        assert left > 0, counts
        tab.check_view()
        tab.close()


def test_a_refresh_that_fails_is_said_apart_from_the_retrys_answer(
    tab: Session, api: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    # Failing, its next scheduled attempt an hour away: the page goes on refreshing it meanwhile.
    endpoint = create_endpoint(api, receiver.script("/flaky", [Answer(500, b"no")]), retry_schedule=[3600])
    delivery_id = f"{emit(api)['id']}:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: len(d["attempts"]) == 1)
    tab.sign_in("tenant_a")
    page.goto(f"{tab.base_url}/dashboard/#/deliveries/{delivery_id}")
    page.get_by_role("button", name="Retry now").click()
    expect(page.locator("#retry-status")).to_have_text("Attempt 2: HTTP 500.")
    # The API out of reach for a moment: the refresh says so, beside the retry's answer, not over it.
    delivery_url = re.compile(r".*/v1/webhooks/deliveries/[^/]+$")
    page.route(delivery_url, lambda route: route.abort())
    expect(page.locator("#load-error")).to_contain_text(
        "Could not refresh this delivery: Cannot reach the API"
    )
    expect(page.locator("#retry-status")).to_have_text("Attempt 2: HTTP 500.")
    page.unroute(delivery_url)
    expect(page.locator("#load-error")).to_be_empty()
    expect(page.locator("#retry-status")).to_have_text("Attempt 2: HTTP 500.")
    tab.check_view()


def test_retry_all_shown_says_what_went_and_what_was_refused(
    tab: Session, api: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    since = datetime.now(UTC) - timedelta(minutes=1)
    fixed = create_endpoint(
        api,
        receiver.script("/fixed", [Answer(500, b"no")]),
        event_types=["wallet_transaction.payment_failure"],
    )
    off = create_endpoint(
        api, receiver.script("/off", [Answer(500, b"no")]), event_types=["wallet_transaction.payment_failure"]
    )
    events = [emit(api, "wallet_transaction.payment_failure")["id"] for _ in range(2)]
    ours = {f"{e}:{ep['id']}": ep for e in events for ep in (fixed, off)}
    for delivery_id in ours:
        wait_delivery(api, delivery_id, lambda d: d["status"] == "failed")
    # Listed with the page's filters before it loads them once: all four failed.
    filters = {"event_type": "wallet_transaction.payment_failure", "created_after": since.isoformat()}
    wait_for(lambda: _failed(api, **filters).keys() >= ours.keys(), timeout=90, what="our 4 listed as failed")
    receiver.script("/fixed", [])
    assert api.patch(f"/v1/webhooks/endpoints/{off['id']}", json={"enabled": False}).status_code == 200
    tab.sign_in("tenant_a")
    page.get_by_role("link", name="Failed deliveries").click()
    page.get_by_label("Event type").select_option("wallet_transaction.payment_failure")
    page.get_by_label("From", exact=True).fill(_local(since))
    # Counted once the list for both filters is in: ours show already in the event type's list, and other
    # endpoints' deliveries of these events can turn failed before the From filter's answer comes back.
    expect(page.locator("p.live")).to_contain_text("Updated")
    for delivery_id in ours:
        expect(_row(page, delivery_id)).to_be_visible()
    shown = page.locator("tbody tr").count()
    page.get_by_role("button", name=f"Retry all shown ({shown})").click()
    summary = page.locator("#retry-all-result")
    expect(summary).to_contain_text(f"{shown} retried:")
    went, refused = (int(n) for n in re.findall(r"(\d+) (?:sent|refused)", summary.inner_text()))
    assert went + refused == shown and went >= 2 and refused >= 2
    expect(
        page.get_by_role("status").filter(has_text="is disabled; enable it before retrying").first
    ).to_be_visible()
    for delivery_id, endpoint in ours.items():
        cell = _row(page, delivery_id).locator(".retry-result")
        if endpoint is fixed:
            expect(cell).to_contain_text(re.compile(r"Attempt \d+ requested"))
        else:
            expect(cell).to_contain_text("is disabled")
    # Refreshed: the sent ones, succeeded, leave the list; the refused stay, each still saying why.
    for delivery_id in (d for d, endpoint in ours.items() if endpoint is fixed):
        wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    disabled = {d for d, endpoint in ours.items() if endpoint is off}
    wait_for(
        lambda: _failed(api, **filters).keys() & ours.keys() == disabled,
        timeout=90,
        what="only the refused listed as failed",
    )
    page.get_by_role("button", name="Refresh").click()
    for delivery_id, endpoint in ours.items():
        if endpoint is fixed:
            expect(_row(page, delivery_id)).to_have_count(0)
        else:
            expect(_row(page, delivery_id).locator(".retry-result")).to_contain_text("is disabled")
    tab.check_view()
    tab.shot("retry-all-shown")


def test_a_read_only_session_sees_no_button_that_changes_anything(
    browser: Browser, stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    endpoint = create_endpoint(api, receiver.script("/ro", [Answer(500, b"no")]))
    event = emit(api)
    delivery_id = f"{event['id']}:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: d["status"] == "failed")
    manage = [
        "Add a webhook",
        "Disable",
        "Edit",
        "Send test event",
        "Rotate secret",
        "Reveal secret",
        "Delete",
        "Recover failed since…",
        "Replay missed events",
        "Retry now",
        "Retry all shown",
        "Retry",
    ]

    def visible_manage_controls(page: Page) -> list[str]:
        found = []
        for name in manage:
            named = re.compile("^" + re.escape(name) + r"( \(\d+\))?$")  # "Retry all shown (3)"
            control = page.get_by_role("button", name=named).or_(page.get_by_role("link", name=named))
            if control.filter(visible=True).count():
                found.append(name)
        return found

    for read_only in (True, False):
        url = api.post("/v1/portal/sessions", json={"read_only": read_only}).json()["url"]
        tab = Session(browser, stack.api_url)
        page = tab.page
        page.goto(url)
        expect(page.locator("#session-ends")).to_be_visible()
        expect(page.get_by_text("Read-only", exact=True)).to_be_visible(visible=read_only)
        seen: list[str] = []
        expect(page.locator(f'tr[data-endpoint-id="{endpoint["id"]}"]')).to_be_visible()
        seen += visible_manage_controls(page)
        page.get_by_role("link", name=receiver.url("/ro")).click()
        expect(_row(page, delivery_id)).to_be_visible()
        seen += visible_manage_controls(page)
        if read_only:
            expect(page.get_by_text("This session is read-only")).to_be_visible()
            tab.shot("read-only-endpoint")
        _row(page, delivery_id).get_by_role("link").first.click()
        expect(page.locator("#delivery-status")).to_contain_text("Failed")
        seen += visible_manage_controls(page)
        page.get_by_role("link", name="Failed deliveries").click()
        expect(_row(page, delivery_id)).to_be_visible()
        seen += visible_manage_controls(page)
        # The form's own addresses, from a kept link or typed: no form that the API would refuse.
        for address, heading, submit in (
            ("#/webhooks/new", "Add a webhook", "Add webhook"),
            (f"#/webhooks/{endpoint['id']}/edit", "Edit webhook", "Save changes"),
        ):
            page.goto(f"{stack.api_url}/dashboard/{address}")
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
            if read_only:
                expect(page.locator("#main").get_by_text("This session is read-only")).to_be_visible()
                back = page.get_by_role("link", name=re.compile(r"^Back to (the endpoint|webhooks)$"))
                expect(back).to_be_visible()
                expect(page.locator("#main form")).to_have_count(0)
                expect(page.get_by_role("button", name=submit)).to_have_count(0)
            else:
                expect(page.get_by_role("button", name=submit)).to_be_visible()
            seen += visible_manage_controls(page)
        if read_only:
            assert seen == [], f"a read-only session sees {seen}"
        else:
            assert {"Add a webhook", "Delete", "Send test event", "Retry now", "Retry all shown"} <= set(seen)
        tab.check_view()
        tab.close()


# ---- one poll per view, whatever the person did meanwhile -----------------------------------------


def test_the_history_polls_once_however_often_the_filters_change_and_keeps_the_pages_loaded(
    browser: Browser, stack: Stack, api_b: httpx.Client, receiver: Receiver
) -> None:
    """Every filter change used to start a refresh chain of its own, a refresh waiting when "Load more"
    was clicked still fired, and a page that came back after the filters changed was added to the new
    list. The page's timers run on Playwright's clock here: the test fires them, and waits only on what
    the page shows and asks for, so a slow machine changes nothing."""
    expect.set_options(timeout=TIMEOUT_MS)
    endpoint = create_endpoint(
        api_b, receiver.script("/polled", []), event_types=["invoice.created", "customer.created"]
    )
    for n in range(24):
        emit(api_b, "invoice.created", data={"object": {"id": f"inv_polled_{n}"}})
    for n in range(2):
        emit(api_b, "customer.created", data={"object": {"id": f"cus_polled_{n}"}})
    _succeeded(api_b, endpoint["id"], 26)  # none in flight: the list refreshes every 5 s, not 2
    path = f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries"
    tab = Session(browser, stack.api_url)
    page = tab.page
    asked: list[str] = []  # the list's requests, in the order the page made them

    def note(request: Request) -> None:
        if urlparse(request.url).path == path:
            asked.append(request.url)

    page.on("request", note)
    page.clock.install()
    tab.sign_in("tenant_b")
    page.get_by_role("link", name=receiver.url("/polled")).click()
    rows = page.locator("tbody tr")
    live = page.locator("p.live")
    expect(rows).to_have_count(25)
    # From here on the page's timers fire only when the test runs the clock.
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 2)  # seconds, in Python's clock API

    event_type = page.get_by_label("Event type")
    for chosen, count in (("customer.created", 2), ("invoice.created", 24), ("All event types", 25)):
        event_type.select_option(label=chosen)
        expect(rows).to_have_count(count)
    before = len(asked)
    for _ in range(3):
        said = live.inner_text()
        with page.expect_request(lambda request: urlparse(request.url).path == path):
            page.clock.run_for(5_500)
        expect(live).not_to_have_text(said)  # answered: the next refresh waits
    # One refresh each time, not one for every filter the list has had.
    assert len(asked) - before == 3, asked[before:]

    # "Load more" while a refresh waits: the refresh no longer comes, the second page stays.
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(26)
    loaded = len(asked)
    page.clock.run_for(5_500)
    # The next request the page makes is this filter's: any refresh would have been asked for first.
    with page.expect_request(lambda request: "event_type=customer.created" in request.url):
        event_type.select_option("customer.created")
    expect(rows).to_have_count(2)
    assert len(asked) - loaded == 1, asked[loaded:]

    # A second page that comes back after the filters changed belongs to another list: it is dropped.
    event_type.select_option(label="All event types")
    expect(rows).to_have_count(25)
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route(lambda url: urlparse(url).path == path and "cursor=" in url, hold)
    with page.expect_request(lambda request: "cursor=" in request.url):
        page.get_by_role("button", name="Load more").click()
    event_type.select_option("customer.created")
    expect(rows).to_have_count(2)
    assert len(held) == 1
    with page.expect_event("requestfinished", lambda request: "cursor=" in request.url):
        held[0].continue_()
    # Its answer has reached the page; one refresh more, there and back, before looking at the list.
    said = live.inner_text()
    with page.expect_request(lambda request: "event_type=customer.created" in request.url):
        page.clock.run_for(5_500)
    expect(live).not_to_have_text(said)
    expect(rows).to_have_count(2)
    assert rows.count() == 2
    tab.check_view()
    tab.close()
