"""The noisy neighbour: one tenant's burst, then its replay, while another tenant emits one event a second.

Tenant A emits `burst` events (eight clients at once, each honouring a 429's `Retry-After`, as a client
of the API should) to one endpoint that answers in `receiver_ms`; once they are delivered, a new endpoint
of A's, as slow, is sent every one of them again by a replay (a recovery's full speed: pages of 50 as
fast as they are made). Tenant B, idle until then, emits one event a second to a fast endpoint of its own
throughout: idle first, then during A's burst until A's backlog has drained, then during the replay
until it has.

Each mode runs on a stack of its own (dev server, worker and API exactly as `make run` starts them, in a
temporary data dir): fairness on (the default), and off (`WEBHOOKS_FAIRNESS=false`: no fairness keys and
no `matching.enableFairness`, so that tenants share the task queue first-in first-out; priorities stay).
The figures: B's latency from its 202 to the receiver's receipt (idle, during the burst, during the
replay), A's drain times, every delivery per second while A's backlog drains, and how many of A's were
lost (none may be).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import httpx

import launcher
from bench.lanes import event_body, post_event
from launcher import Stack

TENANTS = {"noisya": "noisy-a-key-" + "0" * 20, "noisyb": "noisy-b-key-" + "0" * 20}
MODES = {"on": "true", "off": "false"}


@dataclass(frozen=True)
class NoisyConfig:
    burst: int  # A's events, and so the replay's deliveries
    idle_seconds: float  # B alone, before A starts
    receiver_ms: int  # how long A's endpoints take to answer
    b_rate: float = 1.0  # B's events a second
    emitters: int = 8  # A's clients at once


FULL = NoisyConfig(burst=2000, idle_seconds=20, receiver_ms=200)
SMOKE = NoisyConfig(burst=20, idle_seconds=2, receiver_ms=50)


class Host(Protocol):
    """What the scenario needs of the bench that runs it (bench/run.py's `Bench`)."""

    receiver_url: str
    http: httpx.AsyncClient
    # Arguments for every dev server the bench starts, this scenario's too (a setting being tried).
    dev_server_args: tuple[str, ...]

    def say(self, text: str) -> None: ...

    async def receiver_stats(self, prefix: str) -> dict[str, object]: ...


@dataclass
class Outcome:
    """One mode's run: B's latencies (ms) by phase, and A's figures."""

    b_latency_ms: dict[str, list[float]]
    burst_drain_seconds: float
    burst_deliveries_per_s: float
    replay_drain_seconds: float
    replay_deliveries_per_s: float
    a_lost: int
    a_refused_429: int


class Noisy:
    def __init__(self, host: Host, config: NoisyConfig, mode: str, run: int, log: Path) -> None:
        self.host = host
        self.config = config
        self.mode = mode
        self.tag = f"noisy{mode}{run}"
        self.log = log
        self.refused = 0

    async def run(self) -> Outcome:
        with tempfile.TemporaryDirectory(prefix="bench-noisy-") as data_dir:

            def make() -> Stack:
                env = launcher.local_stack_env(
                    Path(data_dir),
                    WEBHOOKS_API_KEYS=",".join(f"{t}:{k}" for t, k in TENANTS.items()),
                    WEBHOOKS_ALLOW_PRIVATE_URLS="true",
                    WEBHOOKS_FAIRNESS=MODES[self.mode],
                    WEBHOOKS_RECOVERY_RATE="1000",  # a replay as fast as its pages are made
                )
                return Stack(env, log_file=self.log, server_args=self.host.dev_server_args)

            stack = await asyncio.to_thread(launcher.start_on_fresh_ports, make)
            try:
                return await self._measure(stack.api_url)
            finally:
                await asyncio.to_thread(stack.stop)

    async def _measure(self, api_url: str) -> Outcome:
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)

        def client(tenant: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                base_url=api_url, headers={"x-api-key": TENANTS[tenant]}, timeout=60, limits=limits
            )

        async with client("noisya") as a, client("noisyb") as b:
            receiver = self.host.receiver_url
            slow = f"/wait{self.config.receiver_ms}"
            a_burst = await _endpoint(a, f"{receiver}{slow}-{self.tag}-burst")
            b_fast = await _endpoint(b, f"{receiver}/{self.tag}-b")
            latency: dict[str, list[float]] = {}

            self.host.say(f"noisy neighbour, fairness {self.mode}: B alone")
            idle = B(b, b_fast, f"{self.tag}-bidle", self.config.b_rate)
            await idle.run_for(self.config.idle_seconds)
            latency["idle"] = await idle.latencies(self.host)

            self.host.say(f"noisy neighbour, fairness {self.mode}: A's burst of {self.config.burst}")
            since = datetime.now(UTC) - timedelta(seconds=1)
            a_ids = [f"{self.tag}-a{i}" for i in range(self.config.burst)]
            during = B(b, b_fast, f"{self.tag}-bburst", self.config.b_rate)
            started = time.time()
            b_task = asyncio.create_task(during.run_until_stopped())
            await self._emit_all(a, a_ids)
            burst_done = await self._delivered(a_ids, a_burst)
            during.stop()
            await b_task
            latency["burst"] = await during.latencies(self.host)
            burst_drain = burst_done - started
            burst_rate = (len(a_ids) + during.sent) / burst_drain

            self.host.say(f"noisy neighbour, fairness {self.mode}: A's replay of {self.config.burst}")
            a_replay = await _endpoint(a, f"{receiver}{slow}-{self.tag}-replay")
            replayed = B(b, b_fast, f"{self.tag}-breplay", self.config.b_rate)
            started = time.time()
            b_task = asyncio.create_task(replayed.run_until_stopped())
            # Not sent again on a 503: a replay has no id of the client's, so a second send could start a
            # second replay once the first has closed (one runs at a time per endpoint, not one per request).
            answer = await a.post(
                f"/v1/webhooks/endpoints/{a_replay}/replay", json={"since": since.isoformat()}
            )
            answer.raise_for_status()
            replay_done = await self._delivered(a_ids, a_replay)
            replayed.stop()
            await b_task
            latency["replay"] = await replayed.latencies(self.host)
            replay_drain = replay_done - started

        seen = await self._seen(a_ids, a_burst)
        return Outcome(
            b_latency_ms=latency,
            burst_drain_seconds=burst_drain,
            burst_deliveries_per_s=burst_rate,
            replay_drain_seconds=replay_drain,
            replay_deliveries_per_s=(len(a_ids) + replayed.sent) / replay_drain,
            a_lost=len(a_ids) - len(seen),
            a_refused_429=self.refused,
        )

    async def _emit_all(self, a: httpx.AsyncClient, event_ids: list[str]) -> None:
        queue = list(reversed(event_ids))

        async def emitter() -> None:
            while queue:
                event_id = queue.pop()
                while True:
                    answer, _ = await post_event(a, event_body(event_id))  # a 503 is sent again in there
                    if answer.status_code != 429:
                        answer.raise_for_status()
                        break
                    self.refused += 1
                    await asyncio.sleep(float(answer.headers.get("retry-after", "1")))

        await asyncio.gather(*(emitter() for _ in range(self.config.emitters)))

    async def _seen(self, event_ids: list[str], endpoint_id: str) -> dict[str, float]:
        stats = await self.host.receiver_stats(f"{self.tag}-a")
        first_seen = stats["first_seen"]
        assert isinstance(first_seen, dict)
        wanted = {f"{e}:{endpoint_id}" for e in event_ids}
        return {k: float(v) for k, v in first_seen.items() if k in wanted}

    async def _delivered(self, event_ids: list[str], endpoint_id: str, *, timeout: float = 1800) -> float:
        """Until every one of the events has reached the endpoint; the time the last one did."""
        deadline = time.monotonic() + timeout
        while True:
            seen = await self._seen(event_ids, endpoint_id)
            if len(seen) == len(event_ids):
                return max(seen.values())
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(seen)} of {len(event_ids)} delivered after {timeout:g} s")
            await asyncio.sleep(0.5)


