"""`make bench` keeps working: every scenario, with tiny numbers, on its own stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_smoke_run_produces_every_figure(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures = json.loads((tmp_path / "smoke.json").read_text())
    names = set(figures["figures"])
    for expected in (
        "raw_limit",
        "sustained_1_deliveries_per_s",
        "sustained_5_deliveries_per_s",
        "latency_10_p99",
        "latency_half_p50",
        "fanout_5_seconds",
        "isolation_with_bad_p99",
        "isolation_without_bad_p99",
        "backlog_20_drain_seconds",
    ):
        assert expected in names, expected
        # A rate over the smoke run's two-second window can be 0 on a loaded machine; what the smoke
        # run checks is that every scenario runs to the end (every accepted event delivered).
        lowest = 0 if expected.startswith("sustained_") else sys.float_info.min
        assert figures["figures"][expected]["median"] >= lowest, expected
    assert figures["ratios"]["sustained_1_ratio_to_raw"] >= 0
    assert set(figures["notes"]["peak_rss_mib"]) == {"temporal", "worker", "api"}
    assert "raw_limit" in result.stdout  # the table is printed
