"""Checking the exchange's answers, and turning REST tickers into stream-shaped ones.

Every answer is checked against the documented Binance shape before anything is
stored; a mismatch raises :class:`~traderctl.worker.errors.ExchangeMalformedResponse` naming the
endpoint, the element and what was expected, and the last good data stays in place.

Filters were written against the WebSocket ``@ticker`` payload, so 24h tickers are
stored under the stream's field names and in the stream's key order:
``e E s p P w x c Q b B a A o h l v q O C F L n`` (see :data:`STREAM_FROM_REST`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from traderctl.worker.errors import ExchangeMalformedResponse
from traderctl.worker.intervals import INTERVAL_MS

__all__ = [
    "KLINE_TYPES",
    "STREAM_FROM_REST",
    "ListedSymbol",
    "check_exchange_info",
    "check_klines",
    "check_tickers",
    "ticker_to_stream",
]

#: Stream field -> REST 24hr field, in the stream payload's key order (after e and E).
STREAM_FROM_REST: tuple[tuple[str, str], ...] = (
    ("s", "symbol"),
    ("p", "priceChange"),
    ("P", "priceChangePercent"),
    ("w", "weightedAvgPrice"),
    ("x", "prevClosePrice"),
    ("c", "lastPrice"),
    ("Q", "lastQty"),
    ("b", "bidPrice"),
    ("B", "bidQty"),
    ("a", "askPrice"),
    ("A", "askQty"),
    ("o", "openPrice"),
    ("h", "highPrice"),
    ("l", "lowPrice"),
    ("v", "volume"),
    ("q", "quoteVolume"),
    ("O", "openTime"),
    ("C", "closeTime"),
    ("F", "firstId"),
    ("L", "lastId"),
    ("n", "count"),
)
_TICKER_INTS = frozenset({"openTime", "closeTime", "firstId", "lastId", "count"})
_TICKER_REQUIRED = frozenset(rest for _, rest in STREAM_FROM_REST)

#: The type of each of the 12 kline fields: int = JSON number, str = decimal string.
KLINE_TYPES: tuple[type, ...] = (int, str, str, str, str, str, int, str, int, str, str, str)
_KLINE_DECIMALS = (1, 2, 3, 4, 5, 7, 9, 10)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_decimal(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def check_klines(data: Any, *, what: str, interval: str) -> list[list[Any]]:
    """``data`` if it is a list of 12-element Binance klines in ascending, aligned time order.

    Runs on every series of every refresh (175,000 rows in a full one), so the common case
    is one C-level type comparison per row plus a digits check per decimal field.
    """

    def bad(detail: str) -> ExchangeMalformedResponse:
        return ExchangeMalformedResponse(
            f"{what}: malformed answer ({detail}); expected a list of 12-element kline arrays. "
            "The last good series is kept and flagged stale."
        )

    if not isinstance(data, list):
        raise bad(f"got a JSON {type(data).__name__}")
    if not data:
        raise bad("no klines at all")
    size = INTERVAL_MS[interval]
    previous = -1
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != 12:
            length = len(row) if isinstance(row, list) else type(row).__name__
            raise bad(f"kline {index} has {length} fields")
        if tuple(map(type, row)) != KLINE_TYPES:
            position = next(
                i for i, (v, t) in enumerate(zip(row, KLINE_TYPES, strict=True)) if type(v) is not t
            )
            kind = "a number" if KLINE_TYPES[position] is int else "a string"
            raise bad(f"kline {index} field {position} is {row[position]!r}, not {kind}")
        for position in _KLINE_DECIMALS:
            value = row[position]
            if not value.replace(".", "", 1).isdigit() and not _is_decimal(value):
                raise bad(f"kline {index} field {position} is {value!r}, not a decimal string")
        open_time = row[0]
        if open_time <= previous or open_time % size or row[6] != open_time + size - 1:
            raise bad(
                f"kline {index} has open time {open_time} out of order or not on a "
                f"{interval} boundary"
            )
        previous = open_time
    return data


def check_tickers(data: Any, *, what: str) -> list[dict[str, Any]]:
    """``data`` if it is a list of REST 24hr ticker objects with every field we store."""

    def bad(detail: str) -> ExchangeMalformedResponse:
        return ExchangeMalformedResponse(
            f"{what}: malformed answer ({detail}); expected a list of 24hr ticker objects. "
            "The last good tickers are kept."
        )

    if not isinstance(data, list):
        raise bad(f"got a JSON {type(data).__name__}")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise bad(f"element {index} is a {type(item).__name__}")
        missing = _TICKER_REQUIRED - item.keys()
        if missing:
            raise bad(f"element {index} lacks {', '.join(sorted(missing))}")
        for key in _TICKER_REQUIRED:
            value = item[key]
            ok = (
                _is_int(value)
                if key in _TICKER_INTS
                else (isinstance(value, str) if key == "symbol" else _is_decimal(value))
            )
            if not ok:
                raise bad(f"element {index} field {key} is {value!r}")
    return data


def ticker_to_stream(rest: dict[str, Any]) -> dict[str, Any]:
    """A REST 24hr ticker as the ``@ticker`` stream payload (event time = its closeTime)."""
    stream: dict[str, Any] = {"e": "24hrTicker", "E": rest["closeTime"]}
    for short, long in STREAM_FROM_REST:
        stream[short] = rest[long]
    return stream


@dataclass(frozen=True, kw_only=True)
class ListedSymbol:
    """The parts of an exchangeInfo symbol the universe needs."""

    symbol: str
    base: str
    quote: str
    status: str
    spot: bool
    permissions: frozenset[str]


def check_exchange_info(data: Any, *, what: str) -> list[ListedSymbol]:
    """The listed symbols of an exchangeInfo answer."""

    def bad(detail: str) -> ExchangeMalformedResponse:
        return ExchangeMalformedResponse(
            f"{what}: malformed answer ({detail}); expected {{timezone, serverTime, rateLimits, "
            "symbols: [...]}. The previous universe is kept."
        )

    if not isinstance(data, dict) or not isinstance(data.get("symbols"), list):
        raise bad("no 'symbols' list")
    listed: list[ListedSymbol] = []
    for index, item in enumerate(data["symbols"]):
        if not isinstance(item, dict):
            raise bad(f"symbols[{index}] is a {type(item).__name__}")
        try:
            symbol, base, quote, status = (
                item["symbol"],
                item["baseAsset"],
                item["quoteAsset"],
                item["status"],
            )
        except KeyError as exc:
            raise bad(f"symbols[{index}] lacks {exc.args[0]}") from None
        if not all(isinstance(v, str) for v in (symbol, base, quote, status)):
            raise bad(f"symbols[{index}] has non-string names")
        permissions: set[str] = set()
        for group in item.get("permissionSets") or []:
            if isinstance(group, list):
                permissions.update(p for p in group if isinstance(p, str))
        permissions.update(p for p in item.get("permissions") or [] if isinstance(p, str))
        listed.append(
            ListedSymbol(
                symbol=symbol,
                base=base,
                quote=quote,
                status=status,
                spot=bool(item.get("isSpotTradingAllowed", True)),
                permissions=frozenset(permissions),
            )
        )
    return listed
