"""The install's copies match their single sources: CRDs in manifests/ and in the chart, the RBAC
the chart reads. (manifests/broker.yaml, rendered by helm, is checked in tests/e2e/test_chart.py.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def sync_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_install", REPO / "hack" / "sync-install.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_copies_match_their_sources() -> None:
    diff = sync_module().differences(helm=None)
    assert not diff, "out of date (python3 hack/sync-install.py fixes it):\n" + "\n".join(diff)


def test_the_chart_ships_every_crd_and_kopfs_peering_crd() -> None:
    chart = {p.name for p in (REPO / "charts" / "execution-broker" / "crds").glob("*.yaml")}
    assert chart == {p.name for p in (REPO / "crds").glob("*.yaml")} | {"kopf-peering.yaml"}


def test_a_changed_source_is_reported(tmp_path: Path) -> None:
    sync = sync_module()
    for d in (
        "crds",
        "manifests/crds",
        "charts/execution-broker/crds",
        "charts/execution-broker/files",
        "hack",
    ):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "crds" / "a.yaml").write_text("kind: CustomResourceDefinition\n")
    (tmp_path / "manifests" / "crds" / "kopf-peering.yaml").write_text("kind: CustomResourceDefinition\n")
    for name in ("rbac.yaml", "api-rbac.yaml", "peers-rbac.yaml"):
        (tmp_path / "manifests" / name).write_text("kind: ServiceAccount\n")
    assert sync.sync(tmp_path)
    assert sync.differences(tmp_path) == []
    (tmp_path / "crds" / "a.yaml").write_text("kind: CustomResourceDefinition  # changed\n")
    (tmp_path / "charts" / "execution-broker" / "crds" / "old.yaml").write_text("")
    assert sync.differences(tmp_path) == [
        "differs: charts/execution-broker/crds/a.yaml",
        "differs: manifests/crds/a.yaml",
        "stale:   charts/execution-broker/crds/old.yaml",
    ]
