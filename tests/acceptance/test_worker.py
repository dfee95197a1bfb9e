"""End to end: `traderctl worker` subprocesses against a real database and real V8.

Each test starts its own workers (fast heartbeat/recovery settings from
tests/worker_support.FAST_ENV) and stops them; a worker left running fails the test.
Market data is written into the real snapshot tables as the market-data worker does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user, publish_market
from tests.worker_support import (
    enqueue,
    job_statuses,
    minute,
    signals_of,
    trader_job_statuses,
    trader_jobs_done,
    wait_until,
    worker_procs,
)

pytestmark = pytest.mark.slow

SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"]
#: Matches symbols whose last price is above 100 (string numbers, as in the browser).
ABOVE_100 = "return parseFloat(ticker.c) > 100;"


def now_slot() -> datetime:
    return minute(datetime.now(UTC))


def market(conn: psycopg.Connection[Any], prices: dict[str, float], slot: datetime, **kw: Any):
    publish_market(conn, prices, closed_through=slot, **kw)


def runs_of(conn: psycopg.Connection[Any], trader) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select slot, status, error_type, matches, signals, symbols_evaluated, data_age_ms,"
        " worker from public.trader_runs where trader_id = %s order by slot",
        (trader,),
    ).fetchall()


def test_signals_exactly_once_and_edge_triggered_across_workers(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = now_slot() - timedelta(minutes=10)
    user = make_user(conn, tier="elite")
    trader = make_trader(conn, user_id=user, code=ABOVE_100)
    prices = {"AAAUSDT": 150.0, "BBBUSDT": 50.0, "CCCUSDT": 120.0, "DDDUSDT": 10.0}
    market(conn, prices, slot)

    with worker_procs(db_url, tmp_path) as procs:
        w1 = procs.start("--intervals", "1m")
        job1 = enqueue(conn, trader, slot)
        wait_until(lambda: trader_jobs_done(conn, [job1]))
        assert signals_of(conn, trader) == [(slot, "AAAUSDT"), (slot, "CCCUSDT")]

        # A duplicated job for the same slot does nothing.
        dup = enqueue(conn, trader, slot)
        wait_until(lambda: trader_jobs_done(conn, [dup]))
        assert len(signals_of(conn, trader)) == 2

        # Stop this worker; the next slot runs on another one: the edge trigger holds.
        assert procs.stop(w1) == 0
        w2 = procs.start("--intervals", "1m,5m")
        s2 = slot + timedelta(minutes=1)
        market(conn, prices | {"BBBUSDT": 101.0, "CCCUSDT": 99.0}, s2)
        job2 = enqueue(conn, trader, s2)
        wait_until(lambda: trader_jobs_done(conn, [job2]))
        assert signals_of(conn, trader)[2:] == [(s2, "BBBUSDT")]

        # CCC matches again after a gap: a new signal.
        s3 = s2 + timedelta(minutes=1)
        market(conn, prices | {"BBBUSDT": 101.0}, s3)
        job3 = enqueue(conn, trader, s3)
        wait_until(lambda: trader_jobs_done(conn, [job3]))
        assert signals_of(conn, trader)[3:] == [(s3, "CCCUSDT")]
        assert procs.stop(w2) == 0

    runs = runs_of(conn, trader)
    assert [(r[1], r[3], r[4]) for r in runs] == [("ok", 2, 2), ("ok", 2, 1), ("ok", 3, 1)]
    row = conn.execute(
        "select run_count, signal_count, last_slot, last_run_status from public.trader_stats"
        " where trader_id = %s",
        (trader,),
    ).fetchone()
    assert row == (3, 4, s3, "ok")
    sig = conn.execute(
        "select price, change_percent, quote_volume, data_as_of, interval from public.signals"
        " where trader_id = %s order by id limit 1",
        (trader,),
    ).fetchone()
    assert sig is not None
    assert float(sig[0]) == 150.0 and sig[1] is not None and sig[2] is not None
    assert sig[3] == slot and sig[4] == "1m"
    assert trader_job_statuses(conn) == {}  # each job was deleted with its run's commit


def test_max_symbols_follow_the_tier(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = now_slot() - timedelta(minutes=5)
    # 60 symbols, all matching; rank = order (largest quote volume first).
    prices = {f"S{i:03d}USDT": 200.0 for i in range(60)}
    market(conn, prices, slot)
    traders = {
        tier: make_trader(conn, user_id=make_user(conn, tier=tier), code="return true;")
        for tier in ("free", "pro", "elite")
    }
    jobs = [enqueue(conn, t, slot) for t in traders.values()]
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start()
        wait_until(lambda: trader_jobs_done(conn, jobs))
        assert procs.stop(w) == 0
    expected = {"free": 20, "pro": 50, "elite": 60}
    for tier, trader in traders.items():
        (run,) = runs_of(conn, trader)
        assert run[5] == expected[tier], tier
        symbols = [s for _, s in signals_of(conn, trader)]
        assert symbols == list(prices)[: expected[tier]], tier


def test_stale_data_waits_then_runs_and_records_its_age(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = now_slot()
    # The data's newest closed candle is 3 minutes before the slot's.
    market(conn, {"AAAUSDT": 150.0}, slot - timedelta(minutes=3))
    trader = make_trader(conn, user_id=make_user(conn, tier="elite"), code=ABOVE_100)
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start(env={"TRADERCTL_WORKER_DATA_WAIT_MS": "1500"})
        started = time.monotonic()
        job = enqueue(conn, trader, slot)
        wait_until(lambda: trader_jobs_done(conn, [job]))
        waited = time.monotonic() - started
        # Fresh data arriving during the wait is used at once.
        s2 = slot + timedelta(minutes=1)
        job2 = enqueue(conn, trader, s2)
        time.sleep(0.4)
        market(conn, {"AAAUSDT": 150.0, "BBBUSDT": 160.0}, s2)
        wait_until(lambda: trader_jobs_done(conn, [job2]))
        assert procs.stop(w) == 0
    assert waited >= 1.4  # waited for the candle, bounded
    (r1, r2) = runs_of(conn, trader)
    assert r1[1] == "ok" and r1[6] == pytest.approx(180_000)  # ran on 3-minute-old data
    assert r2[6] == 0  # fresh
    assert [s for _, s in signals_of(conn, trader)] == ["AAAUSDT", "BBBUSDT"]


def test_filter_errors_are_recorded_and_disable_the_trader(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = now_slot() - timedelta(minutes=20)
    market(conn, {"AAAUSDT": 150.0}, slot)
    user = make_user(conn, tier="elite")
    broken = make_trader(conn, user_id=user, code="return (", name="syntax")
    throws = make_trader(
        conn, user_id=user, code="return undefinedThing.x > 1 ? 1 : nope();", name="throws"
    )
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start(env={"TRADERCTL_WORKER_AUTO_DISABLE_ERRORS": "3"})
        jobs = [
            enqueue(conn, broken, slot + timedelta(minutes=i), queueing_lock=i == 0)
            for i in range(3)
        ]
        wait_until(lambda: trader_jobs_done(conn, jobs))
        job = enqueue(conn, throws, slot)
        wait_until(lambda: trader_jobs_done(conn, [job]))
        assert procs.stop(w) == 0
    row = conn.execute(
        "select enabled, consecutive_errors, error_count, run_count, last_error_type,"
        " last_error, disabled_reason from public.traders t join public.trader_stats s on s.trader_id = t.id where t.id = %s",
        (broken,),
    ).fetchone()
    assert row is not None
    assert row[:5] == (False, 3, 3, 3, "syntax")
    assert row[5] and "3 consecutive failed runs" in row[6]
    assert (
        trader_job_statuses(conn) == {}
    )  # the jobs are fine: committed (and deleted), none failed
    # An exception inside the filter is per symbol: no match, the run is ok.
    (run,) = runs_of(conn, throws)
    assert run[1] == "ok" and run[3] == 0


def test_hostile_filter_does_not_hold_up_the_others(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = now_slot() - timedelta(minutes=30)
    market(conn, {s: 150.0 for s in SYMBOLS}, slot)
    user = make_user(conn, tier="elite")
    hostile = make_trader(conn, user_id=user, code="while (true) {}", name="hostile")
    good = [make_trader(conn, user_id=user, code=ABOVE_100, name=f"good{i}") for i in range(20)]
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start(env={"TRADERCTL_FILTER_TIMEOUT_MS": "300"})
        started = time.monotonic()
        jobs = [enqueue(conn, hostile, slot)] + [enqueue(conn, t, slot) for t in good]
        wait_until(lambda: trader_jobs_done(conn, jobs), timeout=20)
        elapsed = time.monotonic() - started
        assert procs.stop(w) == 0
    assert elapsed < 5.0
    (run,) = runs_of(conn, hostile)
    assert run[1] == "error" and run[2] == "timeout"
    for trader in good:
        assert [s for _, s in signals_of(conn, trader)] == SYMBOLS


def test_sigterm_finishes_in_flight_work(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = now_slot() - timedelta(minutes=40)
    market(conn, {s: 150.0 for s in SYMBOLS}, slot)
    user = make_user(conn, tier="elite")
    # ~200 ms of CPU per symbol: a batch is in flight when SIGTERM arrives.
    slow = "const t = Date.now(); while (Date.now() - t < 100) {} return true;"
    traders = [make_trader(conn, user_id=user, code=slow, name=f"slow{i}") for i in range(3)]
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start(
            env={"TRADERCTL_FILTER_TIMEOUT_MS": "5000", "TRADERCTL_WORKER_BATCH_SIZE": "2"}
        )
        jobs = [enqueue(conn, t, slot) for t in traders]
        # A trader job, not a maintenance task's job the worker defers at startup.
        wait_until(lambda: "doing" in trader_job_statuses(conn).values(), timeout=10, step=0.02)
        assert procs.stop(w) == 0
        statuses = trader_job_statuses(conn)
        # Claimed jobs finished (deleted with their commit); the rest were never claimed
        # (or were released).
        assert set(statuses.values()) <= {"todo"}
        assert len(statuses) < len(jobs)
        # Another worker picks up whatever is left; every trader runs exactly once.
        w2 = procs.start(env={"TRADERCTL_FILTER_TIMEOUT_MS": "5000"})
        wait_until(lambda: trader_jobs_done(conn, jobs), timeout=20)
        assert procs.stop(w2) == 0
    for trader in traders:
        assert len(signals_of(conn, trader)) == len(SYMBOLS)
        assert len(runs_of(conn, trader)) == 1


def test_retention_job_prunes_finished_jobs(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    slot = now_slot() - timedelta(minutes=50)
    market(conn, {"AAAUSDT": 150.0}, slot)
    trader = make_trader(conn, user_id=make_user(conn, tier="elite"), code=ABOVE_100)
    env = {
        "TRADERCTL_RETENTION_CRON": "* * * * * */1",  # every second (6th field = seconds)
        "TRADERCTL_RETENTION_JOBS_HOURS": "0",
    }
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start(env=env)
        job = enqueue(conn, trader, slot)
        wait_until(lambda: job not in job_statuses(conn), timeout=15)
        assert procs.stop(w) == 0
    # The job is gone, its run and signal stay (their ages are far from reached).
    assert len(runs_of(conn, trader)) == 1
    assert len(signals_of(conn, trader)) == 1


def test_metrics_endpoint_counts_runs(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    slot = now_slot() - timedelta(minutes=55)
    market(conn, {"AAAUSDT": 150.0}, slot)
    trader = make_trader(conn, user_id=make_user(conn, tier="elite"), code=ABOVE_100)
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start("--metrics-port", str(port))
        job = enqueue(conn, trader, slot)
        wait_until(lambda: trader_jobs_done(conn, [job]))
        body = wait_until(
            lambda: (
                (text := httpx.get(f"http://127.0.0.1:{port}/metrics").text)
                and "traderctl_queue_waiting_jobs" in text
                and text
            ),
            timeout=10,
        )
        assert procs.stop(w) == 0
    assert 'traderctl_runs_total{status="ok"} 1.0' in body
    assert "traderctl_signals_total 1.0" in body
    assert 'traderctl_snapshot_loads_total{interval="1m"} 1.0' in body


def test_bad_options_exit_1_with_one_line(db_url: str) -> None:
    import subprocess

    from tests.worker_support import TRADERCTL

    proc = subprocess.run(
        [str(TRADERCTL), "worker", "--intervals", "2m"],
        env={"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "unknown interval(s) 2m" in proc.stderr


def test_market_data_not_published_yet_is_retried_with_backoff(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """Nothing published at all (the market-data worker has not run yet) is an
    infrastructure matter: the job is retried with backoff, then runs. (A timeframe
    missing while others are published is the trader's error: test_worker_faults.py.)"""
    slot = now_slot() - timedelta(minutes=60)
    user = make_user(conn, tier="elite")
    trader = make_trader(conn, user_id=user, code=ABOVE_100, name="early")
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start()
        job = enqueue(conn, trader, slot)

        def retried() -> bool:
            row = conn.execute(
                "select status::text, attempts, scheduled_at > now()"
                " from procrastinate.procrastinate_jobs where id = %s",
                (job,),
            ).fetchone()
            return row == ("todo", 1, True)

        wait_until(retried, timeout=10, step=0.05)  # an infrastructure retry, with backoff
        market(conn, {"AAAUSDT": 150.0}, slot)
        wait_until(lambda: trader_jobs_done(conn, [job]), timeout=20)
        assert procs.stop(w) == 0
    (run,) = runs_of(conn, trader)
    assert run[1] == "ok" and run[4] == 1
