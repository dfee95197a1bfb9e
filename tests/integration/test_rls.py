"""The RLS matrix: anon, two signed-in users and the service role against every table.

Acting as a user means what PostgREST does per request: `set local role authenticated`
and the verified JWT claims in `request.jwt.claims`. Rows hidden by a policy raise no
error, so writes to other users' rows are checked by reading the row back afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import errors

USER_A = uuid.UUID("aaaaaaaa-0000-0000-0000-000000000001")
USER_B = uuid.UUID("bbbbbbbb-0000-0000-0000-000000000002")
FILTER = json.dumps({"code": "return true;", "refreshInterval": "1h", "requiredTimeframes": ["1h"]})


@contextmanager
def acting_as(
    conn: psycopg.Connection[Any], role: str, user: uuid.UUID | None = None
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction running as an API role, rolled back at the end."""
    with conn.transaction(force_rollback=True):
        conn.execute(f"set local role {role}")  # role names are fixed literals here
        claims = {"role": role} | ({"sub": str(user)} if user else {})
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        yield conn


def denied(conn: psycopg.Connection[Any], query: str, params: Any = None) -> bool:
    """True when the statement is refused (privilege or policy), inside a savepoint."""
    try:
        with conn.transaction():
            conn.execute(query, params)
    except (errors.InsufficientPrivilege, errors.CheckViolation):
        return True
    return False


