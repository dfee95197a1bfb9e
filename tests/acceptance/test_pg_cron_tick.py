"""The real thing: pg_cron fires backend.schedule_due_traders() at the minute boundary.

Runs in the database pg_cron serves (``cron_db_url``, shared by the session), so it
cleans up what it inserts. Waits for the next minute: up to ~70 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.worker_support import STOP_SIGNALS, stop_and_wait
from traderctl.worker.migrate import MIGRATIONS_DIR
from traderctl.worker.queue.contract import trader_lock, trader_queue

JOB_NAME = "traderctl-schedule-due-traders"
CRON_MIGRATION = MIGRATIONS_DIR / "20261126001400_schedule_pg_cron_tick.sql"


def _cron_jobs(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select jobid, schedule, command, active from cron.job where jobname = %s", (JOB_NAME,)
    ).fetchall()


@pytest.mark.slow
def test_pg_cron_fires_the_tick_every_minute(cron_db_url: str) -> None:
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        [(jobid, schedule, command, active)] = _cron_jobs(conn)
        assert (schedule, command, active) == (
            "* * * * *",
            "select * from backend.schedule_due_traders()",
            True,
        )
        # Registering again (re-running the migration) updates the same job.
        conn.execute(Path(CRON_MIGRATION).read_text().encode())
        assert [row[0] for row in _cron_jobs(conn)] == [jobid]

        user = uuid.uuid4()
        conn.execute("insert into auth.users (id) values (%s)", (user,))
        conn.execute("insert into public.user_tiers (user_id, tier) values (%s, 'pro')", (user,))
        with conn.transaction():
            conn.execute("set local traderctl.skip_first_run = 'on'")
            row = conn.execute(
                "insert into public.traders (user_id, name, filter) values (%s, 'cron', %s)"
                " returning id",
                (user, json.dumps({"code": "return true;", "refreshInterval": "1m"})),
            ).fetchone()
        assert row is not None
        trader = row[0]
        lock = trader_lock(trader)
        row = conn.execute("select now()").fetchone()
        assert row is not None
        started: datetime = row[0]
        try:
            deadline = time.monotonic() + 75
            run = None
            job = None
            while time.monotonic() < deadline:
                run = conn.execute(
                    "select status, return_message, start_time from cron.job_run_details"
                    " where jobid = %s and start_time > %s and status in ('succeeded', 'failed')"
                    " order by start_time limit 1",
                    (jobid, started),
                ).fetchone()
                job = conn.execute(
                    "select queue_name, priority, args, status::text"
                    " from procrastinate.procrastinate_jobs where queueing_lock = %s",
                    (lock,),
                ).fetchone()
                if run is not None and job is not None:
                    break
                time.sleep(0.5)
            assert run is not None, "pg_cron did not run the tick within 75 s"
            status, message, run_started = run
            assert status == "succeeded", message
            assert job is not None, "the tick ran but did not enqueue the trader"
            queue_name, priority, args, job_status = job
            assert (queue_name, priority, job_status) == (trader_queue("1m"), 2, "todo")
            slot = datetime.fromisoformat(args["slot"])
            assert slot == run_started.replace(second=0, microsecond=0)
            tick_row = conn.execute(
                "select enqueued from backend.scheduler_ticks where slot = %s", (slot,)
            ).fetchone()
            assert tick_row is not None and tick_row[0] >= 1
        finally:
            conn.execute("delete from procrastinate.procrastinate_jobs where lock = %s", (lock,))
            conn.execute("delete from auth.users where id = %s", (user,))


def test_outside_the_cron_database_the_migration_registers_nothing(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute(Path(CRON_MIGRATION).read_text().encode())
        row = conn.execute(
            "select exists (select from pg_extension where extname = 'pg_cron')"
        ).fetchone()
    assert row == (False,)
    assert any("the scheduler tick was not registered" in n for n in notices)


@STOP_SIGNALS
def test_scheduler_command_stops_cleanly_on_a_stop_signal(
    db_url: str, signals: tuple[int, ...]
) -> None:
    """SIGTERM, or `traderctl up`'s parent-death signal however often the kernel repeats
    it (lifeline), stops the loop cleanly."""
    env = {**os.environ, "DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "traderctl", "scheduler", "--offset", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "scheduler: ticking 30 s after every minute" in first
        err = stop_and_wait(proc, signals, timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # reaps it and closes both pipes
    assert proc.returncode == 0, err
    assert f"received {signal.Signals(signals[0]).name}" in err
    assert "scheduler stopped after" in err
