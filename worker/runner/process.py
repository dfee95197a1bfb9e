"""Worker processes: the batch claim loop, heartbeats, maintenance, signals, the pool.

One worker process = one V8 isolate (worker.sandbox.FilterRuntime) + one snapshot cache,
used by the process's main thread only (mini-racer refuses eval timeouts on a thread with
a running asyncio loop, and one isolate runs one script at a time anyway). Parallelism
comes from processes: ``--concurrency N`` starts N such processes and supervises them
(docs/worker.md has the measurements behind that choice). Threads of a process:

* main: claim a batch of due jobs (``backend.claim_trader_jobs``, one round trip), run
  them (:class:`worker.trader_run.TraderRunner`), commit runs + job status in one
  transaction; when the queue is empty, sleep on LISTEN until a job is inserted;
* heartbeat: refresh this worker's procrastinate_workers row every
  ``TRADER_HEARTBEAT_SECONDS`` (re-registering if another worker pruned it as stalled);
* maintenance: a procrastinate worker (asyncio) on ``traderctl.maintenance`` running the
  periodic stalled-job recovery and retention tasks.

Signals: SIGTERM/SIGINT stop claiming; the in-flight batch finishes (filters are bounded
by their CPU timeout) or, after ``TRADER_SHUTDOWN_GRACE_SECONDS``, its jobs are released
back to the queue and the process exits. A second signal releases at once. Database
errors make the loop reconnect with capped exponential backoff (no crash loop); jobs held
during the outage are released once the database is back, or recovered as stalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from traderctl.worker import queries
from traderctl.worker.config import Settings
from traderctl.worker.db import connect
from traderctl.worker.errors import (
    DatabaseUnreachable,
    InvalidJob,
    SnapshotMissing,
    WorkerOptionsError,
)
from traderctl.worker.intervals import INTERVALS
from traderctl.worker.queue.contract import MAINTENANCE_QUEUE, TRADER_QUEUE_PREFIX
from traderctl.worker.runner.snapshot_cache import SnapshotCache
from traderctl.worker.runner.tasks import HOST_KEY, SETTINGS_KEY, TaskHost, make_app
from traderctl.worker.runner.trader_run import BatchReport, TraderJob, TraderRunner, retry_delay

__all__ = [
    "BatchWorker",
    "WorkerOptions",
    "exit_now",
    "queues_for",
    "run_worker",
]

logger = logging.getLogger("traderctl.worker")

#: How often the throughput line is logged (seconds) while jobs are being processed.
THROUGHPUT_LOG_SECONDS = 10.0
_MAX_BACKOFF_SECONDS = 30.0
_DB_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, DatabaseUnreachable)


def queues_for(intervals: Sequence[str] | None, queues: Sequence[str] | None) -> list[str]:
    """The trader queues to serve: ``traders.<interval>`` per interval, or the queues given,
    or every interval's queue when neither is given."""
    if intervals and queues:
        raise WorkerOptionsError("use either --intervals or --queues, not both")
    if queues:
        return list(dict.fromkeys(q.strip() for q in queues if q.strip()))
    if intervals:
        unknown = [iv for iv in intervals if iv not in INTERVALS]
        if unknown:
            raise WorkerOptionsError(
                f"unknown interval(s) {', '.join(unknown)}; use {', '.join(INTERVALS)}"
            )
        return [TRADER_QUEUE_PREFIX + iv for iv in dict.fromkeys(intervals)]
    return [TRADER_QUEUE_PREFIX + iv for iv in INTERVALS]


@dataclass(frozen=True, kw_only=True)
class WorkerOptions:
    """What `traderctl worker` was asked to do."""

    queues: tuple[str, ...]
    concurrency: int = 1
    engine: str = "batch"
    batch_size: int = 32
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    maintenance: bool = True
    name: str | None = None


