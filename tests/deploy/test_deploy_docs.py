"""docs/deploy.md and deploy/README.md stay in step with the files they describe."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.test_k8s_manifests import K8S, SECRET_NAME, manifest_files, scaled_objects

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deploy.md"
README = ROOT / "deploy" / "README.md"


def _squash(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def test_guide_lists_every_manifest() -> None:
    text = GUIDE.read_text()
    for name in [*manifest_files(), "kustomization.yaml"]:
        assert f"`{name}`" in text, name
    for mentioned in set(re.findall(r"deploy/k8s/([\w.-]+\.yaml)", text + README.read_text())):
        assert (K8S / mentioned).is_file(), mentioned


def test_guide_shows_the_real_queue_depth_query() -> None:
    (block,) = re.findall(r"```sql\n\s*(select count\(\*\).*?)```", GUIDE.read_text(), re.S)
    trigger = next(
        t for t in scaled_objects()["worker-1m"]["spec"]["triggers"] if t["type"] == "postgresql"
    )
    assert _squash(block) == _squash(trigger["metadata"]["query"])


def test_secret_commands_create_the_secret_the_pods_read() -> None:
    for text in (GUIDE.read_text(), README.read_text()):
        names = re.findall(r"create secret generic ([\w-]+)", text)
        assert names and set(names) == {SECRET_NAME}


def test_guide_warns_against_the_transaction_pooler() -> None:
    text = GUIDE.read_text()
    assert "6543" in text and "LISTEN/NOTIFY" in text and "session pooler" in text
