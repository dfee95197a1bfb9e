"""The market-data refresher against the exchange simulator and a real, migrated database.

The simulator's clock is frozen (10:04:30 UTC on 2026-11-26 unless a test moves it) and
the refresher reads the same clock, so cadence and contents are deterministic.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tests.factories import make_trader, make_user
from tests.worker_support import STOP_SIGNALS, stop_and_wait
from traderctl.cli.main import app
from traderctl.worker.intervals import INTERVALS
from traderctl.worker.local.exchange_sim import ExchangeSimulator
from traderctl.worker.local.sim_faults import FaultRule
from traderctl.worker.market.binance_client import BinanceClient
from traderctl.worker.market.limits import Backoff, WeightBudget
from traderctl.worker.market.refresher import MarketDataOptions, MarketDataRefresher, RefreshResult

T0 = int(datetime(2026, 11, 26, 10, 4, 30, tzinfo=UTC).timestamp() * 1000)
ALL = INTERVALS
UNIVERSE = 5


def ms(year: int, month: int, day: int, hour: int, minute: int, second: int = 1) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[ExchangeSimulator]:
    # One simulator for the module, so its candle cache is shared between tests.
    with ExchangeSimulator(seed=7, symbols=12, now_ms=T0) as simulator:
        yield simulator


@pytest.fixture
def sim(shared_sim: ExchangeSimulator) -> Iterator[ExchangeSimulator]:
    shared_sim.clear_faults()
    shared_sim.set_now(T0)
    shared_sim.reset_stats()
    yield shared_sim
    shared_sim.clear_faults()


class Harness:
    """A refresher wired to the simulator's clock; each call runs one refresh."""

    def __init__(
        self, sim: ExchangeSimulator, conn: psycopg.Connection[Any], limit: int = 100
    ) -> None:
        self.sim = sim
        self.conn = conn
        self.options = MarketDataOptions(universe_size=UNIVERSE, intervals=ALL, klines_limit=limit)
        self.refresher: MarketDataRefresher | None = None
        self.client: BinanceClient | None = None
        self.loop = asyncio.new_event_loop()

        async def make() -> None:
            self.client = BinanceClient(
                sim.base_url,
                budget=WeightBudget(3000),
                backoff=Backoff(base=0.01, cap=0.02, attempts=3),
                timeout_s=5,
                clock=lambda: sim.now_ms() / 1000,
            )
            self.refresher = MarketDataRefresher(
                conn, self.client, self.options, clock=lambda: sim.now_ms() / 1000
            )

        self.loop.run_until_complete(make())

    def refresh(self, *, full: bool = False) -> RefreshResult:
        assert self.refresher is not None
        return self.loop.run_until_complete(self.refresher.refresh(full=full))

    def close(self) -> None:
        assert self.client is not None
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture
def harness(sim: ExchangeSimulator, conn: psycopg.Connection[Any]) -> Iterator[Harness]:
    h = Harness(sim, conn)
    try:
        yield h
    finally:
        h.close()


def versions(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute("select interval, version from public.market_snapshots").fetchall()
    return {r[0]: r[1] for r in rows}


def series(conn: psycopg.Connection[Any], symbol: str, interval: str) -> tuple[Any, ...]:
    row = conn.execute(
        "select klines::text, closed_through, stale, stale_reason from public.market_klines"
        " where symbol = %s and interval = %s",
        (symbol, interval),
    ).fetchone()
    assert row is not None
    return tuple(row)


def events(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str | None, str | None]]:
    rows = conn.execute(
        "select kind, severity, symbol, interval from backend.market_data_events order by id"
    ).fetchall()
    return [tuple(r) for r in rows]


