"""Fixtures and Pod builders for the ingress tests: ``edge`` (where the cluster's ingress is),
``ns`` (one restricted namespace for a module's Pods and routes), ``notebook_image``
(``eb-notebook:latest``, built once and imported by hack/build-test-images.sh); ``server_pod``,
``service``, ``start`` (create objects in a namespace and wait for their Pods to be Ready)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from tests.support.ingress import Ingress, ingress
from tests.support.kube import (
    REAL_NODE,
    REPO,
    Kubectl,
    namespace_manifest,
    unique_name,
    wait_for,
    workload_pod,
)

POD_READY_TIMEOUT = 120


@pytest.fixture(scope="module")
def edge() -> Ingress:
    found = ingress()
    if found is None:
        pytest.fail(
            "no ingress: the local cluster's Traefik writes its URL to ingress.env on `hack/cluster.sh up` "
            "(or set EB_INGRESS_URL)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def ns(kube: Kubectl) -> Iterator[str]:
    if not kube.exists("node", REAL_NODE):
        pytest.fail(f"these tests need the local cluster's real node {REAL_NODE}", pytrace=False)
    name = unique_name("eb-test-ingress", max_len=40)
    kube.create(namespace_manifest(name))
    yield name
    kube.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def notebook_image() -> str:
    subprocess.run(["bash", str(REPO / "hack" / "build-test-images.sh")], check=True, timeout=1800)
    return "eb-notebook:latest"


def server_pod(
    name: str,
    command: Sequence[str],
    port: int,
    image: str | None = None,
    env: Mapping[str, str] | None = None,
    ready_path: str | None = None,
) -> dict[str, Any]:
    """A restricted Pod on the real node serving ``port``, labelled ``app: <name>``, Ready when the
    port accepts connections (or ``ready_path`` answers)."""
    pod = workload_pod(name, command, node_name=REAL_NODE, labels={"app": name}, restart_policy="Always")
    container = pod["spec"]["containers"][0]
    if image:
        container["image"] = image
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    container["ports"] = [{"containerPort": port, "name": "http"}]
    probe: dict[str, Any] = (
        {"httpGet": {"path": ready_path, "port": port}} if ready_path else {"tcpSocket": {"port": port}}
    )
    container["readinessProbe"] = {**probe, "periodSeconds": 1, "failureThreshold": 60}
    return pod


def service(name: str, port: int, target: int, kind: str = "ClusterIP") -> dict[str, Any]:
    """A Service selecting ``app: <name>``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": kind,
            "selector": {"app": name},
            "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}],
        },
    }


def start(kube: Kubectl, namespace: str, objects: Sequence[dict[str, Any]]) -> None:
    """Create ``objects`` in ``namespace``; wait until each Pod among them is Ready."""
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
    kube.create(*objects)
    for obj in objects:
        if obj["kind"] == "Pod":
            name = obj["metadata"]["name"]
            what = f"pod {namespace}/{name} to be Ready"
            wait_for(lambda n=name: pod_ready(kube, namespace, n), POD_READY_TIMEOUT, what)


def pod_ready(kube: Kubectl, namespace: str, name: str) -> bool:
    pod = kube.get("pod", name, namespace)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])
