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

from worker.errors import ConfigError

__all__ = ["ENV_VARS", "Settings", "load_settings"]

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
    )
