"""`make run`'s launcher (`python -m launcher`) stopped by signals: a clean stop, nothing left running.

Each case starts the real launcher on free ports and a temporary data dir, waits for the API's /healthz,
records every process below it (by pid and start time, so a reused pid is not mistaken for a survivor),
sends the signals, and checks that the launcher exits without a traceback and that every recorded
process is gone. The launcher runs in a session of its own, so a signal to its process group cannot
reach pytest's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import stack_env, wait_for

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60  # a Temporal dev server, a worker and an API, on a loaded 2-core machine (as conftest)
# The worker lets attempts in flight finish (delivery timeout + 5 s, 2 + 5 s here) before it exits.
STOP_TIMEOUT = 60
pytestmark = [pytest.mark.stack, pytest.mark.timeout(START_TIMEOUT + 2 * STOP_TIMEOUT + 60)]

Proc = tuple[int, int]  # pid and start time (clock ticks after boot): one process, never a reused pid


def _stat(pid: int) -> tuple[str, int, int] | None:
    """State, parent pid and start time of `pid`; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[19])


def _descendants(root: int) -> set[Proc]:
    parents: dict[int, list[Proc]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[1], []).append((int(entry.name), stat[2]))
    found: set[Proc] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child[0])
    return found


def _running(proc: Proc) -> bool:
    stat = _stat(proc[0])
    return stat is not None and stat[2] == proc[1] and stat[0] != "Z"  # a zombie has exited


@dataclass
class Launched:
    process: subprocess.Popen[bytes]  # the launcher, or `make` running it
    launcher_pid: int
    api_url: str
    stderr: Path

    def children(self) -> set[Proc]:
        """Every process below the one the test started (under make, the launcher too)."""
        return _descendants(self.process.pid)


def _api_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _launch(tmp_path: Path, *, under_make: bool, wait_healthy: bool) -> Launched:
    tmp_path.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    env.update(stack_env(tmp_path / "data"))
    api_url = f"http://127.0.0.1:{env['WEBHOOKS_API_PORT']}"
    args = [sys.executable, "-m", "launcher"]
    if under_make:
        # The recipe of `make run`: a simple command, which make runs without a shell.
        makefile = tmp_path / "Makefile"
        makefile.write_text(f"run:\n\t{' '.join(args)}\n")
        args = ["make", "--no-print-directory", "-f", str(makefile), "run"]
    stderr = tmp_path / "stderr.txt"
    with (tmp_path / "stdout.txt").open("ab") as out, stderr.open("wb") as err:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True)
    launcher_pid = process.pid
    if under_make:
        launcher_pid = wait_for(
            lambda: next(iter(_descendants(process.pid)), (0, 0))[0], timeout=30, what="make to start it"
        )
    launched = Launched(process, launcher_pid, api_url, stderr)

    def started() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the launcher exited with {process.returncode}: {stderr.read_text()}")
        if wait_healthy:
            return _api_answers(api_url)
        return bool(launched.children())

    try:
        wait_for(started, timeout=START_TIMEOUT, what="the launcher to start")
    except BaseException:
        _kill_all(process, launched.children())
        raise
    return launched


def _kill_all(process: subprocess.Popen[bytes], children: set[Proc]) -> None:
    """After a failure: what is left, by pid, so that a failing test leaves nothing behind."""
    for proc in children:
        if _running(proc):
            os.kill(proc[0], signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Launched]]:
    started: list[tuple[Launched, set[Proc]]] = []

    def start(*, under_make: bool = False, wait_healthy: bool = True) -> Launched:
        # A port found free may be taken by the time a process binds it, on a shared machine: try again.
        for attempt in range(3):
            try:
                launched = _launch(tmp_path / str(attempt), under_make=under_make, wait_healthy=wait_healthy)
            except RuntimeError:
                if attempt == 2:
                    raise
                continue
            started.append((launched, launched.children()))
            return launched
        raise AssertionError("unreachable")

    yield start
    for launched, children in started:
        _kill_all(launched.process, children | launched.children())


def _assert_clean_stop(launched: Launched, children: set[Proc], *, exit_code: int | None = 0) -> None:
    launched.process.wait(timeout=STOP_TIMEOUT)
    stderr = launched.stderr.read_text()
    assert "Traceback" not in stderr, stderr
    if exit_code is not None:
        assert launched.process.returncode == exit_code, stderr
    deadline = time.monotonic() + STOP_TIMEOUT
    while (left := {proc for proc in children if _running(proc)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"still running {STOP_TIMEOUT} s after the launcher exited: {sorted(left)}"


def _three_children(launched: Launched) -> set[Proc]:
    # The Temporal dev server, the worker and the API (and whatever they start themselves).
    assert len(_descendants(launched.launcher_pid)) >= 3, _descendants(launched.launcher_pid)
    return launched.children()


def test_sigterm_stops_everything(launch: Callable[..., Launched]) -> None:
    launched = launch()
    children = _three_children(launched)
    os.kill(launched.launcher_pid, signal.SIGTERM)
    _assert_clean_stop(launched, children)


def test_sigterm_to_the_process_group_of_make_run(launch: Callable[..., Launched]) -> None:
    # `kill -- -PGID` reaches make and the launcher, and make passes SIGTERM on: the launcher gets two.
    launched = launch(under_make=True)
    children = _three_children(launched)
    os.killpg(launched.process.pid, signal.SIGTERM)
    _assert_clean_stop(launched, children, exit_code=None)  # make reports the signal it got


def test_ctrl_c_stops_everything(launch: Callable[..., Launched]) -> None:
    launched = launch()
    children = _three_children(launched)
    os.killpg(launched.process.pid, signal.SIGINT)  # as a terminal does, to its foreground group
    _assert_clean_stop(launched, children)


def test_ctrl_c_twice_stops_everything(launch: Callable[..., Launched]) -> None:
    launched = launch()
    children = _three_children(launched)
    os.killpg(launched.process.pid, signal.SIGINT)
    time.sleep(0.2)
    os.killpg(launched.process.pid, signal.SIGINT)
    _assert_clean_stop(launched, children)


def test_ctrl_c_while_starting_stops_everything(launch: Callable[..., Launched]) -> None:
    launched = launch(wait_healthy=False)
    children = launched.children()
    os.killpg(launched.process.pid, signal.SIGINT)
    _assert_clean_stop(launched, children | launched.children())


def test_children_die_with_a_killed_launcher(launch: Callable[..., Launched]) -> None:
    launched = launch()
    children = _three_children(launched)
    os.kill(launched.launcher_pid, signal.SIGKILL)
    _assert_clean_stop(launched, children, exit_code=-signal.SIGKILL)
