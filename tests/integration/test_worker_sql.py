"""The worker's SQL: batch claim, the one-transaction commit, release, recovery, retention.

Concurrency is tested with two connections and steps in a fixed order: one transaction
holds its locks while the other runs, and we check what the second one sees or waits for.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user, run_record
from tests.worker_support import enqueue, job_statuses, signals_of
from traderctl.worker import queries
from traderctl.worker.config import Settings
from traderctl.worker.queue.contract import trader_queue
from traderctl.worker.runner.maintenance import prune_history, recover_stalled

SLOT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def register(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(queries.get("register_worker")).fetchone()
    assert row is not None
    return int(row[0])


def claim(conn: psycopg.Connection[Any], worker_id: int, limit: int = 10, queues=None) -> list[int]:
    rows = conn.execute(
        queries.get("claim_trader_jobs"),
        {"queues": queues or [trader_queue("1m")], "worker_id": worker_id, "limit": limit},
    ).fetchall()
    return [r[0] for r in rows]


def commit(
    conn: psycopg.Connection[Any],
    records: list[dict[str, Any]],
    *,
    worker_id: int | None = None,
    finish: list[int] | None = None,
    disable_after: int = 10,
) -> list[tuple[Any, ...]]:
    return conn.execute(
        queries.get("commit_trader_runs"),
        {
            "runs": json.dumps(records),
            "worker": "test",
            "disable_after": disable_after,
            "worker_id": worker_id,
            "finish_job_ids": finish or [],
            "delete_jobs": False,
        },
    ).fetchall()


@pytest.fixture
def trader(conn: psycopg.Connection[Any]) -> uuid.UUID:
    return make_trader(conn, user_id=make_user(conn, tier="elite"), code="return true;")


def test_claim_takes_priority_order_and_one_job_per_lock(conn: psycopg.Connection[Any]) -> None:
    user = make_user(conn, tier="elite")
    low = make_trader(conn, user_id=user, code="return 1;")
    high = make_trader(conn, user_id=user, code="return 1;")
    j_low = enqueue(conn, low, SLOT, priority=1)
    j_high = enqueue(conn, high, SLOT, priority=3)
    # A second job of `high` for a later slot (no queueing lock, as after a requeue).
    j_high2 = enqueue(conn, high, SLOT + timedelta(minutes=1), priority=3, queueing_lock=False)
    j_other_queue = enqueue(conn, low, SLOT, interval="5m", priority=1, queueing_lock=False)
    worker = register(conn)

    first = claim(conn, worker, limit=10)
    assert first == [j_high, j_low]  # priority first; one job per lock; only traders.1m
    assert claim(conn, worker) == []  # j_high2 waits for j_high (same lock, doing)
    conn.execute(
        "select procrastinate.procrastinate_finish_job_v1(%s, 'succeeded', false)", (j_high,)
    )
    assert claim(conn, worker) == [j_high2]
    assert claim(conn, worker, queues=[trader_queue("5m")]) == []  # lock of `low` is held
    assert job_statuses(conn)[j_other_queue] == "todo"


def events_of(conn: psycopg.Connection[Any], job_id: int) -> list[str]:
    rows = conn.execute(
        "select type::text from procrastinate.procrastinate_events where job_id = %s order by id",
        (job_id,),
    ).fetchall()
    return [r[0] for r in rows]


def test_a_trader_job_writes_no_deferred_or_started_event(conn: psycopg.Connection[Any]) -> None:
    # The enqueue's `deferred` row and the claim's `started` row said nothing the job row
    # does not (migrations 20261201060000 and 20261201070000); every other status change
    # is still recorded, and every change of any other task's job.
    user = make_user(conn, tier="elite")
    job = enqueue(conn, make_trader(conn, user_id=user, code="return 1;"), SLOT)
    other = conn.execute(
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name, lock, args, status)"
        " values ('maintenance', 'other_task', 'x', '{}', 'todo') returning id"
    ).fetchone()
    assert other is not None
    worker = register(conn)
    assert claim(conn, worker) == [job]
    assert job_statuses(conn)[job] == "doing" and events_of(conn, job) == []
    conn.execute("select backend.requeue_job(%s, null, true, 5)", (job,))
    assert events_of(conn, job) == ["deferred_for_retry"]
    conn.execute(
        "update procrastinate.procrastinate_jobs set status = 'doing' where id = %s", other
    )
    assert events_of(conn, other[0]) == ["deferred", "started"]


def test_deleting_a_job_unlinks_its_periodic_defer_without_a_lock_first(
    conn: psycopg.Connection[Any],
) -> None:
    # Every committed run deletes its job. A BEFORE DELETE row trigger on the jobs table
    # would make each delete lock the row first (one more WAL record per run), so the
    # periodic defers are unlinked by their foreign key's action instead (migration
    # 20261201120000).
    before_delete = conn.execute(
        "select tgname from pg_trigger where tgrelid = 'procrastinate.procrastinate_jobs'::regclass"
        " and not tgisinternal and tgtype & (2 | 8) = (2 | 8)"  # BEFORE, DELETE
    ).fetchall()
    assert before_delete == []
    periodic = conn.execute(
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name, args, status)"
        " values ('maintenance', 'prune', '{}', 'succeeded') returning id"
    ).fetchone()
    assert periodic is not None
    conn.execute(
        "insert into procrastinate.procrastinate_periodic_defers"
        " (task_name, defer_timestamp, job_id) values ('prune', 1, %s)",
        periodic,
    )
    conn.execute("delete from procrastinate.procrastinate_jobs where id = %s", periodic)
    assert conn.execute(
        "select job_id from procrastinate.procrastinate_periodic_defers"
    ).fetchall() == [(None,)]


def test_two_claims_skip_each_others_rows(db_url: str, conn: psycopg.Connection[Any]) -> None:
    user = make_user(conn, tier="elite")
    jobs = [
        enqueue(conn, make_trader(conn, user_id=user, code="return 1;"), SLOT) for _ in range(6)
    ]
    w1, w2 = register(conn), register(conn)
    with psycopg.connect(db_url) as a, psycopg.connect(db_url) as b:
        # Step 1: A claims 3 inside an open transaction (row locks held).
        got_a = claim(a, w1, limit=3)
        # Step 2: B claims while A has not committed: SKIP LOCKED gives it other rows.
        got_b = claim(b, w2, limit=10)
        # Step 3: both commit.
        a.commit()
        b.commit()
    assert len(got_a) == 3
    assert set(got_a).isdisjoint(got_b)
    assert sorted(got_a + got_b) == sorted(jobs)


def test_commit_edge_triggers_and_is_idempotent(conn: psycopg.Connection[Any], trader) -> None:
    s1, s2 = SLOT, SLOT + timedelta(minutes=1)
    out = commit(conn, [run_record(trader, s1, 1, ["AAA", "BBB"])])
    assert [r[3] for r in out] == ["committed"]
    assert signals_of(conn, trader) == [(s1, "AAA"), (s1, "BBB")]

    commit(conn, [run_record(trader, s2, 2, ["BBB", "CCC"])])
    assert signals_of(conn, trader)[2:] == [(s2, "CCC")]

    # The same (trader, slot) again: nothing written, whatever the result says.
    out = commit(conn, [run_record(trader, s2, 3, ["DDD"])])
    assert [r[3] for r in out] == ["duplicate"]
    assert len(signals_of(conn, trader)) == 3

    # An older slot arriving late is recorded but neither signals nor rewinds the state.
    out = commit(conn, [run_record(trader, s1 - timedelta(minutes=1), 4, ["EEE"])])
    assert [r[3] for r in out] == ["committed"]
    assert len(signals_of(conn, trader)) == 3
    row = conn.execute(
        "select symbols, slot from public.trader_matches where trader_id = %s", (trader,)
    ).fetchone()
    assert row == (["BBB", "CCC"], s2)
    t = conn.execute(
        "select run_count, signal_count, last_slot, last_run_status from public.trader_stats"
        " where trader_id = %s",
        (trader,),
    ).fetchone()
    assert t == (3, 3, s2, "ok")
    sig = conn.execute(
        "select price, change_percent, quote_volume, run_id is not null from public.signals"
        " where trader_id = %s and symbol = 'CCC'",
        (trader,),
    ).fetchone()
    assert sig is not None and float(sig[0]) == 100.5 and float(sig[1]) == 2.25 and sig[3]


def test_same_slot_committed_by_two_connections_once(db_url: str, trader) -> None:
    """Two workers finish the same (trader, slot): the second commit waits, then writes nothing."""
    results: dict[str, Any] = {}
    with psycopg.connect(db_url) as a, psycopg.connect(db_url) as b:
        # Step 1: A commits its run inside an open transaction (holds the trader's stats
        # row lock).
        results["a"] = commit(a, [run_record(trader, SLOT, 1, ["AAA"])])

        # Step 2: B tries the same slot with another result; it must wait for A.
        def second() -> None:
            results["b"] = commit(b, [run_record(trader, SLOT, 2, ["AAA", "BBB"])])
            b.commit()

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "B should wait for A's lock on the trader"
        # Step 3: A commits; B resumes, finds the run and writes nothing.
        a.commit()
        thread.join(10)
        assert not thread.is_alive()
    assert [r[3] for r in results["a"]] == ["committed"]
    assert [r[3] for r in results["b"]] == ["duplicate"]
    with psycopg.connect(db_url) as check:
        assert signals_of(check, trader) == [(SLOT, "AAA")]
        runs = check.execute("select count(*) from public.trader_runs").fetchone()
        assert runs == (1,)


def test_commit_finishes_only_jobs_still_held(conn: psycopg.Connection[Any], trader) -> None:
    job = enqueue(conn, trader, SLOT)
    worker = register(conn)
    assert claim(conn, worker) == [job]
    other = register(conn)
    commit(conn, [run_record(trader, SLOT, job, [])], worker_id=other, finish=[job])
    assert job_statuses(conn)[job] == "doing"  # not held by `other`
    commit(conn, [run_record(trader, SLOT, job, [])], worker_id=worker, finish=[job])
    assert job_statuses(conn)[job] == "succeeded"


def test_errors_count_and_disable_the_trader(conn: psycopg.Connection[Any], trader) -> None:
    for i in range(3):
        commit(
            conn,
            [run_record(trader, SLOT + timedelta(minutes=i), i, [], status="error")],
            disable_after=3,
        )
    row = conn.execute(
        "select enabled, consecutive_errors, error_count, last_error_type, last_error,"
        " disabled_reason, last_run_status from public.traders t join public.trader_stats s on s.trader_id = t.id where t.id = %s",
        (trader,),
    ).fetchone()
    assert row is not None
    enabled, consecutive, count, etype, message, reason, status = row
    assert (enabled, consecutive, count, etype, status) == (False, 3, 3, "runtime", "error")
    assert "x is not defined" in message
    assert "3 consecutive failed runs" in reason and "x is not defined" in reason
    runs = conn.execute(
        "select status, error_type, error_message from public.trader_runs order by slot"
    ).fetchall()
    assert [r[0] for r in runs] == ["error"] * 3 and runs[0][1] == "runtime"
    # Re-enabling (the user's action) clears the streak and the reason.
    conn.execute("update public.traders set enabled = true where id = %s", (trader,))
    row = conn.execute(
        "select consecutive_errors, disabled_reason from public.traders t join public.trader_stats s on s.trader_id = t.id where t.id = %s",
        (trader,),
    ).fetchone()
    assert row == (0, None)


def test_a_success_resets_the_error_streak(conn: psycopg.Connection[Any], trader) -> None:
    commit(conn, [run_record(trader, SLOT, 1, [], status="error")], disable_after=2)
    commit(conn, [run_record(trader, SLOT + timedelta(minutes=1), 2, [])], disable_after=2)
    commit(
        conn,
        [run_record(trader, SLOT + timedelta(minutes=2), 3, [], status="error")],
        disable_after=2,
    )
    row = conn.execute(
        "select enabled, consecutive_errors, error_count from public.traders t join public.trader_stats s on s.trader_id = t.id"
        " where t.id = %s",
        (trader,),
    ).fetchone()
    assert row == (True, 1, 2)


def test_deleted_trader_is_skipped(conn: psycopg.Connection[Any], trader) -> None:
    conn.execute("delete from public.traders where id = %s", (trader,))
    out = commit(conn, [run_record(trader, SLOT, 1, ["AAA"])])
    assert [r[3] for r in out] == ["trader_deleted"]


def test_deleting_a_trader_deletes_its_stats_runs_signals_and_state(
    conn: psycopg.Connection[Any], trader
) -> None:
    # Runs, signals and match state hang off the stats row, which hangs off the trader.
    commit(conn, [run_record(trader, SLOT, 1, ["AAA"])])
    conn.execute("delete from public.traders where id = %s", (trader,))
    for table in ("trader_stats", "trader_runs", "signals", "trader_matches"):
        row = conn.execute(
            f"select count(*) from public.{table} where trader_id = %s", (trader,)
        ).fetchone()
        assert row == (0,), table


def test_a_trader_without_stats_row_still_gets_its_runs(
    conn: psycopg.Connection[Any], trader
) -> None:
    # Rows inserted with triggers off (a bulk import) have no stats row; the commit adds it
    # instead of failing the whole batch on the runs' foreign key.
    conn.execute("delete from public.trader_stats where trader_id = %s", (trader,))
    out = commit(conn, [run_record(trader, SLOT, 1, ["AAA"])])
    assert [r[3] for r in out] == ["committed"]
    row = conn.execute(
        "select run_count, signal_count from public.trader_stats where trader_id = %s",
        (trader,),
    ).fetchone()
    assert row == (1, 1)


def test_a_commit_does_not_wait_for_the_users_trader_row(db_url: str, trader) -> None:
    """A user editing their trader (row locked in an open transaction) does not hold up
    the commit of its run: the commit locks and writes only the trader's stats row."""
    with psycopg.connect(db_url) as user, psycopg.connect(db_url, autocommit=True) as worker:
        user.execute("update public.traders set name = 'editing' where id = %s", (trader,))
        worker.execute("set lock_timeout = '2s'")
        out = commit(worker, [run_record(trader, SLOT, 1, ["AAA"])])
        assert [r[3] for r in out] == ["committed"]
        user.rollback()


