"""`python -m bench.run --smoke` for a part of its scenarios, and what every figure of a smoke run must be.

`make bench` keeps working: every scenario and every lane runs, with tiny numbers, on stacks of its own.
The scenarios are split in two parts, each a test file of its own (`test_bench_smoke.py`,
`test_bench_smoke_operations.py`), so that `make test`'s processes run them side by side: as one run it
took six to seven minutes beside a CPU hog, the longest single test of the suite.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.run import SCENARIOS

THROUGHPUT = ("sustained", "latency", "stages")
OPERATIONS = ("raw", "actions", "fanout", "backlog", "slots", "isolation", "noisy")
# Counts of what must not or need not happen: measured, and zero is a fine value.
MAY_BE_ZERO = ("_lost", "_refused_429", "_timed_out", "_endpoint_busy", "_repeats")
# A part's run has 1,200 s; its test, 60 s more to read what the run wrote.
RUN_TIMEOUT = 1200


def smoke_run(out: Path, scenarios: Sequence[str]) -> tuple[dict[str, Any], str]:
    """The smoke run of `scenarios`: its report and what it printed, once it has ended well and every
    figure it made is measured and positive (or zero, for a count in `MAY_BE_ZERO`)."""
    assert set(THROUGHPUT) | set(OPERATIONS) == set(SCENARIOS), "a scenario is in neither part"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--only", *scenarios, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report: dict[str, Any] = json.loads((out / "smoke.json").read_text())
    # What the smoke run checks is that every scenario runs to its end on every lane (every accepted
    # event delivered, every history read), not how fast. Every figure is measured, and positive but
    # for counts (a sustained window lasts until it has seen a delivery, so its rate is positive too).
    assert report["figures"], "no figure at all"
    for name, figure in report["figures"].items():
        assert figure["runs"] and math.isfinite(figure["median"]), name
        if name.endswith(MAY_BE_ZERO):
            assert figure["median"] >= 0, name
        else:
            assert figure["median"] > 0, name
    return report, result.stdout
