"""Sharing work across traders never changes a result; bring-your-own helpers bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from traderctl.worker.config import Settings, load_settings
from traderctl.worker.errors import HelpersBundleError
from traderctl.worker.local.demo_filters import DEMO_FILTERS
from traderctl.worker.local.synthetic_market import DEFAULT_INTERVALS, generate_snapshot
from traderctl.worker.sandbox.isolate import builtin_helpers_source
from traderctl.worker.sandbox.runtime import FilterRuntime, TraderRequest, TraderRunResult

SNAP = generate_snapshot(symbols=30, seed=21)
INTERVALS = DEFAULT_INTERVALS

# Filters that poke at the memo's copies before a demo filter reads the same results.
MUTATORS = [
    "var k = timeframes['1h']; helpers.calculateRSI(k).fill(0); helpers.calculateEMASeries(k, 9).length = 0;"
    " var m = helpers.calculateMACDValues(k); m.macdLine.fill(1); m.histogram = null;"
    " helpers.calculateStochRSI(k).forEach(function (e) { e.k = 5; e.d = 5; });"
    " hvnNodes.forEach(function (n) { n.price = 0; n.priceRange[0] = 0; }); hvnNodes.push({price: 1});"
    " helpers.getLatestBollingerBands(k).middle = 0; helpers.calculateBollingerBands(k).upper.reverse();"
    " helpers.calculateVWAPBands(k, 96, 2).vwap.fill(null); helpers.getLatestStochRSI(k).k = 0; return true;",
]


def load(rt: FilterRuntime) -> None:
    rt.set_tickers("t", json.dumps(SNAP.tickers))
    for tf in INTERVALS:
        rt.set_series(tf, "v", json.dumps(SNAP.series(tf)))


def demo_requests() -> list[TraderRequest]:
    return [
        TraderRequest(
            trader_id=k,
            code=f.code,
            refresh_interval=f.refresh_interval,
            required_timeframes=list(f.required_timeframes),
            symbols=SNAP.symbols,
        )
        for k, f in DEMO_FILTERS.items()
    ]


def key(results: list[TraderRunResult]) -> list[tuple[object, ...]]:
    return [
        (r.trader_id, r.filtered_symbols, r.symbol_errors, r.error, r.private_copies)
        for r in results
    ]


def test_there_are_at_least_eight_demo_filters_with_metadata():
    assert len(DEMO_FILTERS) >= 8
    for f in DEMO_FILTERS.values():
        assert f.name and f.required_timeframes and f.refresh_interval in INTERVALS
        assert f.refresh_interval in f.required_timeframes or f.key == "pvi_accumulation"


def test_memo_never_changes_a_result():
    settings = Settings(filter_timeout_ms=5000)
    with FilterRuntime(settings, memo=False) as plain:
        load(plain)
        baseline = plain.run_traders(demo_requests())
    assert all(r.error is None and not r.symbol_errors for r in baseline)
    assert sum(len(r.filtered_symbols) for r in baseline) > 0
    with FilterRuntime(settings, memo=True) as shared:
        load(shared)
        cold = shared.run_traders(demo_requests())
        mutators = [
            TraderRequest(
                trader_id=f"mut{i}",
                code=c,
                refresh_interval="1h",
                required_timeframes=["1h"],
                symbols=SNAP.symbols,
            )
            for i, c in enumerate(MUTATORS)
        ]
        shared.run_traders(mutators)
        warm = shared.run_traders(demo_requests())
        stats = shared.stats()["memo"]
    assert key(cold) == key(baseline)
    assert key(warm) == key(baseline)
    assert stats["hits"] > stats["misses"] > 0


def test_memo_survives_other_interval_updates_and_forgets_replaced_series():
    with FilterRuntime(Settings(filter_timeout_ms=5000)) as rt:
        load(rt)
        rt.run_traders(demo_requests())
        before = rt.stats()["memo"]["cells"]
        newer = generate_snapshot(symbols=30, seed=22)
        rt.set_series("1m", "v2", json.dumps(newer.series("1m")))
        rt.set_series("1m", "v2", "this is not parsed: the version is unchanged")
        assert 0 < rt.stats()["memo"]["cells"] <= before
        # A changed interval gives new results (same as a fresh runtime with that data).
        code = "return helpers.getLatestEMA(timeframes['1m'], 20) < parseFloat(timeframes['1m'][timeframes['1m'].length - 1][4])"
        req = TraderRequest(
            trader_id="e",
            code=code,
            refresh_interval="1m",
            required_timeframes=None,
            symbols=SNAP.symbols,
        )
        got = rt.run_traders([req])[0]
    with FilterRuntime(Settings()) as fresh:
        fresh.set_tickers("t", json.dumps(SNAP.tickers))
        fresh.set_series("1m", "v2", json.dumps(newer.series("1m")))
        want = fresh.run_traders([req])[0]
    assert got.filtered_symbols == want.filtered_symbols


def test_memo_budget_reset_keeps_results(monkeypatch):
    import traderctl.worker.sandbox.isolate as iso

    monkeypatch.setattr(iso, "_MEMO_SHARE", 10_000)  # a tiny memo: constant resets
    with FilterRuntime(Settings(filter_timeout_ms=5000, filter_memory_mb=64)) as rt:
        load(rt)
        first = rt.run_traders(demo_requests())
        second = rt.run_traders(demo_requests())
        assert rt.stats()["memo"]["resets"] > 0
    assert key(first) == key(second)


def test_bring_your_own_helpers_bundle(tmp_path: Path):
    bundle = tmp_path / "bundle.js"
    bundle.write_text(
        builtin_helpers_source()
        + "\nhelpers = Object.assign({}, helpers, { getLatestRSI: function () { return 42; } });\n",
        encoding="utf-8",
    )
    settings = load_settings({"TRADERCTL_FILTER_HELPERS_JS": str(bundle)})
    assert settings.helpers_js == bundle
    with FilterRuntime(settings) as rt:
        load(rt)
        r = rt.run_trader(
            trader_id="byo",
            code="return helpers.getLatestRSI(timeframes['1h']) === 42",
            refresh_interval="1h",
            required_timeframes=None,
            symbols=SNAP.symbols,
            previous_matches=None,
        )
    assert r.filtered_symbols == tuple(SNAP.symbols)


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("var nothing = 1;", "does not define a global `helpers`"),
        ("var helpers = ;", "failed to load"),
    ],
)
def test_bad_helpers_bundle_is_a_readable_error(tmp_path: Path, source: str, needle: str):
    bundle = tmp_path / "bad.js"
    bundle.write_text(source, encoding="utf-8")
    with pytest.raises(HelpersBundleError, match=needle):
        FilterRuntime(Settings(helpers_js=bundle))


def test_synthetic_market_is_deterministic_raw_binance_shape():
    a = generate_snapshot(symbols=3, klines=40, seed=8)
    b = generate_snapshot(symbols=3, klines=40, seed=8)
    assert json.dumps(a.message([])) == json.dumps(b.message([]))
    assert json.dumps(a.message([])) != json.dumps(
        generate_snapshot(symbols=3, klines=40, seed=9).message([])
    )
    k = a.historical[a.symbols[0]]["1h"]
    assert len(k) == 40 and all(len(row) == 12 for row in k)
    assert all(isinstance(row[i], str) for row in k for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
    assert all(isinstance(row[i], int) for row in k for i in (0, 6, 8))
    assert all(
        float(r[3]) <= min(float(r[1]), float(r[4])) <= max(float(r[1]), float(r[4])) <= float(r[2])
        for r in k
    )
    assert [r[0] for r in k] == sorted(r[0] for r in k)
    assert set(a.tickers[a.symbols[0]]) >= {"s", "c", "P", "q"}


# Argument lists that a memo key must keep apart: -0 and 0, a number and its text, a
# missing argument and an explicit undefined, null and undefined, NaN, booleans.
_KEY_VARIANTS = (
    "[], [0], [-0], ['0'], [0, undefined], [undefined], [null], [false], ['false'], [NaN],"
    " [1], [true], ['1'], [14], [14, 2], [14, '2'], [14, -0], [14, 0], ['', ''], ['']"
)


def test_memo_keys_tell_apart_every_argument_list(tmp_path: Path):
    # calculateMA (a memoized helper) replaced by one whose result names its arguments,
    # so a memo hit under the wrong key returns another argument list's answer.
    bundle = tmp_path / "echo.js"
    bundle.write_text(
        builtin_helpers_source()
        + "\nhelpers = Object.assign({}, helpers, { calculateMA: function (k) {"
        " var out = [arguments.length];"
        " for (var i = 1; i < arguments.length; i++) {"
        "   var a = arguments[i]; out.push(typeof a, Object.is(a, -0) ? '-0' : String(a)); }"
        " return out; } });\n",
        encoding="utf-8",
    )
    code = (
        f"var variants = [{_KEY_VARIANTS}]; var k = timeframes['1h'];"
        " function expect(args) { var out = [args.length + 1];"
        "   args.forEach(function (a) { out.push(typeof a, Object.is(a, -0) ? '-0' : String(a)); });"
        "   return JSON.stringify(out); }"
        " function check(args) { var got = helpers.calculateMA.apply(null, [k].concat(args));"
        "   if (JSON.stringify(got) !== expect(args)) throw new Error('memo mixed up ' + expect(args) + ' and ' + JSON.stringify(got)); }"
        " variants.forEach(check); variants.slice().reverse().forEach(check); variants.forEach(check);"
        " return true;"
    )
    with FilterRuntime(load_settings({"TRADERCTL_FILTER_HELPERS_JS": str(bundle)})) as rt:
        load(rt)
        results = [
            rt.run_trader(
                trader_id=f"echo-{n}",
                code=code,
                refresh_interval="1h",
                required_timeframes=None,
                symbols=SNAP.symbols[:3],
                previous_matches=None,
            )
            for n in range(2)
        ]
        memo = rt.stats()["memo"]
    for r in results:
        assert r.error is None and not r.symbol_errors, r.symbol_errors
        assert r.filtered_symbols == tuple(SNAP.symbols[:3])
    # The second trader found every argument list stored by the first.
    assert memo["hits"] >= memo["misses"] > 0
