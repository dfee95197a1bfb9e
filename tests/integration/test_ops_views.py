"""The ops views return the right numbers on a constructed history.

Each test writes runs, jobs, signals, snapshots or ticks with timestamps relative to the
database's now() (read once as ``t0``) and checks the figures the views compute.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.factories import make_trader, make_user

Conn = psycopg.Connection[Any]


def now(conn: Conn) -> datetime:
    row = conn.execute("select now()").fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


def view(conn: Conn, name: str, where: str = "true", params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"select * from ops.{name} where {where}", params).fetchall()


def add_run(
    conn: Conn,
    trader_id: uuid.UUID,
    *,
    slot: datetime,
    interval: str = "1m",
    status: str = "ok",
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    duration_ms: float = 10.0,
    signals: int = 0,
    worker: str = "w1",
    data_as_of: datetime | None = None,
) -> int:
    row = conn.execute(
        "insert into public.trader_runs (trader_id, user_id, slot, interval, status,"
        " started_at, finished_at, duration_ms, signals, worker, data_as_of)"
        " select %s, t.user_id, %s, %s, %s, %s, %s, %s, %s, %s, %s"
        " from public.traders t where t.id = %s returning id",
        (
            trader_id,
            slot,
            interval,
            status,
            started_at or slot,
            finished_at or started_at or slot,
            duration_ms,
            signals,
            worker,
            data_as_of,
            trader_id,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_job(
    conn: Conn,
    *,
    queue: str = "traders.1m",
    status: str = "todo",
    enqueued_at: datetime | None = None,
    scheduled_at: datetime | None = None,
    worker_id: int | None = None,
    lock: str | None = None,
    slot: str | None = None,
) -> int:
    """A job inserted as todo, then moved to status. On a traders.* queue it is a trader
    job, whose wait starts at its slot (``enqueued_at`` or ``slot``: it has no 'deferred'
    event); on any other queue ``enqueued_at`` dates procrastinate's 'deferred' event."""
    trader_job = queue.startswith("traders.")
    args: dict[str, str] = {"trader_id": str(uuid.uuid4())}
    if trader_job and enqueued_at is not None:
        slot = enqueued_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    if slot is not None:
        args["slot"] = slot
    row = conn.execute(
        "insert into procrastinate.procrastinate_jobs"
        " (queue_name, task_name, lock, queueing_lock, args, scheduled_at)"
        " values (%s, %s, %s, %s, %s, %s) returning id",
        (
            queue,
            "run_trader" if trader_job else "other_task",
            lock,
            lock,
            json.dumps(args),
            scheduled_at,
        ),
    ).fetchone()
    assert row is not None
    job_id = int(row[0])
    if enqueued_at is not None and not trader_job:
        conn.execute(
            "update procrastinate.procrastinate_events set at = %s"
            " where job_id = %s and type = 'deferred'",
            (enqueued_at, job_id),
        )
    if status in ("doing", "failed", "succeeded"):
        conn.execute(
            "update procrastinate.procrastinate_jobs set status = 'doing', worker_id = %s"
            " where id = %s",
            (worker_id, job_id),
        )
    if status in ("failed", "succeeded"):
        conn.execute(
            "update procrastinate.procrastinate_jobs set status = %s where id = %s",
            (status, job_id),
        )
    return job_id


def test_ops_schema_is_private_to_service_role(conn: Conn) -> None:
    for role in ("anon", "authenticated"):
        row = conn.execute("select has_schema_privilege(%s, 'ops', 'usage')", (role,)).fetchone()
        assert row == (False,), f"{role} has USAGE on ops"
    with conn.transaction():
        conn.execute("set local role authenticated")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from ops.alerts")
        raise psycopg.Rollback()
    with conn.transaction():
        conn.execute("set local role service_role")
        views = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.views where table_schema = 'ops'"
            ).fetchall()
        ]
        for name in views:
            conn.execute(f"select * from ops.{name}").fetchall()
        raise psycopg.Rollback()
    assert {"alerts", "queue_depth", "cron_job_health", "skips_by_reason"} <= set(views)


