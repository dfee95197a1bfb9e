"""Child processes that never outlive their parent.

A pool child (:mod:`~traderctl.worker.runner.pool`) or a process started by
``traderctl up`` whose parent died would otherwise carry on as an orphan beside the
parent's replacement: in a fault-injection run one committed 2,172 runs after its pool
was killed. Two mechanisms, because either alone has a gap:

* Linux's ``prctl(PR_SET_PDEATHSIG)``: the kernel signals the child the moment its parent
  exits, however it died (kill -9 included);
* :class:`ParentWatch`: a thread that polls ``os.getppid()`` every second, for other
  systems and for the race where the parent died before the child set up the first.

The kernel's signal can come **more than once** for one death. Its "parent" is the thread
that started the child; when that thread exits while other threads of the parent are still
on their way out, the child is handed to one of them and signalled, and again when that one
exits (a killed parent with seven threads signalled its children up to three times, ~120 ms
apart). So the signal is :data:`PARENT_DEATH_SIGNAL`, which every receiver treats as one
idempotent "stop gracefully", never as an operator's signal that a second one escalates.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

__all__ = [
    "PARENT_DEATH_SIGNAL",
    "ParentWatch",
    "die_with_parent",
    "ignore_parent_death",
    "parent_death_hook",
]

logger = logging.getLogger("traderctl.worker")

#: What a child gets when its parent dies: not SIGTERM or the pool's stop signal, because
#: it may arrive several times (module docstring) and those count the operator's signals.
PARENT_DEATH_SIGNAL = signal.SIGUSR2

#: prctl(2) option: signal to send this process when its parent exits.
_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 1.0


def _linux_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


def parent_death_hook(signum: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` for subprocess: the child gets ``signum`` when we exit.

    libc is loaded here, before the fork, so the hook itself is one libc call (safe
    between fork and exec). None where unsupported.
    """
    prctl = _linux_prctl()
    if prctl is None:
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)

    return hook


def die_with_parent(signum: int) -> bool:
    """Ask the kernel to send this process ``signum`` when its parent exits; False where
    unsupported (:class:`ParentWatch` still covers it)."""
    prctl = _linux_prctl()
    return prctl is not None and prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


def ignore_parent_death() -> None:
    """For a process that has stopped and is on its way out: a repeat of the parent-death
    signal (module docstring) must not kill it there, as that signal's default action
    would. Call from the main thread, in place of restoring the signal's old handler."""
    signal.signal(PARENT_DEATH_SIGNAL, signal.SIG_IGN)


class ParentWatch(threading.Thread):
    """Calls ``on_orphaned`` once if this process's parent is no longer ``parent_pid``."""

    def __init__(self, parent_pid: int, on_orphaned: Callable[[], None]) -> None:
        super().__init__(name="parent-watch", daemon=True)
        self.parent_pid = parent_pid
        self.on_orphaned = on_orphaned

    def orphaned(self) -> bool:
        return os.getppid() != self.parent_pid

    def run(self) -> None:
        while not self.orphaned():
            time.sleep(_POLL_SECONDS)
        logger.warning("parent process %s is gone; stopping", self.parent_pid)
        self.on_orphaned()
