"""Dump the schema that migrations/ produce, normalized for diffing.

`make schema-dump` writes it to tests/schema.sql (committed); `make verify` and
tests/migration/test_schema_dump.py fail when migrations and the committed dump drift, so
every schema change is reviewed as a diff of the resulting schema, not only of the files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from traderctl.worker.local.embedded_pg import EmbeddedCluster, find_bindir
from traderctl.worker.migrate import migrate

_VOLATILE = re.compile(r"^-- (Dumped (from|by) .*|Started on .*|Completed on .*)$")


def dump(url: str) -> str:
    """pg_dump --schema-only of the database at url, without version banners or owners."""
    out = subprocess.run(
        [
            str(find_bindir() / "pg_dump"),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-schema=cron",
            "--dbname",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line for line in out.splitlines() if not _VOLATILE.match(line)]
    # pg_dump 15.x adds \restrict lines with a random key in recent minor releases.
    lines = [line for line in lines if not line.startswith(("\\restrict", "\\unrestrict"))]
    return "\n".join(lines).strip() + "\n"


def dump_fresh() -> str:
    """Migrate a throwaway database from scratch and dump it.

    Like the test suite's template, the database is not pg_cron's own (cron.database_name),
    so the dump is the same whether or not pg_cron lives in it.
    """
    root = Path(tempfile.mkdtemp(prefix="traderctl-dump-"))
    root.chmod(0o755)
    cluster = EmbeddedCluster(root / "cluster", db_name="cron_home", fast=True)
    try:
        cluster.start()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute("create database schema_dump")
        with psycopg.connect(cluster.url("schema_dump"), autocommit=True) as conn:
            migrate(conn)
        return dump(cluster.url("schema_dump"))
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.stdout.write(dump_fresh())
