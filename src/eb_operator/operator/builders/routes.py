"""A routed session's objects (see :mod:`.endpoints`): pure builders.

* the Service in front of a container's routed ports (a notebook's is :func:`.notebook.build_service`);
* the gate: a Traefik ``Middleware`` (``traefik.io/v1alpha1``) whose ForwardAuth asks the broker's
  REST API, ``GET <gate>/gate/<uuid>``, about every request: it sends the client's
  ``Authorization``, ``Cookie`` and ``Accept`` (nothing else of the request), and on 2xx replaces
  the request's ``Authorization`` and ``X-Eb-User`` with the gate's (the Jupyter server's token for
  a notebook, none for an app: the client's own credentials never reach the session);
* the route: a ``networking.k8s.io/v1`` Ingress of the platform's class, or, when the platform names
  a Gateway, a ``gateway.networking.k8s.io/v1`` HTTPRoute attached to it; one path per endpoint,
  the gate in front (the Ingress's ``router.middlewares`` annotation, the HTTPRoute's
  ``ExtensionRef`` filter), host, TLS and extra annotations from the platform's ``routes``.

With gate provider ``annotations`` no Middleware is made: the platform's annotations configure the
ingress controller's own external authentication, ``{gate}`` standing for the gate's URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eb_operator.cluster.convert import LABEL_EXECUTION_UID, object_uuid
from eb_operator.model.platform import SessionRoutes
from eb_operator.operator.builders.children import child_metadata
from eb_operator.operator.builders.endpoints import Endpoint
from eb_operator.operator.builders.storage import child_name

Obj = Mapping[str, Any]

INGRESS = "Ingress"
HTTPROUTE = "HTTPRoute"
MIDDLEWARE = "Middleware"
TRAEFIK_MIDDLEWARES = "traefik.ingress.kubernetes.io/router.middlewares"
GATE_REQUEST_HEADERS = ["Accept", "Authorization", "Cookie"]
GATE_RESPONSE_HEADERS = ["Authorization", "X-Eb-User"]


def route_name(execution_name: str) -> str:
    return child_name(execution_name, "route")


def gate_name(execution_name: str) -> str:
    return child_name(execution_name, "gate")


def app_service_name(execution_name: str) -> str:
    return child_name(execution_name, "app")


def gate_url(gate_address: str, uuid: str) -> str:
    """The gate's URL for one session: the REST API's base address, ``/gate/<uuid>``."""
    return f"{gate_address.rstrip('/')}/gate/{uuid}"


def _service_port(e: Endpoint) -> dict[str, Any]:
    """One port of the app's Service. An HTTPS port is one the app serves TLS on itself: Traefik
    then speaks TLS to it (an Ingress backend whose port name starts with https, an HTTPRoute
    backend whose appProtocol is https)."""
    if e.protocol == "HTTPS":
        return {
            "name": f"https-{e.port}",
            "port": e.port,
            "targetPort": e.port,
            "protocol": "TCP",
            "appProtocol": "https",
        }
    return {"name": f"http-{e.port}", "port": e.port, "targetPort": e.port, "protocol": "TCP"}


def build_app_service(execution: Obj, endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """A ClusterIP Service selecting the session's Pod, one port per routed container port."""
    meta = execution["metadata"]
    ports = [_service_port(e) for e in endpoints if not e.notebook]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(execution, app_service_name(meta["name"])),
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_EXECUTION_UID: meta["uid"]},
            "ports": ports,
        },
    }


def build_middleware(execution: Obj, gate_address: str) -> dict[str, Any]:
    """The session's gate: a Traefik ForwardAuth Middleware asking the REST API."""
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": MIDDLEWARE,
        "metadata": child_metadata(execution, gate_name(execution["metadata"]["name"])),
        "spec": {
            "forwardAuth": {
                "address": gate_url(gate_address, object_uuid(execution)),
                "authRequestHeaders": list(GATE_REQUEST_HEADERS),
                "authResponseHeaders": list(GATE_RESPONSE_HEADERS),
            }
        },
    }


