"""The exception family of traderctl, grouped by subsystem.

Each class's docstring is its default message and names the fix; raise sites pass a
message naming the object too. The CLI catches :class:`TraderctlError` at the top and
prints one red line; anything else is a bug. Private control-flow exceptions (a worker's
stop signal and the like) stay private in their modules.
"""

from __future__ import annotations

__all__ = [
    "AdminError",
    "AlertsFiring",
    "AlreadyRanThisMinute",
    "ConfigError",
    "DatabaseUnreachable",
    "EmbeddedPostgresError",
    "ExchangeBanned",
    "ExchangeMalformedResponse",
    "ExchangeRateLimited",
    "ExchangeRequestRejected",
    "ExchangeSimulatorError",
    "ExchangeUnavailable",
    "ExternalDatabase",
    "FilterCheckFailed",
    "FilterMessageError",
    "HelpersBundleError",
    "InvalidJob",
    "InvalidRolloutChange",
    "InvalidTickTime",
    "InvalidTraderId",
    "InvalidUser",
    "MarketDataError",
    "MigrationError",
    "PgCronMissing",
    "SandboxError",
    "SandboxHang",
    "SchedulerError",
    "SchedulerNotInstalled",
    "SchemaNotMigrated",
    "SnapshotLoadError",
    "SnapshotMissing",
    "TierLimitReached",
    "TraderNotRunnable",
    "TraderctlError",
    "UniverseEmpty",
    "UnknownInterval",
    "UnknownTier",
    "UnknownTrader",
    "UnknownUser",
    "WorkerError",
    "WorkerOptionsError",
]


class TraderctlError(Exception):
    """Something went wrong in traderctl."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


# -- configuration and database -------------------------------------------------------------
class ConfigError(TraderctlError):
    """A configuration variable is invalid; see the README's configuration table."""


class DatabaseUnreachable(TraderctlError):
    """The database cannot be reached; check DATABASE_URL or start it with `traderctl db start`."""


class SchemaNotMigrated(TraderctlError):
    """The database lacks traderctl's schema (ops views, backend functions); run `traderctl db migrate`."""


class ExternalDatabase(TraderctlError):
    """DATABASE_URL is set, so traderctl does not manage that server; unset it to use the embedded one."""


# -- migrations -----------------------------------------------------------------------------
class MigrationError(TraderctlError):
    """A migration failed and was rolled back; fix the file and run `traderctl db migrate`."""


# -- scheduler ------------------------------------------------------------------------------
class SchedulerError(TraderctlError):
    """The scheduler tick failed; see the database log, then retry with `traderctl tick`."""


class SchedulerNotInstalled(SchedulerError):
    """backend.schedule_due_traders() is missing from this database; run `traderctl db migrate`."""


class InvalidTickTime(SchedulerError):
    """--at is not an ISO-8601 timestamp; use e.g. 2026-11-26T19:40 (no offset means UTC)."""


# -- queue and trader worker ----------------------------------------------------------------
class WorkerError(TraderctlError):
    """The trader worker failed; see its log on stderr."""


class SnapshotMissing(WorkerError):
    """Market data the trader needs has never been loaded; start the market-data worker."""


class InvalidJob(WorkerError):
    """A run_trader job has malformed args; expected {"trader_id": uuid, "slot": ISO-8601}."""


class WorkerOptionsError(WorkerError):
    """The worker options are inconsistent; see `traderctl worker --help`."""


# -- filter sandbox -------------------------------------------------------------------------
class SandboxError(TraderctlError):
    """The filter sandbox could not run; see docs/sandbox.md."""


class HelpersBundleError(SandboxError):
    """The helpers bundle could not be loaded; TRADERCTL_FILTER_HELPERS_JS must define a global `helpers`."""


class SnapshotLoadError(SandboxError):
    """Market data could not be loaded into the filter runtime; check its JSON and size."""


class SandboxHang(SandboxError):
    """A call into the filter runtime overran its deadline; the isolate must be replaced."""


class FilterMessageError(SandboxError):
    """The filter message is not the browser worker's request data; see docs/sandbox.md."""


class FilterCheckFailed(SandboxError):
    """The filter has problems; fix them and run `traderctl filter check` again."""


# -- market data ----------------------------------------------------------------------------
class MarketDataError(TraderctlError):
    """The market-data worker could not refresh; the last good snapshot is still served."""


class ExchangeUnavailable(MarketDataError):
    """The exchange did not answer after retries (timeouts or 5xx); check BINANCE_BASE_URL and
    the network. The last good data is kept and the next minute retries."""


class ExchangeRateLimited(MarketDataError):
    """The exchange answered 429 (too much request weight); lower TRADERCTL_MARKET_WEIGHT_BUDGET
    or the universe size. Requests pause for the Retry-After the exchange sent."""


class ExchangeBanned(MarketDataError):
    """The exchange answered 418: this IP is banned for ignoring 429s. No request is sent until
    the ban ends; lower TRADERCTL_MARKET_WEIGHT_BUDGET and check for other clients on this IP."""


class ExchangeMalformedResponse(MarketDataError):
    """The exchange's answer is not in the documented Binance format; the last good data is
    kept. Check that BINANCE_BASE_URL points at a Binance Spot REST endpoint."""


class ExchangeRequestRejected(MarketDataError):
    """The exchange rejected a request (4xx, e.g. -1121 invalid symbol); the symbol may have been
    delisted. It is flagged stale until the universe is recomputed."""


class UniverseEmpty(MarketDataError):
    """No USDT spot pair is eligible for the market-data universe; check
    TRADERCTL_MARKET_EXCLUDED_BASES and that the exchange lists TRADING pairs quoted in USDT."""


# -- admin commands (traders, requeue, stats, signals) --------------------------------------
class AdminError(TraderctlError):
    """An operator command was refused; its message says why and what to do."""


class InvalidTraderId(AdminError):
    """The trader id is not a UUID; copy it from `traderctl traders list`."""


class UnknownTrader(AdminError):
    """No trader has this id; list them with `traderctl traders list`."""


class InvalidUser(AdminError):
    """--user must be a user id (UUID) or an email address."""


class UnknownUser(AdminError):
    """No user has this id or email; check auth.users."""


class UnknownInterval(AdminError):
    """The interval is not one of backend.schedule_intervals (1m 5m 15m 30m 1h 4h 1d)."""


class TraderNotRunnable(AdminError):
    """The trader cannot run now (disabled, blank code or a schedule problem); fix that first."""


class AlreadyRanThisMinute(AdminError):
    """The trader already has a run for the current minute; a run is unique per slot, retry next minute."""


class TierLimitReached(AdminError):
    """The owner's tier allows no more enabled traders; disable another one or upgrade the tier."""


class AlertsFiring(AdminError):
    """At least one alert of ops.alerts is firing; see `traderctl stats`."""


class UnknownTier(AdminError):
    """No tier has that name; `traderctl rollout show` lists the tiers."""


class InvalidRolloutChange(AdminError):
    """The rollout change is not valid; see `traderctl rollout set --help` and docs/rollout.md."""


# -- local development (embedded Postgres, exchange simulator) ------------------------------
class EmbeddedPostgresError(TraderctlError):
    """The embedded Postgres failed; see the server log under TRADERCTL_DATA_DIR."""


class PgCronMissing(EmbeddedPostgresError):
    """pg_cron is not installed; install postgresql-<major>-cron (apt-get install ...)."""


class ExchangeSimulatorError(TraderctlError):
    """The exchange simulator could not start; pick another --port (0 picks a free one)."""
