"""The worker's registration and the heartbeat thread that keeps it alive.

A worker's procrastinate_workers row is what its claimed jobs point at. Every
``TRADERCTL_WORKER_HEARTBEAT_SECONDS`` the heartbeat thread touches it. A process paused
longer than ``TRADERCTL_WORKER_STALLED_SECONDS`` (SIGSTOP, a frozen VM, a long GC) is
taken for dead: another worker's recovery requeues its jobs and deletes its row. When it
resumes, whichever notices first (the heartbeat finding no row, or a claim refused by
the foreign key) registers it again under a new id through :class:`WorkerRegistration`,
once: the jobs it still "holds" under the old id are no longer its own, and the commit
writes nothing for them (``not_held``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg

from traderctl.worker.db import SessionLimits, connect
from traderctl.worker.errors import DatabaseUnreachable
from traderctl.worker.queue import manager

__all__ = ["Heartbeat", "WorkerRegistration"]

logger = logging.getLogger("traderctl.worker")


class WorkerRegistration:
    """The worker id of this process, shared by the loop and the heartbeat thread."""

    def __init__(self) -> None:
        self._id: int | None = None
        self._lock = threading.Lock()

    @property
    def id(self) -> int | None:
        return self._id

    def ensure(self, conn: psycopg.Connection[Any]) -> int:
        """The current id, registering the worker first if it has none."""
        with self._lock:
            if self._id is None:
                self._id = manager.register_worker(conn)
            return self._id

    def renew(self, conn: psycopg.Connection[Any], stale_id: int) -> int:
        """Register again after ``stale_id`` was pruned; a no-op if already renewed."""
        with self._lock:
            if self._id == stale_id:
                self._id = manager.register_worker(conn)
                logger.warning(
                    "worker %s was pruned as stalled (paused too long); registered again as "
                    "%s; jobs claimed under the old id are left to whoever took them over",
                    stale_id,
                    self._id,
                )
            assert self._id is not None
            return self._id

    def forget(self) -> int | None:
        """Drop the id (after unregistering); returns what it was."""
        with self._lock:
            old, self._id = self._id, None
            return old


class Heartbeat(threading.Thread):
    """Beats until ``done`` is set; re-registers the worker if its row was pruned."""

    def __init__(
        self,
        database_url: str,
        *,
        every_seconds: float,
        done: threading.Event,
        stopping: threading.Event,
        registration: WorkerRegistration,
        limits: SessionLimits,
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.database_url = database_url
        self.every_seconds = every_seconds
        self.done = done
        self.stopping = stopping
        self.registration = registration
        self.limits = limits

    def run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while not self.done.wait(self.every_seconds):
                worker_id = self.registration.id
                if worker_id is None:
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = connect(self.database_url, limits=self.limits)
                    alive = manager.heartbeat(conn, worker_id)
                    if not alive and not self.stopping.is_set():
                        self.registration.renew(conn, worker_id)
                except (DatabaseUnreachable, psycopg.Error) as exc:
                    logger.debug("heartbeat failed: %s", exc)
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()
