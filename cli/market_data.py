"""`traderctl market-data` and `traderctl exchange-sim`.

``market-data`` keeps public.market_tickers/market_klines/market_snapshots fresh from
Binance (BINANCE_BASE_URL) or from the in-process simulator (``--source simulator``, the
offline default of `make up`); ``--once`` does one full refresh, prints its summary as
JSON on stdout and exits (1 if it failed). ``exchange-sim`` serves the fake Binance alone
and prints its base URL on stdout. Both stop cleanly on SIGINT/SIGTERM; logs go to stderr.
"""

from __future__ import annotations

import math
import signal
import threading
from dataclasses import replace
from types import FrameType

import typer

from traderctl.cli import output
from traderctl.worker import signal_safe
from traderctl.worker.config import env_help, load_settings
from traderctl.worker.errors import ConfigError
from traderctl.worker.local.embedded_pg import resolve_database_url
from traderctl.worker.signal_safe import install, restore, set_from_handler

__all__ = ["exchange_sim", "market_data", "register"]


def market_data(
    source: str | None = typer.Option(
        None,
        "--source",
        help="binance (BINANCE_BASE_URL) or simulator (in-process fake) "
        f"{env_help('market_data_source')}.",
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help=f"Exchange REST endpoint {env_help('binance_base_url')}."
    ),
    universe_size: int | None = typer.Option(
        None,
        "--universe-size",
        min=1,
        help=f"Top N USDT pairs {env_help('market_universe_size')}.",
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        min=0,
        help=f"Serve Prometheus metrics on 127.0.0.1:PORT {env_help('market_metrics_port')}.",
    ),
    once: bool = typer.Option(
        False, "--once", help="One full refresh, print it as JSON, exit (1 if it failed)."
    ),
    sim_seed: int = typer.Option(
        1, "--sim-seed", help="Seed of the simulator (--source simulator)."
    ),
    sim_symbols: int = typer.Option(
        120, "--sim-symbols", min=1, help="Regular USDT pairs of the simulator."
    ),
) -> None:
    """Keep the market snapshot tables fresh, refreshing just after every candle close."""
    from traderctl.worker.market.process import run_market_data

    settings = load_settings()
    if source is not None:
        if source not in ("binance", "simulator"):
            raise ConfigError(f"--source {source!r} is not a source; use binance or simulator.")
        settings = replace(settings, market_data_source=source)
    if universe_size is not None:
        settings = replace(settings, market_universe_size=universe_size)
    database_url = resolve_database_url(settings)
    if settings.market_data_source == "simulator":
        from traderctl.worker.local.exchange_sim import ExchangeSimulator

        with ExchangeSimulator(seed=sim_seed, symbols=sim_symbols, port=0) as sim:
            result = run_market_data(
                settings, database_url, sim.base_url, once=once, metrics_port=metrics_port
            )
    else:
        url = base_url.rstrip("/") if base_url else settings.binance_base_url
        result = run_market_data(settings, database_url, url, once=once, metrics_port=metrics_port)
    if result is not None:
        output.emit_json(result.to_json(), indent=None)
        if result.status in ("failed", "banned"):
            raise typer.Exit(1)


def exchange_sim(
    port: int = typer.Option(8765, "--port", min=0, help="Loopback port; 0 picks a free one."),
    seed: int = typer.Option(1, "--seed", help="Seed of the deterministic random walk."),
    symbols: int = typer.Option(120, "--symbols", min=1, help="Regular USDT pairs to list."),
    now_ms: int | None = typer.Option(
        None, "--now-ms", help="Freeze the clock at this epoch-ms time (default: real time)."
    ),
) -> None:
    """Serve a deterministic fake Binance (klines, 24h tickers, exchangeInfo) on 127.0.0.1."""
    from traderctl.worker.local.exchange_sim import ExchangeSimulator

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        set_from_handler(stop)

    previous = install(on_signal, signal.SIGINT, signal.SIGTERM)
    try:
        with ExchangeSimulator(seed=seed, symbols=symbols, port=port, now_ms=now_ms) as sim:
            output.line(sim.base_url)
            signal_safe.wait(stop, math.inf)
    finally:
        restore(previous)


def register(app: typer.Typer) -> None:
    """Add both commands to the top-level app."""
    app.command("market-data")(market_data)
    app.command("exchange-sim")(exchange_sim)
