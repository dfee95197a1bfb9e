"""Rendering helpers shared by the admin commands (traders, requeue, stats, signals).

Results go to stdout, logs and notes to stderr (STYLE §8). JSON is printed with plain
``json.dumps`` rather than rich, so pipes and tests get exact, unwrapped text.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console

from traderctl.worker.admin.operations import to_jsonable

__all__ = ["PIPE_WIDTH", "emit_json", "err", "out", "short", "when"]

err = Console(stderr=True)

#: Width used when stdout is not a terminal (pipes, files, tests): wide enough that the
#: tables stay readable instead of rich's default 80 columns.
PIPE_WIDTH = 200


def out() -> Console:
    """A console on the current stdout: the terminal's width, or PIPE_WIDTH for pipes."""
    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)


def emit_json(value: Any, *, indent: int | None = 2) -> None:
    """Print ``value`` (rows, dataclasses, dicts) as JSON on stdout."""
    typer.echo(json.dumps(to_jsonable(value), indent=indent))


def when(value: datetime | None) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM:SS' in UTC, or '-'."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def short(text: str | None, width: int = 60) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"
