"""The rollout from the browser to the backend: execution modes, health, parity.

Rules and overrides live in ``backend`` (admins only); every change to them recomputes
the effective modes (triggers calling ``backend.refresh_trader_modes``) in the same
transaction, so the frontend's ``public.trader_modes`` rows and the scheduler agree the
moment it commits. A dry run makes the same change in a transaction that is rolled back, so the numbers it
prints are exactly what the real change would do. docs/rollout.md explains the phases.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from traderctl.worker import queries
from traderctl.worker.admin.db import one, rows, schema_errors
from traderctl.worker.admin.lookups import resolve_user
from traderctl.worker.errors import InvalidRolloutChange, UnknownTier

__all__ = [
    "MODES",
    "Mode",
    "ParityReport",
    "RolloutChange",
    "RolloutStatus",
    "parity",
    "parse_since",
    "rollout_status",
    "set_default_mode",
    "set_tier_mode",
    "set_user_mode",
    "update_settings",
]

Mode = Literal["browser", "shadow", "server"]
MODES: tuple[Mode, ...] = ("browser", "shadow", "server")


@dataclass(frozen=True, kw_only=True)
class RolloutStatus:
    """Everything `traderctl rollout show` prints."""

    settings: dict[str, Any]
    rules: list[dict[str, Any]]
    modes: list[dict[str, Any]]
    health: dict[str, Any]
    parity: list[dict[str, Any]]
    log: list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class RolloutChange:
    """What a change did (or, dry run, would do): who moves from which mode to which."""

    subject: str
    detail: str
    dry_run: bool
    moves: list[dict[str, Any]] = field(default_factory=list)

    @property
    def traders_moved(self) -> int:
        return sum(int(m["traders"]) for m in self.moves)

    @property
    def users_moved(self) -> int:
        return sum(int(m["users"]) for m in self.moves)


@dataclass(frozen=True, kw_only=True)
class ParityReport:
    """Agreement between browser reports and shadow runs since a time."""

    since: datetime
    tiers: list[dict[str, Any]]
    traders: list[dict[str, Any]]


def _check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise InvalidRolloutChange(f"unknown mode {mode!r}; use one of {', '.join(MODES)}.")
    return mode


def rollout_status(conn: psycopg.Connection[Any], *, log_limit: int = 10) -> RolloutStatus:
    """Rules, default, users and traders per mode and tier, health, last day's parity."""
    since = datetime.now().astimezone() - timedelta(days=1)
    return RolloutStatus(
        settings=one(conn, "rollout_settings") or {},
        rules=rows(conn, "rollout_rules"),
        modes=rows(conn, "rollout_mode_counts"),
        health=one(conn, "rollout_health") or {},
        parity=rows(conn, "rollout_parity_by_tier", {"since": since, "tier": None}),
        log=rows(conn, "rollout_recent_log", {"limit": log_limit}),
    )


def _apply(
    conn: psycopg.Connection[Any],
    *,
    kind: str,
    subject: str,
    detail: str,
    dry_run: bool,
    statements: list[tuple[str, dict[str, Any]]],
) -> RolloutChange:
    """Run the change's statements, report the moves; commit, or roll back a dry run."""
    with conn.transaction(force_rollback=dry_run):
        _execute(conn, "rollout_snapshot_modes", {})
        for name, params in statements:
            _execute(conn, name, params)
        if not dry_run:
            _execute(conn, "rollout_log", {"kind": kind, "subject": subject, "detail": detail})
        moves = rows(conn, "rollout_moves")
    return RolloutChange(subject=subject, detail=detail, dry_run=dry_run, moves=moves)


