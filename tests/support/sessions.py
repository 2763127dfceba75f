"""A broker whose sessions are reached through the local cluster's ingress, for the browser tests
(tests/integration/sessions) and ``benchmarks/sessions.py``.

* the REST API (``create_app``) on 127.0.0.1 in a thread: the gate Traefik asks (a host process,
  it reaches 127.0.0.1), with static tokens for alice and bob and a session key;
* the operator (``eb-operator operator``) as a subprocess watching one namespace, with the same
  session key;
* a platform of its own on the real node (1 s slots, no preparation lead), whose routes go
  through the cluster's Traefik (``tests.support.ingress``): an Ingress of its class, or an
  HTTPRoute on its shared Gateway (:meth:`SessionsStack.use_routes`).

Everything it creates it deletes again when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.integration.api.stack import SESSION_KEY, TOKENS, operator_process, serve_api
from tests.support.ingress import Ingress
from tests.support.kube import REAL_NODE, Kubectl, namespace_manifest, unique_name, wait_for

from eb_operator.api import ApiSettings
from eb_operator.model.tenancy import owner_namespace
from eb_operator.operator.builders.namespace import managed_selector

GROUP = "executionbroker.ivoa.net"
JUPYTER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0"
DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0"
COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-resource-1.0"
LIVE = ("PREPARING", "READY", "RUNNING")
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "REJECTED", "EXPIRED")


def compute() -> dict[str, Any]:
    return {"type": COMPUTE, "cores": {"requested": {"min": 1}}, "memory": {"requested": {"min": 1}}}


def notebook_request(location: str | None = None, duration: str = "PT15M") -> dict[str, Any]:
    executable: dict[str, Any] = {"type": JUPYTER, "name": "analysis"}
    if location:
        executable["location"] = location
    return {
        "name": "notebook",
        "executable": executable,
        "resources": {"compute": [compute()]},
        "schedule": {"requested": {"duration": duration}},
    }


def web_app_request(script: str, port: int, path: str = "") -> dict[str, Any]:
    """``sh -c script`` in eb-workload:latest with ``port`` declared for access over HTTP."""
    network_port: dict[str, Any] = {"access": True, "internal": {"port": port}, "protocol": "HTTP"}
    if path:
        network_port["path"] = path
    return {
        "name": "web-app",
        "executable": {
            "type": DOCKER,
            "name": "web-app",
            "image": {"locations": ["eb-workload:latest"]},
            "entrypoint": "sh",
            "command": ["-c", script],
            "network": {"ports": [network_port]},
        },
        "resources": {"compute": [compute()]},
        "schedule": {"requested": {"duration": "PT15M"}},
    }


@dataclass
class SessionsStack:
    api: str
    namespace: str
    platform: str
    kube: Kubectl
    edge: Ingress
    operator_log: Path
    prefix: str  # of the owner namespaces this stack's sessions run in (its own)

    def owner_namespace(self, user: str = "alice") -> str:
        """Where ``user``'s sessions run: their Pods, Services and routes."""
        return owner_namespace(user, self.prefix)

    def client(self, user: str | None = "alice") -> httpx.Client:
        headers = {"Accept": "application/json"}
        if user is not None:
            headers["Authorization"] = f"Bearer {TOKENS[user]}"
        return httpx.Client(base_url=self.api, headers=headers, timeout=60)

    def routes(self, gateway: bool = False) -> dict[str, Any]:
        """The platform's routes through the cluster's Traefik, its gate this stack's API."""
        out: dict[str, Any] = {"publicUrl": self.edge.url, "gate": {"url": self.api}}
        if gateway:
            out["gateway"] = {"namespace": self.edge.gateway_namespace, "name": self.edge.gateway_name}
        else:
            out["ingressClassName"] = self.edge.ingress_class
        return out

    def use_routes(self, routes: Mapping[str, Any] | None) -> None:
        """Set (None: remove) the platform's routes; return once the operator has taken them."""
        patch = (
            [{"op": "add", "path": "/spec/routes", "value": dict(routes)}]
            if routes is not None
            else [{"op": "remove", "path": "/spec/routes"}]
        )
        current = self.kube.get("executionplatforms", self.platform)
        if routes is None and "routes" not in current["spec"]:
            return
        self.kube.run("patch", "executionplatform", self.platform, "--type", "json", "-p", json.dumps(patch))

        def taken() -> bool:
            p = self.kube.get("executionplatforms", self.platform)
            status = p.get("status") or {}
            return (
                status.get("observedGeneration") == p["metadata"]["generation"]
                and status.get("valid") is True
            )

        wait_for(taken, 60, f"the operator to take the routes of {self.platform} (log: {self.operator_log})")

    def accept(self, request: Mapping[str, Any], user: str = "alice") -> str:
        """Ask for offers as ``user`` and accept the first; the session's uuid."""
        with self.client(user) as c:
            r = c.post("/offersets", json=dict(request))
            assert r.status_code == 303, r.text
            answer = r.json()
            assert answer["result"] == "YES", answer
            uuid = str(answer["offers"][0]["uuid"])
            body = {"update": {"type": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}}
            r = c.post(f"/sessions/{uuid}", json=body)
            assert r.status_code == 200, r.text
        return uuid

    def session(self, uuid: str, user: str = "alice") -> dict[str, Any]:
        with self.client(user) as c:
            r = c.get(f"/sessions/{uuid}")
            assert r.status_code == 200, r.text
            out: dict[str, Any] = r.json()
            return out

    def reaches(self, uuid: str, *phases: str, timeout: float = 180) -> dict[str, Any]:
        """The session once its phase is one of ``phases`` (or final: the caller checks which)."""
        return wait_for(
            lambda: (s := self.session(uuid))["phase"] in (*phases, *FINAL) and s,
            timeout,
            f"session {uuid} to reach {'/'.join(phases)} (operator log: {self.operator_log})",
            interval=0.1,
        )

    def login(self, uuid: str, user: str = "alice") -> httpx.Response:
        with self.client(user) as c:
            return c.post(f"/sessions/{uuid}/login")

    def cancel(self, uuid: str) -> dict[str, Any]:
        with self.client("alice") as c:
            body = {"update": {"type": "uri:enum-value-update", "path": "phase", "value": "CANCELLED"}}
            r = c.post(f"/sessions/{uuid}", json=body)
            assert r.status_code == 200, r.text
            out: dict[str, Any] = r.json()
            return out


