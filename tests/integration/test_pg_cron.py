"""pg_cron is preloaded by the embedded cluster and usable in its database."""

from __future__ import annotations

import psycopg


def test_pg_cron_is_preloaded_and_schedules(cron_db_url: str) -> None:
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        preload = conn.execute("show shared_preload_libraries").fetchone()
        assert preload and "pg_cron" in preload[0]
        conn.execute("create extension if not exists pg_cron")
        row = conn.execute(
            "select cron.schedule('traderctl-test-noop', '* * * * *', 'select 1')"
        ).fetchone()
        assert row and row[0] > 0
        try:
            jobs = conn.execute(
                "select schedule, command from cron.job where jobname = 'traderctl-test-noop'"
            ).fetchall()
            assert jobs == [("* * * * *", "select 1")]
        finally:
            conn.execute("select cron.unschedule('traderctl-test-noop')")


def test_server_settings_for_realtime_and_cron(cron_db_url: str) -> None:
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        settings = dict(
            conn.execute(
                "select name, setting from pg_settings"
                " where name in ('wal_level', 'cron.database_name', 'listen_addresses')"
            ).fetchall()
        )
        db = conn.execute("select current_database()").fetchone()
    assert settings["wal_level"] == "logical"
    assert db and settings["cron.database_name"] == db[0]
    assert settings["listen_addresses"] == "127.0.0.1"
