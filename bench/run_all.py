"""`make bench`: the end-to-end benchmark (and, on request, the component benchmarks).

    python -m bench.run_all                       # 10,000 traders, one worker per core, 3 reps
    python -m bench.run_all --traders 100000      # the scale run: 1 rep, plus 1-worker scaling
    python -m bench.run_all --traders 10000 --workers 1 --repeat 5
    python -m bench.run_all --no-durable --no-steady   # only the fast first tick
    python -m bench.run_all --components          # also bench_scheduler, _market_data, _sandbox
    python -m bench.run_all --json-out e2e.json   # full figures, and e2e.png beside them

Progress goes to stderr; stdout gets a summary and, last, one JSON line with the medians
over the repetitions of the main worker count (docs/benchmarks.md explains every field).
The headline fields are the ``fast-first`` variant's (the tick as first measured);
``variants`` holds every variant's medians side by side (durable, steady: see
bench/bench_end_to_end.py). With ``--scaling`` (default for more than 20,000 traders) the
same tick is also measured with 1 … W-1 workers and ``scaling`` reports runs/s per worker
count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench._png import Panel, Series, write_line_chart
from bench.bench_end_to_end import REQUIRED_KEYS, VARIANTS, measure, summarize
from traderctl.worker.config import ENV_VARS

#: Targets of the end-to-end benchmark (10,000 traders on a 2-core machine).
TARGET_WALL_S = {10_000: 30.0}
TARGET_RATIO = 1.0
COMPONENTS = ("bench.bench_scheduler", "bench.bench_market_data", "bench.bench_sandbox")
#: Fields shown side by side per variant.
VARIANT_FIELDS = (
    "wall_s",
    "runs_per_s",
    "cpu_ms_per_run",
    "pg_cpu_ms_per_run",
    "total_cpu_ms_per_run",
    "signals_per_run",
    "wal_bytes_per_run",
    "table_bytes_per_run",
    "p50_lag_s",
    "p99_lag_s",
    "rss_mb_per_worker",
)
TIER_COLORS = {"elite": (200, 30, 30), "pro": (30, 90, 200), "free": (20, 150, 60)}


def _plot(path: Path, traders: int, workers: int, variants: dict[str, Any]) -> None:
    """Committed runs over time per tier, one panel per variant (median repetition)."""
    panels = []
    for name, summary in variants.items():
        timeline = summary["timeline"]
        # "all" first, so the tier lines are drawn over it (elite is "all" at the start).
        series = [Series(label="all", color=(0, 0, 0), points=[(t, n) for t, n in timeline["all"]])]
        series += [
            Series(label=tier, color=color, points=[(t, n) for t, n in timeline[tier]])
            for tier, color in TIER_COLORS.items()
            if tier in timeline
        ]
        title = (
            f"{name}: {traders} traders, {workers} workers, wall {summary['wall_s']} s, "
            f"wal {summary['wal_bytes_per_run']} b/run"
        )
        panels.append(Panel(title=title, series=series))
    write_line_chart(path, panels, x_label="s since tick", y_label="runs committed")


def _components() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for module in COMPONENTS:
        print(f"[bench] running {module}", file=sys.stderr, flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", module], capture_output=True, text=True, check=False
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        out[module.rsplit(".", 1)[1]] = (
            json.loads(lines[-1])
            if proc.returncode == 0 and lines
            else {"error": proc.stderr[-2000:]}
        )
    return out


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or name not in ENV_VARS:
        raise SystemExit(
            f"--worker-setting {text!r}: expected NAME=VALUE with NAME one of traderctl's "
            "settings (`traderctl worker --help` lists them)"
        )
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--traders", type=int, default=10_000, help="traders (default 10000)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)"
    )
    parser.add_argument(
        "--repeat", type=int, help="repetitions (default 3; 1 above 20,000 traders)"
    )
    parser.add_argument(
        "--scaling",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure 1 .. W-1 workers (default: on above 20,000 traders)",
    )
    parser.add_argument(
        "--durable",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure with fsync, synchronous_commit, full_page_writes on (default: on "
        "from 1,000 to 20,000 traders)",
    )
    parser.add_argument(
        "--steady",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure a steady-state tick (default: on from 1,000 to 20,000 traders)",
    )
    parser.add_argument(
        "--distinct",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure a first tick where every trader has a code text of its own "
        "(default: on from 1,000 to 20,000 traders)",
    )
    parser.add_argument(
        "--commit-function",
        type=Path,
        help="SQL file whose backend.commit_trader_runs replaces the migrated one (before/after)",
    )
    parser.add_argument(
        "--worker-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the workers (repeatable), e.g. TRADERCTL_WORKER_BATCH_SIZE=64; "
        "every other setting stays at its default",
    )
    parser.add_argument("--components", action="store_true", help="run the component benches too")
    parser.add_argument("--log-dir", type=Path, help="keep the worker logs in this directory")
    parser.add_argument(
        "--json-out", type=Path, help="also write every repetition's full figures to this file"
    )
    args = parser.parse_args(argv)
    worker_settings = dict(_setting(s) for s in args.worker_setting)
    workers = max(1, args.workers)
    repeat = max(1, args.repeat or (3 if args.traders <= 20_000 else 1))
    scaling = args.scaling if args.scaling is not None else args.traders > 20_000
    counts = [*range(1, workers), workers] if scaling else [workers]
    # Below ~1,000 traders a tick is mostly the workers' warm-up, so the variants tell
    # nothing (and the smoke test stays short); above 20,000 they would take over an hour.
    variants_by_default = 1_000 <= args.traders <= 20_000
    durable = args.durable if args.durable is not None else variants_by_default
    steady = args.steady if args.steady is not None else variants_by_default
    distinct = args.distinct if args.distinct is not None else variants_by_default
    variants = [
        v
        for v in VARIANTS
        if (durable or not v.durable) and (steady or not v.steady) and (distinct or not v.distinct)
    ]

    components = _components() if args.components else None
    measured = measure(
        args.traders,
        counts,
        repeat,
        variants=variants,
        log_dir=args.log_dir,
        commit_function=args.commit_function,
        worker_settings=worker_settings,
    )
    result = summarize(args.traders, workers, measured.by_workers[workers])
    result["mix"] = measured.mix.to_json()
    result["template_s"] = round(measured.template_s, 1)
    result["per_repetition"] = [
        {k: r[k] for k in ("wall_s", "runs_per_s", "cpu_ms_per_run", "p50_lag_s", "p99_lag_s")}
        for r in measured.by_workers[workers]
    ]
    if len(counts) > 1:
        scale = {w: summarize(args.traders, w, reps) for w, reps in measured.by_workers.items()}
        base = scale[1]["runs_per_s"]
        result["scaling"] = {
            str(w): {
                "runs_per_s": s["runs_per_s"],
                "runs_per_s_per_worker": round(s["runs_per_s"] / w, 1),
                "speedup_vs_1": round(s["runs_per_s"] / base, 2),
                "wall_s": s["wall_s"],
                "cpu_ms_per_run": s["cpu_ms_per_run"],
                "pg_cpu_ms_per_run": s["pg_cpu_ms_per_run"],
            }
            for w, s in scale.items()
        }
    by_variant = {
        name: summarize(args.traders, workers, reps) for name, reps in measured.by_variant.items()
    }
    result["variants"] = {
        name: {
            **{k: v[k] for k in VARIANT_FIELDS},
            "range": {k: v["range"][k] for k in ("wall_s", "total_cpu_ms_per_run")},
            "batch_ms": v["batch_ms"],
            "bytes_per_run": v["bytes_per_run"],
            "wal_top_records_per_run": v["wal_top_records_per_run"],
            "pg_function_ms": v["pg_function_ms"],
        }
        for name, v in by_variant.items()
    }
    target = TARGET_WALL_S.get(args.traders)
    result["targets"] = {
        "wall_s_max": target,
        "wall_ok": None if target is None else result["wall_s"] <= target,
        "ratio_vs_node_per_core_min": TARGET_RATIO,
        "ratio_ok": result["ratio_vs_node_per_core"] >= TARGET_RATIO,
        "node_agrees": not result["node_disagreements"],
    }
    if components is not None:
        result["components"] = components
    missing = [k for k in REQUIRED_KEYS if k not in result]
    assert not missing, missing

    print(
        f"{args.traders} traders, {workers} worker(s), median of {repeat}: "
        f"wall {result['wall_s']} s (range {result['range']['wall_s']}), "
        f"{result['runs_per_s']} runs/s, {result['cpu_ms_per_run']} worker CPU ms/run "
        f"+ {result['pg_cpu_ms_per_run']} Postgres CPU ms/run, lag p50 {result['p50_lag_s']} s "
        f"p99 {result['p99_lag_s']} s, peak RSS {result['rss_mb_per_worker']} MB/worker"
    )
    print(
        f"node baseline {result['node_runs_per_s_per_core']} runs/s per core; ours "
        f"{round(result['runs_per_s'] / workers, 1)} per worker: "
        f"ratio {result['ratio_vs_node_per_core']} (by CPU: {result['ratio_vs_node_cpu']})"
    )
    print(f"{'variant':<16}" + "".join(f"{k:>22}" for k in VARIANT_FIELDS))
    for name, v in result["variants"].items():
        print(f"{name:<16}" + "".join(f"{v[k]:>22}" for k in VARIANT_FIELDS))
    if "scaling" in result:
        print("scaling: " + json.dumps(result["scaling"]))
    if args.json_out is not None:
        full = {
            "summary": result,
            "variants": by_variant,
            "repetitions": {str(w): r for w, r in measured.by_workers.items()},
            "repetitions_by_variant": measured.by_variant,
        }
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(full, indent=1, default=str))
        plot = args.json_out.with_suffix(".png")
        _plot(plot, args.traders, workers, by_variant)
        print(f"figures: {args.json_out}; committed runs over time: {plot}")
    for name in ("timeline", "phases_over_time"):
        result.pop(name, None)  # in the JSON file; too long for the summary line
    print(json.dumps({"bench": "end_to_end", **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
