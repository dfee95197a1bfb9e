"""Apply migrations/ in order, recording them the way the Supabase CLI does.

Each file runs in its own transaction and is recorded in
``supabase_migrations.schema_migrations`` (version, name, statements), the table
``supabase db push`` uses, so a database migrated by either tool agrees with the other.
A database without an ``auth`` schema first gets the local Supabase stand-in from
sql/local/. A session advisory lock keeps two concurrent migrators from racing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from traderctl.resources import local_standin_dir, migrations_dir
from traderctl.worker.errors import MigrationError

__all__ = [
    "LOCAL_STANDIN_DIR",
    "MIGRATIONS_DIR",
    "Migration",
    "apply_local_standin",
    "discover",
    "migrate",
    "pending",
]

MIGRATIONS_DIR = migrations_dir()
LOCAL_STANDIN_DIR = local_standin_dir()
NAME_PATTERN = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x7472_6164  # "trad": arbitrary, constant across versions

_HISTORY_DDL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (version text not null primary key);
alter table supabase_migrations.schema_migrations add column if not exists statements text[];
alter table supabase_migrations.schema_migrations add column if not exists name text;
"""


@dataclass(frozen=True, kw_only=True)
class Migration:
    """One file of migrations/."""

    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files in version order; a misnamed .sql file is refused."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = NAME_PATTERN.match(path.name)
        if not match:
            raise MigrationError(
                f"migration file {path.name!r} does not match YYYYMMDDHHMMSS_name.sql "
                "(14 digits, underscore, lowercase letters/digits/underscores); rename it."
            )
        found.append(Migration(version=match["version"], name=match["name"], path=path))
    versions = [m.version for m in found]
    duplicates = sorted({v for v in versions if versions.count(v) > 1})
    if duplicates:
        raise MigrationError(f"two migration files share the version(s) {', '.join(duplicates)}.")
    return found


def _line_of(sql: str, position: int | None) -> int | None:
    if not position:
        return None
    return sql.count("\n", 0, position - 1) + 1


def _run_file(conn: psycopg.Connection[Any], path: Path, sql: str) -> None:
    try:
        conn.execute(sql.encode())
    except psycopg.Error as exc:
        diag = exc.diag
        line = _line_of(sql, int(diag.statement_position) if diag.statement_position else None)
        where = f"{path.name}:{line}" if line else path.name
        context = f" ({diag.context.strip().splitlines()[0]})" if diag.context else ""
        message = diag.message_primary or str(exc).strip()
        raise MigrationError(
            f"{where}: {message}{context}. The file was rolled back; fix it and run "
            "`traderctl db migrate` again."
        ) from exc


def apply_local_standin(conn: psycopg.Connection[Any]) -> bool:
    """Create roles, auth and the realtime publication if this is not a Supabase database."""
    has_auth = conn.execute("select 1 from pg_namespace where nspname = 'auth'").fetchone()
    if has_auth:
        return False
    for path in sorted(LOCAL_STANDIN_DIR.glob("*.sql")):
        with conn.transaction():
            _run_file(conn, path, path.read_text())
    return True


def _ensure_history(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute(_HISTORY_DDL.encode())


def pending(conn: psycopg.Connection[Any], directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migrations not yet recorded in supabase_migrations.schema_migrations."""
    exists = conn.execute(
        "select to_regclass('supabase_migrations.schema_migrations') is not null"
    ).fetchone()
    applied: set[str] = set()
    if exists and exists[0]:
        rows = conn.execute("select version from supabase_migrations.schema_migrations")
        applied = {row[0] for row in rows}
    return [m for m in discover(directory) if m.version not in applied]


def migrate(
    conn: psycopg.Connection[Any],
    directory: Path = MIGRATIONS_DIR,
    *,
    local_standin: bool = True,
) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied.

    ``conn`` must be in autocommit mode: transactions are opened here, one per file.
    """
    if not conn.autocommit:
        raise MigrationError("migrate() needs an autocommit connection (one transaction per file).")
    conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        if local_standin:
            apply_local_standin(conn)
        _ensure_history(conn)
        todo = pending(conn, directory)
        for migration in todo:
            sql = migration.sql
            with conn.transaction():
                _run_file(conn, migration.path, sql)
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name, statements)"
                    " values (%s, %s, %s)",
                    (migration.version, migration.name, [sql]),
                )
            conn.execute("reset all")
        return todo
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
