"""Fault containment at the SQL level: the claim's plan, recovery beside a stuck session,
commits of jobs a worker no longer holds, and the service sessions' limits.

The process-level counterparts (poison jobs, frozen and killed workers, pools) are in
tests/acceptance/test_worker_faults.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user, run_record
from tests.worker_support import enqueue, minute, wait_until
from traderctl.worker import queries
from traderctl.worker.db import SessionLimits, connect
from traderctl.worker.queue import manager
from traderctl.worker.queue.contract import MAINTENANCE_QUEUE, TRADER_TASK, trader_queue

WAITING = 3000
FINISHED = 60_000


def _plan(conn: psycopg.Connection[Any], mode: str) -> str:
    """EXPLAIN of the claim function's statement, planned as the function plans it
    (a prepared statement with parameters; ``mode`` forces the generic or custom plan)."""
    body = conn.execute(
        "select prosrc from pg_proc where proname = 'claim_trader_jobs'"
        " and pronamespace = 'backend'::regnamespace"
    ).fetchone()
    assert body is not None
    text = (
        str(body[0])
        .replace("p_queue_names", "$1")
        .replace("p_worker_id", "$2")
        .replace("p_limit", "$3")
    )
    conn.execute("deallocate all")
    conn.execute(f"prepare claim_probe(varchar[], bigint, integer) as {text}")
    conn.execute(f"set plan_cache_mode = {mode}")
    rows = conn.execute("explain execute claim_probe(array['traders.1m'], null, 32)").fetchall()
    conn.execute("reset plan_cache_mode")
    return "\n".join(r[0] for r in rows)


def _insert_waiting_jobs(conn: psycopg.Connection[Any], count: int) -> None:
    """``count`` todo trader jobs on traders.1m, each with a lock of its own."""
    conn.execute(
        "insert into procrastinate.procrastinate_jobs"
        " (queue_name, task_name, priority, lock, queueing_lock, args, status)"
        " select 'traders.1m', %s, 3, l, l, '{}', 'todo'"
        " from (select 'trader:' || gen_random_uuid() as l from generate_series(1, %s)) x",
        (TRADER_TASK, count),
    )


def test_claim_plan_is_an_index_lookup_per_candidate_under_misleading_statistics(
    conn: psycopg.Connection[Any],
) -> None:
    """ANALYZE sees a table of finished jobs only; then 3,000 jobs wait. Whatever plan
    the statistics suggest, the lock probe must be a lookup by lock, never a scan of the
    waiting jobs (the degraded claims of the fault-injection run)."""
    conn.execute("alter table procrastinate.procrastinate_jobs set (autovacuum_enabled = false)")
    conn.execute(
        "insert into procrastinate.procrastinate_jobs"
        " (queue_name, task_name, priority, lock, args, status)"
        " select 'traders.1m', %s, 3, 'trader:' || gen_random_uuid(), '{}', 'succeeded'"
        " from generate_series(1, %s)",
        (TRADER_TASK, FINISHED),
    )
    conn.execute("analyze procrastinate.procrastinate_jobs")
    _insert_waiting_jobs(conn, WAITING)
    for mode in ("force_generic_plan", "force_custom_plan"):
        plan = _plan(conn, mode)
        probe = plan[plan.index("SubPlan") :]
        assert "Index Scan using procrastinate_jobs_lock_lookup_idx" in probe, plan
        assert "Index Cond: (lock = jobs.lock)" in probe, plan
        assert "hashed SubPlan" not in plan, plan
        assert "Seq Scan" not in plan, plan

    # And it still claims by procrastinate's rules: 32 distinct locks, in order.
    worker_id = manager.register_worker(conn)
    rows = manager.claim_jobs(conn, ["traders.1m"], worker_id, 32)
    assert len(rows) == 32
    assert len({r["lock"] for r in rows}) == 32
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)


def test_maintenance_fetch_reads_its_own_index_whatever_waits(
    conn: psycopg.Connection[Any],
) -> None:
    """procrastinate's fetch for the maintenance queue is planned per call and reads the
    maintenance queue's own index: thousands of waiting trader jobs are never walked."""
    config = conn.execute(
        "select proconfig from pg_proc where proname = 'procrastinate_fetch_job_v2'"
        " and pronamespace = 'procrastinate'::regnamespace"
    ).fetchone()
    assert config is not None and "plan_cache_mode=force_custom_plan" in (config[0] or [])
    _insert_waiting_jobs(conn, WAITING)
    conn.execute("analyze procrastinate.procrastinate_jobs")
    body = conn.execute(
        "select prosrc from pg_proc where proname = 'procrastinate_fetch_job_v2'"
        " and pronamespace = 'procrastinate'::regnamespace"
    ).fetchone()
    assert body is not None
    source = str(body[0])
    # The candidate query, as the function runs it with its queue list bound.
    start = source.index("SELECT jobs.*")
    end = source.index("SKIP LOCKED", start) + len("SKIP LOCKED")
    candidate = source[start:end].replace("target_queue_names", "$1")
    conn.execute("deallocate all")
    conn.execute("set search_path = procrastinate")  # the function's own, pinned
    conn.execute(f"prepare fetch_probe(varchar[]) as {candidate}")
    rows = conn.execute(
        f"explain execute fetch_probe(array['{MAINTENANCE_QUEUE}'])"  # a fixed identifier
    ).fetchall()
    conn.execute("reset search_path")
    plan = "\n".join(r[0] for r in rows)
    assert "procrastinate_jobs_maintenance_todo_idx" in plan, plan
    assert "Seq Scan" not in plan, plan
    worker_id = manager.register_worker(conn)
    job = conn.execute(
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name, args, status)"
        " values (%s, 'prune', '{}', 'todo') returning id",
        (MAINTENANCE_QUEUE,),
    ).fetchone()
    fetched = conn.execute(
        "select id from procrastinate.procrastinate_fetch_job_v2(array[%s]::varchar[], %s)",
        (MAINTENANCE_QUEUE, worker_id),
    ).fetchone()
    assert fetched == job