def _annotations(routes: SessionRoutes, gate: str, middleware: str | None) -> dict[str, str]:
    out = {k: v.replace("{gate}", gate) for k, v in routes.annotations.items()}
    if middleware is not None:
        theirs = out.get(TRAEFIK_MIDDLEWARES)
        out[TRAEFIK_MIDDLEWARES] = middleware + (f",{theirs}" if theirs else "")
    return out


def build_ingress(
    execution: Obj, endpoints: Sequence[Endpoint], routes: SessionRoutes, gate_address: str
) -> dict[str, Any]:
    """An Ingress with one Prefix path per endpoint, behind the gate."""
    meta = child_metadata(execution, route_name(execution["metadata"]["name"]))
    traefik = routes.gate.provider == "traefik"
    middleware = f"{meta['namespace']}-{gate_name(execution['metadata']['name'])}@kubernetescrd"
    annotations = _annotations(
        routes, gate_url(gate_address, object_uuid(execution)), middleware if traefik else None
    )
    if annotations:
        meta["annotations"] = annotations
    paths = [
        {
            "path": e.base_path,
            "pathType": "Prefix",
            "backend": {"service": {"name": e.service, "port": {"number": e.port}}},
        }
        for e in endpoints
    ]
    rule: dict[str, Any] = {"http": {"paths": paths}}
    host = routes.match_host
    if host:
        rule = {"host": host, **rule}
    spec: dict[str, Any] = {}
    if routes.ingress_class_name:
        spec["ingressClassName"] = routes.ingress_class_name
    if routes.tls_secret_name and host:
        spec["tls"] = [{"hosts": [host], "secretName": routes.tls_secret_name}]
    spec["rules"] = [rule]
    return {"apiVersion": "networking.k8s.io/v1", "kind": INGRESS, "metadata": meta, "spec": spec}


def build_httproute(
    execution: Obj, endpoints: Sequence[Endpoint], routes: SessionRoutes, gate_address: str
) -> dict[str, Any]:
    """An HTTPRoute on the platform's Gateway with one PathPrefix rule per endpoint, each behind the
    gate (TLS is the Gateway listener's business, not the route's)."""
    assert routes.gateway is not None
    name = execution["metadata"]["name"]
    meta = child_metadata(execution, route_name(name))
    annotations = _annotations(routes, gate_url(gate_address, object_uuid(execution)), None)
    if annotations:
        meta["annotations"] = annotations
    parent: dict[str, Any] = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "namespace": routes.gateway.namespace,
        "name": routes.gateway.name,
    }
    if routes.gateway.section_name:
        parent["sectionName"] = routes.gateway.section_name
    gate = {
        "type": "ExtensionRef",
        "extensionRef": {"group": "traefik.io", "kind": MIDDLEWARE, "name": gate_name(name)},
    }
    rules = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": e.base_path}}],
            "filters": [dict(gate)],
            "backendRefs": [{"name": e.service, "port": e.port}],
        }
        for e in endpoints
    ]
    spec: dict[str, Any] = {"parentRefs": [parent]}
    host = routes.match_host
    if host:
        spec["hostnames"] = [host]
    spec["rules"] = rules
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": HTTPROUTE, "metadata": meta, "spec": spec}


def route_objects(
    execution: Obj, endpoints: Sequence[Endpoint], routes: SessionRoutes, gate_address: str
) -> list[dict[str, Any]]:
    """Everything a routed session needs besides its notebook Service, in the order to create it:
    a container's Service, the gate, then the route (which names both)."""
    out = []
    if any(not e.notebook for e in endpoints):
        out.append(build_app_service(execution, endpoints))
    if routes.gate.provider == "traefik":
        out.append(build_middleware(execution, gate_address))
    build = build_httproute if routes.gateway is not None else build_ingress
    out.append(build(execution, endpoints, routes, gate_address))
    return out


def route_kind(routes: SessionRoutes) -> str:
    return HTTPROUTE if routes.gateway is not None else INGRESS
