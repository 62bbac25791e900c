"""`python -m bench.tables bench-results/bench-….json`: a run's figures as BENCHMARKS.md's tables.

So that refreshing BENCHMARKS.md after a `make bench` is a copy, not a transcription.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.cost import monthly_bills

LANE_NAMES = {
    "product": "product",
    "plain": "plain design",
    "local_first": "local first attempt",
    "plaintext": "no codec",
    "product_short": "product",
    "window0_short": "product, retry window 0",
    "local_first_short": "local first attempt",
    "uncompressed_short": "product, payloads not compressed",
    "short_metadata_short": "product, short payload metadata",
    "no_eager": "no eager first attempt",
    # The "tried" lanes (`--lanes`), not in the default run:
    "window0": "retry window 0",
    "no_health": "no endpoint-health bookkeeping",
    "quiet_close": "retry window 0, no upsert at close",
    "bare_start": "no search attributes at a delivery's start",
    "eager_start": "event workflows started eagerly",
    "untraced": "no tracing code",
    "traced": "tracing on, exporting",
    "ordered_1key": "ordered, 1 key",
    "ordered_100keys": "ordered, 100 keys",
    "ordered_short": "ordered endpoint",
}
# The tracing table's rows, and how each is named there: the product lane is tracing off, as shipped.
TRACING_ROWS = {"untraced": "no tracing code", "product": "tracing off (the default)", "traced": "tracing on"}
ORDERED_ROWS = {
    "plain": "plain design",
    "product": "product, unordered",
    "ordered_1key": "ordered, 1 key",
    "ordered_100keys": "ordered, 100 keys",
}
CASES = {
    "first_try": "first-try success",
    "two_retries": "success after 2 retries",
    "exhausted": "exhausted (8 attempts)",
    "manual_retry": "first try, then a manual retry",
    "ordered_one_key": "first-try success, ordered: every event of one key",
    "ordered_new_keys": "first-try success, ordered: each event a new key",
}


def _fig(result: dict[str, Any], name: str) -> dict[str, Any] | None:
    figure: dict[str, Any] | None = result["figures"].get(name)
    return figure if figure and figure["median"] is not None else None


def _spread(figure: dict[str, Any] | None, digits: int = 1) -> str:
    if figure is None:
        return "–"
    return f"**{figure['median']:.{digits}f}** ({figure['min']:.{digits}f}–{figure['max']:.{digits}f})"


def _median(figure: dict[str, Any] | None, digits: int = 1) -> str:
    return "–" if figure is None else f"{figure['median']:.{digits}f}"


def throughput(result: dict[str, Any]) -> list[str]:
    rows = [
        "| lane | endpoints | deliveries/s | ratio to plain | Temporal CPU-ms | worker CPU-ms | API CPU-ms "
        "| actions | history writes | visibility writes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lanes = result["config"]["lanes"]
    for fan in (1, 5):
        for lane in lanes:
            key = f"sustained_{fan}.{lane}"
            if _fig(result, f"{key}.deliveries_per_s") is None:
                continue
            ratio = result["ratios_to_plain"].get(f"{key}.deliveries_per_s")
            rate = _spread(_fig(result, f"{key}.deliveries_per_s"))
            rows.append(
                f"| {LANE_NAMES.get(lane, lane)} | {fan} | {rate} "
                f"| {'–' if ratio is None else f'{ratio:.2f}'} "
                f"| {_median(_fig(result, f'{key}.temporal_cpu_ms_per_delivery'), 0)} "
                f"| {_median(_fig(result, f'{key}.worker_cpu_ms_per_delivery'), 0)} "
                f"| {_median(_fig(result, f'{key}.api_cpu_ms_per_delivery'), 1)} "
                f"| {_median(_fig(result, f'{key}.server_actions_per_delivery'), 2)} "
                f"| {_median(_fig(result, f'{key}.server_history_writes_per_delivery'), 1)} "
                f"| {_median(_fig(result, f'{key}.server_visibility_writes_per_delivery'), 1)} |"
            )
    return rows


def latency(result: dict[str, Any]) -> list[str]:
    rows = [
        "| events/s | product p50 / p95 / p99 | plain design p50 / p95 / p99 | ratio (p50, p99) |",
        "|---:|---|---|---|",
    ]
    found = result["latency"]
    for rate in result["config"]["latency_rates"]:
        label = f"{rate:g}"
        ours, plain = found.get(f"latency_{label}.product"), found.get(f"latency_{label}.plain")
        if ours is None or plain is None:
            continue
        rows.append(
            f"| {label} | {ours['p50']:.0f} / {ours['p95']:.0f} / {ours['p99']:.0f} ms "
            f"| {plain['p50']:.0f} / {plain['p95']:.0f} / {plain['p99']:.0f} ms "
            f"| {ours['p50'] / plain['p50']:.2f}, {ours['p99'] / plain['p99']:.2f} |"
        )
    rate = f"{result['config']['variant_rate']:g}"
    for lane in result["config"]["lanes"]:
        values = found.get(f"latency_{rate}.{lane}")
        if lane in ("product", "plain") or values is None:
            continue
        rows.append(
            f"| {rate}, {LANE_NAMES.get(lane, lane)} | {values['p50']:.0f} / {values['p95']:.0f} / "
            f"{values['p99']:.0f} ms | | |"
        )
    return rows


def actions(result: dict[str, Any]) -> list[str]:
    rows = [
        "| case | lane | actions, 1 endpoint | actions, 5 endpoints | events (1 / 5) | bytes (1 / 5) "
        "| what the actions are (1 endpoint) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for case, title in CASES.items():
        for lane, fans in result["costs"].items():
            one, five = fans.get("1", {}).get(case), fans.get("5", {}).get(case)
            if one is None:
                continue
            by_kind = sorted(one["actions_by_kind_per_delivery"].items(), key=lambda kv: -kv[1])
            kinds = ", ".join(f"{k} {v:g}" for k, v in by_kind)

            def pair(key: str, digits: int, one: dict[str, Any] = one, five: Any = five) -> str:
                second = f"{five[key]:.{digits}f}" if five else "–"
                return f"{one[key]:.{digits}f} / {second}"

            many = "–" if five is None else f"{five['actions_per_delivery']:.2f}"
            rows.append(
                f"| {title} | {LANE_NAMES.get(lane, lane)} | {one['actions_per_delivery']:.2f} | {many} "
                f"| {pair('events_per_delivery', 1)} | {pair('history_bytes_per_delivery', 0)} | {kinds} |"
            )
    return rows


def storage(result: dict[str, Any]) -> list[str]:
    """History and database bytes per delivery, each measured over many deliveries of one case to one
    endpoint (`storage_events`), and the tables the database grew in."""
    rows = [
        "| case | lane | deliveries | when measured | history bytes | database bytes | where the database "
        "bytes are (largest tables) |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for lane, cases in result.get("storage", {}).items():
        for case, entry in cases.items():
            where = ", ".join(f"{name} {size:,}" for name, size in _grouped(entry)[:5])
            rows.append(
                f"| {CASES.get(case, case)} | {LANE_NAMES.get(lane, lane)} | {entry['deliveries']} "
                f"| {'open (in its retry window)' if entry['open'] else 'closed'} "
                f"| {entry['history_bytes_per_delivery']:,.0f} | {entry['database_bytes_per_delivery']:,.0f} "
                f"| {where} |"
            )
    return rows


def _grouped(entry: dict[str, Any]) -> list[tuple[str, int]]:
    """The database's growth by table, the dev server's visibility indexes (`by_…`, one per search
    attribute slot and system column, each taking an entry per workflow) and SQLite's own indexes summed
    as one each, largest first."""
    groups: dict[str, int] = {}
    for name, size in entry["database_bytes_by_table_per_delivery"].items():
        if name.startswith("by_"):
            name = "visibility indexes (by_…)"
        elif name.startswith("sqlite_autoindex_"):
            name = "primary keys"
        groups[name] = groups.get(name, 0) + size
    return sorted(groups.items(), key=lambda kv: -kv[1])


def cloud(result: dict[str, Any]) -> list[str]:
    costs = monthly_bills(result["costs"])  # at the prices and allowances of bench/cost.py now
    rows = [
        "| lane (first-try deliveries) | endpoints | 1 M/month | 10 M/month | 100 M/month |",
        "|---|---:|---:|---:|---:|",
    ]
    for lane, fans in costs.items():
        if not isinstance(fans, dict):
            continue
        for fan, bills in fans.items():
            cells = " | ".join(
                f"${b['total_dollars']:,} ({b['actions_dollars']:,} + {b['active_storage_dollars']:,} + "
                f"{b['retained_storage_dollars']:,} + {b['plan_dollars']:,})"
                for b in bills.values()
            )
            rows.append(f"| {LANE_NAMES.get(lane, lane)} | {fan} | {cells} |")
    return rows


def _latency_cells(values: dict[str, Any] | None) -> str:
    return "–" if values is None else f"{values['p50']:.0f} / {values['p95']:.0f} / {values['p99']:.0f} ms"


def tracing(result: dict[str, Any]) -> list[str]:
    """Tracing off and on, beside the product with no tracing code (issue 24): each ratio is over the
    latter's figure in the same run."""
    ratios = result.get("ratios_to_untraced", {})
    rows = [
        "| lane | endpoints | deliveries/s | ratio | Temporal CPU-ms | worker CPU-ms (ratio) "
        "| API CPU-ms (ratio) | spans exported |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def ratio(name: str) -> str:
        return f"{ratios[name]:.2f}" if name in ratios else "–"

    for fan in (1, 5):
        for lane, title in TRACING_ROWS.items():
            key = f"sustained_{fan}.{lane}"
            if _fig(result, f"{key}.deliveries_per_s") is None:
                continue
            worker = _median(_fig(result, f"{key}.worker_cpu_ms_per_delivery"), 1)
            api = _median(_fig(result, f"{key}.api_cpu_ms_per_delivery"), 2)
            rows.append(
                f"| {title} | {fan} | {_spread(_fig(result, f'{key}.deliveries_per_s'))} "
                f"| {ratio(f'{key}.deliveries_per_s')} "
                f"| {_median(_fig(result, f'{key}.temporal_cpu_ms_per_delivery'), 0)} "
                f"| {worker} ({ratio(f'{key}.worker_cpu_ms_per_delivery')}) "
                f"| {api} ({ratio(f'{key}.api_cpu_ms_per_delivery')}) "
                f"| {_median(_fig(result, f'{key}.spans_exported_per_delivery'), 1)} |"
            )
    rate = f"{result['config']['variant_rate']:g}"
    rows += [
        "",
        f"| lane | latency at {rate} events/s, p50 / p95 / p99 | ratio (p50, p99) |",
        "|---|---|---|",
    ]
    for lane, title in TRACING_ROWS.items():
        key = f"latency_{rate}.{lane}"
        values = result["latency"].get(key)
        if values is None:
            continue
        pair = "–" if f"{key}.p50" not in ratios else f"{ratio(f'{key}.p50')}, {ratio(f'{key}.p99')}"
        rows.append(f"| {title} | {_latency_cells(values)} | {pair} |")
    return rows


def ordered(result: dict[str, Any]) -> list[str]:
    """An ordered endpoint beside the unordered product and the plain design (issue 21), 1 endpoint."""
    figures = result["figures"]
    rate = f"{result['config']['variant_rate']:g}"
    product = _fig(result, "sustained_1.product.deliveries_per_s")
    rows = [
        f"| lane | deliveries/s | ratio to unordered | ratio to plain | latency at {rate} events/s, "
        "p50 / p95 / p99 | actions per delivery (server's count) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for lane, title in ORDERED_ROWS.items():
        key = f"sustained_1.{lane}"
        rate_fig = _fig(result, f"{key}.deliveries_per_s")
        if rate_fig is None and f"latency_{rate}.{lane}" not in result["latency"]:
            continue
        to_unordered = (
            f"{rate_fig['median'] / product['median']:.2f}"
            if rate_fig and product and product["median"] and lane != "product"
            else "–"
        )
        to_plain = result["ratios_to_plain"].get(f"{key}.deliveries_per_s")
        actions = figures.get(f"{key}.server_actions_per_delivery")
        rows.append(
            f"| {title} | {_spread(rate_fig)} | {to_unordered} "
            f"| {'–' if to_plain is None else f'{to_plain:.2f}'} "
            f"| {_latency_cells(result['latency'].get(f'latency_{rate}.{lane}'))} "
            f"| {_median(actions, 2)} |"
        )
    return rows


def others(result: dict[str, Any]) -> list[str]:
    figures = result["figures"]
    rows = ["| figure | median (min–max) | unit |", "|---|---:|---|"]
    for name, figure in figures.items():
        if name.startswith(("sustained_", "latency_", "storage_")) or figure["median"] is None:
            continue
        rows.append(f"| {name} | {_spread(figure, 2)} | {figure['unit']} |")
    for key, values in result["latency"].items():
        if key.startswith(("isolation_", "noisy_")):
            rows.append(
                f"| {key} p50 / p95 / p99 | {values['p50']:.0f} / {values['p95']:.0f} / "
                f"{values['p99']:.0f} | ms |"
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    result = json.loads(Path(args[0]).read_text())
    for title, table in (
        ("Throughput and server work per delivery", throughput),
        ("Latency against load (1 endpoint)", latency),
        ("Tracing: off, on, and no tracing code (issue 24)", tracing),
        ("Ordered delivery, 1 endpoint (issue 21)", ordered),
        ("Actions per delivery, from recorded histories", actions),
        ("Storage per delivery: history and database bytes", storage),
        ("Temporal Cloud, a month (actions + active + retained storage + plan)", cloud),
        ("Every other figure", others),
    ):
        print(f"\n### {title}\n")  # noqa: T201
        print("\n".join(table(result)))  # noqa: T201


if __name__ == "__main__":
    main()