def test_release_and_recover_stalled_jobs(conn: psycopg.Connection[Any], trader) -> None:
    settings = Settings(stalled_seconds=5, job_max_attempts=2)
    job = enqueue(conn, trader, SLOT)
    worker = register(conn)
    assert claim(conn, worker) == [job]
    # The scheduler queues the next slot meanwhile (same queueing lock, todo).
    later = enqueue(conn, trader, SLOT + timedelta(minutes=1))

    # Live worker: nothing to recover.
    assert recover_stalled(conn, settings) == []
    # Its heartbeat stops.
    conn.execute(
        "update procrastinate.procrastinate_workers set last_heartbeat = now() - interval '1 hour'"
    )
    rows = recover_stalled(conn, settings)
    assert [(r["job_id"], r["outcome"]) for r in rows] == [(job, "requeued")]
    row = conn.execute(
        "select status::text, attempts, worker_id, queueing_lock from procrastinate.procrastinate_jobs"
        " where id = %s",
        (job,),
    ).fetchone()
    # Requeued without its queueing lock (the later job holds it), attempts counted.
    assert row == ("todo", 1, None, None)
    # The old slot runs first (same lock, lower id), then the later one.
    w2 = register(conn)
    assert claim(conn, w2) == [job]
    conn.execute(
        "update procrastinate.procrastinate_workers set last_heartbeat = now() - interval '1 hour'"
    )
    rows = recover_stalled(conn, settings)
    assert [(r["job_id"], r["outcome"]) for r in rows] == [(job, "failed")]  # max attempts 2
    assert job_statuses(conn)[later] == "todo"


