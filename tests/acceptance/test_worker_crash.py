"""Crash safety: kill -9, the commit/completion window, lost connections, process pools.

Invariant checked everywhere: each (trader, slot) has exactly one run, and each trader's
signals are exactly its edge-triggered matches, once, whatever was killed when.
"""

from __future__ import annotations

import json
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user, publish_market
from tests.worker_support import (
    KEEP_JOBS,
    SLOW_ENV,
    SLOW_MATCH,
    SYMBOLS,
    base_slot,
    enqueue,
    job_statuses,
    signals_of,
    trader_job_statuses,
    trader_jobs_done,
    wait_until,
    worker_procs,
)
from traderctl.worker import queries
from traderctl.worker.queue.contract import trader_queue

pytestmark = pytest.mark.slow


def assert_exactly_once(conn: psycopg.Connection[Any], traders: list[Any], slots: int) -> None:
    for trader in traders:
        runs = conn.execute(
            "select count(*), count(distinct slot) from public.trader_runs where trader_id = %s",
            (trader,),
        ).fetchone()
        assert runs == (slots, slots)
        # Always matching every symbol: signals only on the first run, once each.
        assert sorted(s for _, s in signals_of(conn, trader)) == SYMBOLS
    dups = conn.execute(
        "select count(*) from (select trader_id, slot, symbol from public.signals"
        " group by 1, 2, 3 having count(*) > 1) d"
    ).fetchone()
    assert dups == (0,)


