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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route, expect, sync_playwright

from launcher import Stack
from tests.conftest import KEYS, OUTPUT, create_endpoint, emit, standalone_api, wait_delivery
from tests.receiver import Answer, Receiver

CHROMIUM = "/usr/bin/chromium"
# This machine's network is closed: Chromium must not try its background calls.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 45_000
SCREENSHOTS = OUTPUT / "screenshots"

# Every control a person can reach must have a name a screen reader can say.
UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter((el) => el.getClientRects().length > 0)
  .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
    || el.getAttribute('aria-labelledby') || (/^(A|BUTTON)$/.test(el.tagName) && el.textContent.trim())))
  .map((el) => el.outerHTML.slice(0, 160))"""
PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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
    page.get_by_role("link", name="Failed deliveries").click()
    expect(page.get_by_role("heading", name="Failed deliveries")).to_be_visible()
    row = _row(page, overdue_id)
    expect(row).to_contain_text("invoice.payment_overdue")
    expect(row).to_contain_text(receiver.url("/hooks"))
    # The delivery retried into success above is not listed as failed, not even while Temporal is still
    # deleting the failed run that its retry replaced.
    expect(_row(page, voided_id)).to_have_count(0)
    tab.check_view()
    tab.shot("failed-deliveries")
    receiver.script("/hooks", [Answer(204, b"")])
    row.get_by_role("button", name=re.compile("^Retry")).click()
    expect(row).to_contain_text("Attempt 5: HTTP 204.")
    expect(row).to_contain_text("Succeeded after 5 attempts")

    # The list: counts of the last day per endpoint.
    page.get_by_role("link", name="Endpoints").click()
    endpoint_row = page.locator("tbody tr", has_text=receiver.url("/hooks"))
    # Counted once each, although Temporal may not have deleted the runs that manual retries replaced yet.
    expect(endpoint_row).to_contain_text("4 succeeded")
    expect(endpoint_row).to_contain_text("0 failed")
    expect(endpoint_row).to_contain_text("Healthy")
    expect(endpoint_row).to_contain_text("9 events")
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
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height < 2500, f"the form is {height} px tall at 390 px"
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

    class OnePage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

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
