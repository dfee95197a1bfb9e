"""Kline intervals and the minute-boundary arithmetic of the market-data cadence.

Every interval is a whole number of minutes and they form a divisibility chain
(1m | 5m | 15m | 30m | 1h | 4h | 1d), all aligned to the Unix epoch, i.e. to UTC
midnight. A candle of interval ``I`` closes at minute ``M`` iff ``M % I == 0``; at that
moment the exchange starts a new live candle whose open time is ``M``.

``closed_through(I, now)`` is the open time of the live candle at ``now``: every candle
that closed at or before it is complete. This is the value stored in
``market_klines.closed_through`` and ``market_snapshots.closed_through``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

__all__ = [
    "INTERVALS",
    "INTERVAL_MS",
    "MINUTE_MS",
    "closed_through",
    "due_intervals",
    "intervals_closing_at",
    "minute_floor",
    "ms_to_datetime",
    "next_minute",
]

MINUTE_MS = 60_000

#: Interval name -> length in milliseconds, shortest first.
INTERVAL_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
}
INTERVALS: tuple[str, ...] = tuple(INTERVAL_MS)


def minute_floor(now_ms: int) -> int:
    """The minute boundary at or before ``now_ms``."""
    return now_ms - now_ms % MINUTE_MS


def next_minute(now_ms: int) -> int:
    """The first minute boundary strictly after ``now_ms``."""
    return minute_floor(now_ms) + MINUTE_MS


def closed_through(interval: str, now_ms: int) -> int:
    """Open time of the live candle of ``interval`` at ``now_ms`` (ms since the epoch)."""
    size = INTERVAL_MS[interval]
    return now_ms - now_ms % size


def intervals_closing_at(minute_ms: int, intervals: Iterable[str] = INTERVALS) -> list[str]:
    """Intervals whose candle closes exactly at the boundary ``minute_ms``.

    At 10:05 that is 1m and 5m; at 04:00 everything up to 4h; at 00:00 all seven.
    """
    return [i for i in intervals if minute_ms % INTERVAL_MS[i] == 0]


def due_intervals(
    now_ms: int, stored: Mapping[str, int | None], intervals: Iterable[str] = INTERVALS
) -> list[str]:
    """Intervals whose stored ``closed_through`` is behind the live candle at ``now_ms``.

    At steady state this equals :func:`intervals_closing_at`; after a missed minute or a
    failed refresh it also catches up on every interval that closed in between.
    """
    return [i for i in intervals if (stored.get(i) or -1) < closed_through(i, now_ms)]


def ms_to_datetime(ms: int) -> datetime:
    """Milliseconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
