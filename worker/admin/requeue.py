"""`traderctl requeue`: rerun one trader now, or put failed or stalled jobs back in the queue.

Each function returns a :class:`RequeueReport` listing every job it touched (or would
touch, with ``dry_run``) and its outcome, so the CLI can show exactly what happened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal

import psycopg

from traderctl.worker.admin.db import one, one_line, rows, schema_errors
from traderctl.worker.admin.lookups import parse_trader_id, trader_state
from traderctl.worker.config import SETTINGS, Settings
from traderctl.worker.errors import AlreadyRanThisMinute, TraderNotRunnable

__all__ = [
    "RequeueMode",
    "RequeueReport",
    "RequeuedJob",
    "requeue_failed",
    "requeue_stalled",
    "requeue_trader",
]

RequeueMode = Literal["trader", "failed", "stalled"]


@dataclass(frozen=True, kw_only=True)
class RequeuedJob:
    """One job `requeue` touched (or would touch, with --dry-run), and the outcome."""

    job_id: int
    queue_name: str
    task_name: str | None
    trader_id: str | None
    slot: str | None
    attempts: int | None
    outcome: str

    @classmethod
    def from_job_row(cls, row: Mapping[str, Any], outcome: str) -> RequeuedJob:
        args = row.get("args") or {}
        return cls(
            job_id=int(row.get("id", row.get("job_id"))),
            queue_name=str(row["queue_name"]),
            task_name=row.get("task_name"),
            trader_id=args.get("trader_id") if isinstance(args, dict) else None,
            slot=args.get("slot") if isinstance(args, dict) else None,
            attempts=row.get("attempts"),
            outcome=outcome,
        )


@dataclass(frozen=True, kw_only=True)
class RequeueReport:
    """What `requeue` did: the mode, whether it was a dry run, each job and a summary."""

    mode: str
    dry_run: bool
    jobs: list[RequeuedJob]
    summary: str


def requeue_trader(
    conn: psycopg.Connection[Any], value: str, *, dry_run: bool = False
) -> RequeueReport:
    """Enqueue an immediate run of one trader for the current minute (priority 100).

    Same job format as the scheduler's and the first-run trigger's. Not counted against
    the tier's hourly cap: this is an operator's decision. A job already waiting for the
    trader is reported and left alone (it runs the current code anyway).
    """
    trader_id = parse_trader_id(value)
    with conn.transaction():
        state = trader_state(conn, trader_id)
        if not state["enabled"]:
            reason = one_line(state["disabled_reason"]) or "no reason recorded"
            raise TraderNotRunnable(
                f"trader {trader_id} is disabled ({reason}); enable it first with "
                f"`traderctl traders enable {trader_id}`."
            )
        if state["schedule_problem"]:
            raise TraderNotRunnable(
                f"trader {trader_id} cannot be scheduled: {one_line(state['schedule_problem'])}."
            )
        if not state["has_code"]:
            raise TraderNotRunnable(
                f"trader {trader_id} has blank filter code, so it never runs; "
                "the user must save code first."
            )
        waiting = one(conn, "admin_waiting_job", {"trader_id": trader_id})
        if waiting is not None:
            job = RequeuedJob(
                job_id=int(waiting["id"]),
                queue_name=str(waiting["queue_name"]),
                task_name="run_trader",
                trader_id=str(trader_id),
                slot=waiting["slot"],
                attempts=None,
                outcome="already_waiting",
            )
            return RequeueReport(
                mode="trader",
                dry_run=dry_run,
                jobs=[job],
                summary=f"trader {trader_id} already has job {job.job_id} waiting "
                f"(slot {job.slot}); nothing enqueued",
            )
        ran = one(conn, "admin_run_for_current_slot", {"trader_id": trader_id})
        if ran is not None:
            raise AlreadyRanThisMinute(
                f"trader {trader_id} already has run {ran['id']} for the current minute "
                f"({ran['slot'].astimezone(UTC):%H:%M} UTC); runs are unique per "
                "(trader, slot), so retry after the minute turns."
            )
        if dry_run:
            job = RequeuedJob(
                job_id=0,
                queue_name=f"traders.{state['interval']}",
                task_name="run_trader",
                trader_id=str(trader_id),
                slot=None,
                attempts=0,
                outcome="would_enqueue",
            )
            return RequeueReport(
                mode="trader",
                dry_run=True,
                jobs=[job],
                summary=f"would enqueue a run of trader {trader_id} on {job.queue_name}",
            )
        row = one(conn, "admin_enqueue_trader_run", {"trader_id": trader_id})
    if row is None:  # a tick enqueued one between our check and the insert
        return requeue_trader(conn, value)
    job = RequeuedJob.from_job_row(row, "enqueued")
    return RequeueReport(
        mode="trader",
        dry_run=False,
        jobs=[job],
        summary=f"enqueued job {job.job_id} on {job.queue_name}: trader {trader_id}, "
        f"slot {job.slot}, priority 100",
    )


def requeue_failed(
    conn: psycopg.Connection[Any],
    *,
    queue: str | None = None,
    limit: int = 1000,
    dry_run: bool = False,
) -> RequeueReport:
    """Put failed jobs back to 'todo' (due now, attempts reset to 0), oldest first."""
    params = {"queue": queue, "limit": limit}
    if dry_run:
        jobs = [
            RequeuedJob.from_job_row(r, "would_requeue")
            for r in rows(conn, "admin_failed_jobs", params)
        ]
        return RequeueReport(
            mode="failed",
            dry_run=True,
            jobs=jobs,
            summary=f"would requeue {len(jobs)} failed job(s)",
        )
    jobs = [
        RequeuedJob.from_job_row(r, "requeued")
        for r in rows(conn, "admin_requeue_failed_jobs", params)
    ]
    return RequeueReport(
        mode="failed", dry_run=False, jobs=jobs, summary=f"requeued {len(jobs)} failed job(s)"
    )


def requeue_stalled(
    conn: psycopg.Connection[Any],
    settings: Settings,
    *,
    older_than: float | None = None,
    dry_run: bool = False,
) -> RequeueReport:
    """Rerun jobs held by workers without a heartbeat for ``older_than`` seconds.

    Uses the trader worker's own recovery (:func:`worker.runner.maintenance.recover_stalled`,
    i.e. backend.recover_stalled_jobs): it deletes the silent workers and requeues each of
    their jobs counting an attempt, or marks it failed at the job attempt limit.
    """
    seconds = float(settings.stalled_seconds if older_than is None else older_than)
    if dry_run:
        jobs = [
            RequeuedJob.from_job_row(r, "would_requeue")
            for r in rows(conn, "admin_stalled_jobs", {"stalled_seconds": seconds})
        ]
        return RequeueReport(
            mode="stalled",
            dry_run=True,
            jobs=jobs,
            summary=f"would requeue {len(jobs)} stalled job(s) (no heartbeat for {seconds:g} s)",
        )
    # The worker's module: it imports procrastinate, which the other commands do not need.
    from traderctl.worker.runner.maintenance import recover_stalled

    before = {
        int(r["id"]): r for r in rows(conn, "admin_stalled_jobs", {"stalled_seconds": seconds})
    }
    with schema_errors():
        done = recover_stalled(
            conn, dataclasses.replace(settings, stalled_seconds=max(1, round(seconds)))
        )
    jobs = []
    for r in done:
        known = before.get(int(r["job_id"]), {})
        jobs.append(
            RequeuedJob.from_job_row(
                {**known, "id": r["job_id"], "queue_name": r["queue_name"]}, str(r["outcome"])
            )
        )
    requeued = sum(1 for j in jobs if j.outcome == "requeued")
    failed = sum(1 for j in jobs if j.outcome == "failed")
    limit = SETTINGS["job_max_attempts"].env
    return RequeueReport(
        mode="stalled",
        dry_run=False,
        jobs=jobs,
        summary=f"requeued {requeued} stalled job(s); {failed} reached "
        f"{limit}={settings.job_max_attempts} and were marked failed",
    )
