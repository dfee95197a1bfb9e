"""The procrastinate App of the worker: the periodic maintenance tasks.

Trader jobs are not procrastinate tasks to us: the batch loop claims and finishes them
itself (:mod:`traderctl.worker.runner.loop`), many per round trip, so no ``run_trader``
task is registered. What procrastinate does run is the queue maintenance, periodic (cron
from the settings) on ``traderctl.maintenance``: stalled-job recovery and retention. Every
``traderctl worker`` process runs a small procrastinate worker for that queue
(:mod:`traderctl.worker.runner.maintenance_worker`).
"""

from __future__ import annotations

import procrastinate
from procrastinate import JobContext

from traderctl.worker.config import Settings
from traderctl.worker.db import SessionLimits
from traderctl.worker.queue.connector import make_connector
from traderctl.worker.queue.contract import MAINTENANCE_QUEUE
from traderctl.worker.runner.maintenance import prune_history_async, recover_stalled_async

__all__ = [
    "SETTINGS_KEY",
    "make_app",
    "prune_history",
    "recover_stalled_jobs",
    "register",
    "seconds_cron",
]

#: additional_context key under which the maintenance worker passes its Settings.
SETTINGS_KEY = "settings"


def _settings(context: JobContext) -> Settings:
    settings = context.additional_context.get(SETTINGS_KEY)
    return settings if isinstance(settings, Settings) else Settings()


async def recover_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Requeue the jobs of workers whose heartbeat stopped (periodic)."""
    rows = await recover_stalled_async(context.app.connector, _settings(context))  # type: ignore[arg-type]
    return len(rows)


async def prune_history(context: JobContext, timestamp: int) -> dict[str, int]:
    """Delete finished jobs, runs, signals and browser reports past retention (periodic)."""
    counts = await prune_history_async(context.app.connector, _settings(context))  # type: ignore[arg-type]
    return {
        "jobs": counts.jobs,
        "runs": counts.runs,
        "signals": counts.signals,
        "reports": counts.reports,
    }


def seconds_cron(seconds: int) -> str:
    """A procrastinate cron (6th field = seconds) firing every ``seconds`` seconds."""
    if seconds < 60:
        return f"* * * * * */{seconds}"
    minutes = max(1, seconds // 60)
    return f"*/{minutes} * * * *"


def register(app: procrastinate.App, settings: Settings) -> None:
    """Register the maintenance tasks on ``app`` (crons from ``settings``)."""
    recover = app.task(name="recover_stalled_jobs", pass_context=True, queue=MAINTENANCE_QUEUE)(
        recover_stalled_jobs
    )
    app.periodic(cron=seconds_cron(settings.recovery_seconds))(recover)
    prune = app.task(name="prune_history", pass_context=True, queue=MAINTENANCE_QUEUE)(
        prune_history
    )
    app.periodic(cron=settings.retention_cron)(prune)


def make_app(settings: Settings, database_url: str, *, max_pool: int = 4) -> procrastinate.App:
    """The App with the maintenance tasks registered, crons from ``settings``."""
    app = procrastinate.App(
        connector=make_connector(
            database_url, max_size=max_pool, limits=SessionLimits.from_settings(settings)
        ),
        periodic_defaults={"max_delay": 600},
    )
    register(app, settings)
    return app
