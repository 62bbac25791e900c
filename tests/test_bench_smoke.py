"""`make bench` keeps working: every scenario and every lane, with tiny numbers, on its own stack."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.stages import STAGES

pytestmark = [pytest.mark.slow, pytest.mark.stack]


# The tracing and ordered lanes (issues 24 and 21) added 6 sustained and 4 latency steps and 2 actions
# cases: a run took 636 s at a load average of 7-8, and one went past the 840 s it had before at 10-15
# (beside another smoke run, 2026-12-05).
@pytest.mark.timeout(1260)
def test_bench_smoke_run_produces_every_figure(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "smoke.json").read_text())
    figures = report["figures"]
    # What the smoke run checks is that every scenario runs to its end on every lane (every accepted
    # event delivered, every history read), not how fast. Every figure is measured, and positive but
    # for counts of what must not or need not happen (a sustained window lasts until it has seen a
    # delivery, so its rate is positive too).
    may_be_zero = ("_lost", "_refused_429", "_timed_out", "_endpoint_busy", "_repeats")
    for name, figure in figures.items():
        assert figure["runs"] and math.isfinite(figure["median"]), name
        if name.endswith(may_be_zero):
            assert figure["median"] >= 0, name
        else:
            assert figure["median"] > 0, name
    for lane, fans in (
        *((lane, (1, 5)) for lane in ("product", "plain", "local_first", "plaintext", "untraced", "traced")),
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
    for fan in (1, 5):
        assert figures[f"sustained_{fan}.traced.spans_exported_per_delivery"]["median"] > 0
    ratios = report["ratios_to_untraced"]
    for lane in ("product", "traced"):
        for q in ("p50", "p95", "p99"):
            assert ratios[f"latency_5.{lane}.{q}"] > 0
        for fan in (1, 5):
            for cpu in ("worker", "api", "temporal"):
                assert ratios[f"sustained_{fan}.{lane}.{cpu}_cpu_ms_per_delivery"] > 0
    assert "ratios to no tracing code" in result.stdout
    # Each first-try delivery's latency split into its stages from its histories (issue 25, 1).
    for lane in ("product", "plain"):
        for stage in STAGES:
            assert report["latency"][f"stages_5.{lane}.{stage}"]["n"] > 0, (lane, stage)
        assert report["latency"][f"stages_5.{lane}.attempt"]["p50"] > 0
    assert "where a first-try delivery's time goes" in result.stdout
    for lane in ("product", "plain"):
        assert figures[f"fanout_5.{lane}.seconds"]["median"] > 0
        assert figures[f"backlog_20.{lane}.drain_seconds"]["median"] > 0
        for label in ("without_bad", "with_bad"):
            assert report["latency"][f"isolation_{label}.{lane}"]["n"] > 0
    assert figures["raw_limit"]["median"] > 0
    # The noisy neighbour, on stacks of its own, fairness on and off: every phase measured, nothing lost.
    for mode in ("on", "off"):
        for figure in ("burst_drain_seconds", "burst_deliveries_per_s", "replay_drain_seconds"):
            assert figures[f"noisy_{mode}.{figure}"]["median"] > 0
        assert figures[f"noisy_{mode}.a_lost"]["median"] == 0
        for phase in ("idle", "burst", "replay"):
            assert report["latency"][f"noisy_{mode}.b_{phase}"]["n"] > 0
    assert figures["slots.200x50.drain_seconds"]["median"] > 0
    # Actions come from recorded histories; the server's own count must agree with ours.
    for lane, cases in (
        ("product_short", ("first_try", "manual_retry")),
        ("window0_short", ("first_try",)),
        ("plain", ("first_try",)),
    ):
        for case in cases:
            cost = report["costs"][lane]["1"][case]
            assert cost["actions_per_delivery"] == cost["server_actions_per_delivery"], (lane, case)
    assert report["costs"]["plain"]["1"]["first_try"]["actions_per_delivery"] == 4  # 3 + 1/N
    # An ordered endpoint's deliveries, with their events' and their lanes' workflows.
    for case in ("ordered_one_key", "ordered_new_keys"):
        cost = report["costs"]["ordered_short"]["1"][case]
        assert cost["actions_per_delivery"] > 0 and cost["server_actions_per_delivery"] > 0, case
    # Storage per delivery (issue 25, 3): history and database bytes over several deliveries, for the
    # product (open), its short lane (closed) and the plain design, first try and after 2 retries.
    for lane, cases in (
        ("product", ("first_try",)),
        ("product_short", ("first_try", "two_retries")),
        ("plain", ("first_try", "two_retries")),
    ):
        for case in cases:
            entry = report["storage"][lane][case]
            assert entry["deliveries"] > 0 and entry["history_bytes_per_delivery"] > 0, (lane, case)
            assert entry["database_bytes_per_delivery"] > 0, (lane, case)
            assert entry["database_bytes_by_table_per_delivery"], (lane, case)
            assert figures[f"storage_{case}.{lane}.database_bytes_per_delivery"]["median"] > 0
    assert "storage per delivery" in result.stdout
    assert "sustained_1.product.deliveries_per_s" in report["ratios_to_plain"]
    assert {"temporal", "worker", "api", "plain_worker"} <= set(report["notes"]["peak_rss_mib"])
    assert "ratios to the plain design" in result.stdout  # the table is printed
