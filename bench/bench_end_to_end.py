"""End-to-end benchmark: one 00:00 UTC tick of N traders through W worker processes.

What it measures, on the embedded stack (Postgres with fsync off, in a temp dir):
a template database holds the schema, a 100-symbol × 250-kline snapshot of every timeframe
the filters need (from the exchange simulator, through the real market-data worker) and N
traders of the 12 demo filters owned by users over the three tiers (bench/_e2e_fixture.py).
Per repetition, a fresh copy of it gets ``traderctl worker --concurrency W`` (started and
idle first), then one call of ``backend.schedule_due_traders('2026-11-27T00:00Z')``
(every interval is due at 00:00), and the bench waits until the queue is empty and every
run is committed. It reports:

* wall time from the tick to the last commit (``max(trader_runs.finished_at)`` − the
  tick's ``clock_timestamp()``), trader-runs per second, worker CPU ms per run;
* schedule lag p50/p99: ``finished_at`` − tick time per run. The slot (00:00 tomorrow) is
  in the future of the wall clock, so the tick instant stands for the slot; in production
  pg_cron fires it at the slot (``traderctl scheduler`` adds its 3 s offset);
* CPU in Postgres (the postmaster's process tree, /proc) vs in the workers, and V8 time
  (Σ ``trader_runs.duration_ms``: the runtime's per-trader time inside V8), plus the
  workers' own wall split (claim / load / eval / commit, from their throughput log lines);
* peak RSS (VmHWM) per worker process; rows, table bytes and WAL bytes per run;
* the Node.js baseline (bench/node_baseline.js: the browser's way, one thread, no
  database) on the same filters and data, weighted like the bench's mix, and
  ``ratio_vs_node_per_core = (runs_per_s / workers) / node_runs_per_s_per_core``.

Each trader has one earlier run with an empty match state (realistic table statistics,
see bench/_e2e_fixture.py), so signals = matches: the upper bound of signal rows per run. ``python -m bench.run_all`` is the entry point (``make bench``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench._e2e_fixture import TICK_AT, TraderMix, build_template
from bench._node_reference import NodeBaseline, compare_matches, run_node_baseline
from bench._procstat import cmdline, descendants, peak_rss_mb, sample_tree
from traderctl.worker.config import ENV_VARS
from traderctl.worker.local.embedded_pg import EmbeddedCluster

__all__ = ["REQUIRED_KEYS", "Measurements", "measure", "summarize"]

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DB = "bench_e2e_template"
#: Tables whose growth is charged to the runs (pg_total_relation_size: heap + indexes + toast).
TABLES = (
    "public.trader_runs",
    "public.signals",
    "public.trader_matches",
    "public.traders",
    "procrastinate.procrastinate_jobs",
    "procrastinate.procrastinate_events",
)
_THROUGHPUT = re.compile(
    r"throughput \S+: (?P<jobs>\d+) jobs in [\d.]+s .*?; (?P<batches>\d+) batches of [\d.]+; "
    r"per batch ms: claim (?P<claim>[\d.]+) load (?P<load>[\d.]+) eval (?P<eval>[\d.]+) "
    r"commit (?P<commit>[\d.]+)"
)
#: Keys the issue asks for in the final JSON line (medians over repetitions).
REQUIRED_KEYS = (
    "traders",
    "workers",
    "wall_s",
    "runs_per_s",
    "cpu_ms_per_run",
    "p50_lag_s",
    "p99_lag_s",
    "node_runs_per_s_per_core",
    "ratio_vs_node_per_core",
    "rss_mb_per_worker",
)


def _log(message: str) -> None:
    print(f"[bench e2e] {message}", file=sys.stderr, flush=True)


# -- the worker pool ---------------------------------------------------------------------
@dataclass
class WorkerPool:
    """``traderctl worker --concurrency W`` as a subprocess of ours, logging to a file."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    workers: int

    @classmethod
    def start(cls, url: str, workers: int, log_path: Path) -> WorkerPool:
        env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
        env["DATABASE_URL"] = url
        env["PYTHONUNBUFFERED"] = "1"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "traderctl", "worker", "--concurrency", str(workers)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        pool = cls(proc=proc, log_path=log_path, workers=workers)
        pool._wait_ready()
        return pool

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"worker exited with {self.proc.returncode}:\n{self.log_text()}")
            if self.log_text().count(" ready: id ") >= self.workers:
                return
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"workers not ready within {timeout:.0f}s:\n{self.log_text()}")

    def processes(self) -> list[int]:
        """PIDs of the worker processes proper (the pool's children, or the lone worker)."""
        tree = descendants(self.proc.pid)
        if self.workers == 1:
            return [self.proc.pid]
        return [pid for pid in tree if "multiprocessing.spawn" in cmdline(pid)]

    def stop(self, timeout: float = 90.0) -> None:
        """SIGTERM the pool (it stops its children); kill our own leftovers by PID."""
        if self.proc.poll() is not None:
            return
        tree = descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _log(f"worker pool {self.proc.pid} did not stop; killing its processes")
            for pid in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.wait(10)
        for pid in tree:  # children the pool could not reap (it never leaves any normally)
            if pid != self.proc.pid and Path(f"/proc/{pid}").exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