class _Backoff:
    def __init__(self, first: float = 0.5, cap: float = _MAX_BACKOFF_SECONDS) -> None:
        self.first = first
        self.cap = cap
        self.current = first

    def next(self) -> float:
        value = self.current
        self.current = min(self.cap, self.current * 2)
        return value

    def reset(self) -> None:
        self.current = self.first


@dataclass(kw_only=True)
class _Throughput:
    """Counters behind the periodic throughput log line (a hook for benchmarks)."""

    started: float = field(default_factory=time.monotonic)
    window_start: float = field(default_factory=time.monotonic)
    jobs: int = 0
    batches: int = 0
    ok: int = 0
    errors: int = 0
    duplicates: int = 0
    skipped: int = 0
    signals: int = 0
    claim_ms: float = 0.0
    load_ms: float = 0.0
    eval_ms: float = 0.0
    commit_ms: float = 0.0
    total_jobs: int = 0

    def add(self, report: BatchReport, claim_ms: float) -> None:
        self.jobs += report.jobs
        self.total_jobs += report.jobs
        self.batches += 1
        self.ok += report.ok
        self.errors += report.errors
        self.duplicates += report.duplicates
        self.skipped += report.skipped
        self.signals += report.signals
        self.claim_ms += claim_ms
        self.load_ms += report.load_ms
        self.eval_ms += report.eval_ms
        self.commit_ms += report.commit_ms

    def maybe_log(self, name: str, *, force: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self.window_start
        if not self.jobs or (elapsed < THROUGHPUT_LOG_SECONDS and not force):
            return
        b = max(1, self.batches)
        logger.info(
            "throughput %s: %d jobs in %.1fs = %.1f jobs/s (ok %d, error %d, duplicate %d, "
            "skipped %d, signals %d); %d batches of %.1f; per batch ms: claim %.1f load %.1f "
            "eval %.1f commit %.1f",
            name,
            self.jobs,
            elapsed,
            self.jobs / elapsed if elapsed > 0 else 0.0,
            self.ok,
            self.errors,
            self.duplicates,
            self.skipped,
            self.signals,
            self.batches,
            self.jobs / b,
            self.claim_ms / b,
            self.load_ms / b,
            self.eval_ms / b,
            self.commit_ms / b,
        )
        total = self.total_jobs
        started = self.started
        self.__init__()  # type: ignore[misc]
        self.total_jobs = total
        self.started = started


class MaintenanceThread(threading.Thread):
    """A procrastinate worker on the maintenance queue (periodic recovery and retention),
    on its own asyncio loop; restarted with backoff when the database goes away."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        super().__init__(name="maintenance", daemon=True)
        self.settings = settings
        self.database_url = database_url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        backoff = _Backoff(first=1.0)
        while not self._stopping.is_set():
            app = make_app(self.settings, self.database_url, max_pool=2)
            started = time.monotonic()
            try:
                async with app.open_async():
                    await app.run_worker_async(
                        queues=[MAINTENANCE_QUEUE],
                        name="maintenance",
                        concurrency=1,
                        install_signal_handlers=False,
                        update_heartbeat_interval=float(self.settings.heartbeat_seconds),
                        stalled_worker_timeout=float(self.settings.stalled_seconds),
                        shutdown_graceful_timeout=5.0,
                        additional_context={SETTINGS_KEY: self.settings},
                    )
            except asyncio.CancelledError:
                return
            except Exception as exc:
                logger.warning("maintenance worker stopped: %s", exc)
            if time.monotonic() - started > 60:
                backoff.reset()
            if self._stopping.is_set():
                return
            delay = backoff.next()
            logger.info("maintenance worker restarting in %.1fs", delay)
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                return

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        self.join(timeout)


class BatchWorker:
    """One worker process's claim → evaluate → commit loop (see the module docstring)."""

    def __init__(self, settings: Settings, database_url: str, options: WorkerOptions) -> None:
        if settings.stalled_seconds <= settings.heartbeat_seconds:
            raise WorkerOptionsError(
                f"TRADER_STALLED_SECONDS ({settings.stalled_seconds}) must exceed "
                f"TRADER_HEARTBEAT_SECONDS ({settings.heartbeat_seconds}), or live workers "
                "would be taken for stalled; use at least 3x."
            )
        self.settings = settings
        self.database_url = database_url
        self.options = options
        self.queues = list(options.queues)
        self.name = options.name or f"{socket.gethostname()}:{os.getpid()}"
        self.worker_id: int | None = None
        self.stop_event = threading.Event()
        self._done = threading.Event()
        self._held: list[TraderJob] = []
        self._held_lock = threading.Lock()
        self._signals = 0
        self._throughput = _Throughput()
        self._heartbeat: threading.Thread | None = None
        self._maintenance: MaintenanceThread | None = None

    # -- signals and shutdown ----------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            logger.info(
                "received %s: finishing in-flight jobs (grace %ss)",
                signal.Signals(signum).name,
                self.settings.shutdown_grace_seconds,
            )
            self.request_stop()
        else:
            logger.warning("second signal: releasing in-flight jobs now")
            self._force_exit()

    def request_stop(self) -> None:
        """Stop claiming; the in-flight batch gets the grace period to finish."""
        if self.stop_event.is_set():
            return
        self.stop_event.set()
        threading.Thread(target=self._grace_watchdog, name="grace", daemon=True).start()

    def _grace_watchdog(self) -> None:
        if self._done.wait(self.settings.shutdown_grace_seconds):
            return
        logger.warning(
            "in-flight jobs did not finish within %ss; releasing them",
            self.settings.shutdown_grace_seconds,
        )
        self._force_exit()

    def _force_exit(self) -> None:
        self._release_held_fresh()
        self._unregister_fresh()
        logging.shutdown()
        os._exit(1)  # the evaluating thread cannot be interrupted; the process goes

    def _release_held_fresh(self) -> None:
        try:
            with connect(self.database_url) as conn:
                self._release_held(conn, count_attempt=False)
        except Exception as exc:
            logger.warning(
                "could not release held jobs (they will be recovered as stalled): %s", exc
            )

    def _unregister_fresh(self) -> None:
        if self.worker_id is None:
            return
        try:
            with connect(self.database_url) as conn:
                conn.execute(queries.get("unregister_worker"), {"worker_id": self.worker_id})
            self.worker_id = None
        except Exception as exc:
            logger.warning("could not unregister worker: %s", exc)

    # -- job bookkeeping ---------------------------------------------------------------
    def _release_held(
        self,
        conn: psycopg.Connection[Any],
        *,
        count_attempt: bool,
        retry_at: datetime | None = None,
        max_attempts: int | None = None,
    ) -> None:
        with self._held_lock:
            held, self._held = self._held, []
        if not held or self.worker_id is None:
            return
        rows = conn.execute(
            queries.get("release_trader_jobs"),
            {
                "job_ids": [j.job_id for j in held],
                "worker_id": self.worker_id,
                "retry_at": retry_at,
                "count_attempt": count_attempt,
                "max_attempts": max_attempts,
            },
        ).fetchall()
        outcomes: dict[str, int] = {}
        for _, outcome in rows:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        logger.info("released %d job(s): %s", len(held), outcomes or "none still held")

    def _retry_later(self, conn: psycopg.Connection[Any], reason: Exception) -> None:
        """Requeue the held jobs with backoff after an infrastructure error."""
        with self._held_lock:
            held = list(self._held)
        attempts = max((j.attempts for j in held), default=0)
        delay = retry_delay(self.settings, attempts)
        logger.warning(
            "%d job(s) will be retried in %ss: %s", len(held), int(delay.total_seconds()), reason
        )
        self._release_held(
            conn,
            count_attempt=True,
            retry_at=datetime.now(UTC) + delay,
            max_attempts=self.settings.job_max_attempts,
        )

    # -- threads -----------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while not self._done.wait(self.settings.heartbeat_seconds):
                worker_id = self.worker_id
                if worker_id is None:
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = connect(self.database_url)
                    row = conn.execute(
                        queries.get("worker_heartbeat"), {"worker_id": worker_id}
                    ).fetchone()
                    if row is None and not self.stop_event.is_set():
                        new_row = conn.execute(queries.get("register_worker")).fetchone()
                        assert new_row is not None
                        self.worker_id = int(new_row[0])
                        logger.warning(
                            "worker %s was pruned as stalled; registered again as %s",
                            worker_id,
                            self.worker_id,
                        )
                except (*_DB_ERRORS, psycopg.Error) as exc:
                    logger.debug("heartbeat failed: %s", exc)
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    def _start_threads(self) -> None:
        self._heartbeat = threading.Thread(
            target=self._heartbeat_loop, name="heartbeat", daemon=True
        )
        self._heartbeat.start()
        if self.options.maintenance:
            self._maintenance = MaintenanceThread(self.settings, self.database_url)
            self._maintenance.start()

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> int:
        """Serve the queues until stopped; returns the process exit code."""
        from traderctl.worker.runner import metrics as worker_metrics
        from traderctl.worker.sandbox.runtime import (
            FilterRuntime,  # created on this (loop-less) thread
        )

        runtime = FilterRuntime(self.settings)
        cache = SnapshotCache(runtime, on_load=worker_metrics.observe_snapshot_load)
        runner = TraderRunner(self.settings, runtime, worker_name=self.name, cache=cache)
        self._start_threads()
        backoff = _Backoff()
        try:
            while not self.stop_event.is_set():
                try:
                    self._serve(runner, backoff)
                except _DB_ERRORS as exc:
                    cache.invalidate()
                    delay = backoff.next()
                    logger.warning(
                        "database unavailable (%s); reconnecting in %.1fs",
                        str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
                        delay,
                    )
                    self.stop_event.wait(delay)
        finally:
            self._shutdown()
        return 0

    def _serve(self, runner: TraderRunner, backoff: _Backoff) -> None:
        with connect(self.database_url) as conn, connect(self.database_url) as listener:
            if self._held:
                self._release_held(conn, count_attempt=False)
            if self.worker_id is None:
                row = conn.execute(queries.get("register_worker")).fetchone()
                assert row is not None
                self.worker_id = int(row[0])
            for queue in self.queues:
                listener.execute(
                    sql.SQL(queries.get("listen_channel")).format(
                        channel=sql.Identifier(f"procrastinate_queue_v1#{queue}")
                    )
                )
            logger.info(
                "worker %s ready: id %s, queues %s, batch size %d",
                self.name,
                self.worker_id,
                ",".join(self.queues),
                self.options.batch_size,
            )
            backoff.reset()
            poll = self.settings.worker_poll_ms / 1000
            while not self.stop_event.is_set():
                self._throughput.maybe_log(self.name)
                # Drop notifications that arrived while we were busy: we claim anyway.
                for _ in listener.notifies(timeout=0):
                    pass
                t0 = time.perf_counter()
                rows = self._claim(conn)
                claim_s = time.perf_counter() - t0
                if not rows:
                    for _ in listener.notifies(timeout=poll, stop_after=1):
                        pass
                    continue
                self._run_batch(conn, runner, rows, claim_s)

    def _claim(self, conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
        params = {
            "queues": self.queues,
            "worker_id": self.worker_id,
            "limit": self.options.batch_size,
        }
        for _ in range(3):
            try:
                with conn.cursor(row_factory=dict_row) as cur:
                    return cur.execute(queries.get("claim_trader_jobs"), params).fetchall()
            except psycopg.errors.UniqueViolation:
                # Lost a race for a lock with another worker's claim: try again.
                continue
        return []

    def _run_batch(
        self,
        conn: psycopg.Connection[Any],
        runner: TraderRunner,
        rows: list[dict[str, Any]],
        claim_s: float,
    ) -> None:
        from traderctl.worker.runner import metrics as worker_metrics

        jobs: list[TraderJob] = []
        invalid: list[TraderJob] = []
        for row in rows:
            try:
                jobs.append(TraderJob.from_row(row))
            except InvalidJob as exc:
                logger.error("%s; marking it failed", exc)
                invalid.append(
                    TraderJob(
                        job_id=int(row["id"]),
                        trader_id="",
                        slot=datetime.now(UTC),
                        queue_name=str(row["queue_name"]),
                    )
                )
        if invalid:
            with self._held_lock:
                self._held = invalid
            self._release_held(conn, count_attempt=True, max_attempts=1)
        if not jobs:
            return
        with self._held_lock:
            self._held = list(jobs)
        try:
            report = runner.process(conn, jobs, worker_id=self.worker_id, stop=self.stop_event)
        except SnapshotMissing as exc:
            self._retry_later(conn, exc)
            return
        except _DB_ERRORS:
            raise
        except Exception as exc:
            # A database-side error (bad data, a bug) or one in our code: the jobs are
            # retried with backoff and end failed; the worker itself carries on.
            logger.exception("batch of %d job(s) failed", len(jobs))
            self._retry_later(conn, exc)
            return
        with self._held_lock:
            self._held = list(report.retry_jobs)
        if report.retry_jobs:
            self._retry_later(conn, SnapshotMissing(report.retry_reason))
        self._throughput.add(report, claim_s * 1000)
        worker_metrics.observe_batch(report, claim_s)

    def _shutdown(self) -> None:
        if self._held:
            self._release_held_fresh()
        self._unregister_fresh()
        self._done.set()
        if self._maintenance is not None:
            self._maintenance.stop()
        if self._heartbeat is not None:
            self._heartbeat.join(5)
        self._throughput.maybe_log(self.name, force=True)
        logger.info("worker %s stopped after %d jobs", self.name, self._throughput.total_jobs)


# -- procrastinate's own worker (for comparison and for plain procrastinate setups) -----
def _run_procrastinate_engine(settings: Settings, database_url: str, options: WorkerOptions) -> int:
    host = TaskHost(settings, database_url)
    stopping = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        assert current is not None

        def on_signal() -> None:
            stopping.set()
            current.cancel()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
        backoff = _Backoff(first=1.0)
        while not stopping.is_set():
            app = make_app(settings, database_url, max_pool=options.concurrency + 2)
            try:
                async with app.open_async():
                    await app.run_worker_async(
                        queues=[*options.queues, MAINTENANCE_QUEUE],
                        name=options.name or "trader-worker",
                        concurrency=options.concurrency,
                        install_signal_handlers=False,
                        update_heartbeat_interval=float(settings.heartbeat_seconds),
                        stalled_worker_timeout=float(settings.stalled_seconds),
                        shutdown_graceful_timeout=float(settings.shutdown_grace_seconds),
                        additional_context={SETTINGS_KEY: settings, HOST_KEY: host},
                    )
            except asyncio.CancelledError:
                return
            except Exception as exc:
                logger.warning("procrastinate worker stopped: %s", exc)
            if not stopping.is_set():
                delay = backoff.next()
                logger.info("restarting in %.1fs", delay)
                try:
                    await asyncio.sleep(delay)
                except asyncio.CancelledError:
                    return

    try:
        asyncio.run(main())
    finally:
        host.close()
    return 0


# -- processes ---------------------------------------------------------------------------
def _configure_child_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _child_main(settings: Settings, database_url: str, options: WorkerOptions, level: int) -> None:
    _configure_child_logging(level)
    if level > logging.DEBUG:
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    if options.metrics_port is not None:
        from traderctl.worker.runner import metrics as worker_metrics

        worker_metrics.serve(options.metrics_port, options.metrics_addr, database_url)
    worker = BatchWorker(settings, database_url, options)
    worker.install_signal_handlers()
    # Ctrl-C reaches the whole process group: let the parent turn it into one SIGTERM per
    # child, or the parent's SIGTERM would count as a second signal and skip the grace.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_now(worker.run())


def _run_pool(settings: Settings, database_url: str, options: WorkerOptions) -> int:
    """Start ``options.concurrency`` single worker processes and keep them running."""
    ctx = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    level = logging.getLogger().getEffectiveLevel()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def child_options(index: int) -> WorkerOptions:
        port = None if options.metrics_port is None else options.metrics_port + index
        base = options.name or f"{socket.gethostname()}:{os.getpid()}"
        return replace(options, concurrency=1, metrics_port=port, name=f"{base}/{index}")

    procs: dict[int, Any] = {}
    started: dict[int, float] = {}
    failures: dict[int, int] = {}
    next_start: dict[int, float] = {}

    def start(index: int) -> None:
        proc = ctx.Process(
            target=_child_main,
            args=(settings, database_url, child_options(index), level),
            name=f"traderctl-worker-{index}",
        )
        proc.start()
        procs[index] = proc
        started[index] = time.monotonic()
        logger.info("started worker process %d (pid %s)", index, proc.pid)

    for index in range(options.concurrency):
        failures[index] = 0
        start(index)
    while not stopping.wait(0.5):
        for index, proc in list(procs.items()):
            if proc.is_alive():
                continue
            now = time.monotonic()
            if index not in next_start:
                lived = now - started[index]
                failures[index] = 0 if lived > 60 else failures[index] + 1
                delay = min(60.0, 2.0 ** failures[index]) if failures[index] else 0.0
                logger.warning(
                    "worker process %d (pid %s) exited with %s after %.0fs; restarting in %.0fs",
                    index,
                    proc.pid,
                    proc.exitcode,
                    lived,
                    delay,
                )
                next_start[index] = now + delay
            if now >= next_start[index]:
                del next_start[index]
                start(index)
    logger.info("stopping %d worker process(es)", len(procs))
    for proc in procs.values():
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + settings.shutdown_grace_seconds + 10
    for proc in procs.values():
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs.values():
        if proc.is_alive():
            logger.warning("worker process pid %s did not stop; killing it", proc.pid)
            proc.kill()
            proc.join(5)
    return 0


def exit_now(code: int) -> None:
    """End the process after a clean shutdown without interpreter finalization.

    Everything is stopped, released and logged by now. mini-racer 0.14's V8 threads can
    hang interpreter finalization (seen here after evals with a timeout), and a worker
    that never exits turns a rolling restart into a stuck one; so flush and leave.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_worker(settings: Settings, database_url: str, options: WorkerOptions) -> int:
    """Entry point of `traderctl worker`: one process, a pool, or procrastinate's worker."""
    if options.concurrency < 1:
        raise WorkerOptionsError("--concurrency must be at least 1")
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # procrastinate logs every job at INFO (the maintenance tasks run every few
        # seconds); our own throughput line is the useful one.
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    if options.engine == "procrastinate":
        if options.metrics_port is not None:
            from traderctl.worker.runner import metrics as worker_metrics

            worker_metrics.serve(options.metrics_port, options.metrics_addr, database_url)
        return _run_procrastinate_engine(settings, database_url, options)
    if options.engine != "batch":
        raise WorkerOptionsError(f"unknown engine {options.engine!r}; use batch or procrastinate")
    if options.concurrency > 1:
        return _run_pool(settings, database_url, options)
    if options.metrics_port is not None:
        from traderctl.worker.runner import metrics as worker_metrics

        worker_metrics.serve(options.metrics_port, options.metrics_addr, database_url)
    worker = BatchWorker(settings, database_url, options)
    worker.install_signal_handlers()
    return worker.run()
