"""Migrations apply to an empty database, are recorded like the Supabase CLI, and fail loudly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from traderctl.worker.errors import MigrationError
from traderctl.worker.migrate import MIGRATIONS_DIR, discover, migrate, pending


@pytest.fixture
def empty_db_url(pg_server: str) -> Any:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = "t_empty_migrations"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(pg_server) | {"dbname": name}
    yield make_conninfo(**params)
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def test_applies_to_empty_database_then_nothing(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        applied = migrate(conn)
        assert [m.version for m in applied] == [m.version for m in discover()]
        assert migrate(conn) == []
        assert pending(conn) == []
        rows = conn.execute(
            "select version, name, array_length(statements, 1)"
            " from supabase_migrations.schema_migrations order by version"
        ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(m.version, m.name) for m in applied]
    assert all(r[2] == 1 for r in rows)


def test_history_table_has_supabase_cli_columns(conn: psycopg.Connection[Any]) -> None:
    cols = conn.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'supabase_migrations' and table_name = 'schema_migrations'"
        " order by ordinal_position"
    ).fetchall()
    assert cols[:3] == [("version", "text"), ("statements", "ARRAY"), ("name", "text")]


def test_every_migration_file_is_well_named() -> None:
    pattern = re.compile(r"^\d{14}_[a-z0-9_]+\.sql$")
    for path in MIGRATIONS_DIR.glob("*"):
        assert pattern.match(path.name), path.name


def test_bad_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "20260101000000_ok.sql").write_text("select 1;")
    (tmp_path / "2026-01-01_bad.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match=r"YYYYMMDDHHMMSS_name\.sql"):
        discover(tmp_path)


def test_failing_file_rolls_back_and_names_file_and_line(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    (tmp_path / "20990101000000_good.sql").write_text("create table public.mig_ok (id int);\n")
    (tmp_path / "20990101000001_bad.sql").write_text(
        "create table public.mig_half (id int);\n\n-- the next line is wrong\nselect * from nope;\n"
    )
    with pytest.raises(MigrationError) as info:
        migrate(conn, tmp_path)
    message = str(info.value)
    assert "20990101000001_bad.sql:4" in message
    assert 'relation "nope" does not exist' in message
    exists = conn.execute(
        "select to_regclass('public.mig_ok') is not null, to_regclass('public.mig_half') is not null"
    ).fetchone()
    assert exists == (True, False), "the failing file must roll back whole; earlier files stay"
    versions = {
        r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")
    }
    assert "20990101000000" in versions and "20990101000001" not in versions


def test_procrastinate_schema_matches_installed_version() -> None:
    """Upgrading procrastinate without a migration for its schema must fail here."""
    import procrastinate

    installed = (Path(procrastinate.__file__).parent / "sql" / "schema.sql").read_text()
    shipped = (MIGRATIONS_DIR / "20261126000100_create_procrastinate_schema.sql").read_text()
    version = procrastinate.__version__ if hasattr(procrastinate, "__version__") else None
    match = re.search(
        r"-- BEGIN procrastinate (?P<v>[\d.]+) schema\.sql\n(?P<body>.*)-- END procrastinate",
        shipped,
        re.S,
    )
    assert match, "marker block missing from the procrastinate migration"
    if version:
        assert match["v"] == version
    assert match["body"] == installed, (
        "installed procrastinate ships a different schema.sql: add a migration with its "
        "upgrade scripts (procrastinate/sql/migrations) and pin the new version"
    )
