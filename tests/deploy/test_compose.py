"""docker-compose.yml: valid against the Compose Specification, and shaped as designed.

`docker compose config` needs the compose plugin, which these machines lack (the Docker
CLI answers, the plugin does not, and no engine runs). So the file is validated against
the compose-spec JSON schema that check-jsonschema vendors (offline), after the same
`${VAR:-default}` interpolation compose applies, and its shape is checked here. When the
plugin is available, `docker compose config` runs too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from traderctl.worker import intervals
from traderctl.worker.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
INTERVALS = list(intervals.INTERVALS)
# The original design's pool sizes; 30m (absent there) gets one worker like 15m.
DESIGN_REPLICAS = {"1m": 3, "5m": 2, "15m": 1, "30m": 1, "1h": 1, "4h": 1, "1d": 1}
LONG_RUNNING = {"db", "market-data", *(f"worker-{i}" for i in INTERVALS)}

_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's `${VAR}` / `${VAR:-default}` substitution (no nesting needed here)."""
    if isinstance(node, str):
        return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), node)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate(raw, {})


def _schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def test_valid_against_compose_spec_schema(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    schema = _schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    for doc in (raw, compose):
        errors = sorted(validator_cls(schema).iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_catches_mistakes(compose: dict[str, Any]) -> None:
    """The validation above has teeth: a misspelt key and a bad condition are rejected."""
    validator = jsonschema.Draft202012Validator(_schema())
    bad = json.loads(json.dumps(compose))
    bad["services"]["worker-1m"]["restart_policy"] = "always"
    assert not validator.is_valid(bad)
    bad = json.loads(json.dumps(compose))
    bad["services"]["migrate"]["depends_on"]["db"]["condition"] = "service_ready"
    assert not validator.is_valid(bad)


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_compose_config_when_available() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here")
    out = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_worker_pools_cover_every_interval_once(compose: dict[str, Any]) -> None:
    services = compose["services"]
    seen: dict[str, str] = {}
    for name, svc in services.items():
        argv = svc.get("command") or []
        if argv[:1] != ["worker"]:
            continue
        for interval in _flag(argv, "--intervals").split(","):
            assert interval not in seen, f"{interval} served by {seen.get(interval)} and {name}"
            seen[interval] = name
        assert int(_flag(argv, "--concurrency")) >= 1
    assert sorted(seen, key=INTERVALS.index) == INTERVALS
    for interval, replicas in DESIGN_REPLICAS.items():
        svc = services[seen[interval]]
        assert seen[interval] == f"worker-{interval}"
        assert svc["deploy"]["replicas"] == replicas, f"worker-{interval}"
        assert "container_name" not in svc, "replicas need generated names"
        assert "ports" not in svc, "replicas cannot share a host port"


def test_database_has_pg_cron_and_a_volume(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    assert db["build"]["target"] == "postgres"
    settings = dict(arg.split("=", 1) for arg in db["command"][1:] if arg != "-c")
    assert db["command"][0] == "postgres"
    assert settings["shared_preload_libraries"] == "pg_cron"
    assert settings["cron.database_name"] == db["environment"]["POSTGRES_DB"]
    assert settings["cron.timezone"] == "UTC"
    (volume,) = db["volumes"]
    name, _, target = volume.partition(":")
    assert target == "/var/lib/postgresql/data"
    assert name in compose["volumes"]
    assert "pg_isready" in db["healthcheck"]["test"]
    # Published only on loopback.
    assert all(str(p).startswith("127.0.0.1:") for p in db.get("ports", []))


def test_migrate_runs_once_after_db_and_gates_the_rest(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert migrate["healthcheck"] == {"disable": True}
    for name in LONG_RUNNING - {"db"}:
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }, name


def test_app_services_share_one_database_url(compose: dict[str, Any]) -> None:
    db_env = compose["services"]["db"]["environment"]
    expected = (
        f"postgresql://{db_env['POSTGRES_USER']}:{db_env['POSTGRES_PASSWORD']}"
        f"@db:5432/{db_env['POSTGRES_DB']}"
    )
    for name, svc in compose["services"].items():
        if name == "db":
            continue
        assert svc["build"]["target"] == "runtime", name
        assert svc["environment"]["DATABASE_URL"] == expected, name


def _seconds(duration: str) -> float:
    total = 0.0
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration):
        total += float(value) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def test_long_running_services_restart_and_report_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in LONG_RUNNING:
        svc = services[name]
        assert svc["restart"] == "unless-stopped", name
        check = svc["healthcheck"]
        assert check["test"][0] == "CMD" and not check.get("disable"), name
        assert _seconds(check["timeout"]) < _seconds(check["interval"]), name
        if name != "db":
            argv = svc["command"]
            port = _flag(argv, "--metrics-port")
            assert f"127.0.0.1:{port}/metrics" in " ".join(check["test"]), name
            assert svc["environment"]["TRADERCTL_METRICS_PORT"] == port, name


def test_workers_get_time_to_drain_on_stop(compose: dict[str, Any]) -> None:
    """SIGKILL comes after the processes' grace (TRADERCTL_WORKER_SHUTDOWN_GRACE_SECONDS), the pool
    supervisor's extra 10 s and a margin."""
    for interval in INTERVALS:
        svc = compose["services"][f"worker-{interval}"]
        worker_grace = load_settings(svc["environment"]).shutdown_grace_seconds
        assert _seconds(svc["stop_grace_period"]) >= worker_grace + 10 + 5


def test_market_data_is_single_and_scheduler_is_opt_in(compose: dict[str, Any]) -> None:
    services = compose["services"]
    market = services["market-data"]
    assert market["command"][:3] == ["market-data", "--source", "binance"]
    assert market.get("deploy", {}).get("replicas", 1) == 1
    assert services["scheduler"]["command"] == ["scheduler"]
    assert services["scheduler"]["profiles"] == ["scheduler"]


def test_market_source_can_be_switched_to_the_simulator(raw: dict[str, Any]) -> None:
    swapped = interpolate(raw, {"TRADERCTL_MARKET_DATA_SOURCE": "simulator"})
    assert swapped["services"]["market-data"]["command"][2] == "simulator"
