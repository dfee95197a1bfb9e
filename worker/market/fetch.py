"""Fetching one refresh's worth of data, within the client's limits.

The weight budget, retries and the ban live in :class:`BinanceClient`; this module
decides what a failure means for the refresh. A 418 (:class:`ExchangeBanned`) aborts the
whole refresh, cancelling whatever is still in flight. Any other failure is contained:
a failed tickers or exchangeInfo request becomes an event and the old data is kept, and
a failed kline series becomes a :class:`SeriesOutcome` carrying the error, so one bad
symbol never blocks the others.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, TypeVar

from traderctl.worker.errors import ExchangeBanned, MarketDataError
from traderctl.worker.market import events
from traderctl.worker.market.binance_client import BinanceClient
from traderctl.worker.market.shapes import ListedSymbol
from traderctl.worker.market.store import MarketEvent

__all__ = ["Overview", "SeriesOutcome", "fetch_overview", "fetch_series"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class SeriesOutcome:
    """The klines of one series, or why they could not be fetched."""

    symbol: str
    interval: str
    klines: list[list[Any]] | None = None
    error: MarketDataError | None = None


@dataclass(frozen=True)
class Overview:
    """The every-minute part of a refresh: 24h tickers and, when asked for, the listing."""

    #: REST 24h tickers by symbol; None when the request failed.
    tickers: dict[str, dict[str, Any]] | None
    #: Every listed symbol; None when not requested or when the request failed.
    listed: list[ListedSymbol] | None
    events: list[MarketEvent] = field(default_factory=list)


async def _cancel(tasks: list[asyncio.Future[_T]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def fetch_overview(client: BinanceClient, *, with_listing: bool) -> Overview:
    """Tickers, and exchangeInfo concurrently when ``with_listing`` (the universe is due)."""
    listing_task = asyncio.ensure_future(client.exchange_info()) if with_listing else None
    found: list[MarketEvent] = []
    tickers: dict[str, dict[str, Any]] | None
    try:
        tickers = {t["symbol"]: t for t in await client.tickers()}
    except ExchangeBanned:
        if listing_task is not None:
            await _cancel([listing_task])
        raise
    except MarketDataError as exc:
        log.error("tickers not refreshed: %s", exc)
        found.append(events.endpoint_failed(exc))
        tickers = None
    listed: list[ListedSymbol] | None = None
    if listing_task is not None:
        try:
            listed = await listing_task
        except ExchangeBanned:
            raise
        except MarketDataError as exc:
            log.error("exchangeInfo not refreshed: %s", exc)
            found.append(events.endpoint_failed(exc))
    return Overview(tickers=tickers, listed=listed, events=found)


async def _fetch_one(
    client: BinanceClient, symbol: str, interval: str, limit: int
) -> SeriesOutcome:
    try:
        klines = await client.klines(symbol, interval, limit)
    except ExchangeBanned:
        raise
    except MarketDataError as exc:
        log.warning("%s %s: %s", symbol, interval, exc)
        return SeriesOutcome(symbol, interval, error=exc)
    return SeriesOutcome(symbol, interval, klines=klines)


async def fetch_series(
    client: BinanceClient, jobs: list[tuple[str, str]], limit: int
) -> list[SeriesOutcome]:
    """The latest ``limit`` klines of every (symbol, interval) in ``jobs``, in that order.

    All requests are issued at once; the client's semaphore and weight budget pace them.
    """
    tasks: list[asyncio.Future[SeriesOutcome]] = [
        asyncio.ensure_future(_fetch_one(client, s, i, limit)) for s, i in jobs
    ]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        await _cancel(tasks)
        raise
