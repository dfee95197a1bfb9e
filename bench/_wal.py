"""WAL volume between two LSNs, by record kind (pg_waldump --stats), per run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from traderctl.worker.local.embedded_pg import find_bindir

__all__ = ["wal_records_per_run"]


def wal_records_per_run(
    pgdata: Path, start: str, end: str, runs: int, top: int = 8
) -> dict[str, int]:
    """Bytes per run (record + full-page images) of the ``top`` largest WAL record kinds.

    Why: a WAL total says how much, not what; the split (Heap/INSERT, Btree/INSERT_LEAF,
    Heap/HOT_UPDATE, full-page images…) says which table or index to look at. Empty when
    pg_waldump cannot read the range (segments already recycled).
    """
    proc = subprocess.run(
        [
            str(find_bindir() / "pg_waldump"),
            "--path",
            str(pgdata / "pg_wal"),
            "--start",
            start,
            "--end",
            end,
            "--stats=record",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    out: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        # "Heap/INSERT   N (p%)   record size (p%)   FPI size (p%)   combined size (p%)"
        name, _, rest = line.partition(" ")
        numbers = re.findall(r"\d+(?:\.\d+)?", rest)
        if "/" in name and len(numbers) == 8 and int(numbers[6]):
            out[name] = round(int(numbers[6]) / max(1, runs))
    return dict(sorted(out.items(), key=lambda kv: -kv[1])[:top])
