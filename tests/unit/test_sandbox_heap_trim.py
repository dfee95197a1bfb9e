"""A worker meeting many distinct filter texts trims V8's heap instead of reaching its cap.

V8 keeps the compiled code of every distinct filter text in its compilation cache and sees
its own 1.4 GB limit, not our cap, so with one text per trader an isolate grew by ~3 KB per
trader until the cap stopped whichever trader was running (docs/sandbox.md "Heap trims").
The runtime now gives that memory back between batches, outside every trader's time.
"""

from __future__ import annotations

import json

import pytest

from tests.unit.test_sandbox_memo import INTERVALS, SNAP
from traderctl.worker.config import Settings
from traderctl.worker.sandbox import runtime as runtime_module
from traderctl.worker.sandbox.runtime import FilterRuntime, TraderRequest

#: A filter body with some code to compile; the comment makes each trader's text its own.
BODY = """
const klines = timeframes['1m'];
const closes = klines.map((k) => parseFloat(k[4]));
let up = 0;
for (let i = 1; i < closes.length; i++) if (closes[i] > closes[i - 1]) up++;
const rsi = helpers.getLatestRSI(klines, 14);
return up > closes.length / 2 && rsi !== null && rsi > 0;
"""


def _requests(start: int, count: int, symbols: list[str]) -> list[TraderRequest]:
    return [
        TraderRequest(
            trader_id=f"t{i}",
            code=f"// the own filter of trader {i}\n{BODY}",
            refresh_interval="1m",
            required_timeframes=["1m"],
            symbols=symbols,
        )
        for i in range(start, start + count)
    ]


def test_distinct_filter_texts_are_trimmed_not_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "HEAP_CHECK_EVERY_RUNS", 64)
    symbols = list(SNAP.symbols)[:2]
    cap_mb = 32
    with FilterRuntime(Settings(filter_timeout_ms=5000, filter_memory_mb=cap_mb)) as rt:
        rt.set_tickers("t", json.dumps(SNAP.tickers))
        for tf in INTERVALS:
            rt.set_series(tf, "v", json.dumps(SNAP.series(tf)))
        expected = rt.run_traders(_requests(0, 1, symbols))[0].filtered_symbols
        peak = 0
        for start in range(1, 12_001, 32):
            for result in rt.run_traders(_requests(start, 32, symbols)):
                assert result.error is None, result.error
                assert result.filtered_symbols == expected
            if start % 1024 == 1:
                peak = max(peak, rt.heap_used_bytes())
        trims, replacements = rt.heap_trims, rt.isolate_replacements

    # No trader was stopped by the cap, so no isolate had to be thrown away (without the
    # trims this mix reaches the 32 MB cap once and replaces the isolate).
    assert replacements == 0
    assert trims >= 1
    assert peak < cap_mb * 1024 * 1024


def test_a_heap_of_live_data_is_not_trimmed_again_and_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above half the cap with nothing to give back, trims stop until the heap grows more."""
    monkeypatch.setattr(runtime_module, "HEAP_CHECK_EVERY_RUNS", 1)
    with FilterRuntime(Settings(filter_timeout_ms=5000, filter_memory_mb=16)) as rt:
        rt.set_tickers("t", json.dumps(SNAP.tickers))
        for tf in INTERVALS:
            rt.set_series(tf, "v", json.dumps(SNAP.series(tf)))
        # Pretend the live set sits just above half the cap: the first look trims, the
        # ones after see no growth of a quarter of the cap since and leave it.
        live = 16 * 1024 * 1024 // 2 + 1
        monkeypatch.setattr(rt._isolate, "heap_used_bytes", lambda: live)
        for i in range(20):
            rt.run_traders(_requests(i, 1, list(SNAP.symbols)[:1]))
        assert rt.heap_trims == 1