def test_full_refresh_stores_binance_shapes(conn, sim) -> None:
    harness = Harness(sim, conn, limit=250)
    try:
        result = harness.refresh()
    finally:
        harness.close()
    assert result.status == "ok" and result.full
    assert result.symbols == UNIVERSE and result.fresh_series == UNIVERSE * len(ALL)

    tickers = conn.execute(
        "select symbol, ticker::text, rank, quote_volume from public.market_tickers order by rank"
    ).fetchall()
    symbols = [t[0] for t in tickers]
    assert [t[2] for t in tickers] == list(range(1, UNIVERSE + 1))
    # Regular USDT pairs only: no stablecoins, leveraged tokens, other quotes or BREAK.
    assert all(s.endswith("USDT") for s in symbols)
    for excluded in ("USDCUSDT", "FDUSDUSDT", "BTCUPUSDT", "ETHDOWNUSDT", "LUNAUSDT", "EURUSDT"):
        assert excluded not in symbols
    volumes = [t[3] for t in tickers]
    assert volumes == sorted(volumes, reverse=True)
    ticker = json.loads(tickers[0][1])
    assert list(ticker) == [
        "e", "E", "s", "p", "P", "w", "x", "c", "Q", "b", "B", "a", "A", "o", "h", "l", "v",
        "q", "O", "C", "F", "L", "n",
    ]  # fmt: skip
    assert ticker["e"] == "24hrTicker" and ticker["E"] == T0 and ticker["s"] == symbols[0]
    rest = sim.ticker(symbols[0])
    assert ticker["c"] == rest["lastPrice"] and ticker["q"] == rest["quoteVolume"]
    assert all(isinstance(ticker[k], str) for k in "spPwxcQbBaAohlvq")
    assert all(isinstance(ticker[k], int) for k in "EOCFLn")

    # Klines: verbatim Binance arrays, 250 per series, last one live.
    for interval in ALL:
        text, closed_through, stale, reason = series(conn, symbols[0], interval)
        assert text == json.dumps(sim.klines(symbols[0], interval, 250), separators=(",", ":"))
        klines = json.loads(text)
        assert len(klines) == 250 and not stale and reason is None
        assert closed_through == datetime.fromtimestamp(klines[-1][0] / 1000, UTC)
        assert klines[-1][6] > T0 >= klines[-1][0]

    snap = {
        r[0]: r[1:]
        for r in conn.execute(
            "select interval, version, closed_through, symbols, stale_symbols"
            " from public.market_snapshots"
        ).fetchall()
    }
    assert set(snap) == {"ticker", *ALL}
    assert snap["1m"] == (1, datetime(2026, 11, 26, 10, 4, tzinfo=UTC), UNIVERSE, 0)
    assert snap["4h"][1] == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    assert snap["1d"][1] == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    assert snap["ticker"] == (1, datetime(2026, 11, 26, 10, 4, tzinfo=UTC), UNIVERSE, 0)


def test_cadence_bumps_only_intervals_that_closed(harness: Harness, conn, sim) -> None:
    harness.refresh()
    before = versions(conn)
    one_h = series(conn, "BTCUSDT", "1h")

    sim.set_now(ms(2026, 11, 26, 10, 5))  # 10:05: 1m and 5m closed
    result = harness.refresh()
    assert result.intervals == ("1m", "5m") and not result.full
    after = versions(conn)
    bumped = {i for i in after if after[i] != before[i]}
    assert bumped == {"ticker", "1m", "5m"}
    assert series(conn, "BTCUSDT", "1h") == one_h
    closed = conn.execute(
        "select closed_through from public.market_snapshots where interval = '5m'"
    ).fetchone()
    assert closed is not None and closed[0] == datetime(2026, 11, 26, 10, 5, tzinfo=UTC)

    sim.set_now(ms(2026, 11, 26, 10, 6))  # 10:06: only 1m
    assert harness.refresh().intervals == ("1m",)


def test_cadence_at_four_and_midnight(harness: Harness, conn, sim) -> None:
    sim.set_now(ms(2026, 11, 26, 3, 59))
    harness.refresh()
    sim.set_now(ms(2026, 11, 26, 4, 0))
    assert harness.refresh().intervals == ("1m", "5m", "15m", "30m", "1h", "4h")
    assert versions(conn)["1d"] == 1  # the day has not closed
    sim.set_now(ms(2026, 11, 26, 23, 59))
    # Catches up on everything that closed since 04:00 (not the day).
    assert harness.refresh().intervals == ("1m", "5m", "15m", "30m", "1h", "4h")
    before = versions(conn)["1d"]
    sim.set_now(ms(2026, 11, 27, 0, 0))
    result = harness.refresh()
    assert result.intervals == ALL
    assert versions(conn)["1d"] == before + 1
    closed = conn.execute(
        "select closed_through from public.market_snapshots where interval = '1d'"
    ).fetchone()
    assert closed == (datetime(2026, 11, 27, tzinfo=UTC),)


