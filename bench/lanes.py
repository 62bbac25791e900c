"""Lanes: the designs `make bench` measures side by side, on one Temporal dev server, in one run.

A lane is a task queue with its own worker (and, for the product's shapes, its own API and tenant), so
that its workflows never meet another lane's worker. The product lane is the `make run` stack itself;
the others are started here against its dev server and stopped with it. A `Target` is how the bench
emits events into a lane: through the lane's HTTP API, or, for the plain design, which has no API,
straight through the Temporal client.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import httpx
from temporalio.client import Client

from bench import plain
from core.signing import generate_secret
from domain import ids
from domain.catalog import EVENT_TYPES_BY_NAME
from launcher import Stack, _die_with_this_process, api_healthy


@dataclass(frozen=True)
class Lane:
    """One design under test. `worker` is what `python -m` runs (None: the queue's worker belongs to
    another lane); `api` is a uvicorn app factory (None: events are started through the client)."""

    name: str
    task_queue: str
    tenant: str
    worker: tuple[str, ...] | None
    api: str | None = "api.main:create_app"
    env: Mapping[str, str] = field(default_factory=dict)
    what: str = ""
    takes_manual_retry: bool = True
    # Endpoints made ordered, and each event given one of this many ordering keys in turn (0: unordered).
    ordered_keys: int = 0
    # Its API and worker export their spans to the bench's OTLP sink (bench/otlp_sink.py).
    traced: bool = False
    # The endpoint counts the `sustained` scenario runs it at.
    fans: tuple[int, ...] = (1, 5)


# Short, so that the actions scenario's deliveries close within seconds: the same 8 attempts and 7
# waits as the default schedule, and a retry window (one timer, whatever its length).
SHORT_SCHEDULE = {"WEBHOOKS_RETRY_SCHEDULE": ",".join(["0.3"] * 7), "WEBHOOKS_RETRY_WINDOW_SECONDS": "3"}

PRODUCT = Lane("product", "webhooks", "bench", None, what="the product, as `make run` runs it")
LANES = {
    lane.name: lane
    for lane in (
        PRODUCT,
        Lane(
            "plain",
            plain.TASK_QUEUE,
            "plain",
            ("bench.plain",),
            api=None,
            what="the plain design (bench/plain.py): child per endpoint, one activity, Temporal retries",
            takes_manual_retry=False,
        ),
        Lane(
            "local_first",
            "bench-local-first",
            "localfirst",
            ("bench.workers", "local-first"),
            what="the product with its first attempt as a local activity (bench/variants.py)",
        ),
        Lane(
            "plaintext",
            "bench-plaintext",
            "plaintext",
            ("bench.workers", "plaintext"),
            api="bench.workers:plaintext_app",
            what="the product without the payload codec (bench/workers.py)",
        ),
        Lane(
            "product_short",
            PRODUCT.task_queue,
            "short",
            None,
            env=SHORT_SCHEDULE,
            what="the product, short schedule (for the actions scenario)",
        ),
        Lane(
            "window0_short",
            PRODUCT.task_queue,
            "window0",
            None,
            api="bench.workers:window0_app",
            env=SHORT_SCHEDULE,
            what="the product with a retry window of 0, short schedule",
            takes_manual_retry=False,
        ),
        Lane(
            "local_first_short",
            "bench-local-first",
            "localshort",
            None,
            env=SHORT_SCHEDULE,
            what="the local-first variant, short schedule",
        ),
        Lane(
            "uncompressed_short",
            "wh-nozip",  # a queue and a tenant as long as product_short's: both are in its histories
            "nozip",
            ("worker",),
            env={**SHORT_SCHEDULE, "WEBHOOKS_PAYLOAD_COMPRESSION": "false"},
            what="the product with its payloads encrypted but not compressed, short schedule (storage)",
        ),
        Lane(
            "short_metadata_short",
            "wh-smeta",  # a queue and a tenant as long as product_short's: both are in its histories
            "smeta",
            ("worker",),
            env={**SHORT_SCHEDULE, "WEBHOOKS_PAYLOAD_SHORT_METADATA": "true"},
            what="the product with the payloads' short metadata on, short schedule (storage)",
        ),
        Lane(
            "no_eager",
            "bench-no-eager",
            "noeager",
            ("bench.workers", "no-eager"),
            what="the product with every first attempt through the task queue (no eager activity)",
        ),
        Lane("slots", "bench-slots", "slots", ("worker",), what="the product, worker slot sizes varied"),
        # Tracing (issue 24): the product lane is tracing off, as shipped; these two are on, and absent.
        Lane(
            "traced",
            "bench-traced",
            "traced",
            ("worker",),
            traced=True,
            what="the product with tracing on, exporting every span over OTLP/HTTP to the bench's sink",
        ),
        Lane(
            "untraced",
            "bench-untraced",
            "untraced",
            ("bench.workers", "no-tracing"),
            api="bench.workers:untraced_app",
            what="the product with no tracing code at all (bench/workers.py, `without_tracing`)",
        ),
        # Ordered delivery (issue 21), on the product's own worker and queue: only the endpoint differs.
        Lane(
            "ordered_1key",
            PRODUCT.task_queue,
            "ordered1",
            None,
            ordered_keys=1,
            fans=(1,),
            what="the product, an ordered endpoint, every event of one ordering key",
        ),
        Lane(
            "ordered_100keys",
            PRODUCT.task_queue,
            "ordered100",
            None,
            ordered_keys=100,
            fans=(1,),
            what="the product, an ordered endpoint, events spread over 100 ordering keys in turn",
        ),
        Lane(
            "ordered_short",
            PRODUCT.task_queue,
            "orderedshort",
            None,
            env=SHORT_SCHEDULE,
            ordered_keys=1,
            what="the product, an ordered endpoint, short schedule (for the actions scenario)",
        ),
        # For the "tried" table (`--lanes`), not in the default run:
        Lane(
            "window0",
            PRODUCT.task_queue,
            "window0l",
            None,
            api="bench.workers:window0_app",
            what="the product with a retry window of 0",
        ),
        Lane(
            "no_health",
            "bench-no-health",
            "nohealth",
            ("bench.workers", "no-health"),
            what="the product without counting each attempt in its endpoint's health",
        ),
        Lane(
            "no_flow",
            "bench-no-flow",
            "noflow",
            ("bench.workers", "no-flow"),
            what="the product without its endpoints' shared limits (no admission or release per attempt)",
        ),
        Lane(
            "quiet_close",
            "bench-quiet",
            "quiet",
            ("bench.workers", "quiet-close"),
            api="bench.workers:window0_app",
            what="retry window 0, and no upsert when a delivery closes",
        ),
        Lane(
            "bare_start",
            "bench-bare",
            "bare",
            ("bench.workers", "bare-start"),
            what="the product, deliveries started with no search attributes",
        ),
        Lane(
            "eager_start",
            "bench-eager",
            "eager",
            ("worker",),
            api="bench.workers:eager_app",
            what="the product, events started eagerly by a worker inside the API process",
        ),
    )
}


def api_key(lane: Lane) -> str:
    return f"bench-{lane.name}-key-" + "0" * 16


def api_keys_setting() -> str:
    return ",".join(f"{lane.tenant}:{api_key(lane)}" for lane in LANES.values())


class Child:
    """A process of the bench's own, stopped by its pid (and killed by Linux if the bench dies)."""

    def __init__(self, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.args = args
        self.env = dict(env)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_this_process(),
            )

    def stop(self, grace: float = 45) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class RunningLane:
    """A lane's processes: its worker and API, or, for the product lane, the stack's own."""

    def __init__(
        self,
        lane: Lane,
        stack: Stack,
        log: Path,
        free_port: Callable[[], int],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.lane = lane
        self.stack = stack
        self.worker: Child | None = None
        self.api: Child | None = None
        self.api_url = stack.api_url
        self.metrics_url = stack.worker_metrics_url
        if lane is PRODUCT:
            return
        api_port, metrics_port = free_port(), free_port()
        self.env = {
            **stack.env,
            "WEBHOOKS_TEMPORAL_ADDRESS": stack.settings.temporal_target,
            "WEBHOOKS_TASK_QUEUE": lane.task_queue,
            "BENCH_PLAIN_TASK_QUEUE": lane.task_queue,
            "WEBHOOKS_API_PORT": str(api_port),
            "WEBHOOKS_WORKER_METRICS_PORT": str(metrics_port),
            **lane.env,
            **(env or {}),
        }
        if lane.worker is not None:
            self.worker = Child([sys.executable, "-m", *lane.worker], self.env, log)
            self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics" if lane.api else None
        if lane.api is not None:
            self.api = Child(
                [
                    sys.executable,
                    # The product's API as it ships (api/__main__.py); a variant's app through uvicorn.
                    *(("-m", "api") if lane.api == PRODUCT.api else ("-m", "uvicorn", "--factory", lane.api)),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(api_port),
                    "--log-level",
                    "warning",
                ],
                self.env,
                log,
            )
            self.api_url = f"http://127.0.0.1:{api_port}"

    def start(self) -> None:
        if self.worker is not None:
            self.worker.start()
        if self.api is not None:
            self.api.start()

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the API says healthy (its store, Temporal, and a worker polling its queue)."""
        if self.api is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            if api_healthy(self.api_url):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"lane {self.lane.name}: API not healthy after {timeout:g} s")
            time.sleep(0.3)

    def stop(self) -> None:
        for child in (self.api, self.worker):
            if child is not None:
                child.stop()

    def stop_worker(self) -> None:
        if self.lane is PRODUCT:
            self.stack.stop_worker()
        elif self.worker is not None:
            self.worker.stop()

    def start_worker(self, env: Mapping[str, str] | None = None, args: tuple[str, ...] | None = None) -> None:
        """(Re)start the lane's worker, with other settings or another entry point if given."""
        if self.lane is PRODUCT:
            self.stack.start_worker()
            return
        assert self.worker is not None, f"lane {self.lane.name} has no worker of its own"
        self.worker.env = {**self.env, **(env or {})}
        if args is not None:
            self.worker.args = [sys.executable, "-m", *args]
        self.worker.start()

    def pids(self) -> dict[str, int]:
        if self.lane is PRODUCT:
            procs = {"worker": self.stack.worker, "api": self.stack.api}
            return {name: p.pid for name, p in procs.items() if p is not None}
        children = {"worker": self.worker, "api": self.api}
        return {name: pid for name, c in children.items() if c is not None and (pid := c.pid) is not None}


class Target(Protocol):
    """How the bench puts load on a lane."""

    name: str

    async def set_endpoints(self, paths: list[str]) -> list[str]:
        """Make these receiver paths the lane's only endpoints; their ids."""
        ...

    async def emit(self, event_id: str) -> float:
        """Emit one event; the time it was accepted (durably stored)."""
        ...

    async def retry(self, delivery_id: str) -> None: ...

    def workflow_ids(self, event_id: str, endpoint_ids: list[str]) -> list[str]:
        """The event's workflow id, then each delivery's."""
        ...


def event_body(event_id: str) -> dict[str, object]:
    """The bench's event: the catalog's invoice (domain/catalog.py) with the three line items of a plan
    with a fee and two metered prices, about 1.4 KB of JSON as compressible as a real invoice (a padded
    body, as the bench had before, compresses to almost nothing and flattered the codec's compression)."""
    lines = [
        ("Platform fee", "price_01JD8KZB", None, "99.00", "1"),
        ("API calls", "price_01JD8KZC", "meter_01JD7XB2D4F6H8K0M2P4R6T8VA", "18.40", "184000"),
        ("Seats", "price_01JD8KZD", None, "2.60", "13"),
    ]
    invoice = {
        **EVENT_TYPES_BY_NAME["invoice.created"].example,
        "id": event_id,
        "line_items": [
            {
                "id": f"inli_{event_id}_{n}",
                "display_name": name,
                "price_id": price,
                "meter_id": meter,
                "amount": amount,
                "quantity": quantity,
                "currency": "usd",
                "period_start": "2026-10-03T00:00:00Z",
                "period_end": "2026-11-03T00:00:00Z",
            }
            for n, (name, price, meter, amount, quantity) in enumerate(lines)
        ],
    }
    return {"id": event_id, "webhook_type": "invoice.created", "data": {"object": invoice}}


# How long an emission is sent again while the API answers 503 or the connection fails: a loaded machine's
# Temporal can miss the API's bound on its calls (5 s) for a while; past this, the failure is the run's.
RESEND_WITHIN = 60.0
RESEND_PAUSE = 1.0  # after a connection error, or a 503 without Retry-After
# Emissions sent again, by why (the report's notes): counted, so that a run that needed them says so.
RESENT: Counter[str] = Counter()


async def post_event(
    api: httpx.AsyncClient, body: Mapping[str, object], *, within: float = RESEND_WITHIN
) -> tuple[httpx.Response, float]:
    """POST the event, and again, the same body, while the API answers 503 ("the request may have been
    applied. Retry it with the same id") or the connection fails, waiting `Retry-After` when given, for at
    most `within` seconds, then the failure is raised. Safe because the event has its own id: the API
    accepts an id once and answers every later send of it with the same 202.

    The first other answer, and when the event was accepted: the answer's arrival, or, for an event sent
    more than once, the 202's `created_at` (the API's clock, on this machine), since an earlier send may
    have been applied and its deliveries received before the last send's 202."""
    assert body.get("id"), "only an event with its own id may be sent again"
    deadline = time.monotonic() + within
    sends = 0
    while True:
        sends += 1
        try:
            response = await api.post("/v1/events", json=body)
        except httpx.TransportError as err:
            if time.monotonic() >= deadline:
                raise
            why, pause = f"connection error ({type(err).__name__})", RESEND_PAUSE
        else:
            if response.status_code != 503:
                if sends > 1 and response.status_code == 202:
                    return response, datetime.fromisoformat(response.json()["created_at"]).timestamp()
                return response, time.time()
            if time.monotonic() >= deadline:
                response.raise_for_status()  # a 503: raises
            retry_after = response.headers.get("retry-after", "")
            why, pause = "503", float(retry_after) if retry_after.isdigit() else RESEND_PAUSE
        RESENT[why] += 1
        await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))


