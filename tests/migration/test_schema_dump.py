"""The committed tests/schema.sql is what migrations/ produce (regenerate: make schema-dump)."""

from __future__ import annotations

import difflib
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.schema_dump import dump

COMMITTED = Path(__file__).resolve().parents[1] / "schema.sql"


def test_schema_dump_is_current(pg_server: str, template_db: str) -> None:
    url = make_conninfo(**(conninfo_to_dict(pg_server) | {"dbname": template_db}))
    actual = dump(url)
    expected = COMMITTED.read_text()
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(True), actual.splitlines(True), "tests/schema.sql", "migrations"
        )
    )
    assert not diff, "schema drifted from tests/schema.sql; run `make schema-dump`:\n" + diff[:4000]
