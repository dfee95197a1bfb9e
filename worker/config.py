"""Every setting, declared once and read from the environment in one place.

Each field of :class:`Settings` is declared with
:func:`~traderctl.worker.config_schema.setting`: its variable, its default
(as the text one would put in the environment), the parser that checks it, its unit and
what it means. Defaults, validation, deprecated names and the README's configuration table
(:func:`markdown_table`, also ``python -m traderctl.worker.config --markdown``) all come
from that one declaration, so they cannot drift apart.

Nothing else in the code base reads ``os.environ``: call :func:`load_settings` and pass
the frozen :class:`Settings` down.

Naming rule (docs/operations.md explains it): the two standard variables other tools
also understand keep their names (``DATABASE_URL``, ``BINANCE_BASE_URL``); everything else
is ``TRADERCTL_<AREA>_<NAME>``, and a duration or size ends in its unit spelled out
(``_MS``, ``_SECONDS``, ``_HOURS``, ``_MB``). Earlier names still work and log a warning
naming their replacement.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traderctl.worker.config_schema import (
    CRON,
    DIRECTORY,
    EXISTING_FILE,
    HTTP_URL,
    KLINE_INTERVALS,
    TEXT,
    UPPER_NAMES,
    Setting,
    choice,
    declared,
    integer,
    read,
    render_markdown,
    setting,
)
from traderctl.worker.errors import ConfigError
from traderctl.worker.intervals import INTERVALS

__all__ = [
    "ENV_VARS",
    "SETTINGS",
    "Settings",
    "env_help",
    "load_settings",
    "markdown_table",
]

#: Stablecoins and fiat: their USDT pairs barely move, so they are not in the universe.
DEFAULT_EXCLUDED_BASES: tuple[str, ...] = (
    "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "USDP", "PAX", "UST", "USTC", "USDD", "USDE",
    "PYUSD", "USD1", "BFUSD", "XUSD", "AEUR", "EUR", "EURI", "GBP",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Validated configuration; build it with :func:`load_settings`.

    ``Settings()`` holds the defaults; tests pass keyword overrides.
    """

    # -- database and the embedded cluster
    database_url: str | None = setting(
        "DATABASE_URL",
        None,
        TEXT,
        "Use this Postgres (Supabase or any Postgres with pg_cron) instead of the "
        "embedded cluster.",
        shown="(embedded)",
    )
    # setting() returns a dataclass field with a default factory, not a shared value.
    data_dir: Path = setting(  # noqa: RUF009
        "TRADERCTL_DATA_DIR",
        ".traderctl",
        DIRECTORY,
        "Where the embedded cluster, its log and its port file live.",
    )
    pg_port: int = setting(
        "TRADERCTL_PG_PORT",
        "0",
        integer(0, 65535),
        "Port of the embedded cluster; 0 picks a free loopback port at first start and "
        "remembers it.",
        shown="`0` (free port)",
    )
    db_name: str = setting(
        "TRADERCTL_DB_NAME",
        "traderctl",
        TEXT,
        "Database name inside the embedded cluster (also pg_cron's `cron.database_name`).",
    )
    # -- service database sessions (worker/db.py SessionLimits; docs/worker.md explains)
    db_statement_timeout_ms: int = setting(
        "TRADERCTL_DB_STATEMENT_TIMEOUT_MS",
        "60000",
        integer(0),
        "Longest statement of a worker, scheduler or market-data session; the statement is "
        "cancelled and the process reconnects and retries. 0 is off.",
        unit="ms",
    )
    db_lock_timeout_ms: int = setting(
        "TRADERCTL_DB_LOCK_TIMEOUT_MS",
        "10000",
        integer(0),
        "Longest wait of such a session for a lock another session holds (e.g. a frozen "
        "worker's); the statement fails and is retried later. 0 is off.",
        unit="ms",
    )
    db_idle_in_transaction_timeout_ms: int = setting(
        "TRADERCTL_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
        "30000",
        integer(0),
        "A service session idle inside an open transaction this long is ended by the "
        "server, which rolls it back and frees its locks. 0 is off.",
        unit="ms",
    )
    db_keepalive_idle_seconds: int = setting(
        "TRADERCTL_DB_KEEPALIVE_IDLE_SECONDS",
        "30",
        integer(1),
        "TCP keepalive (client and server side): silence before the first probe.",
        unit="s",
    )
    db_keepalive_interval_seconds: int = setting(
        "TRADERCTL_DB_KEEPALIVE_INTERVAL_SECONDS",
        "10",
        integer(1),
        "TCP keepalive: time between unanswered probes.",
        unit="s",
    )
    db_keepalive_count: int = setting(
        "TRADERCTL_DB_KEEPALIVE_COUNT",
        "3",
        integer(1),
        "TCP keepalive: unanswered probes after which the peer is taken for dead (with the "
        "defaults a vanished peer is dropped after 60 s, also the TCP user timeout).",
    )
    db_connect_timeout_seconds: int = setting(
        "TRADERCTL_DB_CONNECT_TIMEOUT_SECONDS",
        "10",
        integer(1),
        "Longest wait for a service connection to be established.",
        unit="s",
    )
    # -- filter sandbox
    helpers_js: Path | None = setting(  # noqa: RUF009
        "TRADERCTL_FILTER_HELPERS_JS",
        None,
        EXISTING_FILE,
        "JS bundle defining a global `helpers` object, replacing the built-in helpers.",
        shown="(built-in)",
        old=("TRADER_HELPERS_JS",),
    )
    filter_timeout_ms: int = setting(
        "TRADERCTL_FILTER_TIMEOUT_MS",
        "250",
        integer(1),
        "CPU budget of one trader-run over all its symbols.",
        unit="ms",
        old=("TRADER_FILTER_TIMEOUT_MS",),
    )
    filter_memory_mb: int = setting(
        "TRADERCTL_FILTER_MEMORY_MB",
        "256",
        integer(16),
        "Heap cap of one V8 isolate.",
        unit="MB",
        old=("TRADER_FILTER_MEMORY_MB",),
    )
    # -- trader worker (docs/worker.md)
    worker_batch_size: int = setting(
        "TRADERCTL_WORKER_BATCH_SIZE",
        "32",
        integer(1),
        "Jobs a worker process claims per round trip.",
        old=("TRADER_WORKER_BATCH_SIZE",),
    )
    worker_poll_ms: int = setting(
        "TRADERCTL_WORKER_POLL_MS",
        "1000",
        integer(10),
        "Idle worker's re-poll of the queue when no NOTIFY arrives.",
        unit="ms",
        old=("TRADER_WORKER_POLL_MS",),
    )
    data_wait_ms: int = setting(
        "TRADERCTL_WORKER_DATA_WAIT_MS",
        "5000",
        integer(0),
        "How long a run waits for its slot's candle-close data before using older data.",
        unit="ms",
        old=("TRADER_DATA_WAIT_MS",),
    )
    auto_disable_errors: int = setting(
        "TRADERCTL_WORKER_AUTO_DISABLE_ERRORS",
        "10",
        integer(1),
        "Consecutive failed runs after which a trader is disabled.",
        old=("TRADER_AUTO_DISABLE_ERRORS",),
    )
    job_max_attempts: int = setting(
        "TRADERCTL_WORKER_JOB_MAX_ATTEMPTS",
        "5",
        integer(1),
        "Attempts of a job failing for infrastructure reasons (or killing its worker).",
        old=("TRADER_JOB_MAX_ATTEMPTS",),
    )
    finished_jobs: str = setting(
        "TRADERCTL_WORKER_FINISHED_JOBS",
        "delete",
        choice("delete", "keep"),
        "A job whose run was committed is deleted in the same transaction, or kept as"
        " `succeeded` until retention prunes it (the run record is the history either way).",
    )
    retry_base_seconds: int = setting(
        "TRADERCTL_WORKER_RETRY_BASE_SECONDS",
        "2",
        integer(0),
        "First retry delay of such a job; doubles per attempt (at most 300 s).",
        unit="s",
        old=("TRADER_RETRY_BASE_SECONDS",),
    )
    heartbeat_seconds: int = setting(
        "TRADERCTL_WORKER_HEARTBEAT_SECONDS",
        "10",
        integer(1),
        "How often a worker refreshes its heartbeat.",
        unit="s",
        old=("TRADER_HEARTBEAT_SECONDS",),
    )
    stalled_seconds: int = setting(
        "TRADERCTL_WORKER_STALLED_SECONDS",
        "30",
        integer(2),
        "Heartbeat age after which a worker's jobs are rerun elsewhere.",
        unit="s",
        old=("TRADER_STALLED_SECONDS",),
    )
    recovery_seconds: int = setting(
        "TRADERCTL_WORKER_RECOVERY_SECONDS",
        "10",
        integer(1),
        "How often stalled jobs are looked for.",
        unit="s",
        old=("TRADER_RECOVERY_SECONDS",),
    )
    shutdown_grace_seconds: int = setting(
        "TRADERCTL_WORKER_SHUTDOWN_GRACE_SECONDS",
        "30",
        integer(0),
        "On SIGTERM, time in-flight jobs get before they are released.",
        unit="s",
        old=("TRADER_SHUTDOWN_GRACE_SECONDS",),
    )
    # -- retention (run by the trader worker's maintenance)
    retention_cron: str = setting(
        "TRADERCTL_RETENTION_CRON",
        "*/10 * * * *",
        CRON,
        "When the retention job prunes old rows.",
        old=("TRADER_RETENTION_CRON",),
    )
    retention_jobs_hours: int = setting(
        "TRADERCTL_RETENTION_JOBS_HOURS",
        "1",
        integer(0),
        "Age after which finished queue jobs are deleted.",
        unit="h",
        old=("TRADER_RETENTION_JOBS_HOURS",),
    )
    retention_runs_hours: int = setting(
        "TRADERCTL_RETENTION_RUNS_HOURS",
        "48",
        integer(0),
        "Age after which runs without signals are deleted.",
        unit="h",
        old=("TRADER_RETENTION_RUNS_HOURS",),
    )
    retention_signals_hours: int = setting(
        "TRADERCTL_RETENTION_SIGNALS_HOURS",
        "720",
        integer(0),
        "Age after which signals (and their runs) are deleted.",
        unit="h",
        old=("TRADER_RETENTION_SIGNALS_HOURS",),
    )
    # -- fallback scheduler (docs/scheduler.md)
    scheduler_offset_seconds: int = setting(
        "TRADERCTL_SCHEDULER_OFFSET_SECONDS",
        "3",
        integer(0, 50),
        "Seconds past each minute the fallback `traderctl scheduler` ticks; it must stay "
        "well inside its minute.",
        unit="s",
        old=("TRADERCTL_SCHEDULER_OFFSET_S",),
    )
    # -- market data (docs/market-data.md)
    binance_base_url: str = setting(
        "BINANCE_BASE_URL",
        "https://api.binance.com",
        HTTP_URL,
        "Exchange REST endpoint (`https://data-api.binance.vision`, the testnet, or the "
        "local simulator).",
    )
    market_data_source: str = setting(
        "TRADERCTL_MARKET_DATA_SOURCE",
        "binance",
        choice("binance", "simulator"),
        "`binance` (BINANCE_BASE_URL) or `simulator` (in-process fake exchange).",
        old=("MARKET_DATA_SOURCE",),
    )
    market_universe_size: int = setting(
        "TRADERCTL_MARKET_UNIVERSE_SIZE",
        "100",
        integer(1),
        "Top N USDT pairs by 24h quote volume kept fresh.",
        old=("MARKET_UNIVERSE_SIZE",),
    )
    market_excluded_bases: tuple[str, ...] = setting(
        "TRADERCTL_MARKET_EXCLUDED_BASES",
        ",".join(DEFAULT_EXCLUDED_BASES),
        UPPER_NAMES,
        "Base assets never in the universe (stablecoins, fiat); leveraged tokens are always "
        "excluded.",
        shown="`USDC,FDUSD,TUSD,…` (stablecoins and fiat)",
        old=("MARKET_EXCLUDED_BASES",),
        blank_is_unset=False,
    )
    market_intervals: tuple[str, ...] = setting(
        "TRADERCTL_MARKET_INTERVALS",
        ",".join(INTERVALS),
        KLINE_INTERVALS,
        "Kline intervals fetched for every symbol.",
        old=("MARKET_INTERVALS",),
    )
    market_klines_limit: int = setting(
        "TRADERCTL_MARKET_KLINES_LIMIT",
        "250",
        integer(30),
        "Candles per series (request weight 2 each up to 499).",
        old=("MARKET_KLINES_LIMIT",),
    )
    market_weight_budget: int = setting(
        "TRADERCTL_MARKET_WEIGHT_BUDGET",
        "3000",
        integer(100),
        "Request weight per minute we allow ourselves (Binance allows 6000).",
        unit="weight/min",
        old=("MARKET_WEIGHT_BUDGET",),
    )
    market_concurrency: int = setting(
        "TRADERCTL_MARKET_CONCURRENCY",
        "8",
        integer(1),
        "Exchange requests in flight at once.",
        old=("MARKET_CONCURRENCY",),
    )
    market_request_timeout_ms: int = setting(
        "TRADERCTL_MARKET_REQUEST_TIMEOUT_MS",
        "10000",
        integer(100),
        "Timeout of one exchange request.",
        unit="ms",
        old=("MARKET_REQUEST_TIMEOUT_MS",),
    )
    market_max_attempts: int = setting(
        "TRADERCTL_MARKET_MAX_ATTEMPTS",
        "4",
        integer(1),
        "Tries per request on timeouts and 5xx (jittered exponential backoff).",
        old=("MARKET_MAX_ATTEMPTS",),
    )
    market_refresh_delay_ms: int = setting(
        "TRADERCTL_MARKET_REFRESH_DELAY_MS",
        "1000",
        integer(0),
        "How long after each minute boundary the refresh starts.",
        unit="ms",
        old=("MARKET_REFRESH_DELAY_MS",),
    )
    market_metrics_port: int = setting(
        "TRADERCTL_MARKET_METRICS_PORT",
        "0",
        integer(0, 65535),
        "Serve the market-data process's Prometheus metrics on this loopback port; 0 is off.",
        shown="`0` (off)",
        old=("MARKET_METRICS_PORT",),
    )


