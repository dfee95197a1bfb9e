"""Running claimed run_trader jobs: load, wait for data, evaluate, commit in one transaction.

:class:`TraderRunner` is shared by both ways jobs reach a worker: the batch loop in
:mod:`worker.worker_process` (many jobs per claim, finished in the commit transaction)
and procrastinate's own worker running the ``run_trader`` task of :mod:`worker.tasks`
(one job, finished by procrastinate afterwards). Either way:

1. one query loads every trader of the batch with its owner's tier (max symbols), its
   stored previous matches and whether the slot already has a run;
2. the snapshot cache makes the runtime hold the current market data; if a trader's
   slot needs a candle that has not closed in the data yet, the batch waits up to
   ``TRADER_DATA_WAIT_MS`` and then runs on the freshest data, recording how far behind
   it was (``data_age_ms``);
3. each trader is evaluated over the top ``max_symbols`` symbols by quote volume; a filter
   error is the trader's (recorded on its run), never the job's;
4. ``backend.commit_trader_runs`` writes runs, signals, match state and counters, and
   finishes the jobs, in one transaction; a (trader, slot) that already has a run is
   skipped there, which is what makes a duplicated or retried job harmless.

Infrastructure failures (database, snapshot never published) raise, and the caller
requeues the jobs with backoff.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from traderctl.worker import queries
from traderctl.worker.config import Settings
from traderctl.worker.errors import InvalidJob, SnapshotMissing
from traderctl.worker.intervals import INTERVAL_MS, MINUTE_MS
from traderctl.worker.market.store import SnapshotRow
from traderctl.worker.runner.snapshot_cache import SnapshotCache, SnapshotSink

__all__ = [
    "BatchReport",
    "FilterRuntimeLike",
    "TraderJob",
    "TraderRunner",
    "TraderSpec",
    "slot_boundary",
]

logger = logging.getLogger(__name__)

_DATA_POLL_SECONDS = 0.2


class FilterRuntimeLike(SnapshotSink, Protocol):
    """The part of worker.sandbox.FilterRuntime the runner uses."""

    def run_trader(
        self,
        *,
        trader_id: str,
        code: str,
        refresh_interval: str,
        required_timeframes: list[str] | None,
        symbols: list[str],
        previous_matches: list[str] | None,
    ) -> Any: ...


def slot_boundary(slot: datetime, interval: str) -> datetime:
    """Start of the ``interval`` candle containing ``slot``: the boundary whose candle
    must be closed in the data for a run at ``slot`` (epoch-aligned, so 4h is 00:00,
    04:00 … and 1d is 00:00 UTC)."""
    minutes = INTERVAL_MS[interval] // MINUTE_MS
    epoch_minutes = int(slot.timestamp()) // 60
    return datetime.fromtimestamp((epoch_minutes - epoch_minutes % minutes) * 60, tz=UTC)


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
            trader_id = str(uuid.UUID(str(args["trader_id"])))
            slot = datetime.fromisoformat(str(args["slot"]).replace("Z", "+00:00"))
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidJob(
                f"job {job_id} has invalid args {dict(args)!r} ({exc}); expected "
                '{"trader_id": "<uuid>", "slot": "<ISO-8601 UTC>"}'
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
        prefix, _, interval = self.queue_name.partition(".")
        return interval if prefix == "traders" and interval in INTERVAL_MS else None


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


@dataclass(kw_only=True)
class BatchReport:
    """What one batch did, for logs, metrics and tests."""

    jobs: int = 0
    committed: int = 0
    ok: int = 0
    errors: int = 0
    duplicates: int = 0
    skipped: int = 0
    signals: int = 0
    error_types: dict[str, int] = field(default_factory=dict)
    load_ms: float = 0.0
    data_wait_ms: float = 0.0
    eval_ms: float = 0.0
    commit_ms: float = 0.0
    run_durations_ms: list[float] = field(default_factory=list)
    stale_runs: int = 0
    #: Jobs not run because market data they need was never published: the caller
    #: requeues them with backoff (an infrastructure error, not the trader's).
    retry_jobs: list[TraderJob] = field(default_factory=list)
    retry_reason: str = ""


def _error_fields(result: Any) -> tuple[str | None, str | None]:
    """(type, message) of a TraderRunResult's error, or (None, None)."""
    error = getattr(result, "error", None)
    if error is None:
        return None, None
    if isinstance(error, str):
        return error, error
    if isinstance(error, Mapping):
        kind = error.get("kind") or error.get("type")
        return str(kind or "runtime"), str(error.get("message") or kind)
    kind = getattr(error, "kind", None) or getattr(error, "type", None) or "runtime"
    kind = getattr(kind, "value", kind)
    message = getattr(error, "message", None) or str(error)
    return str(kind), str(message)


