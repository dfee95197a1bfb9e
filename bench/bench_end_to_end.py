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

Each repetition measures up to five **variants** of the same tick, each on its own fresh
copy of a template:

* ``fast-first``: the cluster as the tests run it (fsync, synchronous_commit and
  full_page_writes off), every stored match state empty, so every match is a signal: the
  upper bound of signal rows (the figures before variants existed);
* ``fast-steady``: the stored match states are what the previous tick matched (the
  template is primed by one unmeasured tick; one trader in ten has lost a symbol since),
  so signals are only real edges and most match states do not change: the usual minute;
* ``durable-first``, ``durable-steady``: the same with fsync, synchronous_commit and
  full_page_writes on (as on Supabase), after a checkpoint, so every commit waits for its
  WAL flush and the first change of each page after the checkpoint writes a full-page image;
* ``fast-first-distinct``: ``fast-first`` with a code text of its own for every trader (the
  demo filter plus a comment naming the trader), as when users write their own filters:
  V8 can no longer share compiled and optimized code between traders of one text.

Per variant it also records committed runs over time per tier (``timeline``, plotted by
bench/run_all.py), the workers' per-batch phases per log window (``phases_over_time``),
and WAL bytes per run by record kind (pg_waldump). ``python -m bench.run_all`` is the entry
point (``make bench``).
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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bench._e2e_fixture import TICK_AT, TraderMix, build_template, replace_commit_function
from bench._node_reference import NodeBaseline, compare_matches, run_node_baseline
from bench._procstat import cmdline, descendants, peak_rss_mb, sample_tree
from bench._wal import wal_records_per_run
from traderctl.worker.config import ENV_VARS
from traderctl.worker.local.embedded_pg import EmbeddedCluster

__all__ = ["REQUIRED_KEYS", "VARIANTS", "Measurements", "Variant", "measure", "summarize"]

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DB = "bench_e2e_template"
#: The template with stored match states from a previous tick (steady variants).
STEADY_TEMPLATE_DB = "bench_e2e_template_steady"
#: The template whose every trader has a code text of its own (distinct variants).
DISTINCT_TEMPLATE_DB = "bench_e2e_template_distinct"
#: One trader in this many loses a stored symbol before a steady tick: its real edges.
STEADY_EDGE_EVERY = 10
#: Bucket of the committed-runs timeline, seconds.
TIMELINE_STEP_S = 0.25
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
    r"(?:(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+ )?"
    r"throughput \S+: (?P<jobs>\d+) jobs in (?P<window>[\d.]+)s .*?; "
    r"(?P<batches>\d+) batches of [\d.]+; "
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


@dataclass(frozen=True)
class Variant:
    """How a tick is measured: server durability, stored match states or none, and
    whether every trader's code text is its own (``distinct``) or one of the 12 demo texts."""

    durable: bool
    steady: bool
    distinct: bool = False

    @property
    def name(self) -> str:
        base = f"{'durable' if self.durable else 'fast'}-{'steady' if self.steady else 'first'}"
        return f"{base}-distinct" if self.distinct else base


#: Every variant, the historical one (fast, empty match states, shared code texts) first.
VARIANTS = (
    Variant(durable=False, steady=False),
    Variant(durable=False, steady=True),
    Variant(durable=True, steady=False),
    Variant(durable=True, steady=True),
    Variant(durable=False, steady=False, distinct=True),
)


