"""`traderctl db …` as a subprocess, against its own embedded cluster."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TRADERCTL = [sys.executable, "-m", "traderctl"]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRADERCTL, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture
def data_env() -> Iterator[dict[str, str]]:
    root = Path(tempfile.mkdtemp(prefix="traderctl-cli-"))
    root.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["TRADERCTL_DATA_DIR"] = str(root / "data")
    try:
        yield env
    finally:
        run("db", "stop", env=env)
        shutil.rmtree(root, ignore_errors=True)


def test_start_migrate_status_url_stop(data_env: dict[str, str]) -> None:
    first = run("db", "start", env=data_env)
    assert first.returncode == 0, first.stderr
    assert "started embedded Postgres" in first.stderr
    url = first.stdout.strip()
    assert url.startswith("postgresql://postgres@127.0.0.1:")

    second = run("db", "start", env=data_env)
    assert second.returncode == 0
    assert "already running" in second.stderr

    migrated = run("db", "migrate", env=data_env)
    assert migrated.returncode == 0, migrated.stderr
    assert "applied 20261126000100_create_procrastinate_schema" in migrated.stderr
    again = run("db", "migrate", env=data_env)
    assert again.stdout.strip() == "0 migration(s) applied"

    status = run("db", "status", "--json", env=data_env)
    assert status.returncode == 0, status.stderr
    assert '"pending_migrations": []' in status.stdout
    assert run("db", "url", env=data_env).stdout.strip() == url

    stopped = run("db", "stop", env=data_env)
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    down = run("db", "status", env=data_env)
    assert down.returncode == 1


def test_taken_port_is_replaced_by_a_free_one(data_env: dict[str, str]) -> None:
    assert run("db", "start", env=data_env).returncode == 0
    port_file = Path(data_env["TRADERCTL_DATA_DIR"]) / "port"
    old_port = int(port_file.read_text())
    assert run("db", "stop", env=data_env).returncode == 0
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        restarted = run("db", "start", env=data_env)
        assert restarted.returncode == 0, restarted.stderr
        assert int(port_file.read_text()) != old_port


def test_unreachable_database_url_is_one_line_without_password() -> None:
    env = dict(os.environ, DATABASE_URL="postgresql://admin:s3cret@127.0.0.1:1/prod")
    result = run("db", "migrate", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1:1/prod" in lines[0]
    assert "s3cret" not in result.stderr
    assert "DATABASE_URL" in lines[0]


def test_embedded_only_commands_refuse_external_database() -> None:
    env = dict(os.environ, DATABASE_URL="postgresql://u:p@127.0.0.1:1/x")
    result = run("db", "start", env=env)
    assert result.returncode == 1
    assert "DATABASE_URL is set" in result.stderr


def test_help_lists_commands() -> None:
    result = run("--help", env=dict(os.environ))
    assert result.returncode == 0
    assert "db" in result.stdout
