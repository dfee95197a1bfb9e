"""Operator actions and lookups behind `traderctl traders|requeue|stats|signals`.

Everything here takes an open (autocommit) psycopg connection and runs named queries from
``worker/sql/admin.sql`` or reads the ``ops`` views; the CLI modules only parse options
and render. Results are frozen dataclasses (rows) that :func:`to_jsonable` turns into the
``--json`` output, so the JSON shape is the dataclass fields.

Errors are :class:`~worker.errors.TraderctlError` subclasses with one-line messages
saying what was wrong and what to do. psycopg errors meaning "the schema is not there"
become :class:`SchemaNotMigrated`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Self

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from traderctl.worker import queries
from traderctl.worker.config import Settings
from traderctl.worker.db import connect
from traderctl.worker.errors import TraderctlError

__all__ = [
    "OPS_VIEWS",
    "AlertsFiring",
    "AlreadyRanThisMinute",
    "EnableResult",
    "InvalidTraderId",
    "InvalidUser",
    "JobRow",
    "RequeueMode",
    "RequeueReport",
    "RequeuedJob",
    "RunRow",
    "SchemaNotMigrated",
    "SignalFollower",
    "SignalRow",
    "TierLimitReached",
    "TraderDetail",
    "TraderList",
    "TraderNotRunnable",
    "TraderSummary",
    "UnknownInterval",
    "UnknownTrader",
    "UnknownUser",
    "check_interval",
    "check_trader_exists",
    "list_traders",
    "open_admin_connection",
    "ops_view",
    "parse_trader_id",
    "requeue_failed",
    "requeue_stalled",
    "requeue_trader",
    "resolve_user",
    "set_trader_enabled",
    "show_trader",
    "stats_snapshot",
    "to_jsonable",
]

#: The ops views `traderctl stats` reads, in the order of its JSON keys.
OPS_VIEWS: tuple[str, ...] = (
    "alerts",
    "executions_per_minute",
    "execution_time_by_interval",
    "queue_depth",
    "failure_rate_by_interval",
    "schedule_lag",
    "snapshot_freshness",
    "snapshot_reuse",
    "skips_by_reason",
    "cron_job_health",
    "stalled_jobs",
)

RequeueMode = Literal["trader", "failed", "stalled"]


# -- errors ------------------------------------------------------------------------------
class InvalidTraderId(TraderctlError):
    """The trader id is not a UUID; copy it from `traderctl traders list`."""


class UnknownTrader(TraderctlError):
    """No trader has this id; list them with `traderctl traders list`."""


class InvalidUser(TraderctlError):
    """--user must be a user id (UUID) or an email address."""


class UnknownUser(TraderctlError):
    """No user has this id or email; check auth.users."""


class UnknownInterval(TraderctlError):
    """The interval is not one of backend.schedule_intervals (1m 5m 15m 30m 1h 4h 1d)."""


class TraderNotRunnable(TraderctlError):
    """The trader cannot run now (disabled, blank code or a schedule problem); fix that first."""


class AlreadyRanThisMinute(TraderctlError):
    """The trader already has a run for the current minute; a run is unique per slot, retry next minute."""


class TierLimitReached(TraderctlError):
    """The owner's tier allows no more enabled traders; disable another one or upgrade the tier."""


class SchemaNotMigrated(TraderctlError):
    """The database lacks traderctl's schema (ops views, backend functions); run `traderctl db migrate`."""


class AlertsFiring(TraderctlError):
    """At least one alert of ops.alerts is firing; see `traderctl stats`."""


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


# -- plumbing ----------------------------------------------------------------------------
def open_admin_connection(database_url: str) -> psycopg.Connection[Any]:
    """An autocommit connection for operator commands."""
    return connect(database_url)


@contextmanager
def _schema_errors() -> Iterator[None]:
    try:
        yield
    except (
        psycopg.errors.UndefinedTable,
        psycopg.errors.UndefinedFunction,
        psycopg.errors.InvalidSchemaName,
    ) as exc:
        raise SchemaNotMigrated(
            f"the database lacks part of traderctl's schema ({_one_line(str(exc))}); "
            "run `traderctl db migrate` against it."
        ) from exc


