"""Faults of the exchange simulator: what it does wrong on purpose, and to which requests.

Kept apart from the simulator so tests can build fault sets as plain values, and so the
HTTP control endpoint (``POST /_sim/faults``) and the Python API share one JSON form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FaultRule", "Faults"]


@dataclass(frozen=True, kw_only=True)
class FaultRule:
    """Answer matching requests with ``status`` (and ``body``) instead of the real data."""

    status: int = 503
    endpoint: str | None = None  # 'exchangeInfo', 'ticker/24hr', 'klines'; None = any
    symbol: str | None = None  # only requests with this symbol parameter
    interval: str | None = None  # only klines of this interval
    times: int | None = None  # None: until cleared
    retry_after: int | None = None  # seconds, sent with 429/418 (default 1)
    body: str | None = None  # raw body to send instead of Binance's error JSON
    malformed: bool = False  # send the real body cut in half (with status 200)

    def matches(self, endpoint: str, params: dict[str, str]) -> bool:
        return (
            (self.endpoint is None or self.endpoint == endpoint)
            and (self.symbol is None or params.get("symbol") == self.symbol)
            and (self.interval is None or params.get("interval") == self.interval)
        )


@dataclass(frozen=True, kw_only=True)
class Faults:
    """Everything the simulator does wrong on purpose; the default is nothing."""

    latency_ms: int = 0
    missing_symbols: frozenset[str] = frozenset()
    rules: tuple[FaultRule, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "missing_symbols": sorted(self.missing_symbols),
            "rules": [asdict(r) for r in self.rules],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Faults:
        return cls(
            latency_ms=int(data.get("latency_ms", 0)),
            missing_symbols=frozenset(data.get("missing_symbols", ())),
            rules=tuple(FaultRule(**r) for r in data.get("rules", ())),
        )
