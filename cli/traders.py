"""`traderctl traders …`: find, inspect, enable and disable users' traders.

Read commands print a rich table (stdout) or, with ``--json``, the rows as JSON; errors
(unknown trader, malformed id, unknown interval or user) are one red line and exit 1.
"""

from __future__ import annotations

import typer
from rich.table import Table

from traderctl.cli import output
from traderctl.cli.output import emit_json, escape, short, when
from traderctl.worker.admin.db import open_admin_connection
from traderctl.worker.admin.lookups import parse_trader_id
from traderctl.worker.admin.traders import (
    EnableResult,
    list_traders,
    set_trader_enabled,
    show_trader,
)
from traderctl.worker.config import load_settings
from traderctl.worker.local.embedded_pg import resolve_database_url

__all__ = ["app"]

app = typer.Typer(help="Find, inspect, enable and disable users' traders.", no_args_is_help=True)


@app.command("list")
def list_(
    user: str | None = typer.Option(None, "--user", help="Only this user's (id or email)."),
    interval: str | None = typer.Option(None, "--interval", help="Only this refresh interval."),
    failing: bool = typer.Option(False, "--failing", help="Only traders whose last run failed."),
    disabled: bool = typer.Option(False, "--disabled", help="Only disabled traders."),
    limit: int = typer.Option(200, "--limit", min=1, help="Show at most this many."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List traders, oldest first, with status, counters and problems."""
    with open_admin_connection(resolve_database_url(load_settings())) as conn:
        result = list_traders(
            conn, user=user, interval=interval, failing=failing, disabled=disabled, limit=limit
        )
    if as_json:
        emit_json(result)
        return
    table = Table(title=f"traders ({len(result.traders)} of {result.total})")
    for column in ("id", "user", "name", "interval", "tier", "enabled", "last run", "status"):
        table.add_column(column, no_wrap=column in ("id", "last run"))
    table.add_column("runs", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("signals", justify="right")
    table.add_column("problem")
    for t in result.traders:
        problem = t.schedule_problem or t.disabled_reason or t.last_error
        status = t.last_run_status or "-"
        if t.consecutive_errors:
            status = f"{status} ×{t.consecutive_errors}"
        table.add_row(
            str(t.id),
            t.email or str(t.user_id)[:8],
            escape(short(t.name, 24)),
            t.interval,
            t.tier,
            "yes" if t.enabled else "[red]no[/red]",
            when(t.last_run_at),
            f"[red]{status}[/red]" if t.last_run_status == "error" else status,
            str(t.run_count),
            str(t.error_count),
            str(t.signal_count),
            escape(short(problem, 50)),
        )
    output.emit(table)
    if result.total > len(result.traders):
        output.note(f"showing {len(result.traders)} of {result.total}; raise --limit to see more")


@app.command()
def show(
    trader_id: str = typer.Argument(..., metavar="ID", help="The trader's id (UUID)."),
    runs: int = typer.Option(10, "--runs", min=0, help="How many recent runs to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show one trader: filter summary, tier, last runs, last error, next due slot, problems."""
    parse_trader_id(trader_id)  # a malformed id fails before connecting
    with open_admin_connection(resolve_database_url(load_settings())) as conn:
        d = show_trader(conn, trader_id, runs=runs)
    if as_json:
        emit_json(d)
        return
    fields: list[tuple[str, str]] = [
        ("id", str(d.id)),
        ("name", d.name or "-"),
        ("user", f"{d.user_id}" + (f" ({d.email})" if d.email else "")),
        ("enabled", "yes" if d.enabled else "no"),
        ("interval", d.interval),
        ("timeframes", ", ".join(d.required_timeframes) or "-"),
        ("code", f"{d.code_lines} lines, {d.code_chars} chars: {short(d.code_first_line, 70)}"),
        ("filter keys", ", ".join(d.filter_keys) or "-"),
        (
            "tier",
            f"{d.tier} (priority {d.queue_priority}, max enabled "
            f"{d.max_enabled_traders or '∞'}, max runs/h {d.max_executions_per_hour or '∞'}, "
            f"max symbols {d.max_symbols or '∞'})",
        ),
        ("next due slot", when(d.next_due_slot)),
        ("last slot", when(d.last_slot)),
        ("last run", f"{when(d.last_run_at)} {d.last_run_status or ''}".strip()),
        (
            "counters",
            f"{d.run_count} runs, {d.error_count} errors ({d.consecutive_errors} in a row), "
            f"{d.signal_count} signals, {d.current_matches} symbols matching now",
        ),
        (
            "last error",
            f"{when(d.last_error_at)} {d.last_error_type or ''}: {short(d.last_error, 200)}"
            if d.last_error
            else "-",
        ),
        ("schedule problem", d.schedule_problem or "-"),
        ("disabled reason", d.disabled_reason or "-"),
    ]
    for key, value in fields:
        output.line(f"[bold]{key:>16}[/bold]  {escape(value)}", markup=True)
    if d.runs:
        table = Table(title="recent runs")
        for column in ("slot", "status", "ms", "symbols", "matches", "signals", "worker", "error"):
            table.add_column(column)
        for r in d.runs:
            table.add_row(
                when(r.slot),
                r.status if r.status == "ok" else f"[red]{r.status}[/red]",
                str(r.duration_ms if r.duration_ms is not None else "-"),
                str(r.symbols_evaluated),
                str(r.matches),
                str(r.signals),
                escape(r.worker or "-"),
                escape(short(f"{r.error_type}: {r.error_message}" if r.error_type else "", 50)),
            )
        output.emit(table)
    if d.jobs:
        table = Table(title="queue jobs")
        for column in ("job", "queue", "status", "priority", "attempts", "slot"):
            table.add_column(column)
        for j in d.jobs:
            table.add_row(
                str(j.id), j.queue_name, j.status, str(j.priority), str(j.attempts), j.slot or "-"
            )
        output.emit(table)


def _report(result: EnableResult, as_json: bool) -> None:
    if as_json:
        emit_json(result)
        return
    state = "enabled" if result.enabled else "disabled"
    if not result.changed:
        output.line(f"trader {result.trader_id} was already {state}; nothing changed")
        return
    line = f"trader {result.trader_id} {state}"
    if result.enabled and result.previous_disabled_reason:
        line += f" (was disabled: {result.previous_disabled_reason})"
    output.line(line)


@app.command()
def enable(
    trader_id: str = typer.Argument(..., metavar="ID", help="The trader's id (UUID)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Enable a trader (clears its disabled reason and error streak; the tier limit applies).

    Enabling also enqueues an immediate run, as when the user enables it.
    """
    parse_trader_id(trader_id)
    with open_admin_connection(resolve_database_url(load_settings())) as conn:
        _report(set_trader_enabled(conn, trader_id, enabled=True), as_json)


@app.command()
def disable(
    trader_id: str = typer.Argument(..., metavar="ID", help="The trader's id (UUID)."),
    reason: str | None = typer.Option(
        None, "--reason", help="Why, stored in disabled_reason (the user can read it)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Disable a trader; its owner sees 'disabled by an operator' and your --reason."""
    parse_trader_id(trader_id)
    with open_admin_connection(resolve_database_url(load_settings())) as conn:
        _report(set_trader_enabled(conn, trader_id, enabled=False, reason=reason), as_json)
