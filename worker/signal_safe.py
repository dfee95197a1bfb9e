"""Doing a signal's work outside its handler, so that the handler can never deadlock.

Why: Python runs signal handlers in the main thread, between two bytecodes of whatever it
was doing. ``Event.set()`` takes the event's internal lock, which is not reentrant, and
``Event.wait()`` holds that same lock for a few bytecodes on its way in and out. A signal
that lands there (the main thread entering ``stop.wait(delay)``, say, right after printing
that it started) makes the handler wait for a lock its own thread holds: the process hangs
with "received SIGTERM" logged and never stops. A test that sent SIGTERM to
``traderctl scheduler`` right after its first line of output hit exactly that. Logging
and starting a thread take locks too.

So a handler only puts the work on a ``queue.SimpleQueue``, whose ``put`` is reentrant
(documented as safe to call from code that interrupts another ``put`` or ``get`` on the
same thread), and one daemon thread per process runs it. :func:`install` starts that
thread before it installs a handler. A handler that runs before the thread exists (one
installed with plain ``signal.signal``) still works: the thread is then started from the
handler, the one lock-taking step left.

Python runs a handler only when the main thread executes bytecode again. A signal that
arrives just before the main thread goes to sleep in a long ``Event.wait(delay)`` (after
its last check for pending signals, before the wait's system call) is handled only once
that wait times out: ``traderctl scheduler``, which sleeps up to a minute between ticks,
ignored a SIGTERM sent right after it started in 11 of 100 runs here. So a main thread that
waits for a stop event does it with :func:`wait`, in slices of at most half a second. And
the relay thread blocks the asynchronous signals, so that the kernel, which hands a signal
sent to the process to any thread not blocking it, interrupts the main thread's wait
rather than the relay's.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType

__all__ = ["Handler", "call_outside_handler", "install", "restore", "set_from_handler", "wait"]

#: What ``signal.signal`` takes and returns.
Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None

logger = logging.getLogger(__name__)

_WORK: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
_RELAY: list[threading.Thread] = []
_START = threading.Lock()


#: Longest single sleep of :func:`wait`: how late a handler can run at worst.
WAIT_SLICE_SECONDS = 0.5
#: Signals sent to a process (not raised by a fault of the thread itself): the relay thread
#: blocks them, so the kernel delivers them to a thread that runs their handler.
_ASYNC_SIGNALS = frozenset(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
    if hasattr(signal, name)
)


def _relay() -> None:
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
    while True:
        action = _WORK.get()
        try:
            action()
        except Exception:  # one failed action must not end the relay
            logger.exception("work handed over by a signal handler failed")


def _start_relay() -> None:
    """Start this process's relay thread (idempotent)."""
    with _START:
        if not _RELAY:
            thread = threading.Thread(target=_relay, name="signal-relay", daemon=True)
            thread.start()
            _RELAY.append(thread)


def call_outside_handler(action: Callable[[], object]) -> None:
    """Run ``action`` on the relay thread: what a signal handler must do with anything that
    takes a lock the interrupted main thread may hold (Event.set, logging, output)."""
    _WORK.put(action)
    if not _RELAY:
        _start_relay()


def install(handler: Handler, *signums: int) -> dict[int, Handler]:
    """Start the relay thread, then make ``handler`` the handler of ``signums``; returns
    the handlers they had (for :func:`restore`)."""
    _start_relay()
    return {signum: signal.signal(signum, handler) for signum in signums}


def restore(previous: Mapping[int, Handler]) -> None:
    """Put back the handlers :func:`install` returned."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def set_from_handler(event: threading.Event) -> None:
    """``event.set()`` as a signal handler may call it (see the module docstring)."""
    call_outside_handler(event.set)


def wait(event: threading.Event, seconds: float) -> bool:
    """``event.wait(seconds)`` in slices of at most WAIT_SLICE_SECONDS, so that a signal
    arriving as the wait begins has its handler run within one slice (module docstring).
    Returns whether the event is set."""
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return event.is_set()
        if event.wait(min(remaining, WAIT_SLICE_SECONDS)):
            return True