@pytest.fixture
def world(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Two users, each with a trader, a run, a signal and match state; some market data."""
    ids: dict[str, Any] = {}
    for user, tier in ((USER_A, "free"), (USER_B, "pro")):
        conn.execute("insert into auth.users (id, email) values (%s, %s)", (user, f"{user}@x"))
        conn.execute("insert into public.user_tiers (user_id, tier) values (%s, %s)", (user, tier))
        row = conn.execute(
            "insert into public.traders (user_id, name, enabled, filter)"
            " values (%s, 'mine', false, %s) returning id",
            (user, FILTER),
        ).fetchone()
        assert row
        trader = row[0]
        run_row = conn.execute(
            "insert into public.trader_runs (trader_id, user_id, slot, interval, status, started_at)"
            " values (%s, %s, '2026-01-01T00:00Z', '1h', 'ok', now()) returning id",
            (trader, user),
        ).fetchone()
        assert run_row
        conn.execute(
            "insert into public.signals (trader_id, user_id, run_id, slot, symbol, interval)"
            " values (%s, %s, %s, '2026-01-01T00:00Z', 'BTCUSDT', '1h')",
            (trader, user, run_row[0]),
        )
        conn.execute(
            "insert into public.trader_matches (trader_id, user_id, symbols, slot)"
            " values (%s, %s, '{BTCUSDT}', '2026-01-01T00:00Z')",
            (trader, user),
        )
        conn.execute(
            "insert into public.browser_runs (trader_id, user_id, ran_at, candle_open_time,"
            " matched_symbols) values (%s, %s, now(), '2026-01-01T00:00Z', '{BTCUSDT}')",
            (trader, user),
        )
        ids[str(user)] = trader
    conn.execute(
        "insert into public.market_tickers (symbol, ticker, quote_volume, rank)"
        """ values ('BTCUSDT', '{"s":"BTCUSDT","c":"1"}', 1, 1)"""
    )
    conn.execute(
        "insert into public.market_klines (symbol, interval, klines, closed_through)"
        " values ('BTCUSDT', '1m', '[]', now())"
    )
    conn.execute("insert into public.market_snapshots (interval, version) values ('1m', 1)")
    return {"a": ids[str(USER_A)], "b": ids[str(USER_B)]}


def count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"select count(*) from {table}").fetchone()
    assert row
    return int(row[0])


PRIVATE_TABLES = [
    "public.traders",
    "public.trader_stats",
    "public.trader_runs",
    "public.signals",
    "public.trader_matches",
    "public.trader_modes",
    "public.browser_runs",
]


def test_every_public_table_has_rls(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity"
    ).fetchall()
    assert rows == [], f"tables in the exposed schema without RLS: {rows}"


def test_users_read_only_their_own_rows(
    conn: psycopg.Connection[Any], world: dict[str, Any]
) -> None:
    for user in (USER_A, USER_B):
        with acting_as(conn, "authenticated", user):
            for table in PRIVATE_TABLES:
                owners = {r[0] for r in conn.execute(f"select user_id from {table}").fetchall()}
                assert owners == {user}, table
            tiers = conn.execute("select user_id from public.user_tiers").fetchall()
            assert [r[0] for r in tiers] == [user]
            assert count(conn, "public.tiers") == 3
            for table in (
                "public.market_tickers",
                "public.market_klines",
                "public.market_snapshots",
            ):
                assert count(conn, table) == 1, table


def test_user_manages_own_traders(conn: psycopg.Connection[Any], world: dict[str, Any]) -> None:
    with acting_as(conn, "authenticated", USER_A):
        conn.execute(
            "insert into public.traders (name, enabled, filter) values ('new', false, %s)",
            (FILTER,),
        )
        conn.execute("update public.traders set name = 'renamed' where id = %s", (world["a"],))
        assert conn.execute(
            "select name from public.traders where id = %s", (world["a"],)
        ).fetchone() == ("renamed",)
        conn.execute("delete from public.traders where name = 'new'")
        assert count(conn, "public.traders") == 1


def test_user_cannot_touch_other_users_traders(
    conn: psycopg.Connection[Any], world: dict[str, Any]
) -> None:
    with acting_as(conn, "authenticated", USER_A):
        assert denied(
            conn,
            "insert into public.traders (user_id, name, filter) values (%s, 'x', %s)",
            (USER_B, FILTER),
        )
        conn.execute("update public.traders set name = 'pwned' where id = %s", (world["b"],))
        conn.execute("delete from public.traders where id = %s", (world["b"],))
    row = conn.execute("select name from public.traders where id = %s", (world["b"],)).fetchone()
    assert row == ("mine",), "user A changed or deleted user B's trader"


def test_user_cannot_report_or_remove_runs_of_other_users_traders(
    conn: psycopg.Connection[Any], world: dict[str, Any]
) -> None:
    with acting_as(conn, "authenticated", USER_A):
        report = (
            "insert into public.browser_runs (trader_id, ran_at, candle_open_time,"
            " matched_symbols) values (%s, now(), '2026-01-01T00:00Z', '{ETHUSDT}')"
        )
        assert denied(conn, report, (world["b"],))
        # Naming B as the owner of a report on A's own trader is refused too.
        assert denied(
            conn,
            "insert into public.browser_runs (trader_id, user_id, ran_at, candle_open_time,"
            " matched_symbols) values (%s, %s, now(), '2026-01-01T00:00Z', '{}')",
            (world["a"], USER_B),
        )
        assert not denied(conn, report, (world["a"],))
        conn.execute("delete from public.browser_runs where trader_id = %s", (world["b"],))
    assert count(conn, "public.browser_runs") == 2


@pytest.mark.parametrize(
    "assignment",
    [
        "disabled_reason = null",
        "schedule_problem = null",
        "user_id = 'bbbbbbbb-0000-0000-0000-000000000002'",
        "created_at = now()",
    ],
)
def test_user_cannot_write_backend_columns(
    conn: psycopg.Connection[Any], world: dict[str, Any], assignment: str
) -> None:
    with acting_as(conn, "authenticated", USER_A):
        assert denied(conn, f"update public.traders set {assignment} where id = %s", (world["a"],))


def test_user_cannot_insert_backend_columns(
    conn: psycopg.Connection[Any], world: dict[str, Any]
) -> None:
    with acting_as(conn, "authenticated", USER_A):
        assert denied(
            conn,
            "insert into public.traders (name, filter, schedule_problem) values ('x', %s, 'y')",
            (FILTER,),
        )


@pytest.mark.parametrize(
    "statement",
    [
        "insert into public.signals (trader_id, user_id, run_id, slot, symbol, interval)"
        " select trader_id, user_id, run_id, slot, 'ETHUSDT', interval from public.signals",
        "update public.signals set symbol = 'ETHUSDT'",
        "delete from public.signals",
        "insert into public.trader_runs (trader_id, user_id, slot, interval, status, started_at)"
        " select id, user_id, now(), '1m', 'ok', now() from public.traders",
        "update public.trader_runs set status = 'error'",
        "delete from public.trader_runs",
        "update public.trader_matches set symbols = '{}'",
        "update public.trader_stats set run_count = 99",
        "update public.trader_stats set consecutive_errors = 0, last_error = null",
        "delete from public.trader_stats",
        "insert into public.trader_stats (trader_id, user_id)"
        " select gen_random_uuid(), user_id from public.traders",
        "delete from public.trader_matches",
        "update public.user_tiers set tier = 'elite'",
        "insert into public.user_tiers (user_id, tier) values (auth.uid(), 'elite')",
        "update public.tiers set max_enabled_traders = 1000",
        "insert into public.market_tickers (symbol, ticker, quote_volume, rank)"
        " values ('X', '{}', 1, 1)",
        "update public.market_klines set stale = true",
        "delete from public.market_snapshots",
        "update public.trader_modes set mode = 'server'",
        "insert into public.trader_modes (trader_id, user_id, mode, configured_mode, source,"
        " reason) select id, user_id, 'server', 'server', 'rule', 'x' from public.traders",
        "update public.backend_health set fallback_active = false",
        "update public.browser_runs set matched_symbols = '{}'",
    ],
)
def test_user_cannot_write_backend_tables(
    conn: psycopg.Connection[Any], world: dict[str, Any], statement: str
) -> None:
    with acting_as(conn, "authenticated", USER_A):
        assert denied(conn, statement)


def test_anon_reads_nothing(conn: psycopg.Connection[Any], world: dict[str, Any]) -> None:
    tables = [
        r[0]
        for r in conn.execute(
            "select format('%I.%I', n.nspname, c.relname) from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm')"
        ).fetchall()
    ]
    assert "public.traders" in tables
    with acting_as(conn, "anon"):
        for table in tables:
            try:
                with conn.transaction():
                    rows = count(conn, table)
            except errors.InsufficientPrivilege:
                continue
            assert rows == 0, f"anon can read {rows} row(s) of {table}"
        assert denied(conn, "insert into public.traders (name, filter) values ('x', '{}')")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_reach_queue_or_backend(
    conn: psycopg.Connection[Any], world: dict[str, Any], role: str
) -> None:
    for schema in ("procrastinate", "backend", "supabase_migrations"):
        row = conn.execute(
            "select has_schema_privilege(%s, %s, 'usage')", (role, schema)
        ).fetchone()
        assert row == (False,), f"{role} has USAGE on schema {schema}"
    with acting_as(conn, role, USER_A if role == "authenticated" else None):
        assert denied(conn, "select count(*) from procrastinate.procrastinate_jobs")
        assert denied(
            conn,
            "insert into procrastinate.procrastinate_jobs (queue_name, task_name, args)"
            " values ('traders.1m', 'run_trader', '{}')",
        )
        assert denied(
            conn, "select procrastinate.procrastinate_fetch_job_v2(array['traders.1m'], 1)"
        )


def test_no_exposed_security_definer_functions(conn: psycopg.Connection[Any]) -> None:
    """A SECURITY DEFINER function in public would let API roles run it with our rights."""
    rows = conn.execute(
        "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public' and p.prosecdef"
        " and (has_function_privilege('anon', p.oid, 'execute')"
        "      or has_function_privilege('authenticated', p.oid, 'execute'))"
    ).fetchall()
    assert rows == []


def test_service_role_does_its_job(conn: psycopg.Connection[Any], world: dict[str, Any]) -> None:
    with acting_as(conn, "service_role"):
        assert count(conn, "public.traders") == 2
        conn.execute("update public.trader_stats set run_count = run_count + 1")
        conn.execute(
            "insert into public.signals (trader_id, user_id, run_id, slot, symbol, interval)"
            " select trader_id, user_id, run_id, slot, 'ETHUSDT', interval from public.signals"
        )
        assert count(conn, "public.signals") == 4
        conn.execute("select count(*) from procrastinate.procrastinate_jobs")


def test_reenabling_clears_backend_disable_reason(
    conn: psycopg.Connection[Any], world: dict[str, Any]
) -> None:
    conn.execute(
        "update public.traders set disabled_reason = 'too many errors' where id = %s",
        (world["a"],),
    )
    conn.execute(
        "update public.trader_stats set consecutive_errors = 10 where trader_id = %s",
        (world["a"],),
    )
    with acting_as(conn, "authenticated", USER_A):
        # The user may not write the stats row; the trigger that resets the streak may.
        conn.execute("update public.traders set enabled = true where id = %s", (world["a"],))
        row = conn.execute(
            "select t.enabled, t.disabled_reason, s.consecutive_errors from public.traders t"
            " join public.trader_stats s on s.trader_id = t.id where t.id = %s",
            (world["a"],),
        ).fetchone()
        assert row == (True, None, 0)


def test_signals_are_published_to_realtime(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "select tablename from pg_publication_tables where pubname = 'supabase_realtime'"
    ).fetchall()
    assert ("signals",) in rows
