"""Parse and resolve what operators type: trader ids, users (id or email), intervals.

Malformed input fails before any query (InvalidTraderId, InvalidUser); well-formed input
naming nothing fails with the Unknown* error, whose message says where to find valid
values.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from traderctl.worker.admin.db import one, rows
from traderctl.worker.errors import (
    InvalidTraderId,
    InvalidUser,
    UnknownInterval,
    UnknownTrader,
    UnknownUser,
)

__all__ = [
    "check_interval",
    "check_trader_exists",
    "parse_trader_id",
    "resolve_user",
    "trader_state",
    "unknown_trader",
]


def parse_trader_id(value: str) -> uuid.UUID:
    """The trader id as a UUID, or InvalidTraderId naming the bad value."""
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        raise InvalidTraderId(
            f"{value!r} is not a trader id (a UUID like 0b5c6f3e-…); "
            "copy it from `traderctl traders list`."
        ) from None


def unknown_trader(trader_id: uuid.UUID) -> UnknownTrader:
    """The error for a well-formed id that names no trader."""
    return UnknownTrader(f"no trader has id {trader_id}; list them with `traderctl traders list`.")


def check_trader_exists(conn: psycopg.Connection[Any], value: str) -> uuid.UUID:
    """Parse and check a trader id; UnknownTrader when no such trader exists."""
    trader_id = parse_trader_id(value)
    row = one(conn, "admin_trader_exists", {"trader_id": trader_id})
    if not row or not row["found"]:
        raise unknown_trader(trader_id)
    return trader_id


def trader_state(conn: psycopg.Connection[Any], trader_id: uuid.UUID) -> dict[str, Any]:
    """The trader's row of ``admin_trader_state`` (enabled, reasons, interval, has_code)."""
    state = one(conn, "admin_trader_state", {"trader_id": trader_id})
    if state is None:
        raise unknown_trader(trader_id)
    return state


def resolve_user(conn: psycopg.Connection[Any], value: str) -> uuid.UUID:
    """A --user value (UUID or email) as the user's id; UnknownUser when there is none."""
    value = value.strip()
    if "@" in value:
        row = one(conn, "admin_user_by_email", {"email": value})
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
    found = one(conn, "admin_user_exists", {"user_id": parsed})
    if not found or not found["found"]:
        raise UnknownUser(f"no user has id {parsed}; check auth.users.")
    return parsed


def check_interval(conn: psycopg.Connection[Any], value: str) -> str:
    """The interval if it is one of backend.schedule_intervals, else UnknownInterval."""
    names = [r["name"] for r in rows(conn, "admin_interval_names")]
    if value not in names:
        raise UnknownInterval(f"unknown interval {value!r}; use one of {', '.join(names)}.")
    return value
