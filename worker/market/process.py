"""The `traderctl market-data` process: the minute loop, signals, metrics endpoint.

A full refresh on start, then one refresh ``TRADERCTL_MARKET_REFRESH_DELAY_MS`` after
every minute boundary (the delay lets the exchange close its candles first). While the client is
banned the loop sleeps until the first minute boundary after the ban ends. SIGINT and
SIGTERM stop it (and the parent-death signal of a supervising ``traderctl up``); an in-flight
refresh gets a few seconds to commit before it is cancelled, so a deploy does not leave a
half-fetched minute behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import psycopg

from traderctl.worker.config import Settings
from traderctl.worker.db import SessionLimits, connect
from traderctl.worker.intervals import next_minute
from traderctl.worker.market.binance_client import BinanceClient
from traderctl.worker.market.limits import Backoff, WeightBudget
from traderctl.worker.market.metrics import MarketMetrics
from traderctl.worker.market.refresher import MarketDataOptions, MarketDataRefresher, RefreshResult
from traderctl.worker.runner.lifeline import PARENT_DEATH_SIGNAL, ignore_parent_death

__all__ = ["run_every_minute", "run_market_data"]

log = logging.getLogger(__name__)
_STOP_GRACE_S = 10
#: Each one stops the loop; repeats change nothing.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, PARENT_DEATH_SIGNAL)


async def run_every_minute(
    refresher: MarketDataRefresher, stop: asyncio.Event, *, delay_ms: int = 1000
) -> None:
    """Full refresh now, then one refresh ``delay_ms`` after each minute boundary."""
    await refresher.refresh(full=True)
    client = refresher.client
    while not stop.is_set():
        now = refresher.now_ms()
        target = next_minute(now) + delay_ms
        ban_end = int(client.banned_until * 1000)
        if ban_end > now:
            target = max(target, next_minute(ban_end) + delay_ms)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, (target - now) / 1000))
        if stop.is_set():
            break
        await refresher.refresh()


def run_market_data(
    settings: Settings,
    database_url: str,
    base_url: str,
    *,
    once: bool = False,
    metrics_port: int | None = None,
) -> RefreshResult | None:
    """Run until SIGINT/SIGTERM, or do one full refresh and return it when ``once``."""
    metrics = MarketMetrics()
    port = settings.market_metrics_port if metrics_port is None else metrics_port
    if port:
        metrics.serve(port)
        log.info("Prometheus metrics on http://127.0.0.1:%d/metrics", port)
    try:
        log.info("market data from %s", base_url)
        with connect(database_url, limits=SessionLimits.from_settings(settings)) as conn:
            return asyncio.run(_main(conn, base_url, settings, metrics, once=once))
    finally:
        metrics.close()


async def _main(
    conn: psycopg.Connection[Any],
    base_url: str,
    settings: Settings,
    metrics: MarketMetrics,
    *,
    once: bool,
) -> RefreshResult | None:
    async with BinanceClient(
        base_url,
        budget=WeightBudget(settings.market_weight_budget),
        backoff=Backoff(attempts=settings.market_max_attempts),
        timeout_s=settings.market_request_timeout_ms / 1000,
        concurrency=settings.market_concurrency,
        metrics=metrics,
    ) as client:
        refresher = MarketDataRefresher(
            conn, client, MarketDataOptions.from_settings(settings), metrics=metrics
        )
        if once:
            return await refresher.refresh(full=True)
        await _run_until_signalled(refresher, delay_ms=settings.market_refresh_delay_ms)
        log.info("market-data stopped")
        return None


async def _run_until_signalled(refresher: MarketDataRefresher, *, delay_ms: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        task = asyncio.ensure_future(run_every_minute(refresher, stop, delay_ms=delay_ms))
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            # Give an in-flight refresh a moment to commit, then cancel it.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=_STOP_GRACE_S)
        stopper.cancel()
        if task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        ignore_parent_death()
