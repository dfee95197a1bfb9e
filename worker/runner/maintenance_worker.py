"""The maintenance thread: a procrastinate worker on the maintenance queue.

Every ``traderctl worker`` process runs one (unless ``--no-maintenance``), on its own
asyncio loop, for the periodic stalled-job recovery and retention tasks of
:mod:`traderctl.worker.runner.tasks`; procrastinate's periodic deferrer makes sure each
fires once per period however many workers run. When the database goes away the
procrastinate worker stops; the thread restarts it with backoff.

Stopping asks procrastinate's worker to stop (its graceful path, which deletes its
``procrastinate_workers`` row) rather than cancelling the task it runs in: a cancel that
lands while the worker is still registering (a process stopped a moment after it started)
ends the task after the row was inserted and before the worker knew its id, and the row
stayed behind until stalled-worker recovery removed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

from procrastinate.worker import Worker

from traderctl.worker.backoff import Backoff
from traderctl.worker.config import Settings
from traderctl.worker.queue.contract import MAINTENANCE_QUEUE
from traderctl.worker.runner.tasks import SETTINGS_KEY, make_app

__all__ = ["MaintenanceThread"]

logger = logging.getLogger("traderctl.worker")

#: Restart delays of the procrastinate worker: 1 s, doubling up to 30 s.
RESTART_BACKOFF = Backoff(first=1.0, cap=30.0)
#: A worker that ran this long before stopping starts the backoff over.
_HEALTHY_SECONDS = 60
#: Heartbeat age procrastinate's own start-up pruning waits for: never reached.
_NEVER_SECONDS = 10 * 365 * 86400.0


class MaintenanceThread(threading.Thread):
    """Runs the maintenance procrastinate worker until :meth:`stop`."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        super().__init__(name="maintenance", daemon=True)
        self.settings = settings
        self.database_url = database_url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: Worker | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        failures = 0
        while not self._stopping.is_set():
            app = make_app(self.settings, self.database_url, max_pool=2)
            started = time.monotonic()
            try:
                async with app.open_async():
                    # procrastinate's App and Worker methods are unannotated.
                    app.perform_import_paths()  # type: ignore[no-untyped-call]
                    self._worker = Worker(
                        app=app,
                        queues=[MAINTENANCE_QUEUE],
                        name="maintenance",
                        concurrency=1,
                        install_signal_handlers=False,
                        update_heartbeat_interval=float(self.settings.heartbeat_seconds),
                        # procrastinate prunes stalled workers once at start, with a
                        # DELETE that waits on any frozen worker's row locks; ours
                        # (backend.recover_stalled_jobs) never waits. Leave it to ours.
                        stalled_worker_timeout=_NEVER_SECONDS,
                        shutdown_graceful_timeout=5.0,
                        additional_context={SETTINGS_KEY: self.settings},
                    )
                    # No await between this check and run()'s first step, which resets
                    # the worker's stop request: a stop() from now on is seen.
                    if self._stopping.is_set():
                        return
                    await self._worker.run()  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                return
            except Exception as exc:
                logger.warning("maintenance worker stopped: %s", exc)
            if time.monotonic() - started > _HEALTHY_SECONDS:
                failures = 0
            if self._stopping.is_set():
                return
            delay = RESTART_BACKOFF.delay(failures)
            failures += 1
            logger.info("maintenance worker restarting in %.1fs", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    @property
    def registered_id(self) -> int | None:
        """The procrastinate worker's ``procrastinate_workers`` id while it is registered."""
        worker = self._worker
        return None if worker is None else worker.worker_id

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the procrastinate worker the graceful way (module docstring) and wait."""
        self._stopping.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._stop_worker)
        self.join(timeout)

    def _stop_worker(self) -> None:
        """On the maintenance loop: ask the current procrastinate worker to stop, and end
        a restart backoff early."""
        if self._wake is not None:
            self._wake.set()
        if self._worker is not None:
            self._worker.stop()  # type: ignore[no-untyped-call]
