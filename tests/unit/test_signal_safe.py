"""Signal handlers set events from a helper thread (traderctl.worker.signal_safe)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from traderctl.worker import signal_safe
from traderctl.worker.signal_safe import set_from_handler


def test_an_event_is_set_from_a_handler_while_its_lock_is_held() -> None:
    """What a signal landing inside Event.wait looks like to its handler: the event's own
    (non-reentrant) lock is held by the thread the handler runs on. ``Event.set()`` there
    would wait forever; the helper returns at once and the event is set once the lock is
    free again."""
    event = threading.Event()
    returned = threading.Event()

    def handler_inside_wait() -> None:
        with event._cond:  # held by Event.wait on its way in and out
            set_from_handler(event)
            returned.set()

    # On a thread of its own, so that a helper that does wait fails this test, not the run.
    threading.Thread(target=handler_inside_wait, daemon=True).start()
    assert returned.wait(5), "setting the event waited for a lock its own thread holds"
    assert event.wait(5)


def test_a_waiting_main_thread_is_woken() -> None:
    event = threading.Event()
    timer = threading.Timer(0.05, set_from_handler, args=(event,))
    timer.start()
    try:
        assert event.wait(5)
    finally:
        timer.cancel()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_the_relay_thread_never_takes_a_signal_meant_for_the_main_thread() -> None:
    """A process-directed signal goes to any thread that does not block it; one the relay
    took would leave the main thread asleep in its wait (its handler runs only there)."""
    set_from_handler(threading.Event())  # starts the relay if no test did yet
    relay = signal_safe._RELAY[0]
    assert relay.native_id is not None
    status = Path(f"/proc/self/task/{relay.native_id}/status").read_text()
    blocked = int(next(ln for ln in status.splitlines() if ln.startswith("SigBlk:")).split()[1], 16)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        assert blocked & (1 << (signum - 1)), f"the relay thread can take {signum.name}"


def test_wait_returns_when_the_event_is_set_and_times_out_otherwise() -> None:
    event = threading.Event()
    assert signal_safe.wait(event, 0.05) is False
    threading.Timer(0.1, event.set).start()
    assert signal_safe.wait(event, 30) is True
    assert signal_safe.wait(event, 0) is True
