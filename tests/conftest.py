"""Shared fixtures: one real Postgres with pg_cron per test session, a database per test.

The cluster is the same embedded one `make up` uses, started in a temporary directory
(fsync off). Migrations are applied once to a template database and every test gets
its own `CREATE DATABASE … TEMPLATE` copy, so tests never see each other's rows.

pg_cron only runs in `cron.database_name`; that database (``cron_db_url``) is migrated
too, and the few tests that wait for a real cron tick use it. Template copies have
everything except the pg_cron extension (its migration is a no-op elsewhere).

TEST_DATABASE_URL may name an existing server's maintenance database (superuser, with
pg_cron preloaded) to use instead of starting one.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from traderctl.worker.config import ENV_VARS
from traderctl.worker.local.embedded_pg import EmbeddedCluster
from traderctl.worker.migrate import migrate

# Our own configuration must not leak in from the developer's shell.
for _name in [*ENV_VARS, "TEST_DATABASE_URL_UNUSED"]:
    os.environ.pop(_name, None)

CRON_DB = "traderctl_cron"
TEMPLATE_DB = "traderctl_template"
_counter = itertools.count()


def _with_db(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of the maintenance database of a running server with pg_cron."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    # Not pytest's tmp_path: as root the server runs as `postgres`, which cannot enter
    # pytest's 0700 directories.
    root = Path(tempfile.mkdtemp(prefix="traderctl-test-"))
    root.chmod(0o755)
    cluster = EmbeddedCluster(root / "cluster", db_name=CRON_DB, fast=True)
    try:
        cluster.start()
        yield cluster.url("postgres")
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _recreate(admin: psycopg.Connection[Any], name: str, template: str | None = None) -> None:
    admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    query = sql.SQL("create database {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("create database {} template {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    admin.execute(query)


def _backend_runs_traders(conn: psycopg.Connection[Any]) -> None:
    """Most tests exercise the backend running traders: make `server` the default mode.

    A fresh install defaults to `browser` (the backend runs nothing until an admin rolls
    it out) and demotes server traders to the browser while unhealthy, e.g. with no
    worker alive. The rollout tests (tests/integration/test_rollout.py) set both back
    explicitly; tests/migration checks the install defaults on a plain migrated database.
    """
    conn.execute(
        "update backend.rollout_settings set default_mode = 'server', fallback_enabled = false"
    )
    conn.execute("select backend.refresh_trader_modes()")


@pytest.fixture(scope="session")
def cron_db_url(pg_server: str) -> str:
    """The migrated database pg_cron serves (shared by the session: clean up after use)."""
    url = _with_db(pg_server, CRON_DB)
    with psycopg.connect(pg_server, autocommit=True) as admin:
        exists = admin.execute(
            "select 1 from pg_database where datname = %s", (CRON_DB,)
        ).fetchone()
        if not exists:
            _recreate(admin, CRON_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        _backend_runs_traders(conn)
    return url


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> str:
    """Name of a fully migrated template database."""
    with psycopg.connect(pg_server, autocommit=True) as admin:
        _recreate(admin, TEMPLATE_DB)
    with psycopg.connect(_with_db(pg_server, TEMPLATE_DB), autocommit=True) as conn:
        migrate(conn)
        _backend_runs_traders(conn)
    return TEMPLATE_DB


@pytest.fixture
def db_url(pg_server: str, template_db: str) -> Iterator[str]:
    """URL of a fresh, migrated database for this test alone."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        _recreate(admin, name, template_db)
    try:
        yield _with_db(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit superuser connection to this test's database."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection
