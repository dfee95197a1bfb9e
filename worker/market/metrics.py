"""Prometheus metrics of the market-data worker (served with ``--metrics-port``).

Each :class:`MarketMetrics` has its own registry, so tests and several workers in one
process never collide on metric names.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["MarketMetrics"]


class MarketMetrics:
    """Refreshes, requests by endpoint and status, used weight, stale series, versions."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.refreshes = Counter(
            "traderctl_market_refreshes",
            "Market-data refreshes by outcome.",
            ["status"],
            registry=r,
        )
        self.refresh_seconds = Histogram(
            "traderctl_market_refresh_seconds",
            "Duration of one refresh (requests and the database write).",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.requests = Counter(
            "traderctl_market_requests",
            "Exchange requests by endpoint and HTTP status (or timeout/error).",
            ["endpoint", "status"],
            registry=r,
        )
        self.used_weight = Gauge(
            "traderctl_market_used_weight_1m",
            "The exchange's X-MBX-USED-WEIGHT-1M from the latest answer.",
            registry=r,
        )
        self.stale_series = Gauge(
            "traderctl_market_stale_series", "Kline series flagged stale.", ["interval"], registry=r
        )
        self.snapshot_version = Gauge(
            "traderctl_market_snapshot_version",
            "Current market_snapshots.version per interval.",
            ["interval"],
            registry=r,
        )
        self.banned = Gauge(
            "traderctl_market_banned", "1 while the exchange bans us (HTTP 418).", registry=r
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Expose /metrics on ``addr:port`` from a background thread."""
        self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)

    def close(self) -> None:
        """Stop the metrics server, if any."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None
