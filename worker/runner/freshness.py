"""Is the market data fresh enough for a job's slot? Wait for it, or set the job aside.

A run at ``slot`` needs the candle containing the slot closed in the data for each of the
trader's timeframes. If it has not closed yet, the batch waits up to
``TRADERCTL_WORKER_DATA_WAIT_MS`` and then runs on the freshest data, recording how far behind it
was (``data_age_ms``). A timeframe the market data does not publish while it publishes
others is the trader's problem (an error run, ``timeframe_unavailable``); market data not
published at all yet is an infrastructure problem: those traders are set aside and
retried with backoff. Either way the rest of the batch runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from traderctl.worker.intervals import INTERVAL_MS, MINUTE_MS
from traderctl.worker.market.store import SnapshotRow
from traderctl.worker.runner.report import BatchReport
from traderctl.worker.runner.snapshot_cache import SnapshotCache
from traderctl.worker.runner.spec import TraderSpec

__all__ = [
    "TIMEFRAME_UNAVAILABLE",
    "Lag",
    "known_timeframes",
    "lag",
    "lags",
    "slot_boundary",
    "split_unpublished",
    "unavailable_timeframes",
    "wait_for_data",
]

_DATA_POLL_SECONDS = 0.2

#: What :func:`lag` returns: (data as of, ms behind the slot's candle).
Lag = tuple[datetime | None, float]


def slot_boundary(slot: datetime, interval: str) -> datetime:
    """Start of the ``interval`` candle containing ``slot``: the boundary whose candle
    must be closed in the data for a run at ``slot`` (epoch-aligned, so 4h is 00:00,
    04:00 … and 1d is 00:00 UTC)."""
    minutes = INTERVAL_MS[interval] // MINUTE_MS
    epoch_minutes = int(slot.timestamp()) // 60
    return datetime.fromtimestamp((epoch_minutes - epoch_minutes % minutes) * 60, tz=UTC)


def lag(spec: TraderSpec, states: Mapping[str, SnapshotRow]) -> Lag:
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


def lags(specs: Sequence[TraderSpec], states: Mapping[str, SnapshotRow]) -> list[Lag]:
    """:func:`lag` of each spec, computed once per distinct (slot, timeframes): a batch has
    a handful of those, and working each out again per job was ~5 % of a worker's Python
    time."""
    seen: dict[tuple[datetime, tuple[str, ...]], Lag] = {}
    out: list[Lag] = []
    for spec in specs:
        key = (spec.job.slot, tuple(spec.timeframes))
        found = seen.get(key)
        if found is None:
            found = seen[key] = lag(spec, states)
        out.append(found)
    return out


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
    while any(behind > 0 for _, behind in lags(specs, states)):
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            break
        time.sleep(_DATA_POLL_SECONDS)
        states = cache.sync(conn, intervals)
    return states


#: error_type of the run recorded for a trader needing a timeframe the data never has.
TIMEFRAME_UNAVAILABLE = "timeframe_unavailable"


def unavailable_timeframes(published: Mapping[str, SnapshotRow], spec: TraderSpec) -> list[str]:
    """The spec's timeframes the market data does not publish: not a kline interval at all,
    or absent while other intervals are published (the market-data worker is running but
    not configured for it). Empty while nothing is published yet (that is the market-data
    worker not having started, an infrastructure matter)."""
    live = {tf for tf, row in published.items() if tf in INTERVAL_MS and row.published}
    return [
        tf
        for tf in dict.fromkeys(spec.timeframes)
        if tf not in INTERVAL_MS or (live and tf not in live)
    ]


def unavailable_message(published: Mapping[str, SnapshotRow], missing: Sequence[str]) -> str:
    """The run's error message: which timeframe, what is published, what to do."""
    live = sorted(
        (tf for tf, row in published.items() if tf in INTERVAL_MS and row.published),
        key=lambda tf: INTERVAL_MS[tf],
    )
    names = ", ".join(repr(tf) for tf in missing)
    return (
        f"requiredTimeframes names {names}, which the market data does not publish "
        f"(published: {', '.join(live) or 'none'}). Remove it from the filter's "
        "requiredTimeframes, or ask the operator to add it to TRADERCTL_MARKET_INTERVALS."
    )


def split_unpublished(
    published: Mapping[str, SnapshotRow],
    specs: list[TraderSpec],
    report: BatchReport,
) -> tuple[list[TraderSpec], list[tuple[TraderSpec, str]]]:
    """(runnable specs, specs that cannot run with why).

    A spec needing a timeframe the market data does not publish cannot run, ever, until
    its filter or the market-data configuration changes: that is the trader's error, so it
    gets an error run (``timeframe_unavailable``) and its job succeeds; retrying would
    only burn attempts. A spec needing data never published because nothing is published
    yet goes to ``report.retry_jobs``: retried with backoff, the rest of the batch runs.
    """
    if not specs:
        return specs, []
    unavailable: list[tuple[TraderSpec, str]] = []
    available: list[TraderSpec] = []
    for spec in specs:
        missing_tfs = unavailable_timeframes(published, spec)
        if missing_tfs:
            unavailable.append((spec, unavailable_message(published, missing_tfs)))
        else:
            available.append(spec)
    missing = {
        tf
        for tf in known_timeframes(available)
        if tf not in published or not published[tf].published
    }
    if not missing:
        return available, unavailable
    blocked = [s for s in available if missing & set(s.timeframes)]
    reason = (
        f"no market data published yet for {', '.join(sorted(missing))}; the market-data "
        "worker must fetch it (TRADERCTL_MARKET_INTERVALS) before these traders can run"
    )
    report.retry_jobs = [s.job for s in blocked]
    report.retry_reason = reason
    return [s for s in available if not (missing & set(s.timeframes))], unavailable
