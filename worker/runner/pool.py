"""``--concurrency N``: N single worker processes, supervised and restarted with backoff.

Parallelism comes from processes, one V8 isolate each (docs/worker.md has the
measurements behind that choice). A child that dies is restarted, with a growing delay if
it keeps dying young, so a broken deployment does not become a crash loop.

Signals: the parent alone takes SIGTERM/SIGINT (a supervisor usually signals the whole
process group; the children ignore that) and relays each one to the children as
STOP_SIGNAL, so a group SIGTERM gets the full grace period. Children stop on their own
within seconds when the parent dies (:mod:`~traderctl.worker.runner.lifeline`), gracefully
however often the kernel repeats its signal; so does the pool when its own parent (such as
``traderctl up``) dies.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from types import FrameType
from typing import Any

from traderctl.worker.backoff import Backoff
from traderctl.worker.config import Settings
from traderctl.worker.runner.lifeline import PARENT_DEATH_SIGNAL, ParentWatch, die_with_parent
from traderctl.worker.runner.loop import BatchWorker
from traderctl.worker.runner.options import WorkerOptions
from traderctl.worker.runner.shutdown import STOP_SIGNAL, exit_now
from traderctl.worker.signal_safe import call_outside_handler, install, set_from_handler

__all__ = ["run_pool"]

logger = logging.getLogger("traderctl.worker")

#: Restart delay of a child that died young for the n-th time in a row: 2 s, 4 s … 60 s.
RESTART_BACKOFF = Backoff(first=2.0, cap=60.0)
#: A child that lived this long before dying is restarted at once.
_HEALTHY_SECONDS = 60


def _configure_child_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _child_main(
    settings: Settings, database_url: str, options: WorkerOptions, level: int, parent_pid: int
) -> None:
    _configure_child_logging(level)
    if level > logging.DEBUG:
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    worker = BatchWorker(settings, database_url, options)
    # Stop comes from the parent only (see Shutdown.install_child_signal_handlers), and
    # the parent's death is a stop too: the kernel's signal, or the watch's poll.
    worker.shutdown.install_child_signal_handlers()
    die_with_parent(PARENT_DEATH_SIGNAL)
    ParentWatch(parent_pid, worker.shutdown.request_stop).start()
    if options.metrics_port is not None:
        from traderctl.worker.runner import metrics as worker_metrics

        worker_metrics.serve(options.metrics_port, options.metrics_addr, database_url)
    exit_now(worker.run())


def run_pool(settings: Settings, database_url: str, options: WorkerOptions) -> int:
    """Start ``options.concurrency`` single worker processes and keep them running."""
    ctx = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    received: list[int] = []
    level = logging.getLogger().getEffectiveLevel()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        set_from_handler(stopping)

    def on_parent_death(signum: int, frame: FrameType | None) -> None:
        # One graceful stop however often the kernel repeats it (lifeline's docstring):
        # it never adds the second relay that means "now".
        if not received:
            received.append(signum)
            call_outside_handler(lambda: logger.warning("parent process is gone: stopping"))
        set_from_handler(stopping)

    install(on_signal, signal.SIGTERM, signal.SIGINT)
    install(on_parent_death, PARENT_DEATH_SIGNAL)

    def child_options(index: int) -> WorkerOptions:
        port = None if options.metrics_port is None else options.metrics_port + index
        base = options.name or f"{socket.gethostname()}:{os.getpid()}"
        return replace(options, concurrency=1, metrics_port=port, name=f"{base}/{index}")

    procs: dict[int, Any] = {}
    started: dict[int, float] = {}
    failures: dict[int, int] = {}
    next_start: dict[int, float] = {}

    def start(index: int) -> None:
        proc = ctx.Process(
            target=_child_main,
            args=(settings, database_url, child_options(index), level, os.getpid()),
            name=f"traderctl-worker-{index}",
        )
        proc.start()
        procs[index] = proc
        started[index] = time.monotonic()
        logger.info("started worker process %d (pid %s)", index, proc.pid)

    for index in range(options.concurrency):
        failures[index] = 0
        start(index)
    while not stopping.wait(0.5):
        for index, proc in list(procs.items()):
            if proc.is_alive():
                continue
            now = time.monotonic()
            if index not in next_start:
                lived = now - started[index]
                failures[index] = 0 if lived > _HEALTHY_SECONDS else failures[index] + 1
                delay = RESTART_BACKOFF.delay(failures[index] - 1) if failures[index] else 0.0
                logger.warning(
                    "worker process %d (pid %s) exited with %s after %.0fs; restarting in %.0fs",
                    index,
                    proc.pid,
                    proc.exitcode,
                    lived,
                    delay,
                )
                next_start[index] = now + delay
            if now >= next_start[index]:
                del next_start[index]
                start(index)
    logger.info("stopping %d worker process(es)", len(procs))
    relayed = 0
    deadline = time.monotonic() + settings.shutdown_grace_seconds + 10
    while time.monotonic() < deadline and any(p.is_alive() for p in procs.values()):
        # One relay per signal we got: the first lets the batches in flight finish, a
        # second (the operator insisting) makes the children give them back now.
        while relayed < len(received):
            relayed += 1
            for proc in procs.values():
                if proc.is_alive() and proc.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, STOP_SIGNAL)
        time.sleep(0.1)
    for proc in procs.values():
        if proc.is_alive():
            logger.warning("worker process pid %s did not stop; killing it", proc.pid)
            proc.kill()
            proc.join(5)
    return 0