# -- the worker pool ---------------------------------------------------------------------
@dataclass
class WorkerPool:
    """``traderctl worker --concurrency W`` as a subprocess of ours, logging to a file."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    workers: int

    @classmethod
    def start(
        cls, url: str, workers: int, log_path: Path, settings: Mapping[str, str]
    ) -> WorkerPool:
        """Every setting at its default except ``settings`` (the bench's environment is not passed)."""
        env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
        env.update(settings)
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


#: Jobs the tick enqueued that no worker has finished yet.
OPEN_JOBS = (
    "select count(*) from procrastinate.procrastinate_jobs where status in ('todo', 'doing')"
)


def _open_jobs(conn: psycopg.Connection[Any]) -> int:
    """Jobs still todo or doing, or 1 while any job waits.

    While jobs wait, one ordered lookup in procrastinate's index of todo jobs answers. A
    count over the whole table every poll cost ~40 ms of Postgres CPU per poll at 100,000
    jobs (~5 s per tick, all of it in ``pg_cpu_ms_per_run`` and taken from the workers'
    cores); the full count runs only once nothing waits, while the last batches finish.
    """
    waiting = conn.execute(
        "select 1 from procrastinate.procrastinate_jobs where status = 'todo'"
        " order by priority desc, id limit 1"
    ).fetchone()
    if waiting is not None:
        return 1
    return int(_one(conn, OPEN_JOBS))


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


def _phases_over_time(log: str, tick_at: datetime) -> list[dict[str, float]]:
    """Per throughput line (one worker, one ~10 s window): when, jobs, ms per batch phase.

    The worker logs a line every 10 s while busy and one at exit; its timestamp is the
    window's end (local clock of this machine, as the tick's). The windows are what the
    workers expose, so this is the finest per-phase series the bench has; the committed-
    runs ``timeline`` is finer (per 0.25 s, from the database).
    """
    out = []
    for m in _THROUGHPUT.finditer(log):
        if m["at"] is None:
            continue
        end = datetime.strptime(m["at"], "%Y-%m-%d %H:%M:%S,%f").astimezone()
        window = float(m["window"])
        end_s = (end - tick_at).total_seconds()
        out.append(
            {
                "from_s": round(end_s - window, 1),
                "to_s": round(end_s, 1),
                "jobs": int(m["jobs"]),
                **{p: float(m[p]) for p in ("claim", "load", "eval", "commit")},
            }
        )
    return sorted(out, key=lambda w: w["to_s"])


# -- one repetition ----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Stack:
    """What every repetition shares."""

    cluster: EmbeddedCluster
    postmaster: int
    mix: TraderMix
    workdir: Path
    #: Settings for the workers (``--worker-setting``), e.g. a batch size under trial.
    worker_settings: Mapping[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def _fresh_database(cluster: EmbeddedCluster, name: str, template: str) -> Iterator[str]:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
        admin.execute(f"create database {name} template {template}")
    try:
        yield cluster.url(name)
    finally:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f"drop database if exists {name} with (force)")


def _set_durability(cluster: EmbeddedCluster, durable: bool) -> None:
    """Durable: fsync, synchronous_commit and full_page_writes on (a reload suffices)."""
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            value = "on" if durable else "off"
            admin.execute(f"alter system set {setting} = {value}")
        admin.execute("select pg_reload_conf()")
        time.sleep(0.5)
        shown = [
            admin.execute(f"show {s}").fetchone()
            for s in ("fsync", "synchronous_commit", "full_page_writes")
        ]
        want = ("on",) if durable else ("off",)
        if any(v != want for v in shown):
            raise SystemExit(f"durability settings not applied: {shown}")


def _run_once(
    stack: Stack,
    workers: int,
    rep: int,
    timeout_s: float,
    variant: Variant,
    node: NodeBaseline | None,
) -> dict[str, Any]:
    """One tick of ``variant`` on a fresh copy; measures Node first unless given."""
    name = f"bench_e2e_w{workers}_r{rep}_{variant.name.replace('-', '_')}"
    _set_durability(stack.cluster, variant.durable)
    if variant.distinct and variant.steady:
        raise SystemExit(f"{variant.name}: no template has both own code texts and stored matches")
    template = (
        DISTINCT_TEMPLATE_DB
        if variant.distinct
        else STEADY_TEMPLATE_DB
        if variant.steady
        else TEMPLATE_DB
    )
    with _fresh_database(stack.cluster, name, template) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            if node is None:
                # Node right before the tick, so both see the same load on this machine.
                node = run_node_baseline(conn, stack.mix, stack.workdir)
            # Per-function time of the worker's SQL (read from pg_stat_user_functions).
            conn.execute(f"alter database {name} set track_functions = 'all'")
        pool = WorkerPool.start(url, workers, stack.workdir / f"{name}.log", stack.worker_settings)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                sample = _measure_tick(stack, conn, pool, timeout_s)
                pool.stop()  # the workers log their final throughput lines on the way out
                result = _collect(stack, conn, pool, sample, node)
                result["variant"] = variant.name
                result["_node"] = node  # reused by the repetition's other variants
                return result
        finally:
            pool.stop()


def _measure_tick(
    stack: Stack, conn: psycopg.Connection[Any], pool: WorkerPool, timeout_s: float
) -> TickSample:
    traders = stack.mix.traders
    # Every variant starts after a checkpoint: with full_page_writes on, the first change
    # of each page after it carries a full-page image, as after any production checkpoint.
    conn.execute("checkpoint")
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
        if _open_jobs(conn) == 0:
            break
        if pool.proc.poll() is not None:
            raise SystemExit(f"the worker pool exited:\n{pool.log_text()[-4000:]}")
        if time.perf_counter() - tick_started > timeout_s:
            raise SystemExit(f"{_one(conn, OPEN_JOBS)} jobs still open after {timeout_s:.0f}s")
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


def _timeline(conn: psycopg.Connection[Any], t0: Any) -> dict[str, list[list[float]]]:
    """Cumulative committed runs per tier (and ``all``) per 0.25 s since the tick."""
    rows = conn.execute(
        "select coalesce(ut.tier, 'free'),"
        " ceil(extract(epoch from r.finished_at - %(t0)s) / %(step)s) * %(step)s, count(*)"
        " from public.trader_runs r left join public.user_tiers ut on ut.user_id = r.user_id"
        " where r.slot = %(slot)s group by 1, 2 order by 2",
        {"t0": t0, "slot": TICK_AT, "step": TIMELINE_STEP_S},
    ).fetchall()
    out: dict[str, list[list[float]]] = {}
    totals: dict[str, int] = {}
    for tier, at, count in rows:
        for key in (tier, "all"):
            totals[key] = totals.get(key, 0) + int(count)
            series = out.setdefault(key, [[0.0, 0]])
            if series[-1][0] == float(at):
                series[-1][1] = totals[key]
            else:
                series.append([float(at), totals[key]])
    return out


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
    log = pool.log_text()
    split = _worker_split(log)
    timeline = _timeline(conn, t0)
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
        "heap_trims": log.count("filter heap trimmed:"),
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
        "wal_top_records_per_run": wal_records_per_run(
            stack.cluster.pgdata, before.wal_lsn, after.wal_lsn, runs
        ),
        "timeline": timeline,
        "phases_over_time": _phases_over_time(log, t0),
        "node_disagreements": disagreements,
        "node_version": node_baseline.node_version,
        "node_ms_per_trader": {
            f"{k}@{n}": round(v, 3) for (k, n), v in sorted(node_baseline.ms.items())
        },
    }


