"""The periodic throughput log line of a worker process (also a hook for benchmarks)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from traderctl.worker.runner.report import BatchReport

__all__ = ["THROUGHPUT_LOG_SECONDS", "Throughput"]

logger = logging.getLogger("traderctl.worker")

#: How often the throughput line is logged (seconds) while jobs are being processed.
THROUGHPUT_LOG_SECONDS = 10.0


@dataclass(kw_only=True)
class Throughput:
    """Counters behind the periodic throughput log line."""

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
