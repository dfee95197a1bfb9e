"""What a job's trader looks like at run time: its filter, tier and edge-trigger state.

One query (``load_traders``) loads every trader of a batch with its owner's tier (max
symbols), its stored previous matches and whether the slot already has a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from traderctl.worker import queries
from traderctl.worker.runner.job import TraderJob

__all__ = ["TraderSpec", "load_specs"]


@dataclass(frozen=True, kw_only=True)
class TraderSpec:
    """A job's trader as loaded for the run."""

    job: TraderJob
    exists: bool
    enabled: bool
    user_id: str | None
    code: str
    refresh_interval: str
    required_timeframes: list[str] | None
    max_symbols: int | None
    tier: str
    previous_matches: list[str]
    has_matches: bool
    already_run: bool

    @classmethod
    def from_row(cls, job: TraderJob, row: Sequence[Any]) -> TraderSpec:
        """From a ``load_traders`` row, in its column order."""
        (_, exists, user_id, enabled, code, interval, required, meta, tier, max_symbols,
         previous, already_run) = row  # fmt: skip
        if meta is not None:
            # A refreshInterval or a requiredTimeframes entry that is not a string (rare):
            # read from the filter object itself, as load_traders leaves it.
            interval = meta.get("refreshInterval")
            listed = meta.get("requiredTimeframes")
            required = [str(tf) for tf in listed] if isinstance(listed, list) else None
        return cls(
            job=job,
            exists=bool(exists),
            enabled=bool(enabled),
            user_id=user_id or None,
            code=code if isinstance(code, str) else "",
            refresh_interval=str(interval or job.queue_interval or "1m"),
            required_timeframes=required,
            max_symbols=max_symbols,
            tier=str(tier),
            previous_matches=list(previous or []),
            has_matches=previous is not None,
            already_run=bool(already_run),
        )

    @property
    def timeframes(self) -> list[str]:
        """Required timeframes with the browser's default: [refreshInterval]."""
        if self.required_timeframes is None:
            return [self.refresh_interval]
        return self.required_timeframes

    @property
    def runnable(self) -> bool:
        return self.exists and self.enabled and not self.already_run and bool(self.code.strip())


def load_specs(conn: psycopg.Connection[Any], jobs: Sequence[TraderJob]) -> list[TraderSpec]:
    """Every job's trader, tier, previous matches and whether its slot already ran."""
    # Array text instead of lists of ints, UUIDs and datetimes: psycopg adapts a list
    # element by element in Python, which was most of this query's cost in the worker.
    # The elements are digits, canonical UUIDs and ISO timestamps: nothing to quote.
    params = {
        "job_ids": "{" + ",".join(str(j.job_id) for j in jobs) + "}",
        "trader_ids": "{" + ",".join(j.trader_id for j in jobs) + "}",
        "slots": "{" + ",".join(j.slot_text for j in jobs) + "}",
    }
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = {r[0]: r for r in cur.execute(queries.get("load_traders"), params)}
    return [TraderSpec.from_row(job, rows[job.job_id]) for job in jobs]