#: Field name -> its declaration, in declaration order.
SETTINGS: dict[str, Setting[Any]] = {s.attr: s for s in declared(Settings)}

#: Every variable :func:`load_settings` reads, current and earlier names (tests clear them).
ENV_VARS: tuple[str, ...] = tuple(
    name for spec in SETTINGS.values() for name in (spec.env, *spec.old)
)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every declared variable; ConfigError names the first bad one."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for spec in SETTINGS.values():
        found = read(env, spec)
        if found is None:
            continue
        name, raw = found
        try:
            values[spec.attr] = spec.parser.convert(raw)
        except ValueError as exc:
            raise ConfigError(
                f"{name}={raw!r} is invalid ({exc}); set it to {spec.parser.allowed}, "
                "or unset it for the default."
            ) from None
    return Settings(**values)


def env_help(name: str) -> str:
    """``(env VAR, default …)`` for the --help of a CLI option mirroring setting ``name``."""
    return SETTINGS[name].option_help()


def markdown_table() -> str:
    """The README's configuration table (and the table of earlier names), as Markdown."""
    return render_markdown(SETTINGS.values())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m traderctl.worker.config --markdown``: print the README's table."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--markdown"]:
        sys.stderr.write("usage: python -m traderctl.worker.config --markdown\n")
        return 2
    sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
