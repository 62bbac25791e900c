"""The dashboard's states and words in Chromium against the real stack (issue 23): what a view shows
while it loads or when the API hangs, what it says of a delivery it cannot resend, and the words a new
user tripped over. The fixtures and the tab are those of tests/test_dashboard_browser.py.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import Browser, Error, Route, expect

from launcher import Stack
from tests.conftest import create_endpoint, emit, standalone_api_process, wait_delivery, wait_for
from tests.faults import paused
from tests.receiver import Answer, Receiver
from tests.test_dashboard_browser import TIMEOUT_MS, Session, tab

__all__ = ["tab"]  # the fixture, shared


def test_long_type_names_wrap_at_phone_width(
    browser: Browser, stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    endpoint = create_endpoint(api, receiver.script("/narrow", []))
    event = emit(api, "invoice.payment_status_updated")
    delivery_id = f"{event['id']}:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    narrow = Session(browser, stack.api_url, width=390, height=844)
    try:
        page = narrow.page
        narrow.sign_in("tenant_a")
        for view in (f"#/deliveries/{delivery_id}", f"#/events/{event['id']}"):
            page.goto(f"{stack.api_url}/dashboard/{view}")
            expect(page.get_by_role("heading", name="invoice.payment_status_updated")).to_be_visible()
            # Nothing wider than the window: the page never scrolls sideways (the title wraps).
            widths = page.evaluate(
                "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], (view, widths)
            narrow.check_view()
        narrow.shot("delivery-390")
    finally:
        narrow.close()


def test_resend_is_disabled_with_the_reason_when_the_endpoint_is_disabled_or_deleted(
    tab: Session, api: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    kept = create_endpoint(api, receiver.script("/kept", []))
    gone = create_endpoint(api, receiver.script("/gone", []))
    event = emit(api, "invoice.created")
    for endpoint in (kept, gone):
        wait_delivery(api, f"{event['id']}:{endpoint['id']}", lambda d: d["status"] == "succeeded")
    tab.sign_in("tenant_a")

    # Enabled: Resend is offered.
    page.goto(f"{tab.base_url}/dashboard/#/deliveries/{event['id']}:{kept['id']}")
    expect(page.get_by_role("button", name="Resend")).to_be_enabled()

    assert api.patch(f"/v1/webhooks/endpoints/{kept['id']}", json={"enabled": False}).status_code == 200
    page.reload()
    resend = page.get_by_role("button", name="Resend")
    expect(resend).to_be_disabled()
    expect(page.locator("#retry-blocked")).to_contain_text("Its endpoint is disabled")
    expect(page.locator("#retry-blocked")).to_contain_text("enable it")
    tab.check_view()

    assert api.delete(f"/v1/webhooks/endpoints/{gone['id']}").status_code == 204
    page.goto(f"{tab.base_url}/dashboard/#/deliveries/{event['id']}:{gone['id']}")
    expect(page.get_by_role("heading", name="invoice.created")).to_be_visible()
    expect(page.get_by_role("button", name="Resend")).to_be_disabled()
    expect(page.locator("#retry-blocked")).to_contain_text("Its endpoint was deleted")
    tab.check_view()
    tab.shot("resend-endpoint-deleted")


def test_the_words_a_new_user_tripped_over(tab: Session, api: httpx.Client, receiver: Receiver) -> None:
    page = tab.page
    page.goto(tab.base_url + "/dashboard/")
    help_text = page.locator("#api-key-help")
    expect(help_text).to_contain_text("make run prints a dev key")
    assert "`" not in help_text.inner_text()
    expect(help_text.locator("code")).to_have_text("make run")
    tab.sign_in("tenant_a")

    # The picker: one type is "1 type"; All events says what it leaves out, and where to find it.
    page.get_by_role("link", name="Add a webhook").first.click()
    all_help = page.locator("#events-all-help")
    expect(all_help).to_contain_text("webhook_endpoint.")
    expect(all_help).to_contain_text("not included")
    page.get_by_label("Selected events").check()
    fees = page.locator(".event-group", has_text="All fee events")
    expect(fees.get_by_role("button", name="Show 1 type", exact=True)).to_be_visible()
    operational = page.locator(".event-group", has_text="All webhook endpoint events")
    expect(operational).to_contain_text("about your endpoints")
    page.get_by_label("All invoice events").check()
    page.get_by_label("All wallet events").check()
    page.get_by_label("Endpoint URL").fill(receiver.url("/words"))
    page.get_by_role("button", name="Add webhook").click()
    created = page.locator("section.created")
    expect(created).to_contain_text("events of 14 types")
    assert " 14 events" not in created.inner_text()
    [endpoint] = api.get("/v1/webhooks/endpoints").json()["items"]

    # Disabled by hand: said once, not "Disabled by hand …: disabled by hand".
    page.get_by_role("button", name="Disable", exact=True).click()
    page.get_by_role("button", name="Disable endpoint").click()
    disabled = page.locator("#disabled-detail")
    expect(disabled).to_contain_text("Disabled by hand")
    assert disabled.inner_text().lower().count("by hand") == 1, disabled.inner_text()

    # "Endpoint enabled" is the answer to Enable, not to whatever the person does next.
    page.get_by_role("button", name="Enable", exact=True).click()
    flashed = page.get_by_text("Endpoint enabled.")
    expect(flashed).to_be_visible()
    page.get_by_role("button", name="Send test event").click()
    expect(flashed).to_have_count(0)

    # A recovery that ended is not "Recovering" beside "Completed".
    page.get_by_role("button", name="Recover failed since…").click()
    page.get_by_role("button", name="Start recovery").click()
    expect(page.locator("#recovery-status")).to_have_text("Completed")
    expect(page.locator("#recovery-progress")).not_to_contain_text("Recovering")
    expect(page.locator("#recovery-progress")).to_contain_text("Recovery of failed deliveries")

    # The list says how many types, not how many events.
    page.goto(f"{tab.base_url}/dashboard/#/webhooks")
    expect(page.locator(f'tr[data-endpoint-id="{endpoint["id"]}"]')).to_contain_text("14 event types")
    tab.check_view()


def test_a_portal_session_says_its_end_with_a_time_zone(
    browser: Browser, stack: Stack, api: httpx.Client
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    url = api.post("/v1/portal/sessions", json={"expires_in": 3600}).json()["url"]
    embedded = Session(browser, stack.api_url)
    try:
        embedded.page.goto(url)
        ends = embedded.page.locator("#session-ends")
        expect(ends).to_contain_text(re.compile(r"Session ends in .+ \(at .+ UTC\)"))
    finally:
        embedded.close()


# The page says the API did not answer after 10 s (api.js ANSWER_WITHIN_MS); the expects wait longer.
HANG_SAID = "did not answer in 10 seconds"


def test_a_view_says_loading_at_once_and_that_the_api_hangs_with_try_again(
    tab: Session, api: httpx.Client, receiver: Receiver
) -> None:
    """The API held by the test (Playwright holds the request): the view is "Loading…" while it waits,
    then says the API did not answer, and "Try again" loads it once the API answers."""
    page = tab.page
    endpoint = create_endpoint(api, receiver.script("/held", []))
    tab.sign_in("tenant_a")
    held: list[Route] = []
    pattern = f"**/v1/webhooks/endpoints/{endpoint['id']}"
    page.route(pattern, lambda route: held.append(route))
    page.goto(f"{tab.base_url}/dashboard/#/webhooks/{endpoint['id']}")
    loading = page.locator("#main").get_by_role("status").filter(has_text="Loading…")
    expect(loading).to_be_visible()
    # Playwright hands the held request to Python when the test next waits on the page, which can be
    # after the page already shows "Loading…": wait for it rather than read `held` at once.
    for _ in range(TIMEOUT_MS // 50):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page asked the API for the endpoint and has no answer yet"
    expect(loading).to_be_visible()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(HANG_SAID)
    expect(loading).to_have_count(0)
    tab.check_view()
    tab.shot("api-hangs")
    page.unroute(pattern)
    for route in held:  # the page gave up on them
        try:
            route.abort()
        except Error:
            pass
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("heading", name=receiver.url("/held"))).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)


@contextmanager
def api_process(stack: Stack) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A second API process of `stack` (as conftest's `api_replica`), with its process to pause."""
    shared = {name: value for name, value in stack.env.items() if name.startswith("WEBHOOKS_")}
    shared["WEBHOOKS_TEMPORAL_ADDRESS"] = f"127.0.0.1:{stack.settings.temporal_port}"
    with standalone_api_process(shared) as (base_url, process):
        yield base_url, process


