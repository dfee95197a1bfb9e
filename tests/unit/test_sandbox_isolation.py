"""Hostile filters: limits, missing capabilities, and no state shared between traders.

Every test runs the hostile trader and then a reference trader in the same runtime, and
checks that the reference result is exactly what it is in a fresh runtime.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from traderctl.worker.config import Settings
from traderctl.worker.local.synthetic_market import generate_snapshot
from traderctl.worker.sandbox.runtime import (
    FailureKind,
    FilterRuntime,
    TraderRequest,
    TraderRunResult,
)

SNAP = generate_snapshot(symbols=8, klines=150, seed=9)
REFERENCE = """
  var k = timeframes['1h'];
  var rsi = helpers.getLatestRSI(k);
  var last = k[k.length - 1];
  var sum = [1, 2, 3].map(function (x) { return x * 2; }).reduce(function (a, b) { return a + b; }, 0);
  var ok = sum === 12 && ({}).polluted === undefined && typeof leak === 'undefined'
    && typeof perm === 'undefined' && Math.max(1, 2) === 2 && JSON.parse('[1]')[0] === 1
    && k.length === 150 && parseFloat(ticker.c) > 0 && last.length === 12
    && [...[1, 2]].length === 2 && typeof helpers.calculateRSI === 'function'
    && hvnNodes.every(function (n) { return n.strength >= 50; });
  return ok && rsi !== null && rsi > 45 ? 'm' : ok ? 0 : 'BROKEN';
