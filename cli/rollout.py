"""`traderctl rollout …`: move traders from the browser to the backend, tier by tier.

``show`` prints the rules, who runs where, the backend's health and the last day's parity;
``set`` changes a tier's percentage, one user's mode or the default (``--dry-run`` says
how many users and traders would move and changes nothing); ``config`` changes fallback
and parity thresholds; ``parity`` compares browser reports with shadow runs.
docs/rollout.md walks through the phases.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from traderctl.cli import output
from traderctl.cli.output import emit_json, escape, short, when
from traderctl.worker.admin.db import open_admin_connection
from traderctl.worker.admin.rollout import (
    RolloutChange,
    parity,
    parse_since,
    rollout_status,
    set_default_mode,
    set_tier_mode,
    set_user_mode,
    update_settings,
)
from traderctl.worker.config import load_settings
from traderctl.worker.local.embedded_pg import resolve_database_url

__all__ = ["app"]

app = typer.Typer(
    help="Roll traders out from the browser to the backend (modes, health, parity).",
    no_args_is_help=True,
)


def _url() -> str:
    return resolve_database_url(load_settings())


def _percent(value: Any) -> str:
    return "-" if value is None else f"{float(value):g}%"


@app.command()
def show(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Rules per tier, users and traders per mode, backend health, last day's parity."""
    with open_admin_connection(_url()) as conn:
        status = rollout_status(conn)
    if as_json:
        emit_json(status)
        return
    settings = status.settings
    rules = Table(title=f"rules (default mode: {settings.get('default_mode')})")
    for column in ("tier", "shadow or server", "server"):
        rules.add_column(column)
    for r in status.rules:
        rules.add_row(r["tier"], _percent(r["shadow_percent"]), _percent(r["server_percent"]))
    output.emit(rules)

    modes = Table(title="traders per mode")
    for column in ("tier", "mode", "users", "traders", "in fallback"):
        modes.add_column(column, justify="left" if column in ("tier", "mode") else "right")
    for m in status.modes:
        modes.add_row(
            m["tier"], m["mode"], str(m["users"]), str(m["traders"]), str(m["in_fallback"])
        )
    output.emit(modes)

    health = status.health
    colour = "green" if health.get("status") == "healthy" else "red"
    output.line(
        f"health: [{colour}]{health.get('status')}[/{colour}] since {when(health.get('since'))}"
        f"{' — fallback active' if health.get('fallback_active') else ''}"
        f"{'; ' + escape('; '.join(health.get('reasons') or [])) if health.get('reasons') else ''}",
        markup=True,
    )
    _parity_table(status.parity, "parity, last 24 h")


def _parity_table(tiers: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in ("tier", "pairs", "agreeing", "agreement", "traders", "differing"):
        table.add_column(column, justify="left" if column == "tier" else "right")
    for p in tiers:
        table.add_row(
            p["tier"],
            str(p["pairs"]),
            str(p["agreeing"]),
            f"{p['agreement'] * 100:.2f}%",
            str(p["traders"]),
            str(p["traders_differing"]),
        )
    output.emit(table)


def _report(change: RolloutChange, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "subject": change.subject,
                "change": change.detail,
                "dry_run": change.dry_run,
                "users_moved": change.users_moved,
                "traders_moved": change.traders_moved,
                "moves": change.moves,
            }
        )
        return
    verb = "would move" if change.dry_run else "moved"
    output.line(
        f"{escape(change.detail)}: {verb} {change.users_moved} user(s), "
        f"{change.traders_moved} trader(s)"
        + (" (dry run: nothing changed)" if change.dry_run else "")
    )
    for m in change.moves:
        output.line(
            f"  {m['from_mode']} -> {m['to_mode']}: {m['users']} user(s), {m['traders']} trader(s)"
        )