def test_release_gives_back_only_our_jobs(conn: psycopg.Connection[Any], trader) -> None:
    job = enqueue(conn, trader, SLOT)
    worker = register(conn)
    claim(conn, worker)
    params = {"job_ids": [job], "retry_at": None, "count_attempt": False, "max_attempts": None}
    assert (
        conn.execute(
            queries.get("release_trader_jobs"), params | {"worker_id": worker + 1}
        ).fetchall()
        == []
    )
    rows = conn.execute(
        queries.get("release_trader_jobs"), params | {"worker_id": worker}
    ).fetchall()
    assert rows == [(job, "requeued")]
    row = conn.execute(
        "select status::text, attempts from procrastinate.procrastinate_jobs where id = %s", (job,)
    ).fetchone()
    assert row == ("todo", 0)


def test_prune_history_respects_ages(conn: psycopg.Connection[Any], trader) -> None:
    settings = Settings(retention_jobs_hours=1, retention_runs_hours=2, retention_signals_hours=24)
    old, recent = SLOT - timedelta(days=3), SLOT
    commit(conn, [run_record(trader, old, 1, ["AAA"])])  # run with a signal
    commit(conn, [run_record(trader, old + timedelta(minutes=1), 2, ["AAA"])])  # no new signal
    commit(conn, [run_record(trader, recent, 3, [])])
    conn.execute(
        "update public.trader_runs set finished_at = now() - interval '3 hours' where slot < %s",
        (recent,),
    )
    job_old = enqueue(conn, trader, SLOT)
    conn.execute(
        "select procrastinate.procrastinate_finish_job_v1(%s, 'succeeded', false)", (job_old,)
    )
    conn.execute(
        "update procrastinate.procrastinate_events set at = now() - interval '2 hours'"
        " where job_id = %s",
        (job_old,),
    )
    job_new = enqueue(conn, trader, SLOT + timedelta(minutes=5))

    counts = prune_history(conn, settings)
    # The signal-less old run goes; the run with a signal stays (signals live 24 h).
    assert (counts.jobs, counts.runs, counts.signals) == (1, 1, 0)
    assert set(job_statuses(conn)) == {job_new}
    assert len(signals_of(conn, trader)) == 1

    conn.execute("update public.signals set created_at = now() - interval '2 days'")
    conn.execute("update public.trader_runs set finished_at = now() - interval '2 days'")
    counts = prune_history(conn, settings)
    assert (counts.runs, counts.signals) == (2, 1)
    assert conn.execute("select count(*) from public.trader_runs").fetchone() == (0,)