def test_a_frozen_api_process_is_said_with_try_again(browser: Browser, stack: Stack) -> None:
    """The API process stopped for real (SIGSTOP: its socket accepts, nothing answers): not a blank page."""
    expect.set_options(timeout=TIMEOUT_MS)
    with api_process(stack) as (base_url, process):
        frozen = Session(browser, base_url)
        try:
            page = frozen.page
            frozen.sign_in("tenant_a")
            with paused(process):
                page.get_by_role("link", name="Failed deliveries").click()
                expect(page.get_by_role("heading", name="Failed deliveries")).to_be_visible()
                expect(page.get_by_role("status").filter(has_text="Loading")).to_be_visible()
                expect(page.get_by_role("alert")).to_contain_text(HANG_SAID)
                expect(page.get_by_role("button", name="Try again")).to_be_visible()
            page.get_by_role("button", name="Try again").click()
            expect(page.get_by_role("alert")).to_have_count(0)
            expect(page.get_by_label("Event type")).to_be_visible()
            frozen.check_view()
        finally:
            frozen.close()


UTC_ROW_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


def test_the_log_reads_by_time_exact_times_presets_and_a_to_that_includes_its_minute(
    tab: Session, api: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    endpoint = create_endpoint(api, receiver.script("/by-time", []))
    emitted = [emit(api, "customer.updated")["id"] for _ in range(3)]
    for event_id in emitted:
        wait_delivery(api, f"{event_id}:{endpoint['id']}", lambda d: d["status"] == "succeeded")

    # From visibility, which lags each delivery's own state: read once all three are there.
    def all_listed() -> list[dict[str, Any]] | None:
        page_of = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries").json()
        items: list[dict[str, Any]] = page_of["items"]
        return items if len(items) == 3 else None

    listed = wait_for(all_listed, timeout=90, what="the 3 deliveries listed")
    tab.sign_in("tenant_a")
    page.get_by_role("link", name=receiver.url("/by-time")).click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    # Newest first by acceptance, as the API lists them; each row with its exact time in UTC.
    assert [rows.nth(n).get_attribute("data-delivery-id") for n in range(3)] == [d["id"] for d in listed]
    newest = rows.first.locator("td.accepted time")
    expect(newest).to_have_text(UTC_ROW_TIME)
    accepted = datetime.fromisoformat(listed[0]["created_at"]).astimezone(UTC)
    expect(newest).to_have_text(accepted.strftime("%Y-%m-%d %H:%M:%S UTC"))

    # From = To = the minute they were accepted in: To takes its whole minute.
    def minute_of(d: dict[str, str]) -> str:
        return datetime.fromisoformat(d["created_at"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")

    minute = min(minute_of(d) for d in listed)
    in_minute = [d for d in listed if minute_of(d) == minute]
    page.get_by_label("From", exact=True).fill(minute)
    page.get_by_label("To", exact=True).fill(minute)
    expect(page).to_have_url(re.compile(r"before=\d{4}-"))
    expect(page.get_by_text("No deliveries match these filters.")).to_have_count(0)
    expect(rows).to_have_count(len(in_minute))
    expect(page.get_by_label("Accepted")).to_have_value("custom")

    # A range that ends before it starts, said with the fields' names.
    later = (datetime.fromisoformat(minute) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("From", exact=True).fill(later)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("From is later than To")
    expect(alert).not_to_contain_text("created_")

    # Presets: the last hour has them, and the address keeps the preset, not a fixed time.
    page.get_by_label("Accepted").select_option("1h")
    expect(rows).to_have_count(3)
    expect(page).to_have_url(re.compile(r"[?&]range=1h$"))
    expect(page.get_by_label("To", exact=True)).to_have_value("")
    page.reload()
    expect(page.get_by_label("Accepted")).to_have_value("1h")
    expect(rows).to_have_count(3)
    for preset in ("24h", "7d"):
        page.get_by_label("Accepted").select_option(preset)
        expect(page).to_have_url(re.compile(rf"[?&]range={preset}$"))
        expect(rows).to_have_count(3)
    tab.check_view()
    tab.shot("history-by-time")


def test_an_endpoints_history_charts_its_successes_and_failures_over_the_window(
    tab: Session, api: httpx.Client, receiver: Receiver
) -> None:
    page = tab.page
    path = "/charted"
    endpoint = create_endpoint(api, receiver.script(path, [Answer(200)]))
    first = emit(api, "wallet.created")["id"]
    wait_delivery(api, f"{first}:{endpoint['id']}", lambda d: d["status"] == "succeeded")
    receiver.script(path, [Answer(500, b"down")])
    second = emit(api, "wallet.created")["id"]
    wait_delivery(api, f"{second}:{endpoint['id']}", lambda d: d["status"] == "failed")
    tab.sign_in("tenant_a")
    page.get_by_role("link", name=receiver.url(path)).click()
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("#chart-totals")).to_have_text("1 succeeded, 1 failed")
    bars = page.locator("#history-chart .chart-bar")
    expect(bars).to_have_count(12)
    # The newest bar (the last twelfth of 24 hours) holds both, one of each colour.
    expect(bars.last.locator(".chart-ok")).to_have_count(1)
    expect(bars.last.locator(".chart-bad")).to_have_count(1)
    expect(bars.last).to_have_attribute("title", re.compile(r"UTC: 1 succeeded, 1 failed$"))
    # A window before them: nothing to chart.
    page.get_by_label("From", exact=True).fill("2026-01-01T00:00")
    page.get_by_label("To", exact=True).fill("2026-01-01T01:00")
    expect(page.locator("#chart-totals")).to_have_text("0 succeeded, 0 failed")
    tab.check_view()
    tab.shot("history-chart")
