"""Benchmark the scheduler tick: 00:00 UTC (every interval due) with N enabled traders.

Targets (2-core machine): 10,000 traders in under 1 s, 100,000 in under 5 s.

It starts a throwaway embedded cluster in a temporary directory (fsync off, like the test
suite), migrates a database that pg_cron does not serve (so no real tick interferes),
creates users over the three tiers and traders over the seven intervals, and then, per
run, empties the queue and the counters, sets the watermark to 23:59 and times one call
of ``backend.schedule_due_traders('… 00:00Z')`` from the client (statement + commit).

    .venv/bin/python -m bench.bench_scheduler                 # 10k and 100k, 3 runs each
    .venv/bin/python -m bench.bench_scheduler --traders 10000 --runs 5

Prints one line per run, a summary, and a final JSON line with the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench._bench_users import create_bench_users
from traderctl.worker.intervals import INTERVALS
from traderctl.worker.local.embedded_pg import EmbeddedCluster
from traderctl.worker.migrate import migrate

TICK_AT = "2026-11-27T00:00:00+00:00"
TARGETS_S = {10_000: 1.0, 100_000: 5.0}
# A filter of realistic size (~400 bytes), as the frontend stores it.
CODE = (
    "const closes = timeframes['1m'].map(k => parseFloat(k[4]));\n"
    "const rsi = helpers.calculateRSI(closes, 14);\n"
    "const last = rsi[rsi.length - 1];\n"
    "const vol = parseFloat(ticker.q);\n"
    "if (vol < 1e6) return false;\n"
    "const ema = helpers.calculateEMA(closes, 21);\n"
    "return last !== null && last < 30 && closes[closes.length - 1] > ema[ema.length - 1];\n"
)


def _load(conn: psycopg.Connection[Any], traders: int) -> dict[str, int]:
    """Users over the tiers (free 3 and pro 10 traders each, elite the rest), then traders."""
    free_users = max(1, traders // 100)  # 3 % of traders on free
    pro_users = max(1, traders // 50)  # 20 % on pro
    elite_users = max(1, traders // 20)  # the rest, ~15 each
    elite_traders = traders - 3 * free_users - 10 * pro_users
    if elite_traders < 0:
        raise SystemExit("--traders must be at least 130")
    filter_template = {"code": CODE, "requiredTimeframes": ["1m"]}
    with conn.transaction():
        # Bulk load: no immediate first run per inserted trader.
        conn.execute("set local traderctl.skip_first_run = 'on'")
        # Every trader runs on the backend (a fresh install leaves them to the browser, and
        # the tick skips those), with no health fallback: the bench's clock is not the
        # wall clock (docs/rollout.md).
        conn.execute(
            "update backend.rollout_settings set default_mode = 'server', fallback_enabled = false"
        )
        create_bench_users(conn, free=free_users, pro=pro_users, elite=elite_users)
        # (user n, trader k) pairs: free users 3 traders, pro 10, elite share the rest.
        conn.execute(
            "insert into public.traders (user_id, name, enabled, filter)"
            " select u.id, 'bench ' || u.n || '/' || k, true,"
            "  %s::jsonb || jsonb_build_object('refreshInterval',"
            "   (%s::text[])[1 + (abs(hashtext(u.n || '/' || k)) %% 7)])"
            " from bench_users u"
            " cross join lateral generate_series(1, case"
            "   when u.n <= %s then 3 when u.n <= %s then 10"
            "   else %s / %s + (case when u.n - %s <= %s %% %s then 1 else 0 end) end) k",
            (
                json.dumps(filter_template),
                list(INTERVALS),
                free_users,
                free_users + pro_users,
                elite_traders,
                elite_users,
                free_users + pro_users,
                elite_traders,
                elite_users,
            ),
        )
    conn.execute("vacuum analyze")
    row = conn.execute("select count(*) from public.traders where enabled").fetchone()
    assert row is not None and row[0] == traders, (row, traders)
    return {
        "users_free": free_users,
        "users_pro": pro_users,
        "users_elite": elite_users,
        "traders": traders,
    }


def _reset(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "truncate procrastinate.procrastinate_events, procrastinate.procrastinate_periodic_defers,"
        " procrastinate.procrastinate_jobs, backend.user_hourly_executions,"
        " backend.scheduler_ticks"
    )
    conn.execute(
        "update backend.scheduler_state set last_slot = %s::timestamptz - interval '1 minute'",
        (TICK_AT,),
    )
    conn.execute("vacuum analyze procrastinate.procrastinate_jobs")
    conn.execute("checkpoint")


def _tick(conn: psycopg.Connection[Any]) -> tuple[float, int]:
    started = time.perf_counter()
    rows = conn.execute(
        "select outcome, trader_count from backend.schedule_due_traders(%s)", (TICK_AT,)
    ).fetchall()
    elapsed = time.perf_counter() - started
    return elapsed, sum(n for outcome, n in rows if outcome == "enqueued")


def run(sizes: list[int], runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {"tick_at": TICK_AT, "runs": runs, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        # As root the server runs as `postgres`, which must be able to enter the directory.
        Path(tmp).chmod(0o755)
        cluster = EmbeddedCluster(Path(tmp) / "cluster", db_name="bench_cron", fast=True)
        cluster.start()
        try:
            for size in sizes:
                db = f"bench_{size}"
                with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
                    admin.execute(f"create database {db}")
                with psycopg.connect(cluster.url(db), autocommit=True) as conn:
                    migrate(conn)
                    load_started = time.perf_counter()
                    shape = _load(conn, size)
                    print(
                        f"[{size}] loaded {shape} in {time.perf_counter() - load_started:.1f} s",
                        file=sys.stderr,
                    )
                    timings: list[float] = []
                    for i in range(runs):
                        _reset(conn)
                        elapsed, enqueued = _tick(conn)
                        if enqueued != size:
                            raise SystemExit(f"expected {size} jobs, the tick enqueued {enqueued}")
                        timings.append(elapsed)
                        print(
                            f"[{size}] run {i + 1}: {elapsed * 1000:.0f} ms, {enqueued} jobs",
                            flush=True,
                        )
                median = statistics.median(timings)
                target = TARGETS_S.get(size)
                verdict = "" if target is None else (" OK" if median < target else " OVER TARGET")
                print(
                    f"[{size}] median {median * 1000:.0f} ms"
                    + (f" (target < {target:.0f} s){verdict}" if target else ""),
                    flush=True,
                )
                results["sizes"][str(size)] = {
                    "median_s": round(median, 4),
                    "runs_s": [round(t, 4) for t in timings],
                    "target_s": target,
                    "ok": None if target is None else median < target,
                    **shape,
                }
        finally:
            cluster.stop()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--traders",
        type=int,
        action="append",
        help="Enabled traders (repeatable; default 10000 and 100000).",
    )
    parser.add_argument("--runs", type=int, default=3, help="Timed ticks per size (default 3).")
    args = parser.parse_args(argv)
    results = run(args.traders or [10_000, 100_000], max(1, args.runs))
    print(json.dumps({"bench": "scheduler_tick", **results}))


if __name__ == "__main__":
    main()
