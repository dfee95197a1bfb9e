"""Reading and writing the market snapshot tables: one transaction per refresh.

All SQL is in worker/sql/market_data.sql. :func:`write_refresh` applies a whole
:class:`RefreshBatch` — tickers, kline series, stale flags, universe changes, snapshot
versions and events — in a single transaction, so a reader sees either all of a refresh
or none of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from traderctl.worker import queries

__all__ = [
    "Bumped",
    "MarketEvent",
    "RefreshBatch",
    "SnapshotRow",
    "load_snapshots",
    "load_stale",
    "load_universe",
    "record_events",
    "write_refresh",
]


@dataclass(frozen=True, kw_only=True)
class SnapshotRow:
    """One row of public.market_snapshots (the market-data writer's and the workers' view)."""

    interval: str
    version: int
    closed_through: datetime | None
    refreshed_at: datetime | None
    symbols: int
    stale_symbols: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SnapshotRow:
        return cls(
            interval=row["interval"],
            version=int(row["version"]),
            closed_through=row["closed_through"],
            refreshed_at=row["refreshed_at"],
            symbols=int(row["symbols"] or 0),
            stale_symbols=int(row["stale_symbols"] or 0),
        )

    @property
    def published(self) -> bool:
        """True once the market-data worker has written this interval at least once."""
        return self.refreshed_at is not None


@dataclass(frozen=True, kw_only=True)
class MarketEvent:
    """One alert for backend.market_data_events."""

    kind: str  # banned | rate_limited | malformed | request_failed | stale | recovered | universe
    severity: str  # info | warning | critical
    message: str
    symbol: str | None = None
    interval: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class RefreshBatch:
    """Everything one refresh writes."""

    #: When set, the new universe: rows of every other symbol are deleted.
    universe: list[str] | None = None
    #: (symbol, stream-shaped ticker JSON, quote volume, rank) of tickers in the answer.
    tickers: list[tuple[str, str, float, int]] = field(default_factory=list)
    #: (symbol, rank) of universe symbols missing from the answer (their ticker is kept).
    kept_ranks: list[tuple[str, int]] = field(default_factory=list)
    #: When set, bump the 'ticker' snapshot with this closed_through.
    ticker_minute: datetime | None = None
    missing_tickers: int = 0
    #: (symbol, interval, klines JSON, closed_through) of freshly fetched series.
    fresh: list[tuple[str, str, str, datetime]] = field(default_factory=list)
    #: (symbol, interval, reason) of series that could not be refreshed.
    stale: list[tuple[str, str, str]] = field(default_factory=list)
    #: Interval -> the newest closed_through it may reach (its live candle now), for
    #: every interval whose stored klines changed: its version moves, and its
    #: closed_through becomes what at least half of its series hold (never backwards).
    bump: dict[str, datetime] = field(default_factory=dict)
    #: Intervals whose stale flags changed but not their klines: only the counts move.
    recount: list[str] = field(default_factory=list)
    events: list[MarketEvent] = field(default_factory=list)


@dataclass(frozen=True)
class Bumped:
    """A snapshot row as a refresh left it: its new version and closed_through."""

    version: int
    closed_through: datetime


def load_snapshots(conn: psycopg.Connection[Any]) -> dict[str, SnapshotRow]:
    """Snapshot rows by interval ('ticker', '1m', …)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(queries.get("market_load_snapshots")).fetchall()
    return {row["interval"]: SnapshotRow.from_row(row) for row in rows}


def load_stale(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], str]:
    """(symbol, interval) -> stale reason of every stale series."""
    rows = conn.execute(queries.get("market_load_stale_series")).fetchall()
    return {(row[0], row[1]): row[2] or "" for row in rows}


def load_universe(conn: psycopg.Connection[Any]) -> list[str]:
    """The stored universe, best ranked first."""
    return [row[0] for row in conn.execute(queries.get("market_load_universe")).fetchall()]


def _insert_events(conn: psycopg.Connection[Any], events: list[MarketEvent]) -> None:
    if not events:
        return
    conn.execute(
        queries.get("market_insert_events"),
        {
            "kinds": [e.kind for e in events],
            "severities": [e.severity for e in events],
            "symbols": [e.symbol for e in events],
            "intervals": [e.interval for e in events],
            "messages": [e.message for e in events],
            "details": [json.dumps(e.detail) for e in events],
        },
    )


def record_events(conn: psycopg.Connection[Any], events: list[MarketEvent]) -> None:
    """Insert ``events`` in their own transaction (used when a refresh is aborted)."""
    with conn.transaction():
        _insert_events(conn, events)


def write_refresh(conn: psycopg.Connection[Any], batch: RefreshBatch) -> dict[str, Bumped]:
    """Apply ``batch`` in one transaction; return each bumped snapshot row.

    An interval of ``batch.bump`` whose series mostly failed is bumped (its stored data
    changed) but its closed_through stays where it was; one that was never published
    and still has nothing loaded gets no row at all.
    """
    bumped: dict[str, Bumped] = {}
    with conn.transaction():
        if batch.universe is not None:
            conn.execute(queries.get("market_delete_tickers_outside"), {"symbols": batch.universe})
            conn.execute(queries.get("market_delete_klines_outside"), {"symbols": batch.universe})
        if batch.tickers:
            conn.execute(
                queries.get("market_upsert_tickers"),
                {
                    "symbols": [t[0] for t in batch.tickers],
                    "tickers": [t[1] for t in batch.tickers],
                    "quote_volumes": [t[2] for t in batch.tickers],
                    "ranks": [t[3] for t in batch.tickers],
                },
            )
        if batch.kept_ranks:
            conn.execute(
                queries.get("market_rerank_tickers"),
                {
                    "symbols": [k[0] for k in batch.kept_ranks],
                    "ranks": [k[1] for k in batch.kept_ranks],
                },
            )
        if batch.fresh:
            conn.execute(
                queries.get("market_upsert_klines"),
                {
                    "symbols": [f[0] for f in batch.fresh],
                    "intervals": [f[1] for f in batch.fresh],
                    "klines": [f[2] for f in batch.fresh],
                    "closed_through": [f[3] for f in batch.fresh],
                },
            )
        if batch.stale:
            conn.execute(
                queries.get("market_flag_stale_klines"),
                {
                    "symbols": [s[0] for s in batch.stale],
                    "intervals": [s[1] for s in batch.stale],
                    "reasons": [s[2] for s in batch.stale],
                },
            )
        if batch.bump:
            rows = conn.execute(
                queries.get("market_bump_kline_snapshots"),
                {"intervals": list(batch.bump), "caps": list(batch.bump.values())},
            ).fetchall()
            bumped.update({row[0]: Bumped(row[1], row[2]) for row in rows})
        recount = [i for i in batch.recount if i not in batch.bump]
        if recount:
            conn.execute(queries.get("market_recount_kline_snapshots"), {"intervals": recount})
        if batch.ticker_minute is not None:
            row = conn.execute(
                queries.get("market_bump_ticker_snapshot"),
                {"closed_through": batch.ticker_minute, "stale": batch.missing_tickers},
            ).fetchone()
            if row is not None:
                bumped[row[0]] = Bumped(row[1], row[2])
        _insert_events(conn, batch.events)
    return bumped
