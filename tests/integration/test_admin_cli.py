"""`traderctl traders|requeue|stats|signals` against a real database.

Most commands run in-process with typer's CliRunner (DATABASE_URL in its env); the exact
stderr line and exit code of errors, `stats --watch` and `signals tail` following live run
`python -m cli` as a subprocess, the way an operator runs them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tests.factories import make_trader, make_user
from traderctl.cli.main import app
from traderctl.worker.admin.stats import OPS_VIEWS
from traderctl.worker.errors import (
    AlertsFiring,
    InvalidUser,
    TierLimitReached,
    TraderNotRunnable,
    UnknownInterval,
    UnknownTrader,
    UnknownUser,
)

Conn = psycopg.Connection[Any]
TRADERCTL = [sys.executable, "-m", "traderctl"]
#: The filter of every trader in the fleet: matches symbols priced above 1.
ADMIN_CODE = "return ticker.c > 1;"


def invoke(db_url: str, *args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env={"DATABASE_URL": db_url})
    return result


def run(db_url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run(
        [*TRADERCTL, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def claim(conn: Conn, queue: str = "traders.1m") -> list[int]:
    """What a trader worker does: register, then claim a batch (backend.claim_trader_jobs)."""
    worker = conn.execute("select procrastinate.procrastinate_register_worker_v1()").fetchone()
    assert worker is not None
    rows = conn.execute(
        "select id from backend.claim_trader_jobs(%s::varchar[], %s, 10)", ([queue], worker[0])
    ).fetchall()
    return [int(r[0]) for r in rows]


def job(conn: Conn, job_id: int) -> dict[str, Any]:
    row = conn.execute(
        "select status::text, attempts, queueing_lock, scheduled_at from"
        " procrastinate.procrastinate_jobs where id = %s",
        (job_id,),
    ).fetchone()
    assert row is not None
    return {"status": row[0], "attempts": row[1], "queueing_lock": row[2], "scheduled_at": row[3]}


@pytest.fixture
def fleet(conn: Conn) -> dict[str, Any]:
    """Two users; alice (free) has a healthy, a failing and a disabled trader; bob one 5m."""
    alice = make_user(conn, email="alice@example.test")
    bob = make_user(conn, email="bob@example.test", tier="pro")
    healthy = make_trader(conn, user_id=alice, name="healthy", code=ADMIN_CODE, timeframes=["1m"])
    failing = make_trader(conn, user_id=alice, name="failing", code=ADMIN_CODE, timeframes=["1m"])
    disabled = make_trader(
        conn, user_id=alice, name="old", enabled=False, code=ADMIN_CODE, timeframes=["1m"]
    )
    five = make_trader(
        conn, user_id=bob, name="five", interval="5m", code=ADMIN_CODE, timeframes=["1m"]
    )
    conn.execute(
        "update public.trader_stats set last_run_status = 'error', consecutive_errors = 3,"
        " error_count = 3, run_count = 5, last_error = 'TypeError: x is undefined',"
        " last_error_type = 'exception', last_error_at = now() where trader_id = %s",
        (failing,),
    )
    conn.execute(
        "update public.traders set disabled_reason = 'tier limit: test' where id = %s", (disabled,)
    )
    conn.execute(
        "insert into public.trader_runs (trader_id, user_id, slot, interval, status, started_at,"
        " duration_ms, signals) values (%s, %s, date_trunc('minute', now()) - interval '1 minute',"
        " '1m', 'ok', now(), 12.5, 1)",
        (healthy, alice),
    )
    return {
        "alice": alice,
        "bob": bob,
        "healthy": healthy,
        "failing": failing,
        "disabled": disabled,
        "five": five,
    }


# -- traders ---------------------------------------------------------------------------
def test_traders_list_filters_and_json_shape(db_url: str, fleet: dict[str, Any]) -> None:
    result = invoke(db_url, "traders", "list", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["total"] == 4
    assert [t["name"] for t in data["traders"]] == ["healthy", "failing", "old", "five"]
    first = data["traders"][0]
    assert set(first) == {
        "id", "user_id", "email", "name", "enabled", "interval", "tier", "last_run_at",
        "last_run_status", "consecutive_errors", "run_count", "error_count", "signal_count",
        "last_error", "schedule_problem", "disabled_reason",
    }  # fmt: skip
    assert first["id"] == str(fleet["healthy"]) and first["tier"] == "free"

    def names(*args: str) -> list[str]:
        res = invoke(db_url, "traders", "list", "--json", *args)
        assert res.exit_code == 0, res.output
        return [t["name"] for t in json.loads(res.stdout)["traders"]]

    assert names("--user", str(fleet["bob"])) == ["five"]
    assert names("--user", "ALICE@example.test") == ["healthy", "failing", "old"]
    assert names("--interval", "5m") == ["five"]
    assert names("--failing") == ["failing"]
    assert names("--disabled") == ["old"]
    assert names("--user", str(fleet["alice"]), "--interval", "5m") == []
    limited = json.loads(invoke(db_url, "traders", "list", "--json", "--limit", "1").stdout)
    assert limited["total"] == 4 and len(limited["traders"]) == 1

    table = invoke(db_url, "traders", "list")
    assert table.exit_code == 0
    assert "healthy" in table.stdout and "traders (4 of 4)" in table.stdout


def test_traders_list_bad_arguments(db_url: str, fleet: dict[str, Any]) -> None:
    unknown_interval = invoke(db_url, "traders", "list", "--interval", "7m")
    assert unknown_interval.exit_code == 1
    assert isinstance(unknown_interval.exception, UnknownInterval)
    assert "use one of 1m, 5m, 15m, 30m, 1h, 4h, 1d" in str(unknown_interval.exception)
    nobody = invoke(db_url, "traders", "list", "--user", str(uuid.uuid4()))
    assert isinstance(nobody.exception, UnknownUser)
    garbage = invoke(db_url, "traders", "list", "--user", "not-a-user")
    assert isinstance(garbage.exception, InvalidUser)


def test_traders_show(db_url: str, fleet: dict[str, Any]) -> None:
    result = invoke(db_url, "traders", "show", str(fleet["failing"]), "--json")
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["id"] == str(fleet["failing"]) and d["email"] == "alice@example.test"
    assert d["tier"] == "free" and d["max_enabled_traders"] == 3 and d["queue_priority"] == 1
    assert d["interval"] == "1m" and d["required_timeframes"] == ["1m"]
    assert d["code_first_line"] == "return ticker.c > 1;" and d["code_lines"] == 1
    assert d["last_error"] == "TypeError: x is undefined" and d["consecutive_errors"] == 3
    assert d["schedule_problem"] is None and d["disabled_reason"] is None
    assert d["next_due_slot"] is not None and d["runs"] == [] and d["jobs"] == []

    healthy = json.loads(invoke(db_url, "traders", "show", str(fleet["healthy"]), "--json").stdout)
    assert len(healthy["runs"]) == 1 and healthy["runs"][0]["status"] == "ok"
    assert healthy["runs"][0]["duration_ms"] == 12.5

    five = json.loads(invoke(db_url, "traders", "show", str(fleet["five"]), "--json").stdout)
    slot = five["next_due_slot"]
    assert slot is not None and int(slot[14:16]) % 5 == 0  # HH:MM on a 5-minute boundary
    assert five["tier"] == "pro"

    off = json.loads(invoke(db_url, "traders", "show", str(fleet["disabled"]), "--json").stdout)
    assert off["next_due_slot"] is None and off["disabled_reason"] == "tier limit: test"

    text = invoke(db_url, "traders", "show", str(fleet["failing"]))
    assert text.exit_code == 0
    assert "TypeError: x is undefined" in text.stdout and "next due slot" in text.stdout

    unknown = invoke(db_url, "traders", "show", str(uuid.uuid4()))
    assert unknown.exit_code == 1 and isinstance(unknown.exception, UnknownTrader)


def test_traders_disable_and_enable(db_url: str, conn: Conn, fleet: dict[str, Any]) -> None:
    trader = str(fleet["healthy"])
    result = invoke(db_url, "traders", "disable", trader, "--reason", "abuse report", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["changed"] is True and data["enabled"] is False
    assert data["disabled_reason"].startswith("disabled by an operator on ")
    assert data["disabled_reason"].endswith(": abuse report")

    again = invoke(db_url, "traders", "disable", trader)
    assert again.exit_code == 0 and "already disabled" in again.stdout

    enabled = invoke(db_url, "traders", "enable", trader)
    assert enabled.exit_code == 0, enabled.output
    assert "enabled (was disabled: disabled by an operator" in enabled.stdout
    row = conn.execute(
        "select enabled, disabled_reason from public.traders where id = %s", (trader,)
    ).fetchone()
    assert row == (True, None)
    # Enabling enqueued the immediate first run, as the frontend's own update does.
    waiting = conn.execute(
        "select count(*) from procrastinate.procrastinate_jobs where queueing_lock = %s"
        " and status = 'todo'",
        (f"trader:{trader}",),
    ).fetchone()
    assert waiting == (1,)


def test_enable_refused_by_tier_limit(db_url: str, conn: Conn, fleet: dict[str, Any]) -> None:
    make_trader(
        conn, user_id=fleet["alice"], name="third", code=ADMIN_CODE, timeframes=["1m"]
    )  # alice (free) now has 3 enabled
    result = invoke(db_url, "traders", "enable", str(fleet["disabled"]))
    assert result.exit_code == 1
    assert isinstance(result.exception, TierLimitReached)
    assert "free tier allows 3 enabled traders" in str(result.exception)
    row = conn.execute(
        "select enabled from public.traders where id = %s", (fleet["disabled"],)
    ).fetchone()
    assert row == (False,)


# -- requeue ---------------------------------------------------------------------------
def test_requeue_trader_enqueues_a_run_a_claim_picks_up(
    db_url: str, conn: Conn, fleet: dict[str, Any]
) -> None:
    trader = str(fleet["healthy"])
    dry = invoke(db_url, "requeue", "--trader", trader, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["jobs"][0]["outcome"] == "would_enqueue"
    assert conn.execute("select count(*) from procrastinate.procrastinate_jobs").fetchone() == (0,)

    result = invoke(db_url, "requeue", "--trader", trader, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "trader" and report["dry_run"] is False
    (queued,) = report["jobs"]
    assert queued["outcome"] == "enqueued" and queued["trader_id"] == trader
    assert queued["queue_name"] == "traders.1m" and queued["slot"].endswith(":00+00:00")
    row = conn.execute(
        "select priority, task_name, lock, queueing_lock from procrastinate.procrastinate_jobs"
        " where id = %s",
        (queued["job_id"],),
    ).fetchone()
    assert row == (100, "run_trader", f"trader:{trader}", f"trader:{trader}")

    second = json.loads(invoke(db_url, "requeue", "--trader", trader, "--json").stdout)
    assert second["jobs"][0]["outcome"] == "already_waiting"
    assert second["jobs"][0]["job_id"] == queued["job_id"]

    assert claim(conn) == [queued["job_id"]]


def test_requeue_trader_refusals(db_url: str, fleet: dict[str, Any]) -> None:
    off = invoke(db_url, "requeue", "--trader", str(fleet["disabled"]))
    assert off.exit_code == 1 and isinstance(off.exception, TraderNotRunnable)
    assert "is disabled (tier limit: test)" in str(off.exception)
    unknown = invoke(db_url, "requeue", "--trader", str(uuid.uuid4()))
    assert unknown.exit_code == 1 and isinstance(unknown.exception, UnknownTrader)


def test_requeue_needs_exactly_one_mode(db_url: str) -> None:
    assert invoke(db_url, "requeue").exit_code == 2
    both = invoke(db_url, "requeue", "--failed", "--stalled")
    assert both.exit_code == 2 and "got --failed and --stalled" in both.output


def _failed_job(conn: Conn, lock: str, attempts: int = 5) -> int:
    row = conn.execute(
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name, lock, queueing_lock,"
        " args) values ('traders.1m', 'run_trader', %s, %s, %s) returning id",
        (lock, lock, json.dumps({"trader_id": lock[7:], "slot": "2026-11-26T10:00:00+00:00"})),
    ).fetchone()
    assert row is not None
    conn.execute(
        "update procrastinate.procrastinate_jobs set status = 'doing' where id = %s", (row[0],)
    )
    conn.execute(
        "update procrastinate.procrastinate_jobs set status = 'failed', attempts = %s"
        " where id = %s",
        (attempts, row[0]),
    )
    return int(row[0])


def test_requeue_failed_reruns_them(db_url: str, conn: Conn) -> None:
    a = _failed_job(conn, f"trader:{uuid.uuid4()}")
    lock_b = f"trader:{uuid.uuid4()}"
    b = _failed_job(conn, lock_b)
    # A newer job of trader b is already waiting: b must give up its queueing_lock.
    newer = conn.execute(
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name, lock,"
        " queueing_lock) values ('traders.1m', 'run_trader', %s, %s) returning id",
        (lock_b, lock_b),
    ).fetchone()
    assert newer is not None

    dry = json.loads(invoke(db_url, "requeue", "--failed", "--dry-run", "--json").stdout)
    assert [j["job_id"] for j in dry["jobs"]] == [a, b]
    assert job(conn, a)["status"] == "failed"

    result = invoke(db_url, "requeue", "--failed", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(j["job_id"] for j in report["jobs"]) == [a, b]
    assert {j["outcome"] for j in report["jobs"]} == {"requeued"}
    assert job(conn, a) == {
        "status": "todo",
        "attempts": 0,
        "queueing_lock": f"trader:{dry['jobs'][0]['trader_id']}",
        "scheduled_at": None,
    }
    assert job(conn, b)["status"] == "todo" and job(conn, b)["queueing_lock"] is None
    events = conn.execute(
        "select type::text from procrastinate.procrastinate_events where job_id = %s order by id",
        (a,),
    ).fetchall()
    assert events[-1] == ("retried",)

    # A worker's claim picks them up (b after the newer job of its trader: same lock).
    claimed = claim(conn)
    assert a in claimed and job(conn, a)["status"] == "doing"
    assert invoke(db_url, "requeue", "--failed", "--json").stdout.count('"job_id"') == 0


def test_requeue_stalled_reruns_jobs_of_dead_workers(db_url: str, conn: Conn) -> None:
    dead = conn.execute(
        "insert into procrastinate.procrastinate_workers (last_heartbeat)"
        " values (now() - interval '10 minutes') returning id"
    ).fetchone()
    alive = conn.execute(
        "insert into procrastinate.procrastinate_workers (last_heartbeat) values (now())"
        " returning id"
    ).fetchone()
    assert dead is not None and alive is not None
    ids = []
    for worker_id in (dead[0], alive[0]):
        lock = f"trader:{uuid.uuid4()}"
        row = conn.execute(
            "insert into procrastinate.procrastinate_jobs (queue_name, task_name, lock,"
            " queueing_lock, args) values ('traders.1m', 'run_trader', %s, %s, '{}')"
            " returning id",
            (lock, lock),
        ).fetchone()
        assert row is not None
        conn.execute(
            "update procrastinate.procrastinate_jobs set status = 'doing', worker_id = %s"
            " where id = %s",
            (worker_id, row[0]),
        )
        ids.append(int(row[0]))
    stalled, busy = ids

    dry = json.loads(invoke(db_url, "requeue", "--stalled", "--dry-run", "--json").stdout)
    assert [j["job_id"] for j in dry["jobs"]] == [stalled]
    assert job(conn, stalled)["status"] == "doing"

    result = invoke(db_url, "requeue", "--stalled", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(j["job_id"], j["outcome"]) for j in report["jobs"]] == [(stalled, "requeued")]
    assert job(conn, stalled)["status"] == "todo" and job(conn, stalled)["attempts"] == 1
    assert job(conn, busy)["status"] == "doing"
    assert claim(conn) == [stalled]

    text = invoke(db_url, "requeue", "--stalled")
    assert text.exit_code == 0 and "requeued 0 stalled job(s)" in text.stdout


# -- stats -----------------------------------------------------------------------------
def test_stats_json_table_and_check(db_url: str, conn: Conn, fleet: dict[str, Any]) -> None:
    result = invoke(db_url, "stats", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"generated_at", *OPS_VIEWS}
    assert len(data["executions_per_minute"]) == 60
    assert sum(m["runs"] for m in data["executions_per_minute"]) == 1
    assert {q["queue_name"] for q in data["queue_depth"]} >= {"traders.1m", "traders.1d"}
    # A fresh database: the scheduler never ticked, and market data was never published.
    alerts = {(a["alert"], a["subject"]) for a in data["alerts"]}
    assert ("scheduler_behind", "scheduler") in alerts

    check = invoke(db_url, "stats", "--check")
    assert check.exit_code == 1 and isinstance(check.exception, AlertsFiring)
    assert "scheduler_behind(scheduler)" in str(check.exception)
    assert "alerts" in check.stdout and "executions per minute" in check.stdout

    conn.execute("update public.traders set enabled = false")
    conn.execute("update backend.scheduler_state set last_slot = date_trunc('minute', now())")
    healthy = invoke(db_url, "stats", "--check")
    assert healthy.exit_code == 0, healthy.output
    assert "no alert is firing" in healthy.stdout


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_stats_watch_json_redraws(db_url: str) -> None:
    # PYTHONFAULTHANDLER: if Ctrl-C ever fails to stop it, SIGABRT makes the process print
    # where it was stuck, which the failure then shows.
    env = {**os.environ, "DATABASE_URL": db_url, "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen(
        [*TRADERCTL, "stats", "--watch", "--json", "--every", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # As from a terminal. A suite started in the background of a non-interactive shell
        # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler
        # (the child slept through Ctrl-C in time.sleep: seen with `make test &`).
        preexec_fn=_sigint_default,
    )
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert set(json.loads(first)) == {"generated_at", *OPS_VIEWS}
        assert json.loads(second)["generated_at"] > json.loads(first)["generated_at"]
    finally:
        proc.send_signal(signal.SIGINT)  # as Ctrl-C
        try:
            _, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            _, stderr = proc.communicate(timeout=20)  # closes the pipes either way
            pytest.fail(f"stats --watch ignored Ctrl-C for 20 s; where it was:\n{stderr}")
    assert proc.returncode == 0, stderr
    assert "stopped" in stderr


# -- signals ---------------------------------------------------------------------------
def _signal(conn: Conn, trader: uuid.UUID, symbol: str) -> int:
    run = conn.execute(
        "insert into public.trader_runs (trader_id, user_id, slot, interval, status, started_at)"
        " select id, user_id, now() - make_interval(secs => %s), '1m', 'ok', now()"
        " from public.traders where id = %s returning id, user_id",
        (time.monotonic_ns() % 10**6, trader),
    ).fetchone()
    assert run is not None
    row = conn.execute(
        "insert into public.signals (trader_id, user_id, run_id, slot, symbol, interval, price,"
        " change_percent) values (%s, %s, %s, now(), %s, '1m', 101.5, 2.25) returning id",
        (trader, run[1], run[0], symbol),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_signals_tail_no_follow(db_url: str, conn: Conn, fleet: dict[str, Any]) -> None:
    ids = [_signal(conn, fleet["healthy"], s) for s in ("AAAUSDT", "BBBUSDT", "CCCUSDT")]
    _signal(conn, fleet["five"], "DDDUSDT")

    result = invoke(
        db_url, "signals", "tail", "--trader", str(fleet["healthy"]), "--last", "2",
        "--no-follow", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["id"] for s in lines] == ids[1:]
    assert set(lines[0]) == {
        "id", "created_at", "slot", "trader_id", "trader_name", "user_id", "symbol", "interval",
        "price", "change_percent", "quote_volume",
    }  # fmt: skip
    assert lines[0]["symbol"] == "BBBUSDT" and lines[0]["trader_name"] == "healthy"
    assert lines[0]["price"] == 101.5

    by_user = invoke(
        db_url, "signals", "tail", "--user", "bob@example.test", "--no-follow", "--last", "10"
    )
    assert (
        by_user.exit_code == 0 and "DDDUSDT" in by_user.stdout and "AAAUSDT" not in by_user.stdout
    )

    unknown = invoke(db_url, "signals", "tail", "--trader", str(uuid.uuid4()), "--no-follow")
    assert unknown.exit_code == 1 and isinstance(unknown.exception, UnknownTrader)


def test_signals_tail_follows_new_signals(db_url: str, conn: Conn, fleet: dict[str, Any]) -> None:
    _signal(conn, fleet["healthy"], "OLDUSDT")
    env = {**os.environ, "DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [*TRADERCTL, "signals", "tail", "--last", "0", "--count", "2", "--poll", "0.1", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(1.5)  # let it start and poll at least once
        # A transaction that takes an id first but commits last must not be skipped.
        with psycopg.connect(db_url) as slow:
            late = _signal(slow, fleet["healthy"], "LATEUSDT")
            early = _signal(conn, fleet["five"], "FASTUSDT")
            time.sleep(0.5)
            slow.commit()
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [s["id"] for s in got] == [early, late]
    assert [s["symbol"] for s in got] == ["FASTUSDT", "LATEUSDT"]


# -- errors as an operator sees them -----------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("traders", "show", "not-a-uuid"), "'not-a-uuid' is not a trader id"),
        (("traders", "show", "00000000-0000-0000-0000-000000000000"), "no trader has id"),
        (("traders", "list", "--interval", "2m"), "unknown interval '2m'; use one of 1m, 5m"),
        (("requeue", "--trader", "xyz"), "'xyz' is not a trader id"),
        (("signals", "tail", "--user", "nobody@example.test"), "no user has email"),
    ],
)
def test_bad_arguments_give_one_red_line_and_exit_1(
    db_url: str, args: tuple[str, ...], message: str
) -> None:
    result = run(db_url, *args)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]


def test_usage_error_keeps_click_exit_2(db_url: str) -> None:
    result = run(db_url, "requeue")
    assert result.returncode == 2
    assert "give exactly one of --trader ID, --failed or --stalled" in result.stderr
