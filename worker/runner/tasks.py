"""The procrastinate tasks: run_trader, and the periodic maintenance tasks.

``run_trader(trader_id, slot)`` is the scheduler's job format. The default worker
(``traderctl worker``, worker/worker_process.py) claims these jobs in batches and runs
them through the same :class:`~worker.trader_run.TraderRunner`; procrastinate's own
worker (``traderctl worker --engine procrastinate``) runs this task one job at a time.
Either way, a filter error is recorded on the run and the trader and the job succeeds;
infrastructure errors (database, missing snapshot) raise and are retried with backoff.

The maintenance tasks are periodic (cron from the settings) on ``traderctl.maintenance``;
every ``traderctl worker`` process runs a small procrastinate worker for that queue.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

import procrastinate
import psycopg
from procrastinate import JobContext, RetryStrategy

from traderctl.worker.config import Settings
from traderctl.worker.db import connect
from traderctl.worker.errors import DatabaseUnreachable, SnapshotMissing, WorkerOptionsError
from traderctl.worker.queue.connector import make_connector
from traderctl.worker.queue.contract import MAINTENANCE_QUEUE, TRADER_QUEUE_PREFIX, TRADER_TASK
from traderctl.worker.runner.maintenance import prune_history_async, recover_stalled_async
from traderctl.worker.runner.trader_run import TraderJob, TraderRunner

__all__ = [
    "TaskHost",
    "make_app",
    "prune_history",
    "recover_stalled_jobs",
    "register",
    "run_trader",
    "seconds_cron",
]

logger = logging.getLogger(__name__)

#: additional_context keys the worker passes to tasks.
SETTINGS_KEY = "settings"
HOST_KEY = "trader_host"


class TaskHost:
    """One runtime, runner and database connection shared by run_trader task threads.

    procrastinate runs sync tasks on pool threads; V8 work is serialized by the runner's
    lock (see docs/worker.md: one isolate per process, processes for parallelism).
    """

    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self._lock = threading.Lock()
        self._runner: TraderRunner | None = None
        self._conn: psycopg.Connection[Any] | None = None

    def _ensure(self) -> tuple[TraderRunner, psycopg.Connection[Any]]:
        if self._runner is None:
            from traderctl.worker.sandbox.runtime import (
                FilterRuntime,  # created here: a thread without a loop
            )

            name = f"{socket.gethostname()}:{os.getpid()}:procrastinate"
            self._runner = TraderRunner(
                self.settings, FilterRuntime(self.settings), worker_name=name
            )
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.database_url)
        return self._runner, self._conn

    def run(self, job: TraderJob) -> dict[str, Any]:
        """Run one job (procrastinate finishes it afterwards)."""
        with self._lock:
            runner, conn = self._ensure()
            try:
                report = runner.process(conn, [job], worker_id=None)
            except psycopg.OperationalError:
                conn.close()
                raise
        return {
            "committed": report.committed,
            "duplicates": report.duplicates,
            "skipped": report.skipped,
            "signals": report.signals,
            "errors": report.errors,
        }

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def run_trader(context: JobContext, trader_id: str, slot: str) -> dict[str, Any]:
    """Run trader ``trader_id`` for ``slot`` and commit the run (idempotent per slot)."""
    host = context.additional_context.get(HOST_KEY)
    if not isinstance(host, TaskHost):
        raise WorkerOptionsError(
            "run_trader needs the worker's TaskHost in additional_context; "
            "run it with `traderctl worker --engine procrastinate`."
        )
    job = context.job
    assert job.id is not None
    trader_job = TraderJob.from_args(
        job_id=job.id,
        args={"trader_id": trader_id, "slot": slot},
        queue_name=job.queue,
        attempts=job.attempts,
        priority=job.priority,
    )
    return host.run(trader_job)


def _settings(context: JobContext) -> Settings:
    settings = context.additional_context.get(SETTINGS_KEY)
    return settings if isinstance(settings, Settings) else Settings()


async def recover_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Requeue the jobs of workers whose heartbeat stopped (periodic)."""
    rows = await recover_stalled_async(context.app.connector, _settings(context))  # type: ignore[arg-type]
    return len(rows)


async def prune_history(context: JobContext, timestamp: int) -> dict[str, int]:
    """Delete finished jobs, runs and signals older than the retention ages (periodic)."""
    counts = await prune_history_async(context.app.connector, _settings(context))  # type: ignore[arg-type]
    return {"jobs": counts.jobs, "runs": counts.runs, "signals": counts.signals}


def seconds_cron(seconds: int) -> str:
    """A procrastinate cron (6th field = seconds) firing every ``seconds`` seconds."""
    if seconds < 60:
        return f"* * * * * */{seconds}"
    minutes = max(1, seconds // 60)
    return f"*/{minutes} * * * *"


def register(app: procrastinate.App, settings: Settings) -> None:
    """Register every task on ``app`` (crons from ``settings``)."""
    app.task(
        name=TRADER_TASK,
        pass_context=True,
        queue=f"{TRADER_QUEUE_PREFIX}1m",
        retry=RetryStrategy(
            max_attempts=max(0, settings.job_max_attempts - 1),
            exponential_wait=max(1, settings.retry_base_seconds),
            retry_exceptions={SnapshotMissing, DatabaseUnreachable, psycopg.OperationalError},
        ),
    )(run_trader)
    recover = app.task(name="recover_stalled_jobs", pass_context=True, queue=MAINTENANCE_QUEUE)(
        recover_stalled_jobs
    )
    app.periodic(cron=seconds_cron(settings.recovery_seconds))(recover)
    prune = app.task(name="prune_history", pass_context=True, queue=MAINTENANCE_QUEUE)(
        prune_history
    )
    app.periodic(cron=settings.retention_cron)(prune)


def make_app(settings: Settings, database_url: str, *, max_pool: int = 4) -> procrastinate.App:
    """The App with every task of this module registered, crons from ``settings``."""
    app = procrastinate.App(
        connector=make_connector(database_url, max_size=max_pool),
        periodic_defaults={"max_delay": 600},
    )
    register(app, settings)
    return app
