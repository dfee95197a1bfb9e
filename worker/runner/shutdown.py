"""Stopping a worker process: signals, the grace period, and leaving without finalization.

SIGTERM/SIGINT stop claiming; the in-flight batch finishes (filters are bounded by their
CPU timeout) or, after ``TRADERCTL_WORKER_SHUTDOWN_GRACE_SECONDS``, the process gives its jobs back
and exits. A second signal gives them back at once. Pool children take their signals
from the parent only (:meth:`Shutdown.install_child_signal_handlers`). The evaluating thread cannot be
interrupted, so "at once" means: release through a fresh connection, then ``os._exit``.
The parent's death (:data:`~traderctl.worker.runner.lifeline.PARENT_DEATH_SIGNAL`, which
the kernel may send several times) is one graceful stop however often it arrives.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from traderctl.worker.runner.lifeline import PARENT_DEATH_SIGNAL
from traderctl.worker.signal_safe import call_outside_handler, install

__all__ = ["STOP_SIGNAL", "Shutdown", "exit_now"]

logger = logging.getLogger("traderctl.worker")

#: What a pool parent sends its children to stop them (also their parent-death signal).
STOP_SIGNAL = signal.SIGUSR1


class Shutdown:
    """The stop and done events of a worker process, and what its signals do to them.

    ``stop`` is set when the process should stop claiming; ``done`` once the loop has
    shut down (which ends the grace watchdog and the heartbeat). ``give_back`` releases
    the in-flight jobs and unregisters the worker before a forced exit.
    """

    def __init__(self, grace_seconds: float, give_back: Callable[[], None]) -> None:
        self.grace_seconds = grace_seconds
        self.give_back = give_back
        self.stop = threading.Event()
        self.done = threading.Event()
        self._signals = 0

    def install_signal_handlers(self) -> None:
        install(self._on_signal, signal.SIGTERM, signal.SIGINT)
        install(self._on_parent_death, PARENT_DEATH_SIGNAL)

    def install_child_signal_handlers(self) -> None:
        """A pool child takes its stop from its parent only.

        Supervisors (systemd, docker, Ctrl-C in a terminal) signal the whole process
        group; if the child acted on that and again on the parent's relay, the relay
        would count as a second signal and skip the grace period. So the child ignores
        SIGTERM/SIGINT and the parent relays each signal it gets as STOP_SIGNAL: the first
        finishes the batch in flight, a second gives it back at once.
        """
        install(signal.SIG_IGN, signal.SIGTERM, signal.SIGINT)
        install(self._on_signal, STOP_SIGNAL)
        install(self._on_parent_death, PARENT_DEATH_SIGNAL)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Counted here; everything that takes a lock runs outside the handler (signal_safe).
        self._signals += 1
        if self._signals == 1:
            call_outside_handler(lambda: self._first_signal(signum))
        else:
            call_outside_handler(self._second_signal)

    def _on_parent_death(self, signum: int, frame: FrameType | None) -> None:
        # Not counted: the kernel may repeat it for one death (lifeline's docstring).
        call_outside_handler(self._parent_gone)

    def _parent_gone(self) -> None:
        if self.stop.is_set():
            return
        logger.warning(
            "parent process is gone: finishing in-flight jobs (grace %ss)", self.grace_seconds
        )
        self.request_stop()

    def _first_signal(self, signum: int) -> None:
        logger.info(
            "received %s: finishing in-flight jobs (grace %ss)",
            signal.Signals(signum).name,
            self.grace_seconds,
        )
        self.request_stop()

    def _second_signal(self) -> None:
        logger.warning("second signal: releasing in-flight jobs now")
        self.force_exit()

    def request_stop(self) -> None:
        """Stop claiming; the in-flight batch gets the grace period to finish."""
        if self.stop.is_set():
            return
        self.stop.set()
        threading.Thread(target=self._grace_watchdog, name="grace", daemon=True).start()

    def _grace_watchdog(self) -> None:
        if self.done.wait(self.grace_seconds):
            return
        logger.warning(
            "in-flight jobs did not finish within %ss; releasing them", self.grace_seconds
        )
        self.force_exit()

    def force_exit(self) -> None:
        self.give_back()
        logging.shutdown()
        os._exit(1)  # the evaluating thread cannot be interrupted; the process goes


def exit_now(code: int) -> None:
    """End the process after a clean shutdown without interpreter finalization.

    Everything is stopped, released and logged by now. mini-racer 0.14's V8 threads can
    hang interpreter finalization (seen here after evals with a timeout), and a worker
    that never exits turns a rolling restart into a stuck one; so flush and leave.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
