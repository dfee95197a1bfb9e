"""Test data factories: users, traders and market data as real rows in the real tables.

One place for them, so every test builds its world the same way and a schema change is
fixed once. All arguments after the connection are keyword-only and every default is
spelled out here, so a call site says exactly what its test depends on (for example
``tier="elite"``) instead of inheriting a default from whichever copy it imported.

Market data is written as the market-data worker writes it: tickers under the stream's
field names, klines as Binance arrays in JSON text, and one ``market_snapshots`` row per
interval whose version moves on each publish.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from traderctl.worker.intervals import INTERVAL_MS

__all__ = ["klines", "make_trader", "make_user", "publish_market", "run_record", "ticker"]

Conn = psycopg.Connection[Any]


# -- users and traders ---------------------------------------------------------------------
def make_user(
    conn: Conn,
    *,
    tier: str | None = None,
    email: str | None = None,
    user_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """An auth.users row; with a user_tiers row when ``tier`` is given (None = no row = free).

    ``email`` defaults to ``<id>@example.test``, ``user_id`` to a fresh uuid4.
    """
    user = user_id or uuid.uuid4()
    conn.execute(
        "insert into auth.users (id, email) values (%s, %s)",
        (user, email or f"{user}@example.test"),
    )
    if tier is not None:
        conn.execute("insert into public.user_tiers (user_id, tier) values (%s, %s)", (user, tier))
    return user


def make_trader(
    conn: Conn,
    *,
    user_id: uuid.UUID,
    code: str = "return true;",
    name: str = "t",
    interval: str | None = "1m",
    timeframes: Sequence[str] | None = None,
    enabled: bool = True,
    first_run: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> uuid.UUID:
    """A trader inserted as the superuser; returns its id.

    The filter is ``{code, refreshInterval: interval, requiredTimeframes: timeframes}``,
    leaving out the keys given as None, then updated with ``extra`` (for malformed filters).
    Unless ``first_run``, the immediate first-run trigger is switched off for the insert,
    so the test decides which jobs exist.
    """
    filt: dict[str, Any] = {"code": code}
    if interval is not None:
        filt["refreshInterval"] = interval
    if timeframes is not None:
        filt["requiredTimeframes"] = list(timeframes)
    filt.update(extra or {})
    with conn.transaction():
        if not first_run:
            conn.execute("set local traderctl.skip_first_run = 'on'")
        row = conn.execute(
            "insert into public.traders (user_id, name, enabled, filter) values (%s, %s, %s, %s)"
            " returning id",
            (user_id, name, enabled, json.dumps(filt)),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


# -- evaluated runs, as the worker hands them to backend.commit_trader_runs ----------------
def run_record(
    trader: uuid.UUID,
    slot: datetime,
    job_id: int | None,
    matches: Sequence[str],
    status: str = "ok",
    **extra: Any,
) -> dict[str, Any]:
    """One element of commit_trader_runs' ``p_runs``: a 1m run of ``trader`` for ``slot``.

    ``status="error"`` makes it a filter error (type runtime); ``extra`` overrides fields.
    """
    record = {
        "job_id": job_id,
        "trader_id": str(trader),
        "slot": slot.isoformat(),
        "interval": "1m",
        "status": status,
        "error_type": None if status == "ok" else "runtime",
        "error_message": None if status == "ok" else "ReferenceError: x is not defined",
        "started_at": datetime.now(UTC).isoformat(),
        "duration_ms": 1.5,
        "symbols_evaluated": 3,
        "symbol_errors": 0,
        "matches": list(matches),
        "prices": {m: [100.5, 2.25, 1e6] for m in matches},
        "data_as_of": slot.isoformat(),
        "data_age_ms": 0,
    }
    return record | extra


# -- market data ---------------------------------------------------------------------------
def klines(
    closes: Sequence[float], *, interval: str = "1m", end: datetime, volume: float = 10.0
) -> list[list[Any]]:
    """Binance kline arrays whose last element is the live candle opening at ``end``."""
    size = INTERVAL_MS[interval]
    end_ms = int(end.timestamp() * 1000)
    first = end_ms - size * (len(closes) - 1)
    rows: list[list[Any]] = []
    prev = closes[0]
    for i, close in enumerate(closes):
        open_time = first + i * size
        high = max(prev, close) * 1.001
        low = min(prev, close) * 0.999
        rows.append(
            [
                open_time,
                f"{prev:.8f}",
                f"{high:.8f}",
                f"{low:.8f}",
                f"{close:.8f}",
                f"{volume:.8f}",
                open_time + size - 1,
                f"{volume * close:.8f}",
                100,
                f"{volume / 2:.8f}",
                f"{volume * close / 2:.8f}",
                "0",
            ]
        )
        prev = close
    return rows


def ticker(
    symbol: str, *, price: float, quote_volume: float, change: float = 1.5
) -> dict[str, Any]:
    """A stream-shaped 24h ticker with the fields filters read (strings, as Binance sends)."""
    return {
        "s": symbol,
        "c": f"{price:.8f}",
        "P": f"{change:.3f}",
        "q": f"{quote_volume:.2f}",
        "o": f"{price:.8f}",
        "h": f"{price * 1.01:.8f}",
        "l": f"{price * 0.99:.8f}",
        "v": "1000.0",
    }


def _publish_tickers(conn: Conn, prices: Mapping[str, float], vols: Mapping[str, float]) -> None:
    conn.execute("delete from public.market_tickers")
    for rank, sym in enumerate(sorted(prices, key=lambda s: -vols[s]), start=1):
        conn.execute(
            "insert into public.market_tickers (symbol, ticker, quote_volume, rank)"
            " values (%s, %s, %s, %s)",
            (
                sym,
                json.dumps(ticker(sym, price=prices[sym], quote_volume=vols[sym])),
                vols[sym],
                rank,
            ),
        )
    conn.execute(
        "insert into public.market_snapshots as m"
        " (interval, version, closed_through, refreshed_at, symbols)"
        " values ('ticker', 1, null, now(), %s)"
        " on conflict (interval) do update set version = m.version + 1,"
        " refreshed_at = now(), symbols = excluded.symbols",
        (len(prices),),
    )


def _publish_interval(
    conn: Conn,
    prices: Mapping[str, float],
    *,
    interval: str,
    closed_through: datetime,
    candles: int,
    stale_symbols: Sequence[str],
) -> None:
    size = INTERVAL_MS[interval]
    epoch = int(closed_through.timestamp() * 1000)
    boundary = datetime.fromtimestamp(epoch // size * size / 1000, UTC)
    for sym, base in prices.items():
        closes = [base * (1 + 0.001 * ((i % 7) - 3)) for i in range(candles - 1)] + [base]
        conn.execute(
            "insert into public.market_klines as k"
            " (symbol, interval, klines, closed_through, stale)"
            " values (%s, %s, %s, %s, %s)"
            " on conflict (symbol, interval) do update set klines = excluded.klines,"
            " closed_through = excluded.closed_through, stale = excluded.stale,"
            " updated_at = now()",
            (
                sym,
                interval,
                json.dumps(klines(closes, interval=interval, end=boundary)),
                boundary,
                sym in stale_symbols,
            ),
        )
    conn.execute(
        "insert into public.market_snapshots as m"
        " (interval, version, closed_through, refreshed_at, symbols, stale_symbols)"
        " values (%s, 1, %s, now(), %s, %s)"
        " on conflict (interval) do update set version = m.version + 1,"
        " closed_through = excluded.closed_through, refreshed_at = now(),"
        " symbols = excluded.symbols, stale_symbols = excluded.stale_symbols",
        (interval, boundary, len(prices), len(stale_symbols)),
    )


def publish_market(
    conn: Conn,
    prices: Mapping[str, float],
    *,
    closed_through: datetime,
    intervals: Sequence[str] = ("1m",),
    candles: int = 40,
    stale_symbols: Sequence[str] = (),
    volumes: Mapping[str, float] | None = None,
) -> None:
    """One market-data refresh in one transaction: every symbol's ticker and klines.

    Symbols rank by quote volume (default: dict order = rank). The last close of each
    series is the symbol's price, so filters on the last close see ``prices``.
    """
    vols = volumes or {s: 1e9 - i * 1e6 for i, s in enumerate(prices)}
    with conn.transaction():
        _publish_tickers(conn, prices, vols)
        for interval in intervals:
            _publish_interval(
                conn,
                prices,
                interval=interval,
                closed_through=closed_through,
                candles=candles,
                stale_symbols=stale_symbols,
            )
