"""What a user gets from `pip install traderctl`: the wheel, in a fresh venv, outside the checkout.

Nothing here may see the repository: the venv is new (no editable install, no
``--system-site-packages``), every command runs from an empty directory, and the
environment carries no PYTHONPATH. So a file the wheel forgot (a migration, a SQL file,
the JS runtime, a demo filter) or an import of a top-level ``worker``/``cli`` fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # World-readable: as root the embedded server runs as `postgres` and must enter it.
    root = Path(tempfile.mkdtemp(prefix="traderctl-wheel-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def wheel(workdir: Path) -> Path:
    dist = workdir / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = dist.glob("traderctl-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(workdir: Path, wheel: Path) -> Path:
    """bin/ of a fresh venv with the wheel (and its pinned dependencies) installed."""
    env_dir = workdir / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bin_dir = env_dir / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=900,
        cwd=workdir,
    )
    return bin_dir


def _env(workdir: Path, bin_dir: Path) -> dict[str, str]:
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"
    env["TRADERCTL_DATA_DIR"] = str(workdir / "data")
    return env


def _run(
    bin_dir: Path, workdir: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    away = workdir / "elsewhere"
    away.mkdir(exist_ok=True)
    return subprocess.run(
        list(args),
        cwd=away,
        env=_env(workdir, bin_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_wheel_installs_only_the_traderctl_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if ".dist-info/" not in n}
    assert top == {"traderctl"}
    for name in MIGRATIONS:
        assert f"traderctl/migrations/{name}" in names
    for needed in (
        "traderctl/sql/local/00_roles_and_auth.sql",
        "traderctl/sql/views/01_alerts.sql",
        "traderctl/worker/sql/worker.sql",
        "traderctl/worker/sandbox/js/helpers.js",
        "traderctl/worker/sandbox/js/runner.js",
        "traderctl/worker/local/demo_filters/rsi_oversold.js",
    ):
        assert needed in names


@pytest.mark.slow
def test_installed_traderctl_runs_the_product_outside_the_checkout(
    workdir: Path, installed: Path
) -> None:
    python = str(installed / "python")
    generic = _run(installed, workdir, python, "-c", "import worker")
    assert generic.returncode != 0 and "No module named 'worker'" in generic.stderr
    assert _run(installed, workdir, python, "-m", "traderctl", "--help").returncode == 0

    traderctl = str(installed / "traderctl")
    started = _run(installed, workdir, traderctl, "db", "start")
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        migrated = _run(installed, workdir, traderctl, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        status = _run(installed, workdir, traderctl, "db", "status", "--json")
        assert status.returncode == 0, status.stderr[-2000:]
        assert json.loads(status.stdout)["pending_migrations"] == []

        up = _run(installed, workdir, traderctl, "up", "--for", "60", timeout=300)
        assert up.returncode == 0, up.stderr[-3000:]
        report = json.loads(up.stdout.strip().splitlines()[-1])
        assert sum(t["run_count"] for t in report["traders"]) > 0
        assert sum(t["signal_count"] for t in report["traders"]) > 0, "no signal in 60 s"
    finally:
        stopped = _run(installed, workdir, traderctl, "db", "stop")
    assert stopped.returncode == 0, stopped.stderr[-2000:]
