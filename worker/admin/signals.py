"""`traderctl signals tail`: follow new signals as they are committed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from traderctl.worker.admin.db import FromRow, one, rows

__all__ = ["SignalFollower", "SignalRow"]


@dataclass(frozen=True, kw_only=True)
class SignalRow(FromRow):
    """One signal as `signals tail` prints it."""

    id: int
    created_at: datetime
    slot: datetime
    trader_id: uuid.UUID
    trader_name: str | None
    user_id: uuid.UUID
    symbol: str
    interval: str
    price: Decimal | None
    change_percent: Decimal | None
    quote_volume: Decimal | None


class SignalFollower:
    """Follows new signals by polling ``id > cursor`` (see docs/operations.md).

    Ids come from an identity sequence, so they are handed out at insert time while rows
    become visible at commit: a transaction that inserted a lower id may commit after a
    higher id was already read. The follower therefore keeps re-reading rows newer than
    ``grace`` seconds (by the database's clock) and prints each id once; the cursor only
    passes a row once it is older than the grace period. The worker commits a batch in
    milliseconds, so 30 s is ample.
    """

    #: Rows read per poll; when a poll is full the cursor moves past it regardless.
    BATCH = 2000

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        user_id: uuid.UUID | None = None,
        trader_id: uuid.UUID | None = None,
        grace_seconds: float = 30.0,
    ) -> None:
        self._conn = conn
        self._filters = {"user_id": user_id, "trader_id": trader_id}
        self._grace = timedelta(seconds=grace_seconds)
        self._cursor = 0
        self._seen: dict[int, datetime] = {}

    def start(self, last: int) -> None:
        """Place the cursor so that the next :meth:`poll` returns the last ``last`` signals."""
        row = one(self._conn, "admin_signals_latest_id", {**self._filters, "last": last})
        self._cursor = int(row["after_id"]) if row else 0

    def poll(self) -> list[SignalRow]:
        """Signals committed since the last poll, oldest first, each exactly once."""
        found = rows(
            self._conn,
            "admin_signals_after",
            {**self._filters, "after_id": self._cursor, "limit": self.BATCH},
        )
        fresh = [SignalRow.from_row(r) for r in found if int(r["id"]) not in self._seen]
        for r in found:
            self._seen[int(r["id"])] = r["created_at"]
        if found:
            if len(found) >= self.BATCH:
                self._cursor = max(int(r["id"]) for r in found)
            else:
                horizon = found[-1]["db_now"] - self._grace
                settled = [i for i, at in self._seen.items() if at < horizon]
                if settled:
                    self._cursor = max(self._cursor, max(settled))
        self._seen = {i: at for i, at in self._seen.items() if i > self._cursor}
        return fresh
