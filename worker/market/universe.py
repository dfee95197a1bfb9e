"""Which pairs the market-data worker keeps fresh: the top N USDT pairs by 24h quote volume.

Eligible: quote asset USDT, status TRADING, spot trading allowed, base asset not in the
excluded list (stablecoins and fiat by default: TRADERCTL_MARKET_EXCLUDED_BASES), and not
a leveraged token. A leveraged token is recognised by the LEVERAGED permission or by its
name: a base asset ending in UP, DOWN, BULL or BEAR whose remainder is empty or is itself
a listed base asset (BTCUP → BTC), so that regular coins like JUP or SYRUP stay in.
Ties in quote volume are broken by symbol name, so the choice is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from traderctl.worker.market.shapes import ListedSymbol

__all__ = ["LEVERAGED_SUFFIXES", "is_leveraged", "select_universe"]

LEVERAGED_SUFFIXES = ("UP", "DOWN", "BULL", "BEAR")


def is_leveraged(listed: ListedSymbol, known_bases: set[str]) -> bool:
    """True for leveraged tokens such as BTCUPUSDT, ETHBULLUSDT or BULLUSDT."""
    if "LEVERAGED" in listed.permissions:
        return True
    for suffix in LEVERAGED_SUFFIXES:
        if listed.base.endswith(suffix):
            rest = listed.base[: -len(suffix)]
            if not rest or rest in known_bases:
                return True
    return False


def select_universe(
    listed: Iterable[ListedSymbol],
    tickers: Mapping[str, Mapping[str, Any]],
    *,
    size: int,
    excluded_bases: Iterable[str],
    quote: str = "USDT",
) -> list[str]:
    """The ``size`` eligible symbols with the largest 24h quote volume, largest first.

    ``tickers`` maps symbol to its REST 24hr ticker; symbols without one are skipped.
    """
    listed = list(listed)
    known_bases = {s.base for s in listed}
    excluded = {b.upper() for b in excluded_bases}
    ranked: list[tuple[float, str]] = []
    for item in listed:
        if item.quote != quote or item.status != "TRADING" or not item.spot:
            continue
        if item.base in excluded or is_leveraged(item, known_bases):
            continue
        ticker = tickers.get(item.symbol)
        if ticker is None:
            continue
        ranked.append((-float(ticker["quoteVolume"]), item.symbol))
    ranked.sort()
    return [symbol for _, symbol in ranked[:size]]
