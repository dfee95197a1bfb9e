"""Where the database is, and connecting to it: errors that say what to check, and the
per-session limits that keep one stuck process from holding up the others.

Callers pass the URL: ``DATABASE_URL``, or in development the embedded cluster's
(:func:`traderctl.worker.local.embedded_pg.resolve_database_url`, used by the CLI).
psycopg's connection errors are converted here, where they enter our code, into
:class:`DatabaseUnreachable` naming host, port and database, never the password.

Long-running services (trader workers, their maintenance tasks, the fallback scheduler,
the market-data worker) connect with :class:`SessionLimits` (from the settings): timeouts
the server enforces on the session and TCP keepalives on both ends. They are set here
and only here; docs/worker.md ("Timeouts and keepalives") says what each one bounds and
what happens when it fires. Admin commands and migrations connect without them: a
migration may legitimately wait or run long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from traderctl.worker import queries
from traderctl.worker.errors import DatabaseUnreachable

if TYPE_CHECKING:
    from traderctl.worker.config import Settings

__all__ = ["SessionLimits", "apply_limits", "apply_limits_async", "connect", "describe_url"]


@dataclass(frozen=True, kw_only=True)
class SessionLimits:
    """Server-side timeouts (ms, 0 = off) and TCP keepalive timing of a service session."""

    statement_timeout_ms: int = 60_000
    lock_timeout_ms: int = 10_000
    idle_in_transaction_timeout_ms: int = 30_000
    keepalive_idle_seconds: int = 30
    keepalive_interval_seconds: int = 10
    keepalive_count: int = 3
    connect_timeout_seconds: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionLimits:
        return cls(
            statement_timeout_ms=settings.db_statement_timeout_ms,
            lock_timeout_ms=settings.db_lock_timeout_ms,
            idle_in_transaction_timeout_ms=settings.db_idle_in_transaction_timeout_ms,
            keepalive_idle_seconds=settings.db_keepalive_idle_seconds,
            keepalive_interval_seconds=settings.db_keepalive_interval_seconds,
            keepalive_count=settings.db_keepalive_count,
            connect_timeout_seconds=settings.db_connect_timeout_seconds,
        )

    @property
    def dead_peer_ms(self) -> int:
        """How long a silent peer is tolerated: keepalive idle + every unanswered probe.
        Also the TCP user timeout (unacknowledged data), so a partition is noticed in the
        same time whether the socket was idle or sending."""
        seconds = (
            self.keepalive_idle_seconds + self.keepalive_interval_seconds * self.keepalive_count
        )
        return seconds * 1000

    def connect_kwargs(self) -> dict[str, Any]:
        """libpq parameters: connect timeout and client-side TCP keepalives."""
        return {
            "connect_timeout": self.connect_timeout_seconds,
            "keepalives": 1,
            "keepalives_idle": self.keepalive_idle_seconds,
            "keepalives_interval": self.keepalive_interval_seconds,
            "keepalives_count": self.keepalive_count,
            "tcp_user_timeout": self.dead_peer_ms,
        }

    def server_settings(self) -> dict[str, str]:
        """The session settings the server enforces (values as SET would take them)."""
        return {
            "statement_timeout": str(self.statement_timeout_ms),
            "lock_timeout": str(self.lock_timeout_ms),
            "idle_in_transaction_session_timeout": str(self.idle_in_transaction_timeout_ms),
            # The server's side of the same keepalives: a client that vanished (network
            # partition, frozen host) loses its session, and its locks, in bounded time.
            "tcp_keepalives_idle": str(self.keepalive_idle_seconds),
            "tcp_keepalives_interval": str(self.keepalive_interval_seconds),
            "tcp_keepalives_count": str(self.keepalive_count),
            "tcp_user_timeout": str(self.dead_peer_ms),
        }


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


def connect(
    url: str,
    *,
    limits: SessionLimits | None = None,
    autocommit: bool = True,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """Open a connection, or raise DatabaseUnreachable saying where and what to check.

    With ``limits`` the session gets the service timeouts and keepalives (see
    :class:`SessionLimits`); without, only a 10 s connect timeout.
    """
    if limits is not None:
        kwargs = limits.connect_kwargs() | kwargs
    kwargs.setdefault("connect_timeout", 10)
    try:
        conn = psycopg.connect(url, autocommit=autocommit, **kwargs)
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
    if limits is not None:
        try:
            apply_limits(conn, limits)
        except BaseException:
            conn.close()
            raise
    return conn


def apply_limits(conn: psycopg.Connection[Any], limits: SessionLimits) -> None:
    """Set the session's server-side limits (a plain query after connecting rather than
    the ``options`` startup parameter, which some connection poolers refuse)."""
    conn.execute(queries.get("set_session_limits"), limits.server_settings())
    if not conn.autocommit:
        conn.commit()


async def apply_limits_async(conn: psycopg.AsyncConnection[Any], limits: SessionLimits) -> None:
    """:func:`apply_limits` for procrastinate's async pool connections."""
    await conn.execute(queries.get("set_session_limits"), limits.server_settings())
    if not conn.autocommit:
        await conn.commit()
