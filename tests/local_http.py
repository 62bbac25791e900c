"""What the tests' own HTTP servers on 127.0.0.1 share (tests/receiver.py, tests/otlp.py and the one-off
servers of some tests): a request handler that answers in one call and prints nothing."""

from __future__ import annotations

from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler


class QuietHandler(BaseHTTPRequestHandler):
    """A handler whose `answer` sends a whole response, and which leaves stderr to the test: the standard
    handler prints a line for every request."""

    def answer(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        """`status`, `headers` and `body`, with its content-length (a keep-alive client reads no further)."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
