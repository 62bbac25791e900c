"""`make bench` keeps working, part 1: its throughput and latency scenarios on every lane, with tiny
numbers, on stacks of their own (tests/bench_smoke.py; part 2 is test_bench_smoke_operations.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.stages import STAGES
from bench.tables import ordered
from tests.bench_smoke import RUN_TIMEOUT, THROUGHPUT, smoke_run

pytestmark = [pytest.mark.slow, pytest.mark.stack]


@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_bench_smoke_throughput_and_latency_on_every_lane(tmp_path: Path) -> None:
    report, printed = smoke_run(tmp_path, THROUGHPUT)
    figures = report["figures"]
    # Each lane sustains its load at its widest fan-out (a full run adds 1 endpoint to the others), the
    # product and the plain design at both: the ordered lanes' 1 endpoint is read against theirs.
    for lane, fans in (
        *((lane, (1, 5)) for lane in ("product", "plain")),
        *((lane, (5,)) for lane in ("local_first", "plaintext", "untraced", "traced")),
        ("ordered_1key", (1,)),
        ("ordered_100keys", (1,)),
    ):
        for fan in fans:
            assert f"sustained_{fan}.{lane}.deliveries_per_s" in figures
            assert figures[f"sustained_{fan}.{lane}.events_per_s"]["median"] > 0
            assert figures[f"sustained_{fan}.{lane}.server_actions_per_delivery"]["median"] > 0
            assert figures[f"sustained_{fan}.{lane}.worker_cpu_ms_per_delivery"]["median"] > 0
        assert report["latency"][f"latency_5.{lane}"]["n"] > 0
        assert report["latency"][f"latency_5.{lane}"]["p50"] > 0
    # Tracing on really exported (every delivery's spans reached the bench's sink); off and absent are
    # read against the product with no tracing code, in ratios the tables print.
    assert figures["sustained_5.traced.spans_exported_per_delivery"]["median"] > 0
    ratios = report["ratios_to_untraced"]
    for lane in ("product", "traced"):
        for q in ("p50", "p95", "p99"):
            assert ratios[f"latency_5.{lane}.{q}"] > 0
        for cpu in ("worker", "api", "temporal"):
            assert ratios[f"sustained_5.{lane}.{cpu}_cpu_ms_per_delivery"] > 0
    assert "ratios to no tracing code" in printed
    # Each first-try delivery's latency split into its stages from its histories (issue 25, 1).
    for lane in ("product", "plain"):
        for stage in STAGES:
            assert report["latency"][f"stages_5.{lane}.{stage}"]["n"] > 0, (lane, stage)
        assert report["latency"][f"stages_5.{lane}.attempt"]["p50"] > 0
    assert "where a first-try delivery's time goes" in printed
    for fan in (1, 5):
        assert f"sustained_{fan}.product.deliveries_per_s" in report["ratios_to_plain"]
    # The ordered lanes beside the unordered product and the plain design (bench/tables.py, `ordered`).
    assert "sustained_1.ordered_1key.deliveries_per_s" in report["ratios_to_plain"]
    [row] = [r for r in ordered(report) if r.startswith("| ordered, 1 key |")]
    to_unordered, to_plain = [cell.strip() for cell in row.strip("|").split("|")][2:4]
    assert float(to_unordered) > 0 and float(to_plain) > 0, row
    assert {"temporal", "worker", "api", "plain_worker"} <= set(report["notes"]["peak_rss_mib"])
    assert "ratios to the plain design" in printed  # the table is printed