def _rows(
    conn: psycopg.Connection[Any], name: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    with _schema_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(queries.get(name), params).fetchall()


def _one(
    conn: psycopg.Connection[Any], name: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    rows = _rows(conn, name, params)
    return rows[0] if rows else None


def to_jsonable(value: Any) -> Any:
    """Rows, dataclasses and their values as JSON-ready Python (ISO times, str UUIDs)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


class _Row:
    """from_row for frozen dataclasses whose fields are named like the query's columns."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        return cls(**{n: row[n] for n in names if n in row})


# -- validation --------------------------------------------------------------------------
def parse_trader_id(value: str) -> uuid.UUID:
    """The trader id as a UUID, or InvalidTraderId naming the bad value."""
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        raise InvalidTraderId(
            f"{value!r} is not a trader id (a UUID like 0b5c6f3e-…); "
            "copy it from `traderctl traders list`."
        ) from None


def check_trader_exists(conn: psycopg.Connection[Any], value: str) -> uuid.UUID:
    """Parse and check a trader id; UnknownTrader when no such trader exists."""
    trader_id = parse_trader_id(value)
    row = _one(conn, "admin_trader_exists", {"trader_id": trader_id})
    if not row or not row["found"]:
        raise UnknownTrader(
            f"no trader has id {trader_id}; list them with `traderctl traders list`."
        )
    return trader_id


def resolve_user(conn: psycopg.Connection[Any], value: str) -> uuid.UUID:
    """A --user value (UUID or email) as the user's id; UnknownUser when there is none."""
    value = value.strip()
    if "@" in value:
        row = _one(conn, "admin_user_by_email", {"email": value})
        if not row:
            raise UnknownUser(f"no user has email {value!r}; check auth.users.")
        user_id: uuid.UUID = row["id"]
        return user_id
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise InvalidUser(
            f"--user {value!r} is neither a user id (UUID) nor an email address."
        ) from None
    found = _one(conn, "admin_user_exists", {"user_id": parsed})
    if not found or not found["found"]:
        raise UnknownUser(f"no user has id {parsed}; check auth.users.")
    return parsed


def check_interval(conn: psycopg.Connection[Any], value: str) -> str:
    """The interval if it is one of backend.schedule_intervals, else UnknownInterval."""
    names = [r["name"] for r in _rows(conn, "admin_interval_names")]
    if value not in names:
        raise UnknownInterval(f"unknown interval {value!r}; use one of {', '.join(names)}.")
    return value


# -- traders -----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TraderSummary(_Row):
    """One row of `traders list`."""

    id: uuid.UUID
    user_id: uuid.UUID
    email: str | None
    name: str
    enabled: bool
    interval: str
    tier: str
    last_run_at: datetime | None
    last_run_status: str | None
    consecutive_errors: int
    run_count: int
    error_count: int
    signal_count: int
    last_error: str | None
    schedule_problem: str | None
    disabled_reason: str | None


@dataclass(frozen=True, kw_only=True)
class TraderList:
    """`traders list`: the matching traders (up to the limit) and how many match in all."""

    total: int
    traders: list[TraderSummary]


def list_traders(
    conn: psycopg.Connection[Any],
    *,
    user: str | None = None,
    interval: str | None = None,
    failing: bool = False,
    disabled: bool = False,
    limit: int = 200,
) -> TraderList:
    """Traders matching every given filter, oldest first."""
    user_id = resolve_user(conn, user) if user is not None else None
    if interval is not None:
        check_interval(conn, interval)
    rows = _rows(
        conn,
        "admin_list_traders",
        {
            "user_id": user_id,
            "interval": interval,
            "failing": failing,
            "disabled": disabled,
            "limit": limit,
        },
    )
    total = int(rows[0]["total"]) if rows else 0
    return TraderList(total=total, traders=[TraderSummary.from_row(r) for r in rows])


@dataclass(frozen=True, kw_only=True)
class RunRow(_Row):
    """One run of a trader (public.trader_runs)."""

    id: int
    slot: datetime
    status: str
    started_at: datetime
    finished_at: datetime
    duration_ms: Decimal | None
    symbols_evaluated: int
    matches: int
    signals: int
    error_type: str | None
    error_message: str | None
    worker: str | None


@dataclass(frozen=True, kw_only=True)
class JobRow(_Row):
    """One queue job of a trader (procrastinate.procrastinate_jobs)."""

    id: int
    queue_name: str
    status: str
    priority: int
    attempts: int
    slot: str | None
    scheduled_at: datetime | None
    worker_id: int | None


@dataclass(frozen=True, kw_only=True)
class TraderDetail(_Row):
    """`traders show`: the trader, its owner's tier, filter summary, runs and jobs."""

    id: uuid.UUID
    user_id: uuid.UUID
    email: str | None
    name: str
    enabled: bool
    interval: str
    required_timeframes: list[str]
    code_chars: int
    code_lines: int
    code_first_line: str
    filter_keys: list[str]
    tier: str
    queue_priority: int | None
    max_enabled_traders: int | None
    max_executions_per_hour: int | None
    max_symbols: int | None
    created_at: datetime
    updated_at: datetime
    last_slot: datetime | None
    last_run_at: datetime | None
    last_run_status: str | None
    last_error: str | None
    last_error_type: str | None
    last_error_at: datetime | None
    consecutive_errors: int
    error_count: int
    run_count: int
    signal_count: int
    schedule_problem: str | None
    disabled_reason: str | None
    current_matches: int
    next_due_slot: datetime | None
    runs: list[RunRow] = field(default_factory=list)
    jobs: list[JobRow] = field(default_factory=list)


def show_trader(conn: psycopg.Connection[Any], value: str, *, runs: int = 10) -> TraderDetail:
    """Everything an operator asks about one trader."""
    trader_id = parse_trader_id(value)
    row = _one(conn, "admin_trader_detail", {"trader_id": trader_id})
    if row is None:
        raise UnknownTrader(
            f"no trader has id {trader_id}; list them with `traderctl traders list`."
        )
    run_rows = _rows(conn, "admin_trader_runs", {"trader_id": trader_id, "limit": runs})
    job_rows = _rows(conn, "admin_trader_jobs", {"trader_id": trader_id, "limit": 10})
    detail = TraderDetail.from_row(row)
    return dataclasses.replace(
        detail,
        runs=[RunRow.from_row(r) for r in run_rows],
        jobs=[JobRow.from_row(r) for r in job_rows],
    )


@dataclass(frozen=True, kw_only=True)
class EnableResult:
    """What `traders enable|disable` did."""

    trader_id: uuid.UUID
    enabled: bool
    changed: bool
    disabled_reason: str | None
    previous_disabled_reason: str | None


def set_trader_enabled(
    conn: psycopg.Connection[Any], value: str, *, enabled: bool, reason: str | None = None
) -> EnableResult:
    """Enable or disable a trader (a no-op, reported as such, if it already is).

    Disabling stores ``disabled_reason`` (the user sees it); enabling clears it and the
    error streak (trigger), is refused by the tier limit like the frontend's own update,
    and enqueues an immediate run (the first-run trigger).
    """
    trader_id = parse_trader_id(value)
    with conn.transaction():
        state = _one(conn, "admin_trader_state", {"trader_id": trader_id})
        if state is None:
            raise UnknownTrader(
                f"no trader has id {trader_id}; list them with `traderctl traders list`."
            )
        if state["enabled"] == enabled:
            return EnableResult(
                trader_id=trader_id,
                enabled=enabled,
                changed=False,
                disabled_reason=state["disabled_reason"],
                previous_disabled_reason=state["disabled_reason"],
            )
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = f"disabled by an operator on {stamp}" + (f": {reason}" if reason else "")
        try:
            row = _one(
                conn,
                "admin_set_trader_enabled",
                {"trader_id": trader_id, "enabled": enabled, "reason": text},
            )
        except psycopg.errors.CheckViolation as exc:
            diag = exc.diag
            raise TierLimitReached(
                f"trader {trader_id} was not enabled: {_one_line(diag.message_primary)}. "
                f"{_one_line(diag.message_hint) or 'Disable another trader first.'}"
            ) from exc
        assert row is not None
        return EnableResult(
            trader_id=trader_id,
            enabled=row["enabled"],
            changed=True,
            disabled_reason=row["disabled_reason"],
            previous_disabled_reason=state["disabled_reason"],
        )


# -- requeue -----------------------------------------------------------------------------
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
        state = _one(conn, "admin_trader_state", {"trader_id": trader_id})
        if state is None:
            raise UnknownTrader(
                f"no trader has id {trader_id}; list them with `traderctl traders list`."
            )
        if not state["enabled"]:
            reason = _one_line(state["disabled_reason"]) or "no reason recorded"
            raise TraderNotRunnable(
                f"trader {trader_id} is disabled ({reason}); enable it first with "
                f"`traderctl traders enable {trader_id}`."
            )
        if state["schedule_problem"]:
            raise TraderNotRunnable(
                f"trader {trader_id} cannot be scheduled: {_one_line(state['schedule_problem'])}."
            )
        if not state["has_code"]:
            raise TraderNotRunnable(
                f"trader {trader_id} has blank filter code, so it never runs; "
                "the user must save code first."
            )
        waiting = _one(conn, "admin_waiting_job", {"trader_id": trader_id})
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
        ran = _one(conn, "admin_run_for_current_slot", {"trader_id": trader_id})
        if ran is not None:
            raise AlreadyRanThisMinute(
                f"trader {trader_id} already has run {ran['id']} for the current minute "
                f"({ran['slot'].astimezone(UTC):%H:%M} UTC); runs are unique per (trader, slot), so retry after "
                "the minute turns."
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
        row = _one(conn, "admin_enqueue_trader_run", {"trader_id": trader_id})
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
        rows = _rows(conn, "admin_failed_jobs", params)
        jobs = [RequeuedJob.from_job_row(r, "would_requeue") for r in rows]
        return RequeueReport(
            mode="failed",
            dry_run=True,
            jobs=jobs,
            summary=f"would requeue {len(jobs)} failed job(s)",
        )
    rows = _rows(conn, "admin_requeue_failed_jobs", params)
    jobs = [RequeuedJob.from_job_row(r, "requeued") for r in rows]
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

    Uses the trader worker's own recovery (:func:`worker.recovery.recover_stalled`,
    i.e. backend.recover_stalled_jobs): it deletes the silent workers and requeues
    each of their jobs counting an attempt, or marks it failed at TRADER_JOB_MAX_ATTEMPTS.
    """
    seconds = float(settings.stalled_seconds if older_than is None else older_than)
    if dry_run:
        rows = _rows(conn, "admin_stalled_jobs", {"stalled_seconds": seconds})
        jobs = [RequeuedJob.from_job_row(r, "would_requeue") for r in rows]
        return RequeueReport(
            mode="stalled",
            dry_run=True,
            jobs=jobs,
            summary=f"would requeue {len(jobs)} stalled job(s) (no heartbeat for {seconds:g} s)",
        )
    from traderctl.worker.runner.maintenance import (
        recover_stalled,  # the worker's module: imports procrastinate
    )

    before = {
        int(r["id"]): r for r in _rows(conn, "admin_stalled_jobs", {"stalled_seconds": seconds})
    }
    with _schema_errors():
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
    return RequeueReport(
        mode="stalled",
        dry_run=False,
        jobs=jobs,
        summary=f"requeued {requeued} stalled job(s); {failed} reached "
        f"TRADER_JOB_MAX_ATTEMPTS={settings.job_max_attempts} and were marked failed",
    )


# -- stats -------------------------------------------------------------------------------
def ops_view(conn: psycopg.Connection[Any], view: str) -> list[dict[str, Any]]:
    """Every row of one ops view (a name from :data:`OPS_VIEWS`)."""
    if view not in OPS_VIEWS:
        raise ValueError(f"not an ops view: {view!r}")
    query = sql.SQL(queries.get("admin_ops_view")).format(view=sql.Identifier(view))
    with _schema_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query).fetchall()


def stats_snapshot(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Every ops view `traderctl stats` shows, read in one REPEATABLE READ snapshot."""
    result: dict[str, Any] = {}
    with conn.transaction():
        conn.execute(queries.get("admin_read_only_snapshot"))
        result["generated_at"] = datetime.now().astimezone()
        for view in OPS_VIEWS:
            result[view] = ops_view(conn, view)
    return result


# -- signals -----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SignalRow(_Row):
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
        row = _one(self._conn, "admin_signals_latest_id", {**self._filters, "last": last})
        self._cursor = int(row["after_id"]) if row else 0

    def poll(self) -> list[SignalRow]:
        """Signals committed since the last poll, oldest first, each exactly once."""
        rows = _rows(
            self._conn,
            "admin_signals_after",
            {**self._filters, "after_id": self._cursor, "limit": self.BATCH},
        )
        fresh = [SignalRow.from_row(r) for r in rows if int(r["id"]) not in self._seen]
        for r in rows:
            self._seen[int(r["id"])] = r["created_at"]
        if rows:
            if len(rows) >= self.BATCH:
                self._cursor = max(int(r["id"]) for r in rows)
            else:
                horizon = rows[-1]["db_now"] - self._grace
                settled = [i for i, at in self._seen.items() if at < horizon]
                if settled:
                    self._cursor = max(self._cursor, max(settled))
        self._seen = {i: at for i, at in self._seen.items() if i > self._cursor}
        return fresh
