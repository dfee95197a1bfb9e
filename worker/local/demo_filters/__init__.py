"""Realistic browser trader filters, shipped as .js files (demo seeding, tests, benchmarks).

Why files: the same bodies are run by our runtime, by bench/node_baseline.js (the browser's
way of calling them) and by the demo data, so they live as plain JavaScript that any of those
can read. Each file starts with a header of ``// key: value`` lines giving the trader's
``name``, ``refreshInterval`` and ``requiredTimeframes`` (comma-separated).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

__all__ = ["DEMO_FILTERS", "DemoFilter", "load_demo_filters"]


@dataclass(frozen=True, kw_only=True)
class DemoFilter:
    """One demo trader filter: its file stem, header metadata and code."""

    key: str
    name: str
    refresh_interval: str
    required_timeframes: tuple[str, ...]
    code: str


def _parse(key: str, code: str) -> DemoFilter:
    header: dict[str, str] = {}
    for line in code.splitlines():
        if not line.startswith("// ") or ":" not in line:
            break
        name, _, value = line[3:].partition(":")
        header[name.strip()] = value.strip()
    return DemoFilter(
        key=key,
        name=header.get("name", key),
        refresh_interval=header.get("refreshInterval", "1m"),
        required_timeframes=tuple(
            tf.strip() for tf in header.get("requiredTimeframes", "").split(",") if tf.strip()
        ),
        code=code,
    )


def load_demo_filters() -> dict[str, DemoFilter]:
    """All demo filters by file stem, in name order."""
    folder = resources.files(__name__)
    out: dict[str, DemoFilter] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".js"):
            key = entry.name[: -len(".js")]
            out[key] = _parse(key, entry.read_text(encoding="utf-8"))
    return out


DEMO_FILTERS: dict[str, DemoFilter] = load_demo_filters()
