"""Binance's exact JSON for the simulator's three endpoints, built from the price walk.

Formats follow the Spot REST API reference (rest-api.md):

* ``GET /api/v3/klines``: a list of 12-element arrays
  ``[openTime, "open", "high", "low", "close", "volume", closeTime, "quoteVolume",
  trades, "takerBuyBase", "takerBuyQuote", "0"]``; numbers for the times and the trade
  count, decimal strings with 8 decimals for prices and quantities.
* ``GET /api/v3/ticker/24hr``: objects with the keys, in order, ``symbol priceChange
  priceChangePercent weightedAvgPrice prevClosePrice lastPrice lastQty bidPrice bidQty
  askPrice askQty openPrice highPrice lowPrice volume quoteVolume openTime closeTime
  firstId lastId count``; ``priceChangePercent`` has 3 decimals.
* ``GET /api/v3/exchangeInfo``: ``{timezone, serverTime, rateLimits, exchangeFilters,
  symbols: [...]}`` with each symbol's trading rules.

Rows are rendered with one precompiled format string per precision (the walk memoises
the candles themselves). Bodies are compact JSON, as Binance sends them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from traderctl.worker.intervals import INTERVAL_MS, MINUTE_MS, minute_floor
from traderctl.worker.local.price_walk import Candle, PriceWalk, SymbolSpec, hash_unit

__all__ = ["Payloads"]

_DAY_MS = INTERVAL_MS["1d"]
_ORDER_TYPES = [
    "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]  # fmt: skip
_STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"]


_PAD = [(f"{{:.{d}f}}", "0" * (8 - d) if d else ".00000000") for d in range(9)]


def _num(value: float, decimals: int) -> str:
    """A Binance decimal string: rounded to the symbol's precision, printed with 8 places."""
    fmt, pad = _PAD[decimals]
    return fmt.format(value) + pad