def _execute(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> None:
    with schema_errors():
        conn.execute(queries.get(name), params)


def set_tier_mode(
    conn: psycopg.Connection[Any],
    tier: str,
    mode: str,
    percent: float | None,
    *,
    dry_run: bool = False,
) -> RolloutChange:
    """Put ``percent`` of the tier's users in ``mode`` (browser: the whole tier back).

    ``server``/``shadow`` set that mode's percentage and keep the other; a user is in
    server when their bucket is below the server percentage, else in shadow when below
    the larger of the two. ``browser`` sets both to 0 (the rollback).
    """
    checked = _check_mode(mode)
    found = one(conn, "rollout_tier_exists", {"tier": tier})
    if not found or not found["found"]:
        raise UnknownTier(f"no tier named {tier!r}; `traderctl rollout show` lists the tiers.")
    if checked == "browser":
        if percent not in (None, 100, 0):
            raise InvalidRolloutChange(
                "--mode browser moves the whole tier back to the browser; omit --percent "
                "(to lower a percentage, set --mode server or --mode shadow to the new value)."
            )
        shadow: float | None = 0.0
        server: float | None = 0.0
        detail = f"tier {tier}: everyone back to browser"
    else:
        if percent is None:
            raise InvalidRolloutChange(f"--mode {checked} needs --percent (0 to 100).")
        if not 0 <= percent <= 100:
            raise InvalidRolloutChange(f"--percent {percent} is out of range; use 0 to 100.")
        shadow, server = (percent, None) if checked == "shadow" else (None, percent)
        detail = f"tier {tier}: {percent:g}% of users in {checked}"
    return _apply(
        conn,
        kind="rule",
        subject=tier,
        detail=detail,
        dry_run=dry_run,
        statements=[("rollout_upsert_rule", {"tier": tier, "shadow": shadow, "server": server})],
    )


def set_user_mode(
    conn: psycopg.Connection[Any], user: str, mode: str | None, *, dry_run: bool = False
) -> RolloutChange:
    """Override one user's mode (``None``: remove the override, tier rules apply again)."""
    user_id: uuid.UUID = resolve_user(conn, user)
    statement: tuple[str, dict[str, Any]]
    if mode is None:
        statement = ("rollout_delete_override", {"user_id": user_id})
        detail = f"user {user_id}: override removed"
    else:
        statement = ("rollout_upsert_override", {"user_id": user_id, "mode": _check_mode(mode)})
        detail = f"user {user_id}: override {mode}"
    return _apply(
        conn,
        kind="override",
        subject=str(user_id),
        detail=detail,
        dry_run=dry_run,
        statements=[statement],
    )


def set_default_mode(
    conn: psycopg.Connection[Any], mode: str, *, dry_run: bool = False
) -> RolloutChange:
    """The mode of traders whose tier has no rule and whose user has no override."""
    checked = _check_mode(mode)
    return _apply(
        conn,
        kind="settings",
        subject="default_mode",
        detail=f"default mode {checked}",
        dry_run=dry_run,
        statements=[("rollout_set_default_mode", {"mode": checked})],
    )


def update_settings(
    conn: psycopg.Connection[Any], changes: dict[str, Any], *, dry_run: bool = False
) -> RolloutChange:
    """Change fallback and parity thresholds; keys not given keep their value."""
    keys = (
        "fallback_enabled",
        "tick_missing_after_s",
        "lag_p99_threshold_s",
        "worker_alive_s",
        "hold_s",
        "parity_threshold",
        "parity_min_sample",
    )
    unknown = set(changes) - set(keys)
    if unknown:
        raise InvalidRolloutChange(f"unknown rollout setting(s): {', '.join(sorted(unknown))}.")
    params = {k: changes.get(k) for k in keys}
    detail = ", ".join(f"{k}={v}" for k, v in changes.items() if v is not None) or "no change"
    try:
        return _apply(
            conn,
            kind="settings",
            subject="thresholds",
            detail=detail,
            dry_run=dry_run,
            statements=[("rollout_update_settings", params)],
        )
    except psycopg.errors.CheckViolation as exc:
        raise InvalidRolloutChange(
            f"rejected rollout setting ({detail}): {exc.diag.message_primary}; "
            "see docs/rollout.md for the allowed ranges."
        ) from exc


def parse_since(value: str) -> timedelta:
    """``30m``, ``12h``, ``1d``, ``2w`` as a duration."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    text = value.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise InvalidRolloutChange(
            f"--since {value!r} is not a duration; use a number and a unit, e.g. 30m, 12h, 1d."
        )
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def parity(
    conn: psycopg.Connection[Any], *, since: timedelta, tier: str | None = None, limit: int = 50
) -> ParityReport:
    """Agreement per tier and per trader (least agreeing first) over the last ``since``."""
    start = datetime.now().astimezone() - since
    params = {"since": start, "tier": tier, "limit": limit}
    return ParityReport(
        since=start,
        tiers=rows(conn, "rollout_parity_by_tier", params),
        traders=rows(conn, "rollout_parity_by_trader", params),
    )
