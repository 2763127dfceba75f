"""A running session whose Pod or node goes away (issue 5: FAILED with a message naming the
cause): its Pod evicted through the Eviction API on the real node; its kwok node turned NotReady,
or deleted. Each time the session is FAILED, naming the cause, and its reservation is released.
(The real node's kubelet stopped is tests/chaos/test_kubelet_stop.py.) Bounded: ~1 min in all."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from kubernetes_asyncio import client
from tests.integration.operator.helpers import FAST, FINAL, REAL_NODE_PLATFORM, Broker, ivoa_request, phase
from tests.support.kube import async_wait_for

from eb_operator.model.times import format_instant

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(240)

GRACE = 2.0  # the operator's node-loss grace in these tests (OperatorConfig.node_lost_grace)
LOST_WITHIN = GRACE + 30  # the grace, the operator's reaction and its status write, on a loaded box


async def released(b: Broker, name: str) -> None:
    key = f"{b.namespace}/{name}"
    assert b.runner is not None
    ledger = b.runner.operator.state.ledger
    await async_wait_for(lambda: ledger.get(key) is None, 10, f"the reservation of {key} to be released")


async def test_an_evicted_session_fails_naming_the_eviction_and_releases_its_capacity(
    broker: MakeBroker,
) -> None:
    b = await broker({**REAL_NODE_PLATFORM, **FAST})
    await b.direct("evicted", ivoa_request(("sleep", "600"), duration="PT10M"))
    await b.reaches("evicted", "RUNNING", timeout=90)
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name="eb-evicted", namespace=b.namespace))
    await b.cluster.core.create_namespaced_pod_eviction("eb-evicted", b.namespace, body)
    done = await b.reaches("evicted", *FINAL, timeout=60)
    assert phase(done) == "FAILED", done["status"]
    assert done["status"]["message"].startswith("the Pod was evicted (EvictionByEvictionAPI"), done["status"]
    assert any("evicted" in m["message"] for m in done["status"]["messages"] if m["level"] == "ERROR")
    await released(b, "evicted")


async def test_a_session_whose_kwok_node_turns_not_ready_fails_node_lost(broker: MakeBroker) -> None:
    b = await broker({**FAST}, nodes=[{"cpu": "8", "memory": "32Gi"}], node_lost_grace=GRACE)
    [node] = b.nodes
    await b.direct("on-kwok", ivoa_request(("sleep", "600"), duration="PT10M"))
    await b.reaches("on-kwok", "RUNNING", timeout=90)
    now = format_instant(int(time.time()))
    not_ready = {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "KubeletStopped",
                    "message": "the test stopped this node",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ]
        }
    }
    # kwok re-initialises a node it manages that is not Ready at once (hack/kwok-stages.yaml): take
    # the node from kwok first, as a machine whose kubelet stops is left alone, then report it down
    await asyncio.to_thread(b.kube.run, "annotate", "node", node, "kwok.x-k8s.io/node-")
    t0 = time.monotonic()
    await asyncio.to_thread(
        b.kube.run, "patch", "node", node, "--subresource=status", "--type=merge", "-p", json.dumps(not_ready)
    )
    done = await b.reaches("on-kwok", *FINAL, timeout=LOST_WITHIN)
    took = time.monotonic() - t0
    assert phase(done) == "FAILED", done["status"]
    assert done["status"]["message"] == f"node {node} was lost", done["status"]
    await released(b, "on-kwok")
    print(f"\nNotReady to FAILED (NodeLost) in {took:.1f} s (grace {GRACE} s)")


async def test_a_session_whose_kwok_node_is_deleted_fails_node_lost(broker: MakeBroker) -> None:
    b = await broker({**FAST}, nodes=[{"cpu": "8", "memory": "32Gi"}], node_lost_grace=GRACE)
    [node] = b.nodes
    await b.direct("on-kwok", ivoa_request(("sleep", "600"), duration="PT10M"))
    await b.reaches("on-kwok", "RUNNING", timeout=90)
    t0 = time.monotonic()
    await asyncio.to_thread(b.kube.run, "delete", "node", node, "--wait=false")
    done = await b.reaches("on-kwok", *FINAL, timeout=LOST_WITHIN)
    took = time.monotonic() - t0
    assert phase(done) == "FAILED", done["status"]
    assert done["status"]["message"] == f"node {node} was lost", done["status"]
    await released(b, "on-kwok")
    print(f"\nnode deleted to FAILED (NodeLost) in {took:.1f} s")
