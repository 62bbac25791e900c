"""Custom headers in the dashboard's endpoint form (issue 23, item 4), in Chromium against the real stack:
each header listed by name with its value shown or masked, one removed, one added as secret, then all
removed, each checked against what the API then says. Waits are Playwright's `expect`.
"""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.conftest import create_endpoint
from tests.receiver import Receiver
from tests.test_dashboard_browser import Session, tab  # noqa: F401 (the fixture)


def test_the_form_shows_removes_and_adds_custom_headers(
    tab: Session,  # noqa: F811
    api: httpx.Client,
    receiver: Receiver,
) -> None:
    page = tab.page
    endpoint = create_endpoint(
        api,
        receiver.url("/form-headers"),
        description="Headers in the form",
        headers={
            "Authorization": "Bearer gateway-token-1234",
            "X-Team": "billing",
            "X-Tenant-Ref": {"value": "acme-eu-0042", "secret": True},
        },
    )
    endpoint_id = endpoint["id"]
    read = f"/v1/webhooks/endpoints/{endpoint_id}"
    tab.sign_in("tenant_a")
    page.goto(f"{tab.base_url}/#/webhooks/{endpoint_id}/edit")

    listed = page.get_by_label("Current custom headers")
    expect(listed.locator("li")).to_have_count(3)
    expect(listed).to_contain_text("X-Team: billing")  # neither marked nor named like a secret: shown
    expect(listed).to_contain_text("Authorization: ••••1234")
    expect(listed.locator('li[data-header="X-Tenant-Ref"]')).to_contain_text(
        "X-Tenant-Ref: ••••0042 (secret)"
    )
    expect(page.locator("body")).not_to_contain_text("acme-eu-0042")
    tab.check_view()

    # Remove one, change your mind, remove it again; add one marked secret; save.
    remove_team = page.get_by_role("button", name="Remove header X-Team")
    remove_team.click()
    expect(remove_team).to_have_attribute("aria-pressed", "true")
    expect(listed.locator('li[data-header="X-Team"] del')).to_have_count(1)
    remove_team.click()
    expect(remove_team).to_have_attribute("aria-pressed", "false")
    remove_team.click()
    page.get_by_label("Add or change custom headers").fill("X-Region-Key-Ref: eu-west-77")
    page.get_by_label("Secret: show these values masked").check()
    tab.shot("endpoint-headers-form")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(re.escape(f"#/webhooks/{endpoint_id}") + "$"))
    expect(page.locator("#custom-headers")).to_contain_text("X-Region-Key-Ref: ••••t-77")
    saved = api.get(read).json()
    assert saved["headers"] == {
        "Authorization": "••••1234",
        "X-Tenant-Ref": "••••0042",
        "X-Region-Key-Ref": "••••t-77",
    }
    assert sorted(saved["secret_headers"]) == ["Authorization", "X-Region-Key-Ref", "X-Tenant-Ref"]

    # Saving other settings keeps every header, the secret ones included.
    page.goto(f"{tab.base_url}/#/webhooks/{endpoint_id}/edit")
    expect(page.get_by_label("Current custom headers").locator("li")).to_have_count(3)
    page.get_by_label("Rate limit (deliveries per second)").fill("7")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(re.escape(f"#/webhooks/{endpoint_id}") + "$"))
    expect(page.locator("#rate-limit")).to_contain_text("7 deliveries per second")
    assert api.get(read).json()["headers"] == saved["headers"]

    # Remove them all.
    page.goto(f"{tab.base_url}/#/webhooks/{endpoint_id}/edit")
    page.get_by_role("button", name="Remove all headers").click()
    expect(page.get_by_label("Current custom headers").locator("del")).to_have_count(3)
    expect(page.get_by_role("button", name="Remove all headers")).to_be_hidden()
    tab.check_view()
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(re.escape(f"#/webhooks/{endpoint_id}") + "$"))
    expect(page.locator("#custom-headers")).to_have_text(re.compile("None"))
    assert api.get(read).json()["headers"] == {}
