"""The chaos runs' receiver: a real HTTP server on 127.0.0.1 whose behaviour can be switched while it runs.

Every POST it reads is a receipt, noted with its `webhook-id`, when it came, how long the receiver held
it and what it answered, and for an ordered endpoint its `webhook-sequence` and when the answer began:
the runner counts losses, duplicates and deliveries out of order from these. Modes:

- `ok`: 200 after `latency` seconds (a receiver across a network, so that POSTs are in flight when a
  fault hits);
- `slow`: 200 after `slow_seconds` (within the attempt timeout);
- `hang`: 200 after `hang_seconds`, longer than the attempt timeout: the sender has given up by then,
  yet the receiver took the body (as a real one that does its work before answering would);
- `refuse`: the listening socket is closed, so every connection is refused; `ok` again opens it on the
  same port.

A path can be given a latency of its own (`set_path`: a scenario's receiver 2 s away) or a status to
answer (500: deliveries that fail, to be retried by hand). Each connection carries one request
(HTTP/1.0): no kept-alive connection outlives a `refuse`. The POSTs it holds (body read, answer not yet
written) can be listed at any moment (`holding`): a scenario that kills the sender waits for one, so
that the kill is known to cut a POST in flight.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
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
    sequence: int | None = None  # its `webhook-sequence` (an ordered endpoint's), else None
    # time.time() just before the answer was written: no sender can have had it earlier, so a POST read
    # before this moment was sent before this one was acknowledged.
    answering_at: float = 0.0

    @property
    def acknowledged(self) -> bool:
        """The sender was answered 2xx (it may still have died before it could act on the answer)."""
        return self.answered and 200 <= self.status < 300


class ChaosReceiver:
    def __init__(self, *, latency: float = 0.2, slow_seconds: float = 1.0, hang_seconds: float = 3.0) -> None:
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.hang_seconds = hang_seconds
        self._mode: Mode = "ok"
        self._lock = threading.Lock()
        self._receipts: dict[str, list[Receipt]] = {}
        self._paths: dict[str, tuple[float | None, int]] = {}  # path: its own latency, its status
        self._holding: dict[int, tuple[str, str]] = {}  # token: path and webhook-id of a POST held
        self._read_in_mode: Counter[str] = Counter()  # POSTs read in the mode now set, by path
        self._tokens = 0
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
                webhook_id = self.headers.get("webhook-id", "")
                sequence = self.headers.get("webhook-sequence")
                delay, status = receiver._answer(self.path)
                token = receiver._hold(self.path, webhook_id)
                try:
                    time.sleep(delay)
                finally:
                    receiver._release(token)
                answered = True
                answering_at = time.time()
                try:
                    body = b'{"received":true}'
                    self.send_response(status)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:  # the sender timed out and hung up
                    answered = False
                receiver._note(
                    Receipt(
                        webhook_id=webhook_id,
                        received_at=received_at,
                        held=time.time() - received_at,
                        status=status,
                        answered=answered,
                        sequence=int(sequence) if sequence and sequence.isdigit() else None,
                        answering_at=answering_at,
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
            self._read_in_mode.clear()
        if mode == "refuse" and previous != "refuse":
            self._close()
        elif mode != "refuse" and previous == "refuse":
            self._open()

    def set_path(self, path: str, *, latency: float | None = None, status: int = 200) -> None:
        """POSTs to `path` answered with `status` after `latency` (the receiver's own when None), in
        `ok` mode; `slow` and `hang` still slow every path down."""
        with self._lock:
            self._paths[path] = (latency, status)

    def _answer(self, path: str) -> tuple[float, int]:
        with self._lock:
            mode = self._mode
            self._read_in_mode[path] += 1  # read in this mode, under the same lock
            latency, status = self._paths.get(path, (None, 200))
        delay = {"slow": self.slow_seconds, "hang": self.hang_seconds}.get(mode)
        if delay is None:
            delay = self.latency if latency is None else latency
        return delay, status

    def _hold(self, path: str, webhook_id: str) -> int:
        with self._lock:
            self._tokens += 1
            self._holding[self._tokens] = (path, webhook_id)
            return self._tokens

    def _release(self, token: int) -> None:
        with self._lock:
            del self._holding[token]

    def read_in_mode(self, path: str) -> int:
        """How many POSTs to `path` the receiver has read, and answered in its mode, since it was set."""
        with self._lock:
            return self._read_in_mode[path]

    def holding(self, path: str) -> list[str]:
        """The webhook-ids of the POSTs to `path` read and not yet answered, now."""
        with self._lock:
            return [w for p, w in self._holding.values() if p == path]

    def _note(self, receipt: Receipt) -> None:
        with self._lock:
            self._receipts.setdefault(receipt.webhook_id, []).append(receipt)

    def receipts(self) -> dict[str, list[Receipt]]:
        """Every receipt so far, by `webhook-id`, oldest first."""
        with self._lock:
            return {key: list(value) for key, value in self._receipts.items()}
