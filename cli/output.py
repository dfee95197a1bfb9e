"""Where every `traderctl` command writes, and how.

* Results go to **stdout**: a rich table or plain lines by default, JSON with ``--json``
  (plain ``json.dumps``, never rich, so pipes and tests get exact, unwrapped text).
* Progress notes and logs go to **stderr**, so ``traderctl … --json | jq`` stays clean.
* An error is **one red line** on stderr, ``error: <what happened and what to do>``, and
  exit code 1 (:func:`error`, called by :func:`traderctl.cli.main.main`); usage errors
  keep click's exit code 2 (:func:`usage_error`).

JSON conversion lives here, not in the admin package: it is a property of the CLI's
output format, and result dataclasses stay plain Python.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.text import Text

__all__ = [
    "PIPE_WIDTH",
    "emit",
    "emit_json",
    "error",
    "escape",
    "line",
    "note",
    "short",
    "stdout",
    "to_jsonable",
    "usage_error",
    "when",
]

#: Width used when stdout is not a terminal (pipes, files, tests): wide enough that the
#: tables stay readable instead of rich's default 80 columns.
PIPE_WIDTH = 200


def stdout() -> Console:
    """A console on the current stdout: the terminal's width, or PIPE_WIDTH for pipes.

    Built per call because tests and `typer.testing` swap ``sys.stdout``.
    """
    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def emit(renderable: RenderableType) -> None:
    """A rich result (table, group) on stdout."""
    stdout().print(renderable)


def line(text: str, *, markup: bool = False) -> None:
    """One result line on stdout, without auto-highlighting.

    ``markup=True`` only for text we wrote; data (names, errors) goes through
    :func:`escape` first, so a ``[`` in a trader's name is printed, not parsed.
    """
    stdout().print(text, highlight=False, soft_wrap=True, markup=markup, emoji=False)


def note(text: str, *, tag: str | None = None, style: str = "yellow") -> None:
    """A progress note or hint on stderr, optionally after a coloured ``tag:``."""
    _stderr().print(Text.assemble((f"{tag}: ", style), text) if tag else Text(text))


def error(message: str) -> None:
    """The one red line an error becomes: ``error: <message>`` on stderr."""
    _stderr().print(Text.assemble(("error:", "red"), " ", message))


def usage_error(message: str) -> NoReturn:
    """A usage error the way click reports one: ``Error: …`` on stderr, exit code 2."""
    _stderr().print(f"Error: {message}", markup=False)
    raise typer.Exit(2)


def to_jsonable(value: Any) -> Any:
    """Rows, dataclasses and their values as JSON-ready Python (ISO times, str UUIDs)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def emit_json(value: Any, *, indent: int | None = 2) -> None:
    """``value`` (rows, dataclasses, dicts) as JSON on stdout; ``indent=None``: one line."""
    typer.echo(json.dumps(to_jsonable(value), indent=indent))


def when(value: datetime | None) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM:SS' in UTC, or '-'."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def short(text: str | None, width: int = 60) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"