# -- database probes ---------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DbSample:
    """Sizes, WAL position and row counts at one instant."""

    sizes: dict[str, int]
    wal_lsn: str
    rows: dict[str, int]

    @classmethod
    def take(cls, conn: psycopg.Connection[Any]) -> DbSample:
        sizes = {t: _one(conn, "select pg_total_relation_size(%s::regclass)", t) for t in TABLES}
        rows = {
            t: _one(conn, f"select count(*) from {t}")
            for t in (
                "public.trader_runs",
                "public.signals",
                "public.trader_matches",
                "procrastinate.procrastinate_events",
            )
        }
        lsn = conn.execute("select pg_current_wal_lsn()::text").fetchone()
        assert lsn is not None
        return cls(sizes=sizes, wal_lsn=str(lsn[0]), rows=rows)


def _one(conn: psycopg.Connection[Any], query: Any, *args: Any) -> Any:
    row = conn.execute(query, args or None).fetchone()
    assert row is not None
    return row[0]


def _worker_split(log: str) -> dict[str, float]:
    """Summed ms per phase of every batch, from the workers' throughput log lines."""
    out = {"jobs": 0.0, "batches": 0.0, "claim": 0.0, "load": 0.0, "eval": 0.0, "commit": 0.0}
    for m in _THROUGHPUT.finditer(log):
        batches = int(m["batches"])
        out["jobs"] += int(m["jobs"])
        out["batches"] += batches
        for phase in ("claim", "load", "eval", "commit"):
            out[phase] += batches * float(m[phase])
    return out


# -- one repetition ----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Stack:
    """What every repetition shares."""

    cluster: EmbeddedCluster
    postmaster: int
    mix: TraderMix
    workdir: Path


@contextlib.contextmanager
def _fresh_database(cluster: EmbeddedCluster, name: str) -> Iterator[str]:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
        admin.execute(f"create database {name} template {TEMPLATE_DB}")
    try:
        yield cluster.url(name)
    finally:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f"drop database if exists {name} with (force)")


def _run_once(stack: Stack, workers: int, rep: int, timeout_s: float) -> dict[str, Any]:
    name = f"bench_e2e_w{workers}_r{rep}"
    with _fresh_database(stack.cluster, name) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            # Node right before the tick, so both see the same load on this shared machine.
            node = run_node_baseline(conn, stack.mix, stack.workdir)
            # Per-function time of the worker's SQL (read from pg_stat_user_functions).
            conn.execute(f"alter database {name} set track_functions = 'all'")
        pool = WorkerPool.start(url, workers, stack.workdir / f"{name}.log")
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                sample = _measure_tick(stack, conn, pool, timeout_s)
                pool.stop()  # the workers log their final throughput lines on the way out
                return _collect(stack, conn, pool, sample, node)
        finally:
            pool.stop()


