"""Binance client, weights, budget, backoff, answer shapes, universe and cadence (no DB)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from traderctl.worker.errors import (
    ExchangeBanned,
    ExchangeMalformedResponse,
    ExchangeRequestRejected,
    ExchangeUnavailable,
)
from traderctl.worker.intervals import closed_through, due_intervals, intervals_closing_at
from traderctl.worker.local.exchange_sim import ExchangeSimulator
from traderctl.worker.local.sim_faults import FaultRule
from traderctl.worker.market.binance_client import BinanceClient
from traderctl.worker.market.limits import Backoff, WeightBudget, endpoint_weight, klines_weight
from traderctl.worker.market.shapes import (
    ListedSymbol,
    check_klines,
    check_tickers,
    ticker_to_stream,
)
from traderctl.worker.market.universe import is_leveraged, select_universe

NOW = int(datetime(2026, 11, 26, 10, 4, 30, tzinfo=UTC).timestamp() * 1000)


def at(hour: int, minute: int, day: int = 26) -> int:
    return int(datetime(2026, 11, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


# -- weights, budget, backoff -----------------------------------------------------------
def test_weights() -> None:
    assert [klines_weight(n) for n in (1, 99, 100, 250, 499, 500, 1000, 1001)] == [
        1, 1, 2, 2, 2, 5, 5, 10,
    ]  # fmt: skip
    assert endpoint_weight("exchangeInfo", {}) == 20
    assert endpoint_weight("ticker/24hr", {}) == 80
    assert endpoint_weight("ticker/24hr", {"symbol": "BTCUSDT"}) == 2
    assert endpoint_weight("klines", {"limit": "250"}) == 2
    assert endpoint_weight("klines", {}) == 5  # default limit 500


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_budget_waits_for_the_next_window() -> None:
    t = FakeTime(1_000_040.0)  # 20 s into a minute window (window = 16667)
    budget = WeightBudget(100, clock=t.clock, sleep=t.sleep)

    async def run() -> None:
        for _ in range(50):
            await budget.acquire(2)
        assert budget.used == 100 and not t.slept
        await budget.acquire(2)  # does not fit: wait for the next minute

    asyncio.run(run())
    assert t.slept == [pytest.approx(40.05)]
    assert budget.used == 2


def test_budget_follows_the_exchange_and_pauses() -> None:
    t = FakeTime(1_000_040.0)
    budget = WeightBudget(100, clock=t.clock, sleep=t.sleep)
    budget.observe(99)  # another client on our IP used weight too
    assert budget.used == 99
    budget.pause(5)

    async def run() -> None:
        await budget.acquire(2)

    asyncio.run(run())
    assert t.slept[0] == pytest.approx(5)  # the 429 pause first, then the window
    assert sum(t.slept) == pytest.approx(40.05)


def test_budget_gives_up_after_max_wait() -> None:
    t = FakeTime(1_000_040.0)
    budget = WeightBudget(10, clock=t.clock, sleep=t.sleep)
    budget.pause(300)
    with pytest.raises(TimeoutError):
        asyncio.run(budget.acquire(1, max_wait=60))


def test_backoff_is_jittered_exponential() -> None:
    backoff = Backoff(base=1, cap=8)
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (3, 8), (6, 8)]:
        for _ in range(20):
            assert ceiling / 2 <= backoff.delay(attempt) <= ceiling


# -- the client against the simulator ---------------------------------------------------
@pytest.fixture
def sim() -> Iterator[ExchangeSimulator]:
    # One simulator per test: a request a previous test gave up on (timeout) may still be
    # sleeping in a server thread and would otherwise consume the next test's fault rule.
    with ExchangeSimulator(seed=2, symbols=10, now_ms=NOW) as simulator:
        yield simulator


def run_client(sim: ExchangeSimulator, coro_fn, **kwargs):
    async def main() -> tuple[object, BinanceClient]:
        async with BinanceClient(
            sim.base_url,
            budget=WeightBudget(3000),
            backoff=Backoff(base=0.01, cap=0.02, attempts=3),
            clock=lambda: sim.now_ms() / 1000,
            **kwargs,
        ) as client:
            return await coro_fn(client), client

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def _reset(sim: ExchangeSimulator) -> Iterator[None]:
    sim.clear_faults()
    sim.set_now(NOW)
    sim.reset_stats()
    yield
    sim.clear_faults()


def test_client_reads_the_three_endpoints(sim: ExchangeSimulator) -> None:
    async def calls(client: BinanceClient):
        return (
            await client.exchange_info(),
            await client.tickers(),
            await client.klines("BTCUSDT", "1h"),
        )

    (listed, tickers, klines), client = run_client(sim, calls)
    assert {s.symbol for s in listed} >= {"BTCUSDT", "USDCUSDT", "ETHBTC"}
    assert len(tickers) == len(listed) and len(klines) == 250
    assert client.last_used_weight == 20 + 80 + 2
    assert client.count("200") == 3


def test_client_retries_5xx_then_succeeds(sim: ExchangeSimulator) -> None:
    sim.set_faults(rules=[FaultRule(endpoint="klines", status=502, times=2)])
    klines, client = run_client(sim, lambda c: c.klines("BTCUSDT", "1m", 50))
    assert len(klines) == 50
    assert client.count("502") == 2 and client.count("200") == 1


def test_client_gives_up_after_attempts(sim: ExchangeSimulator) -> None:
    sim.set_faults(rules=[FaultRule(endpoint="klines", status=500)])
    with pytest.raises(ExchangeUnavailable, match=r"answered 500.*Gave up after 3 tries"):
        run_client(sim, lambda c: c.klines("BTCUSDT", "1m"))
    assert sim.request_count("klines", 500) == 3


def test_client_retries_timeouts(sim: ExchangeSimulator) -> None:
    sim.set_faults(latency_ms=300)
    with pytest.raises(ExchangeUnavailable, match="timed out"):
        run_client(sim, lambda c: c.klines("BTCUSDT", "1m", 10), timeout_s=0.05)


def test_client_obeys_429_retry_after(sim: ExchangeSimulator) -> None:
    sim.set_faults(rules=[FaultRule(endpoint="klines", status=429, retry_after=1, times=1)])
    klines, client = run_client(sim, lambda c: c.klines("BTCUSDT", "1m", 10))
    assert len(klines) == 10 and client.count("429") == 1
    assert client.budget.waits >= 1  # it waited for the Retry-After


def test_client_stops_on_418(sim: ExchangeSimulator) -> None:
    sim.set_faults(rules=[FaultRule(status=418, retry_after=600)])

    async def calls(client: BinanceClient):
        with pytest.raises(ExchangeBanned, match="418"):
            await client.tickers()
        sent = sim.request_count()
        with pytest.raises(ExchangeBanned, match="not sent"):
            await client.klines("BTCUSDT", "1m")
        assert sim.request_count() == sent
        return client.banned_for()

    banned_for, _ = run_client(sim, calls)
    assert banned_for == pytest.approx(600)


def test_client_types_malformed_and_rejected_answers(sim: ExchangeSimulator) -> None:
    sim.set_faults(
        rules=[
            FaultRule(endpoint="klines", symbol="BTCUSDT", malformed=True),
            FaultRule(endpoint="klines", symbol="ETHUSDT", status=200, body='[[1,"2"]]'),
        ]
    )
    with pytest.raises(ExchangeMalformedResponse, match="not valid JSON"):
        run_client(sim, lambda c: c.klines("BTCUSDT", "1m"))
    with pytest.raises(ExchangeMalformedResponse, match="kline 0 has 2 fields"):
        run_client(sim, lambda c: c.klines("ETHUSDT", "1m"))
    sim.set_faults(missing_symbols={"SOLUSDT"})
    with pytest.raises(ExchangeRequestRejected, match="-1121"):
        run_client(sim, lambda c: c.klines("SOLUSDT", "1m"))


# -- shapes ---------------------------------------------------------------------------
def test_ticker_to_stream_maps_every_field(sim: ExchangeSimulator) -> None:
    rest = sim.ticker("BTCUSDT")
    stream = ticker_to_stream(rest)
    assert list(stream) == list("eEspPwxcQbBaAohlvqOCFLn")
    assert stream["e"] == "24hrTicker" and stream["E"] == rest["closeTime"]
    pairs = {
        "s": "symbol", "c": "lastPrice", "o": "openPrice", "h": "highPrice", "l": "lowPrice",
        "v": "volume", "q": "quoteVolume", "P": "priceChangePercent", "p": "priceChange",
        "w": "weightedAvgPrice", "x": "prevClosePrice", "Q": "lastQty", "b": "bidPrice",
        "B": "bidQty", "a": "askPrice", "A": "askQty", "O": "openTime", "C": "closeTime",
        "F": "firstId", "L": "lastId", "n": "count",
    }  # fmt: skip
    assert all(stream[k] == rest[v] for k, v in pairs.items())


def test_shape_checks_reject_bad_answers(sim: ExchangeSimulator) -> None:
    good = sim.klines("BTCUSDT", "5m", 5)
    assert check_klines(good, what="x", interval="5m") == good
    bad_rows = [
        {"not": "a list"},
        [],
        [[*good[0][:5], 1.5, *good[0][6:]]],  # volume as a number
        [[str(good[0][0]), *good[0][1:]]],  # open time as a string
        [good[1], good[0]],  # out of order
    ]
    for bad in bad_rows:
        with pytest.raises(ExchangeMalformedResponse):
            check_klines(bad, what="x", interval="5m")
    with pytest.raises(ExchangeMalformedResponse, match="1h boundary"):
        check_klines(good, what="x", interval="1h")
    ticker = sim.ticker("BTCUSDT")
    with pytest.raises(ExchangeMalformedResponse, match="lacks lastPrice"):
        check_tickers([{k: v for k, v in ticker.items() if k != "lastPrice"}], what="x")
    with pytest.raises(ExchangeMalformedResponse, match="count"):
        check_tickers([{**ticker, "count": "12"}], what="x")


# -- universe --------------------------------------------------------------------------
def listed(symbol: str, base: str, quote: str = "USDT", status: str = "TRADING", perms=("SPOT",)):
    return ListedSymbol(symbol=symbol, base=base, quote=quote, status=status, spot=True,
                        permissions=frozenset(perms))  # fmt: skip


def test_universe_selection() -> None:
    items = [
        listed("BTCUSDT", "BTC"), listed("ETHUSDT", "ETH"), listed("JUPUSDT", "JUP"),
        listed("SOLUSDT", "SOL"), listed("USDCUSDT", "USDC"), listed("FDUSDUSDT", "FDUSD"),
        listed("BTCUPUSDT", "BTCUP"), listed("ETHDOWNUSDT", "ETHDOWN"),
        listed("BULLUSDT", "BULL"), listed("XBEARUSDT", "XBEAR", perms=("LEVERAGED",)),
        listed("ETHBTC", "ETH", quote="BTC"), listed("LUNAUSDT", "LUNA", status="BREAK"),
        listed("NOTICKERUSDT", "NOTICKER"),
    ]  # fmt: skip
    volumes = {s.symbol: 1000.0 - i for i, s in enumerate(items)}
    volumes["SOLUSDT"] = 5000.0
    tickers = {s: {"quoteVolume": f"{v:.8f}"} for s, v in volumes.items() if s != "NOTICKERUSDT"}
    chosen = select_universe(items, tickers, size=10, excluded_bases=("USDC", "FDUSD"))
    assert chosen == ["SOLUSDT", "BTCUSDT", "ETHUSDT", "JUPUSDT"]
    assert select_universe(items, tickers, size=2, excluded_bases=()) == ["SOLUSDT", "BTCUSDT"]
    known = {s.base for s in items}
    assert is_leveraged(listed("BTCUPUSDT", "BTCUP"), known)
    assert not is_leveraged(listed("JUPUSDT", "JUP"), known)


def test_universe_from_the_simulator(sim: ExchangeSimulator) -> None:
    async def calls(client: BinanceClient):
        return await client.exchange_info(), await client.tickers()

    (items, tickers), _ = run_client(sim, calls)
    chosen = select_universe(
        items,
        {t["symbol"]: t for t in tickers},
        size=100,
        excluded_bases=("USDC", "FDUSD", "TUSD", "DAI", "EUR"),
    )
    assert len(chosen) == 10 and "JUPUSDT" in chosen
    assert not {"USDCUSDT", "BTCUPUSDT", "BNBBULLUSDT", "LUNAUSDT", "BTCFDUSD"} & set(chosen)
    volumes = [float(next(t for t in tickers if t["symbol"] == s)["quoteVolume"]) for s in chosen]
    assert volumes == sorted(volumes, reverse=True)
    assert json.dumps(chosen)  # plain strings


# -- cadence ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (0, 0, ["1m", "5m", "15m", "30m", "1h", "4h", "1d"]),
        (4, 0, ["1m", "5m", "15m", "30m", "1h", "4h"]),
        (10, 5, ["1m", "5m"]),
        (10, 15, ["1m", "5m", "15m"]),
        (10, 30, ["1m", "5m", "15m", "30m"]),
        (13, 0, ["1m", "5m", "15m", "30m", "1h"]),
        (10, 7, ["1m"]),
    ],
)
def test_intervals_closing_at(hour: int, minute: int, expected: list[str]) -> None:
    assert intervals_closing_at(at(hour, minute)) == expected


def test_due_intervals_catch_up() -> None:
    stored: dict[str, int | None] = {
        i: closed_through(i, at(10, 4)) for i in ("1m", "5m", "1h", "1d")
    }
    assert due_intervals(at(10, 4) + 1500, stored, ("1m", "5m", "1h", "1d")) == []
    assert due_intervals(at(10, 5) + 1500, stored, ("1m", "5m", "1h", "1d")) == ["1m", "5m"]
    # Missed minutes up to 11:00: everything that closed since, the day excepted.
    assert due_intervals(at(11, 0) + 1500, stored, ("1m", "5m", "1h", "1d")) == ["1m", "5m", "1h"]
    assert due_intervals(at(0, 0, day=27), {}, ("1m", "1d")) == ["1m", "1d"]
    assert closed_through("4h", at(10, 4)) == at(8, 0)