def test_prune_history_takes_a_runs_signals_with_it(conn: psycopg.Connection[Any], trader) -> None:
    # signals.run_id is no foreign key (migration 20261201080000): a run retention deletes
    # must still take every signal it raised, even one whose own age would keep it, and
    # leave the trader's other runs' signals alone.
    settings = Settings(retention_jobs_hours=1, retention_runs_hours=2, retention_signals_hours=24)
    old, recent = SLOT - timedelta(days=3), SLOT
    commit(conn, [run_record(trader, old, 1, ["AAA", "BBB"])])
    commit(conn, [run_record(trader, recent, 2, ["CCC"])])
    assert sorted(sym for _, sym in signals_of(conn, trader)) == ["AAA", "BBB", "CCC"]
    conn.execute(
        "update public.trader_runs set finished_at = now() - interval '3 days' where slot = %s",
        (old,),
    )
    prune_history(conn, settings)
    assert conn.execute("select slot from public.trader_runs").fetchall() == [(recent,)]
    assert signals_of(conn, trader) == [(recent, "CCC")]
    orphans = conn.execute(
        "select count(*) from public.signals s"
        " where not exists (select 1 from public.trader_runs r where r.id = s.run_id)"
    ).fetchone()
    assert orphans == (0,)


def test_prune_history_removes_browser_reports_with_the_runs_age(
    conn: psycopg.Connection[Any], trader
) -> None:
    settings = Settings(retention_jobs_hours=1, retention_runs_hours=2, retention_signals_hours=24)
    for age in ("3 hours", "1 hour"):
        conn.execute(
            "insert into public.browser_runs (trader_id, user_id, ran_at, candle_open_time,"
            " matched_symbols) select id, user_id, now(), now() - interval '1 minute', '{}'"
            " from public.traders where id = %s",
            (trader,),
        )
        conn.execute(
            "update public.browser_runs set reported_at = now() - %s::interval"
            " where id = (select max(id) from public.browser_runs)",
            (age,),
        )
    counts = prune_history(conn, settings)
    assert counts.reports == 1
    assert conn.execute("select count(*) from public.browser_runs").fetchone() == (1,)
