"""`traderctl up --for 90` on a clean data dir: the whole product, headless, then nothing left."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from traderctl.worker.local.demo_seed import demo_traders


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="traderctl-up-"))
    root.chmod(0o755)
    try:
        yield root / "data"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_up_runs_demo_traders_and_cleans_up(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["TRADERCTL_DATA_DIR"] = str(data_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "traderctl", "up", "--for", "90"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    traders = {t["id"]: t for t in report["traders"]}
    expected = {str(t.id) for t in demo_traders()}
    assert expected <= set(traders), "every demo trader is seeded"
    # Every demo trader is due at once (immediate first run), and the 1m ones again later.
    not_run = [t["name"] for t in traders.values() if t["run_count"] < 1]
    assert not_run == [], f"demo traders without a completed run: {not_run}"
    errors = [
        (t["name"], t["last_error"]) for t in traders.values() if t["last_run_status"] == "error"
    ]
    assert errors == []
    assert any(t["interval"] == "1m" and t["run_count"] >= 2 for t in traders.values())
    assert sum(t["signal_count"] for t in traders.values()) > 0, "no signal in 90 s"

    left = [pid for pid in report["pids"] if _alive(pid)]
    assert left == [], f"processes left running: {left}"
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "the database was left running"
