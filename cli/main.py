"""Entry point of `traderctl`: registers one typer sub-app per area.

Errors from our own family (:class:`worker.errors.TraderctlError`) become one red line on
stderr and exit code 1; tracebacks appear only with ``--debug``.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from cli import db
from worker.errors import TraderctlError

__all__ = ["app", "main"]

app = typer.Typer(
    name="traderctl",
    help="Run users' JavaScript trading filters on a schedule, Postgres-native.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")

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


def main() -> None:
    """Console-script entry: run the app, turning our errors into one line and exit 1."""
    try:
        rv = app(standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    except TraderctlError as exc:
        if _state["debug"]:
            raise
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