def _measure_tick(
    stack: Stack, conn: psycopg.Connection[Any], pool: WorkerPool, timeout_s: float
) -> TickSample:
    traders = stack.mix.traders
    db_before = DbSample.take(conn)
    pg_before = sample_tree(stack.postmaster)
    workers_before = sample_tree(pool.proc.pid)
    t0 = _one(conn, "select clock_timestamp()")
    tick_started = time.perf_counter()
    outcomes = conn.execute(
        "select outcome, sum(trader_count)::int from backend.schedule_due_traders(%s) group by 1",
        (TICK_AT,),
    ).fetchall()
    tick_s = time.perf_counter() - tick_started
    enqueued = dict(outcomes).get("enqueued", 0)
    if enqueued != traders:
        raise SystemExit(f"the tick enqueued {enqueued} jobs for {traders} traders: {outcomes}")
    poll = 0.5 if traders <= 20_000 else 1.0
    while True:
        time.sleep(poll)
        open_jobs = _one(
            conn,
            "select count(*) from procrastinate.procrastinate_jobs"
            " where status in ('todo', 'doing')",
        )
        if open_jobs == 0:
            break
        if pool.proc.poll() is not None:
            raise SystemExit(f"the worker pool exited:\n{pool.log_text()[-4000:]}")
        if time.perf_counter() - tick_started > timeout_s:
            raise SystemExit(f"{open_jobs} jobs still open after {timeout_s:.0f}s")
    detected_s = time.perf_counter() - tick_started
    workers_after = sample_tree(pool.proc.pid)
    rss = [peak_rss_mb(pid) for pid in pool.processes()]
    pg_after = sample_tree(stack.postmaster)
    db_after = DbSample.take(conn)
    return TickSample(
        t0=t0,
        tick_s=tick_s,
        detected_s=detected_s,
        worker_cpu=workers_after.since(workers_before),
        pg_cpu=pg_after.since(pg_before),
        rss=rss,
        db=(db_before, db_after),
    )


@dataclass(frozen=True, kw_only=True)
class TickSample:
    """What was sampled around one tick, before the workers were stopped."""

    t0: Any  # the tick's clock_timestamp() (server clock)
    tick_s: float
    detected_s: float
    worker_cpu: float
    pg_cpu: float
    rss: list[float]
    db: tuple[DbSample, DbSample]


def _function_ms(conn: psycopg.Connection[Any]) -> dict[str, float]:
    """Total ms per SQL function called during the repetition (track_functions = all)."""
    return {
        f"{schema}.{name}": round(float(ms), 1)
        for schema, name, ms in conn.execute(
            "select schemaname, funcname, sum(total_time) from pg_stat_user_functions"
            " where schemaname in ('backend', 'procrastinate')"
            " group by 1, 2 having sum(total_time) > 0 order by 3 desc"
        ).fetchall()
    }


