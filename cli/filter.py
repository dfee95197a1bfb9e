"""`traderctl filter`: run browser filter messages and check filter code locally.

Why: teams compare backend and browser results side by side (`filter run` takes the
browser worker's request data and prints its response shape), and authors want to know
before enabling a trader whether its code compiles, throws, returns non-booleans or runs
too long (`filter check`, on a deterministic synthetic market or a real message).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from traderctl.cli import output
from traderctl.worker.config import SETTINGS, load_settings
from traderctl.worker.errors import FilterCheckFailed, FilterMessageError
from traderctl.worker.local.synthetic_market import generate_snapshot
from traderctl.worker.sandbox.message import parse_message
from traderctl.worker.sandbox.runtime import FilterRuntime, TraderRequest, TraderRunResult

__all__ = ["app"]

app = typer.Typer(help="Run and check trader filter code in the V8 sandbox.", no_args_is_help=True)

#: The settings that shape a sandbox run, named in both commands' --help.
_SANDBOX_ENV = ", ".join(
    SETTINGS[name].env for name in ("helpers_js", "filter_timeout_ms", "filter_memory_mb")
)

_TF_LITERAL = re.compile(r"""timeframes\s*\[\s*['"]([0-9]+[mhdwM])['"]\s*\]""")


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FilterMessageError(f"Cannot read {what} {path}: {exc.strerror}.") from exc
    except json.JSONDecodeError as exc:
        raise FilterMessageError(f"{what.capitalize()} {path} is not valid JSON: {exc}.") from exc


def _load_state(path: Path | None) -> dict[str, list[str]]:
    if path is None or not path.exists():
        return {}
    raw = _read_json(path, "state file")
    if not isinstance(raw, dict) or not all(
        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in raw.values()
    ):
        raise FilterMessageError(f"State file {path} must be an object {{traderId: [symbols]}}.")
    return {str(k): list(v) for k, v in raw.items()}


def _save_state(path: Path, state: dict[str, list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


@app.command("run", epilog=f"Env: {_SANDBOX_ENV}.")
def run(
    message: Annotated[Path, typer.Argument(help="Browser worker request data (JSON).")],
    state: Annotated[
        Path | None,
        typer.Option(
            "--state", help="JSON file of previous matches per trader; read, then updated."
        ),
    ] = None,
) -> None:
    """Evaluate the message's traders like the browser worker; print its result as JSON."""
    data = _read_json(message, "message")
    if not isinstance(data, dict):
        raise FilterMessageError(f"Message {message} must be a JSON object.")
    previous = _load_state(state)
    with FilterRuntime(load_settings()) as runtime:
        result = runtime.run_message(data, previous)
    if state is not None:
        _save_state(state, previous)
    output.emit_json(result, indent=None)


def _infer_timeframes(code: str) -> list[str]:
    seen: list[str] = []
    for tf in _TF_LITERAL.findall(code):
        if tf not in seen:
            seen.append(tf)
    return seen


def _problems(result: TraderRunResult, *, code: str) -> list[str]:
    problems: list[str] = []
    if result.error is not None:
        problems.append(f"{result.error.kind}: {result.error.message}")
        return problems
    if result.symbol_errors:
        by_message = Counter(e.message for e in result.symbol_errors)
        for text, count in by_message.most_common(5):
            problems.append(f"runtime error on {count} symbol(s): {text}")
    odd = {k: v for k, v in result.return_types.items() if k != "boolean"}
    if odd:
        kinds = ", ".join(f"{k} x{v}" for k, v in sorted(odd.items()))
        problems.append(
            f"non-boolean return values ({kinds}); remember that [] and {{}} count as a match"
        )
    if result.symbols_evaluated == 0:
        problems.append("no symbol was evaluated (missing timeframes or fewer than 30 klines)")
    return problems


@app.command("check", epilog=f"Env: {_SANDBOX_ENV}.")
def check(
    file: Annotated[Path, typer.Argument(help="Filter code (a function body) to check.")],
    message: Annotated[
        Path | None,
        typer.Option(
            "--message", help="Use this browser request's market data instead of synthetic data."
        ),
    ] = None,
    timeframes: Annotated[
        str | None,
        typer.Option(
            "--timeframes",
            help="Required timeframes, comma-separated (default: the literal timeframes['..'] "
            "the code reads, else the refresh interval).",
        ),
    ] = None,
    refresh_interval: Annotated[
        str, typer.Option("--refresh-interval", help="Trader refresh interval.")
    ] = "1m",
) -> None:
    """Compile and dry-run filter code; report syntax errors, throws, non-boolean returns, timeouts.

    Exits 1 when a problem is found.
    """
    try:
        code = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise FilterMessageError(f"Cannot read filter {file}: {exc.strerror}.") from exc
    required = (
        [t.strip() for t in timeframes.split(",") if t.strip()]
        if timeframes is not None
        else _infer_timeframes(code) or None
    )
    with FilterRuntime(load_settings()) as runtime:
        if message is None:
            snapshot = generate_snapshot()
            symbols = snapshot.symbols
            runtime.load_message_snapshot(parse_message(snapshot.message([])).snapshot)
            source = "synthetic market (20 symbols x 6 timeframes x 250 klines, seed 42)"
        else:
            data = _read_json(message, "message")
            parsed = parse_message(data)
            runtime.load_message_snapshot(parsed.snapshot)
            symbols = parsed.symbols
            source = f"{message} ({len(symbols)} symbols)"
        request = TraderRequest(
            trader_id=file.stem,
            code=code,
            refresh_interval=refresh_interval,
            required_timeframes=required,
            symbols=symbols,
        )
        result = runtime.run_traders([request], return_types=True)[0]
    problems = _problems(result, code=code)
    tfs = ", ".join(required) if required is not None else f"{refresh_interval} (default)"
    output.line(f"{file}: timeframes {tfs}; data: {source}")
    if result.ok:
        output.line(
            f"evaluated {result.symbols_evaluated} symbol(s), {len(result.filtered_symbols)} "
            f"match(es) in {result.duration_ms:.0f} ms"
        )
    for problem in problems:
        output.note(problem, tag="problem")
    if problems:
        raise FilterCheckFailed(f"{file}: {len(problems)} problem(s) found.")
    output.line("ok")
