"""`traderctl worker`: run trader jobs from the queue (any number, on any machines).

Workers share the queues through Postgres: start as many as you like, anywhere that
reaches the database. ``--intervals`` picks queues by refresh interval, which gives the
original design's pools (``--intervals 1m``, ``--intervals 5m``,
``--intervals 15m,30m,1h,4h,1d``). ``--concurrency N`` runs N worker processes (one V8
isolate each) under this one; docs/worker.md explains why processes and not threads.
"""

from __future__ import annotations

import typer

from traderctl.worker.config import env_help, load_settings
from traderctl.worker.local.embedded_pg import resolve_database_url
from traderctl.worker.runner.main import run_worker
from traderctl.worker.runner.options import WorkerOptions, queues_for
from traderctl.worker.runner.shutdown import exit_now

__all__ = ["worker"]


def _split(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def worker(
    intervals: str | None = typer.Option(
        None,
        "--intervals",
        help="Comma-separated refresh intervals to serve, e.g. 1m,5m (queues traders.<iv>). "
        "Default: all intervals.",
    ),
    queues: str | None = typer.Option(
        None, "--queues", help="Comma-separated queue names instead of --intervals."
    ),
    concurrency: int = typer.Option(
        1, "--concurrency", "-c", min=1, help="Worker processes to run (one V8 isolate each)."
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        min=1,
        help=f"Jobs claimed per round trip {env_help('worker_batch_size')}.",
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        help="Serve Prometheus metrics on this port (process i of a pool uses port+i).",
    ),
    metrics_addr: str = typer.Option("127.0.0.1", "--metrics-addr", help="Metrics bind address."),
    name: str | None = typer.Option(
        None, "--name", help="Worker name recorded on runs (default host:pid)."
    ),
    no_maintenance: bool = typer.Option(
        False,
        "--no-maintenance",
        help="Do not run the stalled-job recovery and retention tasks in this process.",
    ),
) -> None:
    """Run trader jobs until SIGTERM/SIGINT (in-flight jobs finish or are released)."""
    settings = load_settings()
    options = WorkerOptions(
        queues=tuple(queues_for(_split(intervals), _split(queues))),
        concurrency=concurrency,
        batch_size=batch_size or settings.worker_batch_size,
        metrics_port=metrics_port,
        metrics_addr=metrics_addr,
        maintenance=not no_maintenance,
        name=name,
    )
    code = run_worker(settings, resolve_database_url(settings), options)
    exit_now(code)
