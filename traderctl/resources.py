"""Where the files traderctl reads at run time are: inside the installed package.

Migrations, the local Supabase stand-in, the ops views, the worker's named queries, the
JavaScript runtime and the demo filters are package data, read through
:mod:`importlib.resources` so that a wheel installed anywhere (pip, pipx, a Docker image)
finds them. In a checkout, ``traderctl/`` links to the top-level folders, so the same
calls find the files there (editable installs included).
"""

from __future__ import annotations

from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["local_standin_dir", "migrations_dir", "package_path", "views_dir"]


def package_path(*parts: str) -> Path:
    """A file system path of a directory or file inside the ``traderctl`` package.

    The package is always installed unzipped (wheels are extracted), so ``as_file`` returns
    the real location without copying.
    """
    node: Traversable = files("traderctl")
    for part in parts:
        node = node.joinpath(part)
    with as_file(node) as path:
        return Path(path)


def migrations_dir() -> Path:
    """The schema history (``migrations/``), applied in order by `traderctl db migrate`."""
    return package_path("migrations")


def local_standin_dir() -> Path:
    """SQL standing in for what Supabase provides (roles, auth, realtime publication)."""
    return package_path("sql", "local")


def views_dir() -> Path:
    """The ops views' SQL, one file per view, for operators to read or run."""
    return package_path("sql", "views")
