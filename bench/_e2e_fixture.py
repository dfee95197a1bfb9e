"""The end-to-end bench's template database: schema, market snapshot and N traders.

Built once per trader count and copied per repetition (``CREATE DATABASE … TEMPLATE``), so
every repetition starts from the same rows with an empty queue and no runs:

* **market data**: the real market-data worker (:class:`MarketDataRefresher`) does one full
  refresh from the exchange simulator, with both clocks set to ``TICK_AT`` + 2 s (where the
  production refresh lands, TRADERCTL_MARKET_REFRESH_DELAY_MS after the boundary). Every
  interval's ``closed_through`` is then the measured minute, so the worker's "slot data
  present" check passes at once: runs use data of their own slot (data_age_ms = 0, checked) and
  TRADERCTL_WORKER_DATA_WAIT_MS (default kept) is never waited on. Only the timeframes the filters
  need are fetched: 100 symbols × 250 klines each;
* **owners over tiers**: users/10 free users × 3 traders (30 % of traders, 20 symbols per
  run), users/20 pro × 10 (50 %, 50 symbols), the remaining 20 % on elite users with about
  20 traders each (all 100 symbols);
* **traders**: the 12 demo filters (worker/demo_filters, the browser's own code) in
  rotation, each with its own requiredTimeframes, refreshInterval rotating over all seven
  intervals, so every queue has work at 00:00 UTC. Loaded in bulk with
  ``traderctl.skip_first_run`` (no immediate first-run jobs), like bench_scheduler;
* **history**: one earlier run and an (empty) match-state row per trader, so tables and
  planner statistics look like production's rather than empty (see :func:`seed_history`);
* **rollout**: every trader in ``server`` mode, health fallback off (docs/rollout.md);
* **scheduler watermark** at ``TICK_AT`` − 1 min, so the bench's tick is the next minute.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench._bench_users import create_bench_users
from traderctl.worker.intervals import INTERVALS
from traderctl.worker.local.demo_filters import DEMO_FILTERS
from traderctl.worker.local.exchange_sim import ExchangeSimulator
from traderctl.worker.market.binance_client import BinanceClient
from traderctl.worker.market.limits import WeightBudget
from traderctl.worker.market.refresher import MarketDataOptions, MarketDataRefresher
from traderctl.worker.migrate import migrate

__all__ = [
    "TICK_AT",
    "TraderMix",
    "build_template",
    "load_traders",
    "needed_timeframes",
    "replace_commit_function",
    "seed_history",
]

#: The measured minute: 00:00 UTC, when every interval from 1m to 1d is due.
TICK_AT = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
#: Where the market-data refresh of that minute happens (1-2 s after the boundary).
DATA_AT_MS = int(TICK_AT.timestamp() * 1000) + 2_000
UNIVERSE = 100
KLINES = 250
_COMMIT_FUNCTION = re.compile(
    r"create or replace function backend\.commit_trader_runs\(.*?\n\$\$;\n", re.DOTALL
)


def replace_commit_function(conn: psycopg.Connection[Any], sql_file: Path) -> None:
    """Load the ``create or replace function backend.commit_trader_runs`` of ``sql_file``.

    Why: a before/after comparison of the commit runs the same bench with the previous
    definition (e.g. a migration file as it was) loaded over the migrated one.
    """
    found = _COMMIT_FUNCTION.search(sql_file.read_text())
    if found is None:
        raise SystemExit(f"{sql_file}: no 'create or replace function backend.commit_trader_runs'")
    conn.execute(found.group(0).encode())


def needed_timeframes() -> tuple[str, ...]:
    """Every timeframe some demo filter requires, in interval order."""
    wanted = {tf for f in DEMO_FILTERS.values() for tf in f.required_timeframes}
    return tuple(iv for iv in INTERVALS if iv in wanted)


@dataclass(frozen=True, kw_only=True)
class TraderMix:
    """What was loaded: users and traders per tier, traders per (filter, tier)."""

    traders: int
    users: dict[str, int]
    traders_per_tier: dict[str, int]
    symbols_per_tier: dict[str, int]
    per_filter_tier: dict[tuple[str, str], int]
    intervals: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "traders_per_tier": self.traders_per_tier,
            "symbols_per_run_by_tier": self.symbols_per_tier,
            "avg_symbols_per_run": round(
                sum(self.traders_per_tier[t] * self.symbols_per_tier[t] for t in self.users)
                / self.traders,
                1,
            ),
            "filters": sorted({f for f, _ in self.per_filter_tier}),
            "traders_per_interval": self.intervals,
        }


async def _refresh(conn: psycopg.Connection[Any], sim: ExchangeSimulator) -> None:
    options = MarketDataOptions(
        universe_size=UNIVERSE, intervals=needed_timeframes(), klines_limit=KLINES
    )
    async with BinanceClient(sim.base_url, budget=WeightBudget(3000), concurrency=4) as client:
        refresher = MarketDataRefresher(conn, client, options, clock=lambda: sim.now_ms() / 1000)
        result = await refresher.refresh(full=True)
    if result.status != "ok":
        raise SystemExit(f"market-data refresh for the bench failed: {result.to_json()}")


def _load_market_data(conn: psycopg.Connection[Any]) -> None:
    # 20 more listed symbols than the universe, as bench_market_data (some are excluded).
    with ExchangeSimulator(seed=1, symbols=UNIVERSE + 20, now_ms=DATA_AT_MS) as sim:
        asyncio.run(_refresh(conn, sim))
    rows = conn.execute(
        "select interval, closed_through, symbols from public.market_snapshots"
        " where interval <> 'ticker' and refreshed_at is not null"
    ).fetchall()
    for interval, closed, symbols in rows:
        if closed < TICK_AT or symbols != UNIVERSE:
            raise SystemExit(
                f"snapshot {interval} is not at the measured minute ({closed}, {symbols} symbols)"
            )


def _tier_users(traders: int) -> tuple[int, int, int, int]:
    """(free users, pro users, elite users, elite traders) for ``traders`` traders."""
    free_users = traders // 10
    pro_users = traders // 20
    elite_traders = traders - 3 * free_users - 10 * pro_users
    elite_users = max(1, math.ceil(elite_traders / 20))
    return free_users, pro_users, elite_users, elite_traders


def load_traders(conn: psycopg.Connection[Any], traders: int) -> None:
    free_users, pro_users, elite_users, elite_traders = _tier_users(traders)
    filters = list(DEMO_FILTERS.values())
    with conn.transaction():
        conn.execute("set local traderctl.skip_first_run = 'on'")
        # Every trader runs on the backend (a fresh install leaves them to the browser),
        # and no health fallback: the bench's clocks are not the wall clock.
        conn.execute(
            "update backend.rollout_settings set default_mode = 'server', fallback_enabled = false"
        )
        conn.execute(
            "create temp table bench_filters (i int, key text, code text, tfs jsonb) on commit drop"
        )
        with conn.cursor().copy("copy bench_filters from stdin") as copy:
            for i, f in enumerate(filters):
                copy.write_row((i, f.key, f.code, json.dumps(list(f.required_timeframes))))
        create_bench_users(conn, free=free_users, pro=pro_users, elite=elite_users)
        # Trader slots: free users 3, pro 10, elite users share the rest (~20 each).
        conn.execute(
            "create temp table bench_slots on commit drop as"
            " select row_number() over (order by u.n, k) - 1 as seq, u.id as user_id"
            " from bench_users u cross join lateral generate_series(1, case"
            "   when u.n <= %(free)s then 3 when u.n <= %(pro)s then 10"
            "   else %(et)s / %(eu)s + (case when u.n - %(pro)s <= %(et)s %% %(eu)s"
            "   then 1 else 0 end) end) k",
            {
                "free": free_users,
                "pro": free_users + pro_users,
                "et": elite_traders,
                "eu": elite_users,
            },
        )
        # Filter = seq mod 12; interval rotates every 12 traders, so each filter meets
        # every interval and every tier.
        conn.execute(
            "insert into public.traders (user_id, name, enabled, filter)"
            " select s.user_id, f.key || '#' || s.seq, true,"
            "  jsonb_build_object('code', f.code, 'requiredTimeframes', f.tfs,"
            "   'refreshInterval', (%s::text[])[1 + (s.seq / %s) %% 7])"
            " from bench_slots s join bench_filters f on f.i = s.seq %% %s",
            (list(INTERVALS), len(filters), len(filters)),
        )
        conn.execute(
            "update backend.scheduler_state set last_slot = %s::timestamptz - interval '1 minute'",
            (TICK_AT,),
        )
    row = conn.execute("select count(*) from public.traders where enabled").fetchone()
    if row is None or row[0] != traders:
        raise SystemExit(f"loaded {row} enabled traders, expected {traders}")


def seed_history(conn: psycopg.Connection[Any]) -> None:
    """One previous run and match-state row per trader, at its interval's previous slot.

    Why: in production these tables are never empty (runs are kept 48 h). Left empty, the
    planner's cached generic plans inside backend.commit_trader_runs (plpgsql) and the
    foreign-key checks are made for empty tables (sequential scans), and every commit then
    gets slower as the tables fill until autoanalyze happens to replan: measured here,
    60-220 ms per batch of 32 instead of ~25 ms, varying with when autoanalyze ran. The
    stored matches are empty, so every run's matches are still all signals (upper bound).
    The runs finished "now" by the wall clock: their slots are the bench's fixed minute,
    days back, and finished there they were retention's to delete during the measured tick
    (the workers' maintenance runs it): ~100 ms of Postgres per 5,000 runs, ~2 s and a
    delete record per run at 100,000, none of it the tick's work.
    """
    with conn.transaction():
        conn.execute(
            "create temp table bench_prev as"
            " select t.id, t.user_id, t.filter->>'refreshInterval' as iv,"
            "  %(tick)s::timestamptz - case t.filter->>'refreshInterval'"
            "   when '1m' then interval '1 minute' when '5m' then interval '5 minutes'"
            "   when '15m' then interval '15 minutes' when '30m' then interval '30 minutes'"
            "   when '1h' then interval '1 hour' when '4h' then interval '4 hours'"
            "   else interval '1 day' end as slot"
            " from public.traders t",
            {"tick": TICK_AT},
        )
        conn.execute(
            "insert into public.trader_runs (trader_id, user_id, slot, interval, status,"
            " started_at, finished_at, duration_ms, symbols_evaluated, matches, signals,"
            " data_as_of, data_age_ms, worker)"
            " select id, user_id, slot, iv, 'ok', now() - interval '1 minute',"
            "  now() - interval '1 minute', 1, 0, 0, 0, slot, 0, 'bench-history'"
            " from bench_prev"
        )
        conn.execute(
            "insert into public.trader_matches (trader_id, user_id, symbols, slot)"
            " select id, user_id, '{}', slot from bench_prev"
        )
        conn.execute("drop table bench_prev")


def _mix(conn: psycopg.Connection[Any], traders: int) -> TraderMix:
    users: dict[str, int] = dict(
        conn.execute("select tier, count(*) from public.user_tiers group by tier").fetchall()
    )
    per_filter_tier: dict[tuple[str, str], int] = {}
    per_tier: dict[str, int] = {}
    for key, tier, count in conn.execute(
        "select split_part(t.name, '#', 1), coalesce(ut.tier, 'free'), count(*)"
        " from public.traders t left join public.user_tiers ut using (user_id) group by 1, 2"
    ).fetchall():
        per_filter_tier[(key, tier)] = count
        per_tier[tier] = per_tier.get(tier, 0) + count
    symbols = {
        name: min(UNIVERSE, limit or UNIVERSE)
        for name, limit in conn.execute("select name, max_symbols from public.tiers").fetchall()
        if name in users
    }
    intervals = dict(
        conn.execute(
            "select filter->>'refreshInterval', count(*) from public.traders group by 1 order by 1"
        ).fetchall()
    )
    return TraderMix(
        traders=traders,
        users=users,
        traders_per_tier=per_tier,
        symbols_per_tier=symbols,
        per_filter_tier=per_filter_tier,
        intervals=intervals,
    )


def build_template(url: str, traders: int) -> TraderMix:
    """Migrate the (empty) database at ``url`` and load the market data and traders."""
    if traders < 20:
        raise SystemExit("--traders must be at least 20 (one elite, pro and free user each)")
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        _load_market_data(conn)
        load_traders(conn, traders)
        seed_history(conn)
        conn.execute("vacuum analyze")
        conn.execute("checkpoint")
        return _mix(conn, traders)
