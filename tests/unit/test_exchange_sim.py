"""The exchange simulator: Binance's exact formats, weights, determinism, faults, clock.

Expected shapes are written from Binance's Spot REST API reference (rest-api.md):
field names, key order and JSON types.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from traderctl.worker.intervals import INTERVAL_MS
from traderctl.worker.local.exchange_sim import ExchangeSimulator
from traderctl.worker.local.price_walk import aggregate
from traderctl.worker.local.sim_faults import FaultRule, Faults

NOW = int(datetime(2026, 11, 26, 10, 4, 30, tzinfo=UTC).timestamp() * 1000)

# GET /api/v3/klines: [openTime, open, high, low, close, volume, closeTime, quoteVolume,
#  trades, takerBuyBase, takerBuyQuote, ignore]
KLINE_TYPES = (int, str, str, str, str, str, int, str, int, str, str, str)
# GET /api/v3/ticker/24hr (FULL), in documented order.
TICKER_FIELDS = [
    ("symbol", str), ("priceChange", str), ("priceChangePercent", str),
    ("weightedAvgPrice", str), ("prevClosePrice", str), ("lastPrice", str), ("lastQty", str),
    ("bidPrice", str), ("bidQty", str), ("askPrice", str), ("askQty", str),
    ("openPrice", str), ("highPrice", str), ("lowPrice", str), ("volume", str),
    ("quoteVolume", str), ("openTime", int), ("closeTime", int), ("firstId", int),
    ("lastId", int), ("count", int),
]  # fmt: skip
EXCHANGE_INFO_KEYS = ["timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"]
SYMBOL_KEYS = [
    "symbol", "status", "baseAsset", "baseAssetPrecision", "quoteAsset", "quotePrecision",
    "quoteAssetPrecision", "baseCommissionPrecision", "quoteCommissionPrecision",
    "orderTypes", "icebergAllowed", "ocoAllowed", "otoAllowed", "quoteOrderQtyMarketAllowed",
    "allowTrailingStop", "cancelReplaceAllowed", "amendAllowed", "pegInstructionsAllowed",
    "isSpotTradingAllowed", "isMarginTradingAllowed", "filters", "permissions",
    "permissionSets", "defaultSelfTradePreventionMode", "allowedSelfTradePreventionModes",
]  # fmt: skip
DECIMAL = r"^-?\d+\.\d{8}$"


@pytest.fixture(scope="module")
def sim() -> Iterator[ExchangeSimulator]:
    with ExchangeSimulator(seed=3, symbols=12, now_ms=NOW) as simulator:
        yield simulator


@pytest.fixture
def http(sim: ExchangeSimulator) -> Iterator[httpx.Client]:
    sim.clear_faults()
    sim.set_now(NOW)
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        yield client
    sim.clear_faults()
    sim.set_now(NOW)


def test_klines_format(http: httpx.Client) -> None:
    import re

    response = http.get(
        "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "5m", "limit": 250}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert b" " not in response.content  # compact, like Binance
    klines = response.json()
    assert len(klines) == 250
    for row in klines:
        assert len(row) == 12
        assert tuple(type(v) for v in row) == KLINE_TYPES
        for i in (1, 2, 3, 4, 5, 7, 9, 10):
            assert re.match(DECIMAL, row[i]), row[i]
        assert row[11] == "0"
        assert row[6] == row[0] + INTERVAL_MS["5m"] - 1
        assert float(row[3]) <= min(float(row[1]), float(row[4]))
        assert float(row[2]) >= max(float(row[1]), float(row[4]))
    opens = [r[0] for r in klines]
    assert (
        opens == sorted(opens) and opens[-1] == NOW - NOW % INTERVAL_MS["5m"]
    )  # last = live candle
    assert klines[-1][6] > NOW


def test_ticker_format(http: httpx.Client) -> None:
    import re

    tickers = http.get("/api/v3/ticker/24hr").json()
    assert isinstance(tickers, list) and len(tickers) > 12
    for ticker in tickers:
        assert list(ticker) == [name for name, _ in TICKER_FIELDS]
        assert all(type(ticker[name]) is kind for name, kind in TICKER_FIELDS)
        assert re.match(r"^-?\d+\.\d{3}$", ticker["priceChangePercent"])
        assert ticker["closeTime"] == NOW and ticker["openTime"] == NOW - INTERVAL_MS["1d"]
        assert ticker["lastId"] - ticker["firstId"] + 1 == ticker["count"]
    one = http.get("/api/v3/ticker/24hr", params={"symbol": "ETHUSDT"}).json()
    assert one == next(t for t in tickers if t["symbol"] == "ETHUSDT")


def test_ticker_agrees_with_klines(sim: ExchangeSimulator) -> None:
    ticker = sim.ticker("BTCUSDT")
    live = sim.klines("BTCUSDT", "1m", 2)[-1]
    assert ticker["lastPrice"] == live[4]


def test_exchange_info_format_and_catalog(http: httpx.Client) -> None:
    info = http.get("/api/v3/exchangeInfo").json()
    assert list(info) == EXCHANGE_INFO_KEYS
    assert info["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000
    }  # fmt: skip
    by_name = {s["symbol"]: s for s in info["symbols"]}
    for entry in info["symbols"]:
        assert list(entry) == SYMBOL_KEYS
        assert [f["filterType"] for f in entry["filters"]] == ["PRICE_FILTER", "LOT_SIZE"]
    for name in (
        "USDCUSDT",
        "FDUSDUSDT",
        "BTCUPUSDT",
        "ETHDOWNUSDT",
        "ETHBTC",
        "BTCFDUSD",
        "JUPUSDT",
    ):
        assert name in by_name
    assert by_name["LUNAUSDT"]["status"] == "BREAK"
    assert by_name["BTCUPUSDT"]["permissionSets"] == [["LEVERAGED"]]
    assert sum(1 for s in info["symbols"] if s["quoteAsset"] == "USDT") >= 12


def test_weight_headers_follow_binance_weights(sim: ExchangeSimulator, http: httpx.Client) -> None:
    sim.set_now(NOW + INTERVAL_MS["1h"])  # a fresh weight window
    requests: list[tuple[str, dict[str, str | int]]] = [
        ("/api/v3/exchangeInfo", {}),
        ("/api/v3/ticker/24hr", {}),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 250}),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 50}),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1000}),
        ("/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}),
    ]
    used = [
        int(http.get(path, params=params).headers["X-MBX-USED-WEIGHT-1M"])
        for path, params in requests
    ]
    assert used == [20, 100, 102, 103, 108, 110]
    sim.advance(60_000)  # next minute: the window starts over
    assert http.get("/api/v3/exchangeInfo").headers["X-MBX-USED-WEIGHT-1M"] == "20"


def test_weight_limit_answers_429(http: httpx.Client) -> None:
    small = ExchangeSimulator(seed=3, symbols=3, now_ms=NOW + 15_000, weight_limit=90)
    with small, httpx.Client(base_url=small.base_url) as client:
        assert client.get("/api/v3/ticker/24hr").status_code == 200
        refused = client.get("/api/v3/exchangeInfo")
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "15"  # seconds to the next minute
        assert refused.json()["code"] == -1003


def test_deterministic_per_seed_and_stable_over_time() -> None:
    a = ExchangeSimulator(seed=11, symbols=3, now_ms=NOW)
    b = ExchangeSimulator(seed=11, symbols=3, now_ms=NOW)
    c = ExchangeSimulator(seed=12, symbols=3, now_ms=NOW)
    assert a.klines("ETHUSDT", "1h", 100) == b.klines("ETHUSDT", "1h", 100)
    assert a.klines("ETHUSDT", "1h", 100) != c.klines("ETHUSDT", "1h", 100)
    before = a.klines("ETHUSDT", "1m", 10)
    a.advance(60_000)  # a new candle every minute; closed ones never change
    after = a.klines("ETHUSDT", "1m", 10)
    assert after[:8] == before[1:9]
    assert after[-1][0] == before[-1][0] + 60_000
    assert after[-2][0] == before[-1][0]  # the formerly live candle, now closed


def test_longer_intervals_aggregate_shorter_ones() -> None:
    sim = ExchangeSimulator(seed=5, symbols=3, now_ms=NOW)
    spec = sim.specs[0]
    walk = sim.payloads.walk
    for interval, smaller in [
        ("5m", "1m"),
        ("15m", "5m"),
        ("1h", "15m"),
        ("4h", "1h"),
        ("1d", "4h"),
    ]:
        size, small = INTERVAL_MS[interval], INTERVAL_MS[smaller]
        start = NOW - NOW % size - 3 * size
        big = walk.candle(spec, interval, start)
        parts = walk.candles(spec, smaller, start, start + size - small)
        assert len(parts) == size // small
        agg = aggregate(parts, start, size)
        assert (agg.open, agg.high, agg.low, agg.close) == (big.open, big.high, big.low, big.close)
        assert agg.volume == pytest.approx(big.volume, rel=1e-9)
    # The live candle is the aggregate of what has traded so far.
    live_5m = walk.live(spec, "5m", NOW)
    minutes = [
        *walk.candles(spec, "1m", NOW - NOW % INTERVAL_MS["5m"], NOW - NOW % 60_000 - 60_000),
        walk.live(spec, "1m", NOW),
    ]
    agg = aggregate(minutes, live_5m.open_time, INTERVAL_MS["5m"])
    assert (agg.open, agg.high, agg.low, agg.close) == (
        live_5m.open,
        live_5m.high,
        live_5m.low,
        live_5m.close,
    )


def test_faults_status_retry_after_times_and_body(
    sim: ExchangeSimulator, http: httpx.Client
) -> None:
    params: dict[str, str | int] = {"symbol": "BTCUSDT", "interval": "1m", "limit": 5}
    sim.set_faults(rules=[FaultRule(endpoint="klines", status=503, times=2)])
    assert [http.get("/api/v3/klines", params=params).status_code for _ in range(3)] == [
        503,
        503,
        200,
    ]
    sim.set_faults(rules=[FaultRule(status=429, retry_after=7)])
    limited = http.get("/api/v3/ticker/24hr")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    sim.set_faults(rules=[FaultRule(status=418, retry_after=60)])
    banned = http.get("/api/v3/exchangeInfo")
    assert banned.status_code == 418 and banned.headers["Retry-After"] == "60"
    assert "banned until" in banned.json()["msg"]
    sim.set_faults(rules=[FaultRule(endpoint="klines", symbol="ETHUSDT", malformed=True)])
    assert http.get("/api/v3/klines", params=params).status_code == 200
    broken = http.get("/api/v3/klines", params={**params, "symbol": "ETHUSDT"})
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    sim.set_faults(rules=[FaultRule(endpoint="klines", status=200, body="[[1]]")])
    assert http.get("/api/v3/klines", params=params).json() == [[1]]


def test_missing_symbols_and_latency(sim: ExchangeSimulator, http: httpx.Client) -> None:
    sim.set_faults(missing_symbols={"ETHUSDT"}, latency_ms=50)
    gone = http.get("/api/v3/klines", params={"symbol": "ETHUSDT", "interval": "1m"})
    assert gone.status_code == 400 and gone.json() == {"code": -1121, "msg": "Invalid symbol."}
    assert "ETHUSDT" not in {t["symbol"] for t in http.get("/api/v3/ticker/24hr").json()}
    assert gone.elapsed.total_seconds() >= 0.05


def test_control_endpoints(sim: ExchangeSimulator, http: httpx.Client) -> None:
    faults = Faults(latency_ms=0, rules=(FaultRule(endpoint="exchangeInfo", status=502),))
    assert http.post("/_sim/faults", json=faults.to_json()).status_code == 200
    assert sim.faults == faults
    assert http.get("/api/v3/exchangeInfo").status_code == 502
    assert http.delete("/_sim/faults").status_code == 200
    assert http.get("/api/v3/exchangeInfo").status_code == 200
    http.post("/_sim/clock", json={"advance_ms": 60_000})
    assert sim.now_ms() == NOW + 60_000
    assert http.get("/api/v3/time").json() == {"serverTime": NOW + 60_000}
    stats = http.get("/_sim/stats").json()
    assert stats["requests"]["exchangeInfo 502"] >= 1
    assert (
        http.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "2m"}).json()["code"]
        == -1120
    )


def test_stop_closes_keepalive_connections() -> None:
    sim = ExchangeSimulator(seed=1, symbols=2, now_ms=NOW).start()
    with httpx.Client(base_url=sim.base_url) as client:
        assert client.get("/api/v3/ping").json() == {}
        sim.stop()  # returns although the client still holds a keep-alive connection
        with pytest.raises(httpx.TransportError):
            client.get("/api/v3/ping")