def test_repeated_refreshes_are_idempotent(harness: Harness, conn) -> None:
    harness.refresh()
    dump = "select symbol, interval, klines::text, closed_through, stale from public.market_klines order by 1, 2"
    first = conn.execute(dump).fetchall()
    tickers = conn.execute(
        "select symbol, ticker::text, rank from public.market_tickers order by 1"
    ).fetchall()
    result = harness.refresh()  # same minute: nothing closed since
    assert result.intervals == () and result.fresh_series == 0
    harness.refresh(full=True)
    assert conn.execute(dump).fetchall() == first
    assert (
        conn.execute(
            "select symbol, ticker::text, rank from public.market_tickers order by 1"
        ).fetchall()
        == tickers
    )
    assert versions(conn)["1m"] == 2 and versions(conn)["ticker"] == 3


def test_failing_symbol_is_flagged_stale_and_others_update(harness: Harness, conn, sim) -> None:
    harness.refresh()
    good = series(conn, "ETHUSDT", "1m")
    sim.set_faults(
        rules=[FaultRule(endpoint="klines", symbol="ETHUSDT", interval="1m", status=500)]
    )
    sim.set_now(ms(2026, 11, 26, 10, 5))
    result = harness.refresh()
    assert result.status == "partial"
    assert [s[:2] for s in result.stale_series] == [("ETHUSDT", "1m")]
    text, closed, stale, reason = series(conn, "ETHUSDT", "1m")
    assert (text, closed) == good[:2] and stale
    assert "500" in reason and "ETHUSDT" in reason
    btc = series(conn, "BTCUSDT", "1m")
    assert btc[1] == datetime(2026, 11, 26, 10, 5, tzinfo=UTC) and not btc[2]
    row = conn.execute(
        "select symbols, stale_symbols from public.market_snapshots where interval = '1m'"
    ).fetchone()
    assert row == (UNIVERSE, 1)
    assert ("stale", "warning", "ETHUSDT", "1m") in events(conn)

    sim.clear_faults()
    sim.set_now(ms(2026, 11, 26, 10, 6))
    result = harness.refresh()
    assert result.status == "ok"
    assert series(conn, "ETHUSDT", "1m")[2:] == (False, None)
    assert ("recovered", "info", "ETHUSDT", "1m") in events(conn)


def test_stale_series_of_a_long_interval_is_retried_next_minute(
    harness: Harness, conn, sim
) -> None:
    sim.set_faults(
        rules=[FaultRule(endpoint="klines", symbol="SOLUSDT", interval="1d", status=503)]
    )
    harness.refresh()
    assert series(conn, "SOLUSDT", "1d")[:3] == ("[]", datetime(1970, 1, 1, tzinfo=UTC), True)
    sim.clear_faults()
    before = versions(conn)
    sim.set_now(ms(2026, 11, 26, 10, 5))
    result = harness.refresh()
    assert result.status == "ok" and len(json.loads(series(conn, "SOLUSDT", "1d")[0])) == 100
    assert versions(conn)["1d"] == before["1d"] + 1  # content changed, so the version moved


def test_malformed_answers_keep_last_good_data(harness: Harness, conn, sim, caplog) -> None:
    harness.refresh()
    good = series(conn, "BTCUSDT", "1m")
    ticker_version = versions(conn)["ticker"]
    sim.set_faults(
        rules=[
            FaultRule(endpoint="klines", symbol="BTCUSDT", status=200, body="[[1,2,3]]"),
            FaultRule(endpoint="ticker/24hr", malformed=True),
        ]
    )
    sim.set_now(ms(2026, 11, 26, 10, 5))
    result = harness.refresh()
    assert result.status == "partial"
    text, closed, stale, reason = series(conn, "BTCUSDT", "1m")
    assert (text, closed) == good[:2] and stale and "malformed" in reason
    assert versions(conn)["ticker"] == ticker_version  # tickers not refreshed
    assert versions(conn)["1m"] == 2  # the others were
    kinds = [e[0] for e in events(conn)]
    assert "malformed" in kinds
    assert any(
        "ExchangeMalformedResponse" in r.message or "malformed" in r.message for r in caplog.records
    )


def test_missing_symbol_keeps_its_ticker_and_flags_series(harness: Harness, conn, sim) -> None:
    harness.refresh()
    sim.set_faults(missing_symbols={"XRPUSDT"})
    sim.set_now(ms(2026, 11, 26, 10, 5))
    result = harness.refresh()
    assert ("XRPUSDT", "1m") in [s[:2] for s in result.stale_series]
    row = conn.execute(
        "select symbols, stale_symbols from public.market_snapshots where interval = 'ticker'"
    ).fetchone()
    assert row == (UNIVERSE, 1)
    assert conn.execute(
        "select count(*) from public.market_tickers where symbol = 'XRPUSDT'"
    ).fetchone() == (1,)
    assert ("request_failed", "warning", "XRPUSDT", "1m") in events(conn)