def test_executions_per_minute(conn: Conn) -> None:
    t0 = now(conn)
    trader = make_trader(conn, user_id=make_user(conn))
    at = t0 - timedelta(minutes=5)
    add_run(conn, trader, slot=at - timedelta(minutes=1), finished_at=at, signals=2)
    add_run(conn, trader, slot=at - timedelta(minutes=2), finished_at=at, duration_ms=30)
    add_run(conn, trader, slot=at - timedelta(minutes=3), finished_at=at, status="error")
    add_run(conn, trader, slot=t0 - timedelta(minutes=90), finished_at=t0 - timedelta(minutes=70))

    rows = view(conn, "executions_per_minute")
    assert len(rows) == 60
    assert rows == sorted(rows, key=lambda r: r["minute"])
    assert sum(r["runs"] for r in rows) == 3
    busy = view(conn, "executions_per_minute", "minute = date_trunc('minute', %s, 'UTC')", (at,))
    assert len(busy) == 1
    assert (busy[0]["runs"], busy[0]["ok"], busy[0]["errors"], busy[0]["signals"]) == (3, 2, 1, 2)
    assert float(busy[0]["avg_duration_ms"]) == pytest.approx(50 / 3, abs=0.1)


def test_execution_time_by_interval(conn: Conn) -> None:
    t0 = now(conn)
    trader = make_trader(conn, user_id=make_user(conn))
    for i in range(1, 11):
        at = t0 - timedelta(minutes=i)
        add_run(conn, trader, slot=at, duration_ms=10.0 * i)
    add_run(conn, trader, slot=t0 - timedelta(hours=2), duration_ms=1000)

    rows = {r["interval"]: r for r in view(conn, "execution_time_by_interval")}
    assert list(rows) == ["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
    one = rows["1m"]
    assert one["runs"] == 10
    assert float(one["avg_ms"]) == 55.0
    assert float(one["p50_ms"]) == 55.0
    assert float(one["p95_ms"]) == 95.5  # percentile_cont: 90 + 0.55 * (100 - 90)
    assert float(one["max_ms"]) == 100.0
    assert rows["5m"]["runs"] == 0 and rows["5m"]["avg_ms"] is None


def test_queue_depth_and_oldest_waiting(conn: Conn) -> None:
    t0 = now(conn).replace(microsecond=0)  # a slot has whole seconds
    add_job(conn, enqueued_at=t0 - timedelta(minutes=3))
    add_job(conn, enqueued_at=t0 - timedelta(seconds=30))
    add_job(conn, scheduled_at=t0 + timedelta(minutes=10))  # delayed, not waiting
    add_job(conn, status="doing")
    add_job(conn, status="succeeded")
    add_job(conn, queue="traderctl.maintenance", enqueued_at=t0 - timedelta(seconds=5))

    rows = {r["queue_name"]: r for r in view(conn, "queue_depth")}
    assert list(rows)[:7] == [f"traders.{i}" for i in ("1m", "5m", "15m", "30m", "1h", "4h", "1d")]
    one = rows["traders.1m"]
    assert (one["waiting"], one["delayed"], one["running"]) == (2, 1, 1)
    assert one["oldest_waiting_since"] == t0 - timedelta(minutes=3)
    assert float(one["oldest_waiting_age_s"]) == pytest.approx(180, abs=5)
    assert rows["traders.5m"]["waiting"] == 0 and rows["traders.5m"]["oldest_waiting_age_s"] is None
    assert rows["traderctl.maintenance"]["waiting"] == 1
    assert rows["traderctl.maintenance"]["oldest_waiting_since"] == t0 - timedelta(seconds=5)


def test_queue_depth_dates_a_retried_trader_job_from_its_retry(conn: Conn) -> None:
    # A trader job has no 'deferred' event: it waits since its slot, unless it was put
    # back in todo later (a retry, `traderctl requeue`), which procrastinate records.
    t0 = now(conn).replace(microsecond=0)
    job = add_job(conn, enqueued_at=t0 - timedelta(minutes=30), status="failed")
    conn.execute(
        "update procrastinate.procrastinate_jobs set status = 'todo' where id = %s", (job,)
    )
    conn.execute(
        "update procrastinate.procrastinate_events set at = %s"
        " where job_id = %s and type = 'retried'",
        (t0 - timedelta(minutes=2), job),
    )
    one = {r["queue_name"]: r for r in view(conn, "queue_depth")}["traders.1m"]
    assert one["waiting"] == 1
    assert one["oldest_waiting_since"] == t0 - timedelta(minutes=2)


@pytest.mark.parametrize("slot", ["", "yesterday", "2026-12-01", "2026-12-01T00:00:00Z"])
def test_queue_depth_survives_a_hand_made_trader_job(conn: Conn, slot: str) -> None:
    # Only the enqueue function's slot format is read; anything else leaves the job
    # undated instead of making the view (and the alerts built on it) fail.
    add_job(conn, slot=slot)
    one = {r["queue_name"]: r for r in view(conn, "queue_depth")}["traders.1m"]
    assert one["waiting"] == 1 and one["oldest_waiting_since"] is None


@pytest.mark.parametrize(
    ("slot", "expected"),
    [
        ("2026-12-01T13:05:00+00:00", datetime(2026, 12, 1, 13, 5, tzinfo=UTC)),
        ("2028-02-29T23:59:59+00:00", datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC)),
        # Impossible dates in the right shape do not raise either (they roll over).
        ("2026-02-30T00:00:00+00:00", datetime(2026, 3, 2, tzinfo=UTC)),
        ("2026-13-01T00:00:00+00:00", datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_trader_job_slot_reads_the_enqueue_format(
    conn: Conn, slot: str, expected: datetime
) -> None:
    conn.execute("set timezone = 'America/New_York'")  # the session's zone plays no part
    row = conn.execute(
        "select backend.trader_job_slot(jsonb_build_object('slot', %s::text))", (slot,)
    ).fetchone()
    assert row == (expected,)


def test_failure_rate_by_interval(conn: Conn) -> None:
    t0 = now(conn)
    user = make_user(conn)
    one, five = make_trader(conn, user_id=user), make_trader(conn, user_id=user, interval="5m")
    for i in range(20):
        at = t0 - timedelta(minutes=10, seconds=i)
        add_run(conn, one, slot=at, status="error" if i < 2 else "ok")
    for i in range(10):
        add_run(conn, one, slot=t0 - timedelta(minutes=30, seconds=i))
    for i in range(10):
        add_run(conn, five, slot=t0 - timedelta(minutes=5 * (i + 1)), interval="5m")
    failed = add_job(conn, status="failed")
    conn.execute(
        "update procrastinate.procrastinate_events set at = %s where job_id = %s and type = 'failed'",
        (t0 - timedelta(minutes=10), failed),
    )
    old_failed = add_job(conn, status="failed")
    conn.execute(
        "update procrastinate.procrastinate_events set at = %s where job_id = %s and type = 'failed'",
        (t0 - timedelta(hours=2), old_failed),
    )

    rows = {r["interval"]: r for r in view(conn, "failure_rate_by_interval")}
    r1 = rows["1m"]
    assert (r1["runs_15m"], r1["errors_15m"], r1["failed_jobs_15m"]) == (20, 2, 1)
    assert float(r1["failure_rate_15m"]) == pytest.approx(3 / 21, abs=1e-4)
    assert (r1["runs_1h"], r1["errors_1h"], r1["failed_jobs_1h"]) == (30, 2, 1)
    assert float(r1["failure_rate_1h"]) == pytest.approx(3 / 31, abs=1e-4)
    assert rows["5m"]["runs_1h"] == 10 and float(rows["5m"]["failure_rate_1h"]) == 0.0
    assert rows["15m"]["failure_rate_15m"] is None


def test_schedule_lag(conn: Conn) -> None:
    t0 = now(conn)
    trader = make_trader(conn, user_id=make_user(conn))
    run_ids = []
    for i in range(1, 6):
        slot = t0 - timedelta(minutes=10 + i)
        started = slot + timedelta(seconds=i)
        run_ids.append(
            add_run(
                conn,
                trader,
                slot=slot,
                started_at=started,
                finished_at=started + timedelta(milliseconds=100),
            )
        )
    slot = t0 - timedelta(minutes=11)
    for symbol, lag in (("AAAUSDT", 2), ("BBBUSDT", 4)):
        conn.execute(
            "insert into public.signals (trader_id, user_id, run_id, slot, symbol, interval,"
            " created_at) select %s, user_id, %s, %s, %s, '1m', %s from public.traders"
            " where id = %s",
            (trader, run_ids[0], slot, symbol, slot + timedelta(seconds=lag), trader),
        )

    rows = {r["interval"]: r for r in view(conn, "schedule_lag")}
    r = rows["1m"]
    assert r["runs"] == 5
    assert float(r["start_lag_p50_ms"]) == 3000.0
    assert float(r["start_lag_p99_ms"]) == pytest.approx(4960.0, abs=0.1)
    assert float(r["commit_lag_p50_ms"]) == 3100.0
    assert float(r["commit_lag_p99_ms"]) == pytest.approx(5060.0, abs=0.1)
    assert r["signals"] == 2
    assert float(r["signal_lag_p50_ms"]) == 3000.0
    assert float(r["signal_lag_p99_ms"]) == pytest.approx(3980.0, abs=0.1)  # 2000 + 0.99 * 2000
    assert rows["5m"]["runs"] == 0 and rows["5m"]["start_lag_p50_ms"] is None


def test_snapshot_freshness(conn: Conn) -> None:
    t0 = now(conn)
    make_trader(conn, user_id=make_user(conn), interval="1m", timeframes=["1m", "4h"])
    make_trader(conn, user_id=make_user(conn), interval="5m", enabled=False)
    expected = {
        r[0]: r[1]
        for r in conn.execute(
            "select name, to_timestamp(floor(extract(epoch from now()) / (minutes * 60))"
            " * minutes * 60) from backend.schedule_intervals"
        ).fetchall()
    }
    conn.execute(
        "insert into public.market_snapshots"
        " (interval, version, closed_through, refreshed_at, symbols, stale_symbols) values"
        " ('ticker', 7, null, %s, 300, 0),"
        " ('1m', 9, %s, %s, 300, 2),"
        " ('4h', 3, %s, %s, 300, 0)",
        (
            t0 - timedelta(seconds=10),
            expected["1m"],
            t0 - timedelta(seconds=5),
            expected["4h"] - timedelta(hours=4),
            t0 - timedelta(hours=1),
        ),
    )

    rows = {r["interval"]: r for r in view(conn, "snapshot_freshness")}
    assert list(rows) == ["ticker", "1m", "5m", "15m", "30m", "1h", "4h", "1d"]
    assert rows["ticker"]["stale"] is False and rows["ticker"]["traders"] == 1
    assert float(rows["ticker"]["refresh_age_s"]) == pytest.approx(10, abs=5)
    one = rows["1m"]
    assert (one["stale"], one["version"], one["stale_symbols"], one["traders"]) == (
        False,
        9,
        2,
        1,
    )
    assert float(one["behind_s"]) == 0.0
    four = rows["4h"]
    assert float(four["behind_s"]) == 4 * 3600
    # Behind the latest 4h boundary: stale once the boundary is 2 minutes old.
    assert four["stale"] is (t0 - expected["4h"] > timedelta(minutes=2))
    assert rows["5m"]["stale"] is True and rows["5m"]["stale_reason"] == "never published"
    assert rows["5m"]["traders"] == 0  # the only 5m trader is disabled
    assert rows["1h"]["traders"] == 0


def test_snapshot_reuse(conn: Conn) -> None:
    t0 = now(conn)
    trader = make_trader(conn, user_id=make_user(conn))
    x, y = t0 - timedelta(minutes=3), t0 - timedelta(minutes=2)
    plan = [("w1", x)] * 3 + [("w2", x)] * 2 + [("w1", y)]
    for i, (worker, as_of) in enumerate(plan):
        add_run(conn, trader, slot=t0 - timedelta(minutes=i + 1), worker=worker, data_as_of=as_of)

    rows = {r["interval"]: r for r in view(conn, "snapshot_reuse")}
    r = rows["1m"]
    assert (r["runs"], r["snapshot_versions"], r["loads"]) == (6, 2, 3)
    assert float(r["reuse_rate"]) == 0.5
    assert rows["5m"]["reuse_rate"] is None


def test_skips_by_reason(conn: Conn) -> None:
    t0 = now(conn)
    ticks = [
        (t0 - timedelta(minutes=5), {"1m": {"enqueued": 3, "skipped_backlog": 2},
                                     "5m": {"skipped_hourly_cap": 4}}, 1),
        (t0 - timedelta(minutes=30), {"1m": {"skipped_backlog": 5}}, 1),
        (t0 - timedelta(hours=2), {"1m": {"skipped_backlog": 100}}, 9),
    ]  # fmt: skip
    for slot, by_interval, invalid_count in ticks:
        conn.execute(
            "insert into backend.scheduler_ticks (slot, window_start, enqueued, skipped_backlog,"
            " skipped_hourly_cap, skipped_invalid_interval, by_interval, duration_ms)"
            " values (%s, %s, 0, 0, 0, %s, %s, 1)",
            (slot, slot, invalid_count, json.dumps(by_interval)),
        )

    rows = {(r["reason"], r["interval"]): r for r in view(conn, "skips_by_reason")}
    assert len(rows) == 2 * 7 + 1
    backlog = rows[("backlog", "1m")]
    assert (backlog["skipped_15m"], backlog["skipped_1h"], backlog["latest"]) == (2, 7, 2)
    assert backlog["last_skip_slot"] == t0 - timedelta(minutes=5)
    cap = rows[("hourly_cap", "5m")]
    assert (cap["skipped_15m"], cap["skipped_1h"], cap["latest"]) == (4, 4, 4)
    assert rows[("hourly_cap", "1m")]["skipped_1h"] == 0
    invalid = rows[("invalid_interval", None)]
    assert (invalid["skipped_15m"], invalid["skipped_1h"], invalid["latest"]) == (1, 2, 1)


def test_cron_job_health_is_empty_without_pg_cron(conn: Conn) -> None:
    row = conn.execute("select to_regclass('cron.job_run_details')").fetchone()
    assert row == (None,)
    assert view(conn, "cron_job_health") == []


def test_cron_job_health_and_alerts_with_pg_cron(cron_db_url: str) -> None:
    names = ("traderctl-test-ops-missing", "traderctl-test-ops-failing")
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        # Every 30 minutes: no real run should happen during the test (checked below).
        ids = [
            conn.execute(
                "select cron.schedule(%s, '*/30 * * * *', 'select 1')", (name,)
            ).fetchone()[0]  # type: ignore[index]
            for name in names
        ]
        try:
            t0 = now(conn)
            details = [
                (ids[0], "succeeded", "1 row", t0 - timedelta(minutes=50)),
                (ids[0], "failed", "ERROR: boom", t0 - timedelta(minutes=40)),
                (ids[1], "failed", "ERROR: again", t0 - timedelta(minutes=5)),
            ]
            for jobid, status, message, start in details:
                conn.execute(
                    "insert into cron.job_run_details (jobid, job_pid, database, username,"
                    " command, status, return_message, start_time, end_time)"
                    " values (%s, 1, current_database(), current_user, 'select 1', %s, %s, %s,"
                    " %s)",
                    (jobid, status, message, start, start + timedelta(seconds=1)),
                )
            rows = {r["jobname"]: r for r in view(conn, "cron_job_health")}
            missing, failing = rows[names[0]], rows[names[1]]
            assert missing["period_minutes"] == 30
            assert (missing["runs_1h"], missing["failures_1h"], missing["failures_15m"]) == (
                2,
                1,
                0,
            )
            assert missing["last_status"] == "failed"
            assert missing["last_message"] == "ERROR: boom"
            assert missing["last_success"] == t0 - timedelta(minutes=50, seconds=-1)
            real_run = missing["last_start"] != t0 - timedelta(minutes=40)
            if not real_run:
                assert missing["missing"] is True
            assert failing["failures_15m"] == 1 and failing["missing"] is False

            alerts = {(a["alert"], a["subject"]) for a in view(conn, "alerts")}
            assert ("cron_failing", names[1]) in alerts
            assert ("cron_failing", names[0]) not in alerts
            if not real_run:
                assert ("cron_missing", names[0]) in alerts
            assert ("cron_missing", names[1]) not in alerts
        finally:
            for jobid, name in zip(ids, names, strict=True):
                conn.execute("select cron.unschedule(%s)", (name,))
                conn.execute("delete from cron.job_run_details where jobid = %s", (jobid,))


def test_stalled_jobs(conn: Conn) -> None:
    row = conn.execute(
        "insert into procrastinate.procrastinate_workers (last_heartbeat)"
        " values (now() - interval '5 minutes'), (now()) returning id"
    ).fetchall()
    dead, alive = row[0][0], row[1][0]
    stalled = add_job(conn, status="doing", worker_id=dead)
    add_job(conn, status="doing", worker_id=alive)
    orphan = add_job(conn, status="doing")
    rows = view(conn, "stalled_jobs")
    assert [r["job_id"] for r in rows] == [stalled, orphan]
    assert float(rows[0]["heartbeat_age_s"]) == pytest.approx(300, abs=5)


def test_alerts(conn: Conn) -> None:
    t0 = now(conn)
    conn.execute("update backend.scheduler_state set last_slot = date_trunc('minute', now())")
    user = make_user(conn)
    one, five = (
        make_trader(conn, user_id=user),
        make_trader(conn, user_id=make_user(conn), interval="5m"),
    )
    # 1m: 1 error in 10 runs = 10% > 5%; 5m: 1 in 20 = 5%, not over.
    for i in range(10):
        add_run(conn, one, slot=t0 - timedelta(minutes=i + 1), status="error" if i == 0 else "ok")
    for i in range(20):
        add_run(
            conn,
            five,
            slot=t0 - timedelta(minutes=14, seconds=i),
            interval="5m",
            status="error" if i == 0 else "ok",
        )
    add_job(conn, queue="traders.1m", enqueued_at=t0 - timedelta(minutes=3))
    add_job(conn, queue="traders.5m", enqueued_at=t0 - timedelta(minutes=1))
    expected = {
        r[0]: r[1]
        for r in conn.execute(
            "select name, to_timestamp(floor(extract(epoch from now()) / (minutes * 60))"
            " * minutes * 60) from backend.schedule_intervals"
        ).fetchall()
    }
    conn.execute(
        "insert into public.market_snapshots (interval, version, closed_through, refreshed_at,"
        " symbols, stale_symbols) values ('ticker', 1, null, now() - interval '10 minutes', 5, 0),"
        " ('1m', 1, %s, now(), 5, 2), ('5m', 1, %s, now(), 5, 0)",
        (expected["1m"], expected["5m"]),
    )
    conn.execute(
        "insert into backend.market_data_events (at, kind, severity, message) values"
        " (now() - interval '10 minutes', 'banned', 'critical', 'IP banned until 12:00'),"
        " (now() - interval '30 minutes', 'rate_limited', 'warning', '429')"
    )
    worker = conn.execute(
        "insert into procrastinate.procrastinate_workers (last_heartbeat)"
        " values (now() - interval '5 minutes') returning id"
    ).fetchone()
    assert worker is not None
    add_job(conn, queue="traders.15m", status="doing", worker_id=worker[0])

    alerts = {(a["alert"], a["subject"]): a for a in view(conn, "alerts")}
    assert set(alerts) == {
        ("failure_rate", "1m"),
        ("queue_backlog", "traders.1m"),
        ("stale_market_data", "ticker"),
        ("stale_symbols", "1m"),
        ("exchange_banned", "exchange"),
        ("stalled_jobs", "traders.15m"),
    }, alerts
    rate = alerts[("failure_rate", "1m")]
    assert rate["severity"] == "critical"
    assert rate["value"] == pytest.approx(0.1) and rate["threshold"] == 0.05
    assert "10.0% of 10 runs" in rate["detail"]
    assert alerts[("queue_backlog", "traders.1m")]["value"] == pytest.approx(180, abs=5)
    assert "tickers not refreshed" in alerts[("stale_market_data", "ticker")]["detail"]
    assert alerts[("stalled_jobs", "traders.15m")]["severity"] == "warning"

    conn.execute("update backend.scheduler_state set last_slot = now() - interval '10 minutes'")
    conn.execute(
        "insert into backend.market_data_events (kind, severity, message)"
        " values ('rate_limited', 'warning', '429 Too Many Requests')"
    )
    alerts2 = {(a["alert"], a["subject"]) for a in view(conn, "alerts")}
    assert ("scheduler_behind", "scheduler") in alerts2
    assert ("exchange_rate_limited", "exchange") in alerts2


RUNBOOK_DIR = Path(__file__).resolve().parents[2] / "sql" / "views"


@pytest.mark.parametrize("path", sorted(RUNBOOK_DIR.glob("*.sql")), ids=lambda p: p.name)
def test_runbook_queries_run_and_say_what_they_answer(conn: Conn, path: Path) -> None:
    text = path.read_text()
    first = text.splitlines()[0]
    assert first.startswith("-- ") and first.endswith("?"), f"{path.name}: header question"
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    statements = [s for s in code.split(";") if s.strip()]
    assert len(statements) == 1, f"{path.name}: one query per file"
    with conn.transaction():
        conn.execute("set local role service_role")  # what an operator's service key can do
        conn.execute(text).fetchall()


def test_never_run_cron_job_is_missing_only_after_its_first_chance(cron_db_url: str) -> None:
    """A job scheduled on a server up for less than its period + 90 s is not yet missing."""
    name = "traderctl-test-ops-never-ran"
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        conn.execute("select cron.schedule(%s, '*/30 * * * *', 'select 1')", (name,))
        try:
            row = conn.execute(
                "select now() - pg_postmaster_start_time() > interval '31 minutes 30 seconds'"
            ).fetchone()
            assert row is not None
            server_up_long_enough = bool(row[0])  # False on the suite's own fresh server
            rows = {r["jobname"]: r for r in view(conn, "cron_job_health")}
            assert rows[name]["last_start"] is None
            assert rows[name]["missing"] is server_up_long_enough
            alerts = {(a["alert"], a["subject"]) for a in view(conn, "alerts")}
            assert (("cron_missing", name) in alerts) is server_up_long_enough
        finally:
            conn.execute("select cron.unschedule(%s)", (name,))