# -- the whole bench ---------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Measurements:
    """Every repetition's figures by worker count (``fast-first``) and, for the main worker
    count, by variant, with the mix."""

    mix: TraderMix
    template_s: float
    by_workers: dict[int, list[dict[str, Any]]]
    by_variant: dict[str, list[dict[str, Any]]]


def _build_distinct_template(cluster: EmbeddedCluster) -> None:
    """Build DISTINCT_TEMPLATE_DB: TEMPLATE_DB with a code text of its own per trader.

    Why: users write their own filters, so a worker meets as many code texts as traders.
    V8 shares compiled code, type feedback and optimized code between closures of one
    source text; with 12 texts over thousands of traders every filter is hot, with one
    text per trader each is compiled, warmed up and kept on its own (docs/benchmarks.md).
    The code gains a last comment line naming the trader, which changes no result (the
    Node baseline's matches are checked against these runs like any other). Triggers are
    off for the update (replication role), so no first runs are queued and nothing else
    changes; VACUUM FULL then leaves the table as compact as the other templates'.
    """
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {DISTINCT_TEMPLATE_DB} with (force)")
        admin.execute(f"create database {DISTINCT_TEMPLATE_DB} template {TEMPLATE_DB}")
    with psycopg.connect(cluster.url(DISTINCT_TEMPLATE_DB), autocommit=True) as conn:
        with conn.transaction():
            conn.execute("set local session_replication_role = replica")
            changed = conn.execute(
                "update public.traders set filter = jsonb_set(filter, '{code}',"
                " to_jsonb((filter ->> 'code') || E'\\n// own copy of trader ' || id::text))"
            ).rowcount
        conn.execute("vacuum full analyze public.traders")
        conn.execute("checkpoint")
    _log(f"distinct template: {changed} traders with a code text of their own")


def _prime_steady_template(stack: Stack, workers: int, timeout_s: float) -> None:
    """Build STEADY_TEMPLATE_DB: TEMPLATE_DB with the match states one real tick leaves.

    One unmeasured tick runs on a scratch copy; its stored matches are copied into the
    steady template at each trader's previous slot. One trader in STEADY_EDGE_EVERY then
    loses its last stored symbol, so the measured tick has some real edges (one signal
    each) while every other trader matches exactly what it matched before.
    """
    cluster = stack.cluster
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {STEADY_TEMPLATE_DB} with (force)")
        admin.execute(f"create database {STEADY_TEMPLATE_DB} template {TEMPLATE_DB}")
    with _fresh_database(cluster, "bench_e2e_prime", TEMPLATE_DB) as url:
        pool = WorkerPool.start(
            url, workers, stack.workdir / "bench_e2e_prime.log", stack.worker_settings
        )
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                _measure_tick(stack, conn, pool, timeout_s)
                states = conn.execute(
                    "select trader_id, symbols from public.trader_matches order by trader_id"
                ).fetchall()
        finally:
            pool.stop()
    with psycopg.connect(cluster.url(STEADY_TEMPLATE_DB), autocommit=True) as conn:
        with conn.transaction():
            conn.execute("create temp table primed (trader_id uuid, symbols text[])")
            with conn.cursor().copy("copy primed from stdin") as copy:
                for i, (trader_id, symbols) in enumerate(states):
                    if i % STEADY_EDGE_EVERY == 0 and symbols:
                        symbols = symbols[:-1]
                    copy.write_row((trader_id, symbols))
            conn.execute(
                "update public.trader_matches m set symbols = p.symbols"
                " from primed p where p.trader_id = m.trader_id"
            )
        conn.execute("vacuum analyze")
        conn.execute("checkpoint")
    _log(f"steady template: {len(states)} match states from one unmeasured tick")


