"""A claimed trader job, parsed from its procrastinate row.

The args format is the queue contract's (:mod:`traderctl.worker.queue.contract`); a job
whose args do not parse raises :class:`~traderctl.worker.errors.InvalidJob`, and the loop
marks it failed instead of retrying it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from traderctl.worker.errors import InvalidJob
from traderctl.worker.intervals import INTERVAL_MS
from traderctl.worker.queue.contract import ARG_SLOT, ARG_TRADER_ID, queue_interval

__all__ = ["TraderJob"]


@dataclass(frozen=True, kw_only=True)
class TraderJob:
    """One claimed run_trader job: run ``trader_id`` for ``slot``."""

    job_id: int
    trader_id: str
    slot: datetime
    queue_name: str
    attempts: int = 0
    priority: int = 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TraderJob:
        """From a procrastinate_jobs row (args jsonb already decoded)."""
        return cls.from_args(
            job_id=int(row["id"]),
            args=row["args"],
            queue_name=str(row["queue_name"]),
            attempts=int(row.get("attempts") or 0),
            priority=int(row.get("priority") or 0),
        )

    @classmethod
    def unparsable(cls, row: Mapping[str, Any]) -> TraderJob:
        """A stand-in for a row whose args do not parse, so it can be released as failed."""
        return cls(
            job_id=int(row["id"]),
            trader_id="",
            slot=datetime.now(UTC),
            queue_name=str(row["queue_name"]),
        )

    @classmethod
    def from_args(
        cls,
        *,
        job_id: int,
        args: Mapping[str, Any],
        queue_name: str,
        attempts: int = 0,
        priority: int = 0,
    ) -> TraderJob:
        """Check the args {"trader_id": uuid, "slot": ISO-8601}; raise InvalidJob."""
        try:
            trader_id = str(uuid.UUID(str(args[ARG_TRADER_ID])))
            slot = datetime.fromisoformat(str(args[ARG_SLOT]).replace("Z", "+00:00"))
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidJob(
                f"job {job_id} has invalid args {dict(args)!r} ({exc}); expected "
                f'{{"{ARG_TRADER_ID}": "<uuid>", "{ARG_SLOT}": "<ISO-8601 UTC>"}}'
            ) from None
        if slot.tzinfo is None:
            slot = slot.replace(tzinfo=UTC)
        return cls(
            job_id=job_id,
            trader_id=trader_id,
            slot=slot.astimezone(UTC),
            queue_name=queue_name,
            attempts=attempts,
            priority=priority,
        )

    @property
    def queue_interval(self) -> str | None:
        """'5m' for queue 'traders.5m', else None."""
        interval = queue_interval(self.queue_name)
        return interval if interval in INTERVAL_MS else None
