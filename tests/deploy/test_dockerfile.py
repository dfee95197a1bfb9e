"""The Dockerfile and .dockerignore, checked without a Docker engine.

No engine runs on the development machines or in CI, so the image is not built here.
What can be checked is: the stages and their pinned bases, the non-root user, that every
file the build copies exists and survives .dockerignore, that the dependency one-liner
reads pyproject.toml correctly, and that the HEALTHCHECK command really probes /metrics
(it is run against a local HTTP server). The entry points are exercised in
test_entrypoints.py.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages): joins continuation lines, drops comments."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    assert not buf, "Dockerfile ends in a line continuation"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest, flags=re.IGNORECASE)
            assert match, f"every stage is named: FROM {rest}"
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], match.group(1))
            stages.append(Stage(name=match.group(2), base=base))
        elif not stages:
            assert keyword == "ARG", f"only ARG may precede the first FROM, not {keyword}"
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for token in shlex.split(args):
            key, _, value = token.partition("=")
            env[key] = value
    return env


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    _, parsed = parse_dockerfile(DOCKERFILE.read_text())
    return {stage.name: stage for stage in parsed}


def test_stages_and_final_target() -> None:
    _, parsed = parse_dockerfile(DOCKERFILE.read_text())
    assert [s.name for s in parsed] == ["postgres", "builder", "runtime"]
    # `docker build .` without --target must produce the app image.
    assert parsed[-1].name == "runtime"


def test_bases_are_pinned_to_patch_releases(stages: dict[str, Stage]) -> None:
    for stage in stages.values():
        _image, _, tag = stage.base.partition(":")
        assert tag and tag != "latest", f"{stage.name}: unpinned base {stage.base}"
        assert re.match(r"\d+\.\d+(\.\d+)?-", tag), f"{stage.name}: {tag} is not a patch tag"
    assert stages["builder"].base == stages["runtime"].base, "venv must run on its build base"
    assert stages["runtime"].base.startswith("python:3.11.")
    assert "-slim" in stages["runtime"].base
    assert stages["postgres"].base.startswith("postgres:15.")


def test_postgres_stage_installs_pg_cron(stages: dict[str, Stage]) -> None:
    (run,) = stages["postgres"].all("RUN")
    assert '"postgresql-${PG_MAJOR}-cron"' in run
    assert "rm -rf /var/lib/apt/lists/*" in run


def test_runtime_is_non_root_with_tini_and_traderctl(stages: dict[str, Stage]) -> None:
    runtime = stages["runtime"]
    (user,) = runtime.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000, "numeric non-root uid (runAsNonRoot checks it)"
    assert gid.isdigit() and int(gid) >= 1000
    assert f"--uid {uid}" in " ".join(runtime.all("RUN"))
    assert json.loads(runtime.all("ENTRYPOINT")[0]) == ["tini", "--", "traderctl"]
    assert json.loads(runtime.all("CMD")[0]) == ["--help"]
    # No build tools or sources beyond what the builder produced.
    copies = runtime.all("COPY")
    assert copies and all(c.startswith("--from=builder ") for c in copies)
    env = env_of(runtime)
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["TRADERCTL_DATA_DIR"].startswith("/tmp/")


def _copy_sources(stage: Stage) -> list[str]:
    sources: list[str] = []
    for args in stage.all("COPY"):
        if args.startswith("--from"):
            continue
        *src, _dest = args.split()
        sources += src
    return sources


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        parts = path.split("/")
        # A pattern matching a parent directory matches everything below it.
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, pat[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, pat) for prefix in prefixes)
        if hit:
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_every_copied_file_exists_and_is_in_the_build_context(stages: dict[str, Stage]) -> None:
    patterns = _dockerignore()
    sources = _copy_sources(stages["builder"])
    assert {
        "pyproject.toml",
        "README.md",
        "traderctl/",
        "worker/",
        "cli/",
        "migrations/",
        "sql/",
    } <= set(sources)
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: missing from the repository"
        assert not _ignored(src.rstrip("/"), patterns), f"COPY {src}: excluded by .dockerignore"
    # What the wheel carries (migrations, SQL) must be inside the context too.
    for path in ROOT.glob("migrations/*.sql"):
        assert not _ignored(path.relative_to(ROOT).as_posix(), patterns)
    for path in ROOT.glob("sql/**/*.sql"):
        assert not _ignored(path.relative_to(ROOT).as_posix(), patterns)


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".traderctl/cluster",
        "tests/conftest.py",
        "worker/__pycache__/config.cpython-311.pyc",
        "traderctl.egg-info/PKG-INFO",
    ],
)
def test_dockerignore_keeps_local_state_out(path: str) -> None:
    assert _ignored(path, _dockerignore())


def test_dependency_layer_reads_pyproject_pins(stages: dict[str, Stage]) -> None:
    """The builder's one-liner, run here, yields exactly pyproject's dependency list."""
    (run,) = [r for r in stages["builder"].all("RUN") if "tomllib" in r]
    match = re.search(r'python -c "(.+?)"\s*>', run)
    assert match
    out = subprocess.run(
        # Inside shell double quotes `\n` reaches Python unchanged, as it does here.
        [sys.executable, "-c", match.group(1)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert out == [dep.replace(" ", "") for dep in pinned]
    assert all("==" in dep for dep in out), "the image installs exact pins only"


def test_project_is_installed_from_its_wheel(stages: dict[str, Stage]) -> None:
    """The image runs what `pip install` of the wheel gives a user, not a checkout."""
    runs = " ".join(stages["builder"].all("RUN"))
    assert "pip wheel" in runs
    assert "pip install --no-deps /tmp/dist/traderctl-*.whl" in runs
    assert " -e " not in runs, "an editable install would hide files missing from the wheel"
    # The runtime stage gets the virtualenv only: no source tree to fall back on.
    assert stages["runtime"].all("COPY") == ["--from=builder /opt/venv /opt/venv"]


# --- HEALTHCHECK -------------------------------------------------------------------------


class _Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/metrics" else 404
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(b"# HELP up 1\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def metrics_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthcheck(stage: Stage) -> list[str]:
    (hc,) = stage.all("HEALTHCHECK")
    options, _, cmd = hc.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options and "--start-period=" in options
    argv = json.loads(cmd)
    assert argv[0] == "python", "exec form, the venv's python (no shell in the check)"
    return [sys.executable, *argv[1:]]


def _run_check(argv: list[str], port: int) -> int:
    env = {k: v for k, v in os.environ.items() if k != "TRADERCTL_METRICS_PORT"}
    env["TRADERCTL_METRICS_PORT"] = str(port)
    return subprocess.run(argv, env=env, capture_output=True, timeout=15).returncode


def test_healthcheck_passes_when_metrics_answer(
    stages: dict[str, Stage], metrics_server: int
) -> None:
    assert _run_check(_healthcheck(stages["runtime"]), metrics_server) == 0


def test_healthcheck_fails_when_nothing_listens(stages: dict[str, Stage]) -> None:
    assert _run_check(_healthcheck(stages["runtime"]), _free_port()) != 0


def test_healthcheck_port_default_matches_env(stages: dict[str, Stage]) -> None:
    runtime = stages["runtime"]
    port = env_of(runtime)["TRADERCTL_METRICS_PORT"]
    assert runtime.all("EXPOSE") == [port]
    assert f"os.environ.get('TRADERCTL_METRICS_PORT', '{port}')" in runtime.all("HEALTHCHECK")[0]
