"""Deterministic candles for the exchange simulator: a seeded, multi-scale random walk.

Design (why it is cheap *and* consistent across intervals):

* A daily price level ``P(d)`` is a pure function of ``(seed, symbol, day)``: a sum of
  smooth value-noise octaves (periods 3 … 365 days) plus a little daily jitter. The 1d
  candle of day ``d`` opens at ``P(d)`` and closes at ``P(d + 1)``; its high/low and
  volume come from the same hash.
* Every shorter interval is generated *top-down* along the chain
  1d → 4h → 1h → 30m → 15m → 5m → 1m: the children of a candle are a Brownian bridge
  from the parent's open to its close, clamped into the parent's [low, high]; one
  child (chosen by hash) reaches the parent's high and one its low, and the parent's
  volume is split between the children by hashed weights.

So open, high, low and close of every candle equal the aggregate of its sub-candles
exactly (volumes up to float rounding), and any candle is a pure function of
``(seed, symbol, interval, openTime)`` that costs at most six small expansions (cached)
instead of summing 1440 minutes for a day. The live (still open) candle at ``now`` is the
aggregate of its closed children plus the partial live child, down to the live minute,
which is interpolated linearly in the elapsed fraction of the minute.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from traderctl.worker.intervals import INTERVAL_MS, MINUTE_MS, minute_floor

__all__ = ["CHAIN", "Candle", "PriceWalk", "SymbolSpec", "aggregate", "hash_unit", "symbol_key"]

#: Intervals from the root (1d) down to the base (1m); each divides the previous one.
CHAIN: tuple[str, ...] = ("1d", "4h", "1h", "30m", "15m", "5m", "1m")
_CHILD = dict(itertools.pairwise(CHAIN))
_PARENT = {child: parent for parent, child in _CHILD.items()}
_DAY_MS = INTERVAL_MS["1d"]
_M64 = (1 << 64) - 1
# (period in days, amplitude of log price) of the value-noise octaves.
_OCTAVES = ((3.0, 0.02), (11.0, 0.05), (37.0, 0.10), (97.0, 0.18), (365.0, 0.30))


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fast, well-distributed 64-bit integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def hash_unit(key: int, a: int, b: int) -> float:
    """A uniform number in [0, 1) that depends only on its three integer arguments."""
    return _mix(_mix(key ^ (a & _M64)) ^ (b & _M64)) / 18446744073709551616.0


def symbol_key(seed: int, symbol: str) -> int:
    """Stable 64-bit key of (seed, symbol); Python's hash() is salted per process."""
    digest = hashlib.blake2b(f"{seed}:{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, eq=False)
class SymbolSpec:
    """One simulated trading pair: listing data plus the parameters of its walk."""

    symbol: str
    base: str
    quote: str
    status: str
    price: float  # anchor price; the walk wanders around it
    volatility: float  # 1.0 for a typical coin, ~0.002 for a stablecoin
    daily_quote_volume: float
    price_decimals: int
    qty_decimals: int
    permissions: tuple[str, ...]
    key: int


@dataclass(frozen=True, slots=True)
class Candle:
    """OHLCV of one candle; prices and base volume as floats (formatting happens later)."""

    open_time: int
    interval_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


def aggregate(parts: Sequence[Candle], open_time: int, interval_ms: int) -> Candle:
    """The candle made of consecutive ``parts``: first open, max high, min low, last close."""
    return Candle(
        open_time=open_time,
        interval_ms=interval_ms,
        open=parts[0].open,
        high=max(p.high for p in parts),
        low=min(p.low for p in parts),
        close=parts[-1].close,
        volume=math.fsum(p.volume for p in parts),
    )


class PriceWalk:
    """Candles of every simulated symbol; thread-safe, memoised, deterministic per seed."""

    def __init__(self, *, cache_size: int = 1 << 16) -> None:
        self._root = lru_cache(maxsize=cache_size)(self._root_uncached)
        self._level = lru_cache(maxsize=cache_size)(self._level_uncached)
        self._children = lru_cache(maxsize=cache_size)(self._children_uncached)

    # -- the price level -----------------------------------------------------------------
    @staticmethod
    def _level_uncached(spec: SymbolSpec, day: int) -> float:
        """log P(day): value-noise octaves around the anchor price (one hash per lattice point)."""
        total = 0.0
        key = spec.key
        for octave, (period, amplitude) in enumerate(_OCTAVES):
            x = day / period
            i = math.floor(x)
            f = x - i
            salt = (octave + 1) << 40
            v0 = _mix(key ^ (salt + i) & _M64) / 9223372036854775808.0 - 1
            v1 = _mix(key ^ (salt + i + 1) & _M64) / 9223372036854775808.0 - 1
            total += amplitude * (v0 + (v1 - v0) * f * f * (3 - 2 * f))
        total += 0.012 * (_mix(key ^ (7 << 40) + day) / 9223372036854775808.0 - 1)
        return math.log(spec.price) + spec.volatility * total

    def _root_uncached(self, spec: SymbolSpec, day: int) -> Candle:
        o = math.exp(self._level(spec, day))
        c = math.exp(self._level(spec, day + 1))
        d = _mix(spec.key ^ (9 << 40) + day)
        spread = spec.volatility * (0.006 + 0.035 * ((d & 0xFFFF) / 65536.0) ** 2)
        high = max(o, c) * (1 + spread * (0.2 + 0.8 * ((d >> 16) & 0xFFFF) / 65536.0))
        low = min(o, c) * (1 - spread * (0.2 + 0.8 * ((d >> 32) & 0xFFFF) / 65536.0))
        volume = spec.daily_quote_volume / spec.price * (0.6 + 0.8 * (d >> 48) / 65536.0)
        return Candle(day * _DAY_MS, _DAY_MS, o, high, low, c, volume)

    # -- top-down expansion --------------------------------------------------------------
    def _children_uncached(
        self, spec: SymbolSpec, interval: str, open_time: int
    ) -> tuple[Candle, ...]:
        parent = self.candle(spec, interval, open_time)
        child_ms = INTERVAL_MS[_CHILD[interval]]
        k = parent.interval_ms // child_ms
        # One 64-bit hash per child, split into four 16-bit uniforms (bridge step, high
        # wiggle, low wiggle, volume weight), plus one for the extremes' positions.
        base = _mix(spec.key ^ (open_time * 16 + parent.interval_ms // MINUTE_MS))
        draws = [_mix(base ^ j) for j in range(k + 1)]
        o, h, lo, c = parent.open, parent.high, parent.low, parent.close
        # Brownian bridge from open to close, clamped into [low, high].
        walk = [0.0]
        for j in range(k):
            step = ((draws[j] & 0xFFFF) / 65536.0 - 0.5) * 3.4641016151377544
            walk.append(walk[-1] + step)
        sigma = (h - lo) * 0.5 / math.sqrt(k)
        bounds = [o]
        for i in range(1, k):
            x = o + (c - o) * i / k + sigma * (walk[i] - walk[k] * i / k)
            bounds.append(min(h, max(lo, x)))
        bounds.append(c)
        at_high = (draws[k] & 0xFFFF) * k >> 16
        at_low = ((draws[k] >> 16) & 0xFFFF) * k >> 16
        weights = [0.4 + (d >> 48) / 65536.0 for d in draws[:k]]
        scale = parent.volume / math.fsum(weights)
        children = []
        for i in range(k):
            co, cc = bounds[i], bounds[i + 1]
            top, bottom = max(co, cc), min(co, cc)
            d = draws[i]
            if i == at_high:
                ch = h
            else:
                ch = min(h, top + (h - top) * 0.6 * (((d >> 16) & 0xFFFF) / 65536.0) ** 3)
            if i == at_low:
                cl = lo
            else:
                cl = max(lo, bottom - (bottom - lo) * 0.6 * (((d >> 32) & 0xFFFF) / 65536.0) ** 3)
            children.append(
                Candle(open_time + i * child_ms, child_ms, co, ch, cl, cc, weights[i] * scale)
            )
        return tuple(children)

    # -- public --------------------------------------------------------------------------
    def candle(self, spec: SymbolSpec, interval: str, open_time: int) -> Candle:
        """The complete candle of ``interval`` opening at ``open_time`` (must be aligned)."""
        size = INTERVAL_MS[interval]
        if open_time % size:
            raise ValueError(f"{open_time} is not aligned to {interval}")
        if interval == "1d":
            return self._root(spec, open_time // _DAY_MS)
        parent = _PARENT[interval]
        parent_open = open_time - open_time % INTERVAL_MS[parent]
        siblings = self._children(spec, parent, parent_open)
        return siblings[(open_time - parent_open) // size]

    def candles(self, spec: SymbolSpec, interval: str, first: int, last: int) -> list[Candle]:
        """Complete candles of ``interval`` opening in [first, last] (aligned), oldest first.

        Walks the parents once instead of looking up every candle: a 250-candle request
        costs ~50 cached parent expansions.
        """
        size = INTERVAL_MS[interval]
        if first % size or last % size:
            raise ValueError(f"{first}..{last} is not aligned to {interval}")
        if last < first:
            return []
        if interval == "1d":
            return [self._root(spec, d) for d in range(first // _DAY_MS, last // _DAY_MS + 1)]
        parent_ms = INTERVAL_MS[_PARENT[interval]]
        out: list[Candle] = []
        for parent_open in range(first - first % parent_ms, last + 1, parent_ms):
            out.extend(self._children(spec, _PARENT[interval], parent_open))
        skip = (first % parent_ms) // size
        return out[skip : skip + (last - first) // size + 1]

    def live(self, spec: SymbolSpec, interval: str, now_ms: int) -> Candle:
        """The candle of ``interval`` containing ``now_ms``, as far as it has traded."""
        size = INTERVAL_MS[interval]
        start = now_ms - now_ms % size
        if interval == "1m":
            full = self.candle(spec, "1m", start)
            f = (now_ms - start) / size
            o = full.open
            c = o + (full.close - o) * f
            high = max(o, c) + (full.high - max(o, full.close)) * f
            low = min(o, c) - (min(o, full.close) - full.low) * f
            return Candle(start, size, o, high, low, c, full.volume * f)
        child = _CHILD[interval]
        child_ms = INTERVAL_MS[child]
        done = (now_ms - start) // child_ms
        parts = [*self._children(spec, interval, start)[:done], self.live(spec, child, now_ms)]
        return aggregate(parts, start, size)

    def window(self, spec: SymbolSpec, start_ms: int, now_ms: int) -> tuple[Candle, Candle]:
        """(aggregate of [start_ms, now_ms] including the live minute, candle before it).

        ``start_ms`` must be a minute boundary. The range is covered greedily by the
        largest aligned candles, so a 24h window costs a few dozen cached candles.
        """
        end = minute_floor(now_ms)
        parts: list[Candle] = []
        t = start_ms
        while t < end:
            for interval in CHAIN:
                size = INTERVAL_MS[interval]
                if t % size == 0 and t + size <= end:
                    parts.append(self.candle(spec, interval, t))
                    t += size
                    break
        parts.append(self.live(spec, "1m", now_ms))
        before = self.candle(spec, "1m", start_ms - MINUTE_MS)
        return aggregate(parts, start_ms, now_ms - start_ms), before