class ApiTarget:
    """A product lane: endpoints and events through its HTTP API, as a client of the service would."""

    def __init__(self, name: str, tenant: str, api: httpx.AsyncClient, receiver_url: str) -> None:
        self.name = name
        self.tenant = tenant
        self.api = api
        self.receiver_url = receiver_url

    async def set_endpoints(self, paths: list[str]) -> list[str]:
        for endpoint in (await self.api.get("/v1/webhooks/endpoints")).json()["items"]:
            await self.api.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")
        made = []
        for path in paths:
            response = await self.api.post("/v1/webhooks/endpoints", json={"url": self.receiver_url + path})
            response.raise_for_status()
            made.append(response.json()["id"])
        return made

    async def emit(self, event_id: str) -> float:
        response, accepted_at = await post_event(self.api, event_body(event_id))
        response.raise_for_status()
        return accepted_at

    async def retry(self, delivery_id: str) -> None:
        (await self.api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")).raise_for_status()

    async def wait_status(self, delivery_id: str, statuses: tuple[str, ...], *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            response = await self.api.get(f"/v1/webhooks/deliveries/{delivery_id}")
            if response.status_code == 200 and response.json()["status"] in statuses:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"delivery {delivery_id} not {'/'.join(statuses)} after {timeout:g} s")
            await asyncio.sleep(0.1)

    def workflow_ids(self, event_id: str, endpoint_ids: list[str]) -> list[str]:
        return [ids.event_workflow_id(self.tenant, event_id)] + [
            ids.delivery_workflow_id(self.tenant, ids.delivery_id(event_id, e)) for e in endpoint_ids
        ]


class OrderedTarget(ApiTarget):
    """A product lane whose endpoints are ordered, its events given `keys` ordering keys in turn (the
    first event `key-0`, the next `key-1`, …), so that with 100 keys 100 lanes run side by side."""

    def __init__(self, name: str, tenant: str, api: httpx.AsyncClient, receiver_url: str, keys: int) -> None:
        super().__init__(name, tenant, api, receiver_url)
        self.keys = keys
        self.endpoint_ids: list[str] = []
        self._emitted = itertools.count()

    async def set_endpoints(self, paths: list[str]) -> list[str]:
        for endpoint in (await self.api.get("/v1/webhooks/endpoints")).json()["items"]:
            await self.api.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")
        made = []
        for path in paths:
            response = await self.api.post(
                "/v1/webhooks/endpoints", json={"url": self.receiver_url + path, "ordered": True}
            )
            response.raise_for_status()
            made.append(response.json()["id"])
        self.endpoint_ids = made
        # Every step starts on new endpoints, so on fresh lanes; the keys start again at `key-0`.
        self._emitted = itertools.count()
        return made

    async def emit(self, event_id: str) -> float:
        # Chosen once: a send again is the same event, of the same key.
        key = f"key-{next(self._emitted) % self.keys}"
        response, accepted_at = await post_event(self.api, {**event_body(event_id), "ordering_key": key})
        response.raise_for_status()
        return accepted_at

    def lane_workflow_ids(self, keys: list[str]) -> list[str]:
        """The lane workflow of each of these keys, on each endpoint."""
        return [ids.lane_workflow_id(self.tenant, e, key) for e in self.endpoint_ids for key in keys]


class PlainTarget:
    """The plain design: its endpoints live in each event's input, and events start through the client."""

    def __init__(self, name: str, client: Client, receiver_url: str, task_queue: str) -> None:
        self.name = name
        self.client = client
        self.receiver_url = receiver_url
        self.task_queue = task_queue
        self.endpoints: list[plain.PlainEndpoint] = []
        self.retry_policy = plain.PlainRetry()
        self._made = itertools.count()

    async def set_endpoints(self, paths: list[str]) -> list[str]:
        self.endpoints = [
            plain.PlainEndpoint(f"ep_plain{next(self._made)}", self.receiver_url + path, generate_secret())
            for path in paths
        ]
        return [e.endpoint_id for e in self.endpoints]

    async def emit(self, event_id: str) -> float:
        body = event_body(event_id)
        payload = {"webhook_type": body["webhook_type"], "object_type": "invoice", "data": body["data"]}
        event = plain.PlainEvent(
            event_id=event_id,
            body=json.dumps(payload, separators=(",", ":")),
            endpoints=self.endpoints,
            retry=self.retry_policy,
        )
        await plain.start_event(self.client, event, task_queue=self.task_queue)
        return time.time()

    async def retry(self, delivery_id: str) -> None:
        raise NotImplementedError("the plain design has no manual retry")

    def workflow_ids(self, event_id: str, endpoint_ids: list[str]) -> list[str]:
        return [plain.event_workflow_id(event_id)] + [
            plain.delivery_workflow_id(event_id, e) for e in endpoint_ids
        ]
