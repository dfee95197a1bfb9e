"""Evaluating a batch's filters in the process's V8 runtime.

Each trader runs over the top ``max_symbols`` symbols by quote volume. A filter error is
the trader's (recorded on its run), never the job's; a failure of the runtime itself is
contained to the trader it happened on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from traderctl.worker.runner.snapshot_cache import SnapshotCache, SnapshotSink
from traderctl.worker.runner.spec import TraderSpec
from traderctl.worker.sandbox.types import TraderRequest

__all__ = ["FilterRuntimeLike", "Outcome", "error_fields", "run_all"]

logger = logging.getLogger(__name__)

#: (runtime result, error type, error message) of one trader.
Outcome = tuple[Any, str | None, str | None]


class FilterRuntimeLike(SnapshotSink, Protocol):
    """The part of worker.sandbox.FilterRuntime the runner uses."""

    def run_trader(
        self,
        *,
        trader_id: str,
        code: str,
        refresh_interval: str,
        required_timeframes: list[str] | None,
        symbols: list[str],
        previous_matches: list[str] | None,
    ) -> Any: ...


def error_fields(result: Any) -> tuple[str | None, str | None]:
    """(type, message) of a TraderRunResult's error, or (None, None)."""
    error = getattr(result, "error", None)
    if error is None:
        return None, None
    if isinstance(error, str):
        return error, error
    if isinstance(error, Mapping):
        kind = error.get("kind") or error.get("type")
        return str(kind or "runtime"), str(error.get("message") or kind)
    kind = getattr(error, "kind", None) or getattr(error, "type", None) or "runtime"
    kind = getattr(kind, "value", kind)
    message = getattr(error, "message", None) or str(error)
    return str(kind), str(message)


def _symbols(cache: SnapshotCache, spec: TraderSpec) -> list[str]:
    universe = cache.universe
    return universe if spec.max_symbols is None else universe[: spec.max_symbols]


def run_all(
    runtime: FilterRuntimeLike, cache: SnapshotCache, specs: Sequence[TraderSpec]
) -> list[Outcome]:
    """One outcome per spec, in one V8 call when possible.

    The runtime's batch call keeps each trader under its own CPU budget; if the batch
    call itself fails (a runtime bug, not a filter error), traders are run one by one
    so that one trader cannot fail the others.
    """
    run_traders = getattr(runtime, "run_traders", None)
    if run_traders is not None and len(specs) > 1:
        requests = [
            TraderRequest(
                trader_id=spec.job.trader_id,
                code=spec.code,
                refresh_interval=spec.refresh_interval,
                required_timeframes=spec.required_timeframes,
                symbols=_symbols(cache, spec),
                previous_matches=spec.previous_matches if spec.has_matches else None,
            )
            for spec in specs
        ]
        try:
            results = run_traders(requests)
        except Exception:
            logger.exception("batch evaluation failed; running the traders one by one")
        else:
            return [(r, *error_fields(r)) for r in results]
    return [_run_one(runtime, cache, spec) for spec in specs]


def _run_one(runtime: FilterRuntimeLike, cache: SnapshotCache, spec: TraderSpec) -> Outcome:
    try:
        result = runtime.run_trader(
            trader_id=spec.job.trader_id,
            code=spec.code,
            refresh_interval=spec.refresh_interval,
            required_timeframes=spec.required_timeframes,
            symbols=_symbols(cache, spec),
            previous_matches=spec.previous_matches if spec.has_matches else None,
        )
    except Exception as exc:  # a runtime bug must not take the batch down
        logger.exception("runtime failed on trader %s", spec.job.trader_id)
        return None, "internal", f"{type(exc).__name__}: {exc}"
    return (result, *error_fields(result))
