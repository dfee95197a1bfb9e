"""The market-data refresher: keep the snapshot tables fresh, aligned to candle closes.

``traderctl market-data`` runs :func:`traderctl.worker.market.process.run_market_data`;
tests and benchmarks drive a :class:`MarketDataRefresher` directly::

    async with BinanceClient(sim.base_url, budget=WeightBudget(3000)) as client:
        refresher = MarketDataRefresher(conn, client, MarketDataOptions())
        result = await refresher.refresh(full=True)     # one transaction
        result = await refresher.refresh()              # only what closed since

One refresh is: plan (:mod:`.refresh_plan`), fetch (:mod:`.fetch`), assemble one batch
(:mod:`.refresh_batch`), write it in one transaction (:mod:`.store`), and only then move
the in-memory state. The minute loop is in :mod:`.process`, the alerts in :mod:`.events`.

**Cadence.** A full refresh on start, then one refresh just after every minute boundary:
the tickers, plus the klines of every interval whose candle has closed since that
interval was last stored (:func:`~traderctl.worker.intervals.due_intervals`: at 10:05
that is 1m and 5m, at 04:00 everything up to 4h, at 00:00 all seven; after a missed
minute it catches up). Series flagged stale are retried every minute whatever their
interval. The universe (top N USDT pairs by 24h quote volume) is recomputed on start and
at every full hour; new members get every interval at once, leavers are deleted.

**Intervals.** All seven intervals are fetched for every symbol
(TRADERCTL_MARKET_INTERVALS can narrow this): it costs 1400 weight at a full refresh or
at 00:00 UTC, inside the 3000 budget, and a trader enabled later never waits for its
timeframe to be fetched.

**Versions.** A refresh bumps ``market_snapshots.version`` of exactly the intervals
whose stored klines it rewrote (series loaded, universe joiners and leavers, successful
stale retries) and of 'ticker' when tickers were refreshed. ``closed_through`` of an
interval says what was loaded, not what was due: the newest candle that at least half of
its series hold (each series has its own ``closed_through`` from its last kline), capped
at the live candle and never moved backwards. So slot M's data contains the candle that
closed at M iff closed_through >= M, and an interval whose requests all failed (a 429
storm, timeouts) keeps its old closed_through: it is due again next minute, readers
record how far behind their data is, and ops.snapshot_freshness calls it stale.

**Failures.** A symbol that fails (after retries) does not block the others: its last
good series is kept and flagged stale with the reason (a never-fetched series is stored as
``[]``, closed_through = epoch). A 418 aborts the refresh without writing data, records a
critical event and stops all requests until the ban ends (then a full refresh). Malformed
answers are typed errors, logged, and keep the last good data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from traderctl.worker.config import DEFAULT_EXCLUDED_BASES, Settings
from traderctl.worker.errors import (
    ExchangeBanned,
    MarketDataError,
    TraderctlError,
    UniverseEmpty,
)
from traderctl.worker.intervals import (
    INTERVALS,
    MINUTE_MS,
    closed_through,
    minute_floor,
    ms_to_datetime,
)
from traderctl.worker.market import events, store
from traderctl.worker.market.binance_client import BinanceClient
from traderctl.worker.market.fetch import Overview, SeriesOutcome, fetch_overview, fetch_series
from traderctl.worker.market.metrics import MarketMetrics
from traderctl.worker.market.refresh_batch import StaleBook, add_tickers
from traderctl.worker.market.refresh_plan import (
    UniverseChange,
    bump_targets,
    due_now,
    series_jobs,
    universe_due,
)
from traderctl.worker.market.shapes import ListedSymbol
from traderctl.worker.market.store import Bumped, MarketEvent, RefreshBatch
from traderctl.worker.market.universe import select_universe

__all__ = ["MarketDataOptions", "MarketDataRefresher", "RefreshResult"]

log = logging.getLogger(__name__)
_HOUR_MS = 60 * MINUTE_MS


@dataclass(frozen=True, kw_only=True)
class MarketDataOptions:
    """What to keep fresh (the TRADERCTL_MARKET_* settings of worker/config.py)."""

    universe_size: int = 100
    excluded_bases: tuple[str, ...] = DEFAULT_EXCLUDED_BASES
    intervals: tuple[str, ...] = INTERVALS
    klines_limit: int = 250
    universe_every_ms: int = _HOUR_MS

    @classmethod
    def from_settings(cls, settings: Settings) -> MarketDataOptions:
        return cls(
            universe_size=settings.market_universe_size,
            excluded_bases=settings.market_excluded_bases,
            intervals=settings.market_intervals,
            klines_limit=settings.market_klines_limit,
        )


@dataclass(frozen=True, kw_only=True)
class RefreshResult:
    """What one refresh did; ``status`` is ok, partial (some series stale), failed or banned."""

    status: str
    minute: int  # ms of the minute boundary the refresh belongs to
    full: bool
    intervals: tuple[str, ...]  # kline intervals whose candles were due
    versions: dict[str, int]  # new version of every bumped snapshot row
    symbols: int
    fresh_series: int
    stale_series: list[tuple[str, str, str]]
    universe_changed: bool
    requests: int
    used_weight: int | None
    seconds: float
    write_seconds: float = 0.0  # of which the database transaction
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["stale_series"] = [list(s) for s in self.stale_series]
        return data


@dataclass
class _State:
    """What the refresher knows between refreshes (loaded from the database on start)."""

    closed_through: dict[str, int | None] = field(default_factory=dict)
    stale: dict[tuple[str, str], str] = field(default_factory=dict)
    universe: list[str] = field(default_factory=list)
    listed: list[ListedSymbol] | None = None
    universe_at: int = -1  # minute of the last universe computation
    loaded: bool = False


@dataclass(frozen=True)
class _Clock:
    """The instants one refresh is measured against."""

    now: int  # ms since the epoch
    minute: int  # the minute boundary at or before ``now``
    started: float  # perf_counter() at the start
    requests_before: int  # client requests sent before this refresh


@dataclass(frozen=True)
class _Written:
    """A committed refresh, as far as its result needs to know."""

    due: list[str]
    change: UniverseChange
    batch: RefreshBatch
    stale: dict[tuple[str, str], str]
    tickers_ok: bool
    versions: dict[str, int]
    write_seconds: float


class MarketDataRefresher:
    """Fetches from a :class:`BinanceClient` and writes snapshots through ``conn``.

    ``conn`` must be an autocommit psycopg connection used by nothing else; writes run in
    a thread so the event loop keeps serving requests meanwhile.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        client: BinanceClient,
        options: MarketDataOptions | None = None,
        *,
        metrics: MarketMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self.client = client
        self.options = options or MarketDataOptions()
        self.metrics = metrics
        self._clock = clock
        self.state = _State()
        self._needs_full = True

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _load_state(self) -> None:
        def load() -> tuple[dict[str, store.SnapshotRow], dict[tuple[str, str], str], list[str]]:
            return (
                store.load_snapshots(self.conn),
                store.load_stale(self.conn),
                store.load_universe(self.conn),
            )

        snapshots, stale, universe = await asyncio.to_thread(load)
        self.state.closed_through = {
            i: int(row.closed_through.timestamp() * 1000) if row.closed_through else None
            for i, row in snapshots.items()
        }
        self.state.stale = stale
        self.state.universe = universe
        self.state.loaded = True

    # -- one refresh, with its failure handling ------------------------------------------
    async def refresh(self, *, full: bool = False) -> RefreshResult:
        """Refresh what is due now (everything when ``full`` or on the first call)."""
        now = self.now_ms()
        clock = _Clock(
            now=now,
            minute=minute_floor(now),
            started=time.perf_counter(),
            requests_before=self._requests(),
        )
        full = full or self._needs_full
        rate_limited_before = self.client.count("429")
        try:
            if not self.state.loaded:
                await self._load_state()
            written = await self._refresh(clock, full)
            result = self._result(clock, full, written)
        except ExchangeBanned as exc:
            log.error("%s", exc)
            self._needs_full = True
            await events.record_quietly(self.conn, events.banned(exc, self.client.banned_for()))
            result = self._failed("banned", clock, full, exc)
        except (MarketDataError, psycopg.Error, TraderctlError) as exc:
            log.error("market-data refresh failed: %s", exc)
            result = self._failed("failed", clock, full, exc)
        limited = self.client.count("429") - rate_limited_before
        if limited:
            await events.record_quietly(self.conn, events.rate_limited(limited, clock.minute))
        self._publish_metrics(result)
        return result

    def _requests(self) -> int:
        return sum(self.client.counts.values())

    async def _refresh(self, clock: _Clock, full: bool) -> _Written:
        opts, state = self.options, self.state
        need_universe = universe_due(
            full=full,
            universe=state.universe,
            listing_known=state.listed is not None,
            minute=clock.minute,
            universe_at=state.universe_at,
            every_ms=opts.universe_every_ms,
        )
        overview = await fetch_overview(self.client, with_listing=need_universe)
        if overview.listed is not None:
            state.listed = overview.listed
        change = self._choose_universe(need_universe, overview.tickers, clock.minute)
        due = due_now(
            full=full, now=clock.now, stored=state.closed_through, intervals=opts.intervals
        )
        jobs = series_jobs(
            universe=change.new,
            added=change.added,
            due=due,
            intervals=opts.intervals,
            stale=state.stale,
        )
        outcomes = await fetch_series(self.client, jobs, opts.klines_limit)
        batch, book = self._assemble(clock, overview, change, outcomes)
        write_started = time.perf_counter()
        bumped = await asyncio.to_thread(store.write_refresh, self.conn, batch)
        write_seconds = time.perf_counter() - write_started
        self._commit(bumped, book.stale, change.new)
        self._warn_behind(clock, due)
        return _Written(
            due=due,
            change=change,
            batch=batch,
            stale=book.stale,
            tickers_ok=overview.tickers is not None,
            versions={i: b.version for i, b in bumped.items()},
            write_seconds=write_seconds,
        )

    def _choose_universe(
        self, need_universe: bool, tickers: dict[str, dict[str, Any]] | None, minute: int
    ) -> UniverseChange:
        """Recompute the top-N when due and possible; otherwise keep the stored one."""
        state, opts = self.state, self.options
        old = list(state.universe)
        universe = old
        if need_universe and tickers is not None and state.listed is not None:
            universe = select_universe(
                state.listed, tickers, size=opts.universe_size, excluded_bases=opts.excluded_bases
            )
            state.universe_at = minute
            if not universe:
                raise UniverseEmpty()
        if not universe:
            raise UniverseEmpty(
                "no universe yet: the first tickers/exchangeInfo requests failed; the next "
                "minute retries. Check BINANCE_BASE_URL."
            )
        return UniverseChange(old=old, new=universe)

    def _assemble(
        self,
        clock: _Clock,
        overview: Overview,
        change: UniverseChange,
        outcomes: list[SeriesOutcome],
    ) -> tuple[RefreshBatch, StaleBook]:
        """The one batch this refresh writes, and the stale book it leaves behind."""
        opts, state = self.options, self.state
        batch = RefreshBatch(
            universe=change.new if change.changed else None, events=self._events(overview, change)
        )
        if overview.tickers is not None:
            add_tickers(batch, change.new, overview.tickers, clock.minute)
        book = StaleBook.carry_over(state.stale, members=change.new)
        for outcome in outcomes:
            book.record(batch, outcome, clock.now)
        if change.changed:
            book.touched.update(opts.intervals)
        batch.events.extend(events.cap_series_events(book.events))
        batch.bump = bump_targets(intervals=opts.intervals, touched=book.touched, now=clock.now)
        batch.recount = sorted(book.flagged)
        return batch, book

    @staticmethod
    def _events(overview: Overview, change: UniverseChange) -> list[MarketEvent]:
        found = list(overview.events)
        if change.changed and change.old:
            found.append(events.universe_changed(change.added, change.removed))
        return found

    def _commit(
        self, bumped: dict[str, Bumped], stale: dict[tuple[str, str], str], universe: list[str]
    ) -> None:
        """Move the in-memory state, only once the transaction has committed."""
        for interval, row in bumped.items():
            if interval in self.options.intervals:
                self.state.closed_through[interval] = int(row.closed_through.timestamp() * 1000)
        self.state.stale = stale
        self.state.universe = universe
        self._needs_full = False

    def _warn_behind(self, clock: _Clock, due: list[str]) -> None:
        """Log the due intervals that did not reach their live candle (too few loaded)."""
        behind = [
            f"{interval} still through {ms_to_datetime(held):%Y-%m-%d %H:%M}"
            for interval in due
            if (held := self.state.closed_through.get(interval)) is not None
            and held < closed_through(interval, clock.now)
        ]
        never = [i for i in due if self.state.closed_through.get(i) is None]
        if behind or never:
            log.warning(
                "market data not advanced (fewer than half of the series loaded the new "
                "candle; retried next minute): %s",
                ", ".join(behind + [f"{i} never published" for i in never]),
            )

    # -- reporting -----------------------------------------------------------------------
    def _result(self, clock: _Clock, full: bool, written: _Written) -> RefreshResult:
        batch = written.batch
        stale_now = sorted((s, i, r) for (s, i), r in written.stale.items())
        partial = stale_now or batch.missing_tickers or not written.tickers_ok
        result = RefreshResult(
            status="partial" if partial else "ok",
            minute=clock.minute,
            full=full,
            intervals=tuple(written.due),
            versions=written.versions,
            symbols=len(written.change.new),
            fresh_series=len(batch.fresh),
            stale_series=stale_now,
            universe_changed=written.change.changed,
            requests=self._requests() - clock.requests_before,
            used_weight=self.client.last_used_weight,
            seconds=time.perf_counter() - clock.started,
            write_seconds=written.write_seconds,
        )
        log.info(
            "refreshed %s%s: intervals %s, %d series fresh, %d stale, weight %s, %.2fs "
            "(write %.2fs)",
            f"{ms_to_datetime(clock.minute):%Y-%m-%d %H:%M}",
            " (full)" if full else "",
            ",".join(written.due) or "-",
            result.fresh_series,
            len(stale_now),
            result.used_weight,
            result.seconds,
            result.write_seconds,
        )
        return result

    def _failed(self, status: str, clock: _Clock, full: bool, error: Exception) -> RefreshResult:
        return RefreshResult(
            status=status,
            minute=clock.minute,
            full=full,
            intervals=(),
            versions={},
            symbols=len(self.state.universe),
            fresh_series=0,
            stale_series=[],
            universe_changed=False,
            requests=self._requests() - clock.requests_before,
            used_weight=self.client.last_used_weight,
            seconds=time.perf_counter() - clock.started,
            error=str(error),
        )

    def _publish_metrics(self, result: RefreshResult) -> None:
        if self.metrics is None:
            return
        self.metrics.refreshes.labels(status=result.status).inc()
        self.metrics.refresh_seconds.observe(result.seconds)
        self.metrics.banned.set(1 if self.client.banned_for() > 0 else 0)
        for interval in self.options.intervals:
            count = sum(1 for (_, i) in self.state.stale if i == interval)
            self.metrics.stale_series.labels(interval=interval).set(count)
        for interval, version in result.versions.items():
            self.metrics.snapshot_version.labels(interval=interval).set(version)
