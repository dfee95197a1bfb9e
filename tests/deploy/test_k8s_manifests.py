"""deploy/k8s: every manifest validated against the Kubernetes OpenAPI schemas (offline,
strict: unknown fields fail), KEDA's resources against their documented fields, and the
cross-references between files (names, labels, ports, queues, grace periods) checked.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.test_dockerfile import DOCKERFILE, env_of, parse_dockerfile
from traderctl.worker import intervals
from traderctl.worker.config import ENV_VARS, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
INTERVALS = list(intervals.INTERVALS)
DESIGN_REPLICAS = {"1m": 3, "5m": 2, "15m": 1, "30m": 1, "1h": 1, "4h": 1, "1d": 1}
#: Oldest Kubernetes minor the manifests must still fit, and the newest schema shipped.
K8S_VERSIONS = ["1.28.0", kubernetes_validate.utils.latest_version()]
BASE_FILES = {
    "namespace.yaml",
    "configmap.yaml",
    "migrate-job.yaml",
    "market-data.yaml",
    "workers.yaml",
    "pdb.yaml",
}
SECRET_NAME = "traderctl-database"


@functools.cache
def _parse(name: str) -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(doc for doc in yaml.load_all((K8S / name).read_text(), Loader=loader) if doc)


def load(name: str) -> list[dict[str, Any]]:
    """The documents of one file (parsed once: copy before changing one)."""
    return list(_parse(name))


def manifest_files() -> list[str]:
    return sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def all_docs() -> list[tuple[str, dict[str, Any]]]:
    return [(name, doc) for name in manifest_files() for doc in load(name)]


def by_kind(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    files = [name] if name else manifest_files()
    return [doc for f in files for doc in load(f) if doc["kind"] == kind]


def deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in by_kind("Deployment")}


def worker_deployments() -> dict[str, dict[str, Any]]:
    """interval -> Deployment running `worker --intervals <interval>`."""
    found: dict[str, dict[str, Any]] = {}
    for dep in deployments().values():
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        if args[0] == "worker":
            for interval in args[args.index("--intervals") + 1].split(","):
                assert interval not in found, f"{interval} served twice"
                found[interval] = dep
    return found


# --- Kubernetes schemas ------------------------------------------------------------------


def _k8s_params() -> list[Any]:
    return [
        pytest.param(doc, version, id=f"{name}:{doc['kind']}/{doc['metadata']['name']}@{version}")
        for name, doc in all_docs()
        if not doc["apiVersion"].startswith("keda.sh/")
        for version in K8S_VERSIONS
    ]


@pytest.mark.parametrize(("doc", "version"), _k8s_params())
def test_valid_against_kubernetes_schema(doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_has_teeth() -> None:
    dep = copy.deepcopy(deployments()["worker-1m"])
    dep["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSIONS[-1], strict=True)


def test_every_file_has_only_known_kinds() -> None:
    kinds = {(doc["apiVersion"], doc["kind"]) for _, doc in all_docs()}
    assert kinds == {
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("batch/v1", "Job"),
        ("apps/v1", "Deployment"),
        ("policy/v1", "PodDisruptionBudget"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
    }
    for _, doc in all_docs():
        # The namespace comes from kustomize or `kubectl -n`, never from a manifest.
        assert "namespace" not in doc["metadata"], doc["metadata"]["name"]


# --- kustomization -----------------------------------------------------------------------


def test_kustomization_lists_the_base_only() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kust["kind"] == "Kustomization"
    assert set(kust["resources"]) == BASE_FILES
    assert all((K8S / f).is_file() for f in kust["resources"])
    # Templates and the two mutually exclusive autoscalers stay out of `apply -k`.
    assert set(manifest_files()) - BASE_FILES == {"secret.example.yaml", "keda.yaml", "hpa.yaml"}
    (ns,) = by_kind("Namespace")
    assert kust["namespace"] == ns["metadata"]["name"]
    (image,) = kust["images"]
    for name, doc in all_docs():
        pod = _pod_spec(doc)
        if pod:
            for container in pod["containers"]:
                assert container["image"] == image["name"], f"{name}: {container['name']}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_builds() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (image,) = kust["images"]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == kust["namespace"]
        pod = _pod_spec(doc)
        if pod:
            assert pod["containers"][0]["image"] == f"{image['newName']}:{image['newTag']}"
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


# --- pods ----------------------------------------------------------------------------------


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "Job"):
        spec: dict[str, Any] = doc["spec"]["template"]["spec"]
        return spec
    return None


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {
    None: 1,
    "m": 0.001,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str | int) -> float:
    match = _QUANTITY.match(str(value))
    assert match, f"not a Kubernetes quantity: {value!r}"
    return float(match.group(1)) * _FACTORS[match.group(2)]


def _runtime_uid() -> int:
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    (user,) = stages[-1].all("USER")
    return int(user.split(":")[0])


def test_pods_are_restricted_non_root_with_requests_and_limits() -> None:
    uid = _runtime_uid()
    for name, doc in all_docs():
        pod = _pod_spec(doc)
        if not pod:
            continue
        where = f"{name}:{doc['metadata']['name']}"
        sec = pod["securityContext"]
        assert sec["runAsNonRoot"] is True and sec["runAsUser"] == uid, where
        assert sec["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        for container in pod["containers"]:
            csec = container["securityContext"]
            assert csec["allowPrivilegeEscalation"] is False, where
            assert csec["readOnlyRootFilesystem"] is True, where
            assert csec["capabilities"]["drop"] == ["ALL"], where
            # Read-only root: /tmp (TRADERCTL_DATA_DIR lives there) is an emptyDir.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], where
            res = container["resources"]
            for key in ("cpu", "memory"):
                assert quantity(res["requests"][key]) <= quantity(res["limits"][key]), where
            env = {e["name"]: e for e in container["env"]}
            assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": SECRET_NAME,
                "key": "DATABASE_URL",
            }, where
            assert container["envFrom"] == [{"configMapRef": {"name": "traderctl-config"}}]


def test_selectors_match_pod_labels() -> None:
    for dep in by_kind("Deployment"):
        selector = dep["spec"]["selector"]["matchLabels"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), dep["metadata"]["name"]


def test_worker_pool_per_interval_with_design_sizing() -> None:
    workers = worker_deployments()
    assert sorted(workers, key=INTERVALS.index) == INTERVALS
    for interval, dep in workers.items():
        assert dep["metadata"]["name"] == f"worker-{interval}"
        assert dep["spec"]["replicas"] == DESIGN_REPLICAS[interval]
        # Surge before stopping: a rollout never lowers capacity.
        assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_workers_outlive_their_shutdown_grace() -> None:
    """SIGKILL must not come before the worker processes' grace (TRADERCTL_WORKER_SHUTDOWN_GRACE_SECONDS)
    and the pool supervisor's extra 10 s of waiting for them have run out."""
    (config,) = by_kind("ConfigMap")
    worker_grace = load_settings(config["data"]).shutdown_grace_seconds
    assert worker_grace > 0
    for interval, dep in worker_deployments().items():
        grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= worker_grace + 10 + 5, interval


