"""Prometheus metrics of the trader worker (served with ``traderctl worker --metrics-port``).

The original design's dashboard: executions per minute (``traderctl_runs_total`` rate),
average execution time (``traderctl_run_duration_seconds``), queue depth
(``traderctl_queue_waiting_jobs``), failure rate (``traderctl_runs_total{status="error"}`` over
all; alert above 5 %), cache hit rate (``traderctl_snapshot_loads_total`` against
``traderctl_batches_total``: a batch that loads nothing was served from the cache).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from traderctl.worker.runner.report import BatchReport

__all__ = [
    "BATCHES",
    "FILTER_ERRORS",
    "JOBS",
    "PHASE_DURATION",
    "RUNS",
    "RUN_DURATION",
    "SIGNALS",
    "SNAPSHOT_LOADS",
    "SNAPSHOT_LOAD_SECONDS",
    "STALE_RUNS",
    "observe_batch",
    "observe_snapshot_load",
    "serve",
]

RUNS = Counter("traderctl_runs", "Trader runs committed, by status.", ["status"])
FILTER_ERRORS = Counter("traderctl_filter_errors", "Failed runs by error type.", ["type"])
JOBS = Counter("traderctl_jobs", "run_trader jobs handled, by outcome.", ["outcome"])
SIGNALS = Counter("traderctl_signals", "Signals written.")
BATCHES = Counter("traderctl_batches", "Batches claimed and processed.")
RUN_DURATION = Histogram(
    "traderctl_run_duration_seconds",
    "Filter evaluation time of one run (all symbols).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PHASE_DURATION = Histogram(
    "traderctl_batch_phase_seconds",
    "Time per batch phase (claim, load, data_wait, eval, commit).",
    ["phase"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)
SNAPSHOT_LOADS = Counter(
    "traderctl_snapshot_loads", "Market snapshot (re)loads into the runtime.", ["interval"]
)
SNAPSHOT_LOAD_SECONDS = Histogram(
    "traderctl_snapshot_load_seconds", "Time to load one interval into the runtime."
)
STALE_RUNS = Counter("traderctl_stale_runs", "Runs made on data behind the slot's candle.")


def observe_batch(report: BatchReport, claim_seconds: float) -> None:
    """Record one processed batch."""
    BATCHES.inc()
    RUNS.labels("ok").inc(report.ok)
    RUNS.labels("error").inc(report.errors)
    for kind, count in report.error_types.items():
        FILTER_ERRORS.labels(kind).inc(count)
    JOBS.labels("committed").inc(report.committed)
    JOBS.labels("duplicate").inc(report.duplicates)
    JOBS.labels("skipped").inc(report.skipped)
    SIGNALS.inc(report.signals)
    STALE_RUNS.inc(report.stale_runs)
    for ms in report.run_durations_ms:
        RUN_DURATION.observe(ms / 1000)
    PHASE_DURATION.labels("claim").observe(claim_seconds)
    PHASE_DURATION.labels("load").observe(report.load_ms / 1000)
    PHASE_DURATION.labels("data_wait").observe(report.data_wait_ms / 1000)
    PHASE_DURATION.labels("eval").observe(report.eval_ms / 1000)
    PHASE_DURATION.labels("commit").observe(report.commit_ms / 1000)


def observe_snapshot_load(interval: str, seconds: float) -> None:
    """Record one snapshot (re)load."""
    SNAPSHOT_LOADS.labels(interval).inc()
    SNAPSHOT_LOAD_SECONDS.observe(seconds)


def serve(port: int, addr: str, database_url: str) -> None:
    """Serve /metrics on ``addr:port`` from a daemon thread, with the queue depth gauges.

    Queue depth comes from :mod:`worker.metrics` (``ops.queue_depth`` at scrape time), the
    one definition shared with every other process.
    """
    from traderctl.worker.metrics import start_metrics_server

    start_metrics_server(port, addr=addr, database_url=database_url)
