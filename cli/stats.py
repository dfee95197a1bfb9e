"""`traderctl stats`: the ops views on one screen (or as JSON), once or live.

The numbers come from the ``ops`` schema (docs/operations.md explains each view). Exit
codes: 0 normally; with ``--check``, 1 while ops.alerts has any row (one red line naming
them), so the command doubles as a health probe for cron jobs and CI.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from traderctl.cli import output
from traderctl.cli.output import emit_json, when
from traderctl.worker.admin.db import open_admin_connection
from traderctl.worker.admin.stats import stats_snapshot
from traderctl.worker.config import load_settings
from traderctl.worker.errors import AlertsFiring
from traderctl.worker.local.embedded_pg import resolve_database_url

__all__ = ["stats"]


def _num(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal | float):
        return f"{float(value):,.1f}{suffix}"
    return f"{value}{suffix}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


def _render(snap: dict[str, Any]) -> Group:
    parts: list[Any] = []

    alerts = Table(title="alerts", title_style="bold red" if snap["alerts"] else "bold green")
    for column in ("severity", "alert", "subject", "detail"):
        alerts.add_column(column)
    for a in snap["alerts"]:
        colour = "red" if a["severity"] == "critical" else "yellow"
        alerts.add_row(
            f"[{colour}]{a['severity']}[/{colour}]", a["alert"], a["subject"], a["detail"]
        )
    if not snap["alerts"]:
        alerts.add_row("[green]ok[/green]", "-", "-", "no alert is firing")
    parts.append(alerts)

    minutes = snap["executions_per_minute"][-10:]
    epm = Table(title="executions per minute (last 10 minutes; the last one is in progress)")
    for column in ("minute (UTC)", "runs", "ok", "errors", "signals", "avg ms"):
        epm.add_column(column, justify="right")
    for m in minutes:
        epm.add_row(
            when(m["minute"])[11:16],
            str(m["runs"]),
            str(m["ok"]),
            str(m["errors"]),
            str(m["signals"]),
            _num(m["avg_duration_ms"]),
        )
    total = sum(int(m["runs"]) for m in snap["executions_per_minute"])
    epm.caption = f"{total} runs in the last hour"
    parts.append(epm)

    by_interval: dict[str, dict[str, Any]] = {}
    for view in ("execution_time_by_interval", "failure_rate_by_interval", "schedule_lag"):
        for row in snap[view]:
            by_interval.setdefault(row["interval"], {}).update(row)
    for row in snap["snapshot_freshness"]:
        if row["interval"] in by_interval:
            by_interval[row["interval"]]["snapshot"] = row
    per = Table(title="per interval (last hour unless noted)")
    for column in (
        "interval",
        "runs",
        "avg ms",
        "p95 ms",
        "fail 15m",
        "fail 1h",
        "start lag p50/p99 ms",
        "signal lag p50/p99 ms",
        "snapshot",
    ):
        per.add_column(column, justify="right")
    for name, row in by_interval.items():
        snapshot = row.get("snapshot") or {}
        if snapshot.get("stale") and snapshot.get("traders"):
            fresh = "[red]stale[/red]"
        elif snapshot.get("stale"):
            fresh = "unused"
        else:
            fresh = f"v{snapshot.get('version')} {_num(snapshot.get('refresh_age_s'), ' s')}"
        per.add_row(
            name,
            str(row.get("runs_1h", row.get("runs"))),
            _num(row.get("avg_ms")),
            _num(row.get("p95_ms")),
            _pct(row.get("failure_rate_15m")),
            _pct(row.get("failure_rate_1h")),
            f"{_num(row.get('start_lag_p50_ms'))} / {_num(row.get('start_lag_p99_ms'))}",
            f"{_num(row.get('signal_lag_p50_ms'))} / {_num(row.get('signal_lag_p99_ms'))}",
            fresh,
        )
    parts.append(per)

    queues = Table(title="queues")
    for column in ("queue", "waiting", "delayed", "running", "oldest waiting"):
        queues.add_column(column, justify="right")
    for q in snap["queue_depth"]:
        queues.add_row(
            q["queue_name"],
            str(q["waiting"]),
            str(q["delayed"]),
            str(q["running"]),
            _num(q["oldest_waiting_age_s"], " s"),
        )
    parts.append(queues)

    skips = [s for s in snap["skips_by_reason"] if s["skipped_1h"]]
    if skips:
        table = Table(title="scheduler skips (last hour)")
        for column in ("reason", "interval", "15m", "1h", "latest tick"):
            table.add_column(column, justify="right")
        for s in skips:
            table.add_row(
                s["reason"],
                s["interval"] or "-",
                str(s["skipped_15m"]),
                str(s["skipped_1h"]),
                str(s["latest"]),
            )
        parts.append(table)

    if snap["cron_job_health"]:
        table = Table(title="pg_cron jobs")
        for column in ("job", "schedule", "last start", "status", "runs 1h", "fails 1h", "missing"):
            table.add_column(column)
        for c in snap["cron_job_health"]:
            table.add_row(
                c["jobname"] or str(c["jobid"]),
                c["schedule"],
                when(c["last_start"]),
                c["last_status"] or "-",
                str(c["runs_1h"]),
                str(c["failures_1h"]),
                "[red]yes[/red]" if c["missing"] else "no",
            )
        parts.append(table)
    return Group(*parts)


def stats(
    watch: bool = typer.Option(False, "--watch", "-w", help="Redraw every --every seconds."),
    every: float = typer.Option(5.0, "--every", min=0.5, help="Seconds between redraws."),
    check: bool = typer.Option(
        False, "--check", help="Exit 1 when any alert is firing (a health probe)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print every ops view as JSON (with --watch: one line per refresh)."
    ),
) -> None:
    """Executions, durations, queues, failures, lag, market data, skips, pg_cron and alerts."""
    with open_admin_connection(resolve_database_url(load_settings())) as conn:
        if not watch:
            snap = stats_snapshot(conn)
            if as_json:
                emit_json(snap)
            else:
                output.emit(_render(snap))
            if check and snap["alerts"]:
                names = ", ".join(f"{a['alert']}({a['subject']})" for a in snap["alerts"])
                raise AlertsFiring(f"{len(snap['alerts'])} alert(s) firing: {names}")
            return
        try:
            if as_json:
                while True:
                    emit_json(stats_snapshot(conn), indent=None)
                    time.sleep(every)
            with Live(console=output.stdout(), auto_refresh=False, screen=False) as live:
                while True:
                    live.update(_render(stats_snapshot(conn)), refresh=True)
                    time.sleep(every)
        except KeyboardInterrupt:
            output.note("stopped")
