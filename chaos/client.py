"""A careful client of `POST /v1/events`: its own event ids, and every failure retried with the same id.

Whatever the API answers (a 503 with or without "may have been applied", a connection refused or cut,
no answer at all) the client waits (`Retry-After` when given) and sends the same event again with the
same id, until a 202 or its deadline. Every answer is kept, so that a run can say what the API answered
during a fault and check it: an answer that said "nothing was accepted" for an event whose 202 later
gives a `created_at` inside that request's own round trip was wrong.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

import httpx

REQUEST_TIMEOUT = 30.0  # far above the API's own bound on Temporal calls (5 s): no answer is a finding
RETRY_PAUSE = 1.0  # after a connection error or an answer without Retry-After
MAX_RETRY_AFTER = 5.0


@dataclass(frozen=True)
class Answer:
    sent_at: float
    answered_at: float
    status: int | None  # None: no HTTP answer (refused, cut, timed out)
    kind: str  # a short label, e.g. "202", "503 may have been applied", "connection refused"


@dataclass
class Emission:
    event_id: str
    ordering_key: str | None = None  # sent with the event (an ordered endpoint's rows)
    answers: list[Answer] = field(default_factory=list)
    created_at: float | None = None  # the accepted event's created_at (the API's clock, epoch seconds)
    accepted_at: float | None = None  # when the client got its 202

    @property
    def accepted(self) -> bool:
        return self.accepted_at is not None

    def wrong_nothing_accepted(self) -> list[Answer]:
        """Answers that said nothing was accepted, contradicted by the event's own `created_at`."""
        if self.created_at is None:
            return []
        return [
            a for a in self.answers if "nothing" in a.kind and a.sent_at <= self.created_at <= a.answered_at
        ]


def classify(response: httpx.Response) -> str:
    if response.status_code != 503:
        return str(response.status_code)
    try:
        detail = str(response.json().get("detail", ""))
    except ValueError:
        detail = response.text[:80]
    if "may have been applied" in detail:
        return "503 may have been applied"
    if "nothing was" in detail:
        what = "store" if "store" in detail else "Temporal"
        return f"503 {what} unavailable, nothing accepted"
    return f"503 {detail[:60]}"


def classify_error(err: httpx.HTTPError) -> str:
    if isinstance(err, httpx.ConnectError):
        return "connection refused"
    if isinstance(err, httpx.TimeoutException):
        return f"no answer in {REQUEST_TIMEOUT:g} s"
    return "connection cut mid-request"  # RemoteProtocolError, ReadError: the API died while answering


def event_body(event_id: str, ordering_key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event_id,
        "webhook_type": "invoice.created",
        "data": {"object": {"id": event_id, "amount_due": "120.00", "currency": "usd"}},
    }
    if ordering_key is not None:
        body["ordering_key"] = ordering_key
    return body


def emit_until_accepted(
    client: httpx.Client, emission: Emission, deadline: float, stopped: threading.Event
) -> None:
    """Send the event until the API accepts it, refuses it with a 4xx, the deadline passes or the burst is
    `stopped`."""
    while time.monotonic() < deadline and not stopped.is_set():
        sent_at = time.time()
        try:
            body = event_body(emission.event_id, emission.ordering_key)
            response = client.post("/v1/events", json=body, timeout=REQUEST_TIMEOUT)
        except httpx.HTTPError as err:
            emission.answers.append(Answer(sent_at, time.time(), None, classify_error(err)))
            stopped.wait(RETRY_PAUSE)
            continue
        kind = classify(response)
        emission.answers.append(Answer(sent_at, time.time(), response.status_code, kind))
        if response.status_code == 202:
            emission.accepted_at = time.time()
            emission.created_at = datetime.fromisoformat(response.json()["created_at"]).timestamp()
            return
        if response.status_code < 500:
            return  # a 4xx will not change by retrying: a finding, shown in the answers
        retry_after = response.headers.get("retry-after", "")
        stopped.wait(min(float(retry_after), MAX_RETRY_AFTER) if retry_after.isdigit() else RETRY_PAUSE)


class Burst:
    """`count` events over `seconds`, each from its own moment on, sent by a pool of threads.

    A thread stays with its event until it is accepted, so a fault makes later events start late
    rather than be skipped. With `ordering_keys`, event i has the key `k{i % ordering_keys}`. Used as a
    context manager, a block that ends well waits for every event and one that ends by an exception stops
    it: a Ctrl-C during a fault (the API down, every thread sending again until the deadline, minutes
    away) once kept `make chaos` from exiting for three minutes, as the interpreter waited for the pool's
    threads.
    """

    def __init__(
        self,
        api_url: str,
        api_key: str,
        prefix: str,
        *,
        count: int,
        seconds: float,
        deadline_seconds: float,
        threads: int = 16,
        ordering_keys: int = 0,
    ) -> None:
        self.emissions = [
            Emission(f"{prefix}-{i:04d}", f"k{i % ordering_keys}" if ordering_keys else None)
            for i in range(count)
        ]
        self._seconds = seconds
        self._deadline_seconds = deadline_seconds
        self._client = httpx.Client(
            base_url=api_url,
            headers={"x-api-key": api_key},
            limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads),
        )
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="chaos-client")
        self._done = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # a bug of the client's own, raised again by `wait`

    def start(self) -> None:
        started = time.monotonic()
        deadline = started + self._deadline_seconds
        step = self._seconds / max(1, len(self.emissions))

        def one(i: int, emission: Emission) -> None:
            if not self._stopped.wait(max(0.0, started + i * step - time.monotonic())):
                emit_until_accepted(self._client, emission, deadline, self._stopped)

        futures = [self._pool.submit(one, i, e) for i, e in enumerate(self.emissions)]

        def wait_all() -> None:
            try:
                for future in futures:
                    future.result()
            except BaseException as err:
                self.error = err
            finally:
                self._done.set()

        self._thread = threading.Thread(target=wait_all, name="chaos-burst", daemon=True)
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """A block that ends well waits for every event (`wait`); one that ends by an exception (a Ctrl-C
        among them) gives up what is still being sent, and the events not sent yet are never sent."""
        if exc_type is None and self._thread is not None:
            self.wait()
            return
        self._stopped.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def wait(self) -> None:
        self._done.wait()
        self._pool.shutdown()
        self._client.close()
        if self.error is not None:
            raise self.error

    def answers(self) -> Iterable[Answer]:
        return (a for e in self.emissions for a in list(e.answers))


def summarise(answers: Iterable[Answer]) -> str:
    """`202 ×88, 503 may have been applied ×12`: most frequent first."""
    counts = Counter(a.kind for a in answers)
    return ", ".join(f"{kind} ×{n}" for kind, n in counts.most_common())
