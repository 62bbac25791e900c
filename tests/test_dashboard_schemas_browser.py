"""Event schemas in the dashboard's event-type picker (issue 22.3), in Chromium at phone width against the
real stack: a type's JSON Schema (`GET /v1/webhooks/event-types/{name}`) as its fields, folded, and whole,
in monospace that wraps, beside its example."""

from __future__ import annotations

import json

import httpx
from playwright.sync_api import Browser, expect

from launcher import Stack
from tests.test_dashboard_browser import TIMEOUT_MS, Session

# Whether an element's content is wider than its box (a line that does not wrap scrolls sideways).
OVERFLOWS = "(el) => el.scrollWidth - el.clientWidth"


def test_the_picker_shows_a_types_schema_folded_and_readable_at_390_px(
    browser: Browser, stack: Stack, api: httpx.Client
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    tab = Session(browser, stack.api_url, width=390, height=844)
    page = tab.page
    tab.sign_in("tenant_a")
    page.goto(f"{stack.api_url}/dashboard/#/webhooks/new")
    page.get_by_label("Selected events").check()
    page.get_by_label("Find event types").fill("billable_metric.created")
    row = page.locator('[data-type="billable_metric.created"]')
    schema = row.locator("details.schema")
    expect(schema).not_to_have_attribute("open", "")
    schema.locator(":scope > summary").click()

    # data.object's fields, each with its type and whether it is required; an object's fields fold inside.
    created_at = schema.locator('li[data-field="created_at"]')
    expect(created_at).to_have_text("created_at string, date-time · required")
    aggregation = schema.locator('li[data-field="aggregation"]')
    expect(aggregation).to_contain_text("aggregation object · required")
    expect(aggregation.locator('li[data-field="type"]')).to_be_hidden()
    aggregation.locator("summary").click()
    expect(aggregation.locator('li[data-field="type"]')).to_have_text("type string · required")
    expect(aggregation.locator('li[data-field="field"]')).to_have_text("field any")

    # The whole schema, as the API serves it, to copy into a code generator.
    served = api.get("/v1/webhooks/event-types/billable_metric.created").json()
    whole = schema.locator("details.schema-json")
    whole.locator("summary").click()
    pre = whole.get_by_label("JSON Schema of billable_metric.created", exact=True)
    expect(pre).to_contain_text('"$schema": "https://json-schema.org/draft/2020-12/schema"')
    assert json.loads(pre.inner_text()) == served["schema"]
    whole.get_by_role("button", name="Copy the JSON Schema of billable_metric.created").click()
    expect(whole.get_by_text("Copied")).to_be_visible()
    assert json.loads(page.evaluate("navigator.clipboard.readText()")) == served["schema"]

    # Readable on a phone: monospace, wrapped, nothing wider than the window.
    assert "monospace" in pre.evaluate("(el) => getComputedStyle(el).fontFamily")
    assert pre.evaluate("(el) => getComputedStyle(el).whiteSpace") == "pre-wrap"
    assert pre.evaluate(OVERFLOWS) <= 0
    assert schema.locator(".schema-fields").first.evaluate(OVERFLOWS) <= 0
    # The example beside it is the API's too.
    example = row.locator("details.example")
    example.locator("summary").click()
    assert json.loads(example.locator("pre").inner_text()) == served["example"]
    tab.check_view()
    tab.shot("event-schema-390")

    # Folded again with one click.
    schema.locator(":scope > summary").click()
    expect(schema.locator(".schema-fields").first).to_be_hidden()
    tab.close()