def test_ban_stops_requests_and_keeps_data(harness: Harness, conn, sim) -> None:
    harness.refresh()
    before = versions(conn)
    sim.set_faults(rules=[FaultRule(status=418, retry_after=300)])
    sim.set_now(ms(2026, 11, 26, 10, 5))
    result = harness.refresh()
    assert result.status == "banned"
    assert versions(conn) == before
    assert ("banned", "critical", None, None) in events(conn)
    sent = sim.request_count()
    sim.set_now(ms(2026, 11, 26, 10, 6))
    assert harness.refresh().status == "banned"
    assert sim.request_count() == sent  # nothing sent while banned
    sim.clear_faults()
    sim.set_now(ms(2026, 11, 26, 10, 11))  # ban over: a full refresh
    result = harness.refresh()
    assert result.status == "ok" and result.full


def test_429_pauses_and_retries(harness: Harness, conn, sim) -> None:
    harness.refresh()
    sim.set_faults(rules=[FaultRule(endpoint="klines", status=429, retry_after=1, times=1)])
    sim.set_now(ms(2026, 11, 26, 10, 5))
    result = harness.refresh()
    assert result.status == "ok"
    assert sim.request_count("klines", 429) == 1
    assert ("rate_limited", "warning", None, None) in events(conn)


def test_universe_change_drops_leavers_and_fetches_joiners(harness: Harness, conn, sim) -> None:
    harness.refresh()
    symbols = [r[0] for r in conn.execute("select symbol from public.market_tickers").fetchall()]
    leaver = symbols[0]
    sim.set_faults(missing_symbols={leaver})
    sim.set_now(ms(2026, 11, 26, 11, 0))  # full hour: universe recomputed
    result = harness.refresh()
    assert result.universe_changed
    left = conn.execute(
        "select count(*) from public.market_klines where symbol = %s", (leaver,)
    ).fetchone()
    assert left == (0,)
    assert conn.execute("select count(*) from public.market_klines").fetchone() == (
        UNIVERSE * len(ALL),
    )
    assert ("universe", "info", None, None) in events(conn)


def test_events_table_is_internal(conn) -> None:
    row = conn.execute(
        "select relrowsecurity from pg_class where oid = 'backend.market_data_events'::regclass"
    ).fetchone()
    assert row == (True,)
    assert conn.execute(
        "select has_table_privilege('service_role', 'backend.market_data_events', 'insert'),"
        " has_table_privilege('authenticated', 'backend.market_data_events', 'select')"
    ).fetchone() == (True, False)


