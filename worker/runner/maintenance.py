"""Stalled-job recovery and retention: the queue maintenance procrastinate leaves to us.

procrastinate records worker heartbeats and can list the jobs of workers that stopped
sending them, but it never reruns those jobs. :func:`recover_stalled` does: it deletes
workers whose heartbeat is older than ``TRADERCTL_WORKER_STALLED_SECONDS`` and requeues every
``doing`` job left without a live worker (counting an attempt, so a job that kills its
worker each time ends ``failed`` after ``TRADERCTL_WORKER_JOB_MAX_ATTEMPTS``). It is idempotent
and safe to run from several workers at once (SKIP LOCKED).

:func:`prune_history` deletes finished jobs, old runs and old signals after the
configured ages, in batches, so the tables stay bounded.

Both run as procrastinate periodic tasks on the ``traderctl.maintenance`` queue (see
:mod:`traderctl.worker.runner.tasks`); the sync variants serve the CLI and tests. The
statements themselves are in :mod:`traderctl.worker.queue.manager`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from procrastinate.connector import BaseAsyncConnector

from traderctl.worker.config import Settings
from traderctl.worker.queue import manager

__all__ = [
    "PRUNE_BATCH",
    "PruneCounts",
    "prune_history",
    "prune_history_async",
    "recover_stalled",
    "recover_stalled_async",
]

logger = logging.getLogger(__name__)

#: Rows deleted per table per transaction by the retention job.
PRUNE_BATCH = 5000
#: Upper bound of batches per retention run, so one run cannot hold a worker forever.
_MAX_PRUNE_ROUNDS = 200


@dataclass(frozen=True, kw_only=True)
class PruneCounts:
    """Rows deleted by one retention run."""

    jobs: int = 0
    runs: int = 0
    signals: int = 0
    #: Browser run reports (parity, docs/rollout.md), kept as long as runs.
    reports: int = 0

    def __add__(self, other: PruneCounts) -> PruneCounts:
        return PruneCounts(
            jobs=self.jobs + other.jobs,
            runs=self.runs + other.runs,
            signals=self.signals + other.signals,
            reports=self.reports + other.reports,
        )

    @property
    def total(self) -> int:
        return self.jobs + self.runs + self.signals + self.reports


def _prune_params(settings: Settings) -> dict[str, Any]:
    return {
        "jobs_hours": settings.retention_jobs_hours,
        "runs_hours": settings.retention_runs_hours,
        "signals_hours": settings.retention_signals_hours,
        "batch": PRUNE_BATCH,
    }


def _log_recovered(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        logger.warning(
            "recovered stalled job %s on %s: %s", row["job_id"], row["queue_name"], row["outcome"]
        )


def recover_stalled(conn: psycopg.Connection[Any], settings: Settings) -> list[dict[str, Any]]:
    """Requeue jobs of dead workers (sync; autocommit connection). Returns what it did."""
    rows = manager.recover_stalled(
        conn, stalled_seconds=settings.stalled_seconds, max_attempts=settings.job_max_attempts
    )
    _log_recovered(rows)
    return rows


async def recover_stalled_async(
    connector: BaseAsyncConnector, settings: Settings
) -> list[dict[str, Any]]:
    """:func:`recover_stalled` through procrastinate's async connector (the periodic task)."""
    rows = await manager.recover_stalled_async(
        connector, stalled_seconds=settings.stalled_seconds, max_attempts=settings.job_max_attempts
    )
    _log_recovered(rows)
    return rows


def prune_history(conn: psycopg.Connection[Any], settings: Settings) -> PruneCounts:
    """Delete old finished jobs, runs and signals, batch by batch (sync)."""
    total = PruneCounts()
    for _ in range(_MAX_PRUNE_ROUNDS):
        counts = PruneCounts(**manager.prune_batch(conn, _prune_params(settings)))
        total += counts
        if counts.total == 0:
            break
    return total


async def prune_history_async(connector: BaseAsyncConnector, settings: Settings) -> PruneCounts:
    """:func:`prune_history` through procrastinate's async connector (the periodic task)."""
    total = PruneCounts()
    for _ in range(_MAX_PRUNE_ROUNDS):
        counts = PruneCounts(**await manager.prune_batch_async(connector, _prune_params(settings)))
        total += counts
        if counts.total == 0:
            break
    if total.total:
        logger.info(
            "retention pruned %s jobs, %s runs, %s signals, %s browser reports",
            total.jobs,
            total.runs,
            total.signals,
            total.reports,
        )
    return total
