"""One V8 isolate with the helpers, the hardening and the runner loaded (private to sandbox).

Why a separate module: everything that touches mini-racer lives here and in watchdog.py,
including its private API (``MiniRacer._ctx``): every call into V8 runs as a cancelable
task under a deadline (our own calls on mini-racer's event loop, the traders' calls from the
caller's thread through watchdog.py), and a batch of traders runs under a watchdog that
charges each trader for its own time and memory.

Each trader is one call (``runTrader``); a batch adds one call before (``beginBatch``) and
one after (``settle``). mini-racer runs the Promise jobs a call queued right after that
call, before the next one starts, so trader i's jobs run before the call for trader i+1,
which first settles trader i. A progress word the runner writes in memory that Python reads
while the call runs (``watchdog.Watch``) says when trader i's jobs and settle are over, so
they are charged to trader i, never to trader i+1. A round trip costs ~0.08 ms of CPU, as
much as a cheap trader-run, which is why the settle is not a call of its own
(docs/sandbox.md).

An isolate must be created and used outside a running asyncio event loop: mini-racer then
runs its own loop on a private thread, which the watchdog needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from importlib import resources
from pathlib import Path
from typing import Any, cast

from py_mini_racer import JSEvalException, JSObject, JSOOMException, MiniRacer, init_mini_racer
from py_mini_racer._context import Context
from py_mini_racer._mini_racer import _make_context

from traderctl.worker.errors import HelpersBundleError, SandboxHang, SnapshotLoadError
from traderctl.worker.sandbox.types import BatchOutcome
from traderctl.worker.sandbox.watchdog import DirectCalls, GroupStop, Span, Stopped, Watch

__all__ = ["V8_FLAGS", "BatchOutcome", "Isolate", "builtin_helpers_source"]

#: V8 flags for the process (V8 takes them once, before the first isolate). mini-racer's
#: default is ``--single-threaded`` (for processes that fork after starting V8, which ours do
#: not); it made helper code ~2x slower (StochRSI+MACD micro-bench: 84 ms vs 42 ms) because
#: garbage collection and optimizing compilation then run on the JavaScript thread.
#: ``--max-semi-space-size=4`` (MB) keeps the young generation small: a run's garbage dies
#: young, and a large young generation only kept pages resident (docs/sandbox.md, V8 flags).
#: The two invocation counts (V8's defaults are 400 and 3,000) make V8 wait ten times longer
#: before it optimizes a function: a tenant's filter text is met once per run, so its
#: closures were compiled by Maglev and TurboFan for the few thousand calls left in that
#: run; the shared helpers, memo and runner reach either count within a worker's first few
#: dozen batches (docs/sandbox.md, V8 flags).
V8_FLAGS: tuple[str, ...] = (
    "--max-semi-space-size=4",
    "--invocation-count-for-maglev=4000",
    "--invocation-count-for-turbofan=30000",
)

#: Bytes of the memo store per cell (a boxed number plus array slot, rounded up).
_BYTES_PER_MEMO_CELL = 24
#: Share of the isolate's memory cap the memo may use before it is dropped.
_MEMO_SHARE = 4
#: Deadline of our own calls (loading a snapshot version, parsing what a batch reads,
#: statistics, compiling for a syntax location). None of them runs tenant code; the deadline
#: turns a bug into an isolate replacement instead of a hung worker.
OWN_CALL_DEADLINE_S = 60.0
_SYNTAX_LOCATION = re.compile(r"^[^:\n]*:(\d+): (SyntaxError: [^\n]*)\n([^\n]*)\n( *)\^", re.M)


def _js_source(name: str) -> str:
    return (
        resources.files(__package__ or "traderctl.worker.sandbox")
        .joinpath("js", name)
        .read_text(encoding="utf-8")
    )


def _js_expression(name: str) -> str:
    """A sandbox/js file that holds one function expression, ready to splice into a call."""
    return _js_source(name).rstrip().rstrip(";")


def builtin_helpers_source() -> str:
    """The source of worker/sandbox/js/helpers.js (also what bench/node_baseline.js loads)."""
    return _js_source("helpers.js")


_LOOP_LOCK = threading.Lock()
_LOOP: list[asyncio.AbstractEventLoop] = []


def _shared_loop() -> asyncio.AbstractEventLoop:
    """One event loop thread for every isolate of the process, never closed.

    mini-racer closes its own per-isolate loop before freeing the isolate, and an isolate
    freed while a tenant's Promise job hangs reports its pending calls afterwards, into the
    closed loop ("Event loop is closed"). A loop that outlives the isolates absorbs that.
    """
    with _LOOP_LOCK:
        if not _LOOP:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="v8-loop", daemon=True).start()
            _LOOP.append(loop)
        return _LOOP[0]


class Isolate:
    """A MiniRacer isolate running worker/sandbox/js/runner.js over a frozen snapshot."""

    def __init__(
        self,
        *,
        helpers_js: Path | None,
        memory_mb: int,
        memo: bool,
    ) -> None:
        self._token = secrets.token_hex(16)
        self._tok = json.dumps(self._token)
        self._memo = memo
        self._memory_bytes = memory_mb * 1024 * 1024
        init_mini_racer(flags=V8_FLAGS, ignore_duplicate_init=True)
        self._context: AbstractContextManager[Context] | None = _make_context(_shared_loop())
        self._mr: MiniRacer | None = MiniRacer(self._context.__enter__())
        try:
            self._mr.set_hard_memory_limit(memory_mb * 1024 * 1024)
            self._load(helpers_js, memory_mb)
            self._set_tickers = self._eval_own("__traderctl.setTickers")
            self._set_series = self._eval_own("__traderctl.setSeries")
            buffer = self._eval_own(f"__traderctl.progressBuffer({self._tok})")
            if not isinstance(buffer, memoryview) or buffer.nbytes < 4:
                raise HelpersBundleError("The runner did not hand out its progress word.")
            self._progress: memoryview = buffer.cast("i")
            inbox = self._eval_own(f"__traderctl.inbox({self._tok})")
            if not isinstance(inbox, JSObject):
                raise HelpersBundleError("The runner did not hand out its inbox.")
            self._inbox: JSObject = inbox
            self._direct = DirectCalls(self._ctx)
        except BaseException:
            self.close()
            raise

    @property
    def _ctx(self) -> Context:
        if self._mr is None:
            raise SandboxHang("The filter isolate is closed; create a new FilterRuntime.")
        return cast(Context, self._mr._ctx)  # private API: see module docstring

    def _load(self, helpers_js: Path | None, memory_mb: int) -> None:
        if helpers_js is None:
            source, origin = builtin_helpers_source(), "worker/sandbox/js/helpers.js"
        else:
            try:
                source, origin = helpers_js.read_text(encoding="utf-8"), str(helpers_js)
            except OSError as exc:
                raise HelpersBundleError(f"Cannot read helpers bundle {helpers_js}: {exc}") from exc
        try:
            self._eval_own(source)
        except JSEvalException as exc:
            raise HelpersBundleError(
                f"Helpers bundle {origin} failed to load: {_first_line(str(exc))}"
            ) from exc
        kind = self._eval_own(
            "typeof globalThis.helpers === 'object' && globalThis.helpers !== null"
        )
        if kind is not True:
            raise HelpersBundleError(
                f"Helpers bundle {origin} does not define a global `helpers` object; build it "
                "with `esbuild --bundle --format=iife --global-name=helpers`."
            )
        options = {"memoCells": memory_mb * 1024 * 1024 // _MEMO_SHARE // _BYTES_PER_MEMO_CELL}
        script = (
            f"const __traderctl = ({_js_expression('runner.js')})"
            f"({self._tok}, globalThis.helpers, ({_js_expression('harden.js')}), "
            f"({_js_expression('memo.js')}), {json.dumps(options)});"
        )
        self._eval_own(script)

    # -- bounded calls --------------------------------------------------------------------

    def _bounded(
        self, make: Callable[[], Awaitable[object]], *, deadline_s: float, what: str
    ) -> object:
        """Run one V8 task on mini-racer's loop; terminate it and raise after ``deadline_s``."""
        ctx = self._ctx

        async def go() -> object:
            task = asyncio.ensure_future(make())
            done, _ = await asyncio.wait({task}, timeout=deadline_s)
            if done:
                return task.result()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise SandboxHang(
                f"The filter runtime did not finish {what} within {deadline_s:g} s; "
                "the isolate is replaced."
            )

        return asyncio.run_coroutine_threadsafe(go(), ctx.event_loop).result()

    def _eval_own(self, code: str, *, deadline_s: float = OWN_CALL_DEADLINE_S) -> object:
        ctx = self._ctx
        return self._bounded(
            lambda: ctx.eval_cancelable(code), deadline_s=deadline_s, what="an internal call"
        )

    # -- snapshot -------------------------------------------------------------------------

    def set_tickers(self, version: str, tickers_json: str) -> int:
        return self._load_call(self._set_tickers, "tickers", version, tickers_json)

    def set_series(self, interval: str, version: str, series_json: str) -> int:
        return self._load_call(self._set_series, interval, version, series_json, interval=True)

    def drop_series(self, interval: str) -> None:
        self._eval_own(f"__traderctl.dropSeries({self._tok}, {json.dumps(interval)})")

    def _load_call(
        self, fn: Any, what: str, version: str, text: str, *, interval: bool = False
    ) -> int:
        ctx = self._ctx
        args: tuple[str, ...] = (
            (self._token, what, version, text) if interval else (self._token, version, text)
        )
        try:
            count = self._bounded(
                lambda: ctx.call_function_cancelable(fn, *args),
                deadline_s=OWN_CALL_DEADLINE_S,
                what=f"loading {what} (version {version})",
            )
        except JSOOMException as exc:
            raise SnapshotLoadError(
                f"Loading {what} (version {version}) exceeded TRADER_FILTER_MEMORY_MB; raise it."
            ) from exc
        except JSEvalException as exc:
            raise SnapshotLoadError(
                f"Loading {what} (version {version}) failed: {_first_line(str(exc))}"
            ) from exc
        return int(cast(int, count))

    # -- runs -----------------------------------------------------------------------------

    def run_batch(
        self, request: dict[str, Any], *, budget_s: float, group: int = 1
    ) -> BatchOutcome:
        """Run ``request['traders']`` in order; each trader gets ``budget_s`` seconds.

        ``group`` > 1: up to that many traders per V8 call (:meth:`_run_groups`); otherwise
        one call per trader. Stops at the first trader that overran its time or memory
        budget, or that left a change behind that cannot be undone; the traders before it
        have their results. Raises SandboxHang when our own preparation call overran (the
        isolate is then unusable and must be replaced).
        """
        # The request goes in as a value, never as part of a call's source: V8 keeps every
        # script it compiled from a new source (runner.js, `inbox`).
        self._ctx.set_object_item(self._inbox, "request", json.dumps(request))
        # Parse the snapshot series this batch reads first, outside any trader's budget:
        # that work is ours, not the traders' (runner.js, "parsed lazily").
        # Straight through mini-racer's task API like the traders' calls: the asyncio path
        # of _eval_own (a future and an event-loop wake-up) was ~7 % of a worker's Python
        # time per batch.
        try:
            self._direct.run(f"__traderctl.beginBatch({self._tok})", OWN_CALL_DEADLINE_S)
        except TimeoutError:
            raise SandboxHang(
                f"The filter runtime did not finish preparing a batch within "
                f"{OWN_CALL_DEADLINE_S:g} s; the isolate is replaced."
            ) from None
        count = len(request["traders"])
        watch = Watch(
            calls=self._direct,
            progress=self._progress,
            budget_s=budget_s,
            memory_cap=self._memory_bytes,
            heap_limit_reached=self._heap_limit_reached,
        )
        if group > 1:
            return self._run_groups(count, watch, group)
        return self._run_each(count, watch)

    def _run_groups(self, count: int, watch: Watch, group: int) -> BatchOutcome:
        """Up to ``group`` traders per call, one call per trader again after any doubt.

        A call runs its traders, settling each right after it, and returns their results;
        their Promise jobs run after it, all together. Their time and memory show up in the
        next call (or the final settle-only one) before its first trader begins, where the
        watchdog cannot tell whose they are. So a group's results are kept only once the
        next call got past that point cleanly. Any stop, and anything left behind, ends the
        group mode for this batch: the results kept are returned with ``regroup``, and the
        runtime runs the rest one trader per call, where blame is exact. Only a trader's own
        code overrunning its time is blamed here (``timed_out``): that run counts as its
        first, so an endless loop still costs two budgets.
        """
        tok = self._tok
        kept: list[dict[str, Any]] = []
        provisional: list[dict[str, Any]] = []
        first = 0
        while True:
            end = min(first + group, count)
            try:
                text = watch.group_call(f"__traderctl.runGroup({tok}, {first}, {end})", first)
            except GroupStop as stop:
                if not stop.previous:
                    kept += provisional
                stop = watch.recover(stop, f"__traderctl.settle({tok})")
                timed_out = stop.index if stop.index >= 0 and stop.kind == "timeout" else None
                return BatchOutcome(
                    results=kept, replace=stop.replace, regroup=True, timed_out=timed_out
                )
            step = cast(dict[str, Any], json.loads(cast(str, text)))
            if step["left"]:
                at = int(step["at"])
                if at < first:  # the previous group's Promise jobs: whose, is unknown
                    return BatchOutcome(results=kept, replace=True, regroup=True)
                # Trader `at`'s own code (no Promise job of this group has run): exact.
                return BatchOutcome(
                    results=kept + provisional + list(step["results"])[: at - first],
                    stopped_at=at,
                    stop_kind="tampering",
                    stop_detail=str(step["left"]),
                    replace=True,
                )
            kept += provisional
            if first >= count:
                return BatchOutcome(results=kept)
            provisional = list(step["results"])
            first = end

    def _run_each(self, count: int, watch: Watch) -> BatchOutcome:
        """One call per trader: call i settles trader i-1 and runs trader i."""
        tok = self._tok
        results: list[dict[str, Any]] = []
        pending: dict[str, Any] = {}
        previous: Span | None = None
        # Call i settles trader i-1 and runs trader i; call `count` only settles.
        for index in range(count + 1):
            try:
                text, current = watch.call(
                    f"__traderctl.runTrader({tok}, {index})", index, previous
                )
            except Stopped as stopped:
                if stopped.index == index and index > 0:
                    results.append(pending)  # it was settled before trader index began
                stopped = watch.recover(stopped, f"__traderctl.settle({tok})")
                return BatchOutcome(
                    results=results,
                    stopped_at=stopped.index,
                    stop_kind=stopped.kind,
                    replace=stopped.replace,
                    unsure=stopped.unsure,
                )
            step = cast(dict[str, Any], json.loads(cast(str, text)))
            if step["left"]:
                return BatchOutcome(
                    results=results,
                    stopped_at=index - 1,
                    stop_kind="tampering",
                    stop_detail=str(step["left"]),
                    replace=True,
                )
            if index > 0:
                results.append(pending)
            pending = step["result"]
            previous = current
        return BatchOutcome(results=results)

    def _heap_limit_reached(self) -> bool:
        mr = self._mr
        return mr is not None and bool(mr.was_hard_memory_limit_reached())

    def syntax_location(self, code: str) -> tuple[int | None, int | None, str | None]:
        """Line and column (1-based, in the filter code) of a SyntaxError, and its text."""
        body = "try {\n" + code + "\n} catch (e) { throw e; }"
        probe = (
            "new Function('ticker', 'timeframes', 'helpers', 'hvnNodes', "
            f"{json.dumps(body)}); undefined"
        )
        try:
            self._eval_own(probe, deadline_s=5)
        except JSEvalException as exc:
            match = _SYNTAX_LOCATION.search(str(exc))
            if match is None:
                return None, None, None
            line = int(match.group(1)) - 3
            column = len(match.group(4)) + 1
            text = match.group(2)
            lines = code.split("\n")
            if line > len(lines):
                # The parser only noticed in our wrapper's closing lines.
                line, column = len(lines), len(lines[-1]) + 1
                text = "SyntaxError: Unexpected end of code (an unclosed block, bracket or string?)"
            if line < 1:
                line, column = 1, 1
            return line, column, text
        return None, None, None

    def stats(self) -> dict[str, Any]:
        text = self._eval_own(f"__traderctl.stats({self._tok})")
        return cast(dict[str, Any], json.loads(cast(str, text)))

    def heap_used_bytes(self) -> int:
        """V8's used heap: a round trip into V8 of ~1 ms, so never once per trader or batch."""
        if self._mr is None:
            return 0
        stats = self._mr.heap_stats()
        return int(stats["used_heap_size"])

    def low_memory_notification(self) -> None:
        """V8's memory-reducing full collection (drops its compilation cache); runs no JS."""
        if self._mr is not None:
            self._mr.low_memory_notification()

    def close(self) -> None:
        mr = self._mr
        if mr is not None:
            # A call queued behind a killed one returns only after V8 has reported the
            # killed call; closing before that makes mini-racer call back into a closed loop.
            with contextlib.suppress(Exception):
                self._eval_own("0", deadline_s=0.2)
            self.__dict__.pop("_set_tickers", None)
            self.__dict__.pop("_set_series", None)
            # The progress word's memory belongs to the isolate being freed.
            self.__dict__.pop("_progress", None)
            self.__dict__.pop("_inbox", None)
            mr.close()
            self._mr = None
        context, self._context = self._context, None
        if context is not None:
            context.__exit__(None, None, None)


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]
