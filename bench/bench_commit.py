"""The commit alone: backend.commit_trader_runs over two ticks of N traders, no workers.

Why a bench of its own: in the end-to-end bench the commit shares the cores with V8, the
claim and the other helpers' test suites, so a change to the commit shows only as noise in
``wall_s``. Here one connection commits synthetic evaluated runs in batches of 32 and
nothing else runs, so each change to the function is measured on its own:

* **first tick**: every trader's stored match state is empty, so every match is a signal
  (the upper bound, as the end-to-end bench's tick);
* **steady tick**: the next slot, where each trader keeps most of its matches (each stored
  symbol stays with probability 0.9, one new symbol with probability 0.3), so signals are
  only the real edges and most match states are unchanged.

Per tick: Postgres time of the function per batch (``pg_stat_user_functions``,
``track_functions = all``), the backend's CPU per run (/proc of the server process),
WAL bytes per run (``pg_current_wal_lsn()`` difference) with the largest record kinds
from ``pg_waldump --stats``, and table bytes and rows per run.

    python -m bench.bench_commit                        # 10,000 traders, fsync off
    python -m bench.bench_commit --durable              # fsync, synchronous_commit, FPW on
    python -m bench.bench_commit --function old.sql     # another definition of the function

``--function`` loads the ``create or replace function backend.commit_trader_runs`` found in
that file over the migrated one, and ``--sql`` runs a file of statements after the
migrations (a schema change under trial): how a before/after comparison is made.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench._e2e_fixture import TICK_AT, load_traders, replace_commit_function, seed_history
from bench._procstat import process_cpu_seconds
from bench._wal import wal_records_per_run
from traderctl.worker.local.embedded_pg import EmbeddedCluster
from traderctl.worker.migrate import migrate

__all__ = ["main", "measure_commit"]

BATCH = 32
SYMBOLS = [f"S{i:03d}USDT" for i in range(100)]
TABLES = (
    "public.trader_runs",
    "public.signals",
    "public.trader_matches",
    "public.trader_stats",
)


def _log(message: str) -> None:
    print(f"[bench commit] {message}", file=sys.stderr, flush=True)


def _one(conn: psycopg.Connection[Any], query: str, *args: Any) -> Any:
    row = conn.execute(query.encode(), args or None).fetchone()
    assert row is not None
    return row[0]


def _matches(rng: random.Random, previous: list[str] | None) -> list[str]:
    """~7 matches out of 100 symbols; in steady state mostly the previous ones."""
    if previous is None:
        return rng.sample(SYMBOLS, rng.randint(3, 11))
    kept = [s for s in previous if rng.random() < 0.9]
    if rng.random() < 0.3:
        kept.append(rng.choice([s for s in SYMBOLS if s not in kept]))
    return kept


def _record(trader: str, slot: str, matches: list[str], job_id: int) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "trader_id": trader,
        "slot": slot,
        "interval": "1m",
        "status": "ok",
        "error_type": None,
        "error_message": None,
        "started_at": slot,
        "duration_ms": 1.2,
        "symbols_evaluated": 51,
        "symbol_errors": 0,
        "matches": matches,
        "prices": {s: [101.25, -1.5, 2.5e7] for s in matches},
        "data_as_of": slot,
        "data_age_ms": 0,
    }


def _tick(
    conn: psycopg.Connection[Any],
    pgdata: Path,
    backend_pid: int,
    traders: list[str],
    slot: str,
    matches: dict[str, list[str]],
) -> dict[str, Any]:
    order = traders[:]
    random.Random(slot).shuffle(order)  # claim order is the queue's, not the traders'
    conn.execute("select pg_stat_reset()")
    conn.execute("select pg_stat_clear_snapshot()")
    sizes0 = {t: _one(conn, "select pg_total_relation_size(%s::regclass)", t) for t in TABLES}
    signals0 = _one(conn, "select count(*) from public.signals")
    lsn0 = str(_one(conn, "select pg_current_wal_lsn()::text"))
    cpu0 = process_cpu_seconds(backend_pid)
    batch_ms: list[float] = []
    started = time.perf_counter()
    for i in range(0, len(order), BATCH):
        runs = [_record(t, slot, matches[t], i + k) for k, t in enumerate(order[i : i + BATCH])]
        t0 = time.perf_counter()
        with conn.transaction():
            conn.execute(
                "select count(*) from backend.commit_trader_runs(%s::jsonb, 'bench', 10,"
                " null, '{}')",
                (json.dumps(runs),),
            ).fetchone()
        batch_ms.append((time.perf_counter() - t0) * 1000)
    wall = time.perf_counter() - started
    cpu = process_cpu_seconds(backend_pid) - cpu0
    lsn1 = str(_one(conn, "select pg_current_wal_lsn()::text"))
    n = len(order)
    wal = int(_one(conn, "select pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)::bigint", lsn1, lsn0))
    time.sleep(0.6)  # function statistics are flushed by the backend at most every 0.5 s
    conn.execute("select pg_stat_clear_snapshot()")
    fn_ms = float(
        _one(
            conn,
            "select coalesce(sum(total_time), 0) from pg_stat_user_functions"
            " where funcname = 'commit_trader_runs'",
        )
    )
    sizes1 = {t: _one(conn, "select pg_total_relation_size(%s::regclass)", t) for t in TABLES}
    signals = _one(conn, "select count(*) from public.signals") - signals0
    bytes_per_run = {t.split(".")[1]: round((sizes1[t] - sizes0[t]) / n) for t in TABLES}
    return {
        "runs": n,
        "wall_s": round(wall, 2),
        "batch_ms_p50": round(statistics.median(batch_ms), 2),
        "function_ms_per_batch": round(fn_ms / len(batch_ms), 2),
        "function_ms_per_run": round(fn_ms / n, 3),
        "pg_cpu_ms_per_run": round(cpu * 1000 / n, 3),
        "signals_per_run": round(signals / n, 2),
        "wal_bytes_per_run": round(wal / n),
        "wal_top_records_per_run": wal_records_per_run(pgdata, lsn0, lsn1, n),
        "table_bytes_per_run": sum(bytes_per_run.values()),
        "bytes_per_run": bytes_per_run,
    }


def measure_commit(
    traders: int, *, durable: bool, function_sql: Path | None, extra_sql: Path | None = None
) -> dict[str, Any]:
    """Both ticks on a fresh cluster; returns their figures."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-commit-"))
    tmp.chmod(0o755)  # as root the server runs as `postgres`, which must enter it
    cluster = EmbeddedCluster(tmp / "cluster", db_name="bench_commit_cron", fast=not durable)
    cluster.start()
    try:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute("create database bench_commit")
        with psycopg.connect(cluster.url("bench_commit"), autocommit=True) as conn:
            migrate(conn)
            if function_sql is not None:
                replace_commit_function(conn, function_sql)
            if extra_sql is not None:
                conn.execute(extra_sql.read_bytes())
            load_traders(conn, traders)
            seed_history(conn)
            conn.execute("vacuum analyze")
            conn.execute("set track_functions = 'all'")
            ids = [str(r[0]) for r in conn.execute("select id from public.traders").fetchall()]
            backend_pid = int(_one(conn, "select pg_backend_pid()"))
            rng = random.Random(7)
            first = {t: _matches(rng, None) for t in ids}
            steady = {t: _matches(rng, first[t]) for t in ids}
            conn.execute("checkpoint")  # both ticks start after one: full-page images count
            out: dict[str, Any] = {}
            for name, minutes, matches in (("first_tick", 0, first), ("steady_tick", 1, steady)):
                slot = (TICK_AT + timedelta(minutes=minutes)).isoformat()
                out[name] = _tick(conn, cluster.pgdata, backend_pid, ids, slot, matches)
                _log(f"{name}: {json.dumps(out[name])}")
                conn.execute("checkpoint")
            return out
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--traders", type=int, default=10_000)
    parser.add_argument("--durable", action="store_true", help="fsync, sync commit, FPW on")
    parser.add_argument("--function", type=Path, help="SQL file with another definition")
    parser.add_argument("--sql", type=Path, help="SQL file run after the migrations")
    parser.add_argument("--repeat", type=int, default=1, help="fresh clusters; medians")
    args = parser.parse_args(argv)
    results = [
        measure_commit(
            args.traders, durable=args.durable, function_sql=args.function, extra_sql=args.sql
        )
        for _ in range(max(1, args.repeat))
    ]
    summary: dict[str, Any] = {
        "bench": "commit",
        "traders": args.traders,
        "durable": args.durable,
        "function": str(args.function) if args.function else "migrations",
        "sql": str(args.sql) if args.sql else None,
        "repeat": len(results),
    }
    for tick in ("first_tick", "steady_tick"):
        summary[tick] = {
            key: (
                statistics.median(r[tick][key] for r in results)
                if isinstance(results[0][tick][key], int | float)
                else results[len(results) // 2][tick][key]
            )
            for key in results[0][tick]
        }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
