"""The whole data path: fake Binance → market-data refresh → snapshot tables → worker → runs.

The exchange simulator serves the real endpoints' formats on loopback; the market-data
refresher writes the snapshot tables as in production; the demo filters (realistic
browser filters using the helpers) run in a `traderctl worker` subprocess.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user
from tests.worker_support import (
    enqueue,
    trader_jobs_done,
    wait_until,
    worker_procs,
)
from traderctl.worker.local.demo_filters import DEMO_FILTERS
from traderctl.worker.local.exchange_sim import ExchangeSimulator
from traderctl.worker.market.binance_client import BinanceClient
from traderctl.worker.market.limits import WeightBudget
from traderctl.worker.market.refresher import MarketDataOptions, MarketDataRefresher
from traderctl.worker.runner.freshness import slot_boundary

pytestmark = pytest.mark.slow

UNIVERSE = 25


def refresh_market(db_url: str, base_url: str, intervals: tuple[str, ...]) -> None:
    async def run() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            async with BinanceClient(base_url, budget=WeightBudget(3000)) as client:
                options = MarketDataOptions(
                    universe_size=UNIVERSE, intervals=intervals, klines_limit=120
                )
                await MarketDataRefresher(conn, client, options).refresh(full=True)

    asyncio.run(run())


def test_demo_filters_run_on_refreshed_market_data(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    filters = list(DEMO_FILTERS.values())
    intervals = tuple(
        sorted({tf for f in filters for tf in (*f.required_timeframes, f.refresh_interval)})
    )
    now = datetime.now(UTC)  # before the refresh: every slot's candle is in the data
    with ExchangeSimulator(seed=6, symbols=40, port=0) as sim:
        refresh_market(db_url, sim.base_url, intervals)
    user = make_user(conn, tier="elite")
    traders = {
        f.key: make_trader(
            conn,
            user_id=user,
            code=f.code,
            interval=f.refresh_interval,
            timeframes=f.required_timeframes,
        )
        for f in filters
    }
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start()
        started = time.monotonic()
        jobs = [
            enqueue(
                conn,
                trader,
                slot_boundary(now, DEMO_FILTERS[key].refresh_interval),
                interval=DEMO_FILTERS[key].refresh_interval,
            )
            for key, trader in traders.items()
        ]
        wait_until(lambda: trader_jobs_done(conn, jobs), timeout=30)
        elapsed = time.monotonic() - started
        assert procs.stop(w) == 0
    rows = conn.execute(
        "select t.name, r.status, r.error_message, r.symbols_evaluated, r.matches, r.signals,"
        " r.data_age_ms from public.trader_runs r join public.traders t on t.id = r.trader_id"
    ).fetchall()
    assert len(rows) == len(filters)
    for _name, status, error, evaluated, matches, signals, age in rows:
        assert status == "ok", error
        assert evaluated == UNIVERSE
        assert signals == matches  # first run: every match is a signal
        assert age == 0  # the slot's candle had closed in the refreshed data
    assert elapsed < 20
    total = conn.execute("select count(*) from public.signals").fetchone()
    assert total is not None and total[0] == sum(r[4] for r in rows)
