"""`make run`: the Temporal dev server, the worker and the API in the foreground, stopped together.

Everything persists under the data dir (`WEBHOOKS_DATA_DIR`): Temporal's SQLite file, the endpoint store,
the encryption keys, the operator key and the dev API key, so a second run keeps every endpoint, event
and delivery log. The data dir is private (0700) and everything in it is made 0600: the children run
with umask 077, and the key files are created that way, never chmod-ed after. With
`WEBHOOKS_TEMPORAL_ADDRESS` set, no dev server is started and that Temporal is used. The tests start the
same `Stack` on free ports.

Stopping: SIGINT or SIGTERM, once or more, stops the API, then the worker (which lets attempts in flight
finish), then Temporal; a second Ctrl-C kills what is still running. The signal handlers only set flags,
so a signal never cuts a stop short (no traceback, no child left unsignalled). On Linux the kernel kills
the children if the launcher dies without stopping them (SIGKILL, a crash).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

import httpx

from core.crypto import new_key_entry
from core.settings import Settings
from core.temporal import connect, ensure_retention, ensure_search_attributes
from domain import search_attributes

DEV_TENANT = "dev"
# Write-ahead logging about doubles the dev server's throughput (BENCHMARKS.md). synchronous=full keeps
# every commit on disk before Temporal acknowledges it, so an accepted event survives a machine crash.
#
# History reads each of its task queues (transfer, timer, visibility) at most 50 times a second, not 20: the
# dev server has one shard, and at 20 every task written from about 3 events/s on waited for the next read
# (the median from 202 to receipt at 5 events/s went 214 → 63 ms, BENCHMARKS.md). 200 did that too but
# made a 2,000-event burst drain a fifth slower; 50 did not. Only how soon history hands on a task it has
# written changes: durability does not. A cluster with more shards spreads the reads (docs/production.md).
HISTORY_READS_PER_SECOND = 50
DEV_SERVER_TUNING = (
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=full",
    *(
        arg
        for queue in ("transfer", "timer", "visibility")
        for arg in (
            "--dynamic-config-value",
            f"history.{queue}ProcessorMaxPollRPS={HISTORY_READS_PER_SECOND}",
        )
    ),
)
# How long a process may take to stop on SIGTERM before it is killed. The worker's own grace (delivery
# timeout + 5 s, worker.py) comes on top of this.
STOP_GRACE_SECONDS = 30
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class StopRequested(Exception):
    """`Stack.request_stop()` was called while `Stack.start()` was bringing the stack up."""


def _bin(name: str) -> str:
    path = Path(sysconfig.get_path("scripts")) / name
    return str(path) if path.exists() else name


FREE_PORTS_FROM = 10_000  # above the ports well-known services listen on
_handed_out: set[int] = set()  # by this process: never the same port twice
_random = random.SystemRandom()  # not the global generator, which a test may seed alike in two processes


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, below the kernel's ephemeral range on Linux.

    A port from the ephemeral range (what binding port 0 gives) may be taken, before its process binds
    it, as the source port of any outgoing connection on the machine; a port below that range is never
    handed out that way, so only another process's `free_port` can take it in between (retry then).
    Elsewhere, or with no room below the range, it is port 0's choice, and that race remains.
    """
    low = _ephemeral_range_start()
    for _ in range(50):
        port = _random.randrange(FREE_PORTS_FROM, low) if low - FREE_PORTS_FROM >= 1000 else 0
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = int(s.getsockname()[1])
        _handed_out.add(port)
        return port
    raise RuntimeError("no free TCP port found on 127.0.0.1")


def _ephemeral_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):  # not Linux: port 0 it is
        return 0


