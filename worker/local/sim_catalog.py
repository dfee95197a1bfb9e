"""The simulated exchange's listings: regular USDT pairs plus the awkward ones.

``symbols=N`` regular USDT spot pairs (real-looking majors first, then ``X001USDT`` …),
ranked by 24h quote volume roughly in that order. On top of those, always listed and
given large volumes so that a naive "top N by volume" would pick them:

* stablecoin and fiat pairs (USDCUSDT, FDUSDUSDT, TUSDUSDT, DAIUSDT, EURUSDT),
* leveraged tokens (BTCUPUSDT, BTCDOWNUSDT, ETHUPUSDT, ETHDOWNUSDT, BNBBULLUSDT,
  BNBBEARUSDT; only some carry the LEVERAGED permission, as on the real exchange),
* pairs quoted in something else (ETHBTC, BNBBTC, BTCFDUSD, SOLBNB, BTCUSDC),
* a pair that is not trading (LUNAUSDT, status BREAK).

JUPUSDT is a regular pair whose name ends in "UP": it must stay in the universe.
"""

from __future__ import annotations

import math

from traderctl.worker.local.price_walk import SymbolSpec, hash_unit, symbol_key

__all__ = ["build_catalog"]

_MAJORS: tuple[tuple[str, float], ...] = (
    ("BTC", 60000.0), ("ETH", 3000.0), ("SOL", 150.0), ("BNB", 600.0), ("XRP", 0.6),
    ("DOGE", 0.15), ("ADA", 0.45), ("TRX", 0.12), ("JUP", 1.0), ("LINK", 15.0),
    ("DOT", 7.0), ("TON", 5.5), ("SHIB", 0.000025), ("LTC", 80.0), ("BCH", 400.0),
    ("NEAR", 6.0), ("UNI", 9.0), ("APT", 9.0), ("ICP", 12.0), ("PEPE", 0.00001),
    ("ETC", 27.0), ("FIL", 6.0), ("ATOM", 8.0), ("ARB", 1.0), ("OP", 2.0),
    ("INJ", 25.0), ("SUI", 1.5), ("HBAR", 0.08), ("AVAX", 35.0), ("WIF", 2.5),
    ("AAVE", 100.0), ("ALGO", 0.2), ("XLM", 0.11), ("SEI", 0.5), ("RUNE", 5.0),
)  # fmt: skip

# (symbol, base, quote, status, price, volatility, daily quote volume, permissions)
_EXTRAS: tuple[tuple[str, str, str, str, float, float, float, tuple[str, ...]], ...] = (
    ("USDCUSDT", "USDC", "USDT", "TRADING", 1.0, 0.002, 9e9, ("SPOT",)),
    ("FDUSDUSDT", "FDUSD", "USDT", "TRADING", 1.0, 0.002, 7e9, ("SPOT",)),
    ("TUSDUSDT", "TUSD", "USDT", "TRADING", 1.0, 0.003, 4e8, ("SPOT",)),
    ("DAIUSDT", "DAI", "USDT", "TRADING", 1.0, 0.002, 3e8, ("SPOT",)),
    ("EURUSDT", "EUR", "USDT", "TRADING", 1.08, 0.05, 5e8, ("SPOT",)),
    ("BTCUPUSDT", "BTCUP", "USDT", "TRADING", 12.0, 2.5, 3e9, ("LEVERAGED",)),
    ("BTCDOWNUSDT", "BTCDOWN", "USDT", "TRADING", 0.02, 2.5, 2.5e9, ("LEVERAGED",)),
    ("ETHUPUSDT", "ETHUP", "USDT", "TRADING", 3.5, 2.5, 1.5e9, ("SPOT",)),
    ("ETHDOWNUSDT", "ETHDOWN", "USDT", "TRADING", 0.8, 2.5, 1.2e9, ("SPOT",)),
    ("BNBBULLUSDT", "BNBBULL", "USDT", "TRADING", 40.0, 2.5, 9e8, ("SPOT",)),
    ("BNBBEARUSDT", "BNBBEAR", "USDT", "TRADING", 0.5, 2.5, 8e8, ("LEVERAGED",)),
    ("ETHBTC", "ETH", "BTC", "TRADING", 0.05, 0.6, 9e4, ("SPOT", "MARGIN")),
    ("BNBBTC", "BNB", "BTC", "TRADING", 0.01, 0.6, 2e4, ("SPOT", "MARGIN")),
    ("BTCFDUSD", "BTC", "FDUSD", "TRADING", 60000.0, 1.0, 8e9, ("SPOT", "MARGIN")),
    ("SOLBNB", "SOL", "BNB", "TRADING", 0.25, 0.8, 1e5, ("SPOT",)),
    ("BTCUSDC", "BTC", "USDC", "TRADING", 60000.0, 1.0, 2e9, ("SPOT", "MARGIN")),
    ("LUNAUSDT", "LUNA", "USDT", "BREAK", 0.4, 1.5, 6e9, ("SPOT",)),
)


def _decimals(price: float) -> tuple[int, int]:
    """(price decimals, quantity decimals) the way Binance sizes tick and step."""
    magnitude = math.floor(math.log10(price))
    return min(8, max(0, 5 - magnitude)), min(8, max(0, magnitude + 1))


def _spec(
    seed: int,
    symbol: str,
    base: str,
    quote: str,
    status: str,
    price: float,
    volatility: float,
    volume: float,
    permissions: tuple[str, ...],
) -> SymbolSpec:
    price_decimals, qty_decimals = _decimals(price)
    return SymbolSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        status=status,
        price=price,
        volatility=volatility,
        daily_quote_volume=volume,
        price_decimals=price_decimals,
        qty_decimals=qty_decimals,
        permissions=permissions,
        key=symbol_key(seed, symbol),
    )


def build_catalog(seed: int, regular: int) -> list[SymbolSpec]:
    """``regular`` USDT pairs (volume-ranked roughly in order) followed by the extras."""
    specs: list[SymbolSpec] = []
    for i in range(regular):
        if i < len(_MAJORS):
            base, price = _MAJORS[i]
        else:
            base = f"X{i:03d}"
            price = 10 ** (-4 + 7 * hash_unit(symbol_key(seed, base), 1, 2))
        symbol = f"{base}USDT"
        jitter = 0.85 + 0.3 * hash_unit(symbol_key(seed, symbol), 3, 4)
        volume = 2e9 / (i + 1) ** 1.15 * jitter
        volatility = 1.0 if i < 10 else 1.4
        specs.append(
            _spec(seed, symbol, base, "USDT", "TRADING", price, volatility, volume, ("SPOT",))
        )
    for extra in _EXTRAS:
        specs.append(_spec(seed, *extra))
    return specs
