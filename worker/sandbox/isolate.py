"""One V8 isolate with the helpers, the lockdown and the runner loaded (private to sandbox).

Why a separate module: everything that touches mini-racer lives here, including the one
place where we use its private API (``MiniRacer._ctx``) to run a batch of traders under a
watchdog that enforces each trader's own time budget (mini-racer only offers one timeout per
call, and a call costs ~0.3 ms, so one call per trader would dominate cheap filters).

An isolate must be created and used outside a running asyncio event loop: mini-racer then
runs its own loop on a private thread, which the watchdog needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

from py_mini_racer import JSEvalException, JSOOMException, MiniRacer, init_mini_racer
from py_mini_racer._context import Context

from traderctl.worker.errors import HelpersBundleError, SnapshotLoadError

__all__ = ["V8_FLAGS", "BatchOutcome", "Isolate", "builtin_helpers_source"]

#: V8 flags for the process (V8 takes them once, before the first isolate). mini-racer's
#: default is ``--single-threaded`` (for processes that fork after starting V8, which ours do
#: not); it made helper code ~2x slower (StochRSI+MACD micro-bench: 84 ms vs 42 ms) because
#: garbage collection and optimizing compilation then run on the JavaScript thread.
V8_FLAGS: tuple[str, ...] = ()

#: Bytes of the memo store per cell (a boxed number plus array slot, rounded up).
_BYTES_PER_MEMO_CELL = 24
#: Share of the isolate's memory cap the memo may use before it is dropped.
_MEMO_SHARE = 4
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
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


@dataclass(frozen=True, kw_only=True)
class BatchOutcome:
    """What one watched batch call returned.

    ``results`` are the runner's per-trader dicts for the traders that completed, in order.
    ``stopped_at`` is the index of the trader that was killed (``None`` when the batch
    finished); ``stop_kind`` says why (``timeout`` or ``out_of_memory``).
    """

    results: list[dict[str, Any]]
    tainted: str
    stopped_at: int | None = None
    stop_kind: str | None = None


class _Killed(Exception):
    def __init__(self, index: int, kind: str) -> None:
        super().__init__(index, kind)
        self.index = index
        self.kind = kind


def _resident_bytes() -> int | None:
    """Resident set size of this process (Linux), or None where /proc is unavailable."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


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
        self._seq = 0
        init_mini_racer(flags=V8_FLAGS, ignore_duplicate_init=True)
        self._mr = MiniRacer()
        try:
            self._mr.set_hard_memory_limit(memory_mb * 1024 * 1024)
            self._load(helpers_js, memory_mb)
        except BaseException:
            self.close()
            raise
        progress = self._mr.eval(f"__traderctl.progressBuffer({self._tok})")
        self._progress = cast(memoryview, progress)
        self._set_tickers = self._mr.eval("__traderctl.setTickers")
        self._set_series = self._mr.eval("__traderctl.setSeries")

    def _load(self, helpers_js: Path | None, memory_mb: int) -> None:
        if helpers_js is None:
            source, origin = builtin_helpers_source(), "worker/sandbox/js/helpers.js"
        else:
            try:
                source, origin = helpers_js.read_text(encoding="utf-8"), str(helpers_js)
            except OSError as exc:
                raise HelpersBundleError(f"Cannot read helpers bundle {helpers_js}: {exc}") from exc
        try:
            self._mr.eval(source)
        except JSEvalException as exc:
            raise HelpersBundleError(
                f"Helpers bundle {origin} failed to load: {_first_line(str(exc))}"
            ) from exc
        kind = self._mr.eval(
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
            f"({self._tok}, globalThis.helpers, ({_js_expression('lockdown.js')}), "
            f"({_js_expression('memo.js')}), {json.dumps(options)});"
        )
        self._mr.eval(script)

    # -- snapshot -------------------------------------------------------------------------

    def set_tickers(self, version: str, tickers_json: str) -> int:
        return self._load_call(self._set_tickers, "tickers", version, tickers_json)

    def set_series(self, interval: str, version: str, series_json: str) -> int:
        return self._load_call(self._set_series, interval, version, series_json, interval=True)

    def drop_series(self, interval: str) -> None:
        self._mr.eval(f"__traderctl.dropSeries({self._tok}, {json.dumps(interval)})")

    def _load_call(
        self, fn: Any, what: str, version: str, text: str, *, interval: bool = False
    ) -> int:
        try:
            if interval:
                count = fn(self._token, what, version, text)
            else:
                count = fn(self._token, version, text)
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

    def run_batch(self, request: dict[str, Any], *, budget_s: float) -> BatchOutcome:
        """Run ``request['traders']`` in one call; each trader gets ``budget_s`` seconds."""
        self._seq += 1
        seq = self._seq
        request = {**request, "seq": seq}
        request_json = json.dumps(json.dumps(request))
        # Parse the snapshot series this batch reads first, outside the watchdog: that
        # work is ours, not the traders' (runner.js, "parsed lazily").
        self._mr.eval(f"__traderctl.warm({self._tok}, {request_json})")
        code = f"__traderctl.runBatch({self._tok}, {request_json})"
        try:
            text = self._watched_eval(code, seq=seq, budget_s=budget_s)
        except _Killed as killed:
            if killed.kind == "out_of_memory":
                return BatchOutcome(
                    results=[], tainted="", stopped_at=killed.index, stop_kind=killed.kind
                )
            partial = self._collect()
            return BatchOutcome(
                results=partial["results"],
                tainted=partial["tainted"],
                stopped_at=killed.index,
                stop_kind=killed.kind,
            )
        except JSOOMException:
            _, index = struct.unpack_from("<ii", self._progress, 0)
            return BatchOutcome(results=[], tainted="", stopped_at=index, stop_kind="out_of_memory")
        data = json.loads(cast(str, text))
        return BatchOutcome(results=data["results"], tainted=data["tainted"])

    def _collect(self) -> dict[str, Any]:
        text = self._mr.eval(f"__traderctl.collect({self._tok})")
        return cast(dict[str, Any], json.loads(cast(str, text)))

    def _watched_eval(self, code: str, *, seq: int, budget_s: float) -> object:
        ctx = cast(Context, self._mr._ctx)  # private API: see module docstring
        progress = self._progress
        poll = min(0.005, budget_s / 10)
        # V8's hard heap limit does not see ArrayBuffer backing stores (a Float64Array bomb
        # grew the process by 1.2 GB in 3 s), so the watchdog also caps the process's RSS
        # growth during the batch at the same limit.
        rss_start = _resident_bytes()
        rss_cap = self._memory_bytes

        async def watch() -> object:
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(ctx.eval_cancelable(code))
            seen = (-1, -1)
            since = loop.time()
            while True:
                done, _ = await asyncio.wait({task}, timeout=poll)
                if done:
                    return task.result()
                now = loop.time()
                current = struct.unpack_from("<ii", progress, 0)
                if current[0] != seq:
                    current = (-1, -1)  # the batch has not started yet
                kind = None
                rss = _resident_bytes() if rss_start is not None else None
                if rss is not None and rss_start is not None and rss - rss_start > rss_cap:
                    kind = "out_of_memory"
                elif current != seen:
                    seen, since = current, now
                elif now - since > budget_s:
                    kind = "timeout"
                if kind is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    raise _Killed(max(current[1], 0), kind)

        return asyncio.run_coroutine_threadsafe(watch(), ctx.event_loop).result()

    def syntax_location(self, code: str) -> tuple[int | None, int | None, str | None]:
        """Line and column (1-based, in the filter code) of a SyntaxError, and its text."""
        body = "try {\n" + code + "\n} catch (e) { throw e; }"
        probe = (
            "new Function('ticker', 'timeframes', 'helpers', 'hvnNodes', "
            f"{json.dumps(body)}); undefined"
        )
        try:
            self._mr.eval(probe, timeout_sec=5)
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
        text = self._mr.eval(f"__traderctl.stats({self._tok})")
        return cast(dict[str, Any], json.loads(cast(str, text)))

    def heap_used_bytes(self) -> int:
        stats = self._mr.heap_stats()
        return int(stats["used_heap_size"])

    def heap_total_bytes(self) -> int:
        stats = self._mr.heap_stats()
        return int(stats["total_heap_size"])

    def close(self) -> None:
        mr = getattr(self, "_mr", None)
        if mr is not None:
            # A call queued behind a killed one returns only after V8 has reported the
            # killed call; closing before that makes mini-racer call back into a closed loop.
            with contextlib.suppress(Exception):
                mr.eval("0")
            self.__dict__.pop("_set_tickers", None)
            self.__dict__.pop("_set_series", None)
            self.__dict__.pop("_progress", None)
            mr.close()
            self._mr = None  # type: ignore[assignment]


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]