@app.command("set")
def set_(
    mode: str | None = typer.Option(
        None, "--mode", help="browser, shadow or server.", show_default=False
    ),
    tier: str | None = typer.Option(None, "--tier", help="Change this tier's rule."),
    percent: float | None = typer.Option(
        None, "--percent", help="Share of the tier's users in --mode (0-100)."
    ),
    user: str | None = typer.Option(None, "--user", help="Override one user (id or email)."),
    clear: bool = typer.Option(False, "--clear", help="With --user: remove the override."),
    default: bool = typer.Option(False, "--default", help="Set the mode of tiers without a rule."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say who would move; change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Change a tier's rule, one user's override, or the default mode."""
    targets = sum(x for x in (tier is not None, user is not None, default))
    if targets != 1:
        output.usage_error("give exactly one of --tier, --user or --default.")
    if mode is None and not (user is not None and clear):
        output.usage_error("--mode is required (browser, shadow or server).")
    with open_admin_connection(_url()) as conn:
        if tier is not None:
            assert mode is not None
            change = set_tier_mode(conn, tier, mode, percent, dry_run=dry_run)
        elif user is not None:
            change = set_user_mode(conn, user, None if clear else mode, dry_run=dry_run)
        else:
            assert mode is not None
            change = set_default_mode(conn, mode, dry_run=dry_run)
    _report(change, as_json)


@app.command()
def config(
    fallback: bool | None = typer.Option(
        None, "--fallback/--no-fallback", help="Demote server traders while unhealthy."
    ),
    tick_missing_after: int | None = typer.Option(
        None, "--tick-missing-after", min=60, help="Seconds without a scheduler tick."
    ),
    lag_threshold: int | None = typer.Option(
        None, "--lag-threshold", min=1, help="p99 slot->commit / oldest waiting job, seconds."
    ),
    worker_alive: int | None = typer.Option(
        None, "--worker-alive", min=1, help="Heartbeat age of a live worker, seconds."
    ),
    hold: int | None = typer.Option(
        None, "--hold", min=0, help="Seconds of passing checks before fallback ends."
    ),
    parity_threshold: float | None = typer.Option(
        None, "--parity-threshold", min=0, max=1, help="Alert below this agreement (0-1)."
    ),
    parity_min_sample: int | None = typer.Option(
        None, "--parity-min-sample", min=1, help="Pairs a day before the parity alert."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Change the health check's and parity alert's thresholds."""
    changes = {
        "fallback_enabled": fallback,
        "tick_missing_after_s": tick_missing_after,
        "lag_p99_threshold_s": lag_threshold,
        "worker_alive_s": worker_alive,
        "hold_s": hold,
        "parity_threshold": parity_threshold,
        "parity_min_sample": parity_min_sample,
    }
    with open_admin_connection(_url()) as conn:
        change = update_settings(conn, {k: v for k, v in changes.items() if v is not None})
    _report(change, as_json)


@app.command("parity")
def parity_(
    since: str = typer.Option("1d", "--since", help="How far back: 30m, 12h, 1d, 2w."),
    tier: str | None = typer.Option(None, "--tier", help="Only this tier."),
    limit: int = typer.Option(20, "--limit", min=1, help="Traders to list (least agreeing)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Browser reports vs shadow runs: agreement per tier and the least agreeing traders."""
    window = parse_since(since)
    with open_admin_connection(_url()) as conn:
        report = parity(conn, since=window, tier=tier, limit=limit)
    if as_json:
        emit_json(report)
        return
    _parity_table(report.tiers, f"parity since {when(report.since)}")
    table = Table(title="traders, least agreeing first")
    for column in ("trader", "tier", "pairs", "agreement", "differing symbols"):
        table.add_column(column, justify="right" if column in ("pairs", "agreement") else "left")
    for t in report.traders:
        table.add_row(
            str(t["trader_id"]),
            t["tier"],
            str(t["pairs"]),
            f"{t['agreement'] * 100:.2f}%",
            escape(short(", ".join(t["differing_symbols"]), 60)),
        )
    output.emit(table)
