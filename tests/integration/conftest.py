"""Fixtures for tests against a real cluster: KUBECONFIG if set, else the local cluster
(hack/cluster.sh up). Shared by the operator, API and harness tests; helpers live in
tests/support/kube.py.

Fixtures: ``kubeconfig`` (Path), ``kube`` (Kubectl bound to it), ``make_namespace`` (factory of
throw-away restricted namespaces, deleted after the test), ``namespace`` (one such namespace),
``k8s`` (a kubernetes_asyncio ApiClient, closed after the test), ``stager_image`` (the eb-stager
image on the local cluster's node).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `tests.support` without -m pytest

from tests.support.kube import (
    REPO,
    Kubectl,
    api_client,
    find_kubeconfig,
    is_local_cluster,
    namespace_manifest,
    unique_name,
)

from eb_operator.model.platform import STAGER_IMAGE

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    path = find_kubeconfig()
    if path is None:
        pytest.fail(
            "no cluster for integration tests: run `hack/cluster.sh up` (or set KUBECONFIG to a cluster)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def kube(kubeconfig: Path) -> Kubectl:
    k = Kubectl(kubeconfig)
    if not k.ready():
        pytest.fail(
            f"the cluster in {kubeconfig} does not answer /readyz: `hack/cluster.sh status` shows why; "
            "`hack/cluster.sh up` starts the local one",
            pytrace=False,
        )
    return k


@pytest.fixture(scope="session")
def stager_image(kubeconfig: Path) -> str:
    """The eb-stager image in the local cluster's containerd (hack/build-stager-image.sh: built
    once, cached by content, imported when containerd lacks it). Data is staged with it, and a
    Pod made before its offered start waits in it; another cluster must have it already."""
    if is_local_cluster(kubeconfig):
        script = REPO / "hack" / "build-stager-image.sh"
        subprocess.run(["bash", str(script)], check=True, timeout=1800, stdout=subprocess.DEVNULL)
    return STAGER_IMAGE


@pytest.fixture
def make_namespace(kube: Kubectl, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """``make_namespace(prefix=None, labels=None) -> name``: a fresh namespace enforcing the
    restricted PodSecurity profile, deleted (without waiting) when the test ends."""
    created: list[str] = []

    def make(prefix: str | None = None, labels: dict[str, str] | None = None) -> str:
        name = unique_name(prefix or f"t-{request.node.name}", max_len=40)
        kube.create(namespace_manifest(name, labels))
        created.append(name)
        return name

    yield make
    for name in created:
        kube.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def namespace(make_namespace: Callable[..., str]) -> str:
    return make_namespace()


@pytest.fixture
async def k8s(kubeconfig: Path) -> AsyncIterator[Any]:
    """A kubernetes_asyncio ApiClient for the test cluster."""
    client = await api_client(kubeconfig)
    try:
        yield client
    finally:
        await client.close()
