"""The filter runtime: runs users' browser trader filters in V8 (mini-racer), safely.

Why: trader filters were written for a browser Web Worker. The backend must give each one
exactly the results the browser gave while many tenants share a process, so
this module wraps one V8 isolate that holds the current market snapshot (loaded once per
version) and evaluates traders against it with per-trader time and memory limits and no
shared mutable state between traders. docs/sandbox.md describes the design and every place
where behaviour differs from the browser.

Use it from a plain thread, never from inside a running asyncio event loop (mini-racer runs
its own loop; see worker/sandbox/isolate.py).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Collection, Mapping, Sequence
from types import TracebackType
from typing import Any

from traderctl.worker.config import Settings
from traderctl.worker.errors import SandboxHang
from traderctl.worker.sandbox.isolate import Isolate
from traderctl.worker.sandbox.message import MessageSnapshot, format_message_result, parse_message
from traderctl.worker.sandbox.types import (
    BatchOutcome,
    FailureKind,
    SymbolError,
    TraderFailure,
    TraderRequest,
    TraderRunResult,
)

__all__ = [
    "FailureKind",
    "FilterRuntime",
    "SymbolError",
    "TraderFailure",
    "TraderRequest",
    "TraderRunResult",
]


_log = logging.getLogger(__name__)

#: Traders per V8 call while nothing goes wrong (docs/sandbox.md "Groups"): one call costs
#: ~0.1 ms of CPU across two threads, more than many a trader's JavaScript.
GROUP = 16
#: Bound of the set of traders that run one per call (cleared when full).
_MAX_SOLO = 10_000
#: Trader-runs between two looks at the isolate's heap: a look (mini-racer's heap_stats)
#: costs ~1 ms, so it is made about once per thousand runs, not per batch.
HEAP_CHECK_EVERY_RUNS = 1024


class FilterRuntime:
    """One V8 isolate holding a market snapshot, evaluating traders against it.

    Load data with :meth:`set_tickers` / :meth:`set_series` (each skipped when the version is
    unchanged), then call :meth:`run_trader` or :meth:`run_traders` (groups of traders per V8
    call, one trader per call after any doubt; each trader under its own time and memory
    budget). Not thread-safe: one thread per runtime.
    """

    def __init__(self, settings: Settings, *, memo: bool = True, group: int = GROUP) -> None:
        self._settings = settings
        self._memo = memo
        self._group = max(1, group)
        #: Traders stopped after doubt in group mode: they run one per call from then on,
        #: so what their first offence cost (two rebuilds, docs/sandbox.md) is not repeated.
        self._solo: set[str] = set()
        self._budget_s = settings.filter_timeout_ms / 1000
        self._tickers: tuple[str, str] | None = None
        self._series: dict[str, tuple[str, str]] = {}
        self.isolate_replacements = 0
        #: Traders run a second time (after overrunning their budget, or an unsure memory blame).
        self.timeout_retries = 0
        #: Heap trims (see :meth:`_trim_heap`) and the heap they left, in bytes.
        self.heap_trims = 0
        self._runs_since_heap_check = 0
        self._heap_after_trim = 0
        self._isolate = self._new_isolate()

    # -- lifecycle ----------------------------------------------------------------------

    def _new_isolate(self) -> Isolate:
        isolate = Isolate(
            helpers_js=self._settings.helpers_js,
            memory_mb=self._settings.filter_memory_mb,
            memo=self._memo,
        )
        self._finalizer = weakref.finalize(self, isolate.close)
        return isolate

    def _replace_isolate(self) -> None:
        """Throw the isolate away (after OOM or taint) and reload the current snapshot."""
        self._finalizer()
        self.isolate_replacements += 1
        self._heap_after_trim = 0
        self._isolate = self._new_isolate()
        if self._tickers is not None:
            self._isolate.set_tickers(*self._tickers)
        for interval, (version, text) in self._series.items():
            self._isolate.set_series(interval, version, text)

    def close(self) -> None:
        """Free the isolate. The runtime cannot be used afterwards."""
        self._finalizer()

    def __enter__(self) -> FilterRuntime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- snapshot -----------------------------------------------------------------------

    def set_tickers(self, version: str, tickers_json: str) -> None:
        """Load ``{SYMBOL: ticker}`` (JSON text) unless ``version`` is already loaded."""
        if self._tickers is not None and self._tickers[0] == version:
            return
        self._isolate.set_tickers(version, tickers_json)
        self._tickers = (version, tickers_json)

    def set_series(self, interval: str, version: str, series_json: str) -> None:
        """Load ``{SYMBOL: Kline[]}`` (JSON text) for one interval unless unchanged."""
        current = self._series.get(interval)
        if current is not None and current[0] == version:
            return
        self._isolate.set_series(interval, version, series_json)
        self._series[interval] = (version, series_json)

    def drop_series(self, interval: str) -> None:
        """Forget an interval (symbols then lack that timeframe)."""
        if self._series.pop(interval, None) is not None:
            self._isolate.drop_series(interval)

    @property
    def loaded_versions(self) -> dict[str, str]:
        out = {f"series:{k}": v[0] for k, v in self._series.items()}
        if self._tickers is not None:
            out["tickers"] = self._tickers[0]
        return out

    # -- runs ---------------------------------------------------------------------------

    def run_trader(
        self,
        *,
        trader_id: str,
        code: str,
        refresh_interval: str | None,
        required_timeframes: list[str] | None,
        symbols: list[str],
        previous_matches: Collection[str] | None,
    ) -> TraderRunResult:
        """Evaluate one trader over ``symbols`` of the loaded snapshot (docs/sandbox.md)."""
        request = TraderRequest(
            trader_id=trader_id,
            code=code,
            refresh_interval=refresh_interval,
            required_timeframes=required_timeframes,
            symbols=symbols,
            previous_matches=previous_matches,
        )
        return self.run_traders([request])[0]

    def run_traders(
        self, requests: Sequence[TraderRequest], *, return_types: bool = False
    ) -> list[TraderRunResult]:
        """Evaluate traders in order, each under its own time and memory budget.

        A trader that overruns or exhausts memory is stopped and fails; the traders before
        it keep their results and the rest continue (in a new isolate when the stop left
        the isolate unusable). The budget is wall-clock time (V8 offers no CPU clock here),
        so a trader that overruns is run once more, first in the next call, before it fails
        with ``timeout``: on a machine whose cores are all busy a 2 ms filter was seen to hit
        250 ms by starvation alone. A real endless loop thus costs two budgets, once.
        """
        results: list[TraderRunResult | None] = [None] * len(requests)
        retried: set[int] = set()
        solo = self._solo
        group = 1 if solo and any(r.trader_id in solo for r in requests) else self._group
        doubted = False
        alone: int | None = None
        while True:
            todo = [i for i, r in enumerate(results) if r is None]
            if not todo:
                break
            if alone is not None and results[alone] is None:
                # Its second run after an unsure memory blame: by itself, so whatever its
                # Promise jobs do shows up in the settle-only call after it, where it is
                # certainly its.
                todo = [alone]
            alone = None
            try:
                outcome = self._isolate.run_batch(
                    _batch_request(
                        [requests[i] for i in todo], memo=self._memo, return_types=return_types
                    ),
                    budget_s=self._budget_s,
                    group=group,
                )
            except SandboxHang:
                self._replace_isolate()
                raise
            for offset, raw in enumerate(outcome.results):
                results[todo[offset]] = self._convert(requests[todo[offset]], raw)
            if outcome.regroup:
                # Doubt in group mode: the rest of these traders run one per call.
                group, doubted = 1, True
                if outcome.timed_out is not None:
                    retried.add(todo[outcome.timed_out])
                    self.timeout_retries += 1
                if outcome.replace:
                    self._replace_isolate()
                continue
            self._after_batch(outcome, todo, requests, results, retried)
            if outcome.unsure and outcome.stopped_at is not None:
                alone = todo[outcome.stopped_at]
            if doubted and outcome.stopped_at is not None:
                if len(solo) >= _MAX_SOLO:
                    solo.clear()
                solo.add(requests[todo[outcome.stopped_at]].trader_id)
        self._runs_since_heap_check += len(requests)
        if self._runs_since_heap_check >= HEAP_CHECK_EVERY_RUNS:
            self._runs_since_heap_check = 0
            self._trim_heap()
        return [r for r in results if r is not None]

    def _trim_heap(self) -> None:
        """Give V8's caches back when the heap has grown well past what it must hold.

        Why: V8 keeps every distinct filter text it compiles (code, type feedback) in its
        compilation cache until memory runs short, and the isolate's cap is ours, not
        V8's: V8 sees a 1.4 GB limit and collects lazily. With one code text per trader a
        worker would grow by ~3 KB per trader it meets until the cap stopped whichever
        trader was running (docs/sandbox.md "Heap trims"). So between batches, outside
        every trader's time, a heap above half the cap and a quarter of the cap above
        what the last trim left gets V8's low-memory collection: compiled code of
        filters not running is dropped (recompiled on their next run), live data (the
        snapshot, the memo) stays. The second bound keeps a large live set from being
        trimmed over and over for nothing.
        """
        cap = self._settings.filter_memory_mb * 1024 * 1024
        used = self._isolate.heap_used_bytes()
        if used <= max(cap // 2, self._heap_after_trim + cap // 4):
            return
        started = time.perf_counter()
        self._isolate.low_memory_notification()
        self.heap_trims += 1
        self._heap_after_trim = self._isolate.heap_used_bytes()
        _log.info(
            "filter heap trimmed: %d MB -> %d MB in %d ms (V8's compiled code of filters"
            " not running dropped; they compile again on their next run)",
            used >> 20,
            self._heap_after_trim >> 20,
            (time.perf_counter() - started) * 1000,
        )

    def _after_batch(
        self,
        outcome: BatchOutcome,
        todo: list[int],
        requests: Sequence[TraderRequest],
        results: list[TraderRunResult | None],
        retried: set[int],
    ) -> None:
        if outcome.stopped_at is not None:
            index = todo[outcome.stopped_at]
            kind = outcome.stop_kind or "timeout"
            # A stop that condemned the isolate (a hang in the trader's Promise jobs) is not
            # starvation: it fails at once, so a rebuild costs its causer one failure. An
            # unsure blame gets its second run first in a fresh call, where it is certain.
            second_chance = (kind == "timeout" and not outcome.replace) or outcome.unsure
            if second_chance and index not in retried:
                retried.add(index)  # left unset: it runs again, first, in the next call
                self.timeout_retries += 1
            else:
                results[index] = self._failed(requests[index], kind, outcome.stop_detail)
        if outcome.replace:
            self._replace_isolate()

    def _failed(self, request: TraderRequest, stop_kind: str, detail: str) -> TraderRunResult:
        if stop_kind == "out_of_memory":
            failure = TraderFailure(
                kind=FailureKind.OUT_OF_MEMORY,
                message=(
                    f"out of memory: the filter exceeded the {self._settings.filter_memory_mb} MB"
                    " memory cap (TRADER_FILTER_MEMORY_MB)"
                ),
            )
        elif stop_kind == "tampering":
            failure = TraderFailure(
                kind=FailureKind.TAMPERING,
                message=(
                    f"tampering: the filter changed the sandbox in a way that cannot be undone"
                    f" ({detail}); the sandbox was rebuilt. Filters must not make globals"
                    " permanent or change the global object."
                ),
            )
        else:
            failure = TraderFailure(
                kind=FailureKind.TIMEOUT,
                message=(
                    f"timeout: the filter ran longer than {self._settings.filter_timeout_ms} ms"
                    " over all symbols, its Promise jobs included (TRADER_FILTER_TIMEOUT_MS)"
                ),
            )
        budget_ms = float(self._settings.filter_timeout_ms)
        return _failure_result(request, failure, duration_ms=budget_ms)

    def _convert(self, request: TraderRequest, raw: dict[str, Any]) -> TraderRunResult:
        if not raw["ok"]:
            kind = FailureKind(raw["kind"])
            message = str(raw["message"])
            line = column = None
            if kind is FailureKind.SYNTAX:
                line, column, located = self._isolate.syntax_location(request.code)
                if located is not None:
                    message = located
                if line is not None:
                    message = f"{message} (line {line}, column {column})"
            failure = TraderFailure(kind=kind, message=message, line=line, column=column)
            return _failure_result(request, failure, duration_ms=float(raw["durationMs"]))
        matches = tuple(str(s) for s in raw["matches"])
        previous = request.previous_matches
        if previous is None:
            signals = matches
        else:
            before = previous if isinstance(previous, set | frozenset) else set(previous)
            signals = tuple(s for s in matches if s not in before)
        return TraderRunResult(
            trader_id=request.trader_id,
            filtered_symbols=matches,
            signal_symbols=signals,
            symbol_errors=tuple(
                SymbolError(symbol=str(e["symbol"]), message=str(e["message"]))
                for e in raw["errors"]
            ),
            error=None,
            duration_ms=float(raw["durationMs"]),
            symbols_evaluated=int(raw["evaluated"]),
            private_copies=bool(raw["privateCopies"]),
            return_types=dict(raw["returnTypes"] or {}),
        )

    # -- browser message compatibility --------------------------------------------------

    def run_message(
        self, message: Mapping[str, Any], state: dict[str, list[str]]
    ) -> dict[str, Any]:
        """Run the browser worker's request data; update ``state`` (traderId -> matches).

        Returns ``{results: [{traderId, filteredSymbols, signalSymbols, errors}],
        totalSymbols, executionTime}``. A failed trader keeps its previous state.
        """
        started = time.perf_counter()
        parsed = parse_message(message)
        self.load_message_snapshot(parsed.snapshot)
        requests = [
            TraderRequest(
                trader_id=t.trader_id,
                code=t.code,
                refresh_interval=t.refresh_interval,
                required_timeframes=t.required_timeframes,
                symbols=parsed.symbols,
                previous_matches=state.get(t.trader_id),
            )
            for t in parsed.traders
        ]
        results = self.run_traders(requests)
        for result in results:
            if result.ok:
                state[result.trader_id] = list(result.filtered_symbols)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return format_message_result(
            results, total_symbols=len(parsed.symbols), elapsed_ms=elapsed_ms
        )

    def load_message_snapshot(self, snapshot: MessageSnapshot) -> None:
        """Make the runtime hold exactly this snapshot (unchanged parts are not reloaded)."""
        self.set_tickers(snapshot.tickers_version, snapshot.tickers_json)
        for interval in list(self._series):
            if interval not in snapshot.series:
                self.drop_series(interval)
        for interval, (version, text) in snapshot.series.items():
            self.set_series(interval, version, text)

    # -- introspection ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Memo hit/miss counters, loaded versions and helper names (for benches and docs)."""
        return self._isolate.stats()

    def heap_used_bytes(self) -> int:
        """V8 heap in use by this runtime (snapshot, memo, code)."""
        return self._isolate.heap_used_bytes()


def _failure_result(
    request: TraderRequest, failure: TraderFailure, *, duration_ms: float
) -> TraderRunResult:
    return TraderRunResult(
        trader_id=request.trader_id,
        filtered_symbols=(),
        signal_symbols=(),
        symbol_errors=(),
        error=failure,
        duration_ms=duration_ms,
        symbols_evaluated=0,
    )


def _batch_request(
    requests: Sequence[TraderRequest], *, memo: bool, return_types: bool
) -> dict[str, Any]:
    lists: dict[tuple[str, ...], int] = {}
    traders = []
    for r in requests:
        key = tuple(r.symbols)
        index = lists.setdefault(key, len(lists))
        traders.append(
            {
                "traderId": r.trader_id,
                "code": r.code,
                "refreshInterval": r.refresh_interval,
                "requiredTimeframes": None
                if r.required_timeframes is None
                else list(r.required_timeframes),
                "symbols": index,
            }
        )
    return {
        "traders": traders,
        "symbolLists": [list(k) for k in lists],
        "options": {"memo": memo, "returnTypes": return_types},
    }