def _jit_compiled_statements(
    conn: psycopg.Connection[Any], run: Any, *, nested: bool = True
) -> list[str]:
    """The first line of every statement run inside a function (``nested``; else at top
    level) during ``run`` that was JIT-compiled, from auto_explain's plans sent to this
    session as notices, with jit_above_cost = 0 (every statement that may use JIT does)."""
    notes: list[str] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        if bool(diag.context) == nested:
            notes.append(diag.message_primary or "")

    conn.add_notice_handler(keep)
    conn.execute("load 'auto_explain'")
    for setting, value in (
        ("auto_explain.log_min_duration", "0"),
        ("auto_explain.log_nested_statements", "on"),
        ("jit", "on"),
        ("jit_above_cost", "0"),
        ("client_min_messages", "log"),
    ):
        conn.execute(f"set {setting} = {value}")  # fixed identifiers
    try:
        run()
    finally:
        conn.execute("reset client_min_messages")
        conn.execute("reset jit_above_cost")
        conn.execute("reset auto_explain.log_min_duration")
        conn.remove_notice_handler(keep)
    return [
        next((line.strip() for line in n.splitlines()[1:] if line.strip()), n)
        for n in notes
        if "JIT:" in n
    ]


def test_claim_and_commit_are_never_jit_compiled(conn: psycopg.Connection[Any]) -> None:
    """The claim's and the commit's plans are costed from the table statistics, not from
    the 32 rows of a batch: statistics taken mid-tick put them over jit_above_cost, and
    compiling them (~24 ms) made every claim of a 100,000-trader tick take 25-30 ms
    instead of 4 ms until the next ANALYZE. Here every statement that may be compiled is;
    none of the statements the claim and the commit run may be. (The worker's own calls of
    them are costed from the functions' declared row counts, never from statistics.)"""
    control = _jit_compiled_statements(
        conn,
        lambda: conn.execute("select count(*) from procrastinate.procrastinate_jobs"),
        nested=False,
    )
    if not control:
        pytest.skip("this server cannot JIT-compile (no llvmjit): nothing to guard against")

    user = make_user(conn, tier="elite")
    trader = make_trader(conn, user_id=user)
    slot = minute(datetime.now(UTC)) - timedelta(minutes=5)
    job = enqueue(conn, trader, slot)
    worker_id = manager.register_worker(conn)
    claimed: list[dict[str, Any]] = []
    committed: list[dict[str, Any]] = []

    def claim_and_commit() -> None:
        claimed.extend(manager.claim_jobs(conn, [trader_queue("1m")], worker_id, 32))
        committed.extend(
            manager.commit_runs(
                conn,
                runs_json=json.dumps(
                    [run_record(trader, slot, job, ["AAAUSDT"], symbols_evaluated=1, prices={})]
                ),
                worker="jit-probe",
                disable_after=10,
                worker_id=worker_id,
                finish_job_ids=[job],
                delete_jobs=True,
            )
        )

    compiled = _jit_compiled_statements(conn, claim_and_commit)
    assert [r["id"] for r in claimed] == [job]
    assert [r["outcome"] for r in committed] == ["committed"]
    assert compiled == [], compiled


