"""The dashboard embedded in a host product, in a real browser: examples/portal-host end to end.

The example host (its own process, its own origin) plays the billing platform's web app: its backend
holds tenant_a's key with the `portal` scope and opens a portal session when its page loads; its page
frames our dashboard, which an API replica of the shared stack lets that origin (and no other) frame.
A person adds an endpoint and reads a delivery inside the frame; every request, response, storage and
page the browser held is searched for an API key afterwards. Sessions that end, by time or revoked,
say so in the frame and tell the host, which opens another.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, Frame, Page, Request, Response, Route, expect

from launcher import Stack, free_port
from tests.conftest import KEYS, api_replica, emit, wait_for
from tests.receiver import Receiver
from tests.test_dashboard_browser import TIMEOUT_MS, Session, page_server

HOST_SCRIPT = Path(__file__).parent.parent / "examples" / "portal-host" / "host.py"
PORTAL_KEY = "key_a_host_backend_" + "h" * 20  # tenant_a's key for the host's backend: portal scope only
EVERY_KEY = [*KEYS.values(), PORTAL_KEY]
# What examples/portal-host asks its sessions to look like.
HOST_TITLE = "Acme Billing webhooks"
HOST_ACCENT = "rgb(15, 157, 88)"  # #0f9d58


@dataclass(frozen=True)
class Embedding:
    api_url: str
    host_port: int
    short_host_port: int  # a second host whose sessions last seconds

    @property
    def host_url(self) -> str:
        return f"http://127.0.0.1:{self.host_port}"


@pytest.fixture(scope="module")
def embedding(stack: Stack) -> Iterator[Embedding]:
    host_port, short_host_port = free_port(), free_port()
    keys = ",".join([*(f"{t}:{k}" for t, k in KEYS.items()), f"tenant_a:{PORTAL_KEY}:portal"])
    origins = f"http://127.0.0.1:{host_port},http://127.0.0.1:{short_host_port}"
    with api_replica(stack, WEBHOOKS_API_KEYS=keys, WEBHOOKS_PORTAL_FRAME_ANCESTORS=origins) as api_url:
        yield Embedding(api_url, host_port, short_host_port)


@contextmanager
def host_product(api_url: str, port: int, **env: str) -> Iterator[str]:
    """examples/portal-host/host.py running on `port`, stopped by its process id."""
    full_env = {
        **os.environ,
        "WEBHOOKS_API_URL": api_url,
        "WEBHOOKS_API_KEY": PORTAL_KEY,
        "HOST_PORT": str(port),
        **env,
    }
    process = subprocess.Popen([sys.executable, str(HOST_SCRIPT)], env=full_env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=30, what="the host product to start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


class Tab(Session):
    """A browser tab that may reach the host's origin and the API's, and nothing else; it records every
    request and response, to be searched for keys."""

    def __init__(self, browser: Browser, api_url: str, host_url: str) -> None:
        self.allowed: tuple[str, ...] = (api_url + "/", host_url + "/")
        self.seen: list[str] = []
        self.responses: list[Response] = []
        super().__init__(browser, api_url)
        self.page.on("request", self._record_request)
        self.page.on("response", self._record_response)

    def _only_local(self, route: Route, request: Request) -> None:
        if request.url.startswith(self.allowed) or request.url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(request.url)
            route.abort()

    def _record_request(self, request: Request) -> None:
        self.seen.append(request.url)
        self.seen.extend(f"{name}: {value}" for name, value in request.all_headers().items())
        self.seen.append(request.post_data or "")

    def _record_response(self, response: Response) -> None:
        self.responses.append(response)  # read once the page is done: not from inside an event

    def dashboard(self, api_url: str) -> Frame:
        def found() -> Frame | None:
            return next((f for f in self.page.frames if f.url.startswith(api_url + "/dashboard/")), None)

        return wait_for(found, timeout=TIMEOUT_MS / 1000, what="the dashboard's frame")

    def assert_no_api_key_reached_the_browser(self) -> None:
        held = list(self.seen)
        read: list[str] = []
        for response in self.responses:
            held.extend(f"{name}: {value}" for name, value in response.all_headers().items())
            if response.status in (200, 201, 202):
                held.append(response.text())
                read.append(response.url)
        # What the host's backend answered its page with is what matters most, and was read.
        assert any(url.endswith("/webhooks-session") for url in read), read
        for frame in self.page.frames:
            held.append(frame.content())
            held.append(str(frame.evaluate("JSON.stringify(Object.entries(sessionStorage))")))
            held.append(str(frame.evaluate("JSON.stringify(Object.entries(localStorage))")))
        held.append(str(self.context.cookies()))
        assert not any(name.startswith("x-api-key") for name in held)
        for key in EVERY_KEY:
            assert not any(key in text for text in held), "an API key reached the browser"


@contextmanager
def session_in_the_host(browser: Browser, embedding: Embedding) -> Iterator[tuple[Tab, str]]:
    """A tab on the host product's page (at the URL given with it), once its frame shows the portal
    session it opened; closed after the block."""
    expect.set_options(timeout=TIMEOUT_MS)
    with host_product(embedding.api_url, embedding.host_port) as host_url:
        tab = Tab(browser, embedding.api_url, host_url)
        try:
            tab.page.goto(host_url)
            expect(tab.page.frame_locator("#webhooks").locator("#session-ends")).to_be_visible()
            yield tab, host_url
        finally:
            tab.close()


def _frame_storage(frame: Frame) -> dict[str, str]:
    return dict(frame.evaluate("Object.fromEntries(Object.entries(sessionStorage))"))


def test_the_host_page_embeds_the_dashboard_and_no_api_key_reaches_the_browser(
    browser: Browser, embedding: Embedding, api: httpx.Client, receiver: Receiver
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    receiver.script("/embedded", [])
    with host_product(embedding.api_url, embedding.host_port) as host_url:
        tab = Tab(browser, embedding.api_url, host_url)
        page = tab.page
        page.goto(host_url)
        frame = page.frame_locator("#webhooks")
        expect(frame.get_by_text(re.compile(r"^Session ends in \d+ minutes \(at "))).to_be_visible()
        # The host heard the page was ready, and sent its theme; the address bar holds no token any more.
        expect(page.locator("#status")).to_contain_text("Session until")
        dashboard = tab.dashboard(embedding.api_url)
        assert "session=" not in dashboard.url and dashboard.url.endswith("#/webhooks")
        assert dashboard.evaluate("document.documentElement.dataset.theme") == "dark"
        brand = "getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()"
        assert dashboard.evaluate(brand) == "#0f9d58"
        tab.shot("embedded-endpoints")

        # Setting Up Webhooks, inside the frame.
        frame.get_by_role("link", name="Add a webhook").first.click()
        frame.get_by_label("Endpoint URL").fill(receiver.url("/embedded"))
        frame.get_by_label("Description").fill("Added from the host product")
        frame.get_by_role("button", name="Add webhook").click()
        expect(frame.get_by_role("heading", name="Webhook added")).to_be_visible()
        [endpoint] = api.get("/v1/webhooks/endpoints").json()["items"]
        assert endpoint["description"] == "Added from the host product"

        # Webhook Logs: the platform emits (its backend, with its own key), the person reads the delivery
        # on the new endpoint's page, where adding it led.
        expect(frame.get_by_role("heading", name=receiver.url("/embedded"))).to_be_visible()
        event = emit(api, "invoice.created", data={"object": {"id": "inv_embedded", "total": "99.00"}})
        row = frame.locator(f'tr[data-delivery-id="{event["id"]}:{endpoint["id"]}"]')
        expect(row).to_contain_text("Succeeded")
        row.get_by_role("link", name="invoice.created").click()
        expect(frame.locator("#payload")).to_contain_text('"id": "inv_embedded"')
        expect(frame.locator('li[data-attempt="1"]')).to_contain_text("HTTP 200")
        tab.shot("embedded-delivery")

        # The host switches the theme while the page is open.
        page.get_by_role("button", name="Light theme").click()
        expect(frame.locator("html")).to_have_attribute("data-theme", "light")

        storage = _frame_storage(dashboard)
        assert storage["flexprice.webhooks.sessionToken"].count(".") == 2  # the session's JWT, no key
        assert "flexprice.webhooks.apiKey" not in storage
        tab.assert_no_api_key_reached_the_browser()
        tab.close()


def test_only_the_host_may_set_the_theme(browser: Browser, embedding: Embedding) -> None:
    # Another frame on the host's page (an ad, a widget) is of another origin: its messages are ignored.
    expect.set_options(timeout=TIMEOUT_MS)
    widget = (
        "<script>parent.frames[0].postMessage("
        "{type: 'flexprice-webhooks:theme', theme: 'light', accent: '#ff0000'}, '*');"
        "parent.postMessage({type: 'widget-posted'}, '*')</script>"
    )
    with host_product(embedding.api_url, embedding.host_port) as host_url, page_server(widget) as widget_url:
        tab = Tab(browser, embedding.api_url, host_url)
        tab.allowed = (*tab.allowed, widget_url)
        page = tab.page
        page.add_init_script(
            "window.__told = []; addEventListener('message', (e) => __told.push(e.data.type));"
        )
        page.goto(host_url)
        expect(page.locator("#status")).to_contain_text("Session until")
        dashboard = tab.dashboard(embedding.api_url)
        expect(page.frame_locator("#webhooks").locator("html")).to_have_attribute("data-theme", "dark")
        page.evaluate(
            "(url) => { const f = document.createElement('iframe'); f.src = url; f.id = 'widget';"
            " document.body.append(f); }",
            widget_url,
        )
        wait_for(lambda: "widget-posted" in page.evaluate("window.__told"), what="the widget's message")
        # The widget posted first, and was ignored; the host's own message after it (the theme alone) is
        # obeyed, and the accent is still the host's, not the widget's red.
        page.evaluate(
            "() => document.getElementById('webhooks').contentWindow.postMessage("
            "{type: 'flexprice-webhooks:theme', theme: 'light'}, '*')"
        )
        expect(page.frame_locator("#webhooks").locator("html")).to_have_attribute("data-theme", "light")
        brand = "getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()"
        assert dashboard.evaluate(brand) == "#0f9d58"
        tab.close()


def test_a_session_that_ends_says_so_and_the_host_opens_another(
    browser: Browser, embedding: Embedding
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    with host_product(embedding.api_url, embedding.short_host_port, HOST_SESSION_SECONDS="5") as host_url:
        tab = Tab(browser, embedding.api_url, host_url)
        page = tab.page
        page.add_init_script(
            "window.__told = []; addEventListener('message', (e) => __told.push(e.data.type));"
        )
        page.goto(host_url)
        frame = page.frame_locator("#webhooks")
        expect(frame.get_by_role("heading", name="Your session has ended")).to_be_visible()
        expect(frame.get_by_text("sessions last a limited time")).to_be_visible()
        expect(frame.get_by_text("go back to the product that showed you this page")).to_be_visible()
        expect(page.locator("#status")).to_have_text("Your webhooks session ended.")
        # Ended or not, the page inside the host is the host's: no operator sign-in, no brand of ours.
        expect(frame.get_by_role("button", name="Sign in with an API key")).to_have_count(0)
        expect(frame.get_by_label("API key")).to_have_count(0)
        expect(frame.locator("#host-title")).to_have_text(HOST_TITLE)
        assert "Flexprice" not in tab.dashboard(embedding.api_url).evaluate("document.body.innerText")
        tab.shot("embedded-session-ended")
        dashboard = tab.dashboard(embedding.api_url)
        assert "flexprice.webhooks.sessionToken" not in _frame_storage(dashboard)

        page.get_by_role("button", name="Open webhooks again").click()
        wait_for(
            lambda: page.evaluate("window.__told.filter((t) => t.endsWith(':ready')).length") >= 2,
            what="a second session",
        )
        told = page.evaluate("window.__told")
        assert told[:2] == ["flexprice-webhooks:ready", "flexprice-webhooks:session-ended"]
        tab.close()


def test_a_revoked_session_says_so_in_the_frame(
    browser: Browser, embedding: Embedding, api: httpx.Client, stack: Stack
) -> None:
    with session_in_the_host(browser, embedding) as (tab, _):
        page = tab.page
        frame = page.frame_locator("#webhooks")
        dashboard = tab.dashboard(embedding.api_url)
        token = _frame_storage(dashboard)["flexprice.webhooks.sessionToken"]
        session_id = jwt.decode(token, options={"verify_signature": False})["jti"]
        # Revoked through the stack's own API process: the replica serving the frame refuses it too.
        assert api.delete(f"/v1/portal/sessions/{session_id}").status_code == 204
        # The frame's next request meets it: this move to another page. Not a click on the nav's link: on a
        # loaded machine the frame's first request may still be on its way, is refused, and the signed-in
        # view, nav and link included, never shows (a CI run beside a CPU hog waited 45 s for the link).
        dashboard.evaluate("location.hash = '#/failed'")
        expect(frame.get_by_role("heading", name="Your session has ended")).to_be_visible()
        expect(frame.get_by_text("this portal session was revoked")).to_be_visible()
        expect(page.locator("#status")).to_have_text("Your webhooks session is over.")


def test_a_site_the_operator_did_not_list_cannot_frame_the_dashboard(
    browser: Browser, embedding: Embedding, api: httpx.Client
) -> None:
    url = api.post(f"{embedding.api_url}/v1/portal/sessions").json()["url"]
    with page_server(f'<iframe name="dashboard" src="{url}"></iframe>') as other_origin:
        context = browser.new_context()
        refused: list[str] = []
        try:
            page: Page = context.new_page()
            page.on("console", lambda message: refused.append(message.text))
            page.goto(other_origin, wait_until="load", timeout=TIMEOUT_MS)
            dashboard = page.frame(name="dashboard")
            assert dashboard is not None
            assert "Flexprice" not in dashboard.evaluate("document.documentElement.innerText")
            wait_for(lambda: any("frame-ancestors" in text for text in refused), what="the refusal")
            assert any(embedding.host_url in text for text in refused), refused
        finally:
            context.close()


def test_an_operator_key_that_cannot_read_is_told_so_at_sign_in(
    browser: Browser, embedding: Embedding
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    tab = Session(browser, embedding.api_url)
    page = tab.page
    page.goto(embedding.api_url + "/dashboard/")
    page.get_by_label("API key").fill(PORTAL_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "That API key cannot read webhooks (its scopes: portal)"
    )
    assert page.evaluate("sessionStorage.length") == 0
    tab.close()


def test_the_host_brands_the_page_and_none_of_our_chrome_shows(
    browser: Browser, embedding: Embedding
) -> None:
    with session_in_the_host(browser, embedding) as (tab, host_url):
        frame = tab.page.frame_locator("#webhooks")
        dashboard = tab.dashboard(embedding.api_url)
        # The look comes from the session (GET /v1/me), not from the page's address.
        assert "accent=" not in dashboard.url and "title=" not in dashboard.url
        expect(frame.locator("#host-title")).to_have_text(HOST_TITLE)
        logo = frame.locator("#host-logo")
        expect(logo).to_be_visible()
        expect(logo).to_have_attribute("src", f"{host_url}/logo.svg")
        # Loaded: the Content-Security-Policy lets the page show images of the origins that frame it.
        wait_for(
            lambda: dashboard.evaluate("document.getElementById('host-logo').naturalWidth") > 0,
            what="the host's logo to load",
        )
        add = frame.get_by_role("link", name="Add a webhook").first
        expect(add).to_be_visible()
        assert add.evaluate("(e) => getComputedStyle(e).backgroundColor") == HOST_ACCENT
        assert HOST_TITLE in dashboard.evaluate("document.title")
        # None of our chrome: no brand, no second breadcrumb, no tenant, no Sign out.
        for chrome in (".brand", "#crumbs", "#tenant-label", "#sign-out"):
            expect(frame.locator(chrome)).to_be_hidden()
        shown = dashboard.evaluate("document.body.innerText")
        for word in ("Flexprice", "Developers", "Tenant:", "Sign out"):
            assert word not in shown, word
        expect(frame.get_by_role("button", name="Sign out")).to_have_count(0)
        tab.shot("embedded-white-label")


def test_an_operator_still_sees_the_product_chrome(browser: Browser, embedding: Embedding) -> None:
    # The same page signed in with an API key, outside any frame: the brand, the tenant and Sign out.
    expect.set_options(timeout=TIMEOUT_MS)
    tab = Session(browser, embedding.api_url)
    tab.sign_in("tenant_a")
    page = tab.page
    expect(page.locator(".brand")).to_be_visible()
    expect(page.locator("#crumbs")).to_be_visible()
    expect(page.get_by_text("Tenant: tenant_a")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator("#host-title")).to_be_hidden()
    expect(page.locator("#host-logo")).to_have_count(0)
    tab.close()


def test_url_parameters_set_what_the_session_leaves_unset_and_never_markup(
    browser: Browser, embedding: Embedding, api: httpx.Client
) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    brand = "getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()"

    def opened(query: str, *, width: int = 1280, **body: object) -> Session:
        url = api.post(f"{embedding.api_url}/v1/portal/sessions", json=body or None).json()["url"]
        base, fragment = url.split("#", 1)
        tab = Session(browser, embedding.api_url, width=width)
        tab.page.goto(f"{base}?{query}#{fragment}")
        expect(tab.page.locator("#session-ends")).to_be_visible()
        return tab

    # No look in the session: the page's address may give one (documented for hosts that cannot ask).
    tab = opened("title=Ledger%20webhooks&accent=%23aa3300")
    expect(tab.page.locator("#host-title")).to_have_text("Ledger webhooks")
    assert tab.page.evaluate(brand) == "#aa3300"
    expect(tab.page.locator(".brand")).to_be_hidden()
    tab.check_view()
    tab.close()
    # Markup is not a title: nothing is shown rather than the text, and no element is made of it.
    tab = opened("title=%3Cimg%20src%3Dx%20id%3Dinjected%3E&accent=red")
    expect(tab.page.locator("#host-brand")).to_be_hidden()
    assert tab.page.locator("#injected").count() == 0
    assert tab.page.evaluate(brand) == "#3b43d6"  # ours: "red" is not #rrggbb
    tab.close()
    # The longest title there may be, in one word, on a phone: it wraps, the page does not scroll sideways.
    long_title = "W" * 80
    tab = opened("", width=390, appearance={"title": long_title})
    expect(tab.page.locator("#host-title")).to_have_text(long_title)
    tab.check_view()
    tab.close()
    # What the session set wins over the address, which anyone could have edited.
    tab = opened(
        "title=Unsigned&accent=%23ff0000",
        appearance={"title": "Signed webhooks", "accent_color": "#0f9d58"},
    )
    expect(tab.page.locator("#host-title")).to_have_text("Signed webhooks")
    assert tab.page.evaluate(brand) == "#0f9d58"
    assert tab.page.evaluate("document.title") == "Signed webhooks"
    tab.close()
