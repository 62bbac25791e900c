"""The faults of `make chaos`, one per row of RELIABILITY.md's table.

Each, given the `Target` it acts on (a stack, its receiver, its endpoint store, `make run`'s launcher),
is a context manager that breaks one thing on entry and heals it on exit. `seconds` is how long the
fault lasts in a full run (the smoke run halves it). Each scenario also names what must be seen for its
row to count (`proof`): a fault that landed with nothing in flight, or that no request met, proves
nothing, and its row is VOID. All of them act on processes and files of this machine only.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from activities.delivery import HEARTBEAT_TIMEOUT as DELIVERY_HEARTBEAT_TIMEOUT
from chaos.faults import disk_full, paused, sqlite_locked
from chaos.launched import Launched
from chaos.postgres import PostgresServer
from chaos.receiver import ChaosReceiver
from launcher import Stack

# The stack and receiver every scenario runs against; the descriptions below quote them.
# The schedule is short enough that a run takes minutes and long enough that a receiver down for a
# fault's duration (8 s) is still inside it: five attempts over 15 s (12 s at the least, with jitter).
RETRY_SCHEDULE = "1,2,4,8"
ATTEMPT_TIMEOUT = 2.0
RECEIVER_LATENCY = 0.2
SLOW_SECONDS = 1.0
HANG_SECONDS = ATTEMPT_TIMEOUT + 1
HEARTBEAT_TIMEOUT = DELIVERY_HEARTBEAT_TIMEOUT.total_seconds()  # a lost try is made again after this
RETRY_BURST = 20  # manual retries of one delivery sent at once (tests/test_manual_retry.py's number)
# The ordered rows: an endpoint with `"ordered": true`, its events spread over this many ordering keys
# (so as many lanes side by side), each counted for order as well as for loss.
ORDERED_KEYS = 5


# The stacks a scenario can run on. `main` and `real-timeouts` are shared by their rows; the others are
# started for each row: a PostgreSQL store, a SQLite store on a filesystem small enough to fill, and
# `make run`'s launcher as a process of its own (its rows signal it).
MAIN = "main"
REAL_TIMEOUTS = "real-timeouts"
POSTGRES = "postgres"
SMALL_DISK = "small-disk"
LAUNCHER = "launcher"
# The service's default attempt timeout (core/settings.py), for the rows whose receiver takes 2 s: with
# the 2 s of the other rows every such POST would time out.
REAL_ATTEMPT_TIMEOUT = 15.0
SLOW_RECEIVER = 2.0  # a receiver far away or busy: the one that found 62 duplicates before issue 20
SMALL_DISK_MIB = 16  # room for the store and its WAL (tests/test_store_outage.py's disk-full test too)

# How a row proves its fault was felt (each scenario names the proofs it needs; a row without them is
# VOID: it says nothing about the fault). Every row reports every measure that has a value.
IN_FLIGHT = "in-flight"  # POSTs the receiver held at the fault's start: the fault cut one mid-POST
MET_OUTAGE = "met-outage"  # requests sent during the fault answered other than a 202 at once
DELAYED = "delayed"  # deliveries of events created before the heal that arrived only after it
ANSWERED_SLOWLY = "answered-slowly"  # POSTs the receiver held for the slow answer
ANSWERED_LATE = "answered-late"  # POSTs the receiver answered after the attempt timeout
REFUSED = "refused"  # attempts logged with a refused connection
CONCURRENT = "concurrent"  # manual retries of one delivery in flight at the API at once


@dataclass
class Target:
    stack: Stack  # under LAUNCHER a description only (settings, URL): `launched` runs it
    receiver: ChaosReceiver
    postgres: PostgresServer | None = None  # the endpoint store, when it is PostgreSQL
    launched: Launched | None = None
    notes: list[str] = field(default_factory=list)  # what a fault saw, for the row
    path: str = ""  # the receiver's path of the row now running (its endpoint's)

    @property
    def sqlite_path(self) -> Path:
        url = self.stack.settings.sqlalchemy_url
        assert url.startswith("sqlite:///"), url
        return Path(url.removeprefix("sqlite:///"))

    @property
    def attempt_timeout(self) -> float:
        return self.stack.settings.delivery_timeout


Fault = Callable[[Target], AbstractContextManager[None]]


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str  # the row's name in the table, followed by `how_long`
    does: str  # what the fault does, for RELIABILITY.md
    seconds: float
    fault: Fault | None  # None: the row is a run of its own (`kind`)
    proof: tuple[str, ...]  # what must have been seen for the row to count
    setup: str = MAIN
    # The burst's length (and the fault's start) as a share of the run's: the store rows send it all
    # in a fifth of the time, faster than the worker drains it, so that deliveries are queued when the
    # store goes.
    burst_share: float = 1.0
    # What to read before the fault ends: "deliveries" (of events accepted during it), "healthz".
    observe: str = ""
    how_long: str = "for {seconds:g} s"
    receiver_latency: float | None = None  # this row's receiver, when not the shared one's 0.2 s
    # Inject the fault only once the receiver holds a POST of this row (at most IN_FLIGHT_WAIT later):
    # a kill that lands between two POSTs proves nothing about the POSTs it is meant to cut.
    wait_in_flight: bool = False
    kind: str = "fault"  # "retry-burst": concurrent manual retries of failed deliveries, no fault
    # An ordered endpoint's row: its events spread over this many ordering keys (0: unordered), and the
    # row counts what arrived out of order in each lane.
    ordering_keys: int = 0

    def label(self, seconds: float) -> str:
        return f"{self.title}, {self.how_long.format(seconds=seconds)}"


IN_FLIGHT_WAIT = 10.0
FELT_WAIT = 60.0
UNTIL_MET = "for {seconds:g} s, and until a POST met it"  # a receiver fault's length (`_receiver_mode`)


def wait_until(done: Callable[[], bool], at_most: float, *, every: float = 0.05) -> float:
    """Until `done()`, asked `every` so many seconds (at most `at_most` seconds): how long that took."""
    started = time.monotonic()
    while not done() and time.monotonic() - started < at_most:
        time.sleep(every)
    return time.monotonic() - started


@contextmanager
def _down(stop: Callable[[], None], start: Callable[[], None]) -> Iterator[None]:
    """A process of the stack ended by `stop` for the block, and brought back by `start` after it."""
    stop()
    try:
        yield
    finally:
        start()


def worker_killed(target: Target) -> AbstractContextManager[None]:
    return _down(lambda: target.stack.stop_worker(signal.SIGKILL), target.stack.start_worker)


def worker_frozen(target: Target) -> AbstractContextManager[None]:
    return paused(target.stack.worker)


def no_worker(target: Target) -> AbstractContextManager[None]:
    # SIGTERM: the worker finishes the attempts it has in flight, then exits.
    return _down(target.stack.stop_worker, target.stack.start_worker)


def temporal_killed(target: Target) -> AbstractContextManager[None]:
    # Started again on the same database file and port.
    return _down(lambda: target.stack.stop_temporal(signal.SIGKILL), target.stack.start_temporal)


def temporal_frozen(target: Target) -> AbstractContextManager[None]:
    return paused(target.stack.temporal)


def api_killed(target: Target) -> AbstractContextManager[None]:
    return _down(lambda: target.stack.stop_api(signal.SIGKILL), target.stack.start_api)


def sqlite_store_locked(target: Target) -> AbstractContextManager[None]:
    return sqlite_locked(target.sqlite_path)


def postgres_store_stopped(target: Target) -> AbstractContextManager[None]:
    assert target.postgres is not None
    return target.postgres.stopped()


def postgres_store_stopped_immediately(target: Target) -> AbstractContextManager[None]:
    assert target.postgres is not None
    return target.postgres.stopped(immediate=True)


def store_disk_full(target: Target) -> AbstractContextManager[None]:
    return disk_full(target.sqlite_path.parent)


def _launcher_signalled(sig: signal.Signals) -> Fault:
    @contextmanager
    def fault(target: Target) -> Iterator[None]:
        assert target.launched is not None
        # The worker lets its attempts finish (attempt timeout + 5 s) before the launcher stops Temporal.
        took = target.launched.signal_and_wait(sig, timeout=target.attempt_timeout + 5 + 90)
        code = target.launched.exit_code
        target.notes.append(f"the launcher exited {took:.1f} s after {sig.name}, with code {code}")
        try:
            yield
        finally:
            target.launched.start()  # the same data dir and ports

    return fault


def _launcher_row(key: str, title: str, does: str, sig: signal.Signals) -> Scenario:
    """A row of `make run` sent `sig` once the (slow) receiver holds a POST, and started again on the same
    data dir after the fault's duration: the POSTs in flight must be finished, none lost."""
    return Scenario(
        key,
        title,
        does,
        3,
        _launcher_signalled(sig),
        proof=(IN_FLIGHT, MET_OUTAGE),
        setup=LAUNCHER,
        receiver_latency=SLOW_RECEIVER,
        wait_in_flight=True,
        how_long="started again after {seconds:g} s",
    )


