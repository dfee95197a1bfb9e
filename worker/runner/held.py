"""The jobs a worker process holds (claimed, not yet committed), and giving them back.

Held jobs are released when the worker stops before finishing them, requeued with backoff
after an infrastructure error (counting an attempt, so they end ``failed`` after
``TRADERCTL_WORKER_JOB_MAX_ATTEMPTS``), or marked failed at once when their args do not parse.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from traderctl.worker.backoff import Backoff
from traderctl.worker.config import Settings
from traderctl.worker.queue import manager
from traderctl.worker.runner.job import TraderJob

__all__ = ["HeldJobs", "retry_delay"]

logger = logging.getLogger("traderctl.worker")

#: Longest wait before retrying a job that failed for infrastructure reasons.
RETRY_CAP_SECONDS = 300.0


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """Backoff before the next attempt of a job that failed for infrastructure reasons."""
    policy = Backoff(first=float(settings.retry_base_seconds), cap=RETRY_CAP_SECONDS)
    return timedelta(seconds=policy.delay(attempts))


class HeldJobs:
    """The jobs of the batch in flight, shared with the signal and watchdog threads."""

    def __init__(self, settings: Settings, worker_id: Callable[[], int | None]) -> None:
        self.settings = settings
        self._worker_id = worker_id
        self._jobs: list[TraderJob] = []
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def hold(self, jobs: Sequence[TraderJob]) -> None:
        """These jobs are now the ones in flight."""
        with self._lock:
            self._jobs = list(jobs)

    def release(
        self,
        conn: psycopg.Connection[Any],
        *,
        count_attempt: bool,
        retry_at: datetime | None = None,
        max_attempts: int | None = None,
    ) -> None:
        """Give every held job back to the queue (or fail it, see the module docstring)."""
        with self._lock:
            held, self._jobs = self._jobs, []
        worker_id = self._worker_id()
        if not held or worker_id is None:
            return
        rows = manager.release_jobs(
            conn,
            [j.job_id for j in held],
            worker_id,
            count_attempt=count_attempt,
            retry_at=retry_at,
            max_attempts=max_attempts,
        )
        outcomes: dict[str, int] = {}
        for _, outcome in rows:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        logger.info("released %d job(s): %s", len(held), outcomes or "none still held")

    def retry_later(self, conn: psycopg.Connection[Any], reason: Exception) -> None:
        """Requeue the held jobs with backoff after an infrastructure error."""
        with self._lock:
            held = list(self._jobs)
        attempts = max((j.attempts for j in held), default=0)
        delay = retry_delay(self.settings, attempts)
        logger.warning(
            "%d job(s) will be retried in %ss: %s", len(held), int(delay.total_seconds()), reason
        )
        self.release(
            conn,
            count_attempt=True,
            retry_at=datetime.now(UTC) + delay,
            max_attempts=self.settings.job_max_attempts,
        )

    def fail(self, conn: psycopg.Connection[Any], jobs: Sequence[TraderJob]) -> None:
        """Mark ``jobs`` failed without retrying them (malformed: see
        :mod:`~traderctl.worker.runner.job`). Only these: the held batch is untouched."""
        worker_id = self._worker_id()
        if not jobs or worker_id is None:
            return
        rows = manager.release_jobs(
            conn, [j.job_id for j in jobs], worker_id, count_attempt=True, max_attempts=1
        )
        logger.info("failed %d malformed job(s): %s", len(jobs), dict(rows) or "none still held")