def platform_manifest(name: str, routes: Mapping[str, Any] | None, prefix: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeSelector": {"kubernetes.io/hostname": REAL_NODE},
        "slotSeconds": 1,
        "preparationSeconds": 0,
        "releaseSeconds": 2,
        "offerTtlSeconds": 120,
        "maxOffers": 1,
        "images": {"notebook": "eb-notebook:latest"},
        "namespaces": {"prefix": prefix, "emptyGraceSeconds": 30},
        # one owner's notebook may still be releasing its core as the next test asks: the limits
        # per owner are tests/integration/sharing's
        "sharing": {"ownerLimits": {}},
    }
    if routes is not None:
        spec["routes"] = dict(routes)
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ExecutionPlatform",
        "metadata": {"name": name},
        "spec": spec,
    }


@contextlib.contextmanager
def sessions_stack(
    kube: Kubectl, edge: Ingress, log_path: Path, gateway: bool = False
) -> Iterator[SessionsStack]:
    repo = Path(__file__).resolve().parents[2]
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(repo / "crds"))
    kube.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(repo / "crds"))
    tag = unique_name("eb-sessions", max_len=24)
    prefix = f"t{tag[-6:]}-"
    kube.create(namespace_manifest(tag))
    settings = ApiSettings(
        namespace=tag,
        kubeconfig=kube.kubeconfig,
        static_tokens="\n".join(f"{t},{u}" for u, t in TOKENS.items()),
        answer_timeout_seconds=30,
        session_key=SESSION_KEY,
    )
    try:
        with serve_api(settings) as url:
            stack = SessionsStack(url, tag, tag, kube, edge, log_path, prefix)
            kube.apply(platform_manifest(tag, stack.routes(gateway), prefix))
            with operator_process(kube, tag, tag, log_path):
                wait_for(
                    lambda: (kube.get("executionplatforms", tag).get("status") or {}).get("valid") is True,
                    120,
                    f"the operator to take the platform (log: {log_path})",
                )
                yield stack
    finally:
        kube.run("delete", "namespace", tag, "--wait=false", "--ignore-not-found", check=False)
        kube.run(
            "delete", "namespace", "-l", managed_selector(tag), "--wait=false", check=False
        )  # a failed test's session
        kube.run("delete", "executionplatform", tag, "--wait=false", "--ignore-not-found", check=False)
