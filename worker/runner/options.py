"""What `traderctl worker` was asked to do, and which queues that means."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from traderctl.worker.errors import WorkerOptionsError
from traderctl.worker.intervals import INTERVALS
from traderctl.worker.queue.contract import trader_queue

__all__ = ["WorkerOptions", "queues_for"]


def queues_for(intervals: Sequence[str] | None, queues: Sequence[str] | None) -> list[str]:
    """The trader queues to serve: ``traders.<interval>`` per interval, or the queues given,
    or every interval's queue when neither is given."""
    if intervals and queues:
        raise WorkerOptionsError("use either --intervals or --queues, not both")
    if queues:
        return list(dict.fromkeys(q.strip() for q in queues if q.strip()))
    if intervals:
        unknown = [iv for iv in intervals if iv not in INTERVALS]
        if unknown:
            raise WorkerOptionsError(
                f"unknown interval(s) {', '.join(unknown)}; use {', '.join(INTERVALS)}"
            )
        return [trader_queue(iv) for iv in dict.fromkeys(intervals)]
    return [trader_queue(iv) for iv in INTERVALS]


@dataclass(frozen=True, kw_only=True)
class WorkerOptions:
    """What `traderctl worker` was asked to do."""

    queues: tuple[str, ...]
    concurrency: int = 1
    batch_size: int = 32
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    maintenance: bool = True
    name: str | None = None
