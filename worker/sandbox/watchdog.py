"""The per-trader watchdog: each trader's V8 call, timed and measured from the caller's thread.

Why this shape (private to sandbox, used by isolate.py):

* One V8 call per trader (:meth:`Watch.call`). mini-racer runs the Promise jobs a call
  queued right after that call, so trader i's jobs run before the call for trader i+1
  starts, and that call first settles trader i. The runner writes a progress word
  (runner.js) that this module reads from memory while the call runs, with no call into V8:
  until it says that trader i+1's own code began, the time and memory are trader i's. A hang
  or an allocation in Promise jobs is thus blamed on the trader that queued them, never on
  the next one.
* Or a group of traders per call (:meth:`Watch.group_call`), cheaper while nothing goes
  wrong: each phase the progress words show gets the budget, and what cannot be placed on
  one trader (the group's Promise jobs, memory) makes isolate.py run the traders again one
  per call.
* Calls go straight to mini-racer's task API from this thread and wait on its result queue
  with a poll timeout; that timeout is the watchdog's clock. Going through asyncio (future,
  event-loop wake-up, timers) cost ~0.15 ms of CPU per call against ~0.08 ms this way, and
  a trader-run of a cheap filter over 20 symbols is ~0.05 ms of JavaScript. This uses
  mini-racer internals (``Context._dll``, the uncancelable result queue), pinned by the
  exact mini-racer version in pyproject.toml; every task it starts reports exactly one
  result, in order, even when cancelled (a test covers it).
"""

from __future__ import annotations

import contextlib
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from py_mini_racer import JSOOMException
from py_mini_racer._context import _UNCANCELABLE_TASK_CALLBACK_ID, Context

__all__ = ["DirectCalls", "GroupStop", "Span", "Stopped", "Watch", "resident_bytes"]

_S = TypeVar("_S", bound="Stopped")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM: list[int] = []


