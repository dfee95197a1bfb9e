"""Is the market data fresh enough for a job's slot? Wait for it, or set the job aside.

A run at ``slot`` needs the candle containing the slot closed in the data for each of the
trader's timeframes. If it has not closed yet, the batch waits up to
``TRADER_DATA_WAIT_MS`` and then runs on the freshest data, recording how far behind it
was (``data_age_ms``). A timeframe that was never published at all is an infrastructure
problem: those traders are set aside and retried with backoff, so one trader's exotic
timeframe cannot hold up the rest of the batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from traderctl.worker.errors import SnapshotMissing
from traderctl.worker.intervals import INTERVAL_MS, MINUTE_MS
from traderctl.worker.market.store import SnapshotRow
from traderctl.worker.runner.report import BatchReport
from traderctl.worker.runner.snapshot_cache import SnapshotCache
from traderctl.worker.runner.spec import TraderSpec

__all__ = ["known_timeframes", "lag", "slot_boundary", "split_unpublished", "wait_for_data"]

_DATA_POLL_SECONDS = 0.2


def slot_boundary(slot: datetime, interval: str) -> datetime:
    """Start of the ``interval`` candle containing ``slot``: the boundary whose candle
    must be closed in the data for a run at ``slot`` (epoch-aligned, so 4h is 00:00,
    04:00 … and 1d is 00:00 UTC)."""
    minutes = INTERVAL_MS[interval] // MINUTE_MS
    epoch_minutes = int(slot.timestamp()) // 60
    return datetime.fromtimestamp((epoch_minutes - epoch_minutes % minutes) * 60, tz=UTC)


def lag(spec: TraderSpec, states: Mapping[str, SnapshotRow]) -> tuple[datetime | None, float]:
    """(data as of, ms the data is behind the slot) over the spec's timeframes.

    data as of = the oldest closed_through among the timeframes; behind = how far that
    boundary is before the candle boundary the slot needs (0 when the slot's candle
    has closed in the data).
    """
    as_of: datetime | None = None
    behind = 0.0
    for tf in spec.timeframes:
        state = states.get(tf)
        if state is None or state.closed_through is None:
            continue
        if as_of is None or state.closed_through < as_of:
            as_of = state.closed_through
        need = slot_boundary(spec.job.slot, tf)
        gap = (need - state.closed_through).total_seconds() * 1000
        behind = max(behind, gap)
    return as_of, behind


def known_timeframes(specs: Sequence[TraderSpec]) -> set[str]:
    """The timeframes the specs need that the market data can have."""
    return {tf for s in specs for tf in s.timeframes if tf in INTERVAL_MS}


def wait_for_data(
    conn: psycopg.Connection[Any],
    cache: SnapshotCache,
    specs: Sequence[TraderSpec],
    *,
    wait_ms: int,
    stop: threading.Event | None,
    published: dict[str, SnapshotRow],
) -> dict[str, SnapshotRow]:
    """Sync the cache and wait (up to ``wait_ms``) until every spec's slot candle closed."""
    intervals = known_timeframes(specs)
    states = cache.sync(conn, intervals, published=published)
    deadline = time.monotonic() + wait_ms / 1000
    while any(lag(s, states)[1] > 0 for s in specs):
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            break
        time.sleep(_DATA_POLL_SECONDS)
        states = cache.sync(conn, intervals)
    return states


def split_unpublished(
    published: Mapping[str, SnapshotRow],
    specs: list[TraderSpec],
    report: BatchReport,
    *,
    single: bool,
) -> list[TraderSpec]:
    """The specs whose timeframes have all been published; the others go to
    ``report.retry_jobs`` (or, for a single job, raise SnapshotMissing)."""
    if not specs:
        return specs
    missing = {
        tf for tf in known_timeframes(specs) if tf not in published or not published[tf].published
    }
    if not missing:
        return specs
    blocked = [s for s in specs if missing & set(s.timeframes)]
    reason = (
        f"no market data published yet for {', '.join(sorted(missing))}; the market-data "
        "worker must fetch it (MARKET_INTERVALS) before these traders can run"
    )
    if single:
        raise SnapshotMissing(reason)
    report.retry_jobs = [s.job for s in blocked]
    report.retry_reason = reason
    return [s for s in specs if not (missing & set(s.timeframes))]
