"""Trace ids in the dashboard's attempt log (issue 24.4), in Chromium against a stack that traces (its spans
go to an OTLP/HTTP collector of the test's own, tests/otlp.py, which this file does not read:
tests/test_tracing.py checks the spans) and names a trace viewer
(`WEBHOOKS_TRACE_URL_TEMPLATE`): each attempt shows its trace id, the one its POST's `traceparent`
carried, with a copy button, and for an operator a link to the trace in the viewer; a portal session sees
the ids and no link, since the viewer is the operators'."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from launcher import Stack
from tests.conftest import KEYS, create_endpoint, emit, wait_delivery
from tests.otlp import HttpCollector, running_traced_stack
from tests.receiver import Answer, Receiver
from tests.test_dashboard_browser import TIMEOUT_MS, Session

VIEWER = "http://127.0.0.1:16686/trace/{trace_id}"  # never opened: the test reads the link


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("traced-dashboard-stack")
    with running_traced_stack(HttpCollector, data_dir, WEBHOOKS_TRACE_URL_TEMPLATE=VIEWER) as traced:
        yield traced.stack


def test_each_attempt_shows_its_trace_id_to_copy_and_operators_a_link_to_the_viewer(
    # First: a stack starts with asyncio.run, which the browser's running loop would forbid.
    traced_stack: Stack,
    browser: Browser,
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    base = traced_stack.api_url
    with (
        Receiver() as receiver,
        httpx.Client(base_url=base, headers={"x-api-key": KEYS["tenant_a"]}, timeout=30) as api,
    ):
        url = receiver.script("/traced-dashboard", [Answer(500, b"no"), Answer(200)])
        endpoint = create_endpoint(api, url)
        delivery_id = f"{emit(api)['id']}:{endpoint['id']}"
        final = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
        traces = [a["trace_id"] for a in final["attempts"]]
        assert len(traces) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", t) for t in traces)
        # The ids the receiver got in traceparent; the API makes the operators' links from them.
        posts = receiver.requests("/traced-dashboard")
        assert [post.headers["traceparent"].split("-")[1] for post in posts] == traces
        assert [a["trace_url"] for a in final["attempts"]] == [VIEWER.format(trace_id=t) for t in traces]

        operator = Session(browser, base)
        page = operator.page
        operator.sign_in("tenant_a")
        page.goto(f"{base}/dashboard/#/deliveries/{delivery_id}")
        for number, trace in enumerate(traces, start=1):
            attempt = page.locator(f'li.attempt[data-attempt="{number}"]')
            expect(attempt.locator(".trace-id")).to_have_text(trace)
            link = attempt.get_by_role("link", name=f"Open the trace of attempt {number}")
            expect(link).to_have_attribute("href", VIEWER.format(trace_id=trace))
            expect(link).to_have_attribute("target", "_blank")
        page.get_by_role("button", name="Copy the trace id of attempt 1").click()
        expect(page.locator('li.attempt[data-attempt="1"]').get_by_text("Copied")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == traces[0]
        operator.check_view()
        operator.shot("delivery-trace-ids")
        operator.close()

        # A portal session's viewer is a customer: the ids, to quote to support, and no link.
        session = api.post("/v1/portal/sessions").json()
        customer = Session(browser, base)
        customer.page.goto(session["url"])
        expect(customer.page.locator("#session-ends")).to_be_visible()
        customer.page.goto(f"{base}/dashboard/#/deliveries/{delivery_id}")
        first = customer.page.locator('li.attempt[data-attempt="1"]')
        expect(first.locator(".trace-id")).to_have_text(traces[0])
        expect(customer.page.get_by_role("link", name=re.compile("Open the trace"))).to_have_count(0)
        customer.check_view()
        customer.close()
        seen = httpx.get(
            f"{base}/v1/webhooks/deliveries/{delivery_id}",
            headers={"authorization": f"Bearer {session['token']}"},
            timeout=30,
        ).json()
        assert [(a["trace_id"], a["trace_url"]) for a in seen["attempts"]] == [(t, None) for t in traces]
