"""The queue contract: what a trader job looks like, defined once for Python.

The scheduler (inside Postgres), the first-run trigger, `traderctl requeue` and the
workers all agree on these values; the SQL side defines the same ones once, in
``backend.enqueue_trader_run`` (see docs/worker.md, "The queue contract").

* queue ``traders.<interval>``, e.g. ``traders.5m``: one queue per refresh interval, so
  pools can be sized per interval;
* task ``run_trader`` with args ``{"trader_id": "<uuid>", "slot": "<ISO-8601 UTC minute>"}``;
* lock ``trader:<uuid>``: procrastinate never runs two jobs of one trader at once;
* queueing lock ``trader:<uuid>:<slot>``: one waiting job per (trader, slot).
"""

from __future__ import annotations

import uuid

__all__ = [
    "MAINTENANCE_QUEUE",
    "TRADER_QUEUE_PREFIX",
    "TRADER_TASK",
    "trader_lock",
    "trader_queue",
]

#: Queue of the periodic maintenance tasks (stalled recovery, retention).
MAINTENANCE_QUEUE = "traderctl.maintenance"
#: Trader jobs go to queue TRADER_QUEUE_PREFIX + interval, e.g. 'traders.5m'.
TRADER_QUEUE_PREFIX = "traders."
#: task_name of the scheduler's jobs.
TRADER_TASK = "run_trader"


def trader_queue(interval: str) -> str:
    """The queue of a trader whose refresh interval is ``interval``."""
    return TRADER_QUEUE_PREFIX + interval


def trader_lock(trader_id: uuid.UUID | str) -> str:
    """procrastinate lock that serialises one trader's jobs."""
    return f"trader:{trader_id}"
