"""The exception family of traderctl.

Each class's docstring is its default message and names the fix. The CLI catches
:class:`TraderctlError` at the top and prints one red line; anything else is a bug.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatabaseUnreachable",
    "EmbeddedPostgresError",
    "MigrationError",
    "PgCronMissing",
    "TraderctlError",
]


class TraderctlError(Exception):
    """Something went wrong in traderctl."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(TraderctlError):
    """A configuration variable is invalid; see the README's configuration table."""


class DatabaseUnreachable(TraderctlError):
    """The database cannot be reached; check DATABASE_URL or start it with `traderctl db start`."""


class EmbeddedPostgresError(TraderctlError):
    """The embedded Postgres failed; see the server log under TRADERCTL_DATA_DIR."""


class PgCronMissing(EmbeddedPostgresError):
    """pg_cron is not installed; install postgresql-<major>-cron (apt-get install ...)."""


class MigrationError(TraderctlError):
    """A migration failed and was rolled back; fix the file and run `traderctl db migrate`."""
