"""What one batch did, for logs, metrics and tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from traderctl.worker.runner.job import TraderJob

__all__ = ["BatchReport"]


@dataclass(kw_only=True)
class BatchReport:
    """Counts and timings of one batch (see :class:`~traderctl.worker.runner.batch.TraderRunner`)."""

    jobs: int = 0
    committed: int = 0
    ok: int = 0
    errors: int = 0
    duplicates: int = 0
    skipped: int = 0
    #: Jobs this worker no longer held at commit time (taken over after a long pause):
    #: nothing was written for them.
    not_held: int = 0
    signals: int = 0
    error_types: dict[str, int] = field(default_factory=dict)
    load_ms: float = 0.0
    data_wait_ms: float = 0.0
    eval_ms: float = 0.0
    commit_ms: float = 0.0
    run_durations_ms: list[float] = field(default_factory=list)
    stale_runs: int = 0
    #: Jobs not run because market data they need was never published: the caller
    #: requeues them with backoff (an infrastructure error, not the trader's).
    retry_jobs: list[TraderJob] = field(default_factory=list)
    retry_reason: str = ""
