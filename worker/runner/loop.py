"""One worker process's claim → evaluate → commit loop.

One worker process = one V8 isolate (:class:`traderctl.worker.sandbox.runtime.FilterRuntime`)
+ one snapshot cache, used by the process's main thread only (mini-racer refuses eval
timeouts on a thread with a running asyncio loop, and one isolate runs one script at a
time anyway). The main thread claims a batch of due jobs (one round trip), runs it
(:class:`~traderctl.worker.runner.batch.TraderRunner`), and commits runs and job status in
one transaction; when the queue is empty it sleeps on LISTEN until a job is inserted.
Beside it run the heartbeat (:mod:`~traderctl.worker.runner.heartbeat`) and maintenance
(:mod:`~traderctl.worker.runner.maintenance_worker`) threads.

Database errors make the loop reconnect with capped exponential backoff (no crash loop);
jobs held during the outage are released once the database is back, or recovered as
stalled.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import psycopg

from traderctl.worker import signal_safe
from traderctl.worker.backoff import Backoff
from traderctl.worker.config import Settings
from traderctl.worker.db import SessionLimits, connect
from traderctl.worker.errors import (
    DatabaseUnreachable,
    InvalidJob,
    SnapshotMissing,
    WorkerOptionsError,
)
from traderctl.worker.queue import manager
from traderctl.worker.runner.batch import TraderRunner
from traderctl.worker.runner.heartbeat import Heartbeat, WorkerRegistration
from traderctl.worker.runner.held import HeldJobs
from traderctl.worker.runner.job import TraderJob
from traderctl.worker.runner.maintenance_worker import MaintenanceThread
from traderctl.worker.runner.options import WorkerOptions
from traderctl.worker.runner.shutdown import Shutdown
from traderctl.worker.runner.snapshot_cache import SnapshotCache
from traderctl.worker.runner.throughput import Throughput

__all__ = ["BatchWorker"]

logger = logging.getLogger("traderctl.worker")

#: Reconnect delays after a database error: 0.5 s, doubling up to 30 s.
RECONNECT_BACKOFF = Backoff(first=0.5, cap=30.0)
#: How long a forced exit waits for the maintenance worker's own graceful stop (a clean
#: shutdown waits 10 s, past procrastinate's 5 s for a task in progress).
_FORCED_MAINTENANCE_STOP_SECONDS = 2.0
_MAINTENANCE_STOP_SECONDS = 10.0
#: Errors after which the connection is suspect: reconnect. Statement and lock timeouts
#: are OperationalErrors; the idle-in-transaction timeout ends the session.
_DB_ERRORS = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.IdleInTransactionSessionTimeout,
    DatabaseUnreachable,
)


class BatchWorker:
    """One worker process's loop (see the module docstring)."""

    def __init__(self, settings: Settings, database_url: str, options: WorkerOptions) -> None:
        if settings.stalled_seconds <= settings.heartbeat_seconds:
            raise WorkerOptionsError(
                f"TRADERCTL_WORKER_STALLED_SECONDS ({settings.stalled_seconds}) must exceed "
                f"TRADERCTL_WORKER_HEARTBEAT_SECONDS ({settings.heartbeat_seconds}), or live workers "
                "would be taken for stalled; use at least 3x."
            )
        self.settings = settings
        self.database_url = database_url
        self.options = options
        self.queues = list(options.queues)
        self.name = options.name or f"{socket.gethostname()}:{os.getpid()}"
        self.limits = SessionLimits.from_settings(settings)
        self.registration = WorkerRegistration()
        self.shutdown = Shutdown(settings.shutdown_grace_seconds, self._give_back_fresh)
        self.held = HeldJobs(settings, lambda: self.registration.id)
        self._throughput = Throughput()
        self._heartbeat: Heartbeat | None = None
        self._maintenance: MaintenanceThread | None = None
        self._reconnects = 0

    @property
    def worker_id(self) -> int | None:
        return self.registration.id

    def install_signal_handlers(self) -> None:
        self.shutdown.install_signal_handlers()

    # -- giving back through a fresh connection (shutdown paths) -----------------------
    def _give_back_fresh(self) -> None:
        self._release_held_fresh()
        self._unregister_fresh()
        self._stop_maintenance(_FORCED_MAINTENANCE_STOP_SECONDS)

    def _release_held_fresh(self) -> None:
        try:
            with connect(self.database_url, limits=self.limits) as conn:
                self.held.release(conn, count_attempt=False)
        except Exception as exc:
            logger.warning(
                "could not release held jobs (they will be recovered as stalled): %s", exc
            )

    def _unregister_fresh(self) -> None:
        if self.worker_id is None:
            return
        try:
            with connect(self.database_url, limits=self.limits) as conn:
                worker_id = self.registration.forget()
                if worker_id is not None:
                    manager.unregister_worker(conn, worker_id)
        except Exception as exc:
            logger.warning("could not unregister worker: %s", exc)

    def _stop_maintenance(self, timeout: float) -> None:
        """Stop the maintenance worker and make sure its row goes, on a clean shutdown and
        on a forced exit alike: left behind, it waited for stalled-worker recovery (30 s by
        default).

        procrastinate's graceful stop deletes the row; when a maintenance task keeps that
        stop beyond ``timeout``, the row is deleted here, and that task's job is requeued
        by recovery like any job whose worker is gone.
        """
        maintenance = self._maintenance
        if maintenance is None:
            return
        maintenance.stop(timeout=timeout)
        left = maintenance.registered_id
        if left is None:
            return
        try:
            with connect(self.database_url, limits=self.limits) as conn:
                manager.unregister_worker(conn, left)
        except Exception as exc:
            logger.warning("could not unregister the maintenance worker: %s", exc)

    def _start_threads(self) -> None:
        self._heartbeat = Heartbeat(
            self.database_url,
            every_seconds=self.settings.heartbeat_seconds,
            done=self.shutdown.done,
            stopping=self.shutdown.stop,
            registration=self.registration,
            limits=self.limits,
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
        try:
            while not self.shutdown.stop.is_set():
                try:
                    self._serve(runner)
                except _DB_ERRORS as exc:
                    cache.invalidate()
                    delay = RECONNECT_BACKOFF.delay(self._reconnects)
                    self._reconnects += 1
                    logger.warning(
                        "database unavailable (%s); reconnecting in %.1fs",
                        str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
                        delay,
                    )
                    signal_safe.wait(self.shutdown.stop, delay)
        finally:
            self._shutdown()
        return 0

    def _serve(self, runner: TraderRunner) -> None:
        with (
            connect(self.database_url, limits=self.limits) as conn,
            connect(self.database_url, limits=self.limits) as listener,
        ):
            if self.held:
                self.held.release(conn, count_attempt=False)
            self.registration.ensure(conn)
            manager.listen(listener, self.queues)
            logger.info(
                "worker %s ready: id %s, queues %s, batch size %d",
                self.name,
                self.worker_id,
                ",".join(self.queues),
                self.options.batch_size,
            )
            self._reconnects = 0
            poll = self.settings.worker_poll_ms / 1000
            stop = self.shutdown.stop
            while not stop.is_set():
                self._throughput.maybe_log(self.name)
                # Drop notifications that arrived while we were busy: we claim anyway.
                for _ in listener.notifies(timeout=0):
                    pass
                t0 = time.perf_counter()
                worker_id = self.registration.ensure(conn)
                try:
                    rows = manager.claim_jobs(conn, self.queues, worker_id, self.options.batch_size)
                except manager.WorkerPruned:
                    self.registration.renew(conn, worker_id)
                    continue
                claim_s = time.perf_counter() - t0
                if not rows:
                    for _ in listener.notifies(timeout=poll, stop_after=1):
                        pass
                    continue
                self._run_batch(conn, runner, rows, claim_s, worker_id)

    def _run_batch(
        self,
        conn: psycopg.Connection[Any],
        runner: TraderRunner,
        rows: list[dict[str, Any]],
        claim_s: float,
        worker_id: int,
    ) -> None:
        from traderctl.worker.runner import metrics as worker_metrics

        jobs: list[TraderJob] = []
        invalid: list[TraderJob] = []
        for row in rows:
            try:
                jobs.append(TraderJob.from_row(row))
            except InvalidJob as exc:
                # Alone: the rest of the batch runs and commits on this attempt.
                logger.error("%s", exc)
                invalid.append(TraderJob.unparsable(row))
        if invalid:
            self.held.fail(conn, invalid)
        if not jobs:
            return
        self.held.hold(jobs)
        try:
            # The id the jobs were claimed under: if this worker is pruned and registered
            # again meanwhile, the commit finds them no longer held and writes nothing.
            report = runner.process(conn, jobs, worker_id=worker_id, stop=self.shutdown.stop)
        except SnapshotMissing as exc:
            self.held.retry_later(conn, exc)
            return
        except _DB_ERRORS:
            raise
        except Exception as exc:
            # A database-side error (bad data, a bug) or one in our code: the jobs are
            # retried with backoff and end failed; the worker itself carries on.
            logger.exception("batch of %d job(s) failed", len(jobs))
            self.held.retry_later(conn, exc)
            return
        if report.not_held:
            logger.warning(
                "%d job(s) of the batch were taken over while this worker was paused; "
                "their results were dropped, not committed",
                report.not_held,
            )
        self.held.hold(report.retry_jobs)
        if report.retry_jobs:
            self.held.retry_later(conn, SnapshotMissing(report.retry_reason))
        self._throughput.add(report, claim_s * 1000)
        worker_metrics.observe_batch(report, claim_s)

    def _shutdown(self) -> None:
        if self.held:
            self._release_held_fresh()
        self._unregister_fresh()
        self.shutdown.done.set()
        self._stop_maintenance(_MAINTENANCE_STOP_SECONDS)
        if self._heartbeat is not None:
            self._heartbeat.join(5)
        self._throughput.maybe_log(self.name, force=True)
        logger.info("worker %s stopped after %d jobs", self.name, self._throughput.total_jobs)
