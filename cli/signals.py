"""`traderctl signals tail`: print new signals as they are committed.

Following works by polling ``public.signals`` by id every ``--poll`` seconds (no trigger,
no LISTEN): it costs nothing when nobody tails, works through any connection pooler, and
needs no change on the workers' hot path. Ids are assigned at insert but become visible
at commit, so the follower re-reads the last 30 seconds and prints each id once (see
:class:`traderctl.worker.admin.signals.SignalFollower`). The latency is the poll period (1 s by default).
"""

from __future__ import annotations

import time

import typer

from traderctl.cli import output
from traderctl.cli.output import emit_json, when
from traderctl.worker.admin.db import open_admin_connection
from traderctl.worker.admin.lookups import check_trader_exists, resolve_user
from traderctl.worker.admin.signals import SignalFollower, SignalRow
from traderctl.worker.config import load_settings
from traderctl.worker.local.embedded_pg import resolve_database_url

__all__ = ["app"]

app = typer.Typer(help="Watch the signals traders raise.", no_args_is_help=True)


def _line(s: SignalRow) -> str:
    change = f"{float(s.change_percent):+.2f}%" if s.change_percent is not None else "-"
    price = f"{s.price}" if s.price is not None else "-"
    trader = f"{s.trader_name or '-'} ({s.trader_id})"
    return (
        f"{when(s.created_at)}  #{s.id:<8} {s.symbol:<14} {s.interval:<4} "
        f"price {price:<14} {change:>8}  slot {when(s.slot)[11:16]}  trader {trader}  "
        f"user {s.user_id}"
    )


@app.command()
def tail(
    user: str | None = typer.Option(None, "--user", help="Only this user's (id or email)."),
    trader: str | None = typer.Option(None, "--trader", metavar="ID", help="Only this trader's."),
    last: int = typer.Option(10, "--last", min=0, help="Print this many recent signals first."),
    follow: bool = typer.Option(True, "--follow/--no-follow", help="Keep printing new signals."),
    poll: float = typer.Option(1.0, "--poll", min=0.05, help="Seconds between polls."),
    count: int = typer.Option(
        0, "--count", min=0, help="Exit after printing this many signals (0 = never)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line (JSON Lines)."),
) -> None:
    """Print the latest signals, then follow new ones until Ctrl-C (or --count is reached)."""
    printed = 0
    with open_admin_connection(resolve_database_url(load_settings())) as conn:
        user_id = resolve_user(conn, user) if user is not None else None
        trader_id = check_trader_exists(conn, trader) if trader is not None else None
        follower = SignalFollower(conn, user_id=user_id, trader_id=trader_id)
        follower.start(last)
        try:
            while True:
                for signal in follower.poll():
                    if as_json:
                        emit_json(signal, indent=None)
                    else:
                        output.line(_line(signal))
                    printed += 1
                    if count and printed >= count:
                        return
                if not follow:
                    return
                time.sleep(poll)
        except KeyboardInterrupt:
            return
