"""The local cluster is a real Kubernetes cluster: Pods really run on the real node, the
scheduler really accounts for GPUs, and kwok nodes really take scheduled Pods.

Runs against the project's local cluster (hack/cluster.sh up), like every integration test
(they place Pods on its node ``eb-real-node``); on another cluster it fails saying so, rather
than passing as a skip. Other clusters run tests/e2e (hack/kind-e2e.sh). The 200-node /
2,000-Pod timing lives in benchmarks/cluster_scale.py; here the same path is checked for
correctness at a smaller size.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from typing import Any

import pytest
from kubernetes_asyncio import client
from tests.support.kube import (
    GPU_RESOURCE,
    KWOK_TOLERATION,
    REAL_NODE,
    Kubectl,
    async_wait_for,
    delete_all_pods,
    kwok_node,
    pod_logs,
    versions,
    workload_pod,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module", autouse=True)
def local_cluster(kube: Kubectl) -> None:
    if not kube.exists("node", REAL_NODE):
        pytest.fail(
            f"not the project's local cluster (no node {REAL_NODE}): the integration tests need it "
            "(bash hack/cluster.sh up); run only tests/e2e against other clusters"
        )


async def _finished_pod(v1: client.CoreV1Api, name: str, namespace: str, within: float) -> Any:
    async def finished() -> Any:
        pod = await v1.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    return await async_wait_for(finished, within, f"pod {namespace}/{name} to finish")


async def test_pod_runs_a_real_command_and_its_logs_are_read_back(k8s: Any, namespace: str) -> None:
    v1 = client.CoreV1Api(k8s)
    script = "echo hello from uid $(id -u) on kernel $(uname -r); python3 -c 'print(6 * 7)'"
    await v1.create_namespaced_pod(namespace, workload_pod("hello", ["sh", "-c", script]))

    pod = await _finished_pod(v1, "hello", namespace, within=120)

    assert pod.status.phase == "Succeeded", pod.status
    assert pod.spec.node_name == REAL_NODE
    logs = await v1.read_namespaced_pod_log("hello", namespace)
    # the container shares this machine's kernel: it really ran here, as the non-root user
    assert f"hello from uid 1000 on kernel {os.uname().release}" in logs
    assert logs.strip().endswith("42")


async def test_pod_asking_one_gpu_runs_on_the_real_node(k8s: Any, namespace: str) -> None:
    v1 = client.CoreV1Api(k8s)
    pod = workload_pod(
        "gpu-one",
        ["sh", "-c", "echo got a gpu"],
        requests={"cpu": "100m", "memory": "64Mi"},
        limits={"cpu": "100m", "memory": "64Mi", GPU_RESOURCE: "1"},
    )
    await v1.create_namespaced_pod(namespace, pod)

    done = await _finished_pod(v1, "gpu-one", namespace, within=120)

    assert done.status.phase == "Succeeded", done.status
    assert done.spec.node_name == REAL_NODE
    assert "got a gpu" in await v1.read_namespaced_pod_log("gpu-one", namespace)


async def test_pod_asking_two_gpus_stays_pending_with_the_schedulers_reason(k8s: Any, namespace: str) -> None:
    v1 = client.CoreV1Api(k8s)
    pod = workload_pod("gpu-two", ["true"], limits={GPU_RESOURCE: "2"})
    await v1.create_namespaced_pod(namespace, pod)

    async def failed_scheduling() -> Any:
        events = await v1.list_namespaced_event(namespace, field_selector="involvedObject.name=gpu-two")
        return [e for e in events.items if e.reason == "FailedScheduling"]

    events = await async_wait_for(failed_scheduling, 60, "a FailedScheduling event for gpu-two")

    assert any(f"Insufficient {GPU_RESOURCE}" in e.message for e in events), [e.message for e in events]
    pod_now = await v1.read_namespaced_pod("gpu-two", namespace)
    assert pod_now.status.phase == "Pending"
    assert not pod_now.spec.node_name
    scheduled = next(c for c in pod_now.status.conditions if c.type == "PodScheduled")
    assert scheduled.status == "False"
    assert scheduled.reason == "Unschedulable"


async def test_kwok_nodes_register_and_take_scheduled_pods(k8s: Any, kube: Kubectl, namespace: str) -> None:
    n_nodes = int(os.environ.get("EB_TEST_KWOK_NODES", "20"))
    n_pods = int(os.environ.get("EB_TEST_KWOK_PODS", "200"))
    v1 = client.CoreV1Api(k8s)
    selector = {"eb-test-nodes": namespace}
    names = {f"{namespace}-n{i}" for i in range(n_nodes)}
    nodes = [kwok_node(n, gpus=4 if i % 4 == 0 else 0, labels=selector) for i, n in enumerate(sorted(names))]
    kube.create(*nodes)
    try:

        async def nodes_ready() -> bool:
            nodes = await v1.list_node(label_selector=f"eb-test-nodes={namespace}")
            ready = [
                n.metadata.name
                for n in nodes.items
                if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            ]
            return len(ready) == n_nodes

        await async_wait_for(nodes_ready, 120, f"{n_nodes} kwok nodes to be Ready")

        gate = asyncio.Semaphore(20)

        async def create(i: int) -> None:
            pod = workload_pod(
                f"p{i}",
                ["sleep", "infinity"],
                requests={"cpu": "1", "memory": "1Gi"},
                node_selector=selector,
                tolerations=[KWOK_TOLERATION],
            )
            async with gate:
                await v1.create_namespaced_pod(namespace, pod)

        await asyncio.gather(*(create(i) for i in range(n_pods)))

        async def all_running() -> Any:
            pods = (await v1.list_namespaced_pod(namespace)).items
            running = [p for p in pods if p.status.phase == "Running"]
            return pods if len(running) == n_pods else None

        pods = await async_wait_for(all_running, 300, f"{n_pods} pods Running on kwok nodes", interval=1)

        placed = {p.spec.node_name for p in pods}
        assert placed <= names, placed - names
        per_node = [sum(p.spec.node_name == n for p in pods) for n in names]
        assert max(per_node) <= 32  # each pod takes one of a node's 32 cores
        assert all(p.status.pod_ip for p in pods)
    finally:
        await delete_all_pods(v1, namespace)
        kube.run("delete", "nodes", "-l", f"eb-test-nodes={namespace}", "--wait=false", check=False)


async def test_pod_reaches_the_api_server_through_the_kubernetes_service(k8s: Any, namespace: str) -> None:
    # what an in-cluster operator does: service env vars + the mounted service-account token
    script = (
        "import os, ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "env = os.environ\n"
        "url = f\"https://{env['KUBERNETES_SERVICE_HOST']}:{env['KUBERNETES_SERVICE_PORT']}/version\"\n"
        "auth = {'Authorization': 'Bearer ' + open(sa + '/token').read()}\n"
        "req = urllib.request.Request(url, headers=auth)\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "print(urllib.request.urlopen(req, context=ctx, timeout=10).read().decode())\n"
    )
    pod = workload_pod("in-cluster", ["python3", "-c", script])
    pod["spec"]["automountServiceAccountToken"] = True
    pod["spec"]["enableServiceLinks"] = True
    v1 = client.CoreV1Api(k8s)
    await v1.create_namespaced_pod(namespace, pod)

    done = await _finished_pod(v1, "in-cluster", namespace, within=120)

    logs = await pod_logs(v1, "in-cluster", namespace)
    assert done.status.phase == "Succeeded", logs
    assert json.loads(logs)["gitVersion"] == versions()["K8S_VERSION"]


def test_nothing_routes_from_pods_off_this_machine() -> None:
    # `ip route get` only asks the kernel; no packet is sent
    ip = shutil.which("ip")
    # hack/cluster.sh runs as root and installs iproute2: without them there is no local cluster
    assert ip is not None, "needs iproute2"
    assert os.geteuid() == 0, "needs root"

    def route(dst: str) -> subprocess.CompletedProcess[str]:
        args = [ip, "route", "get", dst, "from", "10.214.0.200", "iif", "ebcni0"]
        return subprocess.run(args, capture_output=True, text=True, check=False)

    for outside in ("192.0.2.123", "10.1.2.3", "8.8.8.8", "10.215.0.77", "10.216.0.5"):
        r = route(outside)
        assert r.returncode != 0, f"a pod could route to {outside}: {r.stdout}"
        assert "unreachable" in r.stderr.lower() or "no route" in r.stderr.lower(), r.stderr
    assert route("10.213.0.1").returncode == 0  # the node itself (API server, kubelet)
