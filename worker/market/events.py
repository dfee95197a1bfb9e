"""The market-data event log: the alerts a refresh leaves in backend.market_data_events.

Operators read this table to learn why data is stale without reading worker logs, so
every event names the symbol and interval it concerns and says what happened. Events
normally travel inside the refresh's own transaction (:class:`RefreshBatch.events`);
the two that describe an aborted or throttled refresh (ban, 429) are written on their
own by :func:`record_quietly`, because there is no batch to carry them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg

from traderctl.worker.errors import (
    ExchangeMalformedResponse,
    ExchangeRequestRejected,
    MarketDataError,
    TraderctlError,
)
from traderctl.worker.intervals import ms_to_datetime
from traderctl.worker.market import store
from traderctl.worker.market.store import MarketEvent

__all__ = [
    "MAX_SERIES_EVENTS",
    "banned",
    "cap_series_events",
    "endpoint_failed",
    "rate_limited",
    "record_quietly",
    "series_failed",
    "series_recovered",
    "universe_changed",
]

#: Series events kept per refresh; a mass failure is summarised instead of flooding the log.
MAX_SERIES_EVENTS = 25


def _kind(error: MarketDataError) -> str:
    if isinstance(error, ExchangeMalformedResponse):
        return "malformed"
    if isinstance(error, ExchangeRequestRejected):
        return "request_failed"
    return "stale"


def endpoint_failed(error: MarketDataError) -> MarketEvent:
    """The tickers or exchangeInfo request failed (nothing goes stale: the old data stays)."""
    kind = _kind(error)
    return MarketEvent(
        kind=kind if kind != "stale" else "request_failed",
        severity="warning",
        message=str(error),
    )


def series_failed(symbol: str, interval: str, error: MarketDataError) -> MarketEvent:
    """A series that was fresh could not be refreshed and is now flagged stale."""
    return MarketEvent(
        kind=_kind(error),
        severity="warning",
        symbol=symbol,
        interval=interval,
        message=str(error),
        detail={"error": type(error).__name__},
    )


def series_recovered(symbol: str, interval: str) -> MarketEvent:
    """A stale series was refreshed up to date."""
    return MarketEvent(
        kind="recovered",
        severity="info",
        symbol=symbol,
        interval=interval,
        message=f"{symbol} {interval} is fresh again.",
    )


def universe_changed(added: list[str], removed: list[str]) -> MarketEvent:
    """The top-N selection changed; leavers' rows are deleted in the same refresh."""
    return MarketEvent(
        kind="universe",
        severity="info",
        message=f"universe changed: {len(added)} symbol(s) in, {len(removed)} out.",
        detail={"added": added, "removed": removed},
    )


def banned(error: Exception, banned_for_s: float) -> MarketEvent:
    """A 418 aborted the refresh; nothing is sent until the ban ends."""
    return MarketEvent(
        kind="banned",
        severity="critical",
        message=str(error),
        detail={"banned_for_s": round(banned_for_s)},
    )


def rate_limited(count: int, minute: int) -> MarketEvent:
    """The exchange answered 429 ``count`` times during the refresh of ``minute``."""
    return MarketEvent(
        kind="rate_limited",
        severity="warning",
        message=f"the exchange answered 429 {count} time(s) during the refresh of "
        f"{ms_to_datetime(minute):%H:%M}; requests paused as Retry-After asked.",
        detail={"count": count},
    )


def cap_series_events(events: list[MarketEvent]) -> list[MarketEvent]:
    """The first :data:`MAX_SERIES_EVENTS` events, plus one summarising the rest."""
    if len(events) <= MAX_SERIES_EVENTS:
        return events
    extra = len(events) - MAX_SERIES_EVENTS
    summary = MarketEvent(
        kind="stale",
        severity="warning",
        message=f"{extra} more series changed state in this refresh (not listed).",
        detail={"count": extra},
    )
    return [*events[:MAX_SERIES_EVENTS], summary]


async def record_quietly(conn: psycopg.Connection[Any], event: MarketEvent) -> None:
    """Insert ``event`` in its own transaction; a database error must not mask the cause."""
    with contextlib.suppress(psycopg.Error, TraderctlError):
        await asyncio.to_thread(store.record_events, conn, [event])
