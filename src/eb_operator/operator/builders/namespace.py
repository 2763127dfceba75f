"""An owner's namespace and what makes it safe: the Namespace (labelled, Pod Security
``restricted``), the RoleBinding that gives the operator its rights there (and only there), the
one that lets the REST API read its sessions' logs there, and a default-deny ingress
NetworkPolicy that still admits the owner's own sessions and the ingress controller
(docs/operator.md, "Sharing a platform").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eb_operator.cluster.convert import LABEL_MANAGED_BY, MANAGER, label_value
from eb_operator.model.sharing import NetworkPeer
from eb_operator.model.tenancy import owner_label

LABEL_OWNER = "executionbroker.ivoa.net/owner"
LABEL_PLATFORM = "executionbroker.ivoa.net/platform"
ANN_OWNER = "executionbroker.ivoa.net/owner"  # the real owner name (it may not fit a label)
ROLE_BINDING = "eb-operator-workloads"
API_LOGS_ROLE_BINDING = "eb-api-logs"
NETWORK_POLICY = "eb-owner-isolation"
PSS = "restricted"


def managed_selector(platform: str) -> str:
    """The label selector of every owner namespace of ``platform``'s operator."""
    return f"{LABEL_MANAGED_BY}={MANAGER},{LABEL_PLATFORM}={label_value(platform)}"


def build_namespace(name: str, owner: str, platform: str) -> dict[str, Any]:
    """The owner's namespace: made by the broker for ``platform``, enforcing ``restricted``."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                LABEL_MANAGED_BY: MANAGER,
                LABEL_OWNER: owner_label(owner),
                LABEL_PLATFORM: label_value(platform),
                "pod-security.kubernetes.io/enforce": PSS,
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": PSS,
                "pod-security.kubernetes.io/audit": PSS,
            },
            "annotations": {ANN_OWNER: owner},
        },
    }


def build_role_binding(
    namespace: str, cluster_role: str, service_account: str, name: str = ROLE_BINDING
) -> dict[str, Any]:
    """Rights in the owner's namespace: ``cluster_role`` bound to the ServiceAccount
    ``service_account`` (``namespace/name``). The operator's own (its workloads role) by default;
    with ``name=API_LOGS_ROLE_BINDING``, the REST API's (reading its sessions' Pods' logs)."""
    sa_namespace, _, sa_name = service_account.partition("/")
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": {LABEL_MANAGED_BY: MANAGER}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}],
    }


def build_network_policy(namespace: str, ingress_from: Sequence[NetworkPeer]) -> dict[str, Any]:
    """Default-deny ingress for every Pod of the namespace, except from its own Pods (an owner's
    sessions may talk to each other) and from the peers the platform names (its ingress
    controller). Traffic from the node itself (kubelet probes) is always allowed by Kubernetes."""
    peers: list[dict[str, Any]] = [{"podSelector": {}}]
    peers += [p.model_dump(by_alias=True, exclude_none=True) for p in ingress_from]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": NETWORK_POLICY, "namespace": namespace, "labels": {LABEL_MANAGED_BY: MANAGER}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": peers}]},
    }
