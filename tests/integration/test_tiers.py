"""Tier rules in the database: enabled-trader caps, downgrades, hourly cap, tier context."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user
from tests.integration.test_scheduler import job_for, jobs, tick

Conn = psycopg.Connection[Any]


def enabled_names(conn: Conn, user: uuid.UUID) -> list[tuple[uuid.UUID, bool, str | None]]:
    return conn.execute(
        "select id, enabled, disabled_reason from public.traders where user_id = %s"
        " order by created_at, id",
        (user,),
    ).fetchall()


def insert_as_user(conn: Conn, user: uuid.UUID, *, enabled: bool = True) -> uuid.UUID:
    """INSERT through the Data API's role with the user's JWT claims."""
    with conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": str(user), "role": "authenticated"}),),
        )
        row = conn.execute(
            "insert into public.traders (name, enabled, filter) values ('mine', %s, %s)"
            " returning id",
            (enabled, json.dumps({"code": "return true;", "refreshInterval": "1h"})),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


# -- max enabled traders ---------------------------------------------------------------------
def test_free_tier_fourth_enabled_trader_is_refused_with_detail_and_hint(conn: Conn) -> None:
    user = make_user(conn)  # no user_tiers row: free
    for _ in range(3):
        insert_as_user(conn, user)
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        insert_as_user(conn, user)
    diag = info.value.diag
    assert diag.message_primary == "free tier allows 3 enabled traders; 3 are enabled"
    assert diag.message_detail is not None and "max_enabled_traders = 3" in diag.message_detail
    assert diag.message_hint == "Disable another trader first, or upgrade the tier."
    # A disabled one may be created, but not enabled.
    spare = insert_as_user(conn, user, enabled=False)
    with pytest.raises(psycopg.errors.CheckViolation, match="3 are enabled"):
        conn.execute("update public.traders set enabled = true where id = %s", (spare,))
    conn.execute(
        "update public.traders set enabled = false where id = "
        "(select id from public.traders where user_id = %s and enabled limit 1)",
        (user,),
    )
    conn.execute("update public.traders set enabled = true where id = %s", (spare,))


def test_pro_tier_allows_ten_and_elite_is_unlimited(conn: Conn) -> None:
    pro = make_user(conn, tier="pro")
    for _ in range(10):
        make_trader(conn, user_id=pro)
    with pytest.raises(
        psycopg.errors.CheckViolation, match="pro tier allows 10 enabled traders; 10 are enabled"
    ):
        make_trader(conn, user_id=pro)
    elite = make_user(conn, tier="elite")
    for _ in range(25):
        make_trader(conn, user_id=elite)


def test_multi_row_insert_is_counted_row_by_row(conn: Conn) -> None:
    user = make_user(conn, tier="free")
    with pytest.raises(psycopg.errors.CheckViolation, match="3 are enabled"):
        conn.execute(
            "insert into public.traders (user_id, filter)"
            ' select %s, \'{"code": "return 1"}\' from generate_series(1, 4)',
            (user,),
        )
    conn.execute(
        "insert into public.traders (user_id, filter)"
        ' select %s, \'{"code": "return 1"}\' from generate_series(1, 3)',
        (user,),
    )


def test_concurrent_enables_cannot_both_pass(conn: Conn, db_url: str) -> None:
    user = make_user(conn)
    make_trader(conn, user_id=user)
    make_trader(conn, user_id=user)
    a = psycopg.connect(db_url)  # not autocommit: each keeps its transaction open
    b = psycopg.connect(db_url)
    errors: list[BaseException] = []
    insert = 'insert into public.traders (user_id, filter) values (%s, \'{"code": "return 1"}\')'

    def insert_b() -> None:
        try:
            b.execute(insert, (user,))
            b.commit()
        except psycopg.Error as exc:
            errors.append(exc)
            b.rollback()

    try:
        a.execute(insert, (user,))  # the 3rd, uncommitted: A holds the user's lock
        thread = threading.Thread(target=insert_b)
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until B waits for A's advisory lock
            row = conn.execute(
                "select count(*) from pg_locks where locktype = 'advisory' and not granted"
            ).fetchone()
            if row and row[0]:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the second insert never waited for the user's lock")
        a.commit()
        thread.join(10)
    finally:
        a.close()
        b.close()
    assert len(errors) == 1
    assert isinstance(errors[0], psycopg.errors.CheckViolation)
    assert "free tier allows 3 enabled traders; 3 are enabled" in str(errors[0])
    assert sum(1 for _, on, _ in enabled_names(conn, user) if on) == 3


# -- downgrades ----------------------------------------------------------------------------------
def test_downgrade_disables_the_newest_extra_traders(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    created = [make_trader(conn, user_id=user) for _ in range(5)]
    conn.execute("update public.user_tiers set tier = 'free' where user_id = %s", (user,))
    state = enabled_names(conn, user)
    assert [t for t, *_ in state] == created
    assert [on for _, on, _ in state] == [True, True, True, False, False]
    reasons = [r for *_, r in state]
    assert reasons[:3] == [None, None, None]
    assert all(
        r is not None and r.startswith("tier limit: the free tier allows 3 enabled traders")
        for r in reasons[3:]
    )
    # Re-enabling is refused while at the limit; disabling another makes room.
    with pytest.raises(psycopg.errors.CheckViolation, match="3 are enabled"):
        conn.execute("update public.traders set enabled = true where id = %s", (created[4],))
    conn.execute("update public.traders set enabled = false where id = %s", (created[0],))
    conn.execute("update public.traders set enabled = true where id = %s", (created[4],))
    row = conn.execute(
        "select disabled_reason from public.traders where id = %s", (created[4],)
    ).fetchone()
    assert row == (None,)  # the user's explicit action clears the backend's reason


def test_deleting_the_tier_row_means_free(conn: Conn) -> None:
    user = make_user(conn, tier="pro")
    for _ in range(5):
        make_trader(conn, user_id=user)
    conn.execute("delete from public.user_tiers where user_id = %s", (user,))
    assert sum(1 for _, on, _ in enabled_names(conn, user) if on) == 3


def test_deleting_the_user_cascades_cleanly(conn: Conn) -> None:
    user = make_user(conn, tier="pro")
    for _ in range(5):
        make_trader(conn, user_id=user)
    conn.execute("delete from auth.users where id = %s", (user,))
    assert enabled_names(conn, user) == []


def test_upgrade_keeps_everything(conn: Conn) -> None:
    user = make_user(conn, tier="free")
    for _ in range(3):
        make_trader(conn, user_id=user)
    conn.execute("update public.user_tiers set tier = 'elite' where user_id = %s", (user,))
    assert all(on for _, on, _ in enabled_names(conn, user))


# -- executions per hour -------------------------------------------------------------------------
def test_hourly_cap_at_the_tick_keeps_the_oldest_traders(conn: Conn) -> None:
    user = make_user(conn)  # free: 60 per hour
    oldest = make_trader(conn, user_id=user)
    make_trader(conn, user_id=user)
    make_trader(conn, user_id=user)
    conn.execute(
        "insert into backend.user_hourly_executions (user_id, hour, enqueued)"
        " values (%s, '2026-11-26T10:00Z', 59)",
        (user,),
    )
    counts = tick(conn, "2026-11-26T10:15:00Z")
    assert counts == Counter({("1m", "enqueued"): 1, ("1m", "skipped_hourly_cap"): 2})
    assert [j["args"]["trader_id"] for j in jobs(conn)] == [str(oldest)]
    row = conn.execute(
        "select enqueued, skipped_hourly_cap from backend.user_hourly_executions"
        " where user_id = %s and hour = '2026-11-26T10:00Z'",
        (user,),
    ).fetchone()
    assert row == (60, 2)
    row = conn.execute(
        "select skipped_hourly_cap, by_interval from backend.scheduler_ticks"
        " order by id desc limit 1"
    ).fetchone()
    assert row == (2, {"1m": {"enqueued": 1, "skipped_hourly_cap": 2}})
    # The next hour starts a new budget.
    conn.execute("delete from procrastinate.procrastinate_jobs")
    assert tick(conn, "2026-11-26T11:00:00Z") == Counter({("1m", "enqueued"): 3})


def test_a_free_user_runs_at_most_60_times_an_hour(conn: Conn) -> None:
    user = make_user(conn)
    for _ in range(3):
        make_trader(conn, user_id=user)  # 3 x 1m = 180 slots an hour
    total = 0
    for minute in range(60):
        counts = tick(conn, f"2026-11-26T10:{minute:02d}:00Z")
        total += counts[("1m", "enqueued")]
        conn.execute("delete from procrastinate.procrastinate_jobs")  # as if run at once
    assert total == 60
    row = conn.execute(
        "select enqueued, skipped_hourly_cap from backend.user_hourly_executions"
        " where user_id = %s",
        (user,),
    ).fetchone()
    assert row == (60, 120)


def test_elite_has_no_hourly_cap(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    make_trader(conn, user_id=user)
    conn.execute(
        "insert into backend.user_hourly_executions (user_id, hour, enqueued)"
        " values (%s, '2026-11-26T10:00Z', 100000)",
        (user,),
    )
    assert tick(conn, "2026-11-26T10:15:00Z") == Counter({("1m", "enqueued"): 1})


def test_old_hourly_counters_are_pruned(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    conn.execute(
        "insert into backend.user_hourly_executions (user_id, hour, enqueued)"
        " values (%s, '2026-11-20T10:00Z', 5), (%s, '2026-11-25T10:00Z', 5)",
        (user, user),
    )
    tick(conn, "2026-11-26T10:00:00Z")
    rows = conn.execute("select hour from backend.user_hourly_executions").fetchall()
    assert [r[0].isoformat() for r in rows] == ["2026-11-25T10:00:00+00:00"]


# -- what the worker reads -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        (None, ("free", 20, 60, 1)),
        ("pro", ("pro", 50, 720, 2)),
        ("elite", ("elite", None, None, 3)),
    ],
)
def test_trader_context_carries_the_tier_limits(
    conn: Conn, tier: str | None, expected: tuple[Any, ...]
) -> None:
    user = make_user(conn, tier=tier)
    trader = make_trader(conn, user_id=user, interval=None)
    row = conn.execute(
        "select tier, max_symbols, max_executions_per_hour, queue_priority, refresh_interval,"
        " trader_id, user_id, enabled from backend.trader_context(%s)",
        (trader,),
    ).fetchone()
    assert row == (*expected, "1m", trader, user, True)
    assert (
        conn.execute("select * from backend.trader_context(%s)", (uuid.uuid4(),)).fetchall() == []
    )
    assert job_for(conn, trader) == []