def resident_bytes() -> int | None:
    """Resident set size of this process (Linux), or None where /proc is unavailable.

    The file stays open (``pread`` from offset 0 re-reads it): opening it per read cost
    ~25 us, a measurable share of a cheap trader-run.
    """
    try:
        if not _STATM:
            _STATM.append(os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC))
        return int(os.pread(_STATM[0], 128, 0).split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


class Stopped(Exception):
    """Trader ``index`` was stopped (``kind``); ``replace``: the isolate must be rebuilt.

    ``unsure``: the blame could not be placed with certainty (memory growth in a window that
    also held the previous trader's Promise jobs); the runtime then runs the trader once
    more, first in a fresh call, before it fails.
    """

    def __init__(
        self,
        kind: str,
        index: int,
        *,
        replace: bool = False,
        unsure: bool = False,
    ) -> None:
        super().__init__(kind)
        self.kind = kind
        self.index = index
        self.replace = replace
        self.unsure = unsure


class GroupStop(Stopped):
    """A group call was stopped (group mode, see :meth:`Watch.group_call`).

    ``previous``: the stop fell before this call's first trader began (in the previous
    group's Promise jobs or their clean-up), so any trader of the previous group may be the
    cause, not only one of this group. ``index`` is the trader whose own code overran its
    time (exact), or -1 when no single trader can be blamed.
    """

    def __init__(
        self, kind: str, *, previous: bool, index: int = -1, replace: bool = False
    ) -> None:
        super().__init__(kind, index, replace=replace)
        self.previous = previous


@dataclass
class Span:
    """One trader's share of the watched calls: when its time began, and the RSS then."""

    index: int
    started: float
    rss_start: int | None
    #: True when no poll saw the hand-over from the previous trader (a call shorter than
    #: one poll interval), so ``rss_start`` was taken before the previous trader's jobs.
    unsure: bool = False
    #: RSS when its call ended (the base of the next trader's window if no poll sees the
    #: hand-over).
    rss_end: int | None = None


class DirectCalls:
    """mini-racer's task API used from the calling thread (see the module docstring)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._results = ctx._non_cancelable_mr_task_results_queue
        self._pending = 0

    def start(self, code: str) -> tuple[int, Any]:
        """Start evaluating ``code``; the task id and the code handle (keep it until done)."""
        if self._pending:
            raise RuntimeError("a previous direct call's result was never collected")
        ctx = self._ctx
        handle = ctx._python_to_value_handle(code)
        task_id = int(ctx._dll.mr_eval(ctx._ctx, handle.raw, _UNCANCELABLE_TASK_CALLBACK_ID))
        self._pending = 1
        return task_id, handle

    def wait(self, timeout: float) -> Any | None:
        """The started task's raw result, or None if it did not end within ``timeout``."""
        try:
            value = self._results.get(timeout=timeout)
        except queue.Empty:
            return None
        self._pending = 0
        return value

    def cancel(self, task_id: int) -> None:
        """Terminate the task if it runs, or drop it if queued (it still reports a result)."""
        self._ctx._dll.mr_cancel_task(self._ctx._ctx, task_id)

    def convert(self, value: Any) -> object:
        """The Python value of a result (raises the JS exception it carries)."""
        return self._ctx._value_handle_to_python(value)

    def abandon(self) -> None:
        """Forget a result that will never be collected (the isolate is being replaced)."""
        self._pending = 0

    def run(self, code: str, deadline_s: float) -> object:
        """Evaluate ``code``; raise TimeoutError (after cancelling) past ``deadline_s``."""
        task_id, handle = self.start(code)
        value = self.wait(deadline_s)
        if value is None:
            self.cancel(task_id)
            if self.wait(0.2) is None:
                self.abandon()
            raise TimeoutError(code)
        del handle
        return self.convert(value)


class Watch:
    """Runs the calls of one batch, one per trader, each under its trader's budget."""

    def __init__(
        self,
        *,
        calls: DirectCalls,
        progress: memoryview,
        budget_s: float,
        memory_cap: int,
        heap_limit_reached: Callable[[], bool],
    ) -> None:
        self._calls = calls
        self._progress = progress
        self._budget_s = budget_s
        self._memory_cap = memory_cap
        self._poll = min(0.005, budget_s / 10)
        self._heap_limit_reached = heap_limit_reached

    def call(self, code: str, index: int, previous: Span | None) -> tuple[object, Span]:
        """Run ``code`` (the call for trader ``index``); its result and trader index's span.

        Raises Stopped for the trader that overran its time or memory budget.
        """
        calls, progress = self._calls, self._progress
        flip = 2 * index + 2
        started = time.monotonic()
        budget_s, cap = self._budget_s, self._memory_cap
        # Before the hand-over, time and memory are the previous trader's.
        owner = previous
        mine: Span | None = None
        # Whether a poll saw the hand-over while the heap limit was not reached yet: only
        # then is a heap-limit stop found after the call certainly this trader's.
        clear_at_hand_over = False
        task_id, handle = calls.start(code)
        while True:
            value = calls.wait(self._poll)
            if value is not None:
                break
            if mine is None and progress[0] >= flip:
                mine = owner = Span(index, time.monotonic(), resident_bytes())
                clear_at_hand_over = not self._heap_limit_reached()
            if owner is None:
                continue
            rss = resident_bytes() if owner.rss_start is not None else None
            if rss is not None and owner.rss_start is not None and rss - owner.rss_start > cap:
                raise self._stop(task_id, Stopped("out_of_memory", owner.index, replace=True))
            if time.monotonic() - owner.started > budget_s:
                # In the previous trader's time this is its Promise jobs, which V8 cannot
                # stop (they run outside any call), or a starved machine: _stop tells them
                # apart by whether the cancelled call reports back.
                raise self._stop(task_id, Stopped("timeout", owner.index))
        del handle
        try:
            result = calls.convert(value)
        except JSOOMException:
            raise self._heap_stop(index, previous, clear_at_hand_over) from None
        rss = resident_bytes()
        if self._heap_limit_reached():
            raise self._heap_stop(index, previous, clear_at_hand_over)
        if progress[0] < flip:
            # No hand-over (a settle-only call, or the previous trader left something behind
            # that the caller reports): the whole call was the previous trader's.
            span = previous if previous is not None else Span(index, started, rss)
        elif mine is not None:
            span = mine
        else:
            # The call ended before any poll saw the hand-over: trader index's window starts
            # where the previous call ended, the previous trader's Promise jobs included.
            base = previous.rss_end if previous is not None else None
            span = Span(index, started, base, unsure=previous is not None)
        if rss is not None and span.rss_start is not None and rss - span.rss_start > cap:
            raise Stopped("out_of_memory", span.index, replace=True, unsure=span.unsure)
        span.rss_end = rss
        return result, span

    def group_call(self, code: str, first: int) -> object:
        """Run ``code`` (a group call whose first trader is ``first``); its result.

        Every phase the progress words show (a trader's own code, a clean-up, the previous
        group's Promise jobs) gets the budget, and its memory growth the cap. Raises GroupStop:
        exact (``index``) only for a trader's own code overrunning its time; a memory stop is
        always counted against both groups, since Promise jobs still pending from earlier
        traders of the group may hold what the current one is blamed for.
        """
        calls, progress = self._calls, self._progress
        hand_over = 2 * first + 2
        budget_s, cap = self._budget_s, self._memory_cap
        seen = (progress[0], progress[1])
        since = time.monotonic()
        rss_call = rss_phase = resident_bytes()
        task_id, handle = calls.start(code)
        while True:
            value = calls.wait(self._poll)
            if value is not None:
                break
            now = time.monotonic()
            current = (progress[0], progress[1])
            if current != seen:
                seen, since, rss_phase = current, now, resident_bytes()
                continue
            rss = resident_bytes()
            if rss is not None and rss_phase is not None and rss - rss_phase > cap:
                raise self._stop(task_id, GroupStop("out_of_memory", previous=True, replace=True))
            if now - since > budget_s:
                previous = current[0] < hand_over
                own = not previous and current[1] == 0 and current[0] % 2 == 0
                index = current[0] // 2 - 1 if own else -1
                raise self._stop(task_id, GroupStop("timeout", previous=previous, index=index))
        del handle
        try:
            result = calls.convert(value)
        except JSOOMException:
            raise GroupStop("out_of_memory", previous=True, replace=True) from None
        rss = resident_bytes()
        grew = rss is not None and rss_call is not None and rss - rss_call > cap
        if grew or self._heap_limit_reached():
            raise GroupStop("out_of_memory", previous=True, replace=True)
        return result

    def _stop(self, task_id: int, stopped: _S) -> _S:
        """Cancel the running call; wait for its (terminated) result unless it cannot end.

        A call stopped in the trader's own code ends at once, and one queued behind Promise
        jobs that do end (or behind a machine too busy to run it in time) reports back
        within another budget: the isolate stays, and the trader gets its second run. One
        queued behind endless Promise jobs never does: the isolate is replaced, the
        result abandoned, and the trader fails at once.
        """
        calls = self._calls
        calls.cancel(task_id)
        value = calls.wait(self._budget_s if not stopped.replace else 0.2)
        if value is None:
            calls.abandon()
            stopped.replace = True
        else:
            with contextlib.suppress(Exception):
                calls.convert(value)
        return stopped

    def recover(self, stopped: _S, settle_code: str) -> _S:
        """After a stop in the trader's own code: its leftover jobs and clean-up, bounded."""
        if stopped.replace:
            return stopped
        try:
            left = self._calls.run(settle_code, self._budget_s)
        except Exception:  # any failure here condemns the isolate
            stopped.replace = True
            return stopped
        stopped.replace = bool(left)
        return stopped

    def _heap_stop(self, index: int, previous: Span | None, clear_at_hand_over: bool) -> Stopped:
        """Whose the heap limit reached during call ``index`` was.

        V8 stops whatever runs when the limit is reached, and the call goes on: the flag is
        read afterwards. Before the hand-over it is the previous trader's (its Promise jobs);
        after one that a poll saw with the flag still clear, this trader's. Otherwise (the
        limit and the hand-over fell between two polls, typical for jobs that allocate until
        the limit) nobody can be named: the previous trader is blamed ``unsure`` and runs
        again alone, where its jobs can only show up in the settle-only call after it.
        """
        if previous is None or clear_at_hand_over:
            return Stopped("out_of_memory", index, replace=True)
        if self._progress[0] < 2 * index + 2:
            return Stopped("out_of_memory", previous.index, replace=True)
        return Stopped("out_of_memory", previous.index, replace=True, unsure=True)
