"""backend.schedule_due_traders(at): due rule, job format, idempotency, skips, catch-up.

Every test calls the function with an explicit `at` in its own database; the real pg_cron
tick is tested in tests/acceptance/test_pg_cron_tick.py. The helpers at the top are shared
with the other test_scheduler_*.py and test_tiers*.py files.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from typer.testing import CliRunner

from tests.factories import make_trader, make_user
from traderctl.cli.main import app
from traderctl.worker.intervals import INTERVALS
from traderctl.worker.queue.contract import TRADER_TASK, trader_lock, trader_queue
from traderctl.worker.scheduler import Outcome, TickResult, next_tick_at, run_loop
from traderctl.worker.scheduler import tick as py_tick

Conn = psycopg.Connection[Any]


# -- helpers (tick/jobs are imported by the other scheduler/tier test files) ------------------------------
def tick(conn: Conn, at: str | datetime) -> Counter[tuple[str | None, str]]:
    """Call the function; {(interval, outcome): traders}."""
    rows = conn.execute("select * from backend.schedule_due_traders(%s)", (at,)).fetchall()
    return Counter({(r[0], r[1]): r[2] for r in rows})


def tick_only(conn: Conn, at: str) -> Counter[tuple[str | None, str]]:
    """Tick exactly the minute of `at`: watermark one minute before, empty queue."""
    conn.execute("delete from procrastinate.procrastinate_jobs")
    conn.execute(
        "update backend.scheduler_state"
        " set last_slot = date_trunc('minute', %s::timestamptz, 'UTC') - interval '1 minute'",
        (at,),
    )
    return tick(conn, at)


def jobs(conn: Conn) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select id, queue_name, task_name, priority, lock, queueing_lock, args, status,"
            " scheduled_at from procrastinate.procrastinate_jobs order by id"
        ).fetchall()


def job_for(conn: Conn, trader_id: uuid.UUID) -> list[dict[str, Any]]:
    return [j for j in jobs(conn) if j["args"]["trader_id"] == str(trader_id)]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- the due rule -----------------------------------------------------------------------------
DUE_TABLE = [
    ("2026-11-26T00:00:00", set(INTERVALS)),
    ("2026-11-26T00:01:00", {"1m"}),
    ("2026-11-26T00:05:00", {"1m", "5m"}),
    ("2026-11-26T00:10:00", {"1m", "5m"}),
    ("2026-11-26T00:15:00", {"1m", "5m", "15m"}),
    ("2026-11-26T00:30:00", {"1m", "5m", "15m", "30m"}),
    ("2026-11-26T00:45:00", {"1m", "5m", "15m"}),
    ("2026-11-26T00:59:00", {"1m"}),
    ("2026-11-26T01:00:00", {"1m", "5m", "15m", "30m", "1h"}),
    ("2026-11-26T02:00:00", {"1m", "5m", "15m", "30m", "1h"}),
    ("2026-11-26T04:00:00", {"1m", "5m", "15m", "30m", "1h", "4h"}),
    ("2026-11-26T08:00:00", {"1m", "5m", "15m", "30m", "1h", "4h"}),
    ("2026-11-26T12:00:00", {"1m", "5m", "15m", "30m", "1h", "4h"}),
    ("2026-11-26T20:00:00", {"1m", "5m", "15m", "30m", "1h", "4h"}),
    ("2026-11-26T21:00:00", {"1m", "5m", "15m", "30m", "1h"}),
    ("2026-11-26T23:59:00", {"1m"}),
    ("2026-11-26T13:07:45", {"1m"}),  # seconds are truncated: slot 13:07
    ("2026-11-26T13:35:59.999", {"1m", "5m"}),
]


def test_due_table_for_every_interval(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    traders = {iv: make_trader(conn, user_id=user, interval=iv) for iv in INTERVALS}
    for at, due in DUE_TABLE:
        counts = tick_only(conn, at + "+00:00")
        enqueued = {iv for (iv, outcome), n in counts.items() if outcome == "enqueued" and n}
        assert enqueued == due, at
        slot = utc(at).replace(second=0, microsecond=0)
        for job in jobs(conn):
            assert datetime.fromisoformat(job["args"]["slot"]) == slot
        assert {j["queue_name"] for j in jobs(conn)} == {trader_queue(iv) for iv in due}
        assert {j["args"]["trader_id"] for j in jobs(conn)} == {str(traders[iv]) for iv in due}


def test_non_utc_offsets_are_converted(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user, interval="1h")
    # 05:30 in India is 00:00 UTC: every interval is due, including 1h.
    counts = tick_only(conn, "2026-11-26T05:30:00+05:30")
    assert counts[("1h", "enqueued")] == 1
    assert jobs(conn)[0]["args"]["slot"] == "2026-11-26T00:00:00+00:00"


def test_job_format_matches_the_worker_contract(conn: Conn) -> None:
    user = make_user(conn, tier="pro")
    trader = make_trader(conn, user_id=user, interval="4h")
    assert tick_only(conn, "2026-11-26T20:00:00Z") == Counter({("4h", "enqueued"): 1})
    [job] = jobs(conn)
    assert job["queue_name"] == trader_queue("4h")
    assert job["task_name"] == TRADER_TASK
    assert job["priority"] == 2
    assert job["lock"] == job["queueing_lock"] == trader_lock(trader)
    assert job["args"] == {"trader_id": str(trader), "slot": "2026-11-26T20:00:00+00:00"}
    assert datetime.fromisoformat(job["args"]["slot"]) == utc("2026-11-26T20:00:00")
    assert job["status"] == "todo"
    assert job["scheduled_at"] is None
    # No 'deferred' event for a trader job (its slot says when it became due), in bulk
    # mode or not (the next test).
    events = conn.execute(
        "select type::text from procrastinate.procrastinate_events where job_id = %s",
        (job["id"],),
    ).fetchall()
    assert events == []


def test_tick_notifies_each_queue_once(conn: Conn, db_url: str) -> None:
    user = make_user(conn, tier="elite")
    for _ in range(3):
        make_trader(conn, user_id=user, interval="1m")
    make_trader(conn, user_id=user, interval="5m")
    with psycopg.connect(db_url, autocommit=True) as listener:
        for channel in (
            "procrastinate_queue_v1#traders.1m",
            "procrastinate_queue_v1#traders.5m",
            "procrastinate_any_queue_v1",
        ):
            listener.execute(f'listen "{channel}"')
        tick_only(conn, "2026-11-26T10:05:00Z")
        got = list(listener.notifies(timeout=1.0, stop_after=4))
    by_channel = Counter(n.channel for n in got)
    assert by_channel == Counter(
        {
            "procrastinate_queue_v1#traders.1m": 1,
            "procrastinate_queue_v1#traders.5m": 1,
            "procrastinate_any_queue_v1": 1,
        }
    )
    ids = {j["id"] for j in jobs(conn)}
    for n in got:
        payload = json.loads(n.payload)
        assert payload["type"] == "job_inserted" and payload["job_id"] in ids


def test_bypassed_procrastinate_triggers_are_the_known_ones(conn: Conn) -> None:
    """Bulk mode writes the effects of exactly these INSERT triggers; review it on upgrade."""
    rows = conn.execute(
        "select tgname from pg_trigger"
        " where tgrelid = 'procrastinate.procrastinate_jobs'::regclass and not tgisinternal"
        " and (tgtype & 4) <> 0"  # TRIGGER_TYPE_INSERT
        " order by tgname"
    ).fetchall()
    assert [r[0] for r in rows] == [
        "procrastinate_jobs_notify_queue_job_inserted_v1",
        "procrastinate_trigger_scheduled_events_v1",  # only when scheduled_at is set (never)
        "procrastinate_trigger_status_events_insert_v1",
    ]


def test_tick_restores_replication_role_and_triggers_fire_after(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user)
    with conn.transaction():
        tick(conn, "2026-11-26T10:00:00Z")
        role = conn.execute("show session_replication_role").fetchone()
        assert role == ("origin",)
        # The immediate-run trigger still fires later in the same transaction.
        make_trader(conn, user_id=user, interval="5m", first_run=True)
    assert [j["priority"] for j in jobs(conn)] == [3, 100]


def test_bulk_enqueue_skips_a_job_that_appeared_meanwhile(conn: Conn) -> None:
    """The tick inserts without ON CONFLICT; a job enqueued since it looked (an immediate
    first run) makes that insert fail, and the tolerant insert then skips the trader."""
    user = make_user(conn, tier="elite")
    waiting, fresh = make_trader(conn, user_id=user), make_trader(conn, user_id=user)
    slot = utc("2026-11-26T10:00:00")
    first = conn.execute(
        "select job_id from backend.enqueue_trader_runs(array[%s::uuid], array['1m'],"
        " array[%s::timestamptz], array[100])",
        (waiting, slot),
    ).fetchall()
    assert len(first) == 1
    rows = conn.execute(
        "select trader_id, queue_name from backend.enqueue_trader_runs("
        "array[%s, %s]::uuid[], array['1m', '1m'], array[%s, %s]::timestamptz[],"
        " array[3, 3], null, true)",
        (waiting, fresh, slot, slot),
    ).fetchall()
    assert rows == [(fresh, trader_queue("1m"))]
    by_trader = {j["args"]["trader_id"]: j["priority"] for j in jobs(conn)}
    assert by_trader == {str(waiting): 100, str(fresh): 3}
    role = conn.execute("show session_replication_role").fetchone()
    assert role == ("origin",)


#: The tick and the function that writes its jobs (and decides on bulk mode).
OWNED_BY_TICK_ROLE = (
    "backend.schedule_due_traders(timestamptz)",
    "backend.enqueue_trader_runs(uuid[], text[], timestamptz[], integer[], timestamptz, boolean)",
)


def test_without_privilege_for_bulk_mode_the_triggers_do_the_work(conn: Conn) -> None:
    """A function owner that may not set session_replication_role gets the same result."""
    role = f"tick_owner_{uuid.uuid4().hex[:8]}"
    # Like Supabase's postgres role: owns (bypasses RLS), but is no superuser.
    conn.execute(f"create role {role} nologin bypassrls")
    try:
        for schema in ("backend", "procrastinate", "public"):
            conn.execute(f"grant usage on schema {schema} to {role}")
            conn.execute(f"grant all on all tables in schema {schema} to {role}")
            conn.execute(f"grant all on all sequences in schema {schema} to {role}")
        for function in OWNED_BY_TICK_ROLE:
            conn.execute(f"alter function {function} owner to {role}")
        user = make_user(conn, tier="elite")
        trader = make_trader(conn, user_id=user)
        assert tick_only(conn, "2026-11-26T10:00:00Z") == Counter({("1m", "enqueued"): 1})
        [job] = job_for(conn, trader)
        events = conn.execute(
            "select type::text from procrastinate.procrastinate_events where job_id = %s",
            (job["id"],),
        ).fetchall()
        assert events == []
    finally:
        for function in OWNED_BY_TICK_ROLE:
            conn.execute(f"alter function {function} owner to postgres")
        conn.execute(f"drop owned by {role}")
        conn.execute(f"drop role {role}")


# -- who is scheduled ---------------------------------------------------------------------------
def test_missing_or_empty_interval_means_1m(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    missing = make_trader(conn, user_id=user, interval=None)
    null = make_trader(conn, user_id=user, interval=None, extra={"refreshInterval": None})
    empty = make_trader(conn, user_id=user, interval="")
    assert tick_only(conn, "2026-11-26T10:01:00Z") == Counter({("1m", "enqueued"): 3})
    assert {j["args"]["trader_id"] for j in jobs(conn)} == {str(missing), str(null), str(empty)}
    assert {j["queue_name"] for j in jobs(conn)} == {trader_queue("1m")}


def test_disabled_and_blank_code_are_not_scheduled(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user, enabled=False)
    make_trader(conn, user_id=user, code="")
    make_trader(conn, user_id=user, code="  \n\t ")
    make_trader(conn, user_id=user, code=None)  # type: ignore[arg-type]
    ok = make_trader(conn, user_id=user)
    assert tick_only(conn, "2026-11-26T10:01:00Z") == Counter({("1m", "enqueued"): 1})
    assert [j["args"]["trader_id"] for j in jobs(conn)] == [str(ok)]


def test_unknown_interval_is_flagged_and_does_not_stop_the_others(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    bad = make_trader(conn, user_id=user, interval="2m")
    numeric = make_trader(conn, user_id=user, interval=None, extra={"refreshInterval": 5})
    good = make_trader(conn, user_id=user, interval="5m")
    problems = dict(
        conn.execute(
            "select id, schedule_problem from public.traders where id = any(%s)",
            ([bad, numeric, good],),
        ).fetchall()
    )
    assert problems[good] is None
    assert problems[bad].startswith("unknown refreshInterval '2m'; use one of 1m, 5m, 15m")
    assert problems[numeric].startswith("refreshInterval must be a string, got number 5")
    counts = tick_only(conn, "2026-11-26T10:05:00Z")
    assert counts == Counter({("5m", "enqueued"): 1, (None, "skipped_invalid_interval"): 2})
    assert [j["args"]["trader_id"] for j in jobs(conn)] == [str(good)]
    row = conn.execute(
        "select skipped_invalid_interval from backend.scheduler_ticks order by id desc limit 1"
    ).fetchone()
    assert row == (2,)
    # Fixing the filter clears the flag.
    conn.execute(
        'update public.traders set filter = filter || \'{"refreshInterval": "15m"}\' where id = %s',
        (bad,),
    )
    row = conn.execute(
        "select schedule_problem from public.traders where id = %s", (bad,)
    ).fetchone()
    assert row == (None,)


# -- idempotency, backlog, catch-up -----------------------------------------------------------
def test_same_minute_twice_enqueues_nothing_the_second_time(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user)
    make_trader(conn, user_id=user, interval="5m")
    first = tick(conn, "2026-11-26T10:05:00Z")
    assert first == Counter({("1m", "enqueued"): 1, ("5m", "enqueued"): 1})
    assert tick(conn, "2026-11-26T10:05:30Z") == Counter()
    assert tick(conn, "2026-11-26T10:04:00Z") == Counter()  # before the watermark
    assert len(jobs(conn)) == 2
    row = conn.execute("select count(*) from backend.scheduler_ticks").fetchone()
    assert row == (1,)


def test_waiting_job_is_a_backlog_skip_but_a_running_one_is_not(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    waiting = make_trader(conn, user_id=user)
    running = make_trader(conn, user_id=user)
    tick(conn, "2026-11-26T10:00:00Z")
    conn.execute(
        "update procrastinate.procrastinate_jobs set status = 'doing' where queueing_lock = %s",
        (trader_lock(running),),
    )
    counts = tick(conn, "2026-11-26T10:01:00Z")
    assert counts == Counter({("1m", "enqueued"): 1, ("1m", "skipped_backlog"): 1})
    assert [j["status"] for j in job_for(conn, waiting)] == ["todo"]
    # The running trader got its next job; `lock` keeps the two from running at once.
    assert [(j["status"], j["args"]["slot"]) for j in job_for(conn, running)] == [
        ("doing", "2026-11-26T10:00:00+00:00"),
        ("todo", "2026-11-26T10:01:00+00:00"),
    ]
    row = conn.execute(
        "select skipped_backlog, by_interval from backend.scheduler_ticks order by id desc limit 1"
    ).fetchone()
    assert row == (1, {"1m": {"enqueued": 1, "skipped_backlog": 1}})


def test_missed_minutes_are_coalesced_to_the_latest_due_slot(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    traders = {iv: make_trader(conn, user_id=user, interval=iv) for iv in INTERVALS}
    tick(conn, "2026-11-26T09:58:00Z")
    conn.execute("delete from procrastinate.procrastinate_jobs")
    # Down from 09:58:xx to 10:37: (09:58, 10:37] is scheduled now, once per trader.
    counts = tick(conn, "2026-11-26T10:37:10Z")
    assert sum(counts.values()) == 5
    slots = {
        iv: [j["args"]["slot"] for j in job_for(conn, trader)] for iv, trader in traders.items()
    }
    assert slots == {
        "1m": ["2026-11-26T10:37:00+00:00"],
        "5m": ["2026-11-26T10:35:00+00:00"],
        "15m": ["2026-11-26T10:30:00+00:00"],
        "30m": ["2026-11-26T10:30:00+00:00"],
        "1h": ["2026-11-26T10:00:00+00:00"],
        "4h": [],  # 08:00 was before the window
        "1d": [],
    }
    row = conn.execute(
        "select window_start, slot from backend.scheduler_ticks order by id desc limit 1"
    ).fetchone()
    assert row == (utc("2026-11-26T09:59:00"), utc("2026-11-26T10:37:00"))


def test_catch_up_is_bounded_to_one_day(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    traders = {iv: make_trader(conn, user_id=user, interval=iv) for iv in INTERVALS}
    tick(conn, "2026-11-20T10:00:00Z")
    conn.execute("delete from procrastinate.procrastinate_jobs")
    counts = tick(conn, "2026-11-26T10:37:00Z")  # six days later
    assert sum(n for (_, o), n in counts.items() if o == "enqueued") == 7
    slots = {iv: job_for(conn, t)[0]["args"]["slot"] for iv, t in traders.items()}
    assert slots["4h"] == "2026-11-26T08:00:00+00:00"
    assert slots["1d"] == "2026-11-26T00:00:00+00:00"
    row = conn.execute(
        "select window_start from backend.scheduler_ticks order by id desc limit 1"
    ).fetchone()
    assert row == (utc("2026-11-25T10:38:00"),)


def test_first_tick_ever_schedules_only_its_minute(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user, interval="1h")
    assert tick(conn, "2026-11-26T10:37:00Z") == Counter()
    row = conn.execute("select last_slot from backend.scheduler_state").fetchone()
    assert row == (utc("2026-11-26T10:37:00"),)


def test_concurrent_ticks_for_one_minute_enqueue_once(conn: Conn, db_url: str) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user)
    other = psycopg.connect(db_url, autocommit=True)
    try:
        conn.execute("begin")
        first = tick(conn, "2026-11-26T10:00:00Z")
        result: list[Counter[tuple[str | None, str]]] = []
        thread = threading.Thread(target=lambda: result.append(tick(other, "2026-11-26T10:00:00Z")))
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waits on the watermark row
        conn.execute("commit")
        thread.join(10)
    finally:
        other.close()
    assert first == Counter({("1m", "enqueued"): 1})
    assert result == [Counter()]
    assert len(jobs(conn)) == 1


# -- priority and claiming ---------------------------------------------------------------------
def test_procrastinate_claims_elite_first(conn: Conn) -> None:
    owners = {tier: make_user(conn, tier=tier) for tier in ("free", "pro", "elite")}
    no_row = make_user(conn)
    traders = {tier: make_trader(conn, user_id=uid) for tier, uid in owners.items()}
    traders["none"] = make_trader(conn, user_id=no_row)
    tick(conn, "2026-11-26T10:00:00Z")
    immediate = make_trader(conn, user_id=no_row, interval="5m", first_run=True)
    priorities = {j["args"]["trader_id"]: j["priority"] for j in jobs(conn)}
    assert priorities == {
        str(traders["free"]): 1,
        str(traders["none"]): 1,
        str(traders["pro"]): 2,
        str(traders["elite"]): 3,
        str(immediate): 100,
    }
    claimed = []
    for _ in range(5):
        row = conn.execute(
            "select (j).args ->> 'trader_id', (j).priority from"
            " (select procrastinate.procrastinate_fetch_job_v2("
            "    array['traders.1m', 'traders.5m']::varchar[], null) as j) s"
        ).fetchone()
        assert row is not None
        claimed.append(row)
    assert [p for _, p in claimed] == [100, 3, 2, 1, 1]
    assert claimed[0][0] == str(immediate)
    assert claimed[1][0] == str(traders["elite"])


# -- privileges -----------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_run_the_tick(conn: Conn, role: str) -> None:
    row = conn.execute(
        "select has_function_privilege(%s, 'backend.schedule_due_traders(timestamptz)', 'execute'),"
        " has_schema_privilege(%s, 'backend', 'usage'),"
        " has_function_privilege(%s, 'backend.trader_context(uuid)', 'execute')",
        (role, role, role),
    ).fetchone()
    assert row == (False, False, False)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
        conn.execute(f"set local role {role}")
        conn.execute("select * from backend.schedule_due_traders()")


def test_service_role_may_run_the_tick_and_read_context(conn: Conn) -> None:
    row = conn.execute(
        "select has_function_privilege('service_role',"
        "   'backend.schedule_due_traders(timestamptz)', 'execute'),"
        " has_function_privilege('service_role', 'backend.trader_context(uuid)', 'execute')"
    ).fetchone()
    assert row == (True, True)


# -- Python and CLI -------------------------------------------------------------------------------
def test_python_tick_returns_typed_counts(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user)
    make_trader(conn, user_id=user, interval="bogus")
    result = py_tick(conn, utc("2026-11-26T10:00:00"))
    assert result.slot == utc("2026-11-26T10:00:00")
    assert result.enqueued == 1
    assert result.total(Outcome.SKIPPED_INVALID_INTERVAL) == 1
    assert result.to_json() == {
        "slot": "2026-11-26T10:00:00+00:00",
        "enqueued": 1,
        "skipped": {
            "skipped_backlog": 0,
            "skipped_hourly_cap": 0,
            "skipped_invalid_interval": 1,
        },
        "by_interval": {"1m": {"enqueued": 1}, "invalid": {"skipped_invalid_interval": 1}},
    }
    again = py_tick(conn, utc("2026-11-26T10:00:00"))
    assert again.counts == () and again.slot == utc("2026-11-26T10:00:00")


def test_cli_tick_json_and_table(conn: Conn, db_url: str) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user)
    runner = CliRunner()
    result = runner.invoke(
        app, ["tick", "--at", "2026-11-26T10:00", "--json"], env={"DATABASE_URL": db_url}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["by_interval"] == {"1m": {"enqueued": 1}}
    result = runner.invoke(
        app, ["tick", "--at", "2026-11-26T10:01:00+00:00"], env={"DATABASE_URL": db_url}
    )
    assert result.exit_code == 0, result.output
    assert "scheduler tick 2026-11-26 10:01 UTC" in result.output
    assert "1m" in result.output and "skipped: backlog" in result.output


def test_cli_tick_bad_timestamp_is_one_red_line(db_url: str) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "traderctl", "tick", "--at", "yesterday"],
        capture_output=True,
        text=True,
        env={"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: --at 'yesterday' is not an ISO-8601 timestamp; use e.g. 2026-11-26T19:40 or "
        "2026-11-26T19:40:00+00:00 (no offset means UTC)."
    ]


def test_next_tick_at_is_offset_after_the_next_boundary() -> None:
    assert next_tick_at(utc("2026-11-26T10:00:01"), 3) == utc("2026-11-26T10:00:03")
    assert next_tick_at(utc("2026-11-26T10:00:03"), 3) == utc("2026-11-26T10:01:03")
    assert next_tick_at(utc("2026-11-26T10:00:59.5"), 0) == utc("2026-11-26T10:01:00")


def test_run_loop_ticks_each_minute_and_stops(conn: Conn, db_url: str) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user)
    stop = threading.Event()
    seen: list[TickResult] = []

    def on_tick(result: TickResult) -> None:
        seen.append(result)
        stop.set()

    # A clock 50 ms before a boundary: the loop sleeps 50 ms, then ticks (at the DB's now()).
    clock = iter([utc("2026-11-26T10:00:59.95")] * 2 + [utc("2026-11-26T10:01:30")] * 10)
    ticks = run_loop(
        lambda: psycopg.connect(db_url, autocommit=True),
        stop=stop,
        offset_seconds=0,
        on_tick=on_tick,
        clock=lambda: next(clock),
    )
    assert ticks == 1
    assert seen[0].enqueued == 1
    now = conn.execute("select now()").fetchone()
    assert now is not None
    assert abs(seen[0].slot - now[0]) < timedelta(minutes=2)
