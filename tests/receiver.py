"""A real HTTP server on 127.0.0.1 that plays scripted answers and records every request it gets."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from tests.local_http import QuietHandler


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b'{"received":true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float


class Receiver:
    """`script(path, [Answer, ...])`: answers in order, the last one repeats. Default: 200."""

    def __init__(self) -> None:
        self._scripts: dict[str, list[Answer]] = {}
        self._deciders: dict[str, Callable[[Received], Answer]] = {}
        self._requests: dict[str, list[Received]] = defaultdict(list)
        self._lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                answer = receiver._record(
                    Received(
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                        at=time.time(),
                    )
                )
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.answer(answer.status, answer.body, answer.headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender timed out and hung up, as a slow receiver's sender does

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def script(self, path: str, answers: list[Answer]) -> str:
        with self._lock:
            self._scripts[path] = list(answers)
        return self.url(path)

    def respond(self, path: str, decide: Callable[[Received], Answer]) -> str:
        """Answer each request to `path` with `decide(request)` (called under the receiver's lock)."""
        with self._lock:
            self._deciders[path] = decide
        return self.url(path)

    def _record(self, request: Received) -> Answer:
        with self._lock:
            self._requests[request.path].append(request)
            if request.path in self._deciders:
                return self._deciders[request.path](request)
            answers = self._scripts.get(request.path) or [Answer()]
            return answers.pop(0) if len(answers) > 1 else answers[0]

    def requests(self, path: str) -> list[Received]:
        with self._lock:
            return list(self._requests[path])

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
