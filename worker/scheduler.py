"""The scheduler tick from Python, and the minute loop for servers without pg_cron.

The scheduling itself is the SQL function ``backend.schedule_due_traders(at)``: pg_cron
calls it every minute where pg_cron is available. :func:`tick` calls it once (``traderctl
tick``) and :func:`run_loop` calls it a few seconds after every minute boundary
(``traderctl scheduler``). Both are safe next to pg_cron: a second tick for a minute
already scheduled enqueues nothing.

A tick the loop misses (database down, process paused) is not lost: the function's
watermark coalesces every missed slot into one run per trader at the next tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from traderctl.worker import queries, signal_safe
from traderctl.worker.errors import DatabaseUnreachable, SchedulerError, SchedulerNotInstalled

__all__ = [
    "Outcome",
    "TickCount",
    "TickResult",
    "evaluate_health",
    "next_tick_at",
    "run_loop",
    "tick",
]

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """What the tick did with the traders of one interval."""

    ENQUEUED = "enqueued"
    SKIPPED_BACKLOG = "skipped_backlog"
    SKIPPED_HOURLY_CAP = "skipped_hourly_cap"
    SKIPPED_INVALID_INTERVAL = "skipped_invalid_interval"


@dataclass(frozen=True, kw_only=True)
class TickCount:
    """How many traders of one interval had one outcome (interval None: invalid ones)."""

    refresh_interval: str | None
    outcome: Outcome
    trader_count: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> TickCount:
        """From (refresh_interval, outcome, trader_count)."""
        return cls(refresh_interval=row[0], outcome=Outcome(row[1]), trader_count=int(row[2]))


@dataclass(frozen=True, kw_only=True)
class TickResult:
    """The result of one call of backend.schedule_due_traders."""

    slot: datetime
    counts: tuple[TickCount, ...]

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]]) -> TickResult:
        """From the rows of the ``schedule_due_traders`` query: (slot, interval, outcome, n)."""
        if not rows:
            raise SchedulerError("the scheduler query returned no rows; expected at least one.")
        counts = tuple(TickCount.from_row(row[1:]) for row in rows if row[2] is not None)
        return cls(slot=rows[0][0], counts=counts)

    def total(self, outcome: Outcome) -> int:
        """Traders with this outcome, over every interval."""
        return sum(c.trader_count for c in self.counts if c.outcome is outcome)

    @property
    def enqueued(self) -> int:
        return self.total(Outcome.ENQUEUED)

    def by_interval(self) -> dict[str, dict[str, int]]:
        """{interval: {outcome: count}}; invalid intervals are keyed "invalid"."""
        table: dict[str, dict[str, int]] = {}
        for c in self.counts:
            row = table.setdefault(c.refresh_interval or "invalid", {})
            row[c.outcome.value] = row.get(c.outcome.value, 0) + c.trader_count
        return table

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``traderctl tick --json`` prints)."""
        return {
            "slot": self.slot.astimezone(UTC).isoformat(),
            "enqueued": self.enqueued,
            "skipped": {o.value: self.total(o) for o in Outcome if o is not Outcome.ENQUEUED},
            "by_interval": self.by_interval(),
        }


def tick(conn: psycopg.Connection[Any], at: datetime | None = None) -> TickResult:
    """Run one tick for the minute of ``at`` (default: the database's now()).

    ``conn`` should be in autocommit mode: the tick commits on return, so its jobs are
    visible to workers immediately.
    """
    try:
        rows = conn.execute(queries.get("schedule_due_traders"), {"at": at}).fetchall()
    except (pg_errors.UndefinedFunction, pg_errors.InvalidSchemaName) as exc:
        raise SchedulerNotInstalled(
            "backend.schedule_due_traders() does not exist in this database; apply the "
            "migrations with `traderctl db migrate`, then retry."
        ) from exc
    except pg_errors.InsufficientPrivilege as exc:
        raise SchedulerError(
            "permission denied for backend.schedule_due_traders(); connect as the database "
            "owner or service_role (DATABASE_URL), not as an API role."
        ) from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnreachable(f"the database connection failed during the tick: {exc}") from exc
    except psycopg.Error as exc:
        raise SchedulerError(
            f"the scheduler tick failed: {str(exc).strip().splitlines()[0]}; the watermark "
            "did not move, so the next tick retries these slots."
        ) from exc
    return TickResult.from_rows(rows)


def evaluate_health(conn: psycopg.Connection[Any]) -> None:
    """Update the backend health row and fallback, as the pg_cron health job does.

    Where pg_cron is missing this loop is the only caller (docs/rollout.md). A failure is
    logged, not raised: health is re-evaluated next minute, and the tick matters more.
    """
    try:
        row = conn.execute(queries.get("rollout_evaluate_health")).fetchone()
    except psycopg.OperationalError as exc:
        raise DatabaseUnreachable(f"the database connection failed during the tick: {exc}") from exc
    except psycopg.Error as exc:
        log.warning("health check failed (retried next minute): %s", str(exc).strip())
        return
    if row is not None and row[0] != "healthy":
        log.warning("backend %s (fallback %s): %s", row[0], "on" if row[1] else "off", row[2])


def next_tick_at(now: datetime, offset_seconds: float) -> datetime:
    """The next minute boundary plus ``offset_seconds`` strictly after ``now`` (UTC)."""
    now = now.astimezone(UTC)
    boundary = now.replace(second=0, microsecond=0)
    candidate = boundary + timedelta(seconds=offset_seconds)
    if candidate <= now:
        candidate += timedelta(minutes=1)
    return candidate


def run_loop(
    connect: Callable[[], psycopg.Connection[Any]],
    *,
    stop: threading.Event,
    offset_seconds: float = 3,
    on_tick: Callable[[TickResult], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Tick ``offset_seconds`` after every minute boundary until ``stop`` is set.

    Lost connections are logged and retried at the next minute (the watermark catches
    up what was missed); any other error ends the loop. Returns the number of ticks run.
    """
    conn: psycopg.Connection[Any] | None = None
    ticks = 0
    try:
        while True:
            wake = next_tick_at(clock(), offset_seconds)
            delay = max(0.0, (wake - clock()).total_seconds())
            log.debug("next tick at %s (in %.1f s)", wake.isoformat(), delay)
            if signal_safe.wait(stop, delay):
                break
            try:
                if conn is None or conn.closed:
                    conn = connect()
                result = tick(conn)
                evaluate_health(conn)
            except DatabaseUnreachable as exc:
                log.warning("tick skipped, the next one catches up: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
                continue
            ticks += 1
            log.info(
                "tick %s: %d enqueued, %d skipped",
                result.slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ"),
                result.enqueued,
                sum(c.trader_count for c in result.counts) - result.enqueued,
            )
            if on_tick is not None:
                on_tick(result)
    finally:
        if conn is not None:
            conn.close()
    return ticks
