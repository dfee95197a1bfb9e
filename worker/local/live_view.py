"""The terminal dashboard of `traderctl up`: traders, signals, queues, lag and alerts.

Everything on screen comes from the same SQL an operator can run (traderctl.worker.admin
and the `ops` views), read once per refresh. Headless runs (`--for`, no TTY) print one summary
line per refresh instead.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

import psycopg
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from traderctl.worker.admin.signals import SignalFollower, SignalRow
from traderctl.worker.admin.stats import stats_snapshot
from traderctl.worker.admin.traders import list_traders
from traderctl.worker.local.supervisor import Supervisor

__all__ = ["Dashboard"]


def _age(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never"
    seconds = int((now - at).total_seconds())
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"


class Dashboard:
    """Reads the state of the system and renders it (rich) or summarizes it (one line)."""

    def __init__(self, conn: psycopg.Connection[Any], supervisor: Supervisor) -> None:
        self.conn = conn
        self.supervisor = supervisor
        self.follower = SignalFollower(conn, grace_seconds=10)
        self.follower.start(last=10)
        self.signals: deque[SignalRow] = deque(maxlen=40)
        self.signal_total = 0
        self.notes: deque[str] = deque(maxlen=4)
        self.state: dict[str, Any] = {}

    def refresh(self) -> None:
        """Read new signals, the traders and the ops views."""
        fresh = self.follower.poll()
        self.signal_total += len(fresh)
        self.signals.extend(fresh)
        self.state = stats_snapshot(self.conn)
        self.state["traders"] = list_traders(self.conn, limit=50)

    def summary_line(self) -> str:
        """One line for logs: runs, signals, queue depth, alerts."""
        traders = self.state["traders"]
        ran = sum(1 for t in traders.traders if t.run_count > 0)
        waiting = sum(int(q["waiting"] or 0) for q in self.state["queue_depth"])
        runs = sum(int(m["runs"] or 0) for m in self.state["executions_per_minute"])
        alerts = [a["alert"] for a in self.state["alerts"]]
        return (
            f"traders {ran}/{traders.total} have run; runs (1h) {runs}; "
            f"signals seen {self.signal_total}; waiting jobs {waiting}; "
            f"alerts {', '.join(alerts) if alerts else 'none'}"
        )

    def render(self, height: int = 50) -> Group:
        """The full-screen view, its tables cut to fit ``height`` terminal lines."""
        now = self.state["generated_at"]
        # Fixed lines: header, three table frames, the queue rows, the alerts panel.
        spare = max(8, height - 26)
        trader_rows, signal_rows = spare * 3 // 5, spare - spare * 3 // 5
        return Group(
            self._header(now),
            self._traders(now, trader_rows),
            self._signals(signal_rows),
            self._queues(),
            Panel(self._alerts(), title="Alerts", title_align="left"),
        )

    def _header(self, now: datetime) -> Text:
        procs = Text()
        for child in self.supervisor.children:
            style = "green" if child.alive else "red"
            procs.append(f" {child.name}", style=style)
            procs.append(f"[{child.pid}]" if child.alive else "[down]", style="dim")
        return Text.assemble(
            ("traderctl up", "bold"),
            f"  {now:%H:%M:%S}  signals this session: {self.signal_total}  processes:",
            procs,
            ("   Ctrl-C stops everything", "dim"),
        )

    def _traders(self, now: datetime, rows: int) -> Table:
        traders = Table(title="Traders", expand=True, title_justify="left")
        for col in ("name", "tier", "every", "last run", "status", "runs", "signals", "error"):
            traders.add_column(col, overflow="ellipsis", no_wrap=True)
        for t in self.state["traders"].traders[:rows]:
            status = t.last_run_status or "-"
            traders.add_row(
                t.name,
                t.tier,
                t.interval,
                _age(t.last_run_at, now),
                Text(status, style="red" if status == "error" else "green"),
                str(t.run_count),
                str(t.signal_count),
                (t.last_error or t.schedule_problem or t.disabled_reason or "")[:40],
            )
        return traders

    def _signals(self, rows: int) -> Table:
        signals = Table(title="Latest signals", expand=True, title_justify="left")
        for col in ("at", "trader", "symbol", "interval", "price", "24h %"):
            signals.add_column(col, no_wrap=True, overflow="ellipsis")
        for s in list(reversed(self.signals))[:rows]:
            signals.add_row(
                s.created_at.strftime("%H:%M:%S"),
                s.trader_name or str(s.trader_id)[:8],
                s.symbol,
                s.interval,
                f"{s.price}" if s.price is not None else "-",
                f"{s.change_percent}" if s.change_percent is not None else "-",
            )
        return signals

    def _queues(self) -> Table:
        queues = Table(title="Queues and lag", expand=True, title_justify="left")
        for col in ("queue", "waiting", "running", "oldest wait", "p50 lag", "p99 lag"):
            queues.add_column(col, no_wrap=True)
        lag = {row["interval"]: row for row in self.state["schedule_lag"]}
        for q in self.state["queue_depth"]:
            iv = str(q["queue_name"]).removeprefix("traders.")
            lrow = lag.get(iv, {})
            queues.add_row(
                str(q["queue_name"]),
                str(q["waiting"]),
                str(q["running"]),
                f"{q['oldest_waiting_age_s'] or 0:.0f}s",
                _ms(lrow.get("commit_lag_p50_ms")),
                _ms(lrow.get("commit_lag_p99_ms")),
            )
        return queues

    def _alerts(self) -> Text:
        alert_text = Text()
        if not self.state["alerts"]:
            alert_text.append("no alerts", style="green")
        for a in self.state["alerts"]:
            alert_text.append(f"{a['severity']}: {a['alert']} {a['subject'] or ''} ", style="red")
            alert_text.append(f"{a['detail'] or ''}\n", style="dim")
        for note in self.notes:
            alert_text.append(f"{note}\n", style="yellow")
        return alert_text


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value) / 1000:.1f}s"
