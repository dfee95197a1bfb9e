"""Committing a batch: one run record per evaluated trader, written in one transaction.

``backend.commit_trader_runs`` (through :func:`traderctl.worker.queue.manager.commit_runs`)
writes runs, signals, match state and counters and finishes the jobs together; a (trader,
slot) that already has a run is skipped there, which is what makes a duplicated or
retried job harmless.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from traderctl.worker.queue import manager
from traderctl.worker.runner.evaluate import Outcome
from traderctl.worker.runner.freshness import Lag
from traderctl.worker.runner.job import TraderJob
from traderctl.worker.runner.report import BatchReport
from traderctl.worker.runner.snapshot_cache import SnapshotCache
from traderctl.worker.runner.spec import TraderSpec

__all__ = ["commit_batch", "records_json", "run_record"]


def _count(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, Sequence | Mapping):
        return len(value)
    return 0


def run_record(
    spec: TraderSpec,
    outcome: Outcome,
    freshness: Lag,
    started_at: str,
    cache: SnapshotCache,
    report: BatchReport,
) -> dict[str, Any]:
    """The run row of one evaluated trader (for :func:`records_json`); counts it on
    ``report``. ``freshness`` is the spec's :func:`~traderctl.worker.runner.freshness.lag`,
    ``started_at`` ISO-8601 text."""
    result, error_type, error_message = outcome
    duration = getattr(result, "duration_ms", None)
    duration_ms = float(duration) if isinstance(duration, int | float) else 0.0
    report.run_durations_ms.append(duration_ms)
    matches: list[str] = (
        list(getattr(result, "filtered_symbols", ()) or ()) if error_type is None else []
    )
    as_of, behind = freshness
    if behind > 0:
        report.stale_runs += 1
    evaluated = getattr(result, "symbols_evaluated", None)
    return {
        "job_id": spec.job.job_id,
        "trader_id": spec.job.trader_id,
        "slot": spec.job.slot_text,
        "interval": spec.refresh_interval,
        "status": "ok" if error_type is None else "error",
        "error_type": error_type,
        "error_message": error_message,
        "started_at": started_at,
        "duration_ms": duration_ms,
        "symbols_evaluated": int(evaluated) if isinstance(evaluated, int) else 0,
        "symbol_errors": _count(getattr(result, "symbol_errors", 0)),
        "matches": matches,
        # JSON text already (SnapshotCache.prices_json); records_json writes it verbatim.
        "prices": cache.prices_json(matches),
        "data_as_of": as_of.isoformat() if as_of else None,
        "data_age_ms": behind,
    }


#: What stands for a record's prices in records_json's one json.dumps call. Its encoded
#: form cannot occur anywhere else in the output: inside a JSON string every '"' follows
#: a backslash, so the text 's":"' never appears in one.
_PRICES_STANDIN = {"prices": "\x00"}
_PRICES_ENCODED = '"prices":"\\u0000"'


def records_json(records: Sequence[Mapping[str, Any]]) -> str:
    """Run records as the JSON array ``backend.commit_trader_runs`` takes; each record's
    ``prices`` is JSON object text already and goes in verbatim.

    One json.dumps over the whole batch, then each stand-in replaced by its prices: a
    json.dumps call per record cost more in call overhead than in encoding.
    """
    parts = json.dumps([{**r, **_PRICES_STANDIN} for r in records], separators=(",", ":")).split(
        _PRICES_ENCODED
    )
    if len(parts) != len(records) + 1:
        raise RuntimeError("run records: a prices stand-in went missing in the JSON")
    out = [parts[0]]
    for record, rest in zip(records, parts[1:], strict=True):
        out.append('"prices":')
        out.append(record["prices"])
        out.append(rest)
    return "".join(out)


def commit_batch(
    conn: psycopg.Connection[Any],
    jobs: Sequence[TraderJob],
    records: list[dict[str, Any]],
    report: BatchReport,
    *,
    worker: str,
    worker_id: int,
    disable_after: int,
    delete_jobs: bool,
) -> None:
    """Commit ``records`` and finish ``jobs`` (except those set aside for a retry); tally
    the outcome of each job on ``report``."""
    retry_ids = {r.job_id for r in report.retry_jobs}
    rows = manager.commit_runs(
        conn,
        runs_json=records_json(records),
        worker=worker,
        disable_after=disable_after,
        worker_id=worker_id,
        finish_job_ids=[j.job_id for j in jobs if j.job_id not in retry_ids],
        delete_jobs=delete_jobs,
    )
    by_job = {r["job_id"]: r for r in records}
    for row in rows:
        if row["outcome"] == "committed":
            report.committed += 1
            report.signals += int(row["signals"] or 0)
            record = by_job.get(row["job_id"])
            if record is not None and record["status"] == "error":
                report.errors += 1
                kind = str(record["error_type"])
                report.error_types[kind] = report.error_types.get(kind, 0) + 1
            else:
                report.ok += 1
        elif row["outcome"] == "duplicate":
            report.duplicates += 1
        elif row["outcome"] == "not_held":
            report.not_held += 1
        else:
            report.skipped += 1
