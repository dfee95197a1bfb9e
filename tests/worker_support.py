"""Helpers of the trader-worker tests: real rows in the real tables, real worker processes.

Market data is written exactly as the market-data worker writes it (tickers, klines as
JSON text, one market_snapshots row per interval whose version moves on each refresh);
jobs are plain INSERTs in the scheduler's format. Worker processes are `traderctl worker`
subprocesses; :class:`WorkerProcs` fails the test if any of them is left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from traderctl.worker.intervals import INTERVAL_MS

ROOT = Path(__file__).resolve().parents[1]
TRADERCTL = ROOT / ".venv" / "bin" / "traderctl"


#: Fast settings for worker subprocesses (short heartbeats, quick recovery).
FAST_ENV = {
    "TRADER_HEARTBEAT_SECONDS": "1",
    "TRADER_STALLED_SECONDS": "3",
    "TRADER_RECOVERY_SECONDS": "1",
    "TRADER_WORKER_POLL_MS": "200",
    "TRADER_DATA_WAIT_MS": "500",
    "TRADER_RETRY_BASE_SECONDS": "1",
    "TRADER_SHUTDOWN_GRACE_SECONDS": "10",
}


def minute(dt: datetime) -> datetime:
    return dt.replace(second=0, microsecond=0)


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, step: float = 0.1) -> Any:
    """Poll ``predicate`` until truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


# -- users, traders, jobs ---------------------------------------------------------------
def make_user(conn: psycopg.Connection[Any], tier: str | None = "elite") -> uuid.UUID:
    user = uuid.uuid4()
    conn.execute("insert into auth.users (id, email) values (%s, %s)", (user, f"{user}@test"))
    if tier is not None:
        conn.execute("insert into public.user_tiers (user_id, tier) values (%s, %s)", (user, tier))
    return user


