"""The operator against the real cluster: CRDs applied once, then per test a namespace, an
ExecutionPlatform of its own (selecting nodes no other test uses, or the real node) and the
operator running in-process in the test's event loop.

``broker(spec, nodes=...)`` is the factory; what it returns (:class:`Broker`) creates CRs and
waits on them through watches (never sleeps to synchronise).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator.helpers import API, Broker, OperatorThread, nodes_ready
from tests.support.kube import KWOK_TOLERATION, REAL_NODE, REPO, Kubectl, kwok_node, unique_name, wait_for

from eb_operator.cluster.crs import PLATFORMS, Cluster
from eb_operator.cluster.kube import ClientSettings
from eb_operator.operator import OperatorConfig
from eb_operator.operator.builders.children import LABEL_EXECUTION_NAMESPACE
from eb_operator.operator.builders.namespace import managed_selector
from eb_operator.operator.builders.pod import PodSettings

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # kopf closes its watch streams by garbage collection when the operator's loop ends; the
    # resulting ResourceWarnings belong to that teardown, not to the test.
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"))
            item.add_marker(pytest.mark.filterwarnings("ignore::ResourceWarning"))


@pytest.fixture(scope="session")
def crds(kube: Kubectl) -> None:
    kube.run("apply", "-f", str(REPO / "crds"))
    kube.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))


@pytest.fixture
async def broker(
    crds: None,
    kube: Kubectl,
    make_namespace: Callable[..., str],
    request: pytest.FixtureRequest,
    stager_image: str,
) -> AsyncIterator[Callable[..., Coroutine[Any, Any, Broker]]]:
    """``await broker(platform_spec, nodes=[kwok node specs], pod=..., **OperatorConfig fields)``.
    Its Pods stage data and wait for their start in ``stager_image``."""
    cluster = await Cluster.connect(ClientSettings(pool_size=32))
    started: list[OperatorThread] = []
    brokers: list[Broker] = []

    async def make(
        spec: Mapping[str, Any] | None = None,
        nodes: Sequence[Mapping[str, Any]] = (),
        pod: PodSettings | None = None,
        sweep_seconds: float = 2.0,
        rest_sessions: bool = False,
        **config: Any,
    ) -> Broker:
        """``rest_sessions``: the test's namespace is the REST API's, whose sessions (Executions
        naming their owner) run in owner namespaces."""
        ns = make_namespace()
        if rest_sessions:
            config["sessions_namespace"] = ns
        name = unique_name(f"t-{request.node.name}", max_len=50)
        b = Broker(cluster, kube, ns, name)
        for i, n in enumerate(nodes):
            node = kwok_node(f"{name}-n{i}", labels={"eb-test-platform": name}, **n)
            kube.create(node)
            b.nodes.append(node["metadata"]["name"])
        pspec = dict(spec or {})
        if nodes:
            pspec.setdefault("nodeSelector", {"eb-test-platform": name})
            pspec.setdefault("toleration", {"key": KWOK_TOLERATION["key"], "value": KWOK_TOLERATION["value"]})
        await cluster.create(
            PLATFORMS,
            None,
            {"apiVersion": API, "kind": "ExecutionPlatform", "metadata": {"name": name}, "spec": pspec},
        )
        if nodes:
            await nodes_ready(kube, name, len(b.nodes))
        config = OperatorConfig(
            platform=name,
            namespaces=frozenset({ns}),
            sweep_seconds=sweep_seconds,
            pod=pod or PodSettings(image_pull_policy="Never", termination_grace_seconds=2),
            **config,  # any other OperatorConfig field, e.g. node_lost_grace
        )
        runner = OperatorThread(config)
        started.append(runner)
        await runner.start()
        b.runner = runner
        brokers.append(b)
        return b

    yield make
    for runner in started:
        await runner.stop()
    for b in brokers:
        with contextlib.suppress(Exception):
            await cluster.custom.delete_cluster_custom_object(
                "executionbroker.ivoa.net", "v1alpha1", PLATFORMS, b.platform
            )
        for n in b.nodes:
            kube.run("delete", "node", n, "--wait=false", "--ignore-not-found", check=False)
        kube.run("delete", "namespace", "-l", managed_selector(b.platform), "--wait=false", check=False)
    await asyncio.to_thread(real_node_left_free, kube, {b.namespace for b in brokers})
    await cluster.close()


def real_node_left_free(kube: Kubectl, namespaces: set[str]) -> None:
    """Delete the test's Pods still live on the real node (in its namespaces, and in owner
    namespaces for sessions of them) and wait until they are gone: the next test's operator counts
    a Pod it does not know as used capacity for as long as it runs, and the real node has two
    cores, so each test starts on a free node."""

    def live() -> list[tuple[str, str]]:
        pods = kube.json("get", "pods", "-A", "--field-selector", f"spec.nodeName={REAL_NODE}")["items"]
        return [
            (p["metadata"]["namespace"], p["metadata"]["name"])
            for p in pods
            if p["status"].get("phase") not in ("Succeeded", "Failed")
            and (
                p["metadata"]["namespace"] in namespaces
                or (p["metadata"].get("labels") or {}).get(LABEL_EXECUTION_NAMESPACE) in namespaces
            )
        ]

    for ns, name in live():
        kube.run("delete", "pod", name, "-n", ns, "--wait=false", "--ignore-not-found", check=False)
    wait_for(lambda: not live(), 120, f"the Pods of {sorted(namespaces)} on {REAL_NODE} to be gone")
