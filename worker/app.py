"""The procrastinate App of the trader worker, and its connector.

procrastinate lives in its own schema (``procrastinate``, see the first migration), but
its Python code uses unqualified table and function names, so every pool connection runs
``set search_path = procrastinate, public`` when it is opened (psycopg_pool's
``configure=`` callback, passed through PsycopgConnector's pool kwargs). procrastinate
uses the same callback for its LISTEN connection.

Tasks registered on the app (worker/tasks.py):

* ``run_trader`` (queues ``traders.<interval>``): one trader for one slot. The batch
  worker claims these jobs itself; procrastinate's own worker can run them too.
* ``recover_stalled_jobs`` and ``prune_history``: periodic, on ``traderctl.maintenance``.
"""

from __future__ import annotations

from typing import Any

import procrastinate
import psycopg

from worker import queries
from worker.config import Settings

__all__ = [
    "MAINTENANCE_QUEUE",
    "TRADER_QUEUE_PREFIX",
    "TRADER_TASK",
    "configure_connection",
    "make_app",
    "make_connector",
]

#: Queue of the periodic maintenance tasks (stalled recovery, retention).
MAINTENANCE_QUEUE = "traderctl.maintenance"
#: Trader jobs go to queue TRADER_QUEUE_PREFIX + interval, e.g. 'traders.5m'.
TRADER_QUEUE_PREFIX = "traders."
#: task_name of the scheduler's jobs.
TRADER_TASK = "run_trader"


async def configure_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """Pool ``configure`` callback: procrastinate's schema first on the search_path."""
    await conn.execute(queries.get("procrastinate_search_path"))
    if not conn.autocommit:
        await conn.commit()


def make_connector(
    database_url: str, *, min_size: int = 1, max_size: int = 4
) -> procrastinate.PsycopgConnector:
    """An async PsycopgConnector whose connections see the ``procrastinate`` schema."""
    return procrastinate.PsycopgConnector(
        conninfo=database_url,
        min_size=min_size,
        max_size=max_size,
        configure=configure_connection,
        # Keep retrying while the database restarts instead of giving up after 5 min.
        reconnect_timeout=24 * 3600,
        kwargs={"connect_timeout": 10},
    )


def make_app(settings: Settings, database_url: str, *, max_pool: int = 4) -> procrastinate.App:
    """The App with every task of worker/tasks.py registered, crons from ``settings``."""
    from worker import tasks  # tasks imports this module for the constants

    app = procrastinate.App(
        connector=make_connector(database_url, max_size=max_pool),
        periodic_defaults={"max_delay": 600},
    )
    tasks.register(app, settings)
    return app