def test_worker_memory_fits_every_isolate() -> None:
    """limit >= concurrency × (300 MiB per process + TRADERCTL_FILTER_MEMORY_MB of V8 heap)."""
    (config,) = by_kind("ConfigMap")
    heap_mb = load_settings(config["data"]).filter_memory_mb
    for interval, dep in worker_deployments().items():
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        concurrency = int(args[args.index("--concurrency") + 1])
        limit = quantity(container["resources"]["limits"]["memory"])
        assert limit >= concurrency * (300 + heap_mb) * 2**20, interval
        # CPU-bound processes: one core each at most, at least half a core requested each.
        assert quantity(container["resources"]["limits"]["cpu"]) <= concurrency, interval
        assert quantity(container["resources"]["requests"]["cpu"]) >= concurrency / 2, interval


def test_probes_fetch_metrics_like_the_image_healthcheck() -> None:
    """The metrics server listens on loopback, so the probes are the image's HEALTHCHECK
    command run in the container (test_dockerfile runs that command against a server)."""
    config = by_kind("ConfigMap")[0]["data"]
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    healthcheck = json.loads(stages[-1].all("HEALTHCHECK")[0].partition(" CMD ")[2])
    for name, dep in deployments().items():
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        port = int(args[args.index("--metrics-port") + 1])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == port, name
        assert int(config["TRADERCTL_METRICS_PORT"]) == port, name
        if args[0] == "worker":
            # Process i of the pool serves on port + i, reachable for scraping.
            concurrency = int(args[args.index("--concurrency") + 1])
            assert sorted(ports.values()) == [port + i for i in range(concurrency)], name
            assert args[args.index("--metrics-addr") + 1] == "0.0.0.0", name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["exec"]["command"] == healthcheck, f"{name} {probe}"
            assert container[probe].get("timeoutSeconds", 1) >= 5, f"{name} {probe}"
        # The startup probe, not the liveness probe, covers slow starts.
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60, name


