"""How the operator commands talk to the database.

Everything in :mod:`traderctl.worker.admin` takes an open autocommit connection and runs
named queries from ``worker/sql/admin.sql``. psycopg errors meaning "the schema is not
there" become :class:`SchemaNotMigrated`, so pointing a command at an empty database says
what to do instead of printing a server error. Results are frozen dataclasses whose fields
are the query's columns; the CLI turns them into tables or ``--json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self

import psycopg
from psycopg.rows import dict_row

from traderctl.worker import queries
from traderctl.worker.db import connect
from traderctl.worker.errors import SchemaNotMigrated

__all__ = ["FromRow", "one", "one_line", "open_admin_connection", "rows", "schema_errors"]


def open_admin_connection(database_url: str) -> psycopg.Connection[Any]:
    """An autocommit connection for operator commands."""
    return connect(database_url)


def one_line(text: str | None) -> str:
    """A server message (which may span lines) on one line, for one-line errors."""
    return " ".join((text or "").split())


@contextmanager
def schema_errors() -> Iterator[None]:
    """Turn "no such table / function / schema" into SchemaNotMigrated."""
    try:
        yield
    except (
        psycopg.errors.UndefinedTable,
        psycopg.errors.UndefinedFunction,
        psycopg.errors.InvalidSchemaName,
    ) as exc:
        raise SchemaNotMigrated(
            f"the database lacks part of traderctl's schema ({one_line(str(exc))}); "
            "run `traderctl db migrate` against it."
        ) from exc


def rows(
    conn: psycopg.Connection[Any], name: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every row of the named query, as dicts."""
    with schema_errors(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(queries.get(name), params).fetchall()


def one(
    conn: psycopg.Connection[Any], name: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The first row of the named query, or None."""
    found = rows(conn, name, params)
    return found[0] if found else None


class FromRow:
    """``from_row`` for frozen dataclasses whose fields are named like the query's columns."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        return cls(**{n: row[n] for n in names if n in row})
