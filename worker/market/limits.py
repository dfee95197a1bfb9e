"""Binance request weights, a per-minute weight budget, and jittered exponential backoff.

Weights (Spot REST API, the IP's REQUEST_WEIGHT limit is 6000 per minute):

* ``GET /api/v3/exchangeInfo``: 20.
* ``GET /api/v3/ticker/24hr``: 2 for one ``symbol``; for ``symbols``: 1–20 → 2,
  21–100 → 40, 101+ → 80; without a symbol (every pair in one call): 80.
* ``GET /api/v3/klines``: by ``limit`` — 1–99 → 1, 100–499 → 2, 500–1000 → 5,
  over 1000 → 10 (Binance's limit-based table; the current Spot reference lists a flat
  2, which is the same figure for our limit of 250).

The exchange counts weight in fixed one-minute windows and reports the window's total
in ``X-MBX-USED-WEIGHT-1M``. :class:`WeightBudget` keeps our own estimate per window,
raises it to whatever the exchange reports (other clients on the same IP count too),
and makes callers wait for the next window rather than cross the budget.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from traderctl.worker.backoff import Backoff as RetryPolicy

__all__ = [
    "BINANCE_WEIGHT_LIMIT",
    "EXCHANGE_INFO_WEIGHT",
    "Backoff",
    "WeightBudget",
    "endpoint_weight",
    "klines_weight",
    "ticker_24hr_weight",
]

BINANCE_WEIGHT_LIMIT = 6000
EXCHANGE_INFO_WEIGHT = 20


def klines_weight(limit: int) -> int:
    """Weight of one klines call returning ``limit`` candles."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def ticker_24hr_weight(*, symbol: bool = False, symbols: int | None = None) -> int:
    """Weight of a 24h ticker call for one symbol, a list of symbols, or all of them."""
    if symbol:
        return 2
    if symbols is None:
        return 80
    if symbols <= 20:
        return 2
    if symbols <= 100:
        return 40
    return 80


def endpoint_weight(endpoint: str, params: dict[str, str]) -> int:
    """Weight of a request to ``endpoint`` ('exchangeInfo', 'ticker/24hr', 'klines', …)."""
    if endpoint == "exchangeInfo":
        return EXCHANGE_INFO_WEIGHT
    if endpoint == "ticker/24hr":
        if "symbol" in params:
            return ticker_24hr_weight(symbol=True)
        if "symbols" in params:
            return ticker_24hr_weight(symbols=params["symbols"].count(",") + 1)
        return ticker_24hr_weight()
    if endpoint == "klines":
        try:
            limit = int(params.get("limit", "500"))
        except ValueError:
            limit = 500
        return klines_weight(limit)
    return 1


class WeightBudget:
    """Admit requests while the current minute's weight stays within ``budget``.

    ``clock`` returns seconds since the epoch and ``sleep`` waits (both injectable for
    tests). Waiting happens outside any lock, so one caller waiting for the next window
    does not block the bookkeeping of others.
    """

    def __init__(
        self,
        budget: int,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if budget < 1:
            raise ValueError("the weight budget must be at least 1")
        self.budget = budget
        self._clock = clock
        self._sleep = sleep
        self._window = -1
        self._used = 0
        self._paused_until = 0.0
        self.waits = 0  # how many times a caller had to wait (for tests and metrics)

    def _roll(self) -> int:
        window = int(self._clock() // 60)
        if window != self._window:
            self._window = window
            self._used = 0
        return window

    @property
    def used(self) -> int:
        """Weight used in the current window: our estimate or the exchange's, if higher."""
        self._roll()
        return self._used

    def paused_for(self) -> float:
        """Seconds until the pause set by :meth:`pause` ends (0 if none)."""
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(self, weight: int, *, max_wait: float = 120.0) -> None:
        """Wait until ``weight`` fits in the current window, then reserve it.

        A request heavier than the whole budget is admitted alone at the start of a
        window, so it cannot wait forever. Raises TimeoutError after ``max_wait`` s.
        """
        waited = 0.0
        while True:
            pause = self.paused_for()
            if pause <= 0:
                window = self._roll()
                if self._used + weight <= self.budget or self._used == 0:
                    self._used += weight
                    return
                pause = (window + 1) * 60 - self._clock() + 0.05
            if waited + pause > max_wait:
                raise TimeoutError(
                    f"waited {waited:.0f}s and would need {pause:.0f}s more for {weight} "
                    f"weight (budget {self.budget}/min, used {self._used})"
                )
            self.waits += 1
            waited += pause
            await self._sleep(pause)

    def observe(self, used_1m: int) -> None:
        """Record the exchange's ``X-MBX-USED-WEIGHT-1M`` for the current window."""
        self._roll()
        self._used = max(self._used, used_1m)


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Jittered exponential backoff: attempt ``n`` (0-based) waits up to base·2ⁿ, capped."""

    base: float = 0.2
    cap: float = 10.0
    attempts: int = 4  # total tries, including the first

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed try number ``attempt``: uniform in [½·d, d]
        (the shared policy, :class:`traderctl.worker.backoff.Backoff`, with jitter ½)."""
        return RetryPolicy(first=self.base, cap=self.cap, jitter=0.5).delay(attempt, rng)
