"""Rollout from the browser: modes, rules, overrides, shadow visibility, fallback, parity.

Each test starts from the suite's template (default mode server, fallback off: see
tests/conftest.py) and sets the rollout state it is about, through the same SQL and
admin functions `traderctl rollout` uses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user, publish_market, run_record
from traderctl.worker.admin.rollout import (
    parity,
    set_default_mode,
    set_tier_mode,
    set_user_mode,
    update_settings,
)
from traderctl.worker.errors import InvalidRolloutChange, UnknownTier

Conn = psycopg.Connection[Any]


def _install_defaults(conn: Conn) -> None:
    conn.execute(
        "update backend.rollout_settings set default_mode = 'browser', fallback_enabled = true"
    )


def _mode(conn: Conn, trader: uuid.UUID) -> tuple[str, str, str]:
    row = conn.execute(
        "select mode, configured_mode, source from public.trader_modes where trader_id = %s",
        (trader,),
    ).fetchone()
    assert row is not None, "every trader has a mode row"
    return row[0], row[1], row[2]


def _server_users(conn: Conn, users: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = conn.execute(
        "select distinct user_id from public.trader_modes where mode = 'server' "
        "and user_id = any(%s)",
        (users,),
    ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture
def population(conn: Conn) -> list[uuid.UUID]:
    """400 free users with one trader each, in install-default state (set-based inserts)."""
    _install_defaults(conn)
    users = [uuid.uuid4() for _ in range(400)]
    with conn.transaction():
        conn.execute("set local traderctl.skip_first_run = 'on'")
        conn.execute("insert into auth.users (id) select unnest(%s::uuid[])", (users,))
        conn.execute(
            "insert into public.traders (user_id, filter) select u, %s::jsonb "
            "from unnest(%s::uuid[]) u",
            (json.dumps({"code": "return true;", "refreshInterval": "1m"}), users),
        )
    return users


def test_fresh_defaults_put_every_trader_in_the_browser(conn: Conn) -> None:
    _install_defaults(conn)
    user = make_user(conn, tier="pro")
    trader = make_trader(conn, user_id=user)
    assert _mode(conn, trader) == ("browser", "browser", "default")


def test_percentages_are_stable_as_they_grow(conn: Conn, population: list[uuid.UUID]) -> None:
    set_tier_mode(conn, "free", "server", 10)
    first = _server_users(conn, population)
    set_tier_mode(conn, "free", "server", 25)
    second = _server_users(conn, population)
    set_tier_mode(conn, "free", "server", 50)
    third = _server_users(conn, population)
    assert first <= second <= third, "raising a percentage never moves a user back"
    # 400 users hashed into buckets: each share within a few percent of its target.
    assert 20 <= len(first) <= 60
    assert 70 <= len(second) <= 130
    assert 170 <= len(third) <= 230
    # Lowering it again returns exactly the earlier set.
    set_tier_mode(conn, "free", "server", 10)
    assert _server_users(conn, population) == first


def test_shadow_and_server_shares_nest(conn: Conn, population: list[uuid.UUID]) -> None:
    set_tier_mode(conn, "free", "shadow", 100)
    set_tier_mode(conn, "free", "server", 30)
    modes = dict(
        conn.execute(
            "select mode, count(*) from public.trader_modes where user_id = any(%s) group by mode",
            (population,),
        ).fetchall()
    )
    assert set(modes) == {"server", "shadow"}
    assert 90 <= modes["server"] <= 150
    assert modes["server"] + modes["shadow"] == 400


def test_override_wins_over_tier_rule_and_tier_change_applies(conn: Conn) -> None:
    _install_defaults(conn)
    user = make_user(conn, tier="pro")
    trader = make_trader(conn, user_id=user)
    set_tier_mode(conn, "pro", "shadow", 100)
    assert _mode(conn, trader) == ("shadow", "shadow", "rule")
    set_user_mode(conn, str(user), "server")
    assert _mode(conn, trader) == ("server", "server", "override")
    set_user_mode(conn, str(user), None)
    assert _mode(conn, trader)[0] == "shadow"
    # Moving the user to a tier without a rule: the default again.
    conn.execute("update public.user_tiers set tier = 'elite' where user_id = %s", (user,))
    assert _mode(conn, trader) == ("browser", "browser", "default")


def test_dry_run_counts_moves_and_changes_nothing(conn: Conn, population: list[uuid.UUID]) -> None:
    change = set_tier_mode(conn, "free", "server", 50, dry_run=True)
    assert change.dry_run
    assert 170 <= change.users_moved <= 230 and change.traders_moved == change.users_moved
    assert _server_users(conn, population) == set()
    rules = conn.execute("select count(*) from backend.rollout_rules").fetchone()
    assert rules == (0,)
    real = set_tier_mode(conn, "free", "server", 50)
    assert real.users_moved == change.users_moved


def test_bad_changes_say_what_to_do(conn: Conn) -> None:
    with pytest.raises(UnknownTier, match="no tier named 'gold'"):
        set_tier_mode(conn, "gold", "server", 10)
    with pytest.raises(InvalidRolloutChange, match="unknown mode 'cloud'"):
        set_tier_mode(conn, "free", "cloud", 10)
    with pytest.raises(InvalidRolloutChange, match="needs --percent"):
        set_tier_mode(conn, "free", "server", None)
    with pytest.raises(InvalidRolloutChange, match="out of range"):
        set_tier_mode(conn, "free", "server", 120)
    with pytest.raises(InvalidRolloutChange, match="rejected rollout setting"):
        update_settings(conn, {"parity_threshold": 2.0})


def test_every_change_is_logged(conn: Conn) -> None:
    set_tier_mode(conn, "free", "shadow", 100)
    set_default_mode(conn, "shadow")
    rows = conn.execute(
        "select kind, subject, detail from backend.rollout_log order by id"
    ).fetchall()
    assert ("rule", "free", "tier free: 100% of users in shadow") in rows
    assert ("settings", "default_mode", "default mode shadow") in rows


# -- what users see ----------------------------------------------------------------------
def _as_user(conn: Conn, user: uuid.UUID) -> None:
    conn.execute("set role authenticated")
    conn.execute(
        "select set_config('request.jwt.claims', %s, false)",
        (json.dumps({"sub": str(user), "role": "authenticated"}),),
    )


def _commit_run(
    conn: Conn, trader: uuid.UUID, slot: datetime, matches: list[str]
) -> list[tuple[Any, ...]]:
    runs = [run_record(trader, slot, None, matches)]
    return conn.execute(
        "select * from backend.commit_trader_runs(%s::jsonb, 'test', 10, null, '{}')",
        (json.dumps(runs),),
    ).fetchall()


def test_shadow_runs_are_stored_but_invisible_to_their_owner(conn: Conn) -> None:
    _install_defaults(conn)
    user = make_user(conn)
    shadow = make_trader(conn, user_id=user, name="shadow")
    server = make_trader(conn, user_id=user, name="server")
    set_user_mode(conn, str(user), "shadow")
    slot = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    _commit_run(conn, shadow, slot, ["BTCUSDT", "ETHUSDT"])
    conn.execute("update backend.rollout_overrides set mode = 'server' where user_id = %s", (user,))
    assert _mode(conn, server)[0] == "server"
    _commit_run(conn, server, slot, ["BTCUSDT"])

    stored = conn.execute(
        "select trader_id, shadow, matched_symbols from public.trader_runs order by shadow"
    ).fetchall()
    assert (server, False, None) in stored
    assert (shadow, True, ["BTCUSDT", "ETHUSDT"]) in stored
    assert conn.execute("select count(*) from public.signals where shadow").fetchone() == (2,)
    # Shadow runs leave the user's trader row alone (counters, errors, auto-disable).
    counters = conn.execute(
        "select run_count, signal_count, last_run_at from public.trader_stats where trader_id = %s",
        (shadow,),
    ).fetchone()
    assert counters == (0, 0, None)

    _as_user(conn, user)
    assert conn.execute("select trader_id from public.trader_runs").fetchall() == [(server,)]
    assert conn.execute("select trader_id, symbol from public.signals").fetchall() == [
        (server, "BTCUSDT")
    ]
    assert conn.execute("select trader_id from public.trader_matches").fetchall() == [(server,)]
    conn.execute("reset role")


# A logical-replication consumer that applies RLS the way Supabase Realtime does: each
# decoded INSERT is delivered to a subscriber only if the subscriber, as `authenticated`
# with their JWT claims, can select that row by its primary key.
@pytest.fixture
def replication_slot(conn: Conn) -> Iterator[str]:
    name = f"rt_{uuid.uuid4().hex[:12]}"
    # Decoding reads flushed WAL only; the test cluster commits asynchronously.
    conn.execute("set synchronous_commit = on")
    conn.execute("select pg_create_logical_replication_slot(%s, 'test_decoding')", (name,))
    try:
        yield name
    finally:
        conn.execute("select pg_drop_replication_slot(%s)", (name,))


def _realtime_deliveries(conn: Conn, slot: str, subscriber: uuid.UUID) -> list[int]:
    changes = conn.execute(
        "select data from pg_logical_slot_get_changes(%s, null, null)", (slot,)
    ).fetchall()
    ids = []
    for (data,) in changes:
        if data.startswith("table public.signals: INSERT:"):
            ids.append(int(data.split("id[bigint]:", 1)[1].split(" ", 1)[0]))
    delivered = []
    _as_user(conn, subscriber)
    for signal_id in ids:
        if conn.execute("select 1 from public.signals where id = %s", (signal_id,)).fetchone():
            delivered.append(signal_id)
    conn.execute("reset role")
    return delivered


def test_realtime_never_delivers_a_shadow_signal(conn: Conn, replication_slot: str) -> None:
    _install_defaults(conn)
    user = make_user(conn)
    trader = make_trader(conn, user_id=user)
    set_user_mode(conn, str(user), "shadow")
    base = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    _commit_run(conn, trader, base, ["BTCUSDT"])
    set_user_mode(conn, str(user), "server")
    _commit_run(conn, trader, base + timedelta(minutes=1), ["BTCUSDT", "ETHUSDT"])

    delivered = _realtime_deliveries(conn, replication_slot, user)
    visible = conn.execute("select id, symbol, shadow from public.signals order by id").fetchall()
    assert [s[2] for s in visible] == [True, False], "the shadow match state is reused"
    # BTCUSDT matched in shadow mode, so only ETHUSDT is a new edge once on the server.
    assert delivered == [visible[1][0]] and visible[1][1] == "ETHUSDT"


# -- fallback ------------------------------------------------------------------------------
def _healthy_world(conn: Conn) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    publish_market(conn, {"BTCUSDT": 100.0}, closed_through=now, intervals=("1m",))
    conn.execute(
        "update backend.scheduler_state set last_slot = date_trunc('minute', now()), "
        "updated_at = now()"
    )
    conn.execute("insert into procrastinate.procrastinate_workers (last_heartbeat) values (now())")


def _health(conn: Conn, at: datetime) -> tuple[str, bool]:
    row = conn.execute(
        "select status, fallback_active from backend.evaluate_health(%s)", (at,)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.fixture
def server_trader(conn: Conn) -> uuid.UUID:
    conn.execute("update backend.rollout_settings set fallback_enabled = true, hold_s = 300")
    user = make_user(conn)
    trader = make_trader(conn, user_id=user)
    set_user_mode(conn, str(user), "server")
    _healthy_world(conn)
    return trader


def test_fallback_on_a_stalled_scheduler_and_back_after_the_hold(
    conn: Conn, server_trader: uuid.UUID
) -> None:
    t0 = datetime.now(UTC)
    assert _health(conn, t0) == ("healthy", False)
    conn.execute("update backend.scheduler_state set last_slot = now() - interval '10 minutes'")
    assert _health(conn, t0 + timedelta(minutes=1)) == ("unhealthy", True)
    assert _mode(conn, server_trader) == ("browser", "server", "fallback")
    reasons = conn.execute("select reasons from public.backend_health").fetchone()
    assert reasons is not None and reasons[0][0].startswith("scheduler_stalled")

    conn.execute("update backend.scheduler_state set last_slot = date_trunc('minute', now())")
    assert _health(conn, t0 + timedelta(minutes=2)) == ("recovering", True)
    assert _health(conn, t0 + timedelta(minutes=6)) == ("recovering", True), "hold not over"
    assert _mode(conn, server_trader)[0] == "browser"
    assert _health(conn, t0 + timedelta(minutes=7, seconds=1)) == ("healthy", False)
    assert _mode(conn, server_trader) == ("server", "server", "override")

    log = conn.execute(
        "select subject, detail from backend.rollout_log where kind = 'health' order by id"
    ).fetchall()
    assert [s for s, _ in log] == [
        "healthy -> unhealthy",
        "unhealthy -> recovering",
        "recovering -> healthy",
    ]
    assert "scheduler_stalled" in log[0][1]


def test_fallback_on_stale_market_data(conn: Conn, server_trader: uuid.UUID) -> None:
    t0 = datetime.now(UTC)
    assert _health(conn, t0) == ("healthy", False)
    conn.execute(
        "update public.market_snapshots set closed_through = closed_through - interval '1 hour'"
        " where interval = '1m'"
    )
    status, fallback = _health(conn, t0 + timedelta(minutes=1))
    assert (status, fallback) == ("unhealthy", True)
    reasons = conn.execute("select reasons from public.backend_health").fetchone()
    assert reasons is not None and any(r.startswith("market_data_stale") for r in reasons[0])
    assert _mode(conn, server_trader)[0] == "browser"
    alerts = conn.execute("select alert from ops.alerts").fetchall()
    assert ("backend_fallback",) in alerts


def test_no_fallback_when_disabled(conn: Conn, server_trader: uuid.UUID) -> None:
    update_settings(conn, {"fallback_enabled": False})
    conn.execute("update backend.scheduler_state set last_slot = now() - interval '10 minutes'")
    assert _health(conn, datetime.now(UTC)) == ("unhealthy", False)
    assert _mode(conn, server_trader)[0] == "server"


# -- parity --------------------------------------------------------------------------------
def _report(conn: Conn, trader: uuid.UUID, candle: datetime, symbols: list[str]) -> None:
    conn.execute(
        "insert into public.browser_runs (trader_id, ran_at, candle_open_time, matched_symbols)"
        " values (%s, %s, %s, %s)",
        (trader, candle + timedelta(minutes=1, seconds=2), candle, symbols),
    )


def test_parity_pairs_reports_with_shadow_runs(conn: Conn) -> None:
    _install_defaults(conn)
    user = make_user(conn)
    trader = make_trader(conn, user_id=user)
    set_user_mode(conn, str(user), "shadow")
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    # Three server runs; the browser agrees on two and differs on the third.
    for i, server in enumerate((["A1"], ["A1", "B2"], ["C3"])):
        _commit_run(conn, trader, base + timedelta(minutes=i + 1), server)
    _as_user(conn, user)
    _report(conn, trader, base, ["A1"])
    _report(conn, trader, base + timedelta(minutes=1), ["B2", "A1"])
    _report(conn, trader, base + timedelta(minutes=2), ["C3", "D4"])
    _report(conn, trader, base + timedelta(minutes=5), ["A1"])  # no server run: unpaired
    conn.execute("reset role")

    pairs = conn.execute(
        "select agree, only_browser, only_server from ops.parity_pairs order by slot"
    ).fetchall()
    assert pairs == [(True, [], []), (True, [], []), (False, ["D4"], [])]
    report = parity(conn, since=timedelta(days=1))
    (tier,) = report.tiers
    assert (tier["tier"], tier["pairs"], tier["agreeing"]) == ("free", 3, 2)
    assert tier["agreement"] == pytest.approx(0.6667, abs=1e-4)
    (row,) = report.traders
    assert row["differing_symbols"] == ["D4"]

    # Below the threshold over the minimum sample: the alert fires.
    update_settings(conn, {"parity_min_sample": 3})
    alerts = conn.execute("select alert, subject from ops.alerts").fetchall()
    assert ("parity_below_threshold", "free") in alerts
    update_settings(conn, {"parity_min_sample": 4})
    alerts = conn.execute("select alert from ops.alerts").fetchall()
    assert ("parity_below_threshold",) not in alerts


def test_reports_are_limited_with_clear_errors(conn: Conn) -> None:
    user = make_user(conn)
    other = make_user(conn)
    trader = make_trader(conn, user_id=user)
    foreign = make_trader(conn, user_id=other)
    conn.execute("update backend.rollout_settings set report_max_symbols = 3")
    candle = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    _as_user(conn, user)
    with pytest.raises(psycopg.errors.CheckViolation, match="4 matched symbols; at most 3"):
        _report(conn, trader, candle, ["A", "B", "C", "D"])
    with pytest.raises(psycopg.errors.CheckViolation, match="invalid symbol"):
        _report(conn, trader, candle, ["BTC USDT; drop table"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        _report(conn, foreign, candle, ["A"])
    for _ in range(6):
        _report(conn, trader, candle, ["A"])
    with pytest.raises(psycopg.errors.CheckViolation, match="too many browser run reports"):
        _report(conn, trader, candle, ["A"])
    # A user cannot forge reported_at or write the backend's tables.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(
            "insert into public.browser_runs (trader_id, ran_at, candle_open_time, "
            "matched_symbols, reported_at) values (%s, now(), now(), '{}', now())",
            (trader,),
        )
    for table in ("public.trader_modes", "public.backend_health"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"delete from {table}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from backend.rollout_rules")
    conn.execute("reset role")