def test_cli_once_with_simulator(db_url: str, conn) -> None:
    result = CliRunner().invoke(
        app,
        ["market-data", "--source", "simulator", "--once", "--universe-size", "3"],
        env={"DATABASE_URL": db_url, "TRADERCTL_MARKET_INTERVALS": "1m,1h"},
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "ok" and summary["fresh_series"] == 6
    assert conn.execute("select count(*) from public.market_klines").fetchone() == (6,)


@STOP_SIGNALS
def test_market_data_process_stops_cleanly_on_a_stop_signal(
    db_url: str, conn: psycopg.Connection[Any], signals: tuple[int, ...]
) -> None:
    """SIGTERM, or `traderctl up`'s parent-death signal however often the kernel repeats
    it, ends the loop through its graceful path."""
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "TRADERCTL_MARKET_INTERVALS": "1m",
        "TRADERCTL_MARKET_METRICS_PORT": "0",
    }
    command = ["market-data", "--source", "simulator", "--universe-size", "3"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "traderctl", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # The first full refresh runs inside the loop that owns the signal handlers.
        deadline = time.monotonic() + 30
        while conn.execute("select count(*) from public.market_snapshots").fetchone() == (0,):
            assert proc.poll() is None and time.monotonic() < deadline, "no refresh"
            time.sleep(0.1)
        err = stop_and_wait(proc, signals, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "market-data stopped" in err


def snapshot(conn: psycopg.Connection[Any], interval: str) -> tuple[Any, ...]:
    row = conn.execute(
        "select version, closed_through, symbols, stale_symbols from public.market_snapshots"
        " where interval = %s",
        (interval,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_interval_whose_series_all_fail_keeps_its_closed_through(
    harness: Harness, conn, sim
) -> None:
    harness.refresh()
    version, closed, symbols, _ = snapshot(conn, "5m")
    assert closed == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    sim.set_faults(rules=[FaultRule(endpoint="klines", interval="5m", status=503)])
    sim.set_now(ms(2026, 11, 26, 10, 5))  # 1m and 5m closed; every 5m request fails
    result = harness.refresh()
    assert result.status == "partial" and result.intervals == ("1m", "5m")
    # Nothing new was loaded for 5m: same version, same closed_through, all counted stale.
    assert snapshot(conn, "5m") == (version, closed, symbols, UNIVERSE)
    assert "5m" not in result.versions
    assert snapshot(conn, "1m")[1] == datetime(2026, 11, 26, 10, 5, tzinfo=UTC)

    # The next minute catches up: 5m is due again and advances once loaded.
    sim.clear_faults()
    sim.set_now(ms(2026, 11, 26, 10, 6))
    result = harness.refresh()
    assert result.status == "ok" and result.intervals == ("1m", "5m")
    assert snapshot(conn, "5m") == (
        version + 1,
        datetime(2026, 11, 26, 10, 5, tzinfo=UTC),
        symbols,
        0,
    )


@pytest.mark.parametrize(("failing", "advances"), [(2, True), (3, False)])
def test_interval_advances_only_when_half_its_series_loaded(
    harness: Harness, conn, sim, failing: int, advances: bool
) -> None:
    harness.refresh()
    members = [r[0] for r in conn.execute("select symbol from public.market_tickers").fetchall()]
    sim.set_faults(
        rules=[
            FaultRule(endpoint="klines", interval="1m", symbol=s, status=503)
            for s in members[:failing]
        ]
    )
    sim.set_now(ms(2026, 11, 26, 10, 5))
    harness.refresh()
    before, after = (
        datetime(2026, 11, 26, 10, 4, tzinfo=UTC),
        datetime(2026, 11, 26, 10, 5, tzinfo=UTC),
    )
    _, closed, symbols, stale = snapshot(conn, "1m")
    assert (closed, symbols, stale) == (after if advances else before, UNIVERSE, failing)
    # Every series has its own closed_through: the failed ones lag, the others do not.
    per_series = dict(
        conn.execute(
            "select symbol, closed_through from public.market_klines where interval = '1m'"
        ).fetchall()
    )
    assert {s for s, c in per_series.items() if c == before} == set(members[:failing])


def test_interval_that_never_loaded_is_not_published(harness: Harness, conn, sim) -> None:
    sim.set_faults(rules=[FaultRule(endpoint="klines", interval="4h", status=503)])
    result = harness.refresh()
    assert result.status == "partial"
    assert "4h" not in versions(conn) and "1h" in versions(conn)
    sim.clear_faults()
    sim.set_now(ms(2026, 11, 26, 10, 5))
    harness.refresh()
    assert snapshot(conn, "4h")[:2] == (1, datetime(2026, 11, 26, 8, 0, tzinfo=UTC))


def test_failed_interval_is_stale_and_alerts(conn, sim) -> None:
    """A 429 storm on 5m: the snapshot stays behind, the view and the critical alert say so."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    sim.set_now(now - 20 * 60_000)
    harness = Harness(sim, conn)
    try:
        harness.refresh()
        _, before, _, _ = snapshot(conn, "5m")
        user = make_user(conn, tier="elite")
        make_trader(conn, user_id=user, interval="1m", timeframes=["5m"])
        sim.set_now(now)
        sim.set_faults(rules=[FaultRule(endpoint="klines", interval="5m", status=429)])
        result = harness.refresh()
    finally:
        harness.close()
    assert result.status == "partial"
    assert snapshot(conn, "5m")[1] == before
    fresh = {
        r[0]: r[1:]
        for r in conn.execute(
            "select interval, stale, closed_through, stale_symbols from ops.snapshot_freshness"
        ).fetchall()
    }
    assert fresh["5m"] == (True, before, UNIVERSE)
    assert fresh["1m"][0] is False
    alerts = conn.execute("select alert, severity, subject from ops.alerts").fetchall()
    assert ("stale_market_data", "critical", "5m") in alerts
    assert ("stale_market_data", "critical", "1m") not in alerts
    assert ("rate_limited", "warning", None, None) in events(conn)