class TraderRunner:
    """Evaluates and commits batches of run_trader jobs with one runtime and its cache.

    One runner per V8 runtime; calls are serialized by an internal lock, because the
    runtime and the snapshot cache belong to one thread at a time.
    """

    def __init__(
        self,
        settings: Settings,
        runtime: FilterRuntimeLike,
        *,
        worker_name: str,
        cache: SnapshotCache | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.worker_name = worker_name
        self.cache = cache or SnapshotCache(runtime)
        self.lock = threading.Lock()

    # -- loading -------------------------------------------------------------------------
    def load(self, conn: psycopg.Connection[Any], jobs: Sequence[TraderJob]) -> list[TraderSpec]:
        """Every job's trader, tier, previous matches and whether its slot already ran."""
        params = {
            "job_ids": [j.job_id for j in jobs],
            "trader_ids": [j.trader_id for j in jobs],
            "slots": [j.slot for j in jobs],
        }
        with conn.cursor(row_factory=dict_row) as cur:
            rows = {r["job_id"]: r for r in cur.execute(queries.get("load_traders"), params)}
        return [TraderSpec.from_row(job, rows[job.job_id]) for job in jobs]

    # -- freshness -----------------------------------------------------------------------
    @staticmethod
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

    def _known_timeframes(self, specs: Sequence[TraderSpec]) -> set[str]:
        return {tf for s in specs for tf in s.timeframes if tf in INTERVAL_MS}

    def _wait_for_data(
        self,
        conn: psycopg.Connection[Any],
        specs: Sequence[TraderSpec],
        stop: threading.Event | None,
        published: dict[str, SnapshotRow],
    ) -> dict[str, SnapshotRow]:
        intervals = self._known_timeframes(specs)
        states = self.cache.sync(conn, intervals, published=published)
        deadline = time.monotonic() + self.settings.data_wait_ms / 1000
        while any(self.lag(s, states)[1] > 0 for s in specs):
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                break
            time.sleep(_DATA_POLL_SECONDS)
            states = self.cache.sync(conn, intervals)
        return states

    # -- evaluation ----------------------------------------------------------------------
    def _symbols(self, spec: TraderSpec) -> list[str]:
        universe = self.cache.universe
        return universe if spec.max_symbols is None else universe[: spec.max_symbols]

    def _run_all(self, specs: Sequence[TraderSpec]) -> list[tuple[Any, str | None, str | None]]:
        """(result, error type, error message) per spec, in one V8 call when possible.

        The runtime's batch call keeps each trader under its own CPU budget; if the batch
        call itself fails (a runtime bug, not a filter error), traders are run one by one
        so that one trader cannot fail the others.
        """
        run_traders = getattr(self.runtime, "run_traders", None)
        if run_traders is not None and len(specs) > 1:
            from traderctl.worker.sandbox.runtime import TraderRequest

            requests = [
                TraderRequest(
                    trader_id=spec.job.trader_id,
                    code=spec.code,
                    refresh_interval=spec.refresh_interval,
                    required_timeframes=spec.required_timeframes,
                    symbols=self._symbols(spec),
                    previous_matches=spec.previous_matches if spec.has_matches else None,
                )
                for spec in specs
            ]
            try:
                results = run_traders(requests)
            except Exception:
                logger.exception("batch evaluation failed; running the traders one by one")
            else:
                return [(r, *_error_fields(r)) for r in results]
        return [self._run_one(spec) for spec in specs]

    def _run_one(self, spec: TraderSpec) -> tuple[Any, str | None, str | None]:
        try:
            result = self.runtime.run_trader(
                trader_id=spec.job.trader_id,
                code=spec.code,
                refresh_interval=spec.refresh_interval,
                required_timeframes=spec.required_timeframes,
                symbols=self._symbols(spec),
                previous_matches=spec.previous_matches if spec.has_matches else None,
            )
        except Exception as exc:  # a runtime bug must not take the batch down
            logger.exception("runtime failed on trader %s", spec.job.trader_id)
            return None, "internal", f"{type(exc).__name__}: {exc}"
        return (result, *_error_fields(result))

    def _record(
        self,
        spec: TraderSpec,
        outcome: tuple[Any, str | None, str | None],
        states: Mapping[str, SnapshotRow],
        started_at: datetime,
        report: BatchReport,
    ) -> dict[str, Any]:
        result, error_type, error_message = outcome
        duration = getattr(result, "duration_ms", None)
        duration_ms = float(duration) if isinstance(duration, int | float) else 0.0
        report.run_durations_ms.append(duration_ms)
        matches: list[str] = (
            list(getattr(result, "filtered_symbols", ()) or ()) if error_type is None else []
        )
        as_of, behind = self.lag(spec, states)
        if behind > 0:
            report.stale_runs += 1
        prices: dict[str, list[float | None]] = {}
        for symbol in matches:
            info = self.cache.tickers.get(symbol)
            if info is not None:
                prices[symbol] = [info.price, info.change_percent, info.quote_volume]
        evaluated = getattr(result, "symbols_evaluated", None)
        return {
            "job_id": spec.job.job_id,
            "trader_id": spec.job.trader_id,
            "slot": spec.job.slot.isoformat(),
            "interval": spec.refresh_interval,
            "status": "ok" if error_type is None else "error",
            "error_type": error_type,
            "error_message": error_message,
            "started_at": started_at.isoformat(),
            "duration_ms": duration_ms,
            "symbols_evaluated": int(evaluated) if isinstance(evaluated, int) else 0,
            "symbol_errors": _count(getattr(result, "symbol_errors", 0)),
            "matches": matches,
            "prices": prices,
            "data_as_of": as_of.isoformat() if as_of else None,
            "data_age_ms": behind,
        }

    # -- the batch -----------------------------------------------------------------------
    def process(
        self,
        conn: psycopg.Connection[Any],
        jobs: Sequence[TraderJob],
        *,
        worker_id: int | None,
        stop: threading.Event | None = None,
    ) -> BatchReport:
        """Run ``jobs`` and commit them. With ``worker_id`` the jobs still held by that
        worker are finished in the commit transaction; without, the caller finishes them.

        Raises on infrastructure errors (psycopg errors, SnapshotMissing) without having
        written anything: the caller requeues the jobs.
        """
        with self.lock:
            return self._process(conn, jobs, worker_id=worker_id, stop=stop)

    def _split_unpublished(
        self,
        published: Mapping[str, SnapshotRow],
        specs: list[TraderSpec],
        report: BatchReport,
        *,
        single: bool,
    ) -> list[TraderSpec]:
        """Set aside the traders needing a timeframe that was never published, so one
        trader's exotic timeframe cannot hold up the rest of the batch."""
        if not specs:
            return specs
        missing = {
            tf
            for tf in self._known_timeframes(specs)
            if tf not in published or not published[tf].published
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

    def _process(
        self,
        conn: psycopg.Connection[Any],
        jobs: Sequence[TraderJob],
        *,
        worker_id: int | None,
        stop: threading.Event | None,
    ) -> BatchReport:
        report = BatchReport(jobs=len(jobs))
        t0 = time.perf_counter()
        specs = self.load(conn, jobs)
        runnable = [s for s in specs if s.runnable]
        report.duplicates = sum(1 for s in specs if s.already_run)
        report.skipped = len(specs) - len(runnable) - report.duplicates
        report.load_ms = (time.perf_counter() - t0) * 1000

        records: list[dict[str, Any]] = []
        published = self.cache.poll_versions(conn) if runnable else {}
        runnable = self._split_unpublished(published, runnable, report, single=worker_id is None)
        if runnable:
            t1 = time.perf_counter()
            states = self._wait_for_data(conn, runnable, stop, published)
            t2 = time.perf_counter()
            report.data_wait_ms = (t2 - t1) * 1000
            started_at = datetime.now(UTC)
            outcomes = self._run_all(runnable)
            records = [
                self._record(spec, outcome, states, started_at, report)
                for spec, outcome in zip(runnable, outcomes, strict=True)
            ]
            report.eval_ms = (time.perf_counter() - t2) * 1000

        t3 = time.perf_counter()
        params = {
            "runs": json.dumps(records),
            "worker": self.worker_name if worker_id is None else f"{self.worker_name}#{worker_id}",
            "disable_after": self.settings.auto_disable_errors,
            "worker_id": worker_id,
            "finish_job_ids": [
                j.job_id for j in jobs if j.job_id not in {r.job_id for r in report.retry_jobs}
            ],
            "delete_jobs": False,
        }
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(queries.get("commit_trader_runs"), params).fetchall()
        report.commit_ms = (time.perf_counter() - t3) * 1000

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
            else:
                report.skipped += 1
        return report


def _count(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, Sequence | Mapping):
        return len(value)
    return 0


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """Backoff before the next attempt of a job that failed for infrastructure reasons."""
    seconds = settings.retry_base_seconds * (2 ** min(attempts, 8))
    return timedelta(seconds=min(seconds, 300))
