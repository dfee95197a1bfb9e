"""Planning a refresh: is the universe due, which series to fetch, which versions to bump.

Pure functions of the refresher's state and the clock, with no I/O, so the cadence rules
(candle closes, stale retries, newcomers fetched at once) are decided in one place and
can be read apart from the fetching and writing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from traderctl.worker.intervals import closed_through, due_intervals, ms_to_datetime

__all__ = ["UniverseChange", "bump_targets", "due_now", "series_jobs", "universe_due"]


def universe_due(
    *,
    full: bool,
    universe: Collection[str],
    listing_known: bool,
    minute: int,
    universe_at: int,
    every_ms: int,
) -> bool:
    """Recompute the universe on a full refresh, without one, or once per ``every_ms``."""
    return (
        full
        or not universe
        or not listing_known
        or minute - universe_at >= every_ms
        or minute % every_ms == 0
    )


@dataclass(frozen=True)
class UniverseChange:
    """The universe before and after this refresh."""

    old: list[str]
    new: list[str]

    @property
    def changed(self) -> bool:
        """True when membership changed (a mere reordering by volume does not count)."""
        return self.new != self.old and set(self.new) != set(self.old)

    @property
    def added(self) -> list[str]:
        """Newcomers, in rank order: they get every interval in this refresh."""
        old = set(self.old)
        return [s for s in self.new if s not in old]

    @property
    def removed(self) -> list[str]:
        """Leavers, sorted: their rows are deleted."""
        return sorted(set(self.old) - set(self.new))


def due_now(
    *, full: bool, now: int, stored: Mapping[str, int | None], intervals: Iterable[str]
) -> list[str]:
    """Every interval on a full refresh, otherwise those whose candle closed since stored."""
    return list(intervals) if full else due_intervals(now, stored, intervals)


def series_jobs(
    *,
    universe: list[str],
    added: list[str],
    due: Collection[str],
    intervals: Iterable[str],
    stale: Iterable[tuple[str, str]],
) -> list[tuple[str, str]]:
    """(symbol, interval) pairs to fetch: due intervals for everyone, all for newcomers,
    and every stale series of a current member (retried each minute whatever its interval).
    """
    intervals = tuple(intervals)
    jobs: list[tuple[str, str]] = []
    for interval in intervals:
        for symbol in universe if interval in due else added:
            jobs.append((symbol, interval))
    planned = set(jobs)
    members = set(universe)
    for symbol, interval in sorted(stale):
        if symbol in members and interval in intervals and (symbol, interval) not in planned:
            jobs.append((symbol, interval))
    return jobs


def bump_targets(
    *, intervals: Iterable[str], touched: Collection[str], now: int
) -> dict[str, datetime]:
    """The intervals whose snapshot version must move, each with the newest
    ``closed_through`` it may reach: the open time of its live candle at ``now``.

    Only the cap is decided here. How far an interval actually advances is decided by
    what was loaded (the write counts its stored series, see ``market_bump_kline_snapshots``):
    the newest candle that at least half of its series hold, never backwards. So an
    interval whose series all failed keeps its ``closed_through`` and reads as stale.
    """
    return {
        interval: ms_to_datetime(closed_through(interval, now))
        for interval in intervals
        if interval in touched
    }
