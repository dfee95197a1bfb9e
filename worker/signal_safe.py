"""Setting a ``threading.Event`` from a signal handler without deadlocking the main thread.

Why: Python runs signal handlers in the main thread, between two bytecodes of whatever it
was doing. ``Event.set()`` takes the event's internal lock, which is not reentrant, and
``Event.wait()`` holds that same lock for a few bytecodes on its way in and out. A signal
that lands there (the main thread entering ``stop.wait(delay)``, say, right after printing
that it started) makes the handler wait for a lock its own thread holds: the process hangs
with "received SIGTERM" logged and never stops. A test that sent SIGTERM to
``traderctl scheduler`` right after its first line of output hit exactly that. Setting the
event from a short-lived thread instead lets the main thread finish the bytecodes it was
in, release the lock, and be woken normally.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["call_outside_handler", "set_from_handler"]


def call_outside_handler(action: Callable[[], object], *, name: str = "signal") -> None:
    """Run ``action`` in a new daemon thread: what a signal handler must do with anything
    that takes a lock the interrupted main thread may hold (Event.set, logging setup)."""
    threading.Thread(target=action, name=name, daemon=True).start()


def set_from_handler(event: threading.Event) -> None:
    """``event.set()`` as a signal handler may call it (see the module docstring)."""
    call_outside_handler(event.set, name="signal-set")
