"""The immediate first run: the user's own INSERT/UPDATE (role authenticated) enqueues a
priority-100 job for the current minute, within the waiting-job and hourly-cap rules."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user
from tests.integration.test_scheduler import job_for, jobs
from traderctl.worker.queue.contract import TRADER_TASK, trader_lock, trader_queue

Conn = psycopg.Connection[Any]


@contextmanager
def as_user(conn: Conn, user: uuid.UUID) -> Iterator[Conn]:
    """A transaction running as the Data API would: role authenticated, the user's JWT."""
    with conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": str(user), "role": "authenticated"}),),
        )
        yield conn


def create(
    conn: Conn, user: uuid.UUID, *, enabled: bool = True, filt: dict[str, Any] | None = None
) -> uuid.UUID:
    body = {"code": "return true;", "refreshInterval": "15m"} | (filt or {})
    with as_user(conn, user):
        row = conn.execute(
            "insert into public.traders (name, enabled, filter) values ('mine', %s, %s)"
            " returning id",
            (enabled, json.dumps(body)),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def current_minute(conn: Conn) -> datetime:
    row = conn.execute("select date_trunc('minute', now(), 'UTC')").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def counter(conn: Conn, user: uuid.UUID) -> tuple[int, int] | None:
    row = conn.execute(
        "select enqueued, skipped_hourly_cap from backend.user_hourly_executions"
        " where user_id = %s and hour = date_trunc('hour', now(), 'UTC')",
        (user,),
    ).fetchone()
    return None if row is None else (row[0], row[1])


def test_user_insert_enqueues_a_top_priority_run_for_this_minute(conn: Conn) -> None:
    user = make_user(conn)
    before = current_minute(conn)
    trader = create(conn, user)
    [job] = job_for(conn, trader)
    assert job["priority"] == 100
    assert job["queue_name"] == trader_queue("15m")
    assert job["task_name"] == TRADER_TASK
    assert job["lock"] == job["queueing_lock"] == trader_lock(trader)
    assert job["status"] == "todo" and job["scheduled_at"] is None
    slot = datetime.fromisoformat(job["args"]["slot"])
    assert before <= slot <= current_minute(conn)
    assert counter(conn, user) == (1, 0)


def test_authenticated_still_cannot_touch_the_queue(conn: Conn) -> None:
    user = make_user(conn)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(conn, user):
        conn.execute("select count(*) from procrastinate.procrastinate_jobs")


def test_disabled_insert_runs_nothing_until_enabled(conn: Conn) -> None:
    user = make_user(conn)
    trader = create(conn, user, enabled=False)
    assert jobs(conn) == []
    with as_user(conn, user):
        conn.execute("update public.traders set enabled = true where id = %s", (trader,))
    assert [j["priority"] for j in job_for(conn, trader)] == [100]


def test_code_change_runs_but_other_edits_do_not(conn: Conn) -> None:
    user = make_user(conn)
    trader = create(conn, user)
    conn.execute("delete from procrastinate.procrastinate_jobs")
    with as_user(conn, user):
        conn.execute("update public.traders set name = 'renamed' where id = %s", (trader,))
        conn.execute(
            'update public.traders set filter = filter || \'{"refreshInterval": "1h"}\''
            " where id = %s",
            (trader,),
        )
    assert jobs(conn) == []
    with as_user(conn, user):
        conn.execute(
            'update public.traders set filter = filter || \'{"code": "return false;"}\''
            " where id = %s",
            (trader,),
        )
    [job] = job_for(conn, trader)
    assert (job["priority"], job["queue_name"]) == (100, trader_queue("1h"))


def test_a_waiting_job_means_no_second_run_and_no_count(conn: Conn) -> None:
    user = make_user(conn)
    trader = create(conn, user)
    assert counter(conn, user) == (1, 0)
    with as_user(conn, user):
        conn.execute(
            'update public.traders set filter = filter || \'{"code": "return 1;"}\' where id = %s',
            (trader,),
        )
    assert len(job_for(conn, trader)) == 1
    assert counter(conn, user) == (1, 0)


def test_over_the_hourly_cap_the_first_run_is_skipped_and_counted(conn: Conn) -> None:
    user = make_user(conn)  # free: 60 per hour
    conn.execute(
        "insert into backend.user_hourly_executions (user_id, hour, enqueued)"
        " values (%s, date_trunc('hour', now(), 'UTC'), 60)",
        (user,),
    )
    trader = create(conn, user)
    assert job_for(conn, trader) == []
    assert counter(conn, user) == (60, 1)


def test_the_last_runs_of_the_hourly_budget_are_allowed(conn: Conn) -> None:
    user = make_user(conn, tier="pro")
    conn.execute(
        "insert into backend.user_hourly_executions (user_id, hour, enqueued)"
        " values (%s, date_trunc('hour', now(), 'UTC'), 718)",
        (user,),
    )
    first = create(conn, user)
    second = create(conn, user)
    third = create(conn, user)
    assert [len(job_for(conn, t)) for t in (first, second, third)] == [1, 1, 0]
    assert counter(conn, user) == (720, 1)


@pytest.mark.parametrize(
    "filt",
    [{"code": ""}, {"code": "   "}, {"refreshInterval": "7m"}],
    ids=["empty-code", "blank-code", "unknown-interval"],
)
def test_traders_that_cannot_run_get_no_first_run(conn: Conn, filt: dict[str, str]) -> None:
    user = make_user(conn)
    create(conn, user, filt=filt)
    assert jobs(conn) == []


def test_bulk_loads_may_skip_the_first_run(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user)  # sets traderctl.skip_first_run for its transaction
    assert jobs(conn) == []
    make_trader(conn, user_id=user, first_run=True)
    assert len(jobs(conn)) == 1


def test_code_change_after_this_minutes_run_runs_next_minute(conn: Conn) -> None:
    """Editing code in a minute that already has a run still gets the new code run soon."""
    user = make_user(conn)
    trader = create(conn, user, filt={"refreshInterval": "1d"})
    [job] = job_for(conn, trader)
    slot = datetime.fromisoformat(job["args"]["slot"])
    # The worker ran this minute's job: its run row exists and the job finished.
    conn.execute(
        "insert into public.trader_runs (trader_id, user_id, slot, interval, status, started_at)"
        " values (%s, %s, %s, '1d', 'ok', now())",
        (trader, user, slot),
    )
    conn.execute(
        "update procrastinate.procrastinate_jobs set status = 'succeeded' where id = %s",
        (job["id"],),
    )
    with as_user(conn, user):
        conn.execute(
            'update public.traders set filter = filter || \'{"code": "return false;"}\''
            " where id = %s",
            (trader,),
        )
    waiting = [j for j in job_for(conn, trader) if j["status"] == "todo"]
    assert len(waiting) == 1
    next_slot = datetime.fromisoformat(waiting[0]["args"]["slot"])
    assert (next_slot - slot).total_seconds() == 60
    assert waiting[0]["priority"] == 100
    if current_minute(conn) == slot:
        assert waiting[0]["scheduled_at"] == next_slot  # held until the next minute
    else:  # the clock crossed the minute meanwhile: that minute had no run yet
        assert waiting[0]["scheduled_at"] is None
