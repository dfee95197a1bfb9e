"""The browser worker's message format, in and out (used by `traderctl filter run`).

Why: teams compare backend and browser results side by side by feeding the same request
data to both. This module turns that request (``{symbols, tickers, historicalData,
traders}``, optionally wrapped as ``{id, type, data}``) into snapshot JSON per interval for
the runtime, and the runtime's results back into the worker's response shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from traderctl.worker.errors import FilterMessageError
from traderctl.worker.sandbox.types import TraderRunResult

__all__ = [
    "MessageSnapshot",
    "MessageTrader",
    "ParsedMessage",
    "format_message_result",
    "parse_message",
]


@dataclass(frozen=True, kw_only=True)
class MessageSnapshot:
    """Tickers and per-interval series as JSON text, each with a content-hash version."""

    tickers_version: str
    tickers_json: str
    series: dict[str, tuple[str, str]]  # interval -> (version, {SYMBOL: Kline[]} JSON)


@dataclass(frozen=True, kw_only=True)
class MessageTrader:
    trader_id: str
    code: str
    refresh_interval: str | None
    required_timeframes: list[str] | None


@dataclass(frozen=True, kw_only=True)
class ParsedMessage:
    symbols: list[str]
    snapshot: MessageSnapshot
    traders: list[MessageTrader]


def _dump(value: object) -> tuple[str, str]:
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], text


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise FilterMessageError(f"Bad filter message: {what}.")


def parse_message(message: Mapping[str, Any]) -> ParsedMessage:
    """Validate the request data and split it into snapshot JSON and trader specs."""
    _require(isinstance(message, Mapping), "the top level must be a JSON object")
    data: Any = message
    if "data" in message and isinstance(message.get("data"), Mapping) and "traders" not in message:
        data = message["data"]  # the whole postMessage envelope {id, type, data}
    symbols = data.get("symbols")
    tickers = data.get("tickers")
    history = data.get("historicalData")
    traders = data.get("traders")
    _require(
        isinstance(symbols, list) and all(isinstance(s, str) for s in symbols),
        "`symbols` must be a list of strings",
    )
    _require(isinstance(tickers, Mapping), "`tickers` must be an object {SYMBOL: ticker}")
    _require(
        isinstance(history, Mapping), "`historicalData` must be an object {SYMBOL: {TF: klines}}"
    )
    _require(isinstance(traders, list), "`traders` must be a list")

    by_interval: dict[str, dict[str, Any]] = {}
    for symbol, frames in history.items():
        _require(isinstance(frames, Mapping), f"historicalData[{symbol!r}] must be an object")
        for interval, klines in frames.items():
            by_interval.setdefault(str(interval), {})[str(symbol)] = klines
    tickers_version, tickers_json = _dump(tickers)
    snapshot = MessageSnapshot(
        tickers_version=tickers_version,
        tickers_json=tickers_json,
        series={interval: _dump(series) for interval, series in sorted(by_interval.items())},
    )
    return ParsedMessage(
        symbols=list(symbols),
        snapshot=snapshot,
        traders=[_trader(i, t) for i, t in enumerate(traders)],
    )


def _trader(index: int, raw: Any) -> MessageTrader:
    _require(isinstance(raw, Mapping), f"traders[{index}] must be an object")
    trader_id = raw.get("traderId")
    _require(
        isinstance(trader_id, str) and trader_id != "",
        f"traders[{index}].traderId must be a string",
    )
    code = raw.get("filterCode")
    refresh = raw.get("refreshInterval")
    required = raw.get("requiredTimeframes")
    _require(
        refresh is None or isinstance(refresh, str),
        f"traders[{index}].refreshInterval must be a string",
    )
    _require(
        required is None
        or (isinstance(required, list) and all(isinstance(t, str) for t in required)),
        f"traders[{index}].requiredTimeframes must be a list of strings",
    )
    return MessageTrader(
        trader_id=trader_id,
        # The browser splices the value into source text, so a missing code is "undefined".
        code=code if isinstance(code, str) else "undefined" if code is None else str(code),
        refresh_interval=refresh,
        required_timeframes=None if required is None else list(required),
    )


def format_message_result(
    results: Sequence[TraderRunResult], *, total_symbols: int, elapsed_ms: float
) -> dict[str, Any]:
    """The worker's ``MULTI_SCREENER_RESULT`` data, plus ``errors`` per trader.

    ``errors`` lists per-symbol exceptions as ``{symbol, message}``; a failed trader-run
    (syntax, timeout, out of memory) is one entry ``{symbol: null, kind, message}`` first.
    """
    out = []
    for r in results:
        errors: list[dict[str, Any]] = []
        if r.error is not None:
            errors.append({"symbol": None, "kind": str(r.error.kind), "message": r.error.message})
        errors.extend(e.as_dict() for e in r.symbol_errors)
        out.append(
            {
                "traderId": r.trader_id,
                "filteredSymbols": list(r.filtered_symbols),
                "signalSymbols": list(r.signal_symbols),
                "errors": errors,
            }
        )
    return {"results": out, "totalSymbols": total_symbols, "executionTime": round(elapsed_ms, 3)}
