"""Scenario 4: the real node's kubelet stopped while a session runs on it. The session becomes
FAILED with a message naming the lost node within a bounded time (the controller-manager marks
the node NotReady after its 50 s node-monitor grace, then the operator's node-loss grace, 5 s
here), and its capacity is released. The kubelet is started again and the node is Ready (with
its GPU advertised) before the test ends: every later test needs it.

Bounded: ~1.5 min.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest
from tests.chaos.checker import PodRecorder, check
from tests.chaos.stage import API, cluster_sh
from tests.integration.operator.helpers import FAST, REAL_NODE_PLATFORM, Broker, OperatorThread, ivoa_request
from tests.support.kube import GPU_RESOURCE, REAL_NODE, Kubectl, async_wait_for, is_ready, unique_name

from eb_operator.cluster.crs import PLATFORMS, Cluster
from eb_operator.cluster.kube import ClientSettings
from eb_operator.operator import OperatorConfig
from eb_operator.operator.builders.pod import PodSettings

pytestmark = pytest.mark.timeout(400)

GRACE = 5.0
#: kube-controller-manager's node-monitor-grace-period (50 s) + our grace + event delivery.
FAIL_WITHIN = 50 + GRACE + 40


@pytest.fixture
async def real_node_broker(
    crds: None, kube: Kubectl, make_namespace: Callable[..., str], stager_image: str
) -> AsyncIterator[Broker]:
    if not kube.exists("node", REAL_NODE):
        pytest.fail(
            f"the local cluster's real node {REAL_NODE} is missing: hack/cluster.sh up", pytrace=False
        )
    cluster = await Cluster.connect(ClientSettings())
    ns = make_namespace("chaos-kubelet")
    name = unique_name("chaos-kubelet", max_len=30)
    spec = {**REAL_NODE_PLATFORM, **FAST}
    await cluster.create(
        PLATFORMS,
        None,
        {"apiVersion": API, "kind": "ExecutionPlatform", "metadata": {"name": name}, "spec": spec},
    )
    config = OperatorConfig(
        platform=name,
        namespaces=frozenset({ns}),
        sweep_seconds=2.0,
        pod=PodSettings(image_pull_policy="Never", termination_grace_seconds=2),
        node_lost_grace=GRACE,
    )
    runner = OperatorThread(config)
    await runner.start()
    b = Broker(cluster, kube, ns, name, runner=runner)
    try:
        yield b
    finally:
        await runner.stop()
        kube.run("delete", "executionplatform", name, "--ignore-not-found", "--wait=false", check=False)
        await cluster.close()


async def test_kubelet_stopped_under_a_running_session(real_node_broker: Broker, kube: Kubectl) -> None:
    b = real_node_broker
    assert b.runner is not None
    gpus_before = kube.get("node", REAL_NODE)["status"]["allocatable"].get(GPU_RESOURCE)
    recorder = PodRecorder(kube.kubeconfig, b.namespace)
    async with recorder.running():
        await b.direct("victim", ivoa_request(("sleep", "600"), duration="PT10M"))
        running = await b.reaches("victim", "RUNNING", timeout=120)
        key = f"{b.namespace}/victim"
        held = b.runner.operator.state.ledger.get(key)
        assert held is not None
        assert held.node == REAL_NODE
        stopped_at = time.monotonic()
        try:
            cluster_sh("stop", "kubelet")
            failed = await b.reaches("victim", "FAILED", "COMPLETED", "CANCELLED", timeout=FAIL_WITHIN)
            failed_after = time.monotonic() - stopped_at
            ledger = b.runner.operator.state.ledger
            released = await async_wait_for(
                lambda: ledger.get(key) is None, 10, "the reservation to be released"
            )
            not_ready = not is_ready(kube.get("node", REAL_NODE))
        finally:
            restart = cluster_sh("start", "kubelet")
        node = kube.get("node", REAL_NODE)
        # the Pod the operator deleted goes once the kubelet is back
        await async_wait_for(lambda: not kube.exists("pod", "eb-victim", b.namespace), 120, "the Pod to go")
    executions = {e["metadata"]["uid"]: e["metadata"]["name"] for e in await b.executions()}
    report = check(
        kube,
        b.namespace,
        [REAL_NODE],
        time.time(),
        executions=["victim"],
        pod_uids=recorder.by_execution(executions),
    )
    print(
        f"kubelet stop: RUNNING session FAILED {failed_after:.0f} s after the kubelet stopped "
        f"(node-monitor grace 50 s + operator grace {GRACE:g} s); "
        f"kubelet start to node Ready {restart:.1f} s; "
        f"message {failed['status'].get('message')!r}; checker: {report}"
    )
    assert running["spec"]["reservation"]["node"] == REAL_NODE
    assert failed["status"]["phase"] == "FAILED", failed["status"]
    assert f"node {REAL_NODE} was lost" in failed["status"]["message"]
    assert not_ready, "the session failed before its node was NotReady"
    assert released, "the failed session still holds its reservation in the operator's ledger"
    assert is_ready(node), f"{REAL_NODE} is not Ready after the kubelet restarted"
    assert node["status"]["allocatable"].get(GPU_RESOURCE) == gpus_before
    assert not report.problems, report