def test_claim_keeps_the_lock_rules(conn: psycopg.Connection[Any]) -> None:
    """One job per lock, a lock held by a doing job blocks, higher priority goes first."""
    user = make_user(conn, tier="elite")
    t1, t2, t3 = (make_trader(conn, user_id=user, name=f"t{i}") for i in range(3))
    slot = minute(datetime.now(UTC)) - timedelta(minutes=5)
    a = enqueue(conn, t1, slot, priority=1)
    b = enqueue(conn, t1, slot + timedelta(minutes=1), priority=9, queueing_lock=False)
    c = enqueue(conn, t2, slot)
    d = enqueue(conn, t3, slot)
    worker_id = manager.register_worker(conn)
    first = manager.claim_jobs(conn, [trader_queue("1m")], worker_id, 1)
    assert [r["id"] for r in first] == [b]  # priority 9 first
    rest = manager.claim_jobs(conn, [trader_queue("1m")], worker_id, 10)
    # a shares t1's lock with b, which is doing: not eligible.
    assert sorted(r["id"] for r in rest) == [c, d]
    assert a not in {r["id"] for r in rest}


def _held_by_stuck_session(db_url: str, job_id: int) -> psycopg.Connection[Any]:
    """A session that locked ``job_id`` and then stopped talking (a frozen worker's
    commit): an open transaction holding the row lock."""
    stuck = psycopg.connect(db_url)
    stuck.execute(
        "select 1 from procrastinate.procrastinate_jobs where id = %s for update", (job_id,)
    )
    return stuck


