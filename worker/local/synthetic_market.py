"""Deterministic synthetic market snapshots in Binance's raw shapes.

Why: `traderctl filter check`, the unit tests and the benchmarks need realistic market data
without network access, and they must all see the same numbers for the same seed. Prices
follow a seeded random walk per (symbol, interval) with volatility scaled to the interval,
klines are 12-element REST arrays with decimal strings, and the last kline is the live one
(its close time lies after the snapshot time).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from traderctl.worker.intervals import INTERVAL_MS, INTERVALS

__all__ = [
    "DEFAULT_INTERVALS",
    "SyntheticSnapshot",
    "generate_snapshot",
]

#: The browser app's timeframes (every interval but 30m): what the demo filters were written for.
DEFAULT_INTERVALS: tuple[str, ...] = tuple(i for i in INTERVALS if i != "30m")
#: Snapshot time of every generated dataset: 2025-01-06T12:34:00Z (fixed for determinism).
SNAPSHOT_MS = 1_736_166_840_000


@dataclass(frozen=True, kw_only=True)
class SyntheticSnapshot:
    """``tickers`` is {SYMBOL: 24h ticker}; ``historical`` is {SYMBOL: {TF: Kline[]}}."""

    symbols: list[str]
    tickers: dict[str, dict[str, Any]]
    historical: dict[str, dict[str, list[list[Any]]]]

    def series(self, interval: str) -> dict[str, list[list[Any]]]:
        """``{SYMBOL: Kline[]}`` for one interval (the runtime's set_series shape)."""
        return {s: tf[interval] for s, tf in self.historical.items() if interval in tf}

    def message(self, traders: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The browser worker's request data for these traders."""
        return {
            "symbols": list(self.symbols),
            "tickers": self.tickers,
            "historicalData": self.historical,
            "traders": list(traders),
        }


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _decimals(price: float) -> int:
    if price >= 1000:
        return 2
    if price >= 10:
        return 3
    if price >= 1:
        return 4
    return 6


def _klines(rng: random.Random, last_price: float, interval: str, count: int) -> list[list[Any]]:
    step_ms = INTERVAL_MS[interval]
    minutes = step_ms / 60_000
    vol = 0.0009 * math.sqrt(minutes) * rng.uniform(0.6, 1.6)
    drift = rng.uniform(-0.3, 0.3) * vol
    # Walk backwards from the current price so every interval ends near the ticker price.
    closes = [last_price]
    for _ in range(count - 1):
        closes.append(closes[-1] / math.exp(drift + vol * rng.gauss(0.0, 1.0)))
    closes.reverse()
    decimals = _decimals(last_price)
    live_open = SNAPSHOT_MS - SNAPSHOT_MS % step_ms
    base_volume = rng.uniform(50, 5000) * minutes
    out: list[list[Any]] = []
    prev_close = closes[0] * math.exp(-vol * rng.gauss(0.0, 1.0))
    for i, close in enumerate(closes):
        open_ = prev_close
        wick = abs(rng.gauss(0.0, vol)) * close
        high = max(open_, close) + wick * rng.uniform(0.1, 1.0)
        low = min(open_, close) - wick * rng.uniform(0.1, 1.0)
        spike = 4.0 if rng.random() < 0.03 else 1.0
        volume = base_volume * rng.lognormvariate(0.0, 0.5) * spike
        taker = volume * rng.uniform(0.3, 0.7)
        open_time = live_open - (count - 1 - i) * step_ms
        vwap = (high + low + close) / 3
        out.append(
            [
                open_time,
                _fmt(open_, decimals),
                _fmt(high, decimals),
                _fmt(low, decimals),
                _fmt(close, decimals),
                _fmt(volume, 3),
                open_time + step_ms - 1,
                _fmt(volume * vwap, 4),
                int(volume / 3) + rng.randint(1, 50),
                _fmt(taker, 3),
                _fmt(taker * vwap, 4),
                "0",
            ]
        )
        prev_close = float(out[-1][4])
    return out


def _ticker(
    symbol: str, klines_1d: list[list[Any]] | None, price: float, rng: random.Random
) -> dict[str, Any]:
    decimals = _decimals(price)
    open_ = float(klines_1d[-1][1]) if klines_1d else price * (1 + rng.gauss(0, 0.02))
    change = price - open_
    quote = rng.uniform(1e6, 5e8)
    return {
        "s": symbol,
        "p": _fmt(change, decimals),
        "P": _fmt(change / open_ * 100, 3),
        "w": _fmt((price + open_) / 2, decimals),
        "c": _fmt(price, decimals),
        "o": _fmt(open_, decimals),
        "h": _fmt(max(price, open_) * 1.01, decimals),
        "l": _fmt(min(price, open_) * 0.99, decimals),
        "v": _fmt(quote / price, 3),
        "q": _fmt(quote, 4),
        "O": SNAPSHOT_MS - INTERVAL_MS["1d"],
        "C": SNAPSHOT_MS,
        "n": rng.randint(10_000, 2_000_000),
    }


def generate_snapshot(
    *,
    symbols: int = 20,
    intervals: Sequence[str] = DEFAULT_INTERVALS,
    klines: int = 250,
    seed: int = 42,
) -> SyntheticSnapshot:
    """A reproducible snapshot: same arguments, same bytes."""
    rng = random.Random(seed)
    names = [f"SYN{i:03d}USDT" for i in range(symbols)]
    tickers: dict[str, dict[str, Any]] = {}
    historical: dict[str, dict[str, list[list[Any]]]] = {}
    for name in names:
        price = 10 ** rng.uniform(-2, 4.7)
        frames = {tf: _klines(rng, price, tf, klines) for tf in intervals}
        closing = float(frames[intervals[0]][-1][4]) if intervals else price
        tickers[name] = _ticker(name, frames.get("1d"), closing, rng)
        historical[name] = frames
    return SyntheticSnapshot(symbols=names, tickers=tickers, historical=historical)
