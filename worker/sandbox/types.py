"""Plain data types of the filter sandbox, importable without V8.

Why a separate module: the trader runner, the CLI and the browser message format need these
types, and importing them must not load mini-racer (nor create an import cycle between the
runtime and the message module).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "BatchOutcome",
    "FailureKind",
    "SymbolError",
    "TraderFailure",
    "TraderRequest",
    "TraderRunResult",
]


class FailureKind(StrEnum):
    """Why a whole trader-run failed (its previous matches must then be kept).

    ``TAMPERING``: the filter made a change to the sandbox that cannot be undone (the
    isolate had to be rebuilt). The guards make this impossible for known paths; the kind
    exists so that, should one be found, the trader that caused it pays for the rebuild.
    """

    SYNTAX = "syntax"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    RUNTIME = "runtime"
    TAMPERING = "tampering"


@dataclass(frozen=True, kw_only=True)
class TraderFailure:
    """A failed trader-run: ``kind`` plus a readable message (with line/column for syntax)."""

    kind: FailureKind
    message: str
    line: int | None = None
    column: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "message": self.message,
            "line": self.line,
            "column": self.column,
        }


@dataclass(frozen=True, kw_only=True)
class SymbolError:
    """A filter (or the hvnNodes pre-pass) threw for one symbol: that symbol does not match."""

    symbol: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "message": self.message}


@dataclass(frozen=True, kw_only=True)
class TraderRequest:
    """One trader to evaluate; ``previous_matches`` None means "first run" (all are signals)."""

    trader_id: str
    code: str
    refresh_interval: str | None
    required_timeframes: Sequence[str] | None
    symbols: Sequence[str]
    previous_matches: Collection[str] | None = None


@dataclass(frozen=True, kw_only=True)
class TraderRunResult:
    """Outcome of one trader over one snapshot.

    ``signal_symbols`` are the matches not in ``previous_matches`` (edge trigger). When
    ``error`` is set the run failed as a whole: both symbol lists are empty and the caller
    must keep the trader's previous matches unchanged (as the browser did on a SyntaxError).
    ``private_copies`` is True when the filter mutated the shared snapshot and was re-run on
    private copies. ``return_types`` counts non-boolean return values (only when requested).
    """

    trader_id: str
    filtered_symbols: tuple[str, ...]
    signal_symbols: tuple[str, ...]
    symbol_errors: tuple[SymbolError, ...]
    error: TraderFailure | None
    duration_ms: float
    symbols_evaluated: int
    private_copies: bool = False
    return_types: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, kw_only=True)
class BatchOutcome:
    """What one isolate batch call returned.

    ``results`` are the runner's per-trader dicts for the traders that completed, in order.
    ``stopped_at`` is the index of the trader that was stopped (``None`` when the batch
    finished); ``stop_kind`` says why (``timeout``, ``out_of_memory`` or ``tampering``) and
    ``stop_detail`` adds what was found. ``replace`` is True when the isolate must not be
    used again (it is then rebuilt before the remaining traders run). ``unsure`` is True
    when the stopped trader might not be the cause (memory growth measured over a window
    that also held the previous trader's Promise jobs): it gets one more run, first in the
    next call, before it fails.
    """

    results: list[dict[str, Any]]
    stopped_at: int | None = None
    stop_kind: str | None = None
    stop_detail: str = ""
    replace: bool = False
    unsure: bool = False
    #: Group mode only: something happened that no single trader can be blamed for yet;
    #: the traders after ``results`` must run again one per call (``timed_out``: one of them
    #: overran its time in its own code, which counts as its first run).
    regroup: bool = False
    timed_out: int | None = None
