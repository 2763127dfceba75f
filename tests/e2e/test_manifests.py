"""The plain install: `kubectl apply -k manifests/` (no Helm), then one session through REST.

The manifests own cluster-wide names (namespace execution-broker, ExecutionPlatform default,
ClusterRoles eb-operator...), so this runs only on a cluster with no other install of the broker
(hack/up.sh's would be taken over) and removes the chart's e2e release first. It leaves the CRDs
and removes everything else again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from tests.e2e.helpers import User, assert_ran_on_a_real_node, pod_of
from tests.e2e.install import PART_OF, Installation, ServiceURL
from tests.support.kube import REPO, Kubectl, wait_for

from eb_operator.client import BrokerClient

NS = "execution-broker"
MANIFESTS = REPO / "manifests"
QUICK = '{"spec": {"slotSeconds": 5, "preparationSeconds": 3, "releaseSeconds": 2}}'


@contextlib.contextmanager
def plain_install(kube: Kubectl) -> Iterator[None]:
    kube.run("apply", "--server-side", "--force-conflicts", "-k", str(MANIFESTS / "crds"))
    kube.run("wait", "--for=condition=Established", "crd", "-l", PART_OF, "--timeout=60s")
    try:
        kube.run("apply", "--server-side", "--force-conflicts", "-k", str(MANIFESTS))
        yield
    finally:
        kube.run("delete", "offersets,executions", "--all", "-n", NS, "--ignore-not-found", check=False)
        for f in ("broker.yaml", "api-rbac.yaml", "rbac.yaml", "namespace.yaml"):
            kube.run(
                "delete",
                "-f",
                str(MANIFESTS / f),
                "--ignore-not-found",
                "--wait=true",
                check=False,
                timeout=300,
            )


def test_kubectl_apply_k_manifests_installs_a_working_broker(broker: Installation) -> None:
    kube = broker.kube
    others = kube.json("get", "deployments", "-A", "-l", PART_OF)["items"]
    if broker.paused or [d for d in others if d["metadata"]["namespace"] != broker.namespace]:
        # a skip would pass as green without the manifests ever being tried
        pytest.fail(
            "another install of the broker is on this cluster; the plain manifests would take it over"
        )
    if broker.installed():
        broker.uninstall()
    with plain_install(kube):
        for d in ("execution-broker-operator", "execution-broker-api"):
            kube.run("rollout", "status", f"deployment/{d}", "-n", NS, "--timeout=180s", timeout=200)
        wait_for(
            lambda: (kube.get("executionplatforms", "default").get("status") or {}).get("valid") is True,
            60,
            "the operator to take the default platform",
        )
        kube.run("patch", "executionplatform", "default", "--type=merge", "-p", QUICK)
        service = ServiceURL(kube, NS, "execution-broker", 80)
        try:
            token = kube.run("create", "token", "default", "-n", NS).stdout.strip()  # TokenReview
            with BrokerClient(service.get(), token, timeout=60) as client:
                user = User(client)
                try:
                    session = user.run(["sh", "-c", "echo plain install"], duration="PT1M")
                    assert user.follow(session["uuid"], 180)["phase"] == "COMPLETED"
                finally:
                    user.tidy()
            assert_ran_on_a_real_node(kube, pod_of(kube, NS, session["uuid"]))
        finally:
            service.close()
