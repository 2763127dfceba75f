"""The local cluster's ingress (Traefik, started by ``hack/cluster.sh up``) for tests and benchmarks.

``ingress()`` says where it is (``Ingress``): ``EB_INGRESS_URL`` (and ``EB_INGRESS_CLASS``,
``EB_GATEWAY_NAMESPACE``, ``EB_GATEWAY_NAME``) from the environment when set, else from the
cluster's ``ingress.env`` (written by ``up``; ``hack/cluster.sh env`` exports the same).

Traefik runs on the host, not in a Pod: it sends requests straight to a Service's endpoints
(Pod IPs on the node's bridge). A URL *inside* Traefik's configuration, such as a ForwardAuth
middleware's ``address``, is opened by that host process: on the local cluster the host reaches a
Service by its ClusterIP (``cluster_ip_url``; kube-proxy rewrites it, as for Pods) and by a
NodePort on the node address (``node_port_url``). There is no cluster DNS, so no Service names.
See docs/local-cluster.md ("Ingress").

``ingress_manifest`` / ``httproute_manifest`` build the two kinds of route, ``wait_answer`` waits
until a URL answers a status (and body).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from tests.support.kube import Kubectl, cluster_state_dir, wait_for

NODE_IP = "10.213.0.1"


@dataclass(frozen=True)
class Ingress:
    url: str  # e.g. http://10.213.0.1:8088, no trailing slash
    ingress_class: str
    gateway_namespace: str
    gateway_name: str

    def parent_ref(self) -> dict[str, Any]:
        """An HTTPRoute ``parentRefs`` entry for the shared Gateway."""
        return {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "namespace": self.gateway_namespace,
            "name": self.gateway_name,
        }


def _file_settings() -> dict[str, str]:
    path = cluster_state_dir() / "ingress.env"
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def ingress() -> Ingress | None:
    """Where the cluster's ingress is, or None when neither the environment nor the local
    cluster says."""
    found = {**_file_settings(), **{k: v for k, v in os.environ.items() if k.startswith("EB_")}}
    url = found.get("EB_INGRESS_URL")
    if not url:
        return None
    return Ingress(
        url=url.rstrip("/"),
        ingress_class=found.get("EB_INGRESS_CLASS", "traefik"),
        gateway_namespace=found.get("EB_GATEWAY_NAMESPACE", "eb-ingress"),
        gateway_name=found.get("EB_GATEWAY_NAME", "eb-gateway"),
    )


def cluster_ip_url(kube: Kubectl, namespace: str, service: str, port: int, path: str = "/") -> str:
    """``http://<ClusterIP>:<port><path>``: what an in-cluster client would open, and what a host
    process (Traefik) opens on the local cluster too."""
    ip = kube.get("service", service, namespace)["spec"]["clusterIP"]
    return f"http://{ip}:{port}{path}"


def node_port_url(kube: Kubectl, namespace: str, service: str, port: int, path: str = "/") -> str:
    """``http://<node address>:<nodePort><path>`` for ``port`` of a NodePort Service: a URL the
    host (Traefik's ForwardAuth, a test) can open. kube-proxy serves NodePorts on the node address
    only."""
    svc = kube.get("service", service, namespace)
    for p in svc["spec"]["ports"]:
        if p["port"] == port and p.get("nodePort"):
            return f"http://{NODE_IP}:{p['nodePort']}{path}"
    raise LookupError(f"service {namespace}/{service} has no nodePort for port {port}")


# --------------------------------------------------------------------------------------------
# routes


def ingress_manifest(
    name: str,
    namespace: str,
    ingress_class: str,
    prefix: str,
    service: str,
    port: int = 80,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An Ingress of ``ingress_class`` sending ``prefix`` (path type Prefix, any host) to
    ``service:port``. Traefik middlewares are named in the annotation
    ``traefik.ingress.kubernetes.io/router.middlewares: <namespace>-<name>@kubernetescrd``."""
    path = {
        "path": prefix,
        "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"number": port}}},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations or {})},
        "spec": {"ingressClassName": ingress_class, "rules": [{"http": {"paths": [path]}}]},
    }


def httproute_manifest(
    name: str,
    namespace: str,
    edge: Ingress,
    prefix: str,
    service: str,
    port: int = 80,
    filters: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """An HTTPRoute on the shared Gateway sending ``prefix`` (PathPrefix) to ``service:port``.
    A Traefik middleware is a filter ``{type: ExtensionRef, extensionRef: {group: traefik.io,
    kind: Middleware, name: ...}}`` (same namespace as the route)."""
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
        "backendRefs": [{"name": service, "port": port}],
    }
    if filters:
        rule["filters"] = [dict(f) for f in filters]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parentRefs": [edge.parent_ref()], "rules": [rule]},
    }


def answer(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of a GET, not following redirects."""
    r = httpx.get(url, headers=dict(headers or {}), timeout=10)
    return r.status_code, r.text


def wait_answer(
    url: str,
    status: int,
    body: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> None:
    """Wait until a GET of ``url`` answers ``status`` (and ``body``, when given): a route is served
    within a second or two of its creation, and 404 as soon as Traefik sees it deleted."""

    def check() -> bool:
        got, text = answer(url, headers)
        return got == status and (body is None or text == body)

    wait_for(check, timeout, f"{url} to answer {status}" + (f" {body!r}" if body else ""))