def test_market_data_is_a_single_recreated_pod() -> None:
    dep = deployments()["market-data"]
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["args"][:3] == ["market-data", "--source", "binance"]
    autoscaled = {d["spec"]["scaleTargetRef"]["name"] for d in by_kind("ScaledObject")}
    autoscaled |= {d["spec"]["scaleTargetRef"]["name"] for d in by_kind("HorizontalPodAutoscaler")}
    assert "market-data" not in autoscaled


def test_migrate_job() -> None:
    (job,) = by_kind("Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["args"] == ["db", "migrate"]
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_disruption_budget_per_worker_pool() -> None:
    pdbs = {p["metadata"]["name"]: p for p in by_kind("PodDisruptionBudget")}
    for interval, dep in worker_deployments().items():
        pdb = pdbs[dep["metadata"]["name"]]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        # maxUnavailable (not minAvailable): single-replica pools must stay drainable.
        assert pdb["spec"]["maxUnavailable"] == 1, interval


def test_configmap_holds_only_known_non_secret_settings() -> None:
    (config,) = by_kind("ConfigMap")
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    known = set(ENV_VARS) | set(env_of(stages[-1]))
    assert set(config["data"]) <= known
    assert "DATABASE_URL" not in config["data"]
    assert all(isinstance(v, str) for v in config["data"].values())


def test_secret_template_uses_a_session_capable_port() -> None:
    (secret,) = load("secret.example.yaml")
    assert secret["metadata"]["name"] == SECRET_NAME
    url = secret["stringData"]["DATABASE_URL"]
    # 6543 is Supabase's transaction pooler: no LISTEN/NOTIFY, no session state.
    assert ":5432/" in url and ":6543" not in url


# --- KEDA ----------------------------------------------------------------------------------
# KEDA's CRDs are not in the Kubernetes schemas, so these schemas restate the fields KEDA
# documents for ScaledObject and TriggerAuthentication (keda.sh/v1alpha1, KEDA 2.x) and for
# the `postgresql` and `cpu` scalers. Unknown fields fail, as in strict mode above.

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUMERIC_STR = {"type": "string", "pattern": r"^\d+(\.\d+)?$"}
_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": {"type": "object", "additionalProperties": _STR},
        "annotations": {"type": "object", "additionalProperties": _STR},
    },
    "additionalProperties": False,
}
_POSTGRESQL_METADATA = {
    "type": "object",
    "required": ["query", "targetQueryValue"],
    "properties": {
        "query": _STR,
        "targetQueryValue": _NUMERIC_STR,
        "activationTargetQueryValue": _NUMERIC_STR,
        "connectionFromEnv": _STR,
        "host": _STR,
        "port": _STR,
        "userName": _STR,
        "dbName": _STR,
        "sslmode": _STR,
        "passwordFromEnv": _STR,
        "metricName": _STR,
    },
    "additionalProperties": False,
}
_CPU_METADATA = {
    "type": "object",
    "required": ["value"],
    "properties": {"value": _NUMERIC_STR, "containerName": _STR},
    "additionalProperties": False,
}
SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "apiVersion": _STR,
                        "kind": _STR,
                        "name": _STR,
                        "envSourceContainerName": _STR,
                    },
                    "additionalProperties": False,
                },
                "pollingInterval": _INT,
                "cooldownPeriod": _INT,
                "initialCooldownPeriod": _INT,
                "idleReplicaCount": _INT,
                "minReplicaCount": _INT,
                "maxReplicaCount": _INT,
                "fallback": {
                    "type": "object",
                    "required": ["failureThreshold", "replicas"],
                    "properties": {"failureThreshold": _INT, "replicas": _INT, "behavior": _STR},
                    "additionalProperties": False,
                },
                "advanced": {
                    "type": "object",
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "properties": {"name": _STR, "behavior": {"type": "object"}},
                            "additionalProperties": False,
                        },
                        "scalingModifiers": {"type": "object"},
                    },
                    "additionalProperties": False,
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": _STR,
                            "name": _STR,
                            "useCachedMetrics": {"type": "boolean"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "metadata": {"type": "object", "additionalProperties": _STR},
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": _STR,
                                    "kind": {
                                        "enum": [
                                            "TriggerAuthentication",
                                            "ClusterTriggerAuthentication",
                                        ]
                                    },
                                },
                                "additionalProperties": False,
                            },
                        },
                        "additionalProperties": False,
                        "allOf": [
                            {
                                "if": {"properties": {"type": {"const": "postgresql"}}},
                                "then": {"properties": {"metadata": _POSTGRESQL_METADATA}},
                            },
                            {
                                "if": {"properties": {"type": {"const": "cpu"}}},
                                "then": {
                                    "required": ["metricType"],
                                    "properties": {
                                        "metadata": _CPU_METADATA,
                                        "metricType": {"enum": ["Utilization", "AverageValue"]},
                                    },
                                },
                            },
                        ],
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
TRIGGER_AUTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "minProperties": 1,
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["parameter", "name", "key"],
                        "properties": {"parameter": _STR, "name": _STR, "key": _STR},
                        "additionalProperties": False,
                    },
                },
                "env": {"type": "array"},
                "configMapTargetRef": {"type": "array"},
                "podIdentity": {"type": "object"},
                "hashiCorpVault": {"type": "object"},
                "azureKeyVault": {"type": "object"},
                "awsSecretManager": {"type": "object"},
                "gcpSecretManager": {"type": "object"},
                "boundServiceAccountToken": {"type": "array"},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}