def long_poll_flags(worker_health_window: float) -> tuple[str, ...]:
    """The dev server's long poll, a third of the window in which /healthz expects a worker to poll (and
    never longer than Temporal's own 60 s): a live worker then always polls well within the window."""
    seconds = max(1, min(60, int(worker_health_window // 3)))
    return ("--dynamic-config-value", f'matching.longPollExpirationInterval="{seconds}s"')


def fairness_flags(enabled: bool) -> tuple[str, ...]:
    """Temporal's task queue fairness (domain/fairness.py): each tenant its share of dispatch by weight."""
    return ("--dynamic-config-value", "matching.enableFairness=true") if enabled else ()


def local_stack_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """The settings of a stack of its own on this machine: `data_dir` and free ports for everything.

    What the tests and `make bench` start their stacks with (each adds its own settings on top).
    """
    env = {
        "WEBHOOKS_DATA_DIR": str(data_dir),
        "WEBHOOKS_API_PORT": str(free_port()),
        "WEBHOOKS_TEMPORAL_PORT": str(free_port()),
        "WEBHOOKS_TEMPORAL_UI_PORT": str(free_port()),
        "WEBHOOKS_WORKER_METRICS_PORT": str(free_port()),
    }
    return {**env, **overrides}


def _kept(path: Path, make: Callable[[], str]) -> str:
    """The value kept in `path`, made by `make` the first time (the file created 0600, never wider)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(make() + "\n")
    return path.read_text().strip()


def dev_api_keys(data_dir: Path) -> str:
    """`dev:<key>`, the key made once and kept in the data dir so it survives restarts."""
    return _kept(data_dir / "dev-api-key", lambda: f"{DEV_TENANT}:key_{secrets.token_urlsafe(24)}")


def prepare_data_dir(settings: Settings) -> None:
    """A private data dir, and the keys the service needs kept in it unless the settings give them.

    A data dir from an earlier version (0755, files 0644) is made private too.
    """
    data_dir = settings.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for path in data_dir.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    if not settings.encryption_keys.get_secret_value() and settings.encryption_keys_file is None:
        key_file = settings.encryption_keys_path
        sealed = [p.name for p in (data_dir / "webhooks.db", data_dir / "temporal.db") if p.exists()]
        if not key_file.exists() and sealed:
            # A new key would open none of it: every endpoint's secret and every payload would be lost.
            raise SystemExit(
                f"{key_file} is missing, and {' and '.join(sealed)} in {data_dir} were encrypted with the "
                "key it held: restore it from a backup (or set WEBHOOKS_ENCRYPTION_KEYS to that key). "
                "A new key is made only for a data dir without data; one made by a version from before "
                f"encryption never had a key: put a new one in {key_file} (`python -m cli.crypto new-key`), "
                "which its upgrade seals its secrets with"
            )
        _kept(key_file, lambda: new_key_entry("dev1"))
    if not settings.operator_key.get_secret_value():
        _kept(data_dir / "operator-key", lambda: "op_" + secrets.token_urlsafe(24))


def api_healthy(api_url: str) -> bool:
    """Whether the API at `api_url` answers 200 on `/healthz` now (False when it does not answer yet)."""
    try:
        return httpx.get(f"{api_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# Seconds the API keeps an idle connection open (uvicorn's own default is 5). Longer than a client's or a
# load balancer's idle timeout (httpx: 5 s, AWS's ALB: 60 s), so that the client drops the connection
# first: otherwise a request it sends on one just as the API closes it gets no answer ("Server
# disconnected without sending a response"), which a client cannot safely repeat if it was a POST. The
# image sets the same; UVICORN_TIMEOUT_KEEP_ALIVE in the environment overrides both.
API_KEEP_ALIVE_SECONDS = "75"


class Stack:
    """The three processes of the service, started in order and stopped in reverse."""

    def __init__(
        self, env: Mapping[str, str], *, log_file: Path | None = None, server_args: Sequence[str] = ()
    ) -> None:
        self.env = {"UVICORN_TIMEOUT_KEEP_ALIVE": API_KEEP_ALIVE_SECONDS, **os.environ, **env}
        self._server_args = tuple(server_args)  # more flags for the dev server (make bench: its metrics)
        self.settings = settings_from(self.env)
        self.log_file = log_file  # where every process's output goes (None: this process's own)
        self.temporal: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.api: subprocess.Popen[bytes] | None = None
        # Plain flags, read by the loops below: `request_stop` runs in signal handlers, where taking a
        # lock (threading.Event) could deadlock against the interrupted code.
        self._stop_requested = False
        self._hurry = False

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def worker_metrics_url(self) -> str | None:
        address = self.settings.worker_metrics_address
        return f"http://{address}/metrics" if address else None

    def request_stop(self, *, hurry: bool = False) -> None:
        """Make `start` give up and `watch` return; with `hurry`, `stop` kills instead of waiting.

        Safe in a signal handler: it only sets flags.
        """
        self._stop_requested = True
        self._hurry = self._hurry or hurry

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        if self._stop_requested:
            raise StopRequested
        # A session of its own: Ctrl-C reaches the launcher, which stops the children in order.
        preexec = _die_with_this_process()
        # umask 077: whatever a child creates in the data dir (Temporal's database among them) is 0600.
        if self.log_file is None:
            return subprocess.Popen(
                args, env=self.env, start_new_session=True, preexec_fn=preexec, umask=0o077
            )
        with self.log_file.open("ab") as out:
            return subprocess.Popen(
                args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
                umask=0o077,
            )

    def start(self, timeout: float = 60) -> None:
        prepare_data_dir(self.settings)
        self.migrate(timeout)
        self.start_temporal(timeout)
        self.start_worker()
        self.start_api()
        self.wait_healthy(timeout)

    def start_temporal(self, timeout: float = 60) -> None:
        """The dev server on its database file, returned once it answers; only that, with an external one.

        Also how a stopped or killed dev server is brought back (`make chaos`): the file holds every
        workflow, and the worker and the API reconnect by themselves.
        """
        s = self.settings
        if not s.temporal_address:
            self.temporal = self._spawn(
                [
                    _bin("temporal"),
                    "server",
                    "start-dev",
                    "--db-filename",
                    str(s.data_dir / "temporal.db"),
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    str(s.temporal_port),
                    "--ui-port",
                    str(s.temporal_ui_port),
                    "--namespace",
                    s.temporal_namespace,
                    "--log-level",
                    "error",
                    "--ui-disable-news-fetch",
                    # The Web UI shows payloads through the API's codec endpoint (docs/data-protection.md).
                    "--ui-codec-endpoint",
                    f"{self.api_url}/codec",
                    *DEV_SERVER_TUNING,
                    *long_poll_flags(s.worker_health_window),
                    *fairness_flags(s.fairness),
                    *search_attributes.dev_server_flags(),
                    *self._server_args,
                ]
            )
        asyncio.run(self._prepare_temporal(timeout))

    def stop_temporal(self, sig: int = signal.SIGTERM) -> None:
        self._end(self.temporal, sig, grace=STOP_GRACE_SECONDS)
        self.temporal = None

    def migrate(self, timeout: float = 60) -> None:
        """The endpoint store made or upgraded to this version's schema (store/migrate.py), once, before
        the worker and the API, which refuse a schema they do not know."""
        proc = self._spawn([sys.executable, "-m", "cli.migrate"])
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the store's migrations did not finish in {timeout:g} s") from None
        if code != 0:
            raise RuntimeError(f"the store's migrations failed (exit code {code}): see the lines above")

    def start_worker(self) -> None:
        self.worker = self._spawn([sys.executable, "-m", "worker"])

    def stop_worker(self, sig: int = signal.SIGTERM) -> None:
        self._end(self.worker, sig, grace=self._worker_grace())
        self.worker = None

    def start_api(self) -> None:
        """The API process; it answers once uvicorn has started (see `wait_healthy`)."""
        s = self.settings
        self.api = self._spawn(
            [
                sys.executable,
                "-m",
                "api",
                "--host",
                s.api_host,
                "--port",
                str(s.api_port),
                "--log-level",
                "warning",
            ]
        )

    def stop_api(self, sig: int = signal.SIGTERM) -> None:
        self._end(self.api, sig, grace=STOP_GRACE_SECONDS)
        self.api = None

    def _worker_grace(self) -> float:
        # The worker finishes attempts in flight for up to delivery timeout + 5 s before it cancels them.
        return self.settings.delivery_timeout + 5 + STOP_GRACE_SECONDS

    async def _prepare_temporal(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                client = await connect(self.settings, encrypted=False)
                await ensure_search_attributes(client)
                await ensure_retention(client, self.settings.log_retention_days)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def _check_alive(self) -> None:
        """Whether to go on waiting for the stack to come up: not once a stop is asked for, nor once one
        of its processes has exited."""
        if self._stop_requested:
            raise StopRequested
        for name, proc in (("temporal", self.temporal), ("worker", self.worker), ("api", self.api)):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}")

    def wait_healthy(self, timeout: float = 60) -> None:
        """Until the API says healthy and, when it serves metrics, our own worker answers on its port.

        `/healthz` counts any worker Temporal saw poll lately, one stopped a moment ago included; the
        metrics port tells that the worker this stack started is the one up (and holds the port).
        """
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                if api_healthy(self.api_url) and self._worker_answers():
                    return
            except httpx.HTTPError:  # the worker's metrics port not answering yet
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API at {self.api_url} did not become healthy in {timeout:g} s")
            time.sleep(0.2)

    def _worker_answers(self) -> bool:
        port = self.settings.worker_metrics_port
        if self.worker is None or not port:
            return True  # metrics off: /healthz alone says it
        host = self.settings.worker_metrics_host
        # Asked where it listens: a wildcard address answers on loopback; an IPv6 one goes in brackets.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        host = f"[{host}]" if ":" in host else host
        return httpx.get(f"http://{host}:{port}/metrics", timeout=2).status_code == 200

    def watch(self) -> int | None:
        """Block until a process exits on its own (its exit code) or a stop is requested (None)."""
        while not self._stop_requested:
            for proc in (self.temporal, self.worker, self.api):
                if proc is not None and proc.poll() is not None:
                    return proc.returncode or 1
            time.sleep(0.2)
        return None

    def stop(self) -> None:
        """SIGTERM to the API, the worker, then Temporal, each waited for; whoever overstays is killed."""
        self._end(self.api, signal.SIGTERM, grace=STOP_GRACE_SECONDS)
        self._end(self.worker, signal.SIGTERM, grace=self._worker_grace())
        self._end(self.temporal, signal.SIGTERM, grace=STOP_GRACE_SECONDS)
        self.api = self.worker = self.temporal = None

    def _end(self, proc: subprocess.Popen[bytes] | None, sig: int, *, grace: float) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if self._hurry else sig)
        deadline = time.monotonic() + grace
        # Short waits, so that a hurried stop (a second Ctrl-C) kills at once rather than at the deadline.
        while True:
            try:
                proc.wait(timeout=0.2)
                return
            except subprocess.TimeoutExpired:
                if self._hurry or time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    return


# Tries at starting a stack of the tests, the bench or the chaos run, each on fresh ports.
START_TRIES = 3


def start_on_fresh_ports(
    make: Callable[[], Stack], *, tries: int = START_TRIES, timeout: float = 60
) -> Stack:
    """A stack that `make` makes (on free ports: `local_stack_env`), started; made and started again if one
    of its processes died while starting ("worker exited with code 1"), up to `tries` times. A port found
    free is bound seconds later, and on a machine shared with other runs another run's `free_port` may
    have handed it out too. Not for `make run`, whose ports are the operator's. `timeout`: each try's."""
    for attempt in range(1, tries + 1):
        stack = make()
        try:
            stack.start(timeout)
            return stack
        except RuntimeError:
            stack.stop()
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


def _die_with_this_process() -> Callable[[], None] | None:
    """A `preexec_fn` that has Linux SIGKILL the child when this process dies, even by SIGKILL.

    SIGKILL rather than SIGTERM: a child that lingered in its own shutdown would outlive us for good, and
    nothing is lost (the dev server's SQLite commits are synchronous, an attempt cut short is retried).
    The signal comes when the *thread* that forked exits, so only the main thread's children get it.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = _prctl()
    parent = os.getpid()

    def die_with_parent() -> None:  # runs in the child between fork and exec: no locks, no I/O
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return die_with_parent


@functools.cache
def _prctl() -> Callable[[int, int], int]:
    # Looked up in the parent: the child, forked from a process with threads (Temporal's runtime), must
    # not load libraries or take locks before exec.
    function = ctypes.CDLL(None, use_errno=True).prctl
    function.argtypes = [ctypes.c_int, ctypes.c_ulong]
    function.restype = ctypes.c_int
    return function


def settings_from(env: Mapping[str, str]) -> Settings:
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    os.umask(0o077)
    settings = Settings()
    prepare_data_dir(settings)
    env: dict[str, str] = {"WEBHOOKS_DATA_DIR": str(settings.data_dir.resolve())}
    if "WEBHOOKS_ALLOW_PRIVATE_URLS" not in os.environ:
        # `make run` is a developer's machine, where receivers listen on localhost.
        env["WEBHOOKS_ALLOW_PRIVATE_URLS"] = "true"
    if "WEBHOOKS_DASHBOARD_TEMPORAL_LINKS" not in os.environ:
        # ... and the person at the dashboard is the operator, who can open the embedded Web UI.
        env["WEBHOOKS_DASHBOARD_TEMPORAL_LINKS"] = "true"
    if not settings.tenants_by_key:
        env["WEBHOOKS_API_KEYS"] = dev_api_keys(settings.data_dir)
    stack = Stack(env)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # Flags only (Stack.request_stop). A second Ctrl-C hurries the stop; a second SIGTERM does not:
        # `kill -- -PGID` of `make run` delivers two, since make passes its own on to us.
        stack.request_stop(hurry=signum == signal.SIGINT and stack.stop_requested)

    # SIGINT too: a shell that starts us in the background hands us SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        stack.start()
        s = stack.settings
        keys = ", ".join(f"{tenant}: {key}" for key, tenant in s.tenants_by_key.items())
        operator_key = (
            "WEBHOOKS_OPERATOR_KEY" if s.operator_key.get_secret_value() else s.data_dir / "operator-key"
        )
        # Where mail goes, never with its password (WEBHOOKS_SMTP_URL is a secret).
        alert_mails = (
            f"via {s.smtp.host}:{s.smtp.port}, from {s.alert_from}"
            if s.smtp
            else "(off: no WEBHOOKS_SMTP_URL)"
        )
        print(  # noqa: T201
            "\nFlexprice webhooks is running\n"
            f"  API               {stack.api_url}\n"
            f"  Dashboard         {stack.api_url}/dashboard/\n"
            f"  OpenAPI docs      {stack.api_url}/docs\n"
            f"  API metrics       {stack.api_url}/metrics\n"
            f"  Worker metrics    {stack.worker_metrics_url or '(off)'}\n"
            f"  Temporal Web UI   {s.ui_url or '(external Temporal: see its own UI)'}\n"
            f"  Temporal gRPC     {s.temporal_target}\n"
            f"  Payload codec     {stack.api_url}/codec/ (operators, with {operator_key})\n"
            f"  API keys          {keys if env.get('WEBHOOKS_API_KEYS') else '(from WEBHOOKS_API_KEYS)'}\n"
            f"  Data              {s.data_dir}\n"
            f"  Private URLs      {'allowed' if s.allow_private_urls else 'refused'}\n"
            f"  Alert mails       {alert_mails}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        exited = stack.watch()
        if exited is not None:
            code = exited
            print(f"a process exited (code {code}); stopping the others", file=sys.stderr)  # noqa: T201
    except StopRequested:
        pass  # a signal during start-up
    finally:
        if stack.stop_requested:
            print(  # noqa: T201
                "\nstopping… (the worker lets attempts in flight finish; Ctrl-C again to stop at once)",
                flush=True,
            )
        stack.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
