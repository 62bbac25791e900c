"""The faults of `make chaos`, one per row of RELIABILITY.md's table.

Each is a context manager that breaks one thing on entry and heals it on exit, given the `Target` it
acts on (a stack, its receiver, its endpoint store). `seconds` is how long the fault lasts in a full run
(the smoke run halves it). All of them act on processes and files of this machine only.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from chaos.faults import paused, sqlite_locked
from chaos.postgres import PostgresServer
from chaos.receiver import ChaosReceiver
from launcher import Stack
from workflows.delivery import ACTIVITY_GRACE

# The stack and receiver every scenario runs against; the descriptions below quote them.
# The schedule is short enough that a run takes minutes and long enough that a receiver down for a
# fault's duration (8 s) is still inside it: five attempts over 15 s (12 s at the least, with jitter).
RETRY_SCHEDULE = "1,2,4,8"
ATTEMPT_TIMEOUT = 2.0
# When Temporal retries a try that was lost (workflows/delivery.py: twice the attempt timeout, and a grace).
ACTIVITY_TIMEOUT = 2 * ATTEMPT_TIMEOUT + ACTIVITY_GRACE.total_seconds()
RECEIVER_LATENCY = 0.2
SLOW_SECONDS = 1.0
HANG_SECONDS = ATTEMPT_TIMEOUT + 1


@dataclass
class Target:
    stack: Stack
    receiver: ChaosReceiver
    postgres: PostgresServer | None = None  # the endpoint store, when it is PostgreSQL

    @property
    def sqlite_path(self) -> Path:
        url = self.stack.settings.sqlalchemy_url
        assert url.startswith("sqlite:///"), url
        return Path(url.removeprefix("sqlite:///"))


Fault = Callable[[Target], AbstractContextManager[None]]


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str  # the row's name in the table, followed by `how_long`
    does: str  # what the fault does, for RELIABILITY.md
    seconds: float
    fault: Fault
    store: str = "sqlite"  # "postgres": run on a stack whose endpoint store is a PostgreSQL server
    # The burst's length (and the fault's start) as a share of the run's: the store rows send it all
    # in a fifth of the time, faster than the worker drains it, so that deliveries are queued when the
    # store goes.
    burst_share: float = 1.0
    observe: bool = False  # read the deliveries of events accepted during the fault, before it ends
    how_long: str = "for {seconds:g} s"

    def label(self, seconds: float) -> str:
        return f"{self.title}, {self.how_long.format(seconds=seconds)}"


@contextmanager
def worker_killed(target: Target) -> Iterator[None]:
    target.stack.stop_worker(signal.SIGKILL)
    try:
        yield
    finally:
        target.stack.start_worker()


@contextmanager
def worker_frozen(target: Target) -> Iterator[None]:
    with paused(target.stack.worker):
        yield


@contextmanager
def no_worker(target: Target) -> Iterator[None]:
    target.stack.stop_worker()  # SIGTERM: the worker finishes the attempts it has in flight, then exits
    try:
        yield
    finally:
        target.stack.start_worker()


@contextmanager
def temporal_killed(target: Target) -> Iterator[None]:
    target.stack.stop_temporal(signal.SIGKILL)
    try:
        yield
    finally:
        target.stack.start_temporal()  # the same database file and port


@contextmanager
def temporal_frozen(target: Target) -> Iterator[None]:
    with paused(target.stack.temporal):
        yield


@contextmanager
def api_killed(target: Target) -> Iterator[None]:
    target.stack.stop_api(signal.SIGKILL)
    try:
        yield
    finally:
        target.stack.start_api()


@contextmanager
def sqlite_store_locked(target: Target) -> Iterator[None]:
    with sqlite_locked(target.sqlite_path):
        yield


@contextmanager
def postgres_store_stopped(target: Target) -> Iterator[None]:
    assert target.postgres is not None
    with target.postgres.stopped():
        yield


def _receiver_mode(mode: str) -> Fault:
    @contextmanager
    def fault(target: Target) -> Iterator[None]:
        target.receiver.set_mode(mode)  # type: ignore[arg-type]
        try:
            yield
        finally:
            target.receiver.set_mode("ok")

    return fault


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "receiver-slow",
        "receiver slow, answering in 1 s",
        f"The receiver answers every POST after {SLOW_SECONDS:g} s instead of {RECEIVER_LATENCY:g} s, within "
        f"the attempt timeout ({ATTEMPT_TIMEOUT:g} s).",
        10,
        _receiver_mode("slow"),
    ),
    Scenario(
        "receiver-refuse",
        "receiver refusing connections",
        "The receiver's listening socket is closed: every connection is refused. Then it listens again "
        "on the same port.",
        8,
        _receiver_mode("refuse"),
    ),
    Scenario(
        "receiver-hang",
        "receiver hanging, answering after the timeout",
        f"The receiver reads each POST and answers 200 only after {HANG_SECONDS:g} s, when the sender "
        f"({ATTEMPT_TIMEOUT:g} s attempt timeout) has given up.",
        8,
        _receiver_mode("hang"),
    ),
    Scenario(
        "api-sigkill",
        "API SIGKILLed mid-burst",
        "The API process gets SIGKILL (requests in flight are cut, new ones refused) and is started again "
        "after the fault's duration.",
        3,
        api_killed,
        how_long="restarted after {seconds:g} s",
    ),
    Scenario(
        "worker-sigkill",
        "worker SIGKILLed mid-burst",
        "The worker gets SIGKILL with POSTs in flight and is started again after the fault's duration.",
        3,
        worker_killed,
        how_long="restarted after {seconds:g} s",
    ),
    Scenario(
        "worker-sigstop",
        "worker frozen (SIGSTOP)",
        "The worker is frozen with SIGSTOP (its connections stay open, it answers nothing), for longer "
        f"than an attempt's activity timeout ({ACTIVITY_TIMEOUT:g} s), then SIGCONT.",
        ACTIVITY_TIMEOUT + 6,
        worker_frozen,
    ),
    Scenario(
        "no-worker",
        "no worker running",
        "The worker is stopped (SIGTERM; it finishes the attempts in flight): events are accepted and "
        "their deliveries wait as `scheduled`. Then a worker starts.",
        15,
        no_worker,
        observe=True,
    ),
    Scenario(
        "temporal-sigkill",
        "Temporal SIGKILLed",
        "The Temporal dev server gets SIGKILL and is started again on the same SQLite file and port.",
        5,
        temporal_killed,
        how_long="restarted on its file after {seconds:g} s",
    ),
    Scenario(
        "temporal-sigstop",
        "Temporal frozen (SIGSTOP)",
        "The Temporal dev server is frozen with SIGSTOP: connections open, nothing answered. The API "
        "must still answer within its RPC timeout (5 s).",
        15,
        temporal_frozen,
    ),
    Scenario(
        "store-sqlite",
        "endpoint store (SQLite) locked",
        "Every WAL lock of the store's SQLite file is held, so each read fails, for longer than the "
        f"whole retry schedule ({RETRY_SCHEDULE} s). The burst comes in 2 s, faster than it is delivered.",
        20,
        sqlite_store_locked,
        burst_share=0.2,
    ),
    Scenario(
        "store-postgres",
        "endpoint store (PostgreSQL) stopped",
        "The store's PostgreSQL server (Debian's, on its own stack) is shut down, cutting every "
        "connection, for longer than the whole retry schedule, then started again. The burst comes in "
        "2 s.",
        20,
        postgres_store_stopped,
        burst_share=0.2,
        store="postgres",
    ),
)
SCENARIOS_BY_KEY = {s.key: s for s in SCENARIOS}
