"""procrastinate's connector for our schema layout.

procrastinate lives in its own schema (``procrastinate``, see the first migration), but
its Python code uses unqualified table and function names, so every pool connection runs
``set search_path = procrastinate, public`` when it is opened (psycopg_pool's
``configure=`` callback, passed through PsycopgConnector's pool kwargs), and the service
session limits of :mod:`traderctl.worker.db` (timeouts, keepalives) when given, so the
maintenance tasks are bounded like the batch loop. procrastinate uses the same callback
for its LISTEN connection. The App and its tasks are in
:mod:`traderctl.worker.runner.tasks`.
"""

from __future__ import annotations

from typing import Any

import procrastinate
import psycopg

from traderctl.worker import queries
from traderctl.worker.db import SessionLimits, apply_limits_async

__all__ = ["configure_connection", "make_connector"]


async def configure_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """Pool ``configure`` callback: procrastinate's schema first on the search_path."""
    await conn.execute(queries.get("procrastinate_search_path"))
    if not conn.autocommit:
        await conn.commit()


def make_connector(
    database_url: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    limits: SessionLimits | None = None,
) -> procrastinate.PsycopgConnector:
    """An async PsycopgConnector whose connections see the ``procrastinate`` schema (and
    carry ``limits``, when given)."""

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        await configure_connection(conn)
        if limits is not None:
            await apply_limits_async(conn, limits)

    return procrastinate.PsycopgConnector(
        conninfo=database_url,
        min_size=min_size,
        max_size=max_size,
        configure=configure,
        # Keep retrying while the database restarts instead of giving up after 5 min.
        reconnect_timeout=24 * 3600,
        kwargs=limits.connect_kwargs() if limits is not None else {"connect_timeout": 10},
    )