@lru_cache(maxsize=4096)
def _trade_size(spec: SymbolSpec) -> float:
    """Average quote amount of one trade of ``spec``: turns quote volume into a trade count."""
    return 40.0 + 400.0 * hash_unit(spec.key, 11, 13)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Payloads:
    """Renders endpoint bodies for a catalog of symbols; safe to share between threads."""

    def __init__(self, walk: PriceWalk, *, cache_size: int = 4096) -> None:
        self.walk = walk
        # JSON text of runs of closed candles: a klines answer is one cached run plus the
        # live row, so repeated requests within a minute cost a lookup and a join.
        self._closed_text = lru_cache(maxsize=cache_size)(self._closed_text_uncached)

    # -- klines --------------------------------------------------------------------------
    @staticmethod
    def kline(spec: SymbolSpec, candle: Candle, interval_ms: int) -> list[Any]:
        """One 12-element kline array for ``candle`` (closed or live)."""
        quote = candle.volume * (candle.open + candle.high + candle.low + candle.close) / 4
        taker = 0.35 + 0.3 * ((spec.key ^ candle.open_time * 2654435761) & 0xFFFF) / 65536.0
        trades = int(quote / _trade_size(spec))
        p, q = spec.price_decimals, spec.qty_decimals
        return [
            candle.open_time,
            _num(candle.open, p),
            _num(candle.high, p),
            _num(candle.low, p),
            _num(candle.close, p),
            _num(candle.volume, q),
            candle.open_time + interval_ms - 1,
            _num(quote, 8),
            trades,
            _num(candle.volume * taker, q),
            _num(quote * taker, 8),
            "0",
        ]

    @staticmethod
    @lru_cache(maxsize=64)
    def _row_format(price_decimals: int, qty_decimals: int) -> str:
        """One str.format template per precision: the 8-decimal padding is literal text."""

        def num(decimals: int) -> str:
            fmt, pad = _PAD[decimals]
            return fmt + pad

        p, q, e = num(price_decimals), num(qty_decimals), num(8)
        return f'[{{}},"{p}","{p}","{p}","{p}","{q}",{{}},"{e}",{{}},"{q}","{e}","0"]'

    @classmethod
    def kline_json(cls, spec: SymbolSpec, candle: Candle, interval_ms: int) -> str:
        """:meth:`kline` as compact JSON text (exactly what ``json.dumps`` gives, faster)."""
        quote = candle.volume * (candle.open + candle.high + candle.low + candle.close) / 4
        taker = 0.35 + 0.3 * ((spec.key ^ candle.open_time * 2654435761) & 0xFFFF) / 65536.0
        return cls._row_format(spec.price_decimals, spec.qty_decimals).format(
            candle.open_time,
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
            candle.open_time + interval_ms - 1,
            quote,
            int(quote / _trade_size(spec)),
            candle.volume * taker,
            quote * taker,
        )

    def klines_rows(
        self,
        spec: SymbolSpec,
        interval: str,
        now_ms: int,
        *,
        limit: int = 500,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> list[str]:
        """JSON text of each kline, oldest first; the last one is live if it includes now."""
        size = INTERVAL_MS[interval]
        live_open = now_ms - now_ms % size
        last = live_open if end_time is None else min(live_open, end_time - end_time % size)
        if start_time is not None:
            first = start_time + (-start_time) % size
            last = min(last, first + (limit - 1) * size)
        else:
            first = last - (limit - 1) * size
        closed_last = min(last, live_open - size)
        rows = [
            self.kline_json(spec, candle, size)
            for candle in self.walk.candles(spec, interval, first, closed_last)
        ]
        if first <= live_open <= last:
            rows.append(self.kline_json(spec, self.walk.live(spec, interval, now_ms), size))
        return rows

    def _closed_text_uncached(self, spec: SymbolSpec, interval: str, first: int, last: int) -> str:
        size = INTERVAL_MS[interval]
        return ",".join(
            self.kline_json(spec, candle, size)
            for candle in self.walk.candles(spec, interval, first, last)
        )

    def klines_body(
        self,
        spec: SymbolSpec,
        interval: str,
        now_ms: int,
        *,
        limit: int = 500,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> str:
        """The whole ``/api/v3/klines`` body (same rows as :meth:`klines_rows`)."""
        size = INTERVAL_MS[interval]
        live_open = now_ms - now_ms % size
        last = live_open if end_time is None else min(live_open, end_time - end_time % size)
        if start_time is not None:
            first = start_time + (-start_time) % size
            last = min(last, first + (limit - 1) * size)
        else:
            first = last - (limit - 1) * size
        closed_last = min(last, live_open - size)
        parts = []
        if closed_last >= first:
            parts.append(self._closed_text(spec, interval, first, closed_last))
        if first <= live_open <= last:
            parts.append(self.kline_json(spec, self.walk.live(spec, interval, now_ms), size))
        return "[" + ",".join(parts) + "]"

    # -- 24h ticker ----------------------------------------------------------------------
    def ticker(self, spec: SymbolSpec, now_ms: int) -> dict[str, Any]:
        """One ``/api/v3/ticker/24hr`` object (rolling 24h window ending at ``now_ms``)."""
        start = minute_floor(now_ms) - _DAY_MS + MINUTE_MS
        window, before = self.walk.window(spec, start, now_ms)
        p, q = spec.price_decimals, spec.qty_decimals
        quote = window.volume * (window.open + window.high + window.low + window.close) / 4
        count = int(quote / _trade_size(spec))
        last_id = 1_000_000_000 + (now_ms // 1000) * 3 + int(hash_unit(spec.key, 5, 7) * 1e6)
        tick = 10.0**-p
        change = round(window.close, p) - round(window.open, p)
        percent = change / round(window.open, p) * 100 if round(window.open, p) else 0.0
        vwap = quote / window.volume if window.volume else window.close
        minute = now_ms // MINUTE_MS
        return {
            "symbol": spec.symbol,
            "priceChange": _num(change, p),
            "priceChangePercent": f"{percent:.3f}",
            "weightedAvgPrice": _num(vwap, p),
            "prevClosePrice": _num(before.close, p),
            "lastPrice": _num(window.close, p),
            "lastQty": _num(0.5 + 20 * hash_unit(spec.key, minute, 1), q),
            "bidPrice": _num(window.close, p),
            "bidQty": _num(1 + 500 * hash_unit(spec.key, minute, 2), q),
            "askPrice": _num(window.close + tick, p),
            "askQty": _num(1 + 500 * hash_unit(spec.key, minute, 3), q),
            "openPrice": _num(window.open, p),
            "highPrice": _num(window.high, p),
            "lowPrice": _num(window.low, p),
            "volume": _num(window.volume, q),
            "quoteVolume": _num(quote, 8),
            "openTime": now_ms - _DAY_MS,
            "closeTime": now_ms,
            "firstId": last_id - count + 1,
            "lastId": last_id,
            "count": count,
        }

    # -- exchangeInfo --------------------------------------------------------------------
    @staticmethod
    def symbol_info(spec: SymbolSpec) -> dict[str, Any]:
        """One entry of exchangeInfo's ``symbols`` list."""
        p, q = spec.price_decimals, spec.qty_decimals
        return {
            "symbol": spec.symbol,
            "status": spec.status,
            "baseAsset": spec.base,
            "baseAssetPrecision": 8,
            "quoteAsset": spec.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": list(_ORDER_TYPES),
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "amendAllowed": True,
            "pegInstructionsAllowed": True,
            "isSpotTradingAllowed": "SPOT" in spec.permissions,
            "isMarginTradingAllowed": "MARGIN" in spec.permissions,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": _num(10.0**-p, 8),
                    "maxPrice": "1000000.00000000",
                    "tickSize": _num(10.0**-p, 8),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": _num(10.0**-q, 8),
                    "maxQty": "9000000.00000000",
                    "stepSize": _num(10.0**-q, 8),
                },
            ],
            "permissions": [],
            "permissionSets": [list(spec.permissions)],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": list(_STP_MODES),
        }

    def exchange_info(self, specs: list[SymbolSpec], now_ms: int) -> dict[str, Any]:
        """The whole ``/api/v3/exchangeInfo`` document."""
        return {
            "timezone": "UTC",
            "serverTime": now_ms,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [self.symbol_info(s) for s in specs],
        }
