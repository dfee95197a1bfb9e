"""Every statement the worker runs against procrastinate's tables, in one module.

procrastinate keeps its SQL behind one manager; ours does the same for the statements our
batch worker and maintenance add (claim many jobs at once, release, finish in the commit,
recover stalled jobs, prune). The SQL text is in worker/sql/worker.sql and the functions
it calls in the migrations; this module names the operations, binds their parameters and
shapes their results, so callers never touch a job row by hand.

Sync functions take a psycopg connection (the batch worker); the ``*_async`` ones take
procrastinate's async connector (the periodic maintenance tasks).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from procrastinate.connector import BaseAsyncConnector
from psycopg import sql
from psycopg.rows import dict_row

from traderctl.worker import queries
from traderctl.worker.errors import WorkerError

__all__ = [
    "WorkerPruned",
    "claim_jobs",
    "commit_runs",
    "heartbeat",
    "listen",
    "prune_batch",
    "prune_batch_async",
    "queue_channel",
    "recover_stalled",
    "recover_stalled_async",
    "register_worker",
    "release_jobs",
    "unregister_worker",
]


class WorkerPruned(WorkerError):
    """The worker's procrastinate_workers row is gone (pruned as stalled after a pause):
    register again, and drop the jobs claimed under the old id."""


def queue_channel(queue: str) -> str:
    """procrastinate's NOTIFY channel for jobs inserted into ``queue``."""
    return f"procrastinate_queue_v1#{queue}"


# -- workers -------------------------------------------------------------------------------
def register_worker(conn: psycopg.Connection[Any]) -> int:
    """A new procrastinate_workers row; its id goes on the jobs this worker claims."""
    row = conn.execute(queries.get("register_worker")).fetchone()
    assert row is not None
    return int(row[0])


def unregister_worker(conn: psycopg.Connection[Any], worker_id: int) -> None:
    """Delete the worker's row (jobs still pointing at it lose their worker_id)."""
    conn.execute(queries.get("unregister_worker"), {"worker_id": worker_id})


def heartbeat(conn: psycopg.Connection[Any], worker_id: int) -> bool:
    """Prove the worker alive; False when its row is gone (pruned as stalled)."""
    row = conn.execute(queries.get("worker_heartbeat"), {"worker_id": worker_id}).fetchone()
    return row is not None


def listen(listener: psycopg.Connection[Any], queues: Sequence[str]) -> None:
    """LISTEN for inserted jobs of ``queues`` on ``listener`` (an autocommit connection)."""
    for queue in queues:
        listener.execute(
            sql.SQL(queries.get("listen_channel")).format(
                channel=sql.Identifier(queue_channel(queue))
            )
        )


# -- jobs ----------------------------------------------------------------------------------
def claim_jobs(
    conn: psycopg.Connection[Any], queues: Sequence[str], worker_id: int, limit: int
) -> list[dict[str, Any]]:
    """Claim up to ``limit`` due jobs of ``queues`` for ``worker_id`` (one round trip).

    Two workers racing for one lock make the loser's claim fail with a unique violation;
    the claim is then simply tried again.
    """
    params = {"queues": list(queues), "worker_id": worker_id, "limit": limit}
    for _ in range(3):
        try:
            with conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(queries.get("claim_trader_jobs"), params).fetchall()
        except psycopg.errors.UniqueViolation:
            continue
        except psycopg.errors.ForeignKeyViolation:
            raise WorkerPruned(
                f"worker {worker_id} is no longer registered (pruned as stalled after a "
                "pause); it must register again before claiming"
            ) from None
    return []


def release_jobs(
    conn: psycopg.Connection[Any],
    job_ids: Sequence[int],
    worker_id: int,
    *,
    count_attempt: bool,
    retry_at: datetime | None = None,
    max_attempts: int | None = None,
) -> list[tuple[int, str]]:
    """Give back jobs the worker holds: todo again (at ``retry_at``), or failed once
    ``max_attempts`` is reached. Returns (job id, outcome) per job still held."""
    rows = conn.execute(
        queries.get("release_trader_jobs"),
        {
            "job_ids": list(job_ids),
            "worker_id": worker_id,
            "retry_at": retry_at,
            "count_attempt": count_attempt,
            "max_attempts": max_attempts,
        },
    ).fetchall()
    return [(int(job_id), str(outcome)) for job_id, outcome in rows]


def commit_runs(
    conn: psycopg.Connection[Any],
    *,
    runs_json: str,
    worker: str,
    disable_after: int,
    worker_id: int,
    finish_job_ids: Sequence[int],
    delete_jobs: bool,
) -> list[dict[str, Any]]:
    """Write a batch's runs, signals and match state and finish its jobs, in one
    transaction, for the jobs ``worker_id`` still holds (the others come back
    ``not_held``, unwritten). ``delete_jobs``: finished jobs are deleted instead of
    marked succeeded (no second status update, no ``succeeded`` event row)."""
    params = {
        "runs": runs_json,
        "worker": worker,
        "disable_after": disable_after,
        "worker_id": worker_id,
        "finish_job_ids": list(finish_job_ids),
        "delete_jobs": delete_jobs,
    }
    # One statement on an autocommit connection: the server commits it before answering,
    # so a worker frozen or cut off right after sending it never sits idle inside an
    # open transaction holding its jobs' and traders' row locks.
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(queries.get("commit_trader_runs"), params).fetchall()


# -- maintenance ---------------------------------------------------------------------------
def _recover_params(stalled_seconds: float, max_attempts: int) -> dict[str, Any]:
    return {"stalled_seconds": float(stalled_seconds), "max_attempts": max_attempts}


def recover_stalled(
    conn: psycopg.Connection[Any], *, stalled_seconds: float, max_attempts: int
) -> list[dict[str, Any]]:
    """Delete stalled workers and requeue (or fail) the jobs they held."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            queries.get("recover_stalled_jobs"), _recover_params(stalled_seconds, max_attempts)
        ).fetchall()


async def recover_stalled_async(
    connector: BaseAsyncConnector, *, stalled_seconds: float, max_attempts: int
) -> list[dict[str, Any]]:
    """:func:`recover_stalled` through procrastinate's async connector."""
    rows: list[dict[str, Any]] = await connector.execute_query_all_async(
        queries.get("recover_stalled_jobs"), **_recover_params(stalled_seconds, max_attempts)
    )
    return rows


def prune_batch(conn: psycopg.Connection[Any], params: dict[str, Any]) -> dict[str, int]:
    """Delete one batch of old finished jobs, runs, signals and browser run reports."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(queries.get("prune_history"), params).fetchone()
    assert row is not None
    return _prune_counts(row)


async def prune_batch_async(
    connector: BaseAsyncConnector, params: dict[str, Any]
) -> dict[str, int]:
    """:func:`prune_batch` through procrastinate's async connector."""
    row = await connector.execute_query_one_async(queries.get("prune_history"), **params)
    return _prune_counts(row)


def _prune_counts(row: dict[str, Any]) -> dict[str, int]:
    return {key: int(row[key]) for key in ("jobs", "runs", "signals", "reports")}