def test_kill_9_during_evaluation_is_recovered(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = base_slot()
    publish_market(conn, dict.fromkeys(SYMBOLS, 150.0), closed_through=slot)
    user = make_user(conn, tier="elite")
    traders = [make_trader(conn, user_id=user, code=SLOW_MATCH, name=f"t{i}") for i in range(6)]
    with worker_procs(db_url, tmp_path) as procs:
        victim = procs.start(env={**SLOW_ENV, **KEEP_JOBS})
        jobs = [enqueue(conn, t, slot) for t in traders]
        # A trader job, not a maintenance task's job the worker defers at startup.
        wait_until(lambda: "doing" in trader_job_statuses(conn).values(), timeout=10, step=0.02)
        time.sleep(0.1)  # inside V8 now
        procs.kill9(victim)
        stuck = [j for j, s in trader_job_statuses(conn).items() if s == "doing"]
        assert stuck, "the kill should leave claimed jobs behind"

        started = time.monotonic()
        rescuer = procs.start(env={**SLOW_ENV, **KEEP_JOBS})
        wait_until(lambda: trader_jobs_done(conn, jobs), timeout=40)
        recovered_in = time.monotonic() - started
        assert procs.stop(rescuer) == 0
    assert recovered_in < 30  # stalled after 3 s, recovery every 1 s (tests' settings)
    assert_exactly_once(conn, traders, 1)
    attempts = conn.execute(
        "select max(attempts) from procrastinate.procrastinate_jobs where id = any(%s)", (stuck,)
    ).fetchone()
    assert attempts is not None and attempts[0] >= 2  # counted: the crash, then the run


def test_crash_between_commit_and_job_completion(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """The state procrastinate's own worker leaves when killed after the task committed its
    run but before it marked the job finished: run written, job still 'doing' on a dead
    worker. (The batch worker commits both in one transaction, so it has no such window.)"""
    slot = base_slot()
    publish_market(conn, dict.fromkeys(SYMBOLS, 150.0), closed_through=slot)
    trader = make_trader(conn, user_id=make_user(conn, tier="elite"), code="return true;")
    job = enqueue(conn, trader, slot)
    dead = conn.execute(queries.get("register_worker")).fetchone()
    assert dead is not None
    claimed = conn.execute(
        queries.get("claim_trader_jobs"),
        {"queues": [trader_queue("1m")], "worker_id": dead[0], "limit": 1},
    ).fetchall()
    assert [r[0] for r in claimed] == [job]
    record = {
        "job_id": job,
        "trader_id": str(trader),
        "slot": slot.isoformat(),
        "interval": "1m",
        "status": "ok",
        "started_at": slot.isoformat(),
        "duration_ms": 1.0,
        "symbols_evaluated": 4,
        "symbol_errors": 0,
        "matches": SYMBOLS,
        "prices": {},
        "data_as_of": slot.isoformat(),
        "data_age_ms": 0,
    }
    conn.execute(
        queries.get("commit_trader_runs"),
        {
            "runs": json.dumps([record]),
            "worker": "dead",
            "disable_after": 10,
            "worker_id": None,  # procrastinate's task leaves the job to procrastinate
            "finish_job_ids": [],
            "delete_jobs": False,
        },
    )
    conn.execute(
        "update procrastinate.procrastinate_workers set last_heartbeat = now() - interval '1 hour'"
    )
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start()
        wait_until(lambda: trader_jobs_done(conn, [job]), timeout=20)
        assert procs.stop(w) == 0
    assert job not in job_statuses(conn)  # committed, and deleted with the commit
    assert_exactly_once(conn, [trader], 1)


def test_repeated_kill_9_loses_and_duplicates_nothing(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """Kill workers at random moments (claim, evaluation, commit) while two more slots'
    worth of jobs flow; then let a healthy worker finish. Exactly once, every time."""
    slot = base_slot()
    publish_market(conn, dict.fromkeys(SYMBOLS, 150.0), closed_through=slot)
    user = make_user(conn, tier="elite")
    fast_match = "const t = Date.now(); while (Date.now() - t < 5) {} return true;"
    traders = [make_trader(conn, user_id=user, code=fast_match, name=f"t{i}") for i in range(30)]
    rng = random.Random(6)
    jobs: list[int] = []
    env = {"TRADERCTL_WORKER_BATCH_SIZE": "8", "TRADERCTL_FILTER_TIMEOUT_MS": "5000"}
    with worker_procs(db_url, tmp_path) as procs:
        for round_ in range(2):
            s = slot + timedelta(minutes=round_)
            jobs += [enqueue(conn, t, s, queueing_lock=round_ == 0) for t in traders]
            for _ in range(3):
                victim = procs.start(env=env)
                time.sleep(rng.uniform(0.05, 0.6))
                procs.kill9(victim)
        healthy = procs.start(env=env)
        wait_until(lambda: trader_jobs_done(conn, jobs), timeout=60)
        assert procs.stop(healthy) == 0
    assert_exactly_once(conn, traders, 2)


def test_lost_database_connections_reconnect(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = base_slot()
    publish_market(conn, dict.fromkeys(SYMBOLS, 150.0), closed_through=slot)
    trader = make_trader(conn, user_id=make_user(conn, tier="elite"), code="return true;")
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start()
        first = enqueue(conn, trader, slot)
        wait_until(lambda: trader_jobs_done(conn, [first]))
        # What a database restart does to the worker: every connection dies at once.
        for _ in range(2):
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = current_database() and pid <> pg_backend_pid()"
            )
            time.sleep(0.3)
        second = enqueue(conn, trader, slot + timedelta(minutes=1))
        wait_until(lambda: trader_jobs_done(conn, [second]), timeout=30)
        assert w.poll() is None, "the worker must survive, not crash-loop"
        assert procs.stop(w) == 0
        assert "reconnecting" in procs.log(w)
    assert_exactly_once(conn, [trader], 2)


def test_pool_of_processes_shares_the_queue(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = base_slot()
    publish_market(conn, dict.fromkeys(SYMBOLS, 150.0), closed_through=slot)
    user = make_user(conn, tier="elite")
    slow = "const t = Date.now(); while (Date.now() - t < 3) {} return true;"
    traders = [make_trader(conn, user_id=user, code=slow, name=f"t{i}") for i in range(60)]
    with worker_procs(db_url, tmp_path) as procs:
        pool = procs.start("--concurrency", "2", env={"TRADERCTL_WORKER_BATCH_SIZE": "4"})
        wait_until(lambda: procs.log(pool).count("ready: id") >= 2, timeout=30)
        jobs = [enqueue(conn, t, slot) for t in traders]
        wait_until(lambda: trader_jobs_done(conn, jobs), timeout=40)
        assert procs.stop(pool) == 0
    workers = conn.execute(
        "select count(distinct split_part(worker, '#', 1)) from public.trader_runs"
    ).fetchone()
    assert workers == (2,)
    assert_exactly_once(conn, traders, 1)
