"""Shared Prometheus helpers: the /metrics server, and queue depth and rollout from SQL.

The processes already define their own metrics: the trader worker in
:mod:`traderctl.worker.runner.metrics` (runs, errors, durations, snapshot loads, batches; on
prometheus-client's global registry) and the market-data worker in
:mod:`traderctl.worker.market.metrics` (refreshes, exchange requests by status, 418 ban gauge; its
own registry). This module adds what both lack and an autoscaler needs, queue depth as
the database sees it, plus one way to serve any registry:

==============================================  =========  ==============================
metric (gauge)                                  labels     meaning
==============================================  =========  ==============================
traderctl_queue_waiting_jobs                    queue      todo jobs due now
traderctl_queue_delayed_jobs                    queue      todo jobs scheduled later
traderctl_queue_running_jobs                    queue      doing jobs
traderctl_queue_oldest_waiting_seconds          queue      age of the oldest waiting job
traderctl_queue_depth_up                        —          1 if the last query succeeded
traderctl_rollout_traders                       tier,mode  traders per effective mode
traderctl_rollout_parity_agreement              tier       browser/shadow agreement, 24 h
==============================================  =========  ==============================

They are read from ``ops.queue_depth`` at scrape time (cached a few seconds, so several
scrapers cost one query), not counted in process: every process reports the same
numbers, so aggregate with ``max()`` across pods, e.g. an HPA external metric
``max(traderctl_queue_waiting_jobs{queue="traders.1m"})``. Every traders.<interval>
queue is always present (0 when empty).

`traderctl worker --metrics-port` serves them next to its own metrics through
:func:`start_metrics_server` (``worker_metrics.serve``); any other process can do the same::

    server = start_metrics_server(port, addr="0.0.0.0", database_url=database_url)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from traderctl.worker import queries

__all__ = [
    "MetricsServer",
    "QueueDepthCollector",
    "register_queue_depth",
    "start_metrics_server",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class _Depth:
    queue_name: str
    waiting: int
    delayed: int
    running: int
    oldest_waiting_age_s: float


class QueueDepthCollector(Collector):
    """Queue depth gauges read from ``ops.queue_depth`` at scrape time.

    ``connect`` opens a connection (called at most once per ``cache_seconds``); a failing
    database yields ``traderctl_queue_depth_up 0`` and no depth gauges instead of an
    error page, so the scrape itself stays healthy.
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        *,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._rows: list[_Depth] | None = None
        self._rollout: list[tuple[str, str, str | None, float]] = []

    def _read(self) -> list[_Depth] | None:
        with self._lock:
            now = self._clock()
            if self._at is not None and now - self._at < self._cache_seconds:
                return self._rows
            try:
                with self._connect() as conn:
                    rows = conn.execute(queries.get("admin_queue_depth_metrics")).fetchall()
                    rollout = conn.execute(queries.get("rollout_mode_metrics")).fetchall()
                self._rows = [
                    _Depth(
                        queue_name=str(r[0]),
                        waiting=int(r[1]),
                        delayed=int(r[2]),
                        running=int(r[3]),
                        oldest_waiting_age_s=float(r[4]),
                    )
                    for r in rows
                ]
                self._rollout = [(str(r[0]), str(r[1]), r[2], float(r[3])) for r in rollout]
            except (psycopg.Error, OSError) as exc:
                logger.warning("queue depth metrics unavailable: %s", exc)
                self._rows = None
            self._at = now
            return self._rows

    def describe(self) -> Iterable[Metric]:
        return []  # collected lazily: describing must not query the database

    def collect(self) -> Iterator[Metric]:
        rows = self._read()
        up = GaugeMetricFamily(
            "traderctl_queue_depth_up", "1 if the last queue depth query succeeded, else 0."
        )
        up.add_metric([], 0.0 if rows is None else 1.0)
        yield up
        if rows is None:
            return
        families = {
            "waiting": GaugeMetricFamily(
                "traderctl_queue_waiting_jobs",
                "Jobs waiting to be claimed (todo, due now), per queue.",
                labels=["queue"],
            ),
            "delayed": GaugeMetricFamily(
                "traderctl_queue_delayed_jobs",
                "Jobs scheduled for later (retries backing off), per queue.",
                labels=["queue"],
            ),
            "running": GaugeMetricFamily(
                "traderctl_queue_running_jobs",
                "Jobs being run (doing), per queue.",
                labels=["queue"],
            ),
            "oldest_waiting_age_s": GaugeMetricFamily(
                "traderctl_queue_oldest_waiting_seconds",
                "Age of the oldest waiting job, per queue (0 when none waits).",
                labels=["queue"],
            ),
        }
        for row in rows:
            for attr, family in families.items():
                family.add_metric([row.queue_name], float(getattr(row, attr)))
        yield from families.values()
        modes = GaugeMetricFamily(
            "traderctl_rollout_traders",
            "Traders per tier and effective execution mode (browser, shadow, server).",
            labels=["tier", "mode"],
        )
        agreement = GaugeMetricFamily(
            "traderctl_rollout_parity_agreement",
            "Share of browser run reports agreeing with the shadow run, last 24 h, per tier.",
            labels=["tier"],
        )
        for kind, tier, label, value in self._rollout:
            if kind == "mode":
                modes.add_metric([tier, label or ""], value)
            else:
                agreement.add_metric([tier], value)
        yield modes
        yield agreement


@dataclass(frozen=True, kw_only=True)
class MetricsServer:
    """A running /metrics HTTP server; :meth:`close` stops it."""

    port: int
    addr: str
    _server: Any
    _thread: threading.Thread
    _collector: Collector | None
    _registry: CollectorRegistry

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._collector is not None:
            self._registry.unregister(self._collector)


def register_queue_depth(
    database_url: str,
    *,
    registry: CollectorRegistry = REGISTRY,
    cache_seconds: float = 5.0,
) -> QueueDepthCollector:
    """Add the queue depth gauges to ``registry`` (unregister the result to remove them).

    Each refresh opens a short connection to ``database_url`` (5 s connect and statement
    timeouts), so a slow database never hangs a scrape for long.
    """

    def _connect() -> psycopg.Connection[Any]:
        return psycopg.connect(
            database_url, autocommit=True, connect_timeout=5, options="-c statement_timeout=5000"
        )

    collector = QueueDepthCollector(_connect, cache_seconds=cache_seconds)
    registry.register(collector)
    return collector


def start_metrics_server(
    port: int,
    *,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry = REGISTRY,
    database_url: str | None = None,
    queue_depth_cache_seconds: float = 5.0,
) -> MetricsServer:
    """Serve ``registry`` on http://addr:port/metrics in a daemon thread (port 0 = any free).

    With ``database_url`` the queue depth gauges are added to the registry for as long as
    the server runs. Containers scraped from outside the pod pass ``addr="0.0.0.0"``.
    """
    collector: Collector | None = None
    if database_url is not None:
        collector = register_queue_depth(
            database_url, registry=registry, cache_seconds=queue_depth_cache_seconds
        )
    try:
        server, thread = start_http_server(port, addr=addr, registry=registry)
    except OSError:
        if collector is not None:
            registry.unregister(collector)
        raise
    actual = int(server.server_port)
    logger.info("serving Prometheus metrics on http://%s:%s/metrics", addr, actual)
    return MetricsServer(
        port=actual,
        addr=addr,
        _server=server,
        _thread=thread,
        _collector=collector,
        _registry=registry,
    )
