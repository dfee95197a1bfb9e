"""Running a batch of claimed trader jobs: load, wait for data, evaluate, commit.

:class:`TraderRunner` is what the batch loop (:mod:`traderctl.worker.runner.loop`) hands
each claimed batch to:

1. one query loads every trader of the batch (:mod:`~traderctl.worker.runner.spec`);
2. the snapshot cache makes the runtime hold the current market data, waiting a little
   for a candle the slot needs (:mod:`~traderctl.worker.runner.freshness`);
3. each trader is evaluated (:mod:`~traderctl.worker.runner.evaluate`);
4. runs, signals, match state and job status are committed in one transaction
   (:mod:`~traderctl.worker.runner.commit`).

Infrastructure failures (database, snapshot never published) raise, and the caller
requeues the jobs with backoff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from traderctl.worker.config import Settings
from traderctl.worker.runner.commit import commit_batch, run_record
from traderctl.worker.runner.evaluate import FilterRuntimeLike, run_all
from traderctl.worker.runner.freshness import (
    TIMEFRAME_UNAVAILABLE,
    lags,
    split_unpublished,
    wait_for_data,
)
from traderctl.worker.runner.job import TraderJob
from traderctl.worker.runner.report import BatchReport
from traderctl.worker.runner.snapshot_cache import SnapshotCache
from traderctl.worker.runner.spec import load_specs

__all__ = ["TraderRunner"]


class TraderRunner:
    """Evaluates and commits batches of trader jobs with one runtime and its cache.

    One runner per V8 runtime; calls are serialized by an internal lock, because the
    runtime and the snapshot cache belong to one thread at a time.
    """

    def __init__(
        self,
        settings: Settings,
        runtime: FilterRuntimeLike,
        *,
        worker_name: str,
        cache: SnapshotCache | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.worker_name = worker_name
        self.cache = cache or SnapshotCache(runtime)
        self.lock = threading.Lock()

    def process(
        self,
        conn: psycopg.Connection[Any],
        jobs: Sequence[TraderJob],
        *,
        worker_id: int,
        stop: threading.Event | None = None,
    ) -> BatchReport:
        """Run ``jobs`` and commit them; the jobs still held by ``worker_id`` are finished
        in the same statement.

        Raises on infrastructure errors (psycopg errors, SnapshotMissing) without having
        written anything: the caller requeues the jobs.
        """
        with self.lock:
            return self._process(conn, jobs, worker_id=worker_id, stop=stop)

    def _process(
        self,
        conn: psycopg.Connection[Any],
        jobs: Sequence[TraderJob],
        *,
        worker_id: int,
        stop: threading.Event | None,
    ) -> BatchReport:
        report = BatchReport(jobs=len(jobs))
        t0 = time.perf_counter()
        specs = load_specs(conn, jobs)
        runnable = [s for s in specs if s.runnable]
        report.duplicates = sum(1 for s in specs if s.already_run)
        report.skipped = len(specs) - len(runnable) - report.duplicates
        report.load_ms = (time.perf_counter() - t0) * 1000

        records: list[dict[str, Any]] = []
        published = self.cache.poll_versions(conn) if runnable else {}
        runnable, unavailable = split_unpublished(published, runnable, report)
        if unavailable:
            now = datetime.now(UTC).isoformat()
            unknown = (None, 0.0)
            records += [
                run_record(
                    spec, (None, TIMEFRAME_UNAVAILABLE, why), unknown, now, self.cache, report
                )
                for spec, why in unavailable
            ]
        if runnable:
            t1 = time.perf_counter()
            states = wait_for_data(
                conn,
                self.cache,
                runnable,
                wait_ms=self.settings.data_wait_ms,
                stop=stop,
                published=published,
            )
            t2 = time.perf_counter()
            report.data_wait_ms = (t2 - t1) * 1000
            started_at = datetime.now(UTC).isoformat()
            outcomes = run_all(self.runtime, self.cache, runnable)
            records += [
                run_record(spec, outcome, freshness, started_at, self.cache, report)
                for spec, outcome, freshness in zip(
                    runnable, outcomes, lags(runnable, states), strict=True
                )
            ]
            report.eval_ms = (time.perf_counter() - t2) * 1000

        t3 = time.perf_counter()
        commit_batch(
            conn,
            jobs,
            records,
            report,
            worker=f"{self.worker_name}#{worker_id}",
            worker_id=worker_id,
            disable_after=self.settings.auto_disable_errors,
            delete_jobs=self.settings.finished_jobs == "delete",
        )
        report.commit_ms = (time.perf_counter() - t3) * 1000
        return report
