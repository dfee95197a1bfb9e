"""Named SQL queries, loaded once from the .sql files in worker/sql/.

Runtime code never embeds ad-hoc SQL strings: each query lives in a .sql file under a
name and a one-line description, like this::

    -- name: claim_jobs
    -- Claim up to %(limit)s due jobs of the given queues, highest priority first.
    select ...;

and is called as ``queries.get("claim_jobs")``. Names are unique across all files;
a duplicate or a query without a description is an error at load time.
"""

from __future__ import annotations

import re
from functools import cache
from typing import LiteralString

from traderctl.resources import package_path

__all__ = ["QUERIES_DIR", "get", "load_all"]

QUERIES_DIR = package_path("worker", "sql")
_HEADER = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@cache
def load_all() -> dict[str, LiteralString]:
    """Every named query of every file in worker/sql/, keyed by name."""
    queries: dict[str, LiteralString] = {}
    for path in sorted(QUERIES_DIR.glob("*.sql")):
        text = path.read_text()
        headers = list(_HEADER.finditer(text))
        for i, header in enumerate(headers):
            end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
            body = text[header.end() : end].strip()
            lines = body.splitlines()
            if not lines or not lines[0].startswith("-- "):
                raise ValueError(f"{path.name}: query {header['name']!r} has no description line")
            name = header["name"]
            if name in queries:
                raise ValueError(f"{path.name}: query {name!r} is defined twice")
            # Files are part of the package, not user input: literal SQL.
            queries[name] = body
    return queries


def get(name: str) -> LiteralString:
    """The SQL text of query ``name``."""
    try:
        return load_all()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in {QUERIES_DIR}") from None
