"""Benchmark of the filter runtime against plain Node.js running filters the browser's way.

Why: the runtime must load a snapshot version quickly and evaluate traders at most half as
slowly as Node per trader-run, by sharing work (memoized indicators, the hvnNodes pre-pass)
across the traders of one snapshot. This prints, side by side in one run:

- snapshot load time (100 symbols x 6 timeframes x 250 klines by default) and V8 heap use;
- per-trader-run time of ours (memo on and off) and of bench/node_baseline.js (same
  worker/sandbox/js/helpers.js, `new Function` per trader, no memo) on the same traders and data;
- that both produce the same matches for every trader.

The trader population is every demo filter (worker/demo_filters) times ``--users`` (users
who run the same popular filter), run in list order on a freshly loaded snapshot version in
each repetition, so the memo starts cold every time. The last line is JSON.

    python -m bench.bench_sandbox [--symbols 100] [--users 4] [--repeats 5]

``--compare-ref REF`` instead compares the current runtime with the one of git revision REF
(bench/sandbox_compare.py, default rounds and scenarios) and skips the Node comparison.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from traderctl.worker.config import Settings
from traderctl.worker.local.demo_filters import DEMO_FILTERS
from traderctl.worker.local.synthetic_market import DEFAULT_INTERVALS, generate_snapshot
from traderctl.worker.sandbox.runtime import FilterRuntime, TraderRequest

NODE_SCRIPT = Path(__file__).with_name("node_baseline.js")


def _traders(users: int) -> list[dict[str, Any]]:
    return [
        {
            "traderId": f"{key}#{u}",
            "filterCode": f.code,
            "refreshInterval": f.refresh_interval,
            "requiredTimeframes": list(f.required_timeframes),
        }
        for u in range(users)
        for key, f in DEMO_FILTERS.items()
    ]


def _requests(traders: list[dict[str, Any]], symbols: list[str]) -> list[TraderRequest]:
    return [
        TraderRequest(
            trader_id=t["traderId"],
            code=t["filterCode"],
            refresh_interval=t["refreshInterval"],
            required_timeframes=t["requiredTimeframes"],
            symbols=symbols,
        )
        for t in traders
    ]


def _load(rt: FilterRuntime, version: str, tickers: str, series: dict[str, str]) -> float:
    start = time.perf_counter()
    rt.set_tickers(version, tickers)
    for interval, text in series.items():
        rt.set_series(interval, version, text)
    return (time.perf_counter() - start) * 1000


def _ours(
    *, memo: bool, repeats: int, tickers: str, series: dict[str, str], requests: list[TraderRequest]
) -> dict[str, Any]:
    settings = Settings(filter_timeout_ms=10_000, filter_memory_mb=512)
    with FilterRuntime(settings, memo=memo) as rt:
        loads, passes, results = [], [], {}
        _load(rt, "warmup", tickers, series)
        rt.run_traders(requests)  # JIT warm-up, like Node's first pass below
        for rep in range(repeats):
            loads.append(_load(rt, f"v{rep}", tickers, series))  # new version: memo starts cold
            start = time.perf_counter()
            out = rt.run_traders(requests)
            passes.append((time.perf_counter() - start) * 1000)
            results = {r.trader_id: list(r.filtered_symbols) for r in out}
            errors = [r for r in out if r.error is not None or r.symbol_errors]
            if errors:
                raise SystemExit(f"benchmark filter failed: {errors[0]}")
        heap = rt.heap_used_bytes()
        stats = rt.stats()["memo"]
    return {"loads": loads, "passes": passes, "results": results, "heap": heap, "memo": stats}


def _node(input_path: Path, repeats: int) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH")
    proc = subprocess.run(
        [node, str(NODE_SCRIPT), str(input_path), str(repeats + 1)],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["passMs"] = data["passMs"][1:]  # drop the JIT warm-up pass
    return data


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--klines", type=int, default=250)
    parser.add_argument("--users", type=int, default=4, help="traders per demo filter")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--compare-ref",
        metavar="REF",
        help="compare with the runtime of git revision REF instead (bench.sandbox_compare)",
    )
    args = parser.parse_args()
    if args.compare_ref is not None:
        from bench.sandbox_compare import main as compare_main

        compare_main(["--ref", args.compare_ref])
        return

    snap = generate_snapshot(symbols=args.symbols, klines=args.klines, seed=2025)
    tickers = json.dumps(snap.tickers, separators=(",", ":"))
    series = {tf: json.dumps(snap.series(tf), separators=(",", ":")) for tf in DEFAULT_INTERVALS}
    traders = _traders(args.users)
    requests = _requests(traders, snap.symbols)
    distinct = _requests(_traders(1), snap.symbols)

    # Node runs before and after ours and its passes are pooled, so that load from other
    # processes on the machine hits both sides alike.
    with tempfile.TemporaryDirectory() as tmp:
        input_path = Path(tmp) / "input.json"
        input_path.write_text(json.dumps(snap.message(traders)), encoding="utf-8")
        distinct_path = Path(tmp) / "distinct.json"
        distinct_path.write_text(json.dumps(snap.message(_traders(1))), encoding="utf-8")
        node = _node(input_path, args.repeats)
        node_distinct = _node(distinct_path, args.repeats)
        ours = _ours(
            memo=True, repeats=args.repeats, tickers=tickers, series=series, requests=requests
        )
        plain = _ours(
            memo=False, repeats=args.repeats, tickers=tickers, series=series, requests=requests
        )
        ours_distinct = _ours(
            memo=True, repeats=args.repeats, tickers=tickers, series=series, requests=distinct
        )
        node["passMs"] += _node(input_path, args.repeats)["passMs"]
        node_distinct["passMs"] += _node(distinct_path, args.repeats)["passMs"]

    n = len(traders)
    k = len(distinct)
    per = {
        "ours": statistics.median(ours["passes"]) / n,
        "ours_no_memo": statistics.median(plain["passes"]) / n,
        "node": statistics.median(node["passMs"]) / n,
        "ours_distinct": statistics.median(ours_distinct["passes"]) / k,
        "node_distinct": statistics.median(node_distinct["passMs"]) / k,
    }
    mismatches = sorted(t for t in node["results"] if node["results"][t] != ours["results"].get(t))
    mismatches += sorted(
        t for t in node["results"] if node["results"][t] != plain["results"].get(t)
    )
    mb = 1024 * 1024
    summary = {
        "symbols": args.symbols,
        "timeframes": len(DEFAULT_INTERVALS),
        "klines": args.klines,
        "snapshot_json_mb": round((sum(map(len, series.values())) + len(tickers)) / mb, 1),
        "traders": n,
        "distinct_filters": k,
        "repeats": args.repeats,
        "snapshot_load_ms_median": round(statistics.median(ours["loads"]), 1),
        "snapshot_load_ms_max": round(max(ours["loads"]), 1),
        "per_trader_ms_ours": round(per["ours"], 3),
        "per_trader_ms_ours_no_memo": round(per["ours_no_memo"], 3),
        "per_trader_ms_node": round(per["node"], 3),
        "ratio_ours_vs_node": round(per["ours"] / per["node"], 3),
        "ratio_no_memo_vs_node": round(per["ours_no_memo"] / per["node"], 3),
        "per_trader_ms_distinct_ours": round(per["ours_distinct"], 3),
        "per_trader_ms_distinct_node": round(per["node_distinct"], 3),
        "ratio_distinct": round(per["ours_distinct"] / per["node_distinct"], 3),
        "heap_used_mb_ours": round(ours["heap"] / mb, 1),
        "heap_used_mb_node": round(node["heapUsedBytes"] / mb, 1),
        "memo": ours["memo"],
        "results_identical_to_node": not mismatches,
    }
    print(
        f"snapshot: {args.symbols} symbols x {len(DEFAULT_INTERVALS)} timeframes x {args.klines} klines "
        f"({summary['snapshot_json_mb']} MB JSON)"
    )
    print(
        f"load per version: median {summary['snapshot_load_ms_median']} ms "
        f"(max {summary['snapshot_load_ms_max']} ms); V8 heap {summary['heap_used_mb_ours']} MB"
    )
    print(
        f"{n} traders ({k} demo filters x {args.users} users), median of {args.repeats} passes, cold memo each:"
    )
    print(f"  ours (memo)    {per['ours']:8.3f} ms/trader   ratio {summary['ratio_ours_vs_node']}")
    print(
        f"  ours (no memo) {per['ours_no_memo']:8.3f} ms/trader   ratio {summary['ratio_no_memo_vs_node']}"
    )
    print(f"  node (browser) {per['node']:8.3f} ms/trader")
    print(
        f"{k} distinct filters once each: ours {per['ours_distinct']:.3f} ms/trader, "
        f"node {per['node_distinct']:.3f} ms/trader, ratio {summary['ratio_distinct']}"
    )
    print(
        f"results identical to node: {not mismatches}"
        + (f" (differ: {mismatches})" if mismatches else "")
    )
    print(json.dumps(summary))
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
