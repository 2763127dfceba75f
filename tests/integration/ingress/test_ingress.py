"""The local cluster's ingress: Traefik, a host process started by ``hack/cluster.sh up``, on the
node address (``EB_INGRESS_URL``, by default http://10.213.0.1:8088).

Real Pods on the real node answer through it: an Ingress of class ``traefik`` and an HTTPRoute
attached to the shared Gateway route to them, and stop routing (404) once deleted; a ForwardAuth
Middleware (Traefik's CRD) in front of a route makes Traefik ask a small auth server in the
cluster first (401 without the right header, 200 with it), from an Ingress and from an
HTTPRoute; a websocket through a route echoes. Every wait is on a condition, with a bound.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from typing import Any

import httpx
import pytest
from tests.integration.ingress.conftest import server_pod, service, start
from tests.support.ingress import (
    Ingress,
    answer,
    cluster_ip_url,
    httproute_manifest,
    ingress_manifest,
    node_port_url,
    wait_answer,
)
from tests.support.kube import Kubectl, unique_name, wait_for
from websockets.sync.client import connect

pytestmark = pytest.mark.timeout(600)

ROUTE_TIMEOUT = 60  # a route answers within a few seconds of its creation; this bounds the wait
WEB_PORT = 8000
AUTH_PORT = 9000
AUTH_HEADER = "X-Eb-Test-Key"


def _web_server(name: str, prefix: str, marker: str) -> list[dict[str, Any]]:
    """python3 -m http.server behind a Service; GET <prefix> answers ``marker``."""
    script = (
        f"mkdir -p /tmp/www{prefix} && printf %s {marker} > /tmp/www{prefix}/index.html && "
        f"cd /tmp/www && exec python3 -m http.server {WEB_PORT}"
    )
    return [server_pod(name, ["sh", "-c", script], WEB_PORT), service(name, 80, WEB_PORT)]


# --- routes to a real Pod, and gone when deleted -----------------------------------------------


def test_an_ingress_of_class_traefik_routes_to_a_pod_until_it_is_deleted(
    kube: Kubectl, ns: str, edge: Ingress
) -> None:
    name, prefix, marker = unique_name("web", 30), f"/ing-{uuid.uuid4().hex[:8]}/", uuid.uuid4().hex
    start(kube, ns, _web_server(name, prefix, marker))
    url = edge.url + prefix
    assert answer(url)[0] == 404  # nothing routes there yet

    kube.apply(ingress_manifest(name, ns, edge.ingress_class, prefix, name))
    wait_answer(url, 200, marker)
    # Traefik reports where it serves the Ingress in its status
    wait_for(
        lambda: kube.get("ingress", name, ns)["status"]["loadBalancer"]["ingress"][0]["ip"],
        ROUTE_TIMEOUT,
        "the Ingress's status to name the ingress address",
    )

    kube.run("delete", "ingress", name, "-n", ns)
    wait_answer(url, 404)


def test_an_httproute_on_the_shared_gateway_routes_to_a_pod_until_it_is_deleted(
    kube: Kubectl, ns: str, edge: Ingress
) -> None:
    name, prefix, marker = unique_name("gw", 30), f"/gw-{uuid.uuid4().hex[:8]}/", uuid.uuid4().hex
    start(kube, ns, _web_server(name, prefix, marker))
    url = edge.url + prefix
    assert answer(url)[0] == 404

    kube.apply(httproute_manifest(name, ns, edge, prefix, name))
    wait_answer(url, 200, marker)
    route = kube.get("httproute", name, ns)
    (parent,) = route["status"]["parents"]
    assert parent["parentRef"]["name"] == edge.gateway_name
    assert {c["type"]: c["status"] for c in parent["conditions"]}["Accepted"] == "True"

    kube.run("delete", "httproute", name, "-n", ns)
    wait_answer(url, 404)


# --- a ForwardAuth gate ---------------------------------------------------------------------


AUTH_SERVER = textwrap.dedent(
    """
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    KEY = sys.argv[1]

    class Gate(BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.headers.get("{header}") == KEY
            self.send_response(200 if ok else 401)
            if ok:
                self.send_header("X-Eb-User", "alice")
            self.send_header("Content-Length", "0")
            self.end_headers()

    ThreadingHTTPServer(("", {port}), Gate).serve_forever()
    """
).format(header=AUTH_HEADER, port=AUTH_PORT)


@pytest.fixture(scope="module")
def gates(kube: Kubectl, ns: str) -> tuple[dict[str, str], str]:
    """ForwardAuth Middlewares in ``ns`` asking one tiny auth server (200 when the request carries
    ``X-Eb-Test-Key: <key>``, else 401): ``gate-cluster-ip`` through its Service's ClusterIP,
    ``gate-node-port`` through its NodePort on the node address, the two URLs a host process
    (Traefik) can open. Returns ({address kind: middleware name}, key)."""
    key = uuid.uuid4().hex
    server = server_pod("auth", ["python3", "-c", AUTH_SERVER, key], AUTH_PORT)
    start(kube, ns, [server, service("auth", AUTH_PORT, AUTH_PORT, kind="NodePort")])
    names = {}
    for kind, url in (("cluster-ip", cluster_ip_url), ("node-port", node_port_url)):
        address = url(kube, ns, "auth", AUTH_PORT, "/check")
        # kube-proxy serves a new Service's endpoints a moment after the Pod is Ready
        wait_for(
            lambda a=address: httpx.get(a, headers={AUTH_HEADER: key}, timeout=5).status_code == 200,
            ROUTE_TIMEOUT,
            f"the auth server to answer on {address} from this host",
        )
        names[kind] = f"gate-{kind}"
        middleware = {
            "apiVersion": "traefik.io/v1alpha1",
            "kind": "Middleware",
            "metadata": {"name": names[kind], "namespace": ns},
            "spec": {"forwardAuth": {"address": address, "authResponseHeaders": ["X-Eb-User"]}},
        }
        kube.apply(middleware)
    return names, key


@pytest.mark.parametrize("address", ["cluster-ip", "node-port"])
@pytest.mark.parametrize("kind", ["Ingress", "HTTPRoute"])
def test_a_forwardauth_middleware_gates_a_route(
    kube: Kubectl, ns: str, edge: Ingress, gates: tuple[dict[str, str], str], kind: str, address: str
) -> None:
    names, key = gates
    middleware = names[address]
    name, prefix = unique_name(f"gated-{kind.lower()}", 30), f"/auth-{uuid.uuid4().hex[:8]}/"
    start(kube, ns, _web_server(name, prefix, "gated"))
    if kind == "Ingress":
        # Traefik names a CRD middleware <namespace>-<name>@kubernetescrd
        annotations = {"traefik.ingress.kubernetes.io/router.middlewares": f"{ns}-{middleware}@kubernetescrd"}
        route = ingress_manifest(name, ns, edge.ingress_class, prefix, name, annotations=annotations)
    else:
        ref = {"group": "traefik.io", "kind": "Middleware", "name": middleware}
        route = httproute_manifest(
            name, ns, edge, prefix, name, filters=[{"type": "ExtensionRef", "extensionRef": ref}]
        )
    kube.apply(route)
    url = edge.url + prefix

    wait_answer(url, 401)  # the route exists and the gate is in front of it
    assert answer(url, {AUTH_HEADER: "wrong"})[0] == 401
    assert answer(url, {AUTH_HEADER: key}) == (200, "gated")

    kube.run("delete", kind.lower(), name, "-n", ns)
    wait_answer(url, 404, headers={AUTH_HEADER: key})


# --- websockets ------------------------------------------------------------------------------


ECHO_SERVER = textwrap.dedent(
    """
    import sys
    import tornado.ioloop, tornado.web, tornado.websocket

    PREFIX = sys.argv[1]

    class Echo(tornado.websocket.WebSocketHandler):
        def on_message(self, message):
            self.write_message(message)

    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("echo server")

    tornado.web.Application([(PREFIX + "ws", Echo), (PREFIX, Hello)]).listen({port})
    tornado.ioloop.IOLoop.current().start()
    """
).format(port=WEB_PORT)


@pytest.mark.parametrize("kind", ["Ingress", "HTTPRoute"])
def test_a_websocket_through_the_ingress_echoes(
    kube: Kubectl, ns: str, edge: Ingress, notebook_image: str, kind: str
) -> None:
    # tornado's websocket server, from the notebook test image (jupyter-server's own)
    name, prefix = unique_name(f"ws-{kind.lower()}", 30), f"/ws-{uuid.uuid4().hex[:8]}/"
    pod = server_pod(name, ["python3", "-c", ECHO_SERVER, prefix], WEB_PORT, image=notebook_image)
    start(kube, ns, [pod, service(name, 80, WEB_PORT)])
    route = (
        ingress_manifest(name, ns, edge.ingress_class, prefix, name)
        if kind == "Ingress"
        else httproute_manifest(name, ns, edge, prefix, name)
    )
    kube.apply(route)
    wait_answer(edge.url + prefix, 200, "echo server")

    ws_url = edge.url.replace("http://", "ws://", 1) + prefix + "ws"
    with connect(ws_url, open_timeout=10, close_timeout=5) as ws:
        for i in range(3):
            message = json.dumps({"n": i, "nonce": uuid.uuid4().hex})
            ws.send(message)
            assert ws.recv(timeout=10) == message