def _receiver_mode(mode: str) -> Fault:
    """The receiver in `mode` for the fault's duration, and then, if no POST of the row came in that time
    (on a loaded machine a burst's first delivery can take longer than the smoke run's 4 s fault), until
    one has been answered in it (at most FELT_WAIT more): the row's proof is what the POSTs met."""

    @contextmanager
    def fault(target: Target) -> Iterator[None]:
        target.receiver.set_mode(mode)  # type: ignore[arg-type]
        try:
            yield
            if mode != "refuse":
                waited = wait_until(lambda: target.receiver.read_in_mode(target.path) > 0, FELT_WAIT)
                if waited >= 0.1:
                    target.notes.append(f"held {waited:.1f} s longer, until a POST came")
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
        proof=(ANSWERED_SLOWLY,),
        how_long=UNTIL_MET,
    ),
    Scenario(
        "receiver-refuse",
        "receiver refusing connections",
        "The receiver's listening socket is closed: every connection is refused. Then it listens again "
        "on the same port.",
        8,
        _receiver_mode("refuse"),
        proof=(REFUSED,),
    ),
    Scenario(
        "receiver-hang",
        "receiver hanging, answering after the timeout",
        f"The receiver reads each POST and answers 200 only after {HANG_SECONDS:g} s, when the sender "
        f"({ATTEMPT_TIMEOUT:g} s attempt timeout) has given up.",
        8,
        _receiver_mode("hang"),
        proof=(ANSWERED_LATE,),
        how_long=UNTIL_MET,
    ),
    Scenario(
        "api-sigkill",
        "API SIGKILLed mid-burst",
        "The API process gets SIGKILL (requests in flight are cut, new ones refused) and is started again "
        "after the fault's duration.",
        3,
        api_killed,
        proof=(MET_OUTAGE,),
        how_long="restarted after {seconds:g} s",
    ),
    Scenario(
        "worker-sigkill",
        "worker SIGKILLed mid-POST",
        "Once the receiver holds a POST, the worker gets SIGKILL and is started again after the fault's "
        "duration.",
        3,
        worker_killed,
        proof=(IN_FLIGHT,),
        wait_in_flight=True,
        how_long="restarted after {seconds:g} s",
    ),
    Scenario(
        "worker-sigkill-2s",
        f"worker SIGKILLed mid-POST, {SLOW_RECEIVER:g} s receiver, {REAL_ATTEMPT_TIMEOUT:g} s timeout",
        f"As above, with a receiver that answers after {SLOW_RECEIVER:g} s (every POST of the 8 an endpoint "
        f"may have in flight is cut) and the service's default attempt timeout ({REAL_ATTEMPT_TIMEOUT:g} s), "
        "on a stack of those settings.",
        3,
        worker_killed,
        proof=(IN_FLIGHT,),
        setup=REAL_TIMEOUTS,
        receiver_latency=SLOW_RECEIVER,
        wait_in_flight=True,
        how_long="restarted after {seconds:g} s",
    ),
    Scenario(
        "worker-sigstop",
        "worker frozen (SIGSTOP) mid-POST",
        "Once the receiver holds a POST, the worker is frozen with SIGSTOP (its connections stay open, it "
        f"answers nothing), for longer than the heartbeat timeout ({HEARTBEAT_TIMEOUT:g} s), then SIGCONT.",
        HEARTBEAT_TIMEOUT + 10,
        worker_frozen,
        proof=(IN_FLIGHT,),
        wait_in_flight=True,
    ),
    Scenario(
        "no-worker",
        "no worker running",
        "The worker is stopped (SIGTERM; it finishes the attempts in flight): events are accepted and "
        "their deliveries wait as `scheduled`. Then a worker starts.",
        15,
        no_worker,
        proof=(DELAYED,),
        observe="deliveries",
    ),
    Scenario(
        "temporal-sigkill",
        "Temporal SIGKILLed",
        "The Temporal dev server gets SIGKILL and is started again on the same SQLite file and port.",
        5,
        temporal_killed,
        proof=(MET_OUTAGE,),
        how_long="restarted on its file after {seconds:g} s",
    ),
    Scenario(
        "temporal-sigkill-2s",
        f"Temporal SIGKILLed mid-POST, {SLOW_RECEIVER:g} s receiver, {REAL_ATTEMPT_TIMEOUT:g} s timeout",
        "Once the receiver holds a POST, the Temporal dev server gets SIGKILL: the results of the POSTs in "
        "flight have no server to go to. Started again on the same file and port.",
        5,
        temporal_killed,
        proof=(IN_FLIGHT, MET_OUTAGE),
        setup=REAL_TIMEOUTS,
        receiver_latency=SLOW_RECEIVER,
        wait_in_flight=True,
        how_long="restarted on its file after {seconds:g} s",
    ),
    Scenario(
        "temporal-sigstop",
        "Temporal frozen (SIGSTOP)",
        "The Temporal dev server is frozen with SIGSTOP: connections open, nothing answered. The API "
        "must still answer within its RPC timeout (5 s). The burst comes in 2 s, faster than it is "
        "delivered.",
        15,
        temporal_frozen,
        proof=(DELAYED,),
        burst_share=0.2,  # deliveries queued when it lands (below)
    ),
    Scenario(
        "temporal-sigstop-40s",
        "Temporal frozen (SIGSTOP)",
        "As above, for 40 s: longer than the heartbeat timeout (10 s) and than the activity timeout of "
        "before issue 20 (44 s with the grace), so that Temporal's own timers have run out when it "
        "resumes.",
        40,
        temporal_frozen,
        proof=(DELAYED,),
        # Its events sent faster than the worker drains them, as the store rows do: with deliveries
        # 60 ms from 202 to receipt (make run's history reads), a burst at its pace left nothing queued
        # when the fault landed (2026-12-06, a VOID row), and only the POSTs in flight felt it.
        burst_share=0.2,
    ),
    Scenario(
        "store-sqlite",
        "endpoint store (SQLite) locked",
        "Every WAL lock of the store's SQLite file is held, so each read fails, for longer than the "
        f"whole retry schedule ({RETRY_SCHEDULE} s). The burst comes in 2 s, faster than it is delivered.",
        20,
        sqlite_store_locked,
        proof=(MET_OUTAGE,),
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
        proof=(MET_OUTAGE,),
        burst_share=0.2,
        setup=POSTGRES,
    ),
    Scenario(
        "store-postgres-immediate",
        "endpoint store (PostgreSQL) stopped immediately",
        "As above, but an immediate shutdown (SIGQUIT, what `pg_ctl stop -m immediate` sends): no "
        "checkpoint, every backend gone at once, and crash recovery from the WAL when it starts again.",
        20,
        postgres_store_stopped_immediately,
        proof=(MET_OUTAGE,),
        burst_share=0.2,
        setup=POSTGRES,
    ),
    Scenario(
        "store-disk-full",
        "endpoint store's disk full",
        f"The SQLite store lives on a {SMALL_DISK_MIB} MiB tmpfs of its own stack, filled to its last byte: "
        "every emit (its rate bucket is a write) is refused with 503 and /healthz says so; then the filler "
        "is removed and the refused emits, sent again, are accepted.",
        10,
        store_disk_full,
        proof=(MET_OUTAGE,),
        setup=SMALL_DISK,
        observe="healthz",
    ),
    _launcher_row(
        "launcher-sigterm",
        "`make run` SIGTERMed mid-POST",
        f"`python -m launcher` (a {SLOW_RECEIVER:g} s receiver, the {REAL_ATTEMPT_TIMEOUT:g} s timeout) "
        "gets SIGTERM once the receiver holds a POST: it stops the API, lets the worker finish the "
        "attempts in flight, stops Temporal, and exits; after the fault's duration it is started again on "
        "the same data dir.",
        signal.SIGTERM,
    ),
    _launcher_row(
        "launcher-sigint",
        "`make run` Ctrl-C (SIGINT) mid-POST",
        "The same with SIGINT, as Ctrl-C sends it.",
        signal.SIGINT,
    ),
    Scenario(
        "ordered-worker-sigkill",
        f"ordered endpoint, {ORDERED_KEYS} keys: worker SIGKILLed mid-POST",
        f'An endpoint with `"ordered": true`, the events spread over {ORDERED_KEYS} ordering keys (so as '
        "many lanes, each sending one event at a time). Once the receiver holds a POST, the worker gets "
        "SIGKILL, mid-lane, and is started again after the fault's duration.",
        3,
        worker_killed,
        proof=(IN_FLIGHT,),
        wait_in_flight=True,
        how_long="restarted after {seconds:g} s",
        ordering_keys=ORDERED_KEYS,
    ),
    Scenario(
        "ordered-temporal-sigkill",
        f"ordered endpoint, {ORDERED_KEYS} keys: Temporal SIGKILLed",
        "The same endpoint; the Temporal dev server gets SIGKILL while lanes are sending and the client "
        "emitting (an emission is told to its lane after its event's workflow starts: either can meet the "
        "outage), and is started again on the same SQLite file and port.",
        5,
        temporal_killed,
        proof=(MET_OUTAGE,),
        how_long="restarted on its file after {seconds:g} s",
        ordering_keys=ORDERED_KEYS,
    ),
    Scenario(
        "ordered-receiver-down",
        f"ordered endpoint, {ORDERED_KEYS} keys: receiver refusing connections",
        "The same endpoint; the receiver refuses every connection, so each lane's head fails attempt "
        f"after attempt (its schedule, {RETRY_SCHEDULE} s, outlasts the outage) while the events behind it "
        "wait in their lane. Then it listens again on the same port.",
        8,
        _receiver_mode("refuse"),
        proof=(REFUSED,),
        ordering_keys=ORDERED_KEYS,
    ),
    Scenario(
        "retry-burst",
        f"{RETRY_BURST} manual retries at once of one failed delivery",
        f"Deliveries whose endpoint answered 500 until their schedule ended (`failed`) are each retried "
        f"{RETRY_BURST} times at once, the receiver answering 200 by then. Each retry is answered 202 with "
        "the attempt it joins; the row counts the POSTs each burst made (one is the aim: concurrent retries "
        "of one delivery join one attempt).",
        0,
        None,
        proof=(CONCURRENT,),
        kind="retry-burst",
        how_long="on each of several deliveries",
    ),
)
SCENARIOS_BY_KEY = {s.key: s for s in SCENARIOS}