def test_recovery_does_not_wait_for_a_frozen_sessions_locks(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    user = make_user(conn, tier="elite")
    frozen_trader, dead_trader = make_trader(conn, user_id=user), make_trader(conn, user_id=user)
    slot = minute(datetime.now(UTC)) - timedelta(minutes=5)
    frozen_job = enqueue(conn, frozen_trader, slot)
    dead_job = enqueue(conn, dead_trader, slot)
    frozen_worker = manager.register_worker(conn)
    dead_worker = manager.register_worker(conn)
    manager.claim_jobs(conn, [trader_queue("1m")], frozen_worker, 1)
    manager.claim_jobs(conn, [trader_queue("1m")], dead_worker, 1)
    conn.execute(
        "update procrastinate.procrastinate_workers set last_heartbeat = now() - interval '1 hour'"
    )
    stuck = _held_by_stuck_session(db_url, frozen_job)
    try:
        # Bounded: before the fix this waited for the stuck session forever.
        conn.execute("set statement_timeout = '5s'")
        rows = conn.execute(
            queries.get("recover_stalled_jobs"), {"stalled_seconds": 30.0, "max_attempts": 5}
        ).fetchall()
        conn.execute("reset statement_timeout")
        assert [(r[0], r[2]) for r in rows] == [(dead_job, "requeued")]
        workers = {r[0] for r in conn.execute("select id from procrastinate.procrastinate_workers")}
        assert dead_worker not in workers  # pruned
        assert frozen_worker in workers  # its job is still locked: left for a later round
    finally:
        stuck.close()
    # Once the stuck session is gone (the server ends it a moment after the client closes),
    # a later round takes care of the rest.
    requeued: list[tuple[Any, ...]] = []

    def recovered() -> bool:
        requeued.extend(
            conn.execute(
                queries.get("recover_stalled_jobs"), {"stalled_seconds": 30.0, "max_attempts": 5}
            ).fetchall()
        )
        left = conn.execute("select count(*) from procrastinate.procrastinate_workers").fetchone()
        return bool(requeued) and left == (0,)

    wait_until(recovered, timeout=10, step=0.2)
    assert [(r[0], r[2]) for r in requeued] == [(frozen_job, "requeued")]


@pytest.mark.parametrize("delete_jobs", [True, False], ids=["delete", "keep"])
def test_commit_writes_nothing_for_jobs_the_worker_no_longer_holds(
    conn: psycopg.Connection[Any], delete_jobs: bool
) -> None:
    """A worker paused past the stalled timeout resumes and commits: the job it lost to
    recovery (now another worker's) gets no run from it; the one it still holds does, and
    only that one is finished (deleted, or kept as succeeded)."""
    user = make_user(conn, tier="elite")
    kept_trader, lost_trader = make_trader(conn, user_id=user), make_trader(conn, user_id=user)
    slot = minute(datetime.now(UTC)) - timedelta(minutes=5)
    kept, lost = enqueue(conn, kept_trader, slot), enqueue(conn, lost_trader, slot)
    paused = manager.register_worker(conn)
    manager.claim_jobs(conn, [trader_queue("1m")], paused, 2)
    # Recovery gave `lost` to another worker meanwhile.
    other = manager.register_worker(conn)
    conn.execute(
        "update procrastinate.procrastinate_jobs set worker_id = %s where id = %s", (other, lost)
    )
    rows = manager.commit_runs(
        conn,
        runs_json=json.dumps(
            [
                run_record(kept_trader, slot, kept, ["AAAUSDT"], symbols_evaluated=1, prices={}),
                run_record(lost_trader, slot, lost, ["AAAUSDT"], symbols_evaluated=1, prices={}),
            ]
        ),
        worker="paused",
        disable_after=10,
        worker_id=paused,
        finish_job_ids=[kept, lost],
        delete_jobs=delete_jobs,
    )
    assert {r["job_id"]: r["outcome"] for r in rows} == {kept: "committed", lost: "not_held"}
    runs = conn.execute("select trader_id from public.trader_runs").fetchall()
    assert runs == [(kept_trader,)]
    statuses = dict(
        conn.execute(
            "select id, status::text from procrastinate.procrastinate_jobs where id = any(%s)",
            ([kept, lost],),
        ).fetchall()
    )
    assert statuses == ({lost: "doing"} if delete_jobs else {kept: "succeeded", lost: "doing"})


def test_service_sessions_carry_the_configured_limits(db_url: str) -> None:
    limits = SessionLimits(
        statement_timeout_ms=1234,
        lock_timeout_ms=567,
        idle_in_transaction_timeout_ms=8900,
        keepalive_idle_seconds=11,
        keepalive_interval_seconds=4,
        keepalive_count=2,
    )
    with connect(db_url, limits=limits) as session:
        shown = {
            name: session.execute(f"show {name}").fetchone()[0]  # type: ignore[index]
            for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
        }
        assert shown == {
            "statement_timeout": "1234ms",
            "lock_timeout": "567ms",
            "idle_in_transaction_session_timeout": "8900ms",
        }
        assert session.info.get_parameters().get("keepalives") == "1"
        assert session.info.get_parameters().get("keepalives_idle") == "11"
    with connect(db_url) as admin:  # admin sessions: no limits
        row = admin.execute("show statement_timeout").fetchone()
        assert row == ("0",)


def test_idle_in_transaction_session_is_ended_and_its_locks_freed(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    user = make_user(conn, tier="elite")
    trader = make_trader(conn, user_id=user)
    session = connect(db_url, limits=SessionLimits(idle_in_transaction_timeout_ms=300))
    try:
        session.execute("begin")
        session.execute("select 1 from public.traders where id = %s for update", (trader,))
        # The client goes quiet inside its transaction; the server ends the session.
        conn.execute("set lock_timeout = '5s'")
        conn.execute("update public.traders set name = 'free' where id = %s", (trader,))
        conn.execute("reset lock_timeout")
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            session.execute("select 1")
    finally:
        session.close()


def test_claim_under_a_pruned_worker_id_asks_to_register_again(
    conn: psycopg.Connection[Any],
) -> None:
    """A worker resumed after being pruned claims with its old id: a clear WorkerPruned
    (the loop registers again), not a foreign-key crash."""
    user = make_user(conn, tier="elite")
    job = enqueue(conn, make_trader(conn, user_id=user), minute(datetime.now(UTC)))
    worker_id = manager.register_worker(conn)
    manager.unregister_worker(conn, worker_id)
    with pytest.raises(manager.WorkerPruned, match=f"worker {worker_id} is no longer registered"):
        manager.claim_jobs(conn, [trader_queue("1m")], worker_id, 32)
    assert job_rows_status(conn, job) == "todo"


def job_rows_status(conn: psycopg.Connection[Any], job: int) -> str:
    row = conn.execute(
        "select status::text from procrastinate.procrastinate_jobs where id = %s", (job,)
    ).fetchone()
    assert row is not None
    return str(row[0])
