"""Runs on data whose refresh failed record how old it really is.

Every 5m request fails in the latest refresh (the exchange simulator answers 503), so the
5m snapshot keeps the closed_through of the refresh before, 20 minutes earlier. A trader
reading 5m candles then runs in a real `traderctl worker` and records that age instead
of "fresh".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user
from tests.worker_support import enqueue, minute, trader_jobs_done, wait_until, worker_procs
from traderctl.worker.local.exchange_sim import ExchangeSimulator
from traderctl.worker.local.sim_faults import FaultRule
from traderctl.worker.market.binance_client import BinanceClient
from traderctl.worker.market.limits import Backoff, WeightBudget
from traderctl.worker.market.refresher import MarketDataOptions, MarketDataRefresher
from traderctl.worker.runner.freshness import slot_boundary

pytestmark = pytest.mark.slow


def refresh_twice(db_url: str, sim: ExchangeSimulator, now_ms: int) -> None:
    """A full refresh 20 minutes ago, then one now with every 5m request failing."""

    async def run() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            async with BinanceClient(
                sim.base_url,
                budget=WeightBudget(3000),
                backoff=Backoff(base=0.01, cap=0.02, attempts=2),
                clock=lambda: sim.now_ms() / 1000,
            ) as client:
                refresher = MarketDataRefresher(
                    conn,
                    client,
                    MarketDataOptions(universe_size=3, intervals=("1m", "5m"), klines_limit=60),
                    clock=lambda: sim.now_ms() / 1000,
                )
                sim.set_now(now_ms - 20 * 60_000)
                assert (await refresher.refresh(full=True)).status == "ok"
                sim.set_now(now_ms)
                sim.set_faults(rules=[FaultRule(endpoint="klines", interval="5m", status=503)])
                assert (await refresher.refresh()).status == "partial"

    asyncio.run(run())


def test_run_on_failed_interval_records_its_true_age(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with ExchangeSimulator(seed=3, symbols=10, port=0) as sim:
        refresh_twice(db_url, sim, int(now.timestamp() * 1000))
    held = conn.execute(
        "select closed_through from public.market_snapshots where interval = '5m'"
    ).fetchone()
    assert held is not None
    slot = minute(now)
    assert held[0] < slot_boundary(slot, "5m")  # the 5m refresh failed: still behind

    user = make_user(conn, tier="elite")
    trader = make_trader(conn, user_id=user, interval="1m", timeframes=["5m"])
    with worker_procs(db_url, tmp_path) as procs:
        w = procs.start()
        job = enqueue(conn, trader, slot, interval="1m")
        wait_until(lambda: trader_jobs_done(conn, [job]), timeout=30)
        assert procs.stop(w) == 0
    row = conn.execute(
        "select status, data_as_of, data_age_ms from public.trader_runs where trader_id = %s",
        (trader,),
    ).fetchone()
    assert row is not None
    status, as_of, age = row
    assert status == "ok"
    assert as_of == held[0]
    expected = (slot_boundary(slot, "5m") - held[0]).total_seconds() * 1000
    assert age == expected and age >= 15 * 60_000
