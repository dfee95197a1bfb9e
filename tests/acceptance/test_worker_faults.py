"""Fault containment with real worker processes: one bad job or one frozen, killed or
orphaned worker never costs anyone else their run.

* a malformed job fails alone; its batch-mates commit on the first attempt;
* a worker frozen (SIGSTOP) mid-commit does not hold up the recovery of a killed
  worker's jobs; a worker frozen past the stalled timeout resumes without crashing and
  without committing the jobs it lost;
* a pool's children stop within seconds when the parent is killed, and a SIGTERM to the
  whole process group gets the full grace period; a parent-death signal the kernel repeats
  is still one graceful stop, and a forced exit leaves no worker row behind;
* a trader needing a timeframe the market data does not publish gets an error run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
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
    WorkerProcs,
    base_slot,
    enqueue,
    enqueue_raw,
    job_rows,
    process_gone,
    slot_text,
    trader_jobs_done,
    wait_until,
    worker_procs,
)
from traderctl.worker.runner.lifeline import PARENT_DEATH_SIGNAL

pytestmark = pytest.mark.slow


def runs_per_slot(conn: psycopg.Connection[Any], traders: list[uuid.UUID]) -> dict[Any, int]:
    rows = conn.execute(
        "select trader_id, slot, count(*) from public.trader_runs where trader_id = any(%s)"
        " group by 1, 2",
        (traders,),
    ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


def doing_jobs(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute(
        "select id from procrastinate.procrastinate_jobs where status = 'doing' order by id"
    ).fetchall()
    return [r[0] for r in rows]


# -- 1. poison jobs ---------------------------------------------------------------------
def test_malformed_jobs_fail_alone_and_their_batch_mates_commit_first_time(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = base_slot()
    publish_market(conn, dict.fromkeys(SYMBOLS, 150.0), closed_through=slot)
    user = make_user(conn, tier="elite")
    traders = [make_trader(conn, user_id=user, name=f"t{i}") for i in range(20)]
    good = [enqueue(conn, t, slot) for t in traders]
    tid, s = str(uuid.uuid4()), slot_text(slot)
    poison = {
        enqueue_raw(conn, "[1, 2]"): "are a JSON list, not an object",
        enqueue_raw(conn, '"x"'): "are a JSON str, not an object",
        enqueue_raw(conn, "7"): "are a JSON int, not an object",
        enqueue_raw(conn, "null"): "are a JSON NoneType, not an object",
        enqueue_raw(conn, "true"): "are a JSON bool, not an object",
        enqueue_raw(conn, json.dumps({"trader_id": tid})): "missing slot",
        enqueue_raw(conn, json.dumps({"trader_id": tid, "slot": s, "x": 1})): "unexpected x",
        enqueue_raw(conn, json.dumps({"trader_id": "nope", "slot": s})): "is not a UUID",
        enqueue_raw(conn, json.dumps({"trader_id": tid, "slot": "soon"})): "not an ISO-8601",
        enqueue_raw(
            conn, json.dumps({"trader_id": tid, "slot": slot_text(slot + timedelta(seconds=30))})
        ): "not on a minute boundary",
        enqueue_raw(conn, json.dumps({"trader_id": tid, "slot": s}), task="drop_tables"): (
            "task 'drop_tables' is not 'run_trader'"
        ),
    }
    assert len(good) + len(poison) <= 32  # one batch
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start(env={"TRADERCTL_WORKER_BATCH_SIZE": "32", **KEEP_JOBS})
        wait_until(lambda: trader_jobs_done(conn, good + list(poison)), timeout=20)
        assert w.poll() is None, "a malformed job must not take its worker down"
        log = procs.log(w)
        assert procs.stop(w) == 0
    rows = job_rows(conn, good + list(poison))
    assert {rows[j] for j in good} == {("succeeded", 1)}  # first attempt
    assert {rows[j] for j in poison} == {("failed", 1)}  # never retried
    for job, problem in poison.items():
        line = next((ln for ln in log.splitlines() if f"job {job} on traders.1m" in ln), "")
        assert "is malformed" in line and problem in line, (job, problem, log)
    assert "Traceback" not in log
    assert set(runs_per_slot(conn, traders).values()) == {1}
    events = conn.execute(
        "select count(*) from procrastinate.procrastinate_events"
        " where job_id = any(%s) and type = 'failed'",
        (list(poison),),
    ).fetchone()
    assert events == (len(poison),)


# -- 2. frozen workers ------------------------------------------------------------------
def _commit_waiting_on_lock(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "select count(*) from pg_stat_activity where datname = current_database()"
        " and wait_event_type = 'Lock' and query like '%%commit%%trader_runs%%'"
    ).fetchone()
    return row is not None and row[0] > 0


def test_killed_workers_jobs_recover_in_time_while_another_is_frozen_mid_commit(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = base_slot()
    publish_market(conn, dict.fromkeys(SYMBOLS, 150.0), closed_through=slot, intervals=("1m", "5m"))
    user = make_user(conn, tier="elite")
    frozen_trader = make_trader(conn, user_id=user, interval="5m", name="frozen")
    doomed = [make_trader(conn, user_id=user, code=SLOW_MATCH, name=f"d{i}") for i in range(4)]
    with worker_procs(db_url, tmp_path) as procs:
        a = procs.start("--intervals", "5m", "--name", "frozen", "--no-maintenance", env=KEEP_JOBS)
        # Hold the trader's stats row (what a commit locks) so A's commit stops inside its
        # transaction, then freeze A.
        blocker = psycopg.connect(db_url)
        blocker.execute(
            "select 1 from public.trader_stats where trader_id = %s for update", (frozen_trader,)
        )
        first = enqueue(conn, frozen_trader, slot, interval="5m")
        wait_until(lambda: _commit_waiting_on_lock(conn), timeout=20)
        os.kill(a.pid, signal.SIGSTOP)
        try:
            blocker.commit()  # A's statement can now finish; A itself cannot answer
            blocker.close()
            c = procs.start("--intervals", "1m", env={**SLOW_ENV, **KEEP_JOBS})
            jobs = [enqueue(conn, t, slot) for t in doomed]
            wait_until(lambda: doing_jobs(conn), timeout=10, step=0.02)
            procs.kill9(c)
            started = time.monotonic()
            b = procs.start("--intervals", "1m", env={**SLOW_ENV, **KEEP_JOBS})
            # Normal recovery: stalled after 3 s, looked for every 1 s, then ~1 s of work.
            wait_until(lambda: trader_jobs_done(conn, jobs), timeout=30)
            recovered_in = time.monotonic() - started
            assert job_rows(conn, jobs).keys() == set(jobs)
        finally:
            os.kill(a.pid, signal.SIGCONT)
        assert recovered_in < 15, recovered_in
        # A carries on after its pause.
        second = enqueue(conn, frozen_trader, slot + timedelta(minutes=5), interval="5m")
        wait_until(lambda: trader_jobs_done(conn, [first, second]), timeout=30)
        assert a.poll() is None and "Traceback" not in procs.log(a)
        assert procs.stop(b) == 0
        assert procs.stop(a) == 0
    counts = runs_per_slot(conn, [*doomed, frozen_trader])
    assert len(counts) == len(doomed) + 2 and set(counts.values()) == {1}
    assert {s for s, _ in job_rows(conn, [*jobs, first, second]).values()} == {"succeeded"}


def test_worker_frozen_past_the_stalled_timeout_resumes_without_crash_or_double_commit(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = base_slot()
    publish_market(conn, dict.fromkeys(SYMBOLS, 150.0), closed_through=slot)
    user = make_user(conn, tier="elite")
    slower = "const t = Date.now(); while (Date.now() - t < 150) {} return true;"
    traders = [make_trader(conn, user_id=user, code=slower, name=f"t{i}") for i in range(8)]
    with worker_procs(db_url, tmp_path) as procs:
        a = procs.start("--name", "frozen", env={**SLOW_ENV, **KEEP_JOBS})
        jobs = [enqueue(conn, t, slot) for t in traders]
        wait_until(lambda: doing_jobs(conn), timeout=10, step=0.02)
        time.sleep(0.2)  # inside V8 now
        os.kill(a.pid, signal.SIGSTOP)
        try:
            lost = doing_jobs(conn)
            assert lost
            b = procs.start("--name", "rescuer", env={**SLOW_ENV, **KEEP_JOBS})
            wait_until(lambda: trader_jobs_done(conn, jobs), timeout=40)
        finally:
            os.kill(a.pid, signal.SIGCONT)
        # A finishes the batch it was evaluating, finds it taken over, and goes on.
        wait_until(lambda: "taken over" in procs.log(a), timeout=15)
        more = [enqueue(conn, t, slot + timedelta(minutes=1)) for t in traders]
        wait_until(lambda: trader_jobs_done(conn, more), timeout=40)
        assert a.poll() is None, procs.log(a)
        log = procs.log(a)
        assert "Traceback" not in log and "ForeignKeyViolation" not in log
        assert "registered again" in log
        assert procs.stop(b) == 0
        assert procs.stop(a) == 0
    counts = runs_per_slot(conn, traders)
    assert len(counts) == 2 * len(traders) and set(counts.values()) == {1}
    lost_by = conn.execute(
        "select distinct split_part(r.worker, '#', 1) from public.trader_runs r"
        " join procrastinate.procrastinate_jobs j on (j.args ->> 'trader_id')::uuid = r.trader_id"
        " and (j.args ->> 'slot')::timestamptz = r.slot where j.id = any(%s)",
        (lost,),
    ).fetchall()
    assert lost_by == [("rescuer",)]  # the frozen worker wrote none of the jobs it lost


# -- 3. process supervision -------------------------------------------------------------
def _child_pids(log: str) -> list[int]:
    return [int(p) for p in re.findall(r"started worker process \d+ \(pid (\d+)\)", log)]


def _registered_workers(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select count(*) from procrastinate.procrastinate_workers").fetchone()
    assert row is not None
    return int(row[0])


def _slow_batches_in_flight(
    conn: psycopg.Connection[Any], procs: WorkerProcs, concurrency: int
) -> tuple[subprocess.Popen[bytes], list[int], list[int]]:
    """A worker (or pool) with batches of 2 slow traders in flight (~1 s per trader, ~2 s
    per batch): the process, the jobs in flight and all of its jobs."""
    slot = base_slot()
    publish_market(conn, dict.fromkeys(SYMBOLS, 150.0), closed_through=slot)
    user = make_user(conn, tier="elite")
    slow = "const t = Date.now(); while (Date.now() - t < 250) {} return true;"
    traders = [make_trader(conn, user_id=user, code=slow, name=f"t{i}") for i in range(6)]
    env = {
        "TRADERCTL_FILTER_TIMEOUT_MS": "5000",
        "TRADERCTL_WORKER_BATCH_SIZE": "2",
        "TRADERCTL_WORKER_SHUTDOWN_GRACE_SECONDS": "20",
        **KEEP_JOBS,
    }
    # All waiting before the first claim: every batch is a full one.
    jobs = [enqueue(conn, t, slot) for t in traders]
    worker = procs.start("--concurrency", str(concurrency), env=env)
    wait_until(lambda: len(doing_jobs(conn)) == 2 * concurrency, timeout=15, step=0.02)
    return worker, doing_jobs(conn), jobs


def test_killed_pool_parent_takes_its_children_down(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    with worker_procs(db_url, tmp_path) as procs:
        pool = procs.start("--concurrency", "2")
        wait_until(lambda: procs.log(pool).count("ready: id") >= 2, timeout=30)
        children = _child_pids(procs.log(pool))
        assert len(children) == 2
        os.kill(pool.pid, signal.SIGKILL)
        pool.wait(5)
        started = time.monotonic()
        wait_until(lambda: all(process_gone(p) for p in children), timeout=15)
        gone_in = time.monotonic() - started
    assert gone_in < 5, gone_in
    # They stopped cleanly: unregistered, nothing left for recovery.
    assert _registered_workers(conn) == 0


def test_process_group_sigterm_gets_the_full_grace_period(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    with worker_procs(db_url, tmp_path) as procs:
        pool, in_flight, jobs = _slow_batches_in_flight(conn, procs, 2)
        os.killpg(pool.pid, signal.SIGTERM)  # what systemd and most supervisors do
        try:
            code = pool.wait(40)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pool did not stop:\n{procs.log(pool)}")
        log = procs.log(pool)
    assert code == 0
    assert "second signal" not in log and "releasing" not in log, log
    # The batches in flight finished in the grace period instead of being given back.
    assert {job_rows(conn, in_flight)[j] for j in in_flight} == {("succeeded", 1)}
    assert set(job_rows(conn, jobs)) == set(jobs)


@pytest.mark.parametrize("concurrency", [1, 2], ids=["single", "pool"])
def test_a_repeated_parent_death_signal_is_one_graceful_stop(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path, concurrency: int
) -> None:
    """Linux may signal a child several times for one death of its parent (each time the
    child passes to another exiting thread of the parent: lifeline's docstring). Taken as
    the operator's "second signal", a repeat gave the jobs in flight back and left the
    maintenance worker's row behind (a flaky `test_killed_pool_parent_...` above)."""
    with worker_procs(db_url, tmp_path) as procs:
        worker, in_flight, _jobs = _slow_batches_in_flight(conn, procs, concurrency)
        for _ in range(3):
            os.kill(worker.pid, PARENT_DEATH_SIGNAL)  # as `traderctl up`'s death sends it
            time.sleep(0.05)
        try:
            code = worker.wait(40)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker did not stop:\n{procs.log(worker)}")
        log = procs.log(worker)
    assert code == 0, log
    assert "parent process is gone" in log, log
    assert "second signal" not in log and "releasing" not in log, log
    assert {job_rows(conn, in_flight)[j] for j in in_flight} == {("succeeded", 1)}
    assert _registered_workers(conn) == 0


def test_a_forced_exit_gives_back_its_jobs_and_leaves_no_worker_row(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """A second SIGTERM: the batch in flight goes back to `todo` at once, and both of the
    process's worker rows (batch and maintenance) go with it, so nothing waits for
    stalled-worker recovery."""
    with worker_procs(db_url, tmp_path) as procs:
        worker, in_flight, _jobs = _slow_batches_in_flight(conn, procs, 1)
        worker.send_signal(signal.SIGTERM)
        wait_until(lambda: "finishing in-flight jobs" in procs.log(worker), timeout=10)
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(20)
        log = procs.log(worker)
    assert code == 1, log
    assert "second signal: releasing in-flight jobs now" in log, log
    assert {job_rows(conn, in_flight)[j] for j in in_flight} == {("todo", 0)}
    assert _registered_workers(conn) == 0


# -- 5. bad trader input ----------------------------------------------------------------
def test_unpublished_timeframe_is_the_traders_error_not_a_retry(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = base_slot()
    publish_market(conn, dict.fromkeys(SYMBOLS, 150.0), closed_through=slot, intervals=("1m", "5m"))
    user = make_user(conn, tier="elite")
    bad = make_trader(conn, user_id=user, timeframes=["1m", "30m"], name="needs-30m")
    good = make_trader(conn, user_id=user, name="fine")
    jobs = [enqueue(conn, bad, slot), enqueue(conn, good, slot)]
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start(env=KEEP_JOBS)
        wait_until(lambda: trader_jobs_done(conn, jobs), timeout=20)
        assert procs.stop(w) == 0
    assert set(job_rows(conn, jobs).values()) == {("succeeded", 1)}  # no retry spent
    run = conn.execute(
        "select status, error_type, error_message from public.trader_runs where trader_id = %s",
        (bad,),
    ).fetchone()
    assert run is not None and run[:2] == ("error", "timeframe_unavailable")
    assert "'30m'" in run[2] and "published: 1m, 5m" in run[2]
    assert "TRADERCTL_MARKET_INTERVALS" in run[2]
    trader = conn.execute(
        "select last_error_type from public.trader_stats where trader_id = %s", (bad,)
    ).fetchone()
    assert trader == ("timeframe_unavailable",)
    ok = conn.execute(
        "select status from public.trader_runs where trader_id = %s", (good,)
    ).fetchone()
    assert ok == ("ok",)
