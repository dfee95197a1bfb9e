"""`traders list|show|enable|disable`: find traders, inspect one, switch one on or off."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from traderctl.worker.admin.db import FromRow, one, one_line, rows
from traderctl.worker.admin.lookups import (
    check_interval,
    parse_trader_id,
    resolve_user,
    trader_state,
    unknown_trader,
)
from traderctl.worker.errors import TierLimitReached

__all__ = [
    "EnableResult",
    "JobRow",
    "RunRow",
    "TraderDetail",
    "TraderList",
    "TraderSummary",
    "list_traders",
    "set_trader_enabled",
    "show_trader",
]


@dataclass(frozen=True, kw_only=True)
class TraderSummary(FromRow):
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
    found = rows(
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
    total = int(found[0]["total"]) if found else 0
    return TraderList(total=total, traders=[TraderSummary.from_row(r) for r in found])


@dataclass(frozen=True, kw_only=True)
class RunRow(FromRow):
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
class JobRow(FromRow):
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
class TraderDetail(FromRow):
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
    row = one(conn, "admin_trader_detail", {"trader_id": trader_id})
    if row is None:
        raise unknown_trader(trader_id)
    run_rows = rows(conn, "admin_trader_runs", {"trader_id": trader_id, "limit": runs})
    job_rows = rows(conn, "admin_trader_jobs", {"trader_id": trader_id, "limit": 10})
    return dataclasses.replace(
        TraderDetail.from_row(row),
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
        state = trader_state(conn, trader_id)
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
            row = one(
                conn,
                "admin_set_trader_enabled",
                {"trader_id": trader_id, "enabled": enabled, "reason": text},
            )
        except psycopg.errors.CheckViolation as exc:
            diag = exc.diag
            raise TierLimitReached(
                f"trader {trader_id} was not enabled: {one_line(diag.message_primary)}. "
                f"{one_line(diag.message_hint) or 'Disable another trader first.'}"
            ) from exc
        assert row is not None
        return EnableResult(
            trader_id=trader_id,
            enabled=row["enabled"],
            changed=True,
            disabled_reason=row["disabled_reason"],
            previous_disabled_reason=state["disabled_reason"],
        )
