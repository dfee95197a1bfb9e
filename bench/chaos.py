"""Fault injection against the embedded stack: do runs survive kill -9, a Postgres
restart, a frozen worker, poison jobs and a misbehaving exchange? (`make chaos`)

Everything runs on loopback: a throwaway embedded Postgres (fsync off), the exchange
simulator, and real `traderctl worker` processes. Each scenario gets a fresh copy of a
template database (N always-matching traders, market data from one refresh against the
simulator), queues one slot for every trader, injects its fault while the workers are
busy, and waits (bounded) for the queue to drain. Then it counts, from the database:

* lost runs: valid (trader, slot) jobs without a run;
* duplicate runs: (trader, slot) pairs with more than one run;
* duplicate signals: signals beyond the first per (trader, symbol) (the filter always
  matches, so the edge trigger allows exactly one);
* recovery: seconds from the fault to the last job finished.

All counts must be 0; recovery time is what varies. Usage:
``python -m bench.chaos [--traders N] [--scenarios kill9,pg_restart,...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from bench._bench_users import create_bench_users
from traderctl.worker.local.embedded_pg import EmbeddedCluster
from traderctl.worker.local.exchange_sim import ExchangeSimulator
from traderctl.worker.local.sim_faults import FaultRule
from traderctl.worker.market.binance_client import BinanceClient
from traderctl.worker.market.limits import WeightBudget
from traderctl.worker.market.refresher import MarketDataOptions, MarketDataRefresher
from traderctl.worker.migrate import migrate

TRADERCTL = Path(sys.executable).with_name("traderctl")
TEMPLATE = "chaos_template"
UNIVERSE = 20
#: Fast recovery settings, as the acceptance tests use.
WORKER_ENV = {
    "TRADERCTL_WORKER_HEARTBEAT_SECONDS": "1",
    "TRADERCTL_WORKER_STALLED_SECONDS": "3",
    "TRADERCTL_WORKER_RECOVERY_SECONDS": "1",
    "TRADERCTL_WORKER_POLL_MS": "200",
    "TRADERCTL_WORKER_DATA_WAIT_MS": "0",
    "TRADERCTL_WORKER_RETRY_BASE_SECONDS": "1",
    "TRADERCTL_WORKER_SHUTDOWN_GRACE_SECONDS": "10",
    "TRADERCTL_FILTER_TIMEOUT_MS": "2000",
}
#: Each scenario must drain within this (the whole run stays well under 10 minutes).
DRAIN_SECONDS = 90.0
#: A filter that matches everything, with a little work so batches are in flight.
CODE = "const t = Date.now(); while (Date.now() - t < 2) {} return true;"


@dataclass(kw_only=True)
class Outcome:
    scenario: str
    jobs: int
    lost_runs: int
    duplicate_runs: int
    duplicate_signals: int
    recovery_seconds: float
    note: str = ""

    def line(self) -> str:
        return (
            f"{self.scenario:<15} jobs={self.jobs:<5} lost_runs={self.lost_runs} "
            f"duplicate_runs={self.duplicate_runs} duplicate_signals={self.duplicate_signals} "
            f"recovery={self.recovery_seconds:.1f}s {self.note}"
        ).rstrip()


def _with_db(url: str, name: str) -> str:
    return make_conninfo(url, dbname=name)


async def _refresh(conn: psycopg.Connection[Any], sim: ExchangeSimulator) -> str:
    options = MarketDataOptions(universe_size=UNIVERSE, intervals=("1m",), klines_limit=60)
    async with BinanceClient(
        sim.base_url, budget=WeightBudget(3000), concurrency=4, timeout_s=2.0
    ) as client:
        refresher = MarketDataRefresher(conn, client, options, clock=lambda: sim.now_ms() / 1000)
        result = await refresher.refresh(full=True)
    return str(result.status)


def build_template(admin_url: str, sim: ExchangeSimulator, traders: int) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(TEMPLATE)))
    with psycopg.connect(_with_db(admin_url, TEMPLATE), autocommit=True) as conn:
        migrate(conn)
        conn.execute(
            "update backend.rollout_settings set default_mode = 'server', fallback_enabled = false"
        )
        status = asyncio.run(_refresh(conn, sim))
        if status != "ok":
            raise SystemExit(f"market-data refresh for the chaos template failed: {status}")
        with conn.transaction():
            conn.execute("set local traderctl.skip_first_run = 'on'")
            create_bench_users(conn, free=0, pro=0, elite=max(1, traders // 20))
            conn.execute(
                "insert into public.traders (user_id, name, enabled, filter)"
                " select u.id, 'chaos#' || g, true,"
                "  jsonb_build_object('code', %s::text, 'refreshInterval', '1m')"
                " from generate_series(1, %s) g"
                " join bench_users u on u.n = 1 + g %% (select count(*) from bench_users)",
                (CODE, traders),
            )
        conn.execute("select backend.refresh_trader_modes()")


@contextmanager
def scenario_db(admin_url: str, name: str) -> Iterator[str]:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE)
            )
        )
    try:
        yield _with_db(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


class Workers:
    """`traderctl worker` subprocesses, each in its own process group."""

    def __init__(self, db_url: str, log_dir: Path) -> None:
        self.db_url = db_url
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADER")}
        env |= {"DATABASE_URL": self.db_url, **WORKER_ENV}
        log = self.log_dir / f"worker-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(TRADERCTL), "worker", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        deadline = time.monotonic() + 30
        while "ready: id" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def enqueue_slots(conn: psycopg.Connection[Any], slots: list[datetime]) -> list[int]:
    ids: list[int] = []
    traders = [r[0] for r in conn.execute("select id from public.traders order by id")]
    for slot in slots:
        rows = conn.execute(
            "select job_id from backend.enqueue_trader_runs(%s::uuid[], %s::text[],"
            " %s::timestamptz[], %s::integer[])",
            (traders, ["1m"] * len(traders), [slot] * len(traders), [3] * len(traders)),
        ).fetchall()
        ids += [r[0] for r in rows]
    return ids


def drained(conn: psycopg.Connection[Any], ids: list[int]) -> bool:
    row = conn.execute(
        "select count(*) from procrastinate.procrastinate_jobs"
        " where id = any(%s) and status not in ('succeeded', 'failed')",
        (ids,),
    ).fetchone()
    return row is not None and row[0] == 0


def wait_drained(db_url: str, ids: list[int]) -> None:
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        try:
            with psycopg.connect(db_url, autocommit=True, connect_timeout=2) as conn:
                if drained(conn, ids):
                    return
        except psycopg.OperationalError:
            pass  # the database is restarting
        if time.monotonic() > deadline:
            raise SystemExit(f"queue did not drain within {DRAIN_SECONDS:.0f}s")
        time.sleep(0.2)


def count(conn: psycopg.Connection[Any], scenario: str, ids: list[int], since: float) -> Outcome:
    def one(query: str, *params: Any) -> int:
        row = conn.execute(query, params).fetchone()
        return int(row[0] or 0) if row else 0

    return Outcome(
        scenario=scenario,
        jobs=len(ids),
        lost_runs=one(
            "select count(*) from procrastinate.procrastinate_jobs j"
            " where j.id = any(%s) and not exists (select 1 from public.trader_runs r"
            "  where r.trader_id = (j.args ->> 'trader_id')::uuid"
            "  and r.slot = (j.args ->> 'slot')::timestamptz)",
            ids,
        ),
        duplicate_runs=one(
            "select coalesce(sum(n - 1), 0) from (select count(*) n from public.trader_runs"
            " group by trader_id, slot) x"
        ),
        duplicate_signals=one(
            "select coalesce(sum(n - 1), 0) from (select count(*) n from public.signals"
            " group by trader_id, symbol) x"
        ),
        recovery_seconds=time.monotonic() - since,
    )


def run_scenario(
    name: str,
    admin_url: str,
    log_root: Path,
    fault: Callable[[Workers, psycopg.Connection[Any], str], str],
    *,
    workers: int = 2,
) -> Outcome:
    log_dir = log_root / name
    log_dir.mkdir(parents=True)
    with scenario_db(admin_url, f"chaos_{name}") as db_url:
        procs = Workers(db_url, log_dir)
        try:
            for _ in range(workers):
                procs.start()
            with psycopg.connect(db_url, autocommit=True) as conn:
                base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
                ids = enqueue_slots(conn, [base])
                time.sleep(0.5)  # batches in flight
                since = time.monotonic()
                note = fault(procs, conn, db_url)
            wait_drained(db_url, ids)
            finished = time.monotonic()
            with psycopg.connect(db_url, autocommit=True) as conn:
                outcome = count(conn, name, ids, since)
            outcome.recovery_seconds = finished - since
            outcome.note = note
            return outcome
        finally:
            procs.stop_all()


# -- the faults ---------------------------------------------------------------------------
def kill9(procs: Workers, conn: psycopg.Connection[Any], db_url: str) -> str:
    os.killpg(procs.procs[0].pid, signal.SIGKILL)
    procs.procs[0].wait(5)
    procs.start()
    return "(one worker killed -9 mid-batch, a new one started)"


def make_pg_restart(cluster: EmbeddedCluster) -> Callable[[Workers, Any, str], str]:
    def pg_restart(procs: Workers, conn: psycopg.Connection[Any], db_url: str) -> str:
        conn.close()
        cluster.stop()
        time.sleep(1.0)
        cluster.start()
        alive = sum(1 for p in procs.procs if p.poll() is None)
        return f"(Postgres stopped 1 s and restarted; {alive}/{len(procs.procs)} workers alive)"

    return pg_restart


def freeze(procs: Workers, conn: psycopg.Connection[Any], db_url: str) -> str:
    frozen = procs.procs[0]
    os.killpg(frozen.pid, signal.SIGSTOP)
    time.sleep(6.0)  # past the stalled timeout: its jobs go to the other worker
    os.killpg(frozen.pid, signal.SIGCONT)
    time.sleep(2.0)
    state = "alive" if frozen.poll() is None else f"exited {frozen.returncode}"
    return f"(one worker frozen 6 s then resumed: {state})"


def poison(procs: Workers, conn: psycopg.Connection[Any], db_url: str) -> str:
    bad = ["[1, 2]", '"x"', "null", json.dumps({"trader_id": "nope", "slot": "soon"})]
    ids = []
    for args in bad:
        row = conn.execute(
            "insert into procrastinate.procrastinate_jobs"
            " (queue_name, task_name, priority, lock, args, status)"
            " values ('traders.1m', 'run_trader', 9, %s, %s::jsonb, 'todo') returning id",
            (f"poison:{uuid.uuid4()}", args),
        ).fetchone()
        assert row is not None
        ids.append(row[0])
    deadline = time.monotonic() + 20
    while not drained(conn, ids) and time.monotonic() < deadline:
        time.sleep(0.1)
    failed = conn.execute(
        "select count(*) from procrastinate.procrastinate_jobs"
        " where id = any(%s) and status = 'failed' and attempts = 1",
        (ids,),
    ).fetchone()
    alive = sum(1 for p in procs.procs if p.poll() is None)
    return (
        f"({failed[0] if failed else 0}/{len(ids)} poison jobs failed alone; {alive} workers alive)"
    )


def make_exchange_fault(sim: ExchangeSimulator) -> Callable[[Workers, Any, str], str]:
    def exchange_fault(procs: Workers, conn: psycopg.Connection[Any], db_url: str) -> str:
        symbol = sim.symbol_names()[0]
        sim.set_faults(rules=[FaultRule(endpoint="klines", symbol=symbol, status=500)])
        try:
            with psycopg.connect(db_url, autocommit=True) as md:
                status = asyncio.run(_refresh(md, sim))
        finally:
            sim.clear_faults()
        return f"(refresh against a failing exchange: {status}; workers ran on)"

    return exchange_fault


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traders", type=int, default=600)
    parser.add_argument("--scenarios", default="kill9,pg_restart,freeze,poison,exchange_fault")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="traderctl-chaos-"))
    root.chmod(0o755)
    cluster = EmbeddedCluster(root / "cluster", db_name="chaos", fast=True)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    try:
        cluster.start()
        admin_url = cluster.url("postgres")
        with ExchangeSimulator(seed=1, symbols=UNIVERSE + 5) as sim:
            build_template(admin_url, sim, args.traders)
            faults: dict[str, Callable[[Workers, Any, str], str]] = {
                "kill9": kill9,
                "pg_restart": make_pg_restart(cluster),
                "freeze": freeze,
                "poison": poison,
                "exchange_fault": make_exchange_fault(sim),
            }
            for name in args.scenarios.split(","):
                outcome = run_scenario(name, admin_url, root / "logs", faults[name])
                outcomes.append(outcome)
                print(outcome.line(), flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    bad = [o for o in outcomes if o.lost_runs or o.duplicate_runs or o.duplicate_signals]
    print(
        f"{len(outcomes)} scenarios in {time.monotonic() - started:.0f}s; {len(bad)} with losses or duplicates"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
