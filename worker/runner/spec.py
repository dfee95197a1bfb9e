"""What a job's trader looks like at run time: its filter, tier and edge-trigger state.

One query (``load_traders``) loads every trader of a batch with its owner's tier (max
symbols), its stored previous matches and whether the slot already has a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

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
    def from_row(cls, job: TraderJob, row: Mapping[str, Any]) -> TraderSpec:
        filt = row["filter"] if isinstance(row["filter"], dict) else {}
        code = filt.get("code")
        interval = filt.get("refreshInterval") or job.queue_interval or "1m"
        required = filt.get("requiredTimeframes")
        return cls(
            job=job,
            exists=bool(row["trader_exists"]),
            enabled=bool(row["enabled"]),
            user_id=str(row["user_id"]) if row["user_id"] else None,
            code=code if isinstance(code, str) else "",
            refresh_interval=str(interval),
            required_timeframes=[str(tf) for tf in required]
            if isinstance(required, list)
            else None,
            max_symbols=row["max_symbols"],
            tier=str(row["tier"]),
            previous_matches=list(row["previous_matches"] or []),
            has_matches=row["previous_matches"] is not None,
            already_run=bool(row["already_run"]),
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
    params = {
        "job_ids": [j.job_id for j in jobs],
        "trader_ids": [j.trader_id for j in jobs],
        "slots": [j.slot for j in jobs],
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = {r["job_id"]: r for r in cur.execute(queries.get("load_traders"), params)}
    return [TraderSpec.from_row(job, rows[job.job_id]) for job in jobs]
