"""Entry point of `traderctl`: registers one typer sub-app per area.

Errors from our own family (:class:`traderctl.worker.errors.TraderctlError`) become one red
line on stderr (:func:`traderctl.cli.output.error`) and exit code 1; tracebacks appear only
with ``--debug``.
"""

from __future__ import annotations

import logging
import sys

import typer

from traderctl.cli import db, output, requeue, rollout, signals, stats, traders
from traderctl.cli import filter as filter_cli
from traderctl.cli import market_data as market_data_cli
from traderctl.cli import scheduler as scheduler_cli
from traderctl.cli import up as up_cli
from traderctl.cli import worker as worker_cli
from traderctl.worker.errors import TraderctlError

__all__ = ["app", "main"]

app = typer.Typer(
    name="traderctl",
    help="Run users' JavaScript trading filters on a schedule, Postgres-native.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(filter_cli.app, name="filter")
app.add_typer(traders.app, name="traders")
app.add_typer(signals.app, name="signals")
app.add_typer(rollout.app, name="rollout")
app.command("requeue")(requeue.requeue)
app.command("stats")(stats.stats)
app.command("tick")(scheduler_cli.tick)
app.command("scheduler")(scheduler_cli.scheduler)
app.command("worker")(worker_cli.worker)
app.command("up")(up_cli.up)
market_data_cli.register(app)

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not debug:
        # One line per HTTP request (hundreds a minute) drowns everything else.
        logging.getLogger("httpx").setLevel(logging.WARNING)


def main() -> None:
    """Console-script entry: run the app, turning our errors into one line and exit 1.

    Click's standalone mode handles usage errors itself (message, exit 2) and exits;
    our own error family propagates out of it and is printed here.
    """
    try:
        app()
    except TraderctlError as exc:
        if _state["debug"]:
            raise
        output.error(str(exc))
        sys.exit(1)
