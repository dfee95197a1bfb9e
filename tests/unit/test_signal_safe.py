"""Signal handlers set events from a helper thread (traderctl.worker.signal_safe)."""

from __future__ import annotations

import threading

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
