"""The browser worker's invocation contract (docs/filter-contract.md), rule by rule, in real V8."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from traderctl.worker.config import Settings
from traderctl.worker.local.synthetic_market import generate_snapshot
from traderctl.worker.sandbox.runtime import FailureKind, FilterRuntime, TraderRequest

SNAP = generate_snapshot(symbols=6, klines=120, seed=5)
SYMS = SNAP.symbols
# SYMS[1]: only 29 klines on 1h; SYMS[2]: exactly 30 on 1h; SYMS[3]: no 4h; SYMS[4]: no ticker.
HIST: dict[str, dict[str, list[list[Any]]]] = {s: dict(tf) for s, tf in SNAP.historical.items()}
HIST[SYMS[1]]["1h"] = HIST[SYMS[1]]["1h"][-29:]
HIST[SYMS[2]]["1h"] = HIST[SYMS[2]]["1h"][-30:]
del HIST[SYMS[3]]["4h"]
TICKERS = {s: t for s, t in SNAP.tickers.items() if s != SYMS[4]}
ALL = [*SYMS, "NOPEUSDT"]


def load(rt: FilterRuntime) -> None:
    rt.set_tickers("t1", json.dumps(TICKERS))
    intervals = {tf for frames in HIST.values() for tf in frames}
    for tf in sorted(intervals):
        series = {s: frames[tf] for s, frames in HIST.items() if tf in frames}
        rt.set_series(tf, "v1", json.dumps(series))


@pytest.fixture(scope="module")
def rt() -> Iterator[FilterRuntime]:
    with FilterRuntime(Settings(filter_timeout_ms=2000)) as runtime:
        load(runtime)
        yield runtime


def run(
    rt: FilterRuntime,
    code: str,
    *,
    tfs: list[str] | None = None,
    refresh: str | None = "1m",
    symbols: list[str] | None = None,
    previous: list[str] | None = None,
):
    return rt.run_trader(
        trader_id="t",
        code=code,
        refresh_interval=refresh,
        required_timeframes=tfs,
        symbols=ALL if symbols is None else symbols,
        previous_matches=previous,
    )


def test_symbols_lacking_30_klines_or_data_are_skipped(rt):
    r = run(rt, "return true", tfs=["1h"])
    assert r.filtered_symbols == (SYMS[0], SYMS[2], SYMS[3], SYMS[5])
    assert r.symbols_evaluated == 4
    r = run(rt, "return true", tfs=["1h", "4h"])
    assert SYMS[3] not in r.filtered_symbols and SYMS[2] in r.filtered_symbols
    assert SYMS[4] not in run(rt, "return true", tfs=["1m"]).filtered_symbols  # no ticker


@pytest.mark.parametrize(
    ("tfs", "expected"),
    [
        (["5m", "15m"], "5m"),
        (["15m", "1h"], "1h"),
        (["1h", "4h"], "4h"),
        (["1m", "1d", "4h"], "1d"),
        (["15m", "5m"], "15m"),
        (["1m"], "1m"),
    ],
)
def test_hvn_timeframe_choice_and_lookback(rt, tfs, expected):
    code = (
        f"var k = timeframes['{expected}'];"
        " var want = helpers.calculateHighVolumeNodes(k, {lookback: Math.min(k.length, 100)});"
        " return JSON.stringify(hvnNodes) === JSON.stringify(want) ? (hvnNodes.length > 0 ? 'nodes' : 'empty') : false;"
    )
    r = rt.run_traders(
        [
            TraderRequest(
                trader_id="h",
                code=code,
                refresh_interval="1m",
                required_timeframes=tfs,
                symbols=SNAP.symbols,
            )
        ],
        return_types=True,
    )[0]
    assert r.error is None and not r.symbol_errors
    assert r.filtered_symbols and set(r.filtered_symbols) <= set(SNAP.symbols)
    evaluated = r.symbols_evaluated
    assert len(r.filtered_symbols) == evaluated  # every evaluated symbol agreed
    assert r.return_types.get("string", 0) == evaluated
    # hvnNodes is a fresh array per (trader, symbol), and is not any other timeframe's.
    other = "1h" if expected != "1h" else "4h"
    if other in tfs:
        code2 = (
            f"var k = timeframes['{other}'];"
            " return JSON.stringify(hvnNodes) !== JSON.stringify(helpers.calculateHighVolumeNodes(k, {lookback: Math.min(k.length, 100)}))"
        )
        assert run(rt, code2, tfs=tfs).filtered_symbols


@pytest.mark.parametrize(
    "reach",
    ["hvnNodes", "arguments[3]", "eval('hvnNodes')", "hvn\\u004Eodes", "eval('argu' + 'ments')[3]"],
)
def test_every_way_of_naming_hvn_nodes_reads_them(rt, reach):
    # The nodes are copied out only for code that can name the parameter (docs/sandbox.md,
    # "Memoization"): every way of naming it still reads the browser's nodes.
    code = (
        f"var n = {reach}; var k = timeframes['1h'];"
        " var want = helpers.calculateHighVolumeNodes(k, {lookback: Math.min(k.length, 100)});"
        " return Array.isArray(n) && JSON.stringify(n) === JSON.stringify(want);"
    )
    r = run(rt, code, tfs=["1h"])
    assert not r.symbol_errors
    assert r.filtered_symbols == (SYMS[0], SYMS[2], SYMS[3], SYMS[5])


def test_regexp_legacy_statics_are_empty_when_a_filter_starts(rt):
    # The runner's own matching of the code (whether it names hvnNodes) must not show.
    code = (
        "/* hvnNodes */ return RegExp.lastMatch === '' && RegExp.input === '' && RegExp.$1 === '';"
    )
    r = run(rt, code, tfs=["1h"])
    assert not r.symbol_errors
    assert r.filtered_symbols == (SYMS[0], SYMS[2], SYMS[3], SYMS[5])


def test_a_failing_hvn_pre_pass_skips_the_symbol_even_for_code_that_never_reads_it():
    # A null row inside the lookback makes calculateHighVolumeNodes throw for SYMS[1] only.
    broken = [list(row) for row in SNAP.historical[SYMS[1]]["1h"]]
    broken[-3] = None  # type: ignore[call-overload]
    series = {s: frames["1h"] for s, frames in SNAP.historical.items()}
    series[SYMS[1]] = broken
    with FilterRuntime(Settings(filter_timeout_ms=2000)) as runtime:
        runtime.set_tickers("t1", json.dumps(SNAP.tickers))
        runtime.set_series("1h", "v1", json.dumps(series))
        for code in ("return true", "return hvnNodes !== null"):
            for _ in range(2):  # nothing is stored for a throw: the second run computes again
                r = runtime.run_trader(
                    trader_id="t",
                    code=code,
                    refresh_interval="1h",
                    required_timeframes=["1h"],
                    symbols=SYMS,
                    previous_matches=None,
                )
                assert SYMS[1] not in r.filtered_symbols and SYMS[0] in r.filtered_symbols
                assert [e.symbol for e in r.symbol_errors] == [SYMS[1]]
                assert r.symbol_errors[0].message.startswith("hvnNodes: TypeError")


@pytest.mark.parametrize(
    ("body", "matches"),
    [
        ("return true", True),
        ("return []", True),
        ("return {}", True),
        ("return -1", True),
        ("return 'x'", True),
        ("return function(){}", True),
        ("return new Boolean(false)", True),
        ("return false", False),
        ("return 0", False),
        ("return -0", False),
        ("return NaN", False),
        ("return ''", False),
        ("return null", False),
        ("return undefined", False),
        ("var x = 1;", False),
        ("", False),
        ("return 0n", False),
        ("return 1n", True),
    ],
)
def test_truthiness_decides_the_match(rt, body, matches):
    r = run(rt, body, symbols=[SYMS[0]])
    assert r.error is None and not r.symbol_errors
    assert r.filtered_symbols == ((SYMS[0],) if matches else ())


def test_syntax_error_fails_the_trader_with_line_and_column(rt):
    r = run(rt, "const a = 1;\nconst b = ;\nreturn true;")
    assert r.error is not None and r.error.kind is FailureKind.SYNTAX
    assert (r.error.line, r.error.column) == (2, 11)
    assert "line 2, column 11" in r.error.message and "SyntaxError" in r.error.message
    assert r.filtered_symbols == () and r.signal_symbols == ()
    unclosed = run(rt, "if (true) {\n  return 1;\n")
    assert unclosed.error is not None and unclosed.error.kind is FailureKind.SYNTAX
    assert unclosed.error.line is not None and "end of code" in unclosed.error.message


def test_syntax_error_keeps_previous_matches_in_message_state(rt):
    state = {"good": [SYMS[0]], "bad": [SYMS[0], SYMS[2]]}
    message = {
        "symbols": SNAP.symbols,
        "tickers": TICKERS,
        "historicalData": HIST,
        "traders": [
            {"traderId": "bad", "filterCode": "return (", "refreshInterval": "1h"},
            {"traderId": "good", "filterCode": "return false", "refreshInterval": "1h"},
        ],
    }
    out = rt.run_message(message, state)
    assert state["bad"] == [SYMS[0], SYMS[2]]  # not updated
    assert state["good"] == []  # replaced even when empty
    bad = out["results"][0]
    assert bad["filteredSymbols"] == [] and bad["errors"][0]["kind"] == "syntax"
    assert out["totalSymbols"] == len(SNAP.symbols)
    assert isinstance(out["executionTime"], float)


def test_empty_required_timeframes_never_match(rt):
    r = run(rt, "return true", tfs=[])
    assert r.filtered_symbols == ()
    assert r.symbols_evaluated == 5  # all symbols with a ticker and history are visited...
    assert all(e.message.startswith("hvnNodes: TypeError") for e in r.symbol_errors)  # ...and throw


def test_defaults_of_refresh_interval_and_required_timeframes(rt):
    code = "return Object.keys(timeframes).join(',')"
    r = rt.run_traders(
        [
            TraderRequest(
                trader_id="d",
                code=code,
                refresh_interval=None,
                required_timeframes=None,
                symbols=[SYMS[0]],
            )
        ],
        return_types=True,
    )[0]
    assert r.filtered_symbols == (SYMS[0],)
    check = "return Object.keys(timeframes).join(',') === '{}'"
    assert run(rt, check.format("1m"), refresh=None, symbols=[SYMS[0]]).filtered_symbols
    assert run(rt, check.format("1m"), refresh="", symbols=[SYMS[0]]).filtered_symbols
    assert run(rt, check.format("4h"), refresh="4h", symbols=[SYMS[0]]).filtered_symbols
    assert run(
        rt, check.format("15m,1d"), refresh="4h", tfs=["15m", "1d"], symbols=[SYMS[0]]
    ).filtered_symbols


def test_edge_trigger_against_previous_matches(rt):
    first = run(rt, "return true", tfs=["1h"], previous=None)
    assert first.signal_symbols == first.filtered_symbols
    second = run(rt, "return true", tfs=["1h"], previous=[SYMS[0], SYMS[5], "GONEUSDT"])
    assert second.filtered_symbols == (SYMS[0], SYMS[2], SYMS[3], SYMS[5])
    assert second.signal_symbols == (SYMS[2], SYMS[3])
    assert (
        run(rt, "return true", tfs=["1h"], previous=list(first.filtered_symbols)).signal_symbols
        == ()
    )


def test_throw_means_no_match_for_that_symbol_only(rt):
    code = f"if (ticker.s === '{SYMS[0]}') throw new Error('boom'); if (ticker.s === '{SYMS[2]}') throw 'plain'; return true;"
    r = run(rt, code, tfs=["1h"])
    assert r.filtered_symbols == (SYMS[3], SYMS[5])
    assert [(e.symbol, e.message) for e in r.symbol_errors] == [
        (SYMS[0], "Error: boom (line 1, column 38)"),
        (SYMS[2], "thrown: plain"),
    ]


def test_inputs_have_raw_binance_shapes_and_sloppy_semantics(rt):
    code = """
      var k = timeframes['1h'];
      if (!(Array.isArray(k) && k.length >= 30 && k[0].length === 12)) return false;
      if (typeof k[0][0] !== 'number' || typeof k[0][4] !== 'string' || typeof k[0][8] !== 'number') return false;
      if (typeof ticker.c !== 'string' || ticker.s !== ticker.s.toUpperCase()) return false;
      if (timeframes['4h'] !== undefined) return false;            // not declared -> undefined
      if (arguments.length !== 4 || !Array.isArray(hvnNodes)) return false;
      undeclared = 41; undeclared++;                               // sloppy mode global
      if (this !== globalThis || undeclared !== 42) return false;
      if (Object.keys(helpers).length !== 35 || Object.prototype.toString.call(helpers) !== '[object Module]') return false;
      helpers.extra = 1;                                           // ignored, like a module namespace
      return helpers.extra === undefined && Object.getPrototypeOf(helpers) === null;
    """
    r = run(rt, code, tfs=["1h"], symbols=[SYMS[0]])
    assert r.symbol_errors == () and r.filtered_symbols == (SYMS[0],)


def test_sloppy_globals_persist_across_symbols_within_one_run(rt):
    code = "counter = (typeof counter === 'undefined' ? 0 : counter) + 1; return counter === 2;"
    assert run(rt, code, tfs=["1h"]).filtered_symbols == (SYMS[2],)
    assert run(rt, code, tfs=["1h"]).filtered_symbols == (SYMS[2],)  # ...but not across runs


def test_batch_equals_individual_runs_in_order(rt):
    codes = [
        "return helpers.getLatestRSI(timeframes['1h']) > 50",
        "return parseFloat(ticker.P) > 0",
        "return (",
        "return helpers.calculateADX(timeframes['1h']) > 10",
    ]
    requests = [
        TraderRequest(
            trader_id=f"t{i}", code=c, refresh_interval="1h", required_timeframes=None, symbols=ALL
        )
        for i, c in enumerate(codes)
    ]
    batch = rt.run_traders(requests)
    assert [r.trader_id for r in batch] == ["t0", "t1", "t2", "t3"]
    for req, got in zip(requests, batch, strict=True):
        alone = rt.run_traders([req])[0]
        assert (alone.filtered_symbols, alone.error) == (got.filtered_symbols, got.error)
