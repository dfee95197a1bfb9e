"""Entry point of `traderctl worker`: one batch worker process, or a pool of them.

The runner package, by responsibility:

* :mod:`~traderctl.worker.runner.options`: what was asked (queues, batch size, pool size);
* :mod:`~traderctl.worker.runner.pool`: N processes, restarted with backoff;
* :mod:`~traderctl.worker.runner.loop`: one process's claim → run → commit loop;
* :mod:`~traderctl.worker.runner.heartbeat`, :mod:`~traderctl.worker.runner.maintenance_worker`,
  :mod:`~traderctl.worker.runner.shutdown`: its other threads and its signals;
* :mod:`~traderctl.worker.runner.held`: the jobs in flight, released or retried;
* :mod:`~traderctl.worker.runner.batch`: one batch (job → spec → freshness → evaluate →
  commit, one module each);
* :mod:`~traderctl.worker.runner.tasks` and :mod:`~traderctl.worker.runner.maintenance`:
  the periodic procrastinate tasks.

Every statement against procrastinate's tables is in :mod:`traderctl.worker.queue.manager`.
"""

from __future__ import annotations

import logging

from traderctl.worker.config import Settings
from traderctl.worker.errors import WorkerOptionsError
from traderctl.worker.runner.loop import BatchWorker
from traderctl.worker.runner.options import WorkerOptions
from traderctl.worker.runner.pool import run_pool

__all__ = ["run_worker"]


def run_worker(settings: Settings, database_url: str, options: WorkerOptions) -> int:
    """Serve the queues until SIGTERM/SIGINT; returns the exit code."""
    if options.concurrency < 1:
        raise WorkerOptionsError("--concurrency must be at least 1")
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # procrastinate logs every job at INFO (the maintenance tasks run every few
        # seconds); our own throughput line is the useful one.
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    if options.concurrency > 1:
        return run_pool(settings, database_url, options)
    if options.metrics_port is not None:
        from traderctl.worker.runner import metrics as worker_metrics

        worker_metrics.serve(options.metrics_port, options.metrics_addr, database_url)
    worker = BatchWorker(settings, database_url, options)
    worker.install_signal_handlers()
    return worker.run()
