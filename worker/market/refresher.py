"""The market-data worker: keep the snapshot tables fresh, aligned to candle closes.

``traderctl market-data`` runs :func:`run_market_data`; tests and benchmarks drive a
:class:`MarketDataRefresher` directly::

    async with BinanceClient(sim.base_url, budget=WeightBudget(3000)) as client:
        refresher = MarketDataRefresher(conn, client, MarketDataOptions())
        result = await refresher.refresh(full=True)     # one transaction
        result = await refresher.refresh()              # only what closed since

**Cadence.** A full refresh on start, then one refresh just after every minute boundary
(MARKET_REFRESH_DELAY_MS later): the tickers, plus the klines of every interval whose
candle has closed since that interval was last stored (:func:`due_intervals`: at 10:05
that is 1m and 5m, at 04:00 everything up to 4h, at 00:00 all seven; after a missed
minute it catches up). Series flagged stale are retried every minute whatever their
interval. The universe (top N USDT pairs by 24h quote volume) is recomputed on start and
at every full hour; new members get every interval at once, leavers are deleted.

**Intervals.** All seven intervals are fetched for every symbol (MARKET_INTERVALS can
narrow this): it costs 1400 weight at a full refresh or at 00:00 UTC, inside the 3000
budget, and a trader enabled later never waits for its timeframe to be fetched.

**Versions.** A refresh bumps ``market_snapshots.version`` of exactly the intervals it
rewrote (due intervals, plus any interval whose series changed because of universe
changes or stale retries) and of 'ticker' when tickers were refreshed. ``closed_through``
of an interval is the open time of its live candle at the refresh (so slot M's data
contains the candle that closed at M iff closed_through >= M); each series has its own
``closed_through`` from its last kline, which lags when the series is stale.

**Failures.** A symbol that fails (after retries) does not block the others: its last
good series is kept and flagged stale with the reason (a never-fetched series is stored as
``[]``, closed_through = epoch). A 418 aborts the refresh without writing data, records a
critical event and stops all requests until the ban ends (then a full refresh). Malformed
answers are typed errors, logged, and keep the last good data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from traderctl.worker.config import DEFAULT_EXCLUDED_BASES, Settings
from traderctl.worker.db import connect
from traderctl.worker.errors import (
    ExchangeBanned,
    ExchangeMalformedResponse,
    ExchangeRequestRejected,
    MarketDataError,
    TraderctlError,
    UniverseEmpty,
)
from traderctl.worker.intervals import (
    INTERVALS,
    MINUTE_MS,
    closed_through,
    due_intervals,
    minute_floor,
    ms_to_datetime,
    next_minute,
)
from traderctl.worker.market import store as store
from traderctl.worker.market.binance_client import BinanceClient
from traderctl.worker.market.limits import Backoff, WeightBudget
from traderctl.worker.market.metrics import MarketMetrics
from traderctl.worker.market.shapes import ListedSymbol, ticker_to_stream
from traderctl.worker.market.store import MarketEvent, RefreshBatch
from traderctl.worker.market.universe import select_universe

__all__ = [
    "MarketDataOptions",
    "MarketDataRefresher",
    "RefreshResult",
    "run_market_data",
]

log = logging.getLogger(__name__)
_HOUR_MS = 60 * MINUTE_MS
_MAX_SERIES_EVENTS = 25  # per refresh; the rest is summarised in one event


@dataclass(frozen=True, kw_only=True)
class MarketDataOptions:
    """What to keep fresh (see worker/config.py for the matching variables)."""

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
class _Outcome:
    """Result of fetching one series."""

    symbol: str
    interval: str
    klines: list[list[Any]] | None = None
    text: str = ""  # the answer's JSON text, stored verbatim
    error: MarketDataError | None = None


@dataclass
class _State:
    """What the refresher knows between refreshes (loaded from the database on start)."""

    closed_through: dict[str, int | None] = field(default_factory=dict)
    stale: dict[tuple[str, str], str] = field(default_factory=dict)
    universe: list[str] = field(default_factory=list)
    listed: list[ListedSymbol] | None = None
    universe_at: int = -1  # minute of the last universe computation
    loaded: bool = False


def _event_kind(error: MarketDataError) -> str:
    if isinstance(error, ExchangeMalformedResponse):
        return "malformed"
    if isinstance(error, ExchangeRequestRejected):
        return "request_failed"
    return "stale"


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

    # -- fetching ------------------------------------------------------------------------
    async def _fetch_series(self, symbol: str, interval: str) -> _Outcome:
        try:
            klines, text = await self.client.klines_text(
                symbol, interval, self.options.klines_limit
            )
        except ExchangeBanned:
            raise
        except MarketDataError as exc:
            log.warning("%s %s: %s", symbol, interval, exc)
            return _Outcome(symbol, interval, error=exc)
        return _Outcome(symbol, interval, klines=klines, text=text)

    async def _gather_series(self, jobs: list[tuple[str, str]]) -> list[_Outcome]:
        tasks = [asyncio.ensure_future(self._fetch_series(s, i)) for s, i in jobs]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # -- one refresh ---------------------------------------------------------------------
    async def refresh(self, *, full: bool = False) -> RefreshResult:
        """Refresh what is due now (everything when ``full`` or on the first call)."""
        started = time.perf_counter()
        now = self.now_ms()
        minute = minute_floor(now)
        full = full or self._needs_full
        requests_before = sum(self.client.counts.values())
        rate_limited_before = self.client.count("429")
        try:
            if not self.state.loaded:
                await self._load_state()
            result = await self._refresh(now, minute, full, started, requests_before)
        except ExchangeBanned as exc:
            log.error("%s", exc)
            self._needs_full = True
            event = MarketEvent(
                kind="banned",
                severity="critical",
                message=str(exc),
                detail={"banned_for_s": round(self.client.banned_for())},
            )
            with contextlib.suppress(psycopg.Error, TraderctlError):
                await asyncio.to_thread(store.record_events, self.conn, [event])
            result = self._failed("banned", minute, full, started, requests_before, exc)
        except (MarketDataError, psycopg.Error, TraderctlError) as exc:
            log.error("market-data refresh failed: %s", exc)
            result = self._failed("failed", minute, full, started, requests_before, exc)
        limited = self.client.count("429") - rate_limited_before
        if limited:
            event = MarketEvent(
                kind="rate_limited",
                severity="warning",
                message=f"the exchange answered 429 {limited} time(s) during the refresh of "
                f"{ms_to_datetime(minute):%H:%M}; requests paused as Retry-After asked.",
                detail={"count": limited},
            )
            with contextlib.suppress(psycopg.Error, TraderctlError):
                await asyncio.to_thread(store.record_events, self.conn, [event])
        if self.metrics is not None:
            self.metrics.refreshes.labels(status=result.status).inc()
            self.metrics.refresh_seconds.observe(result.seconds)
            self.metrics.banned.set(1 if self.client.banned_for() > 0 else 0)
            for interval in self.options.intervals:
                count = sum(1 for (_, i) in self.state.stale if i == interval)
                self.metrics.stale_series.labels(interval=interval).set(count)
            for interval, version in result.versions.items():
                self.metrics.snapshot_version.labels(interval=interval).set(version)
        return result

    def _failed(
        self,
        status: str,
        minute: int,
        full: bool,
        started: float,
        requests_before: int,
        error: Exception,
    ) -> RefreshResult:
        return RefreshResult(
            status=status,
            minute=minute,
            full=full,
            intervals=(),
            versions={},
            symbols=len(self.state.universe),
            fresh_series=0,
            stale_series=[],
            universe_changed=False,
            requests=sum(self.client.counts.values()) - requests_before,
            used_weight=self.client.last_used_weight,
            seconds=time.perf_counter() - started,
            error=str(error),
        )

    async def _refresh(
        self, now: int, minute: int, full: bool, started: float, requests_before: int
    ) -> RefreshResult:
        opts, state = self.options, self.state
        events: list[MarketEvent] = []
        need_universe = (
            full
            or not state.universe
            or state.listed is None
            or minute - state.universe_at >= opts.universe_every_ms
            or minute % opts.universe_every_ms == 0
        )
        # Tickers (every minute) and the listing (when the universe is recomputed).
        listing_task = asyncio.ensure_future(self.client.exchange_info()) if need_universe else None
        tickers: dict[str, dict[str, Any]] | None
        try:
            tickers = {t["symbol"]: t for t in await self.client.tickers()}
        except ExchangeBanned:
            if listing_task is not None:
                listing_task.cancel()
                await asyncio.gather(listing_task, return_exceptions=True)
            raise
        except MarketDataError as exc:
            log.error("tickers not refreshed: %s", exc)
            events.append(
                MarketEvent(
                    kind=_event_kind(exc) if _event_kind(exc) != "stale" else "request_failed",
                    severity="warning",
                    message=str(exc),
                )
            )
            tickers = None
        if listing_task is not None:
            try:
                state.listed = await listing_task
            except ExchangeBanned:
                raise
            except MarketDataError as exc:
                log.error("exchangeInfo not refreshed: %s", exc)
                events.append(
                    MarketEvent(
                        kind=_event_kind(exc) if _event_kind(exc) != "stale" else "request_failed",
                        severity="warning",
                        message=str(exc),
                    )
                )

        # The universe.
        old_universe = list(state.universe)
        universe = old_universe
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
        universe_changed = universe != old_universe and set(universe) != set(old_universe)
        added = [s for s in universe if s not in set(old_universe)]
        removed = sorted(set(old_universe) - set(universe))
        if universe_changed and old_universe:
            events.append(
                MarketEvent(
                    kind="universe",
                    severity="info",
                    message=f"universe changed: {len(added)} symbol(s) in, {len(removed)} out.",
                    detail={"added": added, "removed": removed},
                )
            )

        # Which series to fetch.
        due = (
            list(opts.intervals)
            if full
            else due_intervals(now, state.closed_through, opts.intervals)
        )
        members = set(universe)
        jobs: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for interval in opts.intervals:
            symbols = universe if interval in due else added
            for symbol in symbols:
                jobs.append((symbol, interval))
                seen.add((symbol, interval))
        for symbol, interval in sorted(state.stale):
            if symbol in members and interval in opts.intervals and (symbol, interval) not in seen:
                jobs.append((symbol, interval))
        outcomes = await self._gather_series(jobs)

        # Assemble one batch.
        batch = RefreshBatch(universe=universe if universe_changed else None, events=events)
        if tickers is not None:
            present = [s for s in universe if s in tickers]
            present.sort(key=lambda s: (-float(tickers[s]["quoteVolume"]), s))
            missing = [s for s in universe if s not in tickers]
            for rank, symbol in enumerate(present, start=1):
                rest = tickers[symbol]
                text = json.dumps(ticker_to_stream(rest), separators=(",", ":"))
                batch.tickers.append((symbol, text, float(rest["quoteVolume"]), rank))
            batch.kept_ranks = [(s, len(present) + i) for i, s in enumerate(missing, start=1)]
            batch.ticker_minute = ms_to_datetime(minute)
            batch.missing_tickers = len(missing)
            if missing:
                log.warning(
                    "no 24h ticker for %d universe symbol(s): %s", len(missing), missing[:10]
                )

        touched: set[str] = set(due)
        new_stale: dict[tuple[str, str], str] = {
            k: v for k, v in state.stale.items() if k[0] in members
        }
        series_events: list[MarketEvent] = []
        for outcome in outcomes:
            key = (outcome.symbol, outcome.interval)
            expected = closed_through(outcome.interval, now)
            if outcome.klines is not None:
                last_open = outcome.klines[-1][0]
                text = json.dumps(outcome.klines, separators=(",", ":"))
                batch.fresh.append(
                    (outcome.symbol, outcome.interval, text, ms_to_datetime(last_open))
                )
                touched.add(outcome.interval)
                if last_open < expected:
                    reason = (
                        f"the exchange's newest {outcome.interval} candle opens at "
                        f"{ms_to_datetime(last_open):%Y-%m-%d %H:%M}, expected "
                        f"{ms_to_datetime(expected):%Y-%m-%d %H:%M}; retried next minute"
                    )
                    batch.stale.append((*key, reason))
                    new_stale[key] = reason
                elif key in new_stale:
                    del new_stale[key]
                    series_events.append(
                        MarketEvent(
                            kind="recovered",
                            severity="info",
                            symbol=outcome.symbol,
                            interval=outcome.interval,
                            message=f"{outcome.symbol} {outcome.interval} is fresh again.",
                        )
                    )
            else:
                assert outcome.error is not None
                reason = str(outcome.error)
                batch.stale.append((*key, reason))
                if new_stale.get(key) != reason:
                    touched.add(outcome.interval)
                if key not in new_stale:
                    series_events.append(
                        MarketEvent(
                            kind=_event_kind(outcome.error),
                            severity="warning",
                            symbol=outcome.symbol,
                            interval=outcome.interval,
                            message=reason,
                            detail={"error": type(outcome.error).__name__},
                        )
                    )
                new_stale[key] = reason
        if universe_changed:
            touched.update(opts.intervals)
        if len(series_events) > _MAX_SERIES_EVENTS:
            extra = len(series_events) - _MAX_SERIES_EVENTS
            series_events = series_events[:_MAX_SERIES_EVENTS]
            series_events.append(
                MarketEvent(
                    kind="stale",
                    severity="warning",
                    message=f"{extra} more series changed state in this refresh (not listed).",
                    detail={"count": extra},
                )
            )
        batch.events.extend(series_events)
        for interval in opts.intervals:
            if interval not in touched:
                continue
            if interval in due:
                target = closed_through(interval, now)
            else:
                stored = state.closed_through.get(interval)
                target = stored if stored is not None else closed_through(interval, now)
            batch.bump[interval] = ms_to_datetime(target)

        write_started = time.perf_counter()
        versions = await asyncio.to_thread(store.write_refresh, self.conn, batch)
        write_seconds = time.perf_counter() - write_started

        # Only now, with the transaction committed, does the in-memory state move.
        for interval, when in batch.bump.items():
            state.closed_through[interval] = int(when.timestamp() * 1000)
        state.stale = new_stale
        state.universe = universe
        self._needs_full = False
        stale_now = sorted((s, i, r) for (s, i), r in new_stale.items())
        result = RefreshResult(
            status="partial" if stale_now or batch.missing_tickers or tickers is None else "ok",
            minute=minute,
            full=full,
            intervals=tuple(due),
            versions=versions,
            symbols=len(universe),
            fresh_series=len(batch.fresh),
            stale_series=stale_now,
            universe_changed=universe_changed,
            requests=sum(self.client.counts.values()) - requests_before,
            used_weight=self.client.last_used_weight,
            seconds=time.perf_counter() - started,
            write_seconds=write_seconds,
        )
        log.info(
            "refreshed %s%s: intervals %s, %d series fresh, %d stale, weight %s, %.2fs "
            "(write %.2fs)",
            f"{ms_to_datetime(minute):%Y-%m-%d %H:%M}",
            " (full)" if full else "",
            ",".join(due) or "-",
            result.fresh_series,
            len(stale_now),
            result.used_weight,
            result.seconds,
            write_seconds,
        )
        return result

    # -- the loop ------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, *, delay_ms: int = 1000) -> None:
        """Full refresh now, then one refresh ``delay_ms`` after each minute boundary."""
        await self.refresh(full=True)
        while not stop.is_set():
            now = self.now_ms()
            target = next_minute(now) + delay_ms
            ban_end = int(self.client.banned_until * 1000)
            if ban_end > now:
                target = max(target, next_minute(ban_end) + delay_ms)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, (target - now) / 1000))
            if stop.is_set():
                break
            await self.refresh()


def run_market_data(
    settings: Settings,
    database_url: str,
    base_url: str,
    *,
    once: bool = False,
    metrics_port: int | None = None,
) -> RefreshResult | None:
    """The `traderctl market-data` process: until SIGINT/SIGTERM, or one full refresh."""
    metrics = MarketMetrics()
    port = settings.market_metrics_port if metrics_port is None else metrics_port
    if port:
        metrics.serve(port)
        log.info("Prometheus metrics on http://127.0.0.1:%d/metrics", port)
    try:
        log.info("market data from %s", base_url)
        with connect(database_url) as conn:
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
    budget = WeightBudget(settings.market_weight_budget)
    backoff = Backoff(attempts=settings.market_max_attempts)
    async with BinanceClient(
        base_url,
        budget=budget,
        backoff=backoff,
        timeout_s=settings.market_request_timeout_ms / 1000,
        concurrency=settings.market_concurrency,
        metrics=metrics,
    ) as client:
        refresher = MarketDataRefresher(
            conn, client, MarketDataOptions.from_settings(settings), metrics=metrics
        )
        if once:
            return await refresher.refresh(full=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            task = asyncio.ensure_future(
                refresher.run(stop, delay_ms=settings.market_refresh_delay_ms)
            )
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                # Give an in-flight refresh a moment to commit, then cancel it.
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=10)
            stopper.cancel()
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        log.info("market-data stopped")
        return None
