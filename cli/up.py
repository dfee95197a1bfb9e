"""`traderctl up`: run the whole product locally (what `make up` calls)."""

from __future__ import annotations

import typer

from traderctl.worker.config import load_settings
from traderctl.worker.errors import ConfigError
from traderctl.worker.local.stack import UpOptions, run_up

__all__ = ["up"]


def up(
    market: str = typer.Option(
        "simulator", "--market", help="simulator (offline, default) or binance (live data)."
    ),
    workers: int = typer.Option(2, "--workers", "-w", min=1, help="Trader worker processes."),
    duration: float | None = typer.Option(
        None, "--for", min=1, help="Run headless for this many seconds, then stop everything."
    ),
    no_seed: bool = typer.Option(False, "--no-seed", help="Do not create the demo users/traders."),
) -> None:
    """Start Postgres+pg_cron, market data, workers and demo traders; show a live view."""
    if market not in ("simulator", "binance"):
        raise ConfigError(f"--market {market!r} is not a source; use simulator or binance.")
    options = UpOptions(market=market, workers=workers, duration_s=duration, seed=not no_seed)
    raise typer.Exit(run_up(load_settings(), options))
