"""Run records reach the commit as one JSON array; the matches' prices go in pre-rendered."""

from __future__ import annotations

import json
from typing import Any

from traderctl.worker.runner.commit import records_json
from traderctl.worker.runner.snapshot_cache import SnapshotCache


def _cache() -> SnapshotCache:
    cache = SnapshotCache(sink=None)  # type: ignore[arg-type]  # nothing is loaded here
    cache.price_members = {
        "BTCUSDT": '"BTCUSDT":' + json.dumps([43123.45, -1.25, 1.5e9]),
        "ETHUSDT": '"ETHUSDT":' + json.dumps([2250.5, None, 3.25e8]),
    }
    return cache


def test_prices_json_covers_each_known_symbol_once():
    cache = _cache()
    text = cache.prices_json(["ETHUSDT", "NOPEUSDT", "BTCUSDT", "ETHUSDT"])
    assert json.loads(text) == {
        "ETHUSDT": [2250.5, None, 3.25e8],
        "BTCUSDT": [43123.45, -1.25, 1.5e9],
    }
    assert cache.prices_json([]) == "{}"


def test_records_json_is_what_json_dumps_of_the_records_would_be():
    cache = _cache()
    records: list[dict[str, Any]] = [
        {
            "job_id": 1,
            "status": "ok",
            "error_message": None,
            "matches": ["BTCUSDT", "ETHUSDT"],
            "prices": cache.prices_json(["BTCUSDT", "ETHUSDT"]),
            "data_age_ms": 0.0,
        },
        {
            "job_id": 2,
            "status": "error",
            "error_message": 'line 1: "quoted"\n\ttab \\ back \u2603 \U0001f600',
            "matches": [],
            "prices": cache.prices_json([]),
            "data_age_ms": 12.5,
        },
    ]
    decoded = json.loads(records_json(records))
    expected = [r | {"prices": json.loads(r["prices"])} for r in records]
    assert decoded == expected
    assert records_json([]) == "[]"


def test_records_json_keeps_error_text_that_imitates_the_prices_stand_in():
    """A filter's error message is the filter author's text: one that spells out the
    stand-in records_json splices prices into, raw or encoded, stays text."""
    cache = _cache()
    hostile = [
        "\x00",
        '"prices":"\\u0000"',
        '{"prices":"\x00"}',
        's":"',
        '","prices":"\x00',
    ]
    records: list[dict[str, Any]] = [
        {
            "job_id": i,
            "status": "error",
            "error_message": text,
            "matches": ["BTCUSDT"],
            "prices": cache.prices_json(["BTCUSDT"]),
        }
        for i, text in enumerate(hostile)
    ]
    decoded = json.loads(records_json(records))
    assert [r["error_message"] for r in decoded] == hostile
    assert all(r["prices"] == {"BTCUSDT": [43123.45, -1.25, 1.5e9]} for r in decoded)
