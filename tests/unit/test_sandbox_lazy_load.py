"""Series loaded from compact JSON (the database's layout) are split now and parsed on
first use; the results are exactly those of parsing everything up front."""

from __future__ import annotations

import json

from tests.unit.test_sandbox_memo import INTERVALS, MUTATORS, SNAP, demo_requests, key
from traderctl.worker.config import load_settings
from traderctl.worker.sandbox.runtime import FilterRuntime, TraderRequest

COMPACT = {"separators": (",", ":")}


def _load(rt: FilterRuntime, *, compact: bool) -> None:
    opts = COMPACT if compact else {}
    rt.set_tickers("t", json.dumps(SNAP.tickers, **opts))  # type: ignore[arg-type]
    for tf in INTERVALS:
        rt.set_series(tf, "v", json.dumps(SNAP.series(tf), **opts))  # type: ignore[arg-type]


def _requests() -> list[TraderRequest]:
    hostile = [
        TraderRequest(
            trader_id=f"mutator{i}",
            code=code,
            refresh_interval="1h",
            required_timeframes=["1h"],
            symbols=SNAP.symbols,
        )
        for i, code in enumerate(MUTATORS)
    ]
    # Mutating filters first, so later traders read the lazily parsed masters after them.
    return hostile + demo_requests() + demo_requests()


def test_lazy_and_eager_loading_give_identical_results() -> None:
    settings = load_settings({})
    with FilterRuntime(settings) as lazy, FilterRuntime(settings) as eager:
        _load(lazy, compact=True)
        _load(eager, compact=False)  # whitespace: not split, parsed whole
        assert key(lazy.run_traders(_requests())) == key(eager.run_traders(_requests()))
        # One trader at a time, too (each run parses what it reads first).
        for request in demo_requests()[:4]:
            assert key(lazy.run_traders([request])) == key(eager.run_traders([request]))


def test_unknown_and_partial_symbols_behave_as_before() -> None:
    settings = load_settings({})
    subset = {s: SNAP.series("1h")[s] for s in SNAP.symbols[:5]}
    request = TraderRequest(
        trader_id="t",
        code="return timeframes['1h'].length >= 30;",
        refresh_interval="1h",
        required_timeframes=["1h"],
        symbols=[*SNAP.symbols[:8], "NOPEUSDT"],
    )
    results = []
    for opts in (COMPACT, {}):
        with FilterRuntime(settings) as rt:
            rt.set_tickers("t", json.dumps(SNAP.tickers))
            rt.set_series("1h", "v", json.dumps(subset, **opts))  # type: ignore[arg-type]
            results.append(key(rt.run_traders([request])))
    assert results[0] == results[1]
    assert results[0][0][1] == tuple(SNAP.symbols[:5]) or list(results[0][0][1]) == SNAP.symbols[:5]


def test_empty_and_single_symbol_objects() -> None:
    settings = load_settings({})
    with FilterRuntime(settings) as rt:
        rt.set_tickers("t", json.dumps(SNAP.tickers))
        rt.set_series("1h", "empty", "{}")
        one = {SNAP.symbols[0]: SNAP.series("1h")[SNAP.symbols[0]]}
        rt.set_series("4h", "one", json.dumps(one, **COMPACT))  # type: ignore[arg-type]
        [result] = rt.run_traders(
            [
                TraderRequest(
                    trader_id="t",
                    code="return true;",
                    refresh_interval="4h",
                    required_timeframes=["4h"],
                    symbols=SNAP.symbols[:3],
                )
            ]
        )
        assert list(result.filtered_symbols) == [SNAP.symbols[0]]
