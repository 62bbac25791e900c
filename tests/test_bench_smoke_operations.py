"""`make bench` keeps working, part 2: its scenarios of costs, storage, fan-out, backlog, slot sizes,
isolation and the noisy neighbour, with tiny numbers, on stacks of their own (tests/bench_smoke.py; part
1 is test_bench_smoke.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_smoke import OPERATIONS, RUN_TIMEOUT, smoke_run

pytestmark = [pytest.mark.slow, pytest.mark.stack]


@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_bench_smoke_costs_storage_backlogs_and_neighbours(tmp_path: Path) -> None:
    report, printed = smoke_run(tmp_path, OPERATIONS)
    figures = report["figures"]
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
    # product (open), its short lane (closed), that lane without compression and with the short payload
    # metadata, and the plain design, first try and after 2 retries.
    for lane, cases in (
        ("product", ("first_try",)),
        ("product_short", ("first_try", "two_retries")),
        ("uncompressed_short", ("first_try", "two_retries")),
        ("short_metadata_short", ("first_try", "two_retries")),
        ("plain", ("first_try", "two_retries")),
    ):
        for case in cases:
            entry = report["storage"][lane][case]
            assert entry["deliveries"] > 0 and entry["history_bytes_per_delivery"] > 0, (lane, case)
            assert entry["database_bytes_per_delivery"] > 0, (lane, case)
            assert entry["database_bytes_by_table_per_delivery"], (lane, case)
            assert figures[f"storage_{case}.{lane}.database_bytes_per_delivery"]["median"] > 0
    # The same deliveries' histories, compressed and not: the bench's invoice is kept shorter compressed.
    for case in ("first_try", "two_retries"):
        kept = report["storage"]["product_short"][case]["history_bytes_per_delivery"]
        assert kept < report["storage"]["uncompressed_short"][case]["history_bytes_per_delivery"], case
        # And with the short metadata, shorter again: the workflow id's digest, not the id, in each payload.
        short = report["storage"]["short_metadata_short"][case]["history_bytes_per_delivery"]
        assert short < kept, case
    assert "storage per delivery" in printed
