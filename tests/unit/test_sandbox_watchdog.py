"""What the watchdog relies on in mini-racer's task API, checked on the pinned version.

worker/sandbox/watchdog.py starts V8 tasks from the calling thread and waits on mini-racer's
result queue: that is only correct if every task reports exactly one result, in the order
the tasks were started, even when it is cancelled while running or while still queued behind
Promise jobs. A mini-racer upgrade that changes this must fail here, not in production.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from py_mini_racer._exc import JSTerminatedException

from traderctl.worker.sandbox.isolate import Isolate
from traderctl.worker.sandbox.watchdog import DirectCalls, resident_bytes

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def isolate() -> Iterator[Isolate]:
    iso = Isolate(helpers_js=None, memory_mb=64, memo=True)
    yield iso
    iso.close()


def test_a_task_cancelled_while_running_reports_once_then_the_next_runs(isolate):
    calls: DirectCalls = isolate._direct
    task_id, _handle = calls.start("while (true) {}")
    assert calls.wait(0.05) is None
    calls.cancel(task_id)
    value = calls.wait(5)
    assert value is not None
    with pytest.raises(JSTerminatedException):
        calls.convert(value)
    assert calls.run("6 * 7", 5) == 42


def test_a_task_queued_behind_promise_jobs_reports_after_them(isolate):
    calls: DirectCalls = isolate._direct
    busy = "var t0 = Date.now(); while (Date.now() - t0 < 200) {}"
    assert calls.run(f"Promise.resolve().then(function () {{ {busy} }}); 1", 5) == 1
    started = time.monotonic()
    task_id, _handle = calls.start("2")
    calls.cancel(task_id)  # queued: dropped, but it still reports (after the jobs)
    value = calls.wait(5)
    assert value is not None and time.monotonic() - started > 0.1
    with pytest.raises(JSTerminatedException):
        calls.convert(value)
    assert calls.run("3", 5) == 3


def test_one_direct_call_at_a_time(isolate):
    calls: DirectCalls = isolate._direct
    calls.start("1")
    with pytest.raises(RuntimeError, match="never collected"):
        calls.start("2")
    assert calls.wait(5) is not None


def test_the_progress_word_is_readable_without_a_call(isolate):
    assert isolate._progress[0] == 0
    assert isinstance(resident_bytes(), int)
