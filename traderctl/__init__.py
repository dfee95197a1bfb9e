"""traderctl: run users' browser trading filters on a schedule, Postgres-native.

The distribution installs this one import namespace. Its subpackages live in the
repository's top-level folders: ``traderctl.worker`` is ``worker/`` (the runtime),
``traderctl.cli`` is ``cli/`` (the command line). The files the program reads at run time
(``migrations/``, ``sql/``, the worker's named queries and the JavaScript runtime) ship
inside the package; :mod:`traderctl.resources` finds them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("traderctl")
except PackageNotFoundError:  # a checkout on sys.path without an install
    __version__ = "0+unknown"
