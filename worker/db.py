"""Where the database is, and connecting to it with errors that say what to check.

Callers pass the URL: ``DATABASE_URL``, or in development the embedded cluster's
(:func:`traderctl.worker.local.embedded_pg.resolve_database_url`, used by the CLI). psycopg's connection errors are converted here, where they enter our code, into
:class:`DatabaseUnreachable` naming host, port and database, never the password.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from traderctl.worker.errors import DatabaseUnreachable

__all__ = ["connect", "describe_url"]


def describe_url(url: str) -> str:
    """host:port/dbname of a libpq URL or DSN, without user or password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparseable DATABASE_URL)"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    dbname = parts.get("dbname") or parts.get("user") or "postgres"
    return f"{host}:{port}/{dbname}"


def connect(url: str, *, autocommit: bool = True, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a connection, or raise DatabaseUnreachable saying where and what to check."""
    kwargs.setdefault("connect_timeout", 10)
    try:
        return psycopg.connect(url, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = first.rsplit("failed: ", 1)[-1].rstrip(".")
        raise DatabaseUnreachable(
            f"cannot connect to the database at {describe_url(url)}: {reason}. "
            "Check DATABASE_URL (host, port, credentials) or start the embedded one with "
            "`traderctl db start`."
        ) from exc
    except psycopg.ProgrammingError as exc:
        raise DatabaseUnreachable(
            f"DATABASE_URL is not a valid connection string ({exc}); "
            "expected postgresql://user:password@host:port/dbname."
        ) from exc
