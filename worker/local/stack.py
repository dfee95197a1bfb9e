"""`traderctl up`: the whole product on one machine, on embedded defaults.

Starts (or reuses) the embedded Postgres with pg_cron, migrates, seeds the demo users
and traders, then supervises the market-data process (with the exchange simulator
in-process, or live Binance) and a pool of trader workers. pg_cron ticks the scheduler
inside Postgres; on a database without it, `traderctl scheduler` is started instead.
Stopping (Ctrl-C, SIGTERM, or the end of `--for`) terminates every child by PID and stops
the database if this run started it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from types import FrameType
from typing import Any

import psycopg
from rich.console import Console
from rich.live import Live

from traderctl.worker import queries
from traderctl.worker.admin.traders import list_traders
from traderctl.worker.config import Settings
from traderctl.worker.db import connect
from traderctl.worker.local.demo_seed import seed_demo
from traderctl.worker.local.embedded_pg import embedded_cluster
from traderctl.worker.local.live_view import Dashboard
from traderctl.worker.local.supervisor import Supervisor
from traderctl.worker.migrate import migrate

__all__ = ["UpOptions", "run_up"]

log = logging.getLogger(__name__)

#: Traders in the headless summary printed at the end of `up --for` (the demo has 24).
_SUMMARY_LIMIT = 10_000


@dataclass(frozen=True, kw_only=True)
class UpOptions:
    """What `traderctl up` was asked to do."""

    market: str = "simulator"
    workers: int = 2
    duration_s: float | None = None
    refresh_s: float = 2.0
    live: bool = True
    seed: bool = True


class _Stop(Exception):
    """Raised in the main thread by SIGTERM so shutdown runs the same path as Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _child_env(database_url: str) -> dict[str, str]:
    # Children inherit our environment (their own settings) plus the resolved database.
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_up(settings: Settings, options: UpOptions) -> int:
    """Run the stack until interrupted or for ``options.duration_s``; return the exit code."""
    err = Console(stderr=True)
    started_db = False
    if settings.database_url:
        url = settings.database_url
    else:
        cluster = embedded_cluster(settings)
        started_db = cluster.start()
        url = cluster.url()
        err.print(f"database: embedded Postgres on port {cluster.port} ({cluster.root})")
    supervisor = Supervisor(settings.data_dir / "logs")
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    code = 0
    try:
        with connect(url) as conn:
            applied = migrate(conn)
            if applied:
                err.print(f"applied {len(applied)} migration(s)")
            if options.seed:
                created = seed_demo(conn)
                err.print(
                    f"demo: {created} new trader(s) seeded (users free/pro/elite@demo.traderctl)"
                )
            has_cron = bool(_scalar(conn, "up_has_pg_cron")) and bool(
                _scalar(conn, "up_cron_tick_active")
            )
            env = _child_env(url)
            supervisor.add("market-data", ["market-data", "--source", options.market], env)
            supervisor.add("workers", ["worker", "--concurrency", str(options.workers)], env)
            if not has_cron:
                err.print("pg_cron does not run the tick here: starting `traderctl scheduler`")
                supervisor.add("scheduler", ["scheduler"], env)
            dashboard = Dashboard(conn, supervisor)
            _loop(dashboard, supervisor, options, err)
            listed = list_traders(conn, limit=_SUMMARY_LIMIT)
            summary = [asdict(t) for t in listed.traders]
    except (KeyboardInterrupt, _Stop):
        err.print("stopping…")
        summary = []
    finally:
        supervisor.stop(grace_seconds=settings.shutdown_grace_seconds + 10)
        signal.signal(signal.SIGTERM, previous)
        if started_db:
            embedded_cluster(settings).stop()
            err.print("stopped the embedded Postgres this run started")
    if options.duration_s is not None and summary:
        print(json.dumps({"traders": summary, "pids": supervisor.pids}, default=str))
    return code


def _loop(dashboard: Dashboard, supervisor: Supervisor, options: UpOptions, err: Console) -> None:
    deadline = None if options.duration_s is None else time.monotonic() + options.duration_s
    live = options.live and sys.stdout.isatty() and options.duration_s is None

    def step() -> bool:
        for note in supervisor.poll():
            dashboard.notes.append(note)
            log.warning(note)
        try:
            dashboard.refresh()
        except Exception as exc:  # a dashboard read must not take the stack down
            dashboard.notes.append(f"dashboard: {exc}")
            log.warning("dashboard refresh failed: %s", exc)
        return deadline is None or time.monotonic() < deadline

    if live:
        console = Console()
        step()
        with Live(
            dashboard.render(console.size.height), console=console, screen=True, auto_refresh=False
        ) as view:
            while step():
                view.update(dashboard.render(console.size.height), refresh=True)
                time.sleep(options.refresh_s)
        return
    last_line = 0.0
    while step():
        if time.monotonic() - last_line >= 10:
            err.print(dashboard.summary_line(), highlight=False)
            last_line = time.monotonic()
        time.sleep(options.refresh_s)


def _scalar(conn: psycopg.Connection[Any], name: str) -> Any:
    row = conn.execute(queries.get(name)).fetchone()
    return row[0] if row else None