"""


def load(rt: FilterRuntime) -> None:
    rt.set_tickers("t", json.dumps(SNAP.tickers))
    for tf in ("1m", "1h", "4h"):
        rt.set_series(tf, "v", json.dumps(SNAP.series(tf)))


def reference_request() -> TraderRequest:
    return TraderRequest(
        trader_id="ref",
        code=REFERENCE,
        refresh_interval="1h",
        required_timeframes=["1h"],
        symbols=SNAP.symbols,
    )


@pytest.fixture(scope="module")
def expected() -> TraderRunResult:
    with FilterRuntime(Settings()) as fresh:
        load(fresh)
        return fresh.run_traders([reference_request()], return_types=True)[0]


@pytest.fixture
def rt() -> Iterator[FilterRuntime]:
    with FilterRuntime(Settings(filter_timeout_ms=300, filter_memory_mb=96)) as runtime:
        load(runtime)
        yield runtime


def hostile(
    rt: FilterRuntime, code: str, *, tfs: list[str] | None = None
) -> tuple[TraderRunResult, TraderRunResult]:
    """Run `code` then the reference trader in ONE batch (and once more alone)."""
    bad = TraderRequest(
        trader_id="bad",
        code=code,
        refresh_interval="1h",
        required_timeframes=tfs or ["1h"],
        symbols=SNAP.symbols,
    )
    first, after = rt.run_traders([bad, reference_request()], return_types=True)
    again = rt.run_traders([reference_request()], return_types=True)[0]
    assert (after.filtered_symbols, after.symbol_errors) == (
        again.filtered_symbols,
        again.symbol_errors,
    )
    return first, after


def same_as_fresh(result: TraderRunResult, expected: TraderRunResult) -> None:
    assert result.error is None
    assert result.symbol_errors == expected.symbol_errors == ()
    assert result.filtered_symbols == expected.filtered_symbols
    assert "string" not in result.return_types or result.return_types == expected.return_types
    assert expected.filtered_symbols  # the reference does match something


def test_reference_is_sane(expected):
    assert expected.error is None and expected.symbols_evaluated == len(SNAP.symbols)


def test_infinite_loop_times_out_and_next_trader_is_correct(rt, expected):
    retries = rt.timeout_retries
    bad, after = hostile(rt, "while (true) {}")
    # Overrunning once may be CPU starvation: the trader gets exactly one second chance.
    assert rt.timeout_retries == retries + 1
    assert bad.error is not None and bad.error.kind is FailureKind.TIMEOUT
    assert bad.error.message.startswith("timeout")
    assert bad.filtered_symbols == ()
    same_as_fresh(after, expected)
    slow, after2 = hostile(rt, "var t = Date.now(); while (Date.now() - t < 100) {} return true;")
    assert (
        slow.error is not None and slow.error.kind is FailureKind.TIMEOUT
    )  # budget is per run, not per symbol
    same_as_fresh(after2, expected)


@pytest.mark.parametrize(
    "bomb",
    [
        "var a = []; while (true) a.push(new Array(100000).fill(1.5));",
        "var a = []; while (true) a.push(new Float64Array(4000000).fill(1));",
        "var a = []; while (true) a.push({x: Math.random(), y: [1, 2, 3]});",
    ],
)
def test_memory_bomb_fails_with_out_of_memory_and_runtime_recovers(expected, bomb):
    # A long time budget, so that the memory cap (not the clock) stops the bomb.
    with FilterRuntime(Settings(filter_timeout_ms=10_000, filter_memory_mb=96)) as rt:
        load(rt)
        bad, after = hostile(rt, bomb)
        assert bad.error is not None and bad.error.kind is FailureKind.OUT_OF_MEMORY, bad.error
        assert bad.error.message.startswith("out of memory")
        assert rt.isolate_replacements >= 1
        same_as_fresh(after, expected)


@pytest.mark.parametrize(
    "code",
    [
        "Object.prototype.polluted = 1; Object.defineProperty(Object.prototype, 'polluted', {value: 2}); return true;",
        "Array.prototype.map = function () { return []; }; Array.prototype.reduce = null; return true;",
        "Array.prototype[Symbol.iterator] = function* () { yield 99; }; return true;",
        "Object.setPrototypeOf(Array.prototype, {evil: 1}); return true;",
        "Math.max = function () { return -1; }; JSON.parse = null; parseFloat = function () { return 0; }; return true;",
        "Object.freeze(Object.prototype); Object.preventExtensions(Array.prototype); return true;",
        "RegExp.prototype.exec = function () { return null; }; return true;",
    ],
)
def test_builtin_tampering_does_not_reach_the_next_trader(rt, expected, code):
    _, after = hostile(rt, code)
    same_as_fresh(after, expected)


@pytest.mark.parametrize(
    "code",
    [
        "leak = 1; globalThis.leak2 = 2; this.leak3 = 3; return true;",
        "Object.defineProperty(globalThis, 'perm', {value: 1, configurable: false}); return true;",
        "Object.setPrototypeOf(globalThis, {leak: 1}); return true;",
        "Promise.resolve().then(function () { leak = 'late'; }); return true;",
        "(async function () { await null; leak = 'later'; })(); return true;",
        "Object.preventExtensions(globalThis); return true;",
    ],
)
def test_global_state_does_not_survive_the_trader(rt, expected, code):
    _, after = hostile(rt, code)
    same_as_fresh(after, expected)


@pytest.mark.parametrize(
    "code",
    [
        "timeframes['1h'].reverse(); return true;",
        "timeframes['1h'].pop(); timeframes['1h'].length = 3; return true;",
        "timeframes['1h'][0][4] = '0'; timeframes['1h'][149] = null; return true;",
        "ticker.c = '-1'; delete ticker.s; return true;",
        "helpers.getLatestRSI = function () { return 99; }; delete helpers.calculateRSI; return true;",
        "helpers.calculateRSI.cached = 1; Object.defineProperty(helpers, 'x', {value: 1}); return true;",
        "var r = helpers.calculateRSI(timeframes['1h']); r.fill(0); hvnNodes.length = 0;"
        " helpers.calculateStochRSI(timeframes['1h'])[40].k = 1e9; return true;",
    ],
)
def test_mutating_inputs_does_not_change_other_traders(rt, expected, code):
    bad, after = hostile(rt, code)
    assert bad.error is None
    same_as_fresh(after, expected)


def test_mutating_filter_sees_browser_semantics(rt):
    # In the browser reverse()/pop() work in place; here on the trader's own copy of the array.
    code = "var k = timeframes['1h']; var first = k[0][0]; k.reverse(); return k[0][0] > first;"
    bad, _ = hostile(rt, code)
    assert bad.private_copies is False
    assert bad.filtered_symbols == tuple(SNAP.symbols) and bad.symbol_errors == ()
    pop = "var k = timeframes['1h']; var n = k.length; k.pop(); return k.length === n - 1 && helpers.calculateMA(k, 150) === null;"
    assert hostile(rt, pop)[0].filtered_symbols == tuple(SNAP.symbols)
    # Mutating a shared kline row throws on the frozen row; the trader is re-run on private,
    # unfrozen copies, so it still sees what the browser showed it.
    row = "var r = timeframes['1h'][0]; r.reverse(); ticker.c = 'x'; return r[11] === r[11] && r[0] === '0' && ticker.c === 'x';"
    mutated, _ = hostile(rt, row)
    assert mutated.private_copies is True
    assert mutated.filtered_symbols == tuple(SNAP.symbols) and mutated.symbol_errors == ()


def test_hvn_cache_is_per_trader(rt):
    other = SNAP.symbols[1]
    first = (
        "var nodes = helpers.calculateHighVolumeNodes(timeframes['1h'], {cacheKey: 'shared'});"
        " return helpers.calculateHighVolumeNodes(null, {cacheKey: 'shared'}) === nodes;"
    )
    second = (
        "var mine = helpers.calculateHighVolumeNodes(timeframes['1h'], {cacheKey: 'shared', minStrength: 0, threshold: 0});"
        " return mine.length > 0 && mine.every(function (n) { return n.strength >= 0; });"
    )
    a = TraderRequest(
        trader_id="a", code=first, refresh_interval="1h", required_timeframes=None, symbols=[other]
    )
    b = TraderRequest(
        trader_id="b", code=second, refresh_interval="1h", required_timeframes=None, symbols=[other]
    )
    ra, rb = rt.run_traders([a, b])
    assert ra.filtered_symbols == (other,)  # same stored object within one trader
    assert rb.filtered_symbols == (other,)  # not trader a's cached array


@pytest.mark.parametrize(
    "expr",
    [
        "typeof require",
        "typeof process",
        "typeof fetch",
        "typeof XMLHttpRequest",
        "typeof setTimeout",
        "typeof setInterval",
        "typeof clearTimeout",
        "typeof WebAssembly",
        "typeof Atomics.waitAsync",
        "typeof SharedArrayBuffer",
        "typeof FinalizationRegistry",
        "typeof module",
        "typeof exports",
        "typeof importScripts",
        "typeof postMessage",
        "eval('typeof require')",
        "typeof Function('return this')().process",
        "typeof (0, eval)('this').fetch",
        "typeof Deno",
        "typeof Bun",
        "typeof __timer_manager",
    ],
)
def test_no_capabilities(rt, expr):
    r = rt.run_trader(
        trader_id="cap",
        code=f"return {expr} === 'undefined';",
        refresh_interval="1h",
        required_timeframes=None,
        symbols=SNAP.symbols[:1],
        previous_matches=None,
    )
    assert r.filtered_symbols == (SNAP.symbols[0],), r.symbol_errors


def test_dynamic_import_loads_nothing(rt, expected):
    code = "var p = import('fs'); p.then(function (m) { leak = m; }, function () {}); return p instanceof Promise;"
    bad, after = hostile(rt, code)
    assert bad.filtered_symbols == tuple(SNAP.symbols)
    same_as_fresh(after, expected)


def test_runner_entry_points_refuse_filter_code(rt, expected):
    code = """
      var refused = 0;
      try { __traderctl.setSeries('guess', '1h', 'x', '{}'); } catch (e) { refused++; }
      try { __traderctl.runBatch('guess', '{}'); } catch (e) { refused++; }
      try { __traderctl.collect('guess'); } catch (e) { refused++; }
      try { __traderctl.setSeries = null; } catch (e) {}
      return refused === 3;
    """
    bad, after = hostile(rt, code)
    assert bad.filtered_symbols == tuple(SNAP.symbols)
    same_as_fresh(after, expected)


def test_same_input_same_output(rt, expected):
    results = [rt.run_traders([reference_request()])[0] for _ in range(3)]
    assert {(r.filtered_symbols, r.symbol_errors) for r in results} == {
        (expected.filtered_symbols, ())
    }