def make_trader(
    conn: psycopg.Connection[Any],
    user: uuid.UUID,
    code: str,
    *,
    interval: str = "1m",
    required: Sequence[str] | None = None,
    enabled: bool = True,
    name: str = "t",
    first_run: bool = False,
) -> uuid.UUID:
    filt: dict[str, Any] = {"code": code, "refreshInterval": interval}
    if required is not None:
        filt["requiredTimeframes"] = list(required)
    with conn.transaction():
        if not first_run:
            # The immediate first-run trigger (issue 3) would enqueue a job of its own.
            conn.execute("set local traderctl.skip_first_run = 'on'")
        row = conn.execute(
            "insert into public.traders (user_id, name, enabled, filter) values (%s, %s, %s, %s)"
            " returning id",
            (user, name, enabled, json.dumps(filt)),
        ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def slot_text(slot: datetime) -> str:
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def enqueue(
    conn: psycopg.Connection[Any],
    trader: uuid.UUID,
    slot: datetime,
    *,
    interval: str = "1m",
    priority: int = 3,
    queueing_lock: bool = True,
) -> int:
    """Insert a run_trader job exactly as backend.schedule_due_traders does."""
    lock = f"trader:{trader}"
    row = conn.execute(
        "insert into procrastinate.procrastinate_jobs"
        " (queue_name, task_name, priority, lock, queueing_lock, args, status)"
        " values (%s, 'run_trader', %s, %s, %s, %s, 'todo') returning id",
        (
            f"traders.{interval}",
            priority,
            lock,
            lock if queueing_lock else None,
            json.dumps({"trader_id": str(trader), "slot": slot_text(slot)}),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def job_statuses(conn: psycopg.Connection[Any]) -> dict[int, str]:
    rows = conn.execute("select id, status::text from procrastinate.procrastinate_jobs").fetchall()
    return {r[0]: r[1] for r in rows}


def trader_jobs_done(conn: psycopg.Connection[Any], job_ids: Sequence[int]) -> bool:
    row = conn.execute(
        "select count(*) from procrastinate.procrastinate_jobs"
        " where id = any(%s) and status in ('succeeded', 'failed')",
        (list(job_ids),),
    ).fetchone()
    assert row is not None
    return int(row[0]) == len(job_ids)


def signals_of(conn: psycopg.Connection[Any], trader: uuid.UUID) -> list[tuple[datetime, str]]:
    rows = conn.execute(
        "select slot, symbol from public.signals where trader_id = %s order by slot, id",
        (trader,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


# -- market data ---------------------------------------------------------------------------
def klines(
    closes: Sequence[float], *, interval: str = "1m", end: datetime, volume: float = 10.0
) -> list[list[Any]]:
    """Binance kline arrays whose last element is the live candle opening at ``end``."""
    size = INTERVAL_MS[interval]
    end_ms = int(end.timestamp() * 1000)
    first = end_ms - size * (len(closes) - 1)
    rows: list[list[Any]] = []
    prev = closes[0]
    for i, close in enumerate(closes):
        open_time = first + i * size
        high = max(prev, close) * 1.001
        low = min(prev, close) * 0.999
        rows.append(
            [
                open_time,
                f"{prev:.8f}",
                f"{high:.8f}",
                f"{low:.8f}",
                f"{close:.8f}",
                f"{volume:.8f}",
                open_time + size - 1,
                f"{volume * close:.8f}",
                100,
                f"{volume / 2:.8f}",
                f"{volume * close / 2:.8f}",
                "0",
            ]
        )
        prev = close
    return rows


def ticker(symbol: str, price: float, quote_volume: float, change: float = 1.5) -> dict[str, Any]:
    return {
        "s": symbol,
        "c": f"{price:.8f}",
        "P": f"{change:.3f}",
        "q": f"{quote_volume:.2f}",
        "o": f"{price:.8f}",
        "h": f"{price * 1.01:.8f}",
        "l": f"{price * 0.99:.8f}",
        "v": "1000.0",
    }


def publish_market(
    conn: psycopg.Connection[Any],
    prices: Mapping[str, float],
    *,
    closed_through: datetime,
    intervals: Sequence[str] = ("1m",),
    candles: int = 40,
    stale_symbols: Sequence[str] = (),
    volumes: Mapping[str, float] | None = None,
) -> None:
    """One market-data refresh: every symbol's ticker and klines, and bumped versions.

    Symbols rank by quote volume (default: dict order = rank). The last close of each
    series is the symbol's price, so filters on the last close see ``prices``.
    """
    symbols = list(prices)
    vols = volumes or {s: 1e9 - i * 1e6 for i, s in enumerate(symbols)}
    with conn.transaction():
        conn.execute("delete from public.market_tickers")
        for rank, sym in enumerate(sorted(symbols, key=lambda s: -vols[s]), start=1):
            conn.execute(
                "insert into public.market_tickers (symbol, ticker, quote_volume, rank)"
                " values (%s, %s, %s, %s)",
                (sym, json.dumps(ticker(sym, prices[sym], vols[sym])), vols[sym], rank),
            )
        conn.execute(
            "insert into public.market_snapshots as m"
            " (interval, version, closed_through, refreshed_at, symbols)"
            " values ('ticker', 1, null, now(), %s)"
            " on conflict (interval) do update set version = m.version + 1,"
            " refreshed_at = now(), symbols = excluded.symbols",
            (len(symbols),),
        )
        for iv in intervals:
            epoch = int(closed_through.timestamp() * 1000)
            boundary = datetime.fromtimestamp(
                epoch // INTERVAL_MS[iv] * INTERVAL_MS[iv] / 1000, UTC
            )
            for sym in symbols:
                base = prices[sym]
                closes = [base * (1 + 0.001 * ((i % 7) - 3)) for i in range(candles - 1)] + [base]
                conn.execute(
                    "insert into public.market_klines as k"
                    " (symbol, interval, klines, closed_through, stale)"
                    " values (%s, %s, %s, %s, %s)"
                    " on conflict (symbol, interval) do update set klines = excluded.klines,"
                    " closed_through = excluded.closed_through, stale = excluded.stale,"
                    " updated_at = now()",
                    (
                        sym,
                        iv,
                        json.dumps(klines(closes, interval=iv, end=boundary)),
                        boundary,
                        sym in stale_symbols,
                    ),
                )
            conn.execute(
                "insert into public.market_snapshots as m"
                " (interval, version, closed_through, refreshed_at, symbols, stale_symbols)"
                " values (%s, 1, %s, now(), %s, %s)"
                " on conflict (interval) do update set version = m.version + 1,"
                " closed_through = excluded.closed_through, refreshed_at = now(),"
                " symbols = excluded.symbols, stale_symbols = excluded.stale_symbols",
                (iv, boundary, len(symbols), len(stale_symbols)),
            )


# -- worker subprocesses -----------------------------------------------------------------
def _group_alive(pgid: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)


class WorkerProcs:
    """Start `traderctl worker` subprocesses; stop (and check) them all at the end."""

    def __init__(self, db_url: str, log_dir: Path) -> None:
        self.db_url = db_url
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def start(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        wait_ready: bool = True,
    ) -> subprocess.Popen[bytes]:
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TRADER") and k != "DATABASE_URL"
        }
        full_env |= {"DATABASE_URL": self.db_url, **FAST_ENV, **(env or {})}
        log = self.log_dir / f"worker-{len(self.procs)}.log"
        with log.open("wb") as handle:
            proc = subprocess.Popen(
                [str(TRADERCTL), "worker", *args],
                env=full_env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        self.logs[proc.pid] = log
        if wait_ready:
            wait_until(lambda: "ready: id" in self.log(proc) or proc.poll() is not None, 30)
            assert proc.poll() is None, f"worker exited early:\n{self.log(proc)}"
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return self.logs[proc.pid].read_text(errors="replace")

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise AssertionError(f"worker {proc.pid} ignored SIGTERM:\n{self.log(proc)}") from None

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)

    def close(self) -> list[int]:
        """Stop everything still running; return the pids that had been left running."""
        leftover = [p.pid for p in self.procs if p.poll() is None]
        for proc in self.procs:
            if proc.poll() is None:
                with_group = True
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    with_group = False
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    if with_group:
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        # Children of pools share the session; make sure none survived (multiprocessing's
        # helper processes exit on their own once the parent is gone: give them a moment).
        for proc in self.procs:
            if not _group_alive(proc.pid, wait=5.0):
                continue
            leftover.append(proc.pid)
            os.killpg(proc.pid, signal.SIGKILL)
        return leftover


@contextmanager
def worker_procs(db_url: str, log_dir: Path) -> Iterator[WorkerProcs]:
    """WorkerProcs that fails the test when a worker is still running at the end."""
    procs = WorkerProcs(db_url, log_dir)
    try:
        yield procs
    finally:
        leftover = procs.close()
    assert not leftover, f"test left worker processes running: {leftover}"
