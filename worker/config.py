"""Every setting, read from the environment in one place.

Nothing else in the code base reads ``os.environ``: call :func:`load_settings` and pass
the frozen :class:`Settings` down. Each field documents its variable and default; the
README's configuration table is the same list.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from traderctl.worker.errors import ConfigError

__all__ = ["ENV_VARS", "Settings", "load_settings"]

#: Stablecoins and fiat: their USDT pairs barely move, so they are not in the universe.
DEFAULT_EXCLUDED_BASES: tuple[str, ...] = (
    "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "USDP", "PAX", "UST", "USTC", "USDD", "USDE",
    "PYUSD", "USD1", "BFUSD", "XUSD", "AEUR", "EUR", "EURI", "GBP",
)  # fmt: skip

#: Variable name -> (default shown in docs, meaning). The README table mirrors this.
ENV_VARS: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("(embedded)", "Use this Postgres instead of the embedded cluster."),
    "TRADERCTL_DATA_DIR": (".traderctl", "Where the embedded cluster and pid files live."),
    "TRADERCTL_PG_PORT": ("0 (free port)", "Port of the embedded cluster; 0 picks a free one."),
    "TRADERCTL_DB_NAME": ("traderctl", "Database name inside the embedded cluster."),
    "BINANCE_BASE_URL": ("https://api.binance.com", "Exchange REST endpoint for market data."),
    "TRADER_HELPERS_JS": ("(built-in)", "Path of a JS bundle defining a global `helpers`."),
    "TRADER_FILTER_TIMEOUT_MS": ("250", "CPU budget of one trader-run over all symbols."),
    "TRADER_FILTER_MEMORY_MB": ("256", "Heap cap of one V8 isolate."),
    # Trader worker (issue 6): docs/worker.md explains each one.
    "TRADER_WORKER_BATCH_SIZE": ("32", "Jobs one worker process claims per round trip."),
    "TRADER_WORKER_POLL_MS": ("1000", "Idle re-poll of the queue when no NOTIFY arrives."),
    "TRADER_DATA_WAIT_MS": ("5000", "How long a run waits for its slot's candle-close data."),
    "TRADER_AUTO_DISABLE_ERRORS": ("10", "Consecutive failed runs that disable a trader."),
    "TRADER_JOB_MAX_ATTEMPTS": ("5", "Attempts of a job failing for infrastructure reasons."),
    "TRADER_RETRY_BASE_SECONDS": ("2", "First retry delay of such a job; doubles per attempt."),
    "TRADER_HEARTBEAT_SECONDS": ("10", "How often a worker proves it is alive."),
    "TRADER_STALLED_SECONDS": ("30", "Heartbeat age after which a worker's jobs are rerun."),
    "TRADER_RECOVERY_SECONDS": ("10", "How often stalled jobs are looked for."),
    "TRADER_SHUTDOWN_GRACE_SECONDS": ("30", "SIGTERM: time in-flight jobs get before release."),
    "TRADER_RETENTION_CRON": ("*/10 * * * *", "When the retention job prunes old rows."),
    "TRADER_RETENTION_JOBS_HOURS": ("1", "Age after which finished queue jobs are deleted."),
    "TRADER_RETENTION_RUNS_HOURS": ("48", "Age after which runs without signals are deleted."),
    "TRADER_RETENTION_SIGNALS_HOURS": ("720", "Age after which signals (and runs) are deleted."),
    # Scheduler fallback loop (issue 3): docs/scheduler.md.
    "TRADERCTL_SCHEDULER_OFFSET_S": ("3", "Seconds past each minute `traderctl scheduler` ticks."),
    # Market-data worker (issue 5): docs/market-data.md explains each one.
    "MARKET_DATA_SOURCE": ("binance", "`binance` (BINANCE_BASE_URL) or `simulator` (in-process)."),
    "MARKET_UNIVERSE_SIZE": ("100", "Top N USDT pairs by 24h quote volume kept fresh."),
    "MARKET_EXCLUDED_BASES": ("USDC,FDUSD,TUSD,…", "Base assets never in the universe."),
    "MARKET_INTERVALS": ("1m,5m,15m,30m,1h,4h,1d", "Kline intervals fetched for every symbol."),
    "MARKET_KLINES_LIMIT": ("250", "Candles per series (weight 2 each up to 499)."),
    "MARKET_WEIGHT_BUDGET": ("3000", "Request weight per minute we allow ourselves (of 6000)."),
    "MARKET_CONCURRENCY": ("8", "Exchange requests in flight at once."),
    "MARKET_REQUEST_TIMEOUT_MS": ("10000", "Timeout of one exchange request."),
    "MARKET_MAX_ATTEMPTS": ("4", "Tries per request on timeouts and 5xx (jittered backoff)."),
    "MARKET_REFRESH_DELAY_MS": ("1000", "How long after each minute boundary to refresh."),
    "MARKET_METRICS_PORT": ("0 (off)", "Serve Prometheus metrics on this loopback port."),
}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Validated configuration; build it with :func:`load_settings`."""

    database_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(".traderctl"))
    pg_port: int = 0
    db_name: str = "traderctl"
    binance_base_url: str = "https://api.binance.com"
    helpers_js: Path | None = None
    filter_timeout_ms: int = 250
    filter_memory_mb: int = 256
    # Trader worker (issue 6).
    worker_batch_size: int = 32
    worker_poll_ms: int = 1000
    data_wait_ms: int = 5000
    auto_disable_errors: int = 10
    job_max_attempts: int = 5
    retry_base_seconds: int = 2
    heartbeat_seconds: int = 10
    stalled_seconds: int = 30
    recovery_seconds: int = 10
    shutdown_grace_seconds: int = 30
    retention_cron: str = "*/10 * * * *"
    retention_jobs_hours: int = 1
    retention_runs_hours: int = 48
    retention_signals_hours: int = 720
    # Scheduler fallback loop (issue 3).
    scheduler_offset_s: int = 3

    # Market-data worker (issue 5).
    market_data_source: str = "binance"
    market_universe_size: int = 100
    market_excluded_bases: tuple[str, ...] = DEFAULT_EXCLUDED_BASES
    market_intervals: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
    market_klines_limit: int = 250
    market_weight_budget: int = 3000
    market_concurrency: int = 8
    market_request_timeout_ms: int = 10000
    market_max_attempts: int = 4
    market_refresh_delay_ms: int = 1000
    market_metrics_port: int = 0


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer; set it to a whole number.") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum {minimum}.")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every variable in :data:`ENV_VARS`; raise ConfigError when one is bad."""
    env = os.environ if env is None else env
    helpers = env.get("TRADER_HELPERS_JS") or None
    if helpers is not None and not Path(helpers).is_file():
        raise ConfigError(f"TRADER_HELPERS_JS={helpers!r} is not a readable file.")
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        data_dir=Path(env.get("TRADERCTL_DATA_DIR") or ".traderctl").absolute(),
        pg_port=_int(env, "TRADERCTL_PG_PORT", 0),
        db_name=env.get("TRADERCTL_DB_NAME") or "traderctl",
        binance_base_url=(env.get("BINANCE_BASE_URL") or "https://api.binance.com").rstrip("/"),
        helpers_js=Path(helpers) if helpers else None,
        filter_timeout_ms=_int(env, "TRADER_FILTER_TIMEOUT_MS", 250, minimum=1),
        filter_memory_mb=_int(env, "TRADER_FILTER_MEMORY_MB", 256, minimum=16),
        worker_batch_size=_int(env, "TRADER_WORKER_BATCH_SIZE", 32, minimum=1),
        worker_poll_ms=_int(env, "TRADER_WORKER_POLL_MS", 1000, minimum=10),
        data_wait_ms=_int(env, "TRADER_DATA_WAIT_MS", 5000),
        auto_disable_errors=_int(env, "TRADER_AUTO_DISABLE_ERRORS", 10, minimum=1),
        job_max_attempts=_int(env, "TRADER_JOB_MAX_ATTEMPTS", 5, minimum=1),
        retry_base_seconds=_int(env, "TRADER_RETRY_BASE_SECONDS", 2),
        heartbeat_seconds=_int(env, "TRADER_HEARTBEAT_SECONDS", 10, minimum=1),
        stalled_seconds=_int(env, "TRADER_STALLED_SECONDS", 30, minimum=2),
        recovery_seconds=_int(env, "TRADER_RECOVERY_SECONDS", 10, minimum=1),
        shutdown_grace_seconds=_int(env, "TRADER_SHUTDOWN_GRACE_SECONDS", 30),
        retention_cron=(env.get("TRADER_RETENTION_CRON") or "*/10 * * * *").strip(),
        retention_jobs_hours=_int(env, "TRADER_RETENTION_JOBS_HOURS", 1),
        retention_runs_hours=_int(env, "TRADER_RETENTION_RUNS_HOURS", 48),
        retention_signals_hours=_int(env, "TRADER_RETENTION_SIGNALS_HOURS", 720),
        scheduler_offset_s=_scheduler_offset(env),
        market_data_source=_market_source(env),
        market_universe_size=_int(env, "MARKET_UNIVERSE_SIZE", 100, minimum=1),
        market_excluded_bases=_csv(env, "MARKET_EXCLUDED_BASES", DEFAULT_EXCLUDED_BASES),
        market_intervals=_market_intervals(env),
        market_klines_limit=_int(env, "MARKET_KLINES_LIMIT", 250, minimum=30),
        market_weight_budget=_int(env, "MARKET_WEIGHT_BUDGET", 3000, minimum=100),
        market_concurrency=_int(env, "MARKET_CONCURRENCY", 8, minimum=1),
        market_request_timeout_ms=_int(env, "MARKET_REQUEST_TIMEOUT_MS", 10000, minimum=100),
        market_max_attempts=_int(env, "MARKET_MAX_ATTEMPTS", 4, minimum=1),
        market_refresh_delay_ms=_int(env, "MARKET_REFRESH_DELAY_MS", 1000),
        market_metrics_port=_int(env, "MARKET_METRICS_PORT", 0),
    )


def _scheduler_offset(env: Mapping[str, str]) -> int:
    """TRADERCTL_SCHEDULER_OFFSET_S, which must leave the tick inside its minute."""
    value = _int(env, "TRADERCTL_SCHEDULER_OFFSET_S", 3)
    if value > 50:
        raise ConfigError(
            f"TRADERCTL_SCHEDULER_OFFSET_S={value} is above 50; the tick must run well "
            "within its minute. Use a value from 0 to 50."
        )
    return value


def _market_source(env: Mapping[str, str]) -> str:
    """MARKET_DATA_SOURCE: where market data comes from."""
    value = (env.get("MARKET_DATA_SOURCE") or "binance").strip().lower()
    if value not in ("binance", "simulator"):
        raise ConfigError(
            f"MARKET_DATA_SOURCE={value!r} is not a source; use `binance` or `simulator`."
        )
    return value


def _csv(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of upper-case names; unset means ``default``, empty means none."""
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(part.strip().upper() for part in raw.split(",") if part.strip())


def _market_intervals(env: Mapping[str, str]) -> tuple[str, ...]:
    """MARKET_INTERVALS, in canonical order; at least one known interval."""
    known = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
    raw = env.get("MARKET_INTERVALS") or ",".join(known)
    wanted = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = sorted(wanted - set(known))
    if unknown or not wanted:
        raise ConfigError(
            f"MARKET_INTERVALS={raw!r} has unknown or no intervals ({', '.join(unknown)}); "
            f"use a comma-separated subset of {','.join(known)}."
        )
    return tuple(i for i in known if i in wanted)
