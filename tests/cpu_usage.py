"""Where the suite's CPU goes, per test file: `make test-cpu` (the whole suite with `-p tests.cpu_usage`).

On two cores the suite's time is its CPU: a file that waits costs little, one that makes Temporal, a worker
and an API busy costs a lot, and a file's wall time says neither. Each test is charged the CPU used while it
ran (setup and teardown included) by its pytest process and every process below it: those it started and
reaped, and those still running, read from /proc. A stack a fixture starts for a module or the session is
charged to whichever test runs while it spends, and its start to the first. Close, not exact: a process
whose parent ended before it is no longer below ours (it is init's), and drops out with what it spent.
Each process writes its files' seconds to `test-output/cpu-<process>.json`; the one that reports (xdist's
controller, or pytest alone) prints the costliest files and what they add up to.
"""

from __future__ import annotations

import json
import os
import resource
from collections import defaultdict
from pathlib import Path

import pytest

OUTPUT = Path(os.environ.get("WEBHOOKS_TEST_OUTPUT", "test-output"))
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
SHOWN = 25
TICKS = os.sysconf("SC_CLK_TCK")

_by_file: defaultdict[str, float] = defaultdict(float)
_started: float | None = None
_config: pytest.Config | None = None


def tree_cpu_seconds() -> float:
    """The CPU seconds used so far by this process and all its descendants, ended or running."""
    children: dict[int, list[int]] = {}
    used: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # ended since it was listed
            continue
        pid = int(name)
        children.setdefault(int(fields[1]), []).append(pid)
        # utime, stime, and those of its reaped children (proc(5): fields 14 to 17)
        used[pid] = sum(int(ticks) for ticks in fields[11:15]) / TICKS
    total = 0.0
    below = list(children.get(os.getpid(), []))
    while below:
        pid = below.pop()
        total += used.get(pid, 0.0)
        below.extend(children.get(pid, []))
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


def pytest_configure(config: pytest.Config) -> None:
    global _config
    _config = config


def _runs_tests() -> bool:
    """Whether this process runs the tests: not xdist's controller, which is told of each test too, and
    whose tree holds every worker's."""
    return _config is not None and not _config.pluginmanager.hasplugin("dsession")


def pytest_sessionstart(session: pytest.Session) -> None:
    if WORKER is None:  # the reporting process: no file of an earlier run is summed with this one's
        for old in OUTPUT.glob("cpu-*.json"):
            old.unlink()


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    global _started
    if _runs_tests():
        _started = tree_cpu_seconds()


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    if _started is not None:
        _by_file[nodeid.split("::", 1)[0]] += tree_cpu_seconds() - _started


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _by_file:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / f"cpu-{WORKER or 'main'}.json").write_text(json.dumps(dict(_by_file), indent=1))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if WORKER is not None:
        return
    totals: defaultdict[str, float] = defaultdict(float)
    for part in OUTPUT.glob("cpu-*.json"):
        for path, seconds in json.loads(part.read_text()).items():
            totals[path] += seconds
    if not totals:
        return
    whole = sum(totals.values())
    terminalreporter.section("CPU seconds per test file (its processes and all they started)")
    for path, seconds in sorted(totals.items(), key=lambda item: -item[1])[:SHOWN]:
        terminalreporter.write_line(f"{seconds:8.1f}  {seconds / whole:6.1%}  {path}")
    terminalreporter.write_line(f"{whole:8.1f}  in all, {len(totals)} files")
