"""`traderctl tick` and `traderctl scheduler`: the scheduler without pg_cron.

Where pg_cron runs (Supabase, the embedded cluster's own database) it calls
``backend.schedule_due_traders()`` every minute and neither command is needed. On a
Postgres without pg_cron, run ``traderctl scheduler`` (one process is enough; two are
harmless) or call ``traderctl tick`` from any external cron.
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from types import FrameType

import typer
from rich.table import Table

from traderctl.cli import output
from traderctl.worker.config import env_help, load_settings
from traderctl.worker.db import SessionLimits, connect
from traderctl.worker.errors import InvalidTickTime
from traderctl.worker.local.embedded_pg import resolve_database_url
from traderctl.worker.runner.lifeline import PARENT_DEATH_SIGNAL, ignore_parent_death
from traderctl.worker.scheduler import Outcome, TickResult, run_loop
from traderctl.worker.scheduler import tick as run_tick
from traderctl.worker.signal_safe import call_outside_handler, install, restore

__all__ = ["scheduler", "tick"]

_COLUMNS = [o.value for o in Outcome]
_HEADERS = {
    Outcome.ENQUEUED.value: "enqueued",
    Outcome.SKIPPED_BACKLOG.value: "skipped: backlog",
    Outcome.SKIPPED_HOURLY_CAP.value: "skipped: hourly cap",
    Outcome.SKIPPED_INVALID_INTERVAL.value: "skipped: invalid interval",
}


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidTickTime(
            f"--at {value!r} is not an ISO-8601 timestamp; use e.g. 2026-11-26T19:40 or "
            "2026-11-26T19:40:00+00:00 (no offset means UTC)."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _render(result: TickResult) -> Table:
    slot = result.slot.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = Table(title=f"scheduler tick {slot}")
    table.add_column("interval")
    for column in _COLUMNS:
        table.add_column(_HEADERS[column], justify="right")
    rows = result.by_interval()
    for interval in sorted(rows, key=_interval_order):
        table.add_row(interval, *(str(rows[interval].get(c, 0)) for c in _COLUMNS))
    table.add_row(
        "total",
        *(str(result.total(o)) for o in Outcome),
        style="bold",
    )
    return table


def _interval_order(name: str) -> tuple[int, str]:
    units = {"m": 1, "h": 60, "d": 1440}
    try:
        return int(name[:-1]) * units[name[-1]], name
    except (KeyError, ValueError, IndexError):
        return 10**9, name


def tick(
    at: str | None = typer.Option(
        None,
        "--at",
        metavar="TIMESTAMP",
        help="Schedule the minute of this ISO-8601 time (no offset = UTC) instead of now.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Run the scheduler tick once: enqueue every trader due since the last tick."""
    when = _parse_at(at)
    with connect(resolve_database_url(load_settings())) as conn:
        result = run_tick(conn, when)
    if as_json:
        output.emit_json(result.to_json())
        return
    if not result.counts:
        output.line(
            f"nothing to schedule for {result.slot.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
            "(already scheduled, or no trader due)"
        )
        return
    output.emit(_render(result))


def scheduler(
    offset: int | None = typer.Option(
        None,
        "--offset",
        min=0,
        max=50,
        help=f"Seconds after each minute boundary to tick {env_help('scheduler_offset_seconds')}.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per tick."),
) -> None:
    """Tick every minute, for Postgres servers without pg_cron. Stop with Ctrl-C or SIGTERM."""
    settings = load_settings()
    url = resolve_database_url(settings)
    stop = threading.Event()

    def _stopping(signum: int) -> None:
        output.note(f"received {signal.Signals(signum).name}, stopping after the current tick")
        stop.set()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        call_outside_handler(lambda: _stopping(signum))

    def _print(result: TickResult) -> None:
        if as_json:
            output.emit_json(result.to_json(), indent=None)
        else:
            skipped = sum(result.total(o) for o in Outcome if o is not Outcome.ENQUEUED)
            output.line(
                f"{result.slot.astimezone(UTC):%Y-%m-%dT%H:%MZ} "
                f"enqueued={result.enqueued} skipped={skipped}"
            )

    previous = install(_stop, signal.SIGINT, signal.SIGTERM, PARENT_DEATH_SIGNAL)
    seconds = settings.scheduler_offset_seconds if offset is None else offset
    output.note(f"scheduler: ticking {seconds} s after every minute; Ctrl-C to stop")
    try:
        limits = SessionLimits.from_settings(settings)
        ticks = run_loop(
            lambda: connect(url, limits=limits), stop=stop, offset_seconds=seconds, on_tick=_print
        )
    finally:
        ignore_parent_death()  # first: a repeat must never meet its default action
        restore({s: h for s, h in previous.items() if s != PARENT_DEATH_SIGNAL})
    output.note(f"scheduler stopped after {ticks} tick(s)")
