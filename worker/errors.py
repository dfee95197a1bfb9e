"""The exception family of traderctl.

Each class's docstring is its default message and names the fix. The CLI catches
:class:`TraderctlError` at the top and prints one red line; anything else is a bug.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatabaseUnreachable",
    "EmbeddedPostgresError",
    "ExchangeBanned",
    "ExchangeMalformedResponse",
    "ExchangeRateLimited",
    "ExchangeRequestRejected",
    "ExchangeSimulatorError",
    "ExchangeUnavailable",
    "InvalidJob",
    "MarketDataError",
    "MigrationError",
    "PgCronMissing",
    "SchedulerError",
    "SchedulerNotInstalled",
    "SnapshotMissing",
    "TraderctlError",
    "UniverseEmpty",
    "WorkerError",
    "WorkerOptionsError",
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


class WorkerError(TraderctlError):
    """The trader worker failed; see its log on stderr."""


class SnapshotMissing(WorkerError):
    """Market data the trader needs has never been loaded; start the market-data worker."""


class InvalidJob(WorkerError):
    """A run_trader job has malformed args; expected {"trader_id": uuid, "slot": ISO-8601}."""


class WorkerOptionsError(WorkerError):
    """The worker options are inconsistent; see `traderctl worker --help`."""


class SchedulerError(TraderctlError):
    """The scheduler tick failed; see the database log, then retry with `traderctl tick`."""


class SchedulerNotInstalled(SchedulerError):
    """backend.schedule_due_traders() is missing from this database; run `traderctl db migrate`."""


class MarketDataError(TraderctlError):
    """The market-data worker could not refresh; the last good snapshot is still served."""


class ExchangeUnavailable(MarketDataError):
    """The exchange did not answer after retries (timeouts or 5xx); check BINANCE_BASE_URL and
    the network. The last good data is kept and the next minute retries."""


class ExchangeRateLimited(MarketDataError):
    """The exchange answered 429 (too much request weight); lower MARKET_WEIGHT_BUDGET or the
    universe size. Requests pause for the Retry-After the exchange sent."""


class ExchangeBanned(MarketDataError):
    """The exchange answered 418: this IP is banned for ignoring 429s. No request is sent until
    the ban ends; lower MARKET_WEIGHT_BUDGET and check for other clients on this IP."""


class ExchangeMalformedResponse(MarketDataError):
    """The exchange's answer is not in the documented Binance format; the last good data is
    kept. Check that BINANCE_BASE_URL points at a Binance Spot REST endpoint."""


class ExchangeRequestRejected(MarketDataError):
    """The exchange rejected a request (4xx, e.g. -1121 invalid symbol); the symbol may have been
    delisted. It is flagged stale until the universe is recomputed."""


class UniverseEmpty(MarketDataError):
    """No USDT spot pair is eligible for the market-data universe; check MARKET_EXCLUDED_BASES
    and that the exchange lists TRADING pairs quoted in USDT."""


class ExchangeSimulatorError(TraderctlError):
    """The exchange simulator could not start; pick another --port (0 picks a free one)."""


class HelpersBundleError(TraderctlError):
    """The helpers bundle could not be loaded; TRADER_HELPERS_JS must define a global `helpers`."""


class SnapshotLoadError(TraderctlError):
    """Market data could not be loaded into the filter runtime; check its JSON and size."""


class FilterMessageError(TraderctlError):
    """The filter message is not the browser worker's request data; see docs/sandbox.md."""


class FilterCheckFailed(TraderctlError):
    """The filter has problems; fix them and run `traderctl filter check` again."""


__all__ += ["FilterCheckFailed", "FilterMessageError", "HelpersBundleError", "SnapshotLoadError"]
