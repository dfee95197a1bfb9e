"""traderctl.worker.metrics: /metrics serves the queue depth gauges computed from ops.queue_depth."""

from __future__ import annotations

import urllib.request
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter

from tests.factories import make_trader, make_user
from traderctl.worker import metrics


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_metrics_server_serves_registry_and_queue_depth(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    # Trader jobs wait since their slot (they have no 'deferred' event).
    conn.execute(
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name, args)"
        " select 'traders.5m', 'run_trader', jsonb_build_object('slot', to_char("
        "   (now() - interval '90 seconds') at time zone 'UTC',"
        '   \'YYYY-MM-DD"T"HH24:MI:SS"+00:00"\'))'
        " from generate_series(1, 2)"
    )
    registry = CollectorRegistry()
    runs = Counter("traderctl_test_runs", "A process's own metric.", registry=registry)
    runs.inc(3)

    server = metrics.start_metrics_server(
        0, registry=registry, database_url=db_url, queue_depth_cache_seconds=0
    )
    try:
        samples = scrape(server.url)
    finally:
        server.close()

    assert samples["traderctl_test_runs_total"] == 3.0
    assert samples["traderctl_queue_depth_up"] == 1.0
    assert samples['traderctl_queue_waiting_jobs{queue="traders.5m"}'] == 2.0
    assert samples['traderctl_queue_waiting_jobs{queue="traders.1m"}'] == 0.0
    assert samples['traderctl_queue_delayed_jobs{queue="traders.5m"}'] == 0.0
    assert samples['traderctl_queue_running_jobs{queue="traders.5m"}'] == 0.0
    assert 85 <= samples['traderctl_queue_oldest_waiting_seconds{queue="traders.5m"}'] <= 100
    # Closing the server removed the queue collector: the registry has only its own metric.
    assert registry.get_sample_value("traderctl_queue_depth_up") is None


def test_queue_depth_reports_down_when_the_database_is_unreachable() -> None:
    registry = CollectorRegistry()

    def broken() -> psycopg.Connection[Any]:
        raise psycopg.OperationalError("connection refused")

    registry.register(metrics.QueueDepthCollector(broken, cache_seconds=0))
    assert registry.get_sample_value("traderctl_queue_depth_up") == 0.0
    assert (
        registry.get_sample_value("traderctl_queue_waiting_jobs", {"queue": "traders.1m"}) is None
    )


def test_register_queue_depth_on_a_process_registry(db_url: str) -> None:
    registry = CollectorRegistry()
    collector = metrics.register_queue_depth(db_url, registry=registry, cache_seconds=60)
    try:
        assert registry.get_sample_value("traderctl_queue_depth_up") == 1.0
        value = registry.get_sample_value("traderctl_queue_running_jobs", {"queue": "traders.1d"})
        assert value == 0.0
    finally:
        registry.unregister(collector)


def test_rollout_gauges_count_traders_per_mode(db_url: str, conn: psycopg.Connection[Any]) -> None:
    # The suite's template runs every trader on the server (tests/conftest.py).
    users = [make_user(conn, tier="pro") for _ in range(3)]
    for user in users:
        make_trader(conn, user_id=user)
    conn.execute(
        "insert into backend.rollout_overrides (user_id, mode) values (%s, 'shadow')",
        (users[0],),
    )
    registry = CollectorRegistry()
    collector = metrics.register_queue_depth(db_url, registry=registry, cache_seconds=0)
    try:
        modes = {
            mode: registry.get_sample_value(
                "traderctl_rollout_traders", {"tier": "pro", "mode": mode}
            )
            for mode in ("server", "shadow")
        }
    finally:
        registry.unregister(collector)
    assert modes == {"server": 2.0, "shadow": 1.0}
