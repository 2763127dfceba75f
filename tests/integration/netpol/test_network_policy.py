"""NetworkPolicies are enforced on the local cluster's real node (kube-router's firewall
controller, started by ``hack/cluster.sh up``): real Pods, real TCP connections across the CNI
bridge, bounded waits on each state.

A Pod in namespace ``server`` listens on a port; Pods in ``client`` and ``other`` connect to it.
A default-deny ingress policy in ``server`` cuts both off; a policy admitting ``client`` lets only
that one in; removing the policies restores access. The node itself (the kubelet's probes,
Traefik on the host) still reaches the Pod under default-deny: Kubernetes allows traffic from a
Pod's own node whatever the policies say, and kube-router implements that.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.kube import REAL_NODE, Kubectl, wait_for, workload_pod

pytestmark = pytest.mark.timeout(600)

PORT = 8000
ENFORCED = 60  # kube-router applies a policy change within a second or two; this bounds the wait
# one TCP connection attempt from inside a Pod: exit 0 when it connects, 1 when refused or timed out
CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()\n"
    "except OSError as e:\n"
    "    sys.exit(f'{type(e).__name__}: {e}')\n"
)


def _policy(name: str, namespace: str, ingress: list[dict[str, Any]]) -> dict[str, Any]:
    """An ingress policy for every Pod of ``namespace``: only what ``ingress`` admits gets in."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def _ready(kube: Kubectl, namespace: str, name: str) -> bool:
    pod = kube.get("pod", name, namespace)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def test_default_deny_ingress_policy_blocks_other_namespaces_until_a_policy_admits_them(
    kube: Kubectl, make_namespace: Callable[..., str]
) -> None:
    if not kube.exists("node", REAL_NODE):
        pytest.fail(f"this test needs the local cluster's real node {REAL_NODE}", pytrace=False)
    server_ns, client_ns, other_ns = (
        make_namespace("np-server"),
        make_namespace("np-client"),
        make_namespace("np-other"),
    )

    server = workload_pod("server", ["python3", "-m", "http.server", str(PORT)], node_name=REAL_NODE)
    server["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": PORT}, "periodSeconds": 1}
    kube.create({**server, "metadata": {**server["metadata"], "namespace": server_ns}})
    for ns in (client_ns, other_ns):
        client = workload_pod("client", ["sleep", "infinity"], node_name=REAL_NODE)
        kube.create({**client, "metadata": {**client["metadata"], "namespace": ns}})
    for ns, name in ((server_ns, "server"), (client_ns, "client"), (other_ns, "client")):
        wait_for(lambda ns=ns, name=name: _ready(kube, ns, name), 120, f"pod {ns}/{name} to be Ready")
    ip = kube.get("pod", "server", server_ns)["status"]["podIP"]

    def reaches(ns: str) -> bool:
        r = kube.run("exec", "-n", ns, "client", "--", "python3", "-c", CONNECT, ip, str(PORT), check=False)
        return r.returncode == 0

    def state() -> tuple[bool, bool]:
        return reaches(client_ns), reaches(other_ns)

    def until(want: tuple[bool, bool], what: str) -> None:
        wait_for(lambda: state() == want, ENFORCED, f"{what} (client, other reach the server: {want})")

    until((True, True), "both reach the server with no policy")

    kube.apply(_policy("default-deny", server_ns, []))
    until((False, False), "default-deny to cut both off")
    # the node still reaches the Pod: the kubelet's readiness probe, and any host process
    with socket.create_connection((ip, PORT), timeout=5):
        pass
    assert _ready(kube, server_ns, "server")

    from_client = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": client_ns}}}
    kube.apply(_policy("admit-client", server_ns, [{"from": [from_client]}]))
    until((True, False), "the admitting policy to let client, and only client, in")

    kube.run("delete", "networkpolicy", "admit-client", "-n", server_ns)
    until((False, False), "removing the admitting policy to cut client off again")

    kube.run("delete", "networkpolicy", "default-deny", "-n", server_ns)
    until((True, True), "removing default-deny to restore access")
