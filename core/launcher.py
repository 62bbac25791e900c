"""`make run`: the Temporal dev server, the worker and the API in the foreground, stopped together.

Everything persists under the data dir (`WEBHOOKS_DATA_DIR`): Temporal's SQLite file, the endpoint store,
the JWT key and the dev API key, so a second run keeps every endpoint, event and delivery log. With
`WEBHOOKS_TEMPORAL_ADDRESS` set, no dev server is started and that Temporal is used. The tests start the
same `Stack` on free ports.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

import httpx

from core.settings import Settings
from core.temporal import connect, ensure_retention, ensure_search_attributes, search_attribute_flags

DEV_TENANT = "dev"
# Write-ahead logging about doubles the dev server's throughput (BENCHMARKS.md). synchronous=full keeps
# every commit on disk before Temporal acknowledges it, so an accepted event survives a machine crash.
DEV_SERVER_TUNING = ("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=full")


def _bin(name: str) -> str:
    path = Path(sysconfig.get_path("scripts")) / name
    return str(path) if path.exists() else name


def dev_api_keys(data_dir: Path) -> str:
    """`dev:<key>`, the key made once and kept in the data dir so it survives restarts."""
    path = data_dir / "dev-api-key"
    if not path.exists():
        path.write_text(f"{DEV_TENANT}:key_{secrets.token_urlsafe(24)}\n")
        path.chmod(0o600)
    return path.read_text().strip()


class Stack:
    """The three processes of the service, started in order and stopped in reverse."""

    def __init__(self, env: Mapping[str, str], *, log_file: Path | None = None) -> None:
        self.env = {**os.environ, **env}
        self.settings = _settings_from(self.env)
        self._log_file = log_file
        self.temporal: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.api: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def worker_metrics_url(self) -> str | None:
        address = self.settings.worker_metrics_address
        return f"http://{address}/metrics" if address else None

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        # A session of its own: Ctrl-C reaches the launcher, which stops the children in order.
        if self._log_file is None:
            return subprocess.Popen(args, env=self.env, start_new_session=True)
        with self._log_file.open("ab") as out:
            return subprocess.Popen(
                args, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start(self, timeout: float = 60) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
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
                    *DEV_SERVER_TUNING,
                    *search_attribute_flags(),
                ]
            )
        asyncio.run(self._prepare_temporal(timeout))
        self.start_worker()
        self.api = self._spawn(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.main:create_app",
                "--host",
                s.api_host,
                "--port",
                str(s.api_port),
                "--log-level",
                "warning",
            ]
        )
        self.wait_healthy(timeout)

    def start_worker(self) -> None:
        self.worker = self._spawn([sys.executable, "-m", "worker"])

    def stop_worker(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.worker, sig)
        self.worker = None

    async def _prepare_temporal(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                client = await connect(self.settings.temporal_target, self.settings.temporal_namespace)
                await ensure_search_attributes(client)
                await ensure_retention(client, self.settings.log_retention_days)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def _check_alive(self) -> None:
        for name, proc in (("temporal", self.temporal), ("worker", self.worker), ("api", self.api)):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}")

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                if httpx.get(f"{self.api_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API at {self.api_url} did not become healthy in {timeout:g} s")
            time.sleep(0.2)

    def watch(self) -> int:
        """Block until a process exits on its own; its exit code."""
        while True:
            for proc in (self.temporal, self.worker, self.api):
                if proc is not None and proc.poll() is not None:
                    return proc.returncode or 1
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in (self.api, self.worker, self.temporal):
            _stop(proc, signal.SIGTERM)
        self.api = self.worker = self.temporal = None


def _stop(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)  # the worker lets attempts in flight finish (delivery timeout + 5 s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _settings_from(env: Mapping[str, str]) -> Settings:
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {"WEBHOOKS_DATA_DIR": str(settings.data_dir.resolve())}
    if "WEBHOOKS_ALLOW_PRIVATE_URLS" not in os.environ:
        # `make run` is a developer's machine, where receivers listen on localhost.
        env["WEBHOOKS_ALLOW_PRIVATE_URLS"] = "true"
    if not settings.tenants_by_key:
        env["WEBHOOKS_API_KEYS"] = dev_api_keys(settings.data_dir)
    stack = Stack(env)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell that starts us in the background hands us SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        stack.start()
        s = stack.settings
        keys = ", ".join(f"{tenant}: {key}" for key, tenant in s.tenants_by_key.items())
        print(  # noqa: T201
            "\nFlexprice webhooks is running\n"
            f"  API               {stack.api_url}\n"
            f"  Dashboard         {stack.api_url}/dashboard/\n"
            f"  OpenAPI docs      {stack.api_url}/docs\n"
            f"  API metrics       {stack.api_url}/metrics\n"
            f"  Worker metrics    {stack.worker_metrics_url or '(off)'}\n"
            f"  Temporal Web UI   {s.ui_url or '(external Temporal: see its own UI)'}\n"
            f"  Temporal gRPC     {s.temporal_target}\n"
            f"  API keys          {keys if env.get('WEBHOOKS_API_KEYS') else '(from WEBHOOKS_API_KEYS)'}\n"
            f"  Data              {s.data_dir}\n"
            f"  Private URLs      {'allowed' if s.allow_private_urls else 'refused'}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        code = stack.watch()
        print(f"a process exited (code {code}); stopping the others", file=sys.stderr)  # noqa: T201
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)  # noqa: T201
    finally:
        stack.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
