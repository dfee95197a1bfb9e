"""The market snapshot each worker process keeps loaded in its JS runtime.

The market-data worker publishes one row per interval (and one for the 24h tickers) in
``public.market_snapshots`` whose ``version`` moves on every refresh, written in the same
transaction as the data. A worker checks those versions once per batch (one small query)
and reloads only the intervals it needs whose version moved:

* klines: Postgres concatenates the stored JSON texts into one ``{SYMBOL: [...]}`` text,
  which goes to the runtime's ``JSON.parse`` untouched; Python never parses a kline;
* tickers: parsed once per version in Python too, for the universe order (rank by quote
  volume) and the price/change/volume written on signals.

Each load reads version and data in one REPEATABLE READ transaction, so the version
recorded always describes the data handed to V8.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from traderctl.worker import queries
from traderctl.worker.errors import SnapshotMissing
from traderctl.worker.market.store import SnapshotRow, load_snapshots

__all__ = [
    "TICKER",
    "SnapshotCache",
    "SnapshotSink",
]

logger = logging.getLogger(__name__)

#: The market_snapshots row of the 24h tickers.
TICKER = "ticker"


class SnapshotSink(Protocol):
    """What the cache loads data into: the JS runtime (worker.sandbox.FilterRuntime)."""

    def set_tickers(self, version: str, tickers_json: str) -> None: ...

    def set_series(self, interval: str, version: str, series_json: str) -> None: ...


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


class SnapshotCache:
    """Per-process snapshot state: which version of each interval the runtime holds.

    Not thread-safe: one cache belongs to one runtime, used by one thread at a time.
    ``on_load(interval, seconds)`` is called after every (re)load (metrics, logs).
    """

    def __init__(
        self,
        sink: SnapshotSink,
        *,
        on_load: Callable[[str, float], None] | None = None,
    ) -> None:
        self._sink = sink
        self._on_load = on_load
        self.loaded: dict[str, SnapshotRow] = {}
        self.published: dict[str, SnapshotRow] = {}
        #: Symbols by universe rank (largest 24h quote volume first).
        self.universe: list[str] = []
        #: Each ticker's signal numbers as a JSON object member, '"SYM":[price,change,volume]'
        #: (null when unparseable), rendered once per tickers version (:meth:`prices_json`).
        self.price_members: dict[str, str] = {}
        self.loads = 0

    def prices_json(self, symbols: Iterable[str]) -> str:
        """JSON object text {symbol: [price, change %, quote volume]} of ``symbols`` that have
        a ticker: what a run record carries for its matches' signals.

        Rendered from per-symbol text made once per tickers version: formatting the same
        floats again for every run was two thirds of the time json.dumps took over a
        batch's run records.
        """
        members = self.price_members
        return "{" + ",".join(members[s] for s in dict.fromkeys(symbols) if s in members) + "}"

    def invalidate(self) -> None:
        """Forget everything loaded (call when the runtime was recreated)."""
        self.loaded.clear()

    def poll_versions(self, conn: psycopg.Connection[Any]) -> dict[str, SnapshotRow]:
        """Read every interval's current version (one query); does not load anything."""
        self.published = load_snapshots(conn)
        return self.published

    def sync(
        self,
        conn: psycopg.Connection[Any],
        intervals: Iterable[str],
        *,
        published: dict[str, SnapshotRow] | None = None,
    ) -> dict[str, SnapshotRow]:
        """Make the runtime hold the current version of each interval (and the tickers).

        ``published`` saves the version query when the caller has just read it. Raises
        SnapshotMissing when one of them was never published.
        """
        wanted = sorted({TICKER, *intervals})
        if published is None:
            published = self.poll_versions(conn)
        missing = [iv for iv in wanted if iv not in published or not published[iv].published]
        if missing:
            raise SnapshotMissing(
                f"no market data published yet for {', '.join(missing)} "
                "(public.market_snapshots has no refreshed row); start the market-data "
                "worker (`traderctl market-data`) or wait for its first refresh."
            )
        for interval in wanted:
            current = self.loaded.get(interval)
            if current is None or current.version != published[interval].version:
                self._load(conn, interval)
        return {iv: self.loaded[iv] for iv in wanted}

    def _load(self, conn: psycopg.Connection[Any], interval: str) -> None:
        started = time.perf_counter()
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(queries.get("snapshot_read_only"))
            row = cur.execute(queries.get("snapshot_version"), {"interval": interval}).fetchone()
            if row is None:
                raise SnapshotMissing(f"market snapshot {interval!r} disappeared while loading")
            state = SnapshotRow.from_row(row)
            if interval == TICKER:
                rows = cur.execute(queries.get("load_tickers")).fetchall()
                universe: list[str] = []
                members: dict[str, str] = {}
                parts: list[str] = []
                for ticker_row in rows:
                    symbol = ticker_row["symbol"]
                    text = ticker_row["ticker"]
                    universe.append(symbol)
                    parts.append(json.dumps(symbol) + ":" + text)
                    try:
                        data = json.loads(text)
                    except ValueError:
                        data = {}
                    if not isinstance(data, dict):
                        data = {}
                    numbers = [
                        _number(data.get("c")),
                        _number(data.get("P")),
                        _number(data.get("q", ticker_row["quote_volume"])),
                    ]
                    members[symbol] = f"{json.dumps(symbol)}:{json.dumps(numbers)}"
                self._sink.set_tickers(str(state.version), "{" + ",".join(parts) + "}")
                self.universe = universe
                self.price_members = members
            else:
                series = cur.execute(
                    queries.get("load_kline_series"), {"interval": interval}
                ).fetchone()
                assert series is not None
                self._sink.set_series(interval, str(state.version), series["series"])
        self.loaded[interval] = state
        self.loads += 1
        seconds = time.perf_counter() - started
        logger.debug(
            "loaded snapshot %s version %s in %.1f ms", interval, state.version, seconds * 1000
        )
        if self._on_load is not None:
            self._on_load(interval, seconds)
