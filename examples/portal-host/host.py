"""A host product that embeds the webhooks dashboard: the example of docs/dashboard.md, "Embedding the
dashboard".

It plays the billing platform's own web app. Its page frames our dashboard; its backend keeps the
tenant's API key (ideally one with the `portal` scope only) and, when its signed-in user opens the
Developers › Webhooks page, opens a portal session with it and hands the browser the session's URL, never
the key. When the session ends, the dashboard tells the page (postMessage), which offers to open a new one.
The session carries the host's look (white-label): its title, accent colour and logo, the logo served by
this host itself (`/logo.svg`), so the framed page shows none of the webhooks service's own brand.

    WEBHOOKS_API_URL=http://127.0.0.1:8000 WEBHOOKS_API_KEY=key_... python examples/portal-host/host.py

then open http://127.0.0.1:8400 (`HOST_PORT`). The API must let this origin frame the dashboard:
`WEBHOOKS_PORTAL_FRAME_ANCESTORS=http://127.0.0.1:8400`. Standard library only, to copy into any backend.
`HOST_SESSION_SECONDS` sets how long each session lasts (the API's default otherwise); `HOST_PUBLIC_URL`
is this host's address as browsers reach it (http://127.0.0.1:`HOST_PORT` otherwise), for the logo's URL.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_URL = os.environ.get("WEBHOOKS_API_URL", "http://127.0.0.1:8000").rstrip("/")
API_KEY = os.environ.get("WEBHOOKS_API_KEY", "")
PORT = int(os.environ.get("HOST_PORT", "8400"))
SESSION_SECONDS = os.environ.get("HOST_SESSION_SECONDS")
PUBLIC_URL = os.environ.get("HOST_PUBLIC_URL", f"http://127.0.0.1:{PORT}").rstrip("/")
# Our look inside the webhooks page. The logo must come from an origin the webhooks API lets frame its
# dashboard (WEBHOOKS_PORTAL_FRAME_ANCESTORS): this host's own, here.
APPEARANCE = {
    "title": "Acme Billing webhooks",
    "accent_color": "#0f9d58",
    "logo_url": f"{PUBLIC_URL}/logo.svg",
}
LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
    b'<rect width="64" height="64" rx="14" fill="#0f9d58"/>'
    b'<path d="M18 46 L32 16 L46 46 M24 36 H40" stroke="#fff" stroke-width="6" fill="none" '
    b'stroke-linecap="round" stroke-linejoin="round"/></svg>'
)


def open_webhooks_session() -> dict[str, Any]:
    """Ask the webhooks API for a session of our tenant, with the key only this backend holds."""
    body: dict[str, Any] = {"appearance": APPEARANCE}
    if SESSION_SECONDS:
        body["expires_in"] = int(SESSION_SECONDS)
    request = urllib.request.Request(
        f"{API_URL}/v1/portal/sessions",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"x-api-key": API_KEY, "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        opened: dict[str, Any] = json.load(response)
    # The browser gets the URL (the token is in its fragment) and the end; not the key, nor the id we
    # would revoke the session by (DELETE /v1/portal/sessions/{id}, say when our user signs out).
    return {"url": opened["url"], "expires_at": opened["expires_at"]}


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Developers · Acme Billing</title>
<style>
  body { margin: 0; font: 15px/1.5 system-ui, sans-serif; background: #0b0f17; color: #e8ebf2; }
  header { display: flex; gap: 1.5rem; align-items: center; padding: .75rem 1.25rem; background: #111827; }
  header strong { font-size: 1.1rem; }
  header strong img { vertical-align: -4px; }
  header .user { margin-left: auto; color: #a3adbf; }
  main { padding: 1rem 1.25rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
  .bar { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; margin-bottom: .75rem; }
  #status { color: #a3adbf; margin: 0; }
  button { font: inherit; padding: .35rem .8rem; border-radius: 6px; border: 1px solid #3b455c;
           background: #1b2233; color: inherit; cursor: pointer; }
  iframe { width: 100%; height: 78vh; border: 1px solid #2c354a; border-radius: 8px; background: #0f1420; }
</style>
</head>
<body>
<header><strong><img src="/logo.svg" alt="" width="22" height="22"> Acme Billing</strong>
  <span>Developers › Webhooks</span>
  <span class="user">Signed in as Ada (Acme Inc.)</span></header>
<main>
  <div class="bar">
    <h1>Webhooks</h1>
    <p id="status" role="status">Opening your webhooks…</p>
    <button type="button" id="reopen" hidden>Open webhooks again</button>
    <button type="button" id="theme">Light theme</button>
  </div>
  <iframe id="webhooks" title="Webhooks" allow="clipboard-write"></iframe>
</main>
<script>
  const frame = document.getElementById("webhooks");
  const status = document.getElementById("status");
  const reopen = document.getElementById("reopen");
  const themeButton = document.getElementById("theme");
  let dashboardOrigin = null;
  let theme = "dark";

  function sendTheme() {
    // Only to the dashboard's origin: another page in the frame would not get it. Our title, accent
    // and logo are in the session (the backend asked for them); only the theme changes while it is open.
    frame.contentWindow.postMessage({ type: "flexprice-webhooks:theme", theme }, dashboardOrigin);
  }

  async function openWebhooks() {
    reopen.hidden = true;
    status.textContent = "Opening your webhooks…";
    const response = await fetch("/webhooks-session", { method: "POST" });
    if (!response.ok) {
      status.textContent = "Webhooks are unavailable right now; try again in a moment.";
      reopen.hidden = false;
      return;
    }
    const { url } = await response.json();
    const target = new URL(url);
    dashboardOrigin = target.origin;
    // The theme in the URL too, so that the first paint is already ours.
    target.search = new URLSearchParams({ theme }).toString();
    frame.src = target.toString();
  }

  window.addEventListener("message", (event) => {
    if (event.origin !== dashboardOrigin || event.source !== frame.contentWindow) return;
    const message = event.data || {};
    if (message.type === "flexprice-webhooks:ready") {
      const ends = new Date(message.expires_at)
        .toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      status.textContent = `Session until ${ends}` + (message.read_only ? " (read-only)" : "");
      sendTheme();
    } else if (message.type === "flexprice-webhooks:session-ended") {
      status.textContent = message.reason === "expired"
        ? "Your webhooks session ended." : "Your webhooks session is over.";
      reopen.hidden = false;
    }
  });
  reopen.addEventListener("click", openWebhooks);
  themeButton.addEventListener("click", () => {
    theme = theme === "dark" ? "light" : "dark";
    themeButton.textContent = theme === "dark" ? "Light theme" : "Dark theme";
    if (dashboardOrigin) sendTheme();
  });
  openWebhooks();
</script>
</body>
</html>
"""


