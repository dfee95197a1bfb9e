"""CPU time and peak memory of process trees, read from /proc (no psutil).

Why: the end-to-end bench charges CPU to the worker processes and to Postgres separately.
A tree's CPU is, per live process, ``utime + stime`` plus ``cutime + cstime`` (children it
has already waited for: Postgres backends that exited are reaped by the postmaster, so
their CPU stays visible on it). Take a :class:`TreeSample` before and after, and subtract.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "TreeSample",
    "cmdline",
    "descendants",
    "peak_rss_mb",
    "process_cpu_seconds",
    "sample_tree",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state, field 3)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _parents() -> dict[int, int]:
    """pid -> ppid of every process."""
    out: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            out[int(entry.name)] = int(fields[1])
    return out


def descendants(root: int) -> list[int]:
    """``root`` and every process below it that is alive now."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out: list[int] = []
    todo = [root] if root in parents else []
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def process_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of one process, in seconds (0 when gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # stat fields 14-17 (utime, stime, cutime, cstime) are indexes 11-14 here.
    return sum(int(v) for v in fields[11:15]) / _CLK_TCK


@dataclass(frozen=True, kw_only=True)
class TreeSample:
    """CPU seconds per live process of a tree at one instant."""

    cpu: dict[int, float]

    @property
    def total(self) -> float:
        return sum(self.cpu.values())

    def since(self, earlier: TreeSample) -> float:
        """CPU seconds used between ``earlier`` and this sample (processes that appeared
        count from zero; processes that exited unreaped are lost, reaped ones are on their
        parent)."""
        return sum(cpu - earlier.cpu.get(pid, 0.0) for pid, cpu in self.cpu.items())


def sample_tree(root: int) -> TreeSample:
    """CPU of ``root`` and its descendants now."""
    return TreeSample(cpu={pid: process_cpu_seconds(pid) for pid in descendants(root)})


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process in MiB; 0 when gone."""
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cmdline(pid: int) -> str:
    """The process's command line, space-joined ('' when gone)."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()
