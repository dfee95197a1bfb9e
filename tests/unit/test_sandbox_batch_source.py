"""A batch's request reaches V8 as a value, never as part of a script's source.

V8 keeps every script it compiles from a source it has not seen before in its compilation
cache until a memory-reducing collection: when the request (trader ids, code, symbol lists)
was spelled into the `beginBatch` call, a worker kept ~80 KB per batch of 32 and its RSS
grew by ~2.6 KB per run without end (docs/sandbox.md, "Batch requests").
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from tests.unit.test_sandbox_memo import INTERVALS, SNAP, demo_requests
from traderctl.worker.config import load_settings
from traderctl.worker.sandbox.runtime import FilterRuntime, TraderRequest
from traderctl.worker.sandbox.watchdog import DirectCalls


def _batch(tag: str) -> list[TraderRequest]:
    return [replace(r, trader_id=f"{tag}-{r.trader_id}") for r in demo_requests()]


def test_no_call_source_carries_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    sources: list[str] = []
    start = DirectCalls.start

    def recording_start(self: DirectCalls, code: str) -> tuple[int, Any]:
        sources.append(code)
        return start(self, code)

    monkeypatch.setattr(DirectCalls, "start", recording_start)
    with FilterRuntime(load_settings({})) as rt:
        rt.set_tickers("t", json.dumps(SNAP.tickers))
        for tf in INTERVALS:
            rt.set_series(tf, "v", json.dumps(SNAP.series(tf)))
        first = rt.run_traders(_batch("a"))
        before = set(sources)
        second = rt.run_traders(_batch("b"))

    assert [r.filtered_symbols for r in first] == [r.filtered_symbols for r in second]
    assert any("beginBatch" in s for s in sources)
    # The second batch, with other trader ids, compiled nothing the first had not.
    assert set(sources) == before
    for source in sources:
        assert "a-" not in source and "b-" not in source, source
        assert len(source) < 200, source
