"""The one backoff policy: capped exponential delays, optionally jittered.

Every wait-and-try-again in the backend uses it, so they all behave alike and are tuned in
one way: the worker's reconnect loop and its maintenance thread, the pool restarting a
worker process that died, a job retried after an infrastructure error, and the market-data
client retrying an HTTP request. Callers count their own attempts (a loop variable, a
job's ``attempts`` column) and ask for the delay of attempt ``n``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]

#: Exponents above this cannot matter (2**64 times any useful ``first`` exceeds any cap);
#: bounding them keeps ``factor ** attempt`` from overflowing after a very long outage.
_MAX_EXPONENT = 64


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Attempt ``n`` (0-based) waits ``min(cap, first * factor**n)`` seconds.

    With ``jitter`` j in (0, 1] the wait is drawn uniformly from ``[(1 - j)·d, d]``, so
    clients failing together (every worker when the database restarts, every request when
    the exchange throttles) do not retry in lockstep.
    """

    first: float
    cap: float
    factor: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.first < 0 or self.cap < 0 or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError(
                f"invalid backoff {self!r}: first and cap must be >= 0, factor >= 1 and "
                "jitter within [0, 1]"
            )

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay of attempt ``attempt``."""
        exponent = min(max(attempt, 0), _MAX_EXPONENT)
        return min(self.cap, self.first * self.factor**exponent)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0 = the first)."""
        ceiling = self.ceiling(attempt)
        if not self.jitter:
            return ceiling
        draw: float = (rng or random).random()
        return ceiling * (1 - self.jitter + self.jitter * draw)