def measure(
    traders: int,
    worker_counts: Sequence[int],
    repeat: int,
    *,
    variants: Sequence[Variant] = VARIANTS[:1],
    timeout_s: float | None = None,
    log_dir: Path | None = None,
    commit_function: Path | None = None,
    worker_settings: Mapping[str, str] | None = None,
) -> Measurements:
    """Build the stack once, then ``repeat`` repetitions per worker count.

    The last worker count is the main one: each of its repetitions runs every variant
    (Node measured once per repetition, before the first); the others run ``fast-first``.
    ``log_dir``: copy the worker logs (one file per repetition) there before cleaning up.
    ``commit_function``: a file whose backend.commit_trader_runs replaces the migrated one.
    ``worker_settings``: environment settings for every worker pool (before/after of a setting).
    """
    timeout = timeout_s or max(600.0, traders / 20)
    results: dict[int, list[dict[str, Any]]] = {}
    by_variant: dict[str, list[dict[str, Any]]] = {}
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
        if commit_function is not None:
            with psycopg.connect(cluster.url(TEMPLATE_DB), autocommit=True) as conn:
                replace_commit_function(conn, commit_function)
        template_s = time.perf_counter() - started
        _log(f"template: {traders} traders + snapshot in {template_s:.1f}s")
        stack = Stack(
            cluster=cluster,
            postmaster=postmaster,
            mix=mix,
            workdir=tmp,
            worker_settings=dict(worker_settings or {}),
        )
        main_workers = worker_counts[-1]
        if any(v.steady for v in variants):
            _set_durability(cluster, False)
            _prime_steady_template(stack, main_workers, timeout)
        if any(v.distinct for v in variants):
            _build_distinct_template(cluster)
        for workers in worker_counts:
            for rep in range(repeat):
                node: NodeBaseline | None = None
                for variant in variants if workers == main_workers else VARIANTS[:1]:
                    result = _run_once(stack, workers, rep, timeout, variant, node)
                    node = result.pop("_node")
                    if variant == VARIANTS[0]:
                        results.setdefault(workers, []).append(result)
                    if workers == main_workers:
                        by_variant.setdefault(variant.name, []).append(result)
                    _log(
                        f"W={workers} rep {rep + 1}/{repeat} {variant.name}: "
                        f"wall {result['wall_s']}s, {result['runs_per_s']} runs/s, "
                        f"cpu {result['cpu_ms_per_run']} ms/run "
                        f"(+pg {result['pg_cpu_ms_per_run']}), "
                        f"wal {result['wal_bytes_per_run']} B/run, "
                        f"signals {result['signals_per_run']}/run, lag p50 "
                        f"{result['p50_lag_s']}s p99 {result['p99_lag_s']}s, node "
                        f"{result['node_runs_per_s_per_core']} runs/s/core, ratio/core "
                        f"{result['ratio_vs_node_per_core']}"
                    )
    finally:
        cluster.stop()
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            for log in tmp.glob("*.log"):
                shutil.copy(log, log_dir / log.name)
        shutil.rmtree(tmp, ignore_errors=True)
    return Measurements(mix=mix, template_s=template_s, by_workers=results, by_variant=by_variant)


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
    # Series are not averaged: they come from the repetition with the median wall time.
    middle = sorted(reps, key=lambda r: r["wall_s"])[len(reps) // 2]
    for key in keys:
        series = key in ("timeline", "phases_over_time")
        out[key] = middle[key] if series else _median([r[key] for r in reps])
    out["range"] = {
        k: [min(r[k] for r in reps), max(r[k] for r in reps)]
        for k in ("wall_s", "runs_per_s", "cpu_ms_per_run", "pg_cpu_ms_per_run",
                  "total_cpu_ms_per_run", "wal_bytes_per_run", "p50_lag_s", "p99_lag_s",
                  "node_runs_per_s_per_core", "ratio_vs_node_per_core", "rss_mb_per_worker")
    }  # fmt: skip
    out["node_disagreements"] = sorted({d for r in reps for d in r["node_disagreements"]})
    return out
