"""Turning what a refresh fetched into the :class:`RefreshBatch` it writes.

Two jobs: rank the tickers (stored under the WebSocket stream's field names, because
filters were written against that payload), and keep the stale book — which series are
behind, why, which intervals' data was rewritten (their snapshot version moves) and
which only had stale flags change (their counts are redone, version and closed_through
stay: nothing new was loaded). A series is stale when
its request failed (the last good klines stay) or when the exchange's newest candle is
older than the one that should be live; it is retried every minute until fresh again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from traderctl.worker.errors import MarketDataError
from traderctl.worker.intervals import closed_through, ms_to_datetime
from traderctl.worker.market import events
from traderctl.worker.market.fetch import SeriesOutcome
from traderctl.worker.market.shapes import ticker_to_stream
from traderctl.worker.market.store import MarketEvent, RefreshBatch

__all__ = ["StaleBook", "add_tickers"]

log = logging.getLogger(__name__)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def add_tickers(
    batch: RefreshBatch,
    universe: list[str],
    tickers: Mapping[str, dict[str, Any]],
    minute: int,
) -> None:
    """Rank the universe by 24h quote volume and add its tickers to ``batch``.

    A member missing from the answer keeps its stored ticker and is ranked after the
    others; the 'ticker' snapshot counts it as stale.
    """
    present = [s for s in universe if s in tickers]
    present.sort(key=lambda s: (-float(tickers[s]["quoteVolume"]), s))
    missing = [s for s in universe if s not in tickers]
    for rank, symbol in enumerate(present, start=1):
        rest = tickers[symbol]
        batch.tickers.append(
            (symbol, _compact(ticker_to_stream(rest)), float(rest["quoteVolume"]), rank)
        )
    batch.kept_ranks = [(s, len(present) + i) for i, s in enumerate(missing, start=1)]
    batch.ticker_minute = ms_to_datetime(minute)
    batch.missing_tickers = len(missing)
    if missing:
        log.warning("no 24h ticker for %d universe symbol(s): %s", len(missing), missing[:10])


@dataclass
class StaleBook:
    """Stale series after this refresh, the intervals it touched, and the events to log."""

    #: (symbol, interval) -> reason, for every series that is behind.
    stale: dict[tuple[str, str], str]
    #: Intervals whose stored klines changed: their snapshot version moves.
    touched: set[str] = field(default_factory=set)
    #: Intervals where a series was newly flagged or its reason changed (counts redone).
    flagged: set[str] = field(default_factory=set)
    events: list[MarketEvent] = field(default_factory=list)

    @classmethod
    def carry_over(
        cls,
        previous: Mapping[tuple[str, str], str],
        *,
        members: Collection[str],
    ) -> StaleBook:
        """Start from the previous book, minus symbols that left the universe.

        Nothing is touched yet: an interval is touched by the series actually loaded,
        not by being due, so an interval whose every request failed does not move.
        """
        members = set(members)
        kept = {k: v for k, v in previous.items() if k[0] in members}
        return cls(stale=kept)

    def record(self, batch: RefreshBatch, outcome: SeriesOutcome, now: int) -> None:
        """Add ``outcome`` to ``batch`` and update the book."""
        if outcome.klines is not None:
            self._fresh(batch, outcome.symbol, outcome.interval, outcome.klines, now)
        else:
            assert outcome.error is not None
            self._failed(batch, outcome.symbol, outcome.interval, outcome.error)

    def _fresh(
        self, batch: RefreshBatch, symbol: str, interval: str, klines: list[list[Any]], now: int
    ) -> None:
        key = (symbol, interval)
        last_open = klines[-1][0]
        expected = closed_through(interval, now)
        batch.fresh.append((symbol, interval, _compact(klines), ms_to_datetime(last_open)))
        self.touched.add(interval)
        if last_open < expected:
            reason = (
                f"the exchange's newest {interval} candle opens at "
                f"{ms_to_datetime(last_open):%Y-%m-%d %H:%M}, expected "
                f"{ms_to_datetime(expected):%Y-%m-%d %H:%M}; retried next minute"
            )
            batch.stale.append((symbol, interval, reason))
            self.stale[key] = reason
        elif key in self.stale:
            del self.stale[key]
            self.events.append(events.series_recovered(symbol, interval))

    def _failed(
        self, batch: RefreshBatch, symbol: str, interval: str, error: MarketDataError
    ) -> None:
        key = (symbol, interval)
        reason = str(error)
        batch.stale.append((symbol, interval, reason))
        if self.stale.get(key) != reason:
            self.flagged.add(interval)
        if key not in self.stale:
            self.events.append(events.series_failed(symbol, interval, error))
        self.stale[key] = reason