def scaled_objects() -> dict[str, dict[str, Any]]:
    return {d["spec"]["scaleTargetRef"]["name"]: d for d in by_kind("ScaledObject", "keda.yaml")}


def test_keda_resources_match_documented_fields() -> None:
    docs = load("keda.yaml")
    assert {d["kind"] for d in docs} == {"ScaledObject", "TriggerAuthentication"}
    for doc in docs:
        schema = SCALED_OBJECT_SCHEMA if doc["kind"] == "ScaledObject" else TRIGGER_AUTH_SCHEMA
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def test_keda_schema_has_teeth() -> None:
    so = copy.deepcopy(scaled_objects()["worker-1m"])
    so["spec"]["triggers"][0]["metadata"]["targetQueryValue"] = 100  # must be a string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(so, SCALED_OBJECT_SCHEMA)
    so = copy.deepcopy(scaled_objects()["worker-1m"])
    so["spec"]["triggers"][0]["metadata"]["querry"] = "select 1"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(so, SCALED_OBJECT_SCHEMA)


def test_each_pool_scales_on_its_own_queue() -> None:
    scaled = scaled_objects()
    (auth,) = by_kind("TriggerAuthentication", "keda.yaml")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "connection", "name": SECRET_NAME, "key": "DATABASE_URL"}
    ]
    workers = worker_deployments()
    assert set(scaled) == {d["metadata"]["name"] for d in workers.values()}
    for interval, dep in workers.items():
        so = scaled[dep["metadata"]["name"]]
        assert so["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": dep["metadata"]["name"],
        }
        triggers = {t["type"]: t for t in so["spec"]["triggers"]}
        assert set(triggers) == {"postgresql", "cpu"}
        pg = triggers["postgresql"]
        assert pg["authenticationRef"] == {"name": auth["metadata"]["name"]}
        query = pg["metadata"]["query"]
        assert re.search(r"\bfrom procrastinate\.procrastinate_jobs\b", query)
        assert re.findall(r"queue_name = '([^']+)'", query) == [f"traders.{interval}"]
        assert "status = 'todo'" in query
        assert float(pg["metadata"]["targetQueryValue"]) > 0
        # The floor is the original design's sizing; the ceiling is above it.
        assert so["spec"]["minReplicaCount"] == DESIGN_REPLICAS[interval]
        assert so["spec"]["maxReplicaCount"] > so["spec"]["minReplicaCount"]
        # cpu scaling needs cpu requests on the target's containers.
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        assert "cpu" in container["resources"]["requests"]


def test_keda_behavior_is_a_valid_hpa_behavior() -> None:
    """KEDA copies `advanced.horizontalPodAutoscalerConfig` into the HPA it creates, so it
    must pass the HPA schema: check it inside an equivalent autoscaling/v2 object."""
    for name, so in scaled_objects().items():
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": f"keda-hpa-{name}"},
            "spec": {
                "scaleTargetRef": so["spec"]["scaleTargetRef"],
                "minReplicas": so["spec"]["minReplicaCount"],
                "maxReplicas": so["spec"]["maxReplicaCount"],
                "behavior": so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
            },
        }
        kubernetes_validate.validate(hpa, K8S_VERSIONS[-1], strict=True)


def test_hpa_alternative_mirrors_keda_bounds() -> None:
    scaled = scaled_objects()
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind("HorizontalPodAutoscaler")}
    assert set(hpas) == set(scaled)
    for name, hpa in hpas.items():
        so = scaled[name]
        assert hpa["spec"]["minReplicas"] == so["spec"]["minReplicaCount"], name
        assert hpa["spec"]["maxReplicas"] == so["spec"]["maxReplicaCount"], name
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu", name
        keda_behavior = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert hpa["spec"]["behavior"] == keda_behavior, name
