"""What the tests' own HTTP servers on 127.0.0.1 share (tests/receiver.py, tests/otlp.py and the one-off
servers of some tests): a request handler that answers in one call and prints nothing, and a receiver
that closes the connections it keeps alive as a busy server does."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast


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


# A receiver's keep-alive timeout, as gunicorn's (the shortest common one; Node, uvicorn and Apache: 5 s).
RECEIVER_KEEP_ALIVE = 2.0


class IdleClosingReceiver(ThreadingHTTPServer):
    """A keep-alive receiver whose idle timeout fires as a POST comes in on a connection idle for nearly
    `RECEIVER_KEEP_ALIVE`: it closes the connection unanswered (its FIN and the POST crossing). It keeps
    when it `answered` each POST and when it `dropped` one."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ClosesIdleConnections)
        self.answered: list[float] = []
        self.dropped: list[float] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _ClosesIdleConnections(QuietHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def setup(self) -> None:
        super().setup()
        self.idle_since: float | None = None

    def do_POST(self) -> None:
        receiver = cast(IdleClosingReceiver, self.server)
        self.rfile.read(int(self.headers["content-length"]))
        now = time.monotonic()
        if self.idle_since is not None and now - self.idle_since >= RECEIVER_KEEP_ALIVE - 0.1:
            receiver.dropped.append(now)
            self.close_connection = True
            return
        receiver.answered.append(now)
        # Idle from before the answer goes out: a server thread slowed by the load can only make the
        # idle time it measures longer, never hide a connection the client kept too long.
        self.idle_since = time.monotonic()
        self.answer(200)


@contextmanager
def idle_closing_receiver() -> Iterator[IdleClosingReceiver]:
    """An `IdleClosingReceiver` on a free port, serving until the block ends."""
    receiver = IdleClosingReceiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()
