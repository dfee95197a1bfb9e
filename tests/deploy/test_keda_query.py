"""KEDA's queue-depth queries (deploy/k8s/keda.yaml), run on a real migrated database.

Each ScaledObject's query must count exactly the jobs a worker of its pool could claim now:
`todo`, due, in its own queue — not running jobs, not retries scheduled for later, not
other pools' queues.
"""

from __future__ import annotations

from typing import Any

import psycopg

from tests.deploy.test_k8s_manifests import scaled_objects, worker_deployments


def _insert(conn: psycopg.Connection[Any], queue: str, *, scheduled: str | None = None) -> int:
    row = conn.execute(
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name, scheduled_at)"
        " values (%s, 'run_trader', %s::timestamptz) returning id",
        (queue, scheduled),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_queue_depth_queries_count_claimable_jobs_of_their_own_queue(
    conn: psycopg.Connection[Any],
) -> None:
    scaled = scaled_objects()
    for interval in worker_deployments():
        queue = f"traders.{interval}"
        _insert(conn, queue)  # due: no schedule
        _insert(conn, queue, scheduled="2000-01-01T00:00:00Z")  # due: scheduled earlier
        _insert(conn, queue, scheduled="2999-01-01T00:00:00Z")  # a retry waiting for later
        running = _insert(conn, queue)
        conn.execute(
            "update procrastinate.procrastinate_jobs set status = 'doing' where id = %s",
            (running,),
        )
    _insert(conn, "traders.unrelated")
    for interval, dep in worker_deployments().items():
        (trigger,) = [
            t
            for t in scaled[dep["metadata"]["name"]]["spec"]["triggers"]
            if t["type"] == "postgresql"
        ]
        row = conn.execute(trigger["metadata"]["query"]).fetchone()
        assert row is not None
        assert row[0] == 2, f"worker-{interval}: {row[0]}"
