"""`make bench` still runs end to end: 200 traders, one worker, one repetition (~30 s).

It starts its own embedded Postgres, worker subprocess and Node baseline (like the real
bench), so it is marked slow; it checks the JSON line the issue asks for and that every
run was committed with the same matches as the Node baseline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_end_to_end import REQUIRED_KEYS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("node") is None, reason="the Node.js baseline needs node")
def test_end_to_end_bench_reports_every_field() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run_all",
            "--traders",
            "200",
            "--workers",
            "1",
            "--repeat",
            "1",
            "--distinct",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["bench"] == "end_to_end"
    assert [k for k in REQUIRED_KEYS if k not in result] == []
    assert result["traders"] == 200 and result["workers"] == 1
    assert result["runs"] == 200
    assert result["jobs_not_succeeded"] == 0
    assert result["max_data_age_ms"] == 0  # runs used their own slot's data
    assert result["node_disagreements"] == []
    assert result["runs_per_s"] > 0 and result["node_runs_per_s_per_core"] > 0
    # The variant with a code text of its own per trader ran beside the main one.
    assert list(result["variants"]) == ["fast-first", "fast-first-distinct"]
    assert result["variants"]["fast-first-distinct"]["wall_s"] > 0