class Host(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/logo.svg":
            self._send(200, "image/svg+xml", LOGO)
            return
        if self.path != "/":
            self._send(404, "text/plain", b"not found")
            return
        self._send(200, "text/html; charset=utf-8", PAGE.encode())

    def do_POST(self) -> None:
        # A real product checks its own user's session (and CSRF token) here, and picks that user's
        # tenant; this example has one signed-in user.
        if self.path != "/webhooks-session":
            self._send(404, "text/plain", b"not found")
            return
        try:
            session = open_webhooks_session()
        except (urllib.error.URLError, OSError, KeyError, ValueError) as err:
            self.log_error("opening a webhooks session failed: %s", err)
            self._send(502, "application/json", b'{"detail": "webhooks are unavailable"}')
            return
        self._send(200, "application/json", json.dumps(session).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        # The logo is shown inside the webhooks page, of another origin: let it load there.
        self.send_header("cross-origin-resource-policy", "cross-origin")
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # quiet; errors still go to stderr through log_error


def main() -> None:
    if not API_KEY:
        raise SystemExit("set WEBHOOKS_API_KEY: the tenant's key, held by this backend and never sent on")
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Host)
    print(f"Acme Billing (the host product) on http://127.0.0.1:{PORT}", flush=True)  # noqa: T201
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
