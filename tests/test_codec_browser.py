"""The Temporal Web UI (the dev server's own, as `make run` starts it) shows our encrypted payloads through
the API's codec endpoint to a signed-in operator, and only to them. Debian's Chromium, driven by Playwright.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from playwright.sync_api import Browser, BrowserContext, expect

from domain import ids
from launcher import Stack
from tests.conftest import OPERATOR_KEY, create_endpoint, emit, settled, wait_delivery
from tests.receiver import Receiver
from tests.test_dashboard_browser import TIMEOUT_MS

MARKER = "cus_UI_MARKER_51d0"


def _ui_context(browser: Browser, stack: Stack) -> BrowserContext:
    """A browser whose Web UI uses the codec with cross-origin credentials (its own codec settings)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    codec = json.dumps(f"{stack.api_url}/codec")
    context.add_init_script(
        f"""
        localStorage.setItem("endpoint", {json.dumps(codec)});
        localStorage.setItem("includeCredentials", "true");
        localStorage.setItem("overrideRemoteCodecConfiguration", "true");
        """
    )
    return context


def _delivery(api: httpx.Client, receiver: Receiver) -> dict[str, Any]:
    create_endpoint(api, receiver.script("/ui", []))
    event_id = emit(api, "customer.updated", data={"object": {"id": MARKER}})["id"]
    endpoint_id = api.get("/v1/webhooks/endpoints").json()["items"][0]["id"]
    return wait_delivery(api, f"{event_id}:{endpoint_id}", settled)


def test_the_web_ui_shows_payloads_to_a_signed_in_operator_only(
    browser: Browser, stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    delivery = _delivery(api, receiver)
    workflow_page = delivery["workflow_url"]
    assert workflow_page and workflow_page.startswith(str(stack.settings.ui_url))

    # Not signed in: the UI asks the codec, is refused, and shows no customer data.
    context = _ui_context(browser, stack)
    try:
        page = context.new_page()
        with page.expect_response(lambda r: "/codec/decode" in r.url, timeout=TIMEOUT_MS) as answer:
            page.goto(workflow_page, timeout=TIMEOUT_MS)
        assert answer.value.status == 401
        expect(page.get_by_text("deliver_once").first).to_be_visible(timeout=TIMEOUT_MS)
        assert MARKER not in page.content() and '"webhook_type": "customer.updated"' not in page.content()
    finally:
        context.close()

    # Signed in at /codec/ with the operator key: the same page shows the payload, decoded.
    context = _ui_context(browser, stack)
    try:
        page = context.new_page()
        page.goto(f"{stack.api_url}/codec/", timeout=TIMEOUT_MS)
        page.get_by_label("Operator key").fill(OPERATOR_KEY)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("You are signed in.")).to_be_visible(timeout=TIMEOUT_MS)
        # The delivery's own input, decoded (it names the event; the body is kept once, in the event's).
        page.goto(workflow_page, timeout=TIMEOUT_MS)
        expect(page.locator("body")).to_contain_text('"webhook_type": "customer.updated"', timeout=TIMEOUT_MS)
        # The event's page (the delivery's "Parent Workflow"): its input is the payload, decoded.
        event_workflow = quote(ids.event_workflow_id("tenant_a", delivery["event_id"]), safe="")
        page.goto(workflow_page.rsplit("/", 1)[0] + f"/{event_workflow}", timeout=TIMEOUT_MS)
        expect(page.locator("body")).to_contain_text(MARKER, timeout=TIMEOUT_MS)
    finally:
        context.close()
