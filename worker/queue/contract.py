"""The queue contract: what a trader job looks like, defined once for Python.

The scheduler tick, the first-run trigger and `traderctl requeue` enqueue through one SQL
function, ``backend.enqueue_trader_runs`` (with ``backend.trader_queue`` and
``backend.trader_lock``), which defines the same values once for SQL; the workers read
jobs with the names below. docs/worker.md ("The queue contract") describes both sides.

* queue ``traders.<interval>``, e.g. ``traders.5m``: one queue per refresh interval, so
  pools can be sized per interval;
* task ``run_trader`` with args ``{"trader_id": "<uuid>", "slot": "<ISO-8601 UTC minute>"}``;
* lock ``trader:<uuid>``: never two running jobs of one trader;
* queueing lock ``trader:<uuid>`` too: at most one waiting job per trader.
"""

from __future__ import annotations

import uuid

__all__ = [
    "ARG_SLOT",
    "ARG_TRADER_ID",
    "MAINTENANCE_QUEUE",
    "TRADER_LOCK_PREFIX",
    "TRADER_QUEUE_PREFIX",
    "TRADER_TASK",
    "queue_interval",
    "trader_lock",
    "trader_queue",
]

#: Queue of the periodic maintenance tasks (stalled recovery, retention).
MAINTENANCE_QUEUE = "traderctl.maintenance"
#: Trader jobs go to queue TRADER_QUEUE_PREFIX + interval, e.g. 'traders.5m'.
TRADER_QUEUE_PREFIX = "traders."
#: task_name of every trader job.
TRADER_TASK = "run_trader"
#: Job args keys: the trader's id and the slot (UTC minute) it runs for.
ARG_TRADER_ID = "trader_id"
ARG_SLOT = "slot"
#: Lock and queueing lock of a trader's jobs: TRADER_LOCK_PREFIX + trader id.
TRADER_LOCK_PREFIX = "trader:"


def trader_queue(interval: str) -> str:
    """The queue of a trader whose refresh interval is ``interval``."""
    return TRADER_QUEUE_PREFIX + interval


def queue_interval(queue_name: str) -> str | None:
    """'5m' for queue 'traders.5m'; None for a queue that is not a trader queue."""
    if not queue_name.startswith(TRADER_QUEUE_PREFIX):
        return None
    return queue_name.removeprefix(TRADER_QUEUE_PREFIX) or None


def trader_lock(trader_id: uuid.UUID | str) -> str:
    """Lock (and queueing lock) that serialises one trader's jobs."""
    return f"{TRADER_LOCK_PREFIX}{trader_id}"
