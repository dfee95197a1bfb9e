"""`traderctl stats`: every ops view, read in one consistent snapshot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from traderctl.worker import queries
from traderctl.worker.admin.db import schema_errors

__all__ = ["OPS_VIEWS", "ops_view", "stats_snapshot"]

#: The ops views `traderctl stats` reads, in the order of its JSON keys.
OPS_VIEWS: tuple[str, ...] = (
    "alerts",
    "executions_per_minute",
    "execution_time_by_interval",
    "queue_depth",
    "failure_rate_by_interval",
    "schedule_lag",
    "snapshot_freshness",
    "snapshot_reuse",
    "skips_by_reason",
    "cron_job_health",
    "stalled_jobs",
)


def ops_view(conn: psycopg.Connection[Any], view: str) -> list[dict[str, Any]]:
    """Every row of one ops view (a name from :data:`OPS_VIEWS`)."""
    if view not in OPS_VIEWS:
        raise ValueError(f"not an ops view: {view!r}")
    query = sql.SQL(queries.get("admin_ops_view")).format(view=sql.Identifier(view))
    with schema_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query).fetchall()


def stats_snapshot(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Every ops view `traderctl stats` shows, read in one REPEATABLE READ snapshot."""
    result: dict[str, Any] = {}
    with conn.transaction():
        conn.execute(queries.get("admin_read_only_snapshot"))
        result["generated_at"] = datetime.now().astimezone()
        for view in OPS_VIEWS:
            result[view] = ops_view(conn, view)
    return result