def _collect(
    stack: Stack,
    conn: psycopg.Connection[Any],
    pool: WorkerPool,
    sample: TickSample,
    node_baseline: NodeBaseline,
) -> dict[str, Any]:
    t0, worker_cpu, pg_cpu, rss = sample.t0, sample.worker_cpu, sample.pg_cpu, sample.rss
    row = conn.execute(
        "select count(*), count(*) filter (where status = 'error'),"
        " coalesce(sum(duration_ms), 0), coalesce(sum(signals), 0), coalesce(sum(matches), 0),"
        " coalesce(avg(symbols_evaluated), 0), coalesce(max(data_age_ms), 0),"
        " extract(epoch from max(finished_at) - %(t0)s),"
        " percentile_cont(array[0.5, 0.99]) within group"
        "   (order by extract(epoch from finished_at - %(t0)s)),"
        " count(distinct worker)"
        " from public.trader_runs where slot = %(slot)s",
        {"t0": t0, "slot": TICK_AT},
    ).fetchone()
    assert row is not None
    runs, errors, v8_ms, signals, matches, avg_symbols, max_age, wall, lags, run_workers = row
    if runs != stack.mix.traders:
        raise SystemExit(f"{runs} runs committed for {stack.mix.traders} traders")
    failed = _one(
        conn, "select count(*) from procrastinate.procrastinate_jobs where status <> 'succeeded'"
    )
    error_types = {
        f"{kind} {key}/{tier}": n
        for kind, key, tier, n in conn.execute(
            "select r.error_type, split_part(t.name, '#', 1), coalesce(ut.tier, 'free'), count(*)"
            " from public.trader_runs r join public.traders t on t.id = r.trader_id"
            " left join public.user_tiers ut on ut.user_id = t.user_id"
            " where r.status = 'error' and r.slot = %s group by 1, 2, 3 order by 4 desc",
            (TICK_AT,),
        ).fetchall()
    }
    by_group: dict[tuple[str, str], set[int]] = {}
    for key, tier, counts in conn.execute(
        "select split_part(t.name, '#', 1), coalesce(ut.tier, 'free'), array_agg(distinct r.matches)"
        " from public.trader_runs r join public.traders t on t.id = r.trader_id"
        " left join public.user_tiers ut on ut.user_id = t.user_id"
        " where r.status = 'ok' and r.slot = %s group by 1, 2",
        (TICK_AT,),
    ).fetchall():
        by_group[(key, tier)] = set(counts)
    disagreements = compare_matches(node_baseline, stack.mix, by_group)
    # Tier priority at work: elite jobs are claimed first, free last.
    lag_by_tier = {
        tier: [round(float(p50), 2), round(float(p99), 2)]
        for tier, p50, p99 in conn.execute(
            "select coalesce(ut.tier, 'free'),"
            " percentile_cont(0.5) within group (order by extract(epoch from r.finished_at - %(t0)s)),"
            " percentile_cont(0.99) within group (order by extract(epoch from r.finished_at - %(t0)s))"
            " from public.trader_runs r left join public.user_tiers ut on ut.user_id = r.user_id"
            " where r.slot = %(slot)s group by 1 order by 2",
            {"t0": t0, "slot": TICK_AT},
        ).fetchall()
    }

    before, after = sample.db
    wall_s = float(wall)
    split = _worker_split(pool.log_text())
    busy = sum(split[p] for p in ("claim", "load", "eval", "commit")) or 1.0
    v8_s = float(v8_ms) / 1000
    total_cpu = worker_cpu + pg_cpu
    wal_bytes = _one(
        conn,
        "select pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)::bigint",
        after.wal_lsn,
        before.wal_lsn,
    )
    bytes_per_run = {
        t.split(".")[1]: round((after.sizes[t] - before.sizes[t]) / runs) for t in TABLES
    }
    rows_per_run = {
        t.split(".")[1]: round((after.rows[t] - before.rows[t]) / runs, 2) for t in after.rows
    }
    workers = pool.workers
    runs_per_s = runs / wall_s
    node = node_baseline.runs_per_s
    db_ms = split["claim"] + split["load"] + split["commit"]
    return {
        "wall_s": round(wall_s, 2),
        "runs_per_s": round(runs_per_s, 1),
        "cpu_ms_per_run": round(worker_cpu * 1000 / runs, 3),
        "pg_cpu_ms_per_run": round(pg_cpu * 1000 / runs, 3),
        "total_cpu_ms_per_run": round(total_cpu * 1000 / runs, 3),
        "v8_ms_per_run": round(float(v8_ms) / runs, 3),
        "p50_lag_s": round(float(lags[0]), 2),
        "p99_lag_s": round(float(lags[1]), 2),
        "lag_p50_p99_s_by_tier": lag_by_tier,
        "node_runs_per_s_per_core": round(node, 1),
        "ratio_vs_node_per_core": round(runs_per_s / workers / node, 2),
        "ratio_vs_node_cpu": round((1000 / (total_cpu * 1000 / runs)) / node, 2),
        "rss_mb_per_worker": round(max(rss), 1),
        "rss_mb_workers": [round(r, 1) for r in rss],
        "pg_cpu_share": round(pg_cpu / total_cpu, 3),
        "worker_cpu_share": round(worker_cpu / total_cpu, 3),
        "wall_share_db": round(db_ms / busy, 3),
        "wall_share_v8": round(float(v8_ms) / busy, 3),
        "wall_share_other": round(1 - (db_ms + float(v8_ms)) / busy, 3),
        "worker_split": {p: round(split[p] / busy, 3) for p in ("claim", "load", "eval", "commit")},
        "batch_ms": {
            p: round(split[p] / max(1.0, split["batches"]), 1)
            for p in ("claim", "load", "eval", "commit")
        },
        "pg_function_ms": _function_ms(conn),
        "batches": int(split["batches"]),
        "worker_cpu_s": round(worker_cpu, 2),
        "pg_cpu_s": round(pg_cpu, 2),
        "v8_s": round(v8_s, 2),
        "tick_s": round(sample.tick_s, 3),
        "detected_s": round(sample.detected_s, 2),
        "runs": runs,
        "run_errors": errors,
        "error_types": error_types,
        "jobs_not_succeeded": failed,
        "signals_per_run": round(signals / runs, 2),
        "matches_per_run": round(matches / runs, 2),
        "avg_symbols_per_run": round(float(avg_symbols), 1),
        "max_data_age_ms": float(max_age),
        "run_workers": run_workers,
        "rows_per_run": rows_per_run,
        "bytes_per_run": bytes_per_run,
        "table_bytes_per_run": sum(bytes_per_run.values()),
        "wal_bytes_per_run": round(wal_bytes / runs),
        "node_disagreements": disagreements,
        "node_version": node_baseline.node_version,
        "node_ms_per_trader": {
            f"{k}@{n}": round(v, 3) for (k, n), v in sorted(node_baseline.ms.items())
        },
    }


