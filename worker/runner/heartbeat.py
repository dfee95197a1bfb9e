"""The heartbeat thread: keeps the worker's procrastinate_workers row fresh.

Every ``TRADER_HEARTBEAT_SECONDS`` it touches the row; if another worker pruned the row as
stalled (this process was paused longer than ``TRADER_STALLED_SECONDS``), it registers the
worker again so its next claims carry a live worker id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from traderctl.worker.db import connect
from traderctl.worker.errors import DatabaseUnreachable
from traderctl.worker.queue import manager

__all__ = ["Heartbeat"]

logger = logging.getLogger("traderctl.worker")


class Heartbeat(threading.Thread):
    """Beats until ``done`` is set; ``get_id``/``set_id`` read and replace the worker id."""

    def __init__(
        self,
        database_url: str,
        *,
        every_seconds: float,
        done: threading.Event,
        stopping: threading.Event,
        get_id: Callable[[], int | None],
        set_id: Callable[[int], None],
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.database_url = database_url
        self.every_seconds = every_seconds
        self.done = done
        self.stopping = stopping
        self.get_id = get_id
        self.set_id = set_id

    def run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while not self.done.wait(self.every_seconds):
                worker_id = self.get_id()
                if worker_id is None:
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = connect(self.database_url)
                    alive = manager.heartbeat(conn, worker_id)
                    if not alive and not self.stopping.is_set():
                        new_id = manager.register_worker(conn)
                        self.set_id(new_id)
                        logger.warning(
                            "worker %s was pruned as stalled; registered again as %s",
                            worker_id,
                            new_id,
                        )
                except (DatabaseUnreachable, psycopg.Error) as exc:
                    logger.debug("heartbeat failed: %s", exc)
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()
