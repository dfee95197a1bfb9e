"""Helpers of the trader-worker tests: jobs as real rows, real worker processes.

Jobs are plain INSERTs in the scheduler's format. Worker processes are `traderctl worker`
subprocesses; :class:`WorkerProcs` fails the test if any of them is left running. Users,
traders and market data come from :mod:`tests.factories`.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from traderctl.worker.queue.contract import (
    ARG_SLOT,
    ARG_TRADER_ID,
    TRADER_TASK,
    trader_lock,
    trader_queue,
)
from traderctl.worker.runner.lifeline import PARENT_DEATH_SIGNAL

ROOT = Path(__file__).resolve().parents[1]
TRADERCTL = ROOT / ".venv" / "bin" / "traderctl"


#: Fast settings for worker subprocesses (short heartbeats, quick recovery).
FAST_ENV = {
    "TRADERCTL_WORKER_HEARTBEAT_SECONDS": "1",
    "TRADERCTL_WORKER_STALLED_SECONDS": "3",
    "TRADERCTL_WORKER_RECOVERY_SECONDS": "1",
    "TRADERCTL_WORKER_POLL_MS": "200",
    "TRADERCTL_WORKER_DATA_WAIT_MS": "500",
    "TRADERCTL_WORKER_RETRY_BASE_SECONDS": "1",
    "TRADERCTL_WORKER_SHUTDOWN_GRACE_SECONDS": "10",
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


# -- slow-filter fixtures of the crash and fault tests ---------------------------------------
SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"]
#: ~60 ms of CPU per symbol, then match: long enough to be killed mid-evaluation, and a
#: batch of 4 (SLOW_ENV) takes about a second.
SLOW_MATCH = "const t = Date.now(); while (Date.now() - t < 60) {} return true;"
SLOW_ENV = {"TRADERCTL_FILTER_TIMEOUT_MS": "5000", "TRADERCTL_WORKER_BATCH_SIZE": "4"}
#: Workers keep finished jobs (as `succeeded`, with their attempts) instead of deleting them:
#: for the tests that check how many attempts a job took.
KEEP_JOBS = {"TRADERCTL_WORKER_FINISHED_JOBS": "keep"}


def base_slot() -> datetime:
    """An hour ago, on a minute: slots whose market data never needs waiting for."""
    return minute(datetime.now(UTC)) - timedelta(hours=1)


# -- jobs ---------------------------------------------------------------------------------
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
    """Insert a trader job in the queue contract's format (what backend.enqueue_trader_runs
    writes), optionally without its queueing lock to allow duplicates."""
    lock = trader_lock(trader)
    row = conn.execute(
        "insert into procrastinate.procrastinate_jobs"
        " (queue_name, task_name, priority, lock, queueing_lock, args, status)"
        " values (%s, %s, %s, %s, %s, %s, 'todo') returning id",
        (
            trader_queue(interval),
            TRADER_TASK,
            priority,
            lock,
            lock if queueing_lock else None,
            json.dumps({ARG_TRADER_ID: str(trader), ARG_SLOT: slot_text(slot)}),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def enqueue_raw(
    conn: psycopg.Connection[Any],
    args_json: str,
    *,
    task: str = TRADER_TASK,
    interval: str = "1m",
    priority: int = 3,
) -> int:
    """Insert a job with arbitrary (possibly malformed) args text and task name."""
    row = conn.execute(
        "insert into procrastinate.procrastinate_jobs"
        " (queue_name, task_name, priority, lock, args, status)"
        " values (%s, %s, %s, %s, %s::jsonb, 'todo') returning id",
        (trader_queue(interval), task, priority, f"poison:{uuid.uuid4()}", args_json),
    ).fetchone()
    assert row is not None
    return int(row[0])


def job_rows(conn: psycopg.Connection[Any], job_ids: Sequence[int]) -> dict[int, tuple[str, int]]:
    """(status, attempts) of each job."""
    rows = conn.execute(
        "select id, status::text, attempts from procrastinate.procrastinate_jobs"
        " where id = any(%s)",
        (list(job_ids),),
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie awaiting its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


#: The stops a long-running command must take gracefully: an operator's SIGTERM, and the
#: parent-death signal `traderctl up` gives its children, which the kernel may repeat for
#: one death (worker/runner/lifeline.py).
STOP_SIGNALS = pytest.mark.parametrize(
    "signals",
    [(signal.SIGTERM,), (PARENT_DEATH_SIGNAL,) * 3],
    ids=["sigterm", "parent-death-thrice"],
)


def stop_and_wait(proc: subprocess.Popen[str], signals: Sequence[int], timeout: float) -> str:
    """Send ``signals`` 50 ms apart, wait for the process to exit; its stderr."""
    for signum in signals:
        proc.send_signal(signum)
        time.sleep(0.05)
    _out, err = proc.communicate(timeout=timeout)
    return err


def job_statuses(conn: psycopg.Connection[Any]) -> dict[int, str]:
    rows = conn.execute("select id, status::text from procrastinate.procrastinate_jobs").fetchall()
    return {r[0]: r[1] for r in rows}


def trader_job_statuses(conn: psycopg.Connection[Any]) -> dict[int, str]:
    """Statuses of the jobs on trader queues (not the maintenance tasks' jobs)."""
    rows = conn.execute(
        "select id, status::text from procrastinate.procrastinate_jobs"
        " where queue_name like 'traders.%'"
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def trader_jobs_done(conn: psycopg.Connection[Any], job_ids: Sequence[int]) -> bool:
    """Every job finished: none is still waiting or running (a committed job is deleted,
    or kept as succeeded with KEEP_JOBS; a failed one stays failed)."""
    row = conn.execute(
        "select count(*) from procrastinate.procrastinate_jobs"
        " where id = any(%s) and status in ('todo', 'doing')",
        (list(job_ids),),
    ).fetchone()
    assert row is not None
    return int(row[0]) == 0


def signals_of(conn: psycopg.Connection[Any], trader: uuid.UUID) -> list[tuple[datetime, str]]:
    rows = conn.execute(
        "select slot, symbol from public.signals where trader_id = %s order by slot, id",
        (trader,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


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