# -- the whole bench ---------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Measurements:
    """Every repetition's figures by worker count, with the mix and the Node baseline."""

    mix: TraderMix
    template_s: float
    by_workers: dict[int, list[dict[str, Any]]]


def measure(
    traders: int,
    worker_counts: Sequence[int],
    repeat: int,
    *,
    timeout_s: float | None = None,
    log_dir: Path | None = None,
) -> Measurements:
    """Build the stack once, then ``repeat`` repetitions per worker count.

    ``log_dir``: copy the worker logs (one file per repetition) there before cleaning up.
    """
    timeout = timeout_s or max(600.0, traders / 20)
    results: dict[int, list[dict[str, Any]]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    tmp.chmod(0o755)  # as root the server runs as `postgres`, which must enter it
    cluster = EmbeddedCluster(tmp / "cluster", db_name="bench_e2e_cron", fast=True)
    cluster.start()
    try:
        postmaster = cluster.running_pid()
        assert postmaster is not None
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f"create database {TEMPLATE_DB}")
        started = time.perf_counter()
        mix = build_template(cluster.url(TEMPLATE_DB), traders)
        template_s = time.perf_counter() - started
        _log(f"template: {traders} traders + snapshot in {template_s:.1f}s")
        stack = Stack(cluster=cluster, postmaster=postmaster, mix=mix, workdir=tmp)
        for workers in worker_counts:
            for rep in range(repeat):
                result = _run_once(stack, workers, rep, timeout)
                results.setdefault(workers, []).append(result)
                _log(
                    f"W={workers} rep {rep + 1}/{repeat}: wall {result['wall_s']}s, "
                    f"{result['runs_per_s']} runs/s, cpu {result['cpu_ms_per_run']} ms/run "
                    f"(+pg {result['pg_cpu_ms_per_run']}), lag p50 {result['p50_lag_s']}s "
                    f"p99 {result['p99_lag_s']}s, node {result['node_runs_per_s_per_core']} "
                    f"runs/s/core, ratio/core {result['ratio_vs_node_per_core']}"
                )
    finally:
        cluster.stop()
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            for log in tmp.glob("*.log"):
                shutil.copy(log, log_dir / log.name)
        shutil.rmtree(tmp, ignore_errors=True)
    return Measurements(mix=mix, template_s=template_s, by_workers=results)


def _median(values: list[Any]) -> Any:
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        m = statistics.median(values)
        return round(m, 3) if isinstance(m, float) else m
    if all(isinstance(v, dict) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        return {k: _median([v.get(k, 0) for v in values]) for k in keys}
    return values[len(values) // 2]


def summarize(traders: int, workers: int, reps: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of every field over the repetitions, plus min/max of the headline ones."""
    keys = reps[0].keys()
    out: dict[str, Any] = {"traders": traders, "workers": workers, "repeat": len(reps)}
    for key in keys:
        out[key] = _median([r[key] for r in reps])
    out["range"] = {
        k: [min(r[k] for r in reps), max(r[k] for r in reps)]
        for k in ("wall_s", "runs_per_s", "cpu_ms_per_run", "pg_cpu_ms_per_run", "p50_lag_s",
                  "p99_lag_s", "node_runs_per_s_per_core", "ratio_vs_node_per_core",
                  "rss_mb_per_worker")
    }  # fmt: skip
    out["node_disagreements"] = sorted({d for r in reps for d in r["node_disagreements"]})
    return out
