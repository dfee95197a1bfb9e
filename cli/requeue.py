"""`traderctl requeue`: rerun one trader now, or put failed / stalled jobs back in the queue.

Exactly one of ``--trader ID``, ``--failed`` or ``--stalled`` (otherwise a usage error,
exit 2). The command prints what it did, job by job; ``--dry-run`` shows what it would do.

* ``--trader ID``  enqueue an immediate run for the current minute at priority 100 (the
  scheduler's job format); reported as ``already_waiting`` if a job is queued already.
* ``--failed``     failed jobs go back to todo, due now, attempts reset to 0.
* ``--stalled``    the trader worker's recovery (backend.recover_stalled_jobs): jobs held by
  workers silent for ``--older-than`` seconds go back to todo (or to failed once they
  reach TRADERCTL_WORKER_JOB_MAX_ATTEMPTS).
"""

from __future__ import annotations

import typer
from rich.table import Table

from traderctl.cli import output
from traderctl.cli.output import emit_json, short
from traderctl.worker.admin.db import open_admin_connection
from traderctl.worker.admin.lookups import parse_trader_id
from traderctl.worker.admin.requeue import requeue_failed, requeue_stalled, requeue_trader
from traderctl.worker.config import env_help, load_settings
from traderctl.worker.local.embedded_pg import resolve_database_url

__all__ = ["requeue"]


def requeue(
    trader: str | None = typer.Option(None, "--trader", metavar="ID", help="Run this trader now."),
    failed: bool = typer.Option(False, "--failed", help="Requeue every failed job."),
    stalled: bool = typer.Option(
        False, "--stalled", help="Requeue jobs of workers that stopped sending heartbeats."
    ),
    queue: str | None = typer.Option(
        None, "--queue", help="With --failed: only this queue (e.g. traders.5m)."
    ),
    limit: int = typer.Option(1000, "--limit", min=1, help="With --failed: at most this many."),
    older_than: float | None = typer.Option(
        None,
        "--older-than",
        min=1,
        help=f"With --stalled: heartbeat age in seconds {env_help('stalled_seconds')}.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would be requeued; change nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Rerun a trader now (--trader ID), or requeue --failed or --stalled jobs."""
    chosen = [
        name
        for name, on in (
            ("--trader", trader is not None),
            ("--failed", failed),
            ("--stalled", stalled),
        )
        if on
    ]
    if len(chosen) != 1:
        # A usage error: click's exit code 2, printed the way click prints one.
        got = f" (got {' and '.join(chosen)})" if chosen else ""
        output.usage_error(
            f"give exactly one of --trader ID, --failed or --stalled{got}; "
            "see `traderctl requeue --help`."
        )
    if trader is not None:
        parse_trader_id(trader)  # a malformed id fails before connecting
    settings = load_settings()
    with open_admin_connection(resolve_database_url(settings)) as conn:
        if trader is not None:
            report = requeue_trader(conn, trader, dry_run=dry_run)
        elif failed:
            report = requeue_failed(conn, queue=queue, limit=limit, dry_run=dry_run)
        else:
            report = requeue_stalled(conn, settings, older_than=older_than, dry_run=dry_run)
    if as_json:
        emit_json(report)
        return
    if report.jobs:
        table = Table(title=f"requeue --{report.mode}" + (" (dry run)" if report.dry_run else ""))
        for column in ("job", "queue", "task", "trader", "slot", "attempts", "outcome"):
            table.add_column(column, no_wrap=column in ("trader", "slot"))
        for j in report.jobs:
            table.add_row(
                str(j.job_id) if j.job_id else "-",
                j.queue_name,
                j.task_name or "-",
                j.trader_id or "-",
                short(j.slot, 25) if j.slot else "-",
                "-" if j.attempts is None else str(j.attempts),
                j.outcome,
            )
        output.emit(table)
    output.line(report.summary)
    if report.mode != "trader" and not report.dry_run and report.jobs:
        poll = env_help("worker_poll_ms")
        output.note(f"workers pick requeued jobs up at their next poll {poll}")