class B:
    """Tenant B: one event every 1/`rate` seconds, each timed from its 202 to its receipt."""

    def __init__(self, api: httpx.AsyncClient, endpoint_id: str, prefix: str, rate: float) -> None:
        self.api = api
        self.endpoint_id = endpoint_id
        self.prefix = prefix
        self.rate = rate
        self.accepted: dict[str, float] = {}
        self._stop = asyncio.Event()

    @property
    def sent(self) -> int:
        return len(self.accepted)

    def stop(self) -> None:
        self._stop.set()

    async def run_for(self, seconds: float) -> None:
        asyncio.get_running_loop().call_later(seconds, self._stop.set)
        await self.run_until_stopped()

    async def run_until_stopped(self) -> None:
        started = time.monotonic()
        i = 0
        while not self._stop.is_set():
            event_id = f"{self.prefix}-{i}"
            answer, accepted_at = await post_event(
                self.api, {**event_body(event_id), "webhook_type": "invoice.payment_status_updated"}
            )
            answer.raise_for_status()
            self.accepted[f"{event_id}:{self.endpoint_id}"] = accepted_at
            i += 1
            await asyncio.sleep(max(0.0, started + i / self.rate - time.monotonic()))

    async def latencies(self, host: Host, *, timeout: float = 600) -> list[float]:
        """Milliseconds from each 202 to the receipt, once every event has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            stats = await host.receiver_stats(self.prefix + "-")
            seen = stats["first_seen"]
            assert isinstance(seen, dict)
            if all(k in seen for k in self.accepted) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        return [(float(seen[k]) - at) * 1000 for k, at in self.accepted.items() if k in seen]


async def _endpoint(api: httpx.AsyncClient, url: str) -> str:
    answer = await api.post("/v1/webhooks/endpoints", json={"url": url})
    answer.raise_for_status()
    return str(answer.json()["id"])
