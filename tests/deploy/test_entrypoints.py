"""Every command line the deployment files run exists in `traderctl`, with those flags.

The image's ENTRYPOINT is the venv's `traderctl` console script; compose `command:`s and
Kubernetes `args:` are appended to it. The console script itself runs the image's default
command; every other line is invoked on the same typer app with `--help` appended: click
rejects an unknown subcommand or option before it prints help, so exit 0 means the command
line parses (values are not converted under --help).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.deploy.test_compose import COMPOSE, interpolate
from tests.deploy.test_dockerfile import DOCKERFILE, parse_dockerfile
from tests.deploy.test_k8s_manifests import all_docs
from traderctl.worker.config import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]


def _traderctl() -> list[str]:
    script = Path(sys.executable).parent / "traderctl"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "traderctl"]


def command_lines() -> dict[tuple[str, ...], list[str]]:
    """argv (after `traderctl`) -> where it is used."""
    found: dict[tuple[str, ...], list[str]] = {}
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    (cmd,) = stages[-1].all("CMD")
    found.setdefault(tuple(json.loads(cmd)), []).append("Dockerfile CMD")
    compose = interpolate(yaml.safe_load(COMPOSE.read_text()), {})
    for name, svc in compose["services"].items():
        if svc.get("build", {}).get("target") == "runtime":
            found.setdefault(tuple(svc["command"]), []).append(f"compose {name}")
    for file, doc in all_docs():
        if doc["kind"] in ("Deployment", "Job"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                found.setdefault(tuple(container["args"]), []).append(
                    f"{file} {doc['metadata']['name']}"
                )
    return found


def test_the_deployment_files_use_every_process() -> None:
    subcommands = {argv[0] for argv in command_lines()}
    assert {"worker", "market-data", "db", "scheduler"} <= subcommands


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ENV_VARS}


def test_console_script_runs_the_image_default_command() -> None:
    """What `docker run IMAGE` does: the venv's `traderctl` with the Dockerfile's CMD."""
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    cmd = json.loads(stages[-1].all("CMD")[0])
    out = subprocess.run(
        [*_traderctl(), *cmd],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout
    for subcommand in ("worker", "market-data", "db", "scheduler"):
        assert subcommand in out.stdout


# Parses every line in one child process (a traderctl start costs most of a second; the
# test process itself stays free of the CLI's logging setup).
_DRIVER = """
import json, sys
from typer.testing import CliRunner
from traderctl.cli.main import app
runner = CliRunner()
results = {}
for argv in json.load(sys.stdin):
    result = runner.invoke(app, [*argv, "--help"])
    words = [l.strip(" │╭╮╰╯─") for l in result.output.splitlines() if any(c.isalnum() for c in l)]
    errors = [w for w in words if "No such" in w or "Invalid" in w or "Missing" in w]
    tail = errors[:1] or words[-1:] or [""]
    results[json.dumps(argv)] = [result.exit_code, "Usage:" in result.output, tail[0]]
print(json.dumps(results))
"""


def test_every_command_line_parses() -> None:
    lines = command_lines()
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps([list(argv) for argv in lines]),
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    failures = []
    for argv, where in lines.items():
        code, usage, last = results[json.dumps(list(argv))]
        if code != 0 or not usage:
            failures.append(
                f"traderctl {' '.join(argv)} (in {', '.join(where)}): exit {code}: {last}"
            )
    assert not failures, "\n".join(failures)
