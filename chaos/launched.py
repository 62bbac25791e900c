"""`make run` itself, for the rows that signal it: `python -m launcher` as a process of its own.

The other rows drive `launcher.Stack` from inside the runner; these need the launcher's own signal
handling (SIGTERM or SIGINT: stop the API, let the worker finish the attempts in flight, stop Temporal)
and its start on a data dir that already holds everything, so they start the real command. It runs in a
session of its own, so that a signal sent to it never reaches the runner; whatever it started dies with
it (launcher.py's PDEATHSIG), and `close` stops it by its pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from launcher import STOP_GRACE_SECONDS, api_healthy

ROOT = Path(__file__).resolve().parent.parent


class Launched:
    def __init__(self, env: Mapping[str, str], api_url: str, log: Path) -> None:
        # Only our settings: a WEBHOOKS_ variable of the runner's own environment must not leak in.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")} | dict(env)
        self.api_url = api_url
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        """`python -m launcher` on the data dir and ports of `env`, returned once /healthz says 200."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "launcher"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the launcher exited with code {self.process.returncode} (see {self.log})"
                )
            if api_healthy(self.api_url):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the launcher's API at {self.api_url} was not healthy in {timeout:g} s")
            time.sleep(0.2)

    def signal_and_wait(self, sig: int, timeout: float) -> float:
        """Send `sig` to the launcher; wait until it has exited; how long that took."""
        assert self.process is not None and self.process.poll() is None
        sent = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        return time.monotonic() - sent

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.returncode

    def close(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            # The worker's own grace (its attempt timeout + 5 s) comes on top of the launcher's.
            self.process.wait(timeout=3 * STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()  # its children get SIGKILL from the kernel with it
            self.process.wait()
