"""The chaos runs' receiver: a real HTTP server on 127.0.0.1 whose behaviour can be switched while it runs.

Every POST it reads is a receipt, noted with its `webhook-id`, when it came, how long the receiver held
it and what it answered: the runner counts losses and duplicates from these. Modes:

- `ok`: 200 after `latency` seconds (a receiver across a network, so that POSTs are in flight when a
  fault hits);
- `slow`: 200 after `slow_seconds` (within the attempt timeout);
- `hang`: 200 after `hang_seconds`, longer than the attempt timeout: the sender has given up by then,
  yet the receiver took the body (as a real one that does its work before answering would);
- `refuse`: the listening socket is closed, so every connection is refused; `ok` again opens it on the
  same port.

Each connection carries one request (HTTP/1.0): no kept-alive connection outlives a `refuse`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Mode = Literal["ok", "slow", "hang", "refuse"]


@dataclass(frozen=True)
class Receipt:
    webhook_id: str
    received_at: float  # time.time() when the body had been read
    held: float  # seconds from then until the answer was written (or the write failed)
    status: int
    answered: bool  # False when the sender had hung up before the answer could be written


class ChaosReceiver:
    def __init__(self, *, latency: float = 0.2, slow_seconds: float = 1.0, hang_seconds: float = 3.0) -> None:
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.hang_seconds = hang_seconds
        self._mode: Mode = "ok"
        self._lock = threading.Lock()
        self._receipts: dict[str, list[Receipt]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- the server --------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", 0)))
                received_at = time.time()
                time.sleep(receiver._delay())
                answered = True
                try:
                    body = b'{"received":true}'
                    self.send_response(200)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:  # the sender timed out and hung up
                    answered = False
                receiver._note(
                    Receipt(
                        webhook_id=self.headers.get("webhook-id", ""),
                        received_at=received_at,
                        held=time.time() - received_at,
                        status=200,
                        answered=answered,
                    )
                )

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def _open(self) -> None:
        # The same port every time, so that endpoints registered before a `refuse` still point here.
        # A port just released can stay unbindable for a moment on a busy machine: try for a while.
        deadline = time.monotonic() + 30
        while True:
            try:
                server = ThreadingHTTPServer(("127.0.0.1", self._port), self._handler())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        server.daemon_threads = True
        self._port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="chaos-receiver", daemon=True)
        self._thread.start()

    def _close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()  # the listening socket: new connections are refused from now on
        assert self._thread is not None
        self._thread.join()
        self._server = None

    def __enter__(self) -> ChaosReceiver:
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    # -- what the runner uses ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            previous, self._mode = self._mode, mode
        if mode == "refuse" and previous != "refuse":
            self._close()
        elif mode != "refuse" and previous == "refuse":
            self._open()

    def _delay(self) -> float:
        with self._lock:
            mode = self._mode
        return {"slow": self.slow_seconds, "hang": self.hang_seconds}.get(mode, self.latency)

    def _note(self, receipt: Receipt) -> None:
        with self._lock:
            self._receipts.setdefault(receipt.webhook_id, []).append(receipt)

    def receipts(self) -> dict[str, list[Receipt]]:
        """Every receipt so far, by `webhook-id`, oldest first."""
        with self._lock:
            return {key: list(value) for key, value in self._receipts.items()}
