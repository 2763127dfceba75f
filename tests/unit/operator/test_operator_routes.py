"""Sessions a person opens in a browser: their endpoints, the route objects and the gate's
Middleware, the Pod's base paths and annotation, pinned as exact dicts; the routes policy; the
session key's derived values."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.support.wire import compute, docker, notebook, request

from eb_operator.model import session_keys
from eb_operator.model.platform import PlatformPolicy, SessionRoutes
from eb_operator.model.times import format_instant, parse_instant
from eb_operator.operator.builders import endpoints, routes
from eb_operator.operator.builders import pod as pod_builder
from eb_operator.operator.builders.endpoints import Endpoint, Plan, SessionRoute
from eb_operator.operator.lifecycle import observe_pod

pytestmark = pytest.mark.unit

UUID = "6b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b201"
T0 = parse_instant("2030-01-01T10:00:00Z")
OWNER_REF = {
    "apiVersion": "executionbroker.ivoa.net/v1alpha1",
    "kind": "Execution",
    "name": UUID,
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": False,
}
MANAGED = {"app.kubernetes.io/managed-by": "eb-operator", "executionbroker.ivoa.net/execution-uid": "uid-1"}
GATE = "http://10.215.0.10:80"
LOCAL = {"publicUrl": "http://10.213.0.1:8088", "ingressClassName": "traefik", "gate": {"url": GATE}}
SITE = {
    "publicUrl": "https://sessions.example.org",
    "ingressClassName": "traefik",
    "tlsSecretName": "sessions-tls",
    "annotations": {"example.org/team": "astro"},
    "gate": {"service": {"namespace": "execution-broker", "name": "execution-broker", "port": 80}},
}
GATEWAY = {
    "publicUrl": "http://10.213.0.1:8088",
    "gateway": {"namespace": "eb-ingress", "name": "eb-gateway"},
    "gate": {"url": GATE},
}
NB_PATH = f"/session/notebook/{UUID}/"
MIDDLEWARES = {
    "traefik.ingress.kubernetes.io/router.middlewares": f"execution-broker-eb-{UUID}-gate@kubernetescrd"
}
APP_PATH = f"/session/container/{UUID}/"


def execution(req: dict[str, Any], owner: str | None = "alice") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "request": req,
        "reservation": {
            "node": "node-a",
            "prepareStart": format_instant(T0 - 30),
            "start": format_instant(T0),
            "duration": "PT1H",
            "releaseEnd": format_instant(T0 + 3660),
            "cores": 1,
            "memoryGiB": 1,
        },
    }
    if owner:
        spec["owner"] = owner
    return {
        "apiVersion": "executionbroker.ivoa.net/v1alpha1",
        "metadata": {"name": UUID, "namespace": "execution-broker", "uid": "uid-1"},
        "spec": spec,
    }


def policy(routes_spec: dict[str, Any] | None = None) -> PlatformPolicy:
    return PlatformPolicy.model_validate({"routes": routes_spec} if routes_spec else {})


def web_app(*ports: dict[str, Any]) -> dict[str, Any]:
    return docker("eb-workload:latest", network={"ports": list(ports)})


def port(number: int, protocol: str = "HTTP", access: bool = True, **extra: Any) -> dict[str, Any]:
    return {"access": access, "internal": {"port": number}, "protocol": protocol, **extra}


# --- endpoints ---------------------------------------------------------------------------------


def test_a_routed_notebook_opens_its_notebook_in_jupyterlab_under_the_sessions_path() -> None:
    exe = notebook("http://files.example.org/nb/My%20Analysis.ipynb")
    assert endpoints.plan(execution(request(exe)), exe, policy(LOCAL)) == Plan(
        SessionRoute("notebook", NB_PATH, f"http://10.213.0.1:8088{NB_PATH}lab/tree/My%20Analysis.ipynb"),
        (
            Endpoint(
                port=8888,
                protocol="HTTP",
                service=f"eb-{UUID}-notebook",
                base_path=NB_PATH,
                url=f"http://10.213.0.1:8088{NB_PATH}lab/tree/My%20Analysis.ipynb",
                open_path="lab/tree/My%20Analysis.ipynb",
                notebook=True,
            ),
        ),
    )


@pytest.mark.parametrize(
    ("location", "open_path"),
    [
        ("http://files.example.org/data.csv", "lab"),
        ("", "lab"),
        ("http://x.org/a/b.ipynb?raw=1", "lab/tree/b.ipynb"),
    ],
    ids=["a location that is no notebook", "no location", "a notebook URL with a query"],
)
def test_a_notebook_opens_jupyterlab_on_its_file_only_when_it_names_one(
    location: str, open_path: str
) -> None:
    exe = notebook(location)
    [e] = endpoints.plan(execution(request(exe)), exe, policy(LOCAL)).endpoints
    assert e.open_path == open_path


@pytest.mark.parametrize(
    ("routes_spec", "owner"),
    [(None, "alice"), (LOCAL, None)],
    ids=["the platform has no routes", "the session has no owner for the gate to let in"],
)
def test_without_a_route_a_notebook_serves_at_the_root_and_has_no_public_url(
    routes_spec: dict[str, Any] | None, owner: str | None
) -> None:
    exe = notebook("http://files.example.org/a.ipynb")
    assert endpoints.plan(execution(request(exe), owner), exe, policy(routes_spec)) == Plan(
        None,
        (
            Endpoint(
                port=8888,
                protocol="HTTP",
                service=f"eb-{UUID}-notebook",
                base_path="/",
                open_path="lab/tree/a.ipynb",
                notebook=True,
            ),
        ),
    )


def test_a_containers_http_and_https_access_ports_get_a_path_each_and_the_rest_none() -> None:
    exe = web_app(
        port(8000, path="/index.html"),
        port(8443, "https"),
        port(9000, access=False),
        port(5432, "TCP"),
        {"access": True, "protocol": "HTTP"},  # no internal port
    )
    plan = endpoints.plan(execution(request(exe)), exe, policy(LOCAL))
    app = f"eb-{UUID}-app"
    assert plan == Plan(
        SessionRoute("container", APP_PATH, f"http://10.213.0.1:8088{APP_PATH}8000/index.html"),
        (
            Endpoint(
                8000,
                "HTTP",
                app,
                f"{APP_PATH}8000/",
                f"http://10.213.0.1:8088{APP_PATH}8000/index.html",
                "index.html",
            ),
            Endpoint(8443, "HTTPS", app, f"{APP_PATH}8443/", f"http://10.213.0.1:8088{APP_PATH}8443/"),
        ),
    )
    assert endpoints.base_path_env(plan.endpoints) == {
        "EB_BASE_PATH": f"{APP_PATH}8000/",
        "EB_BASE_PATH_8000": f"{APP_PATH}8000/",
        "EB_BASE_PATH_8443": f"{APP_PATH}8443/",
    }
    assert endpoints.network_ports(plan.endpoints) == [
        {
            "access": True,
            "internal": {"port": 8000},
            "external": {"port": 8088, "addresses": ["10.213.0.1"]},
            "protocol": "HTTP",
            "path": f"{APP_PATH}8000/index.html",
        },
        {
            "access": True,
            "internal": {"port": 8443},
            "external": {"port": 8088, "addresses": ["10.213.0.1"]},
            "protocol": "HTTPS",
            "path": f"{APP_PATH}8443/",
        },
    ]


def test_a_container_without_access_ports_has_no_endpoints() -> None:
    exe = web_app(port(8000, access=False))
    assert endpoints.plan(execution(request(exe)), exe, policy(LOCAL)) == Plan(None, ())
    assert endpoints.base_path_env(()) == {}


def test_the_plan_survives_the_pods_annotation_and_a_foreign_value_is_no_plan() -> None:
    exe = web_app(port(8000), port(8443, "HTTPS"))
    plan = endpoints.plan(execution(request(exe)), exe, policy(SITE))
    assert endpoints.decode(endpoints.encode(plan)) == plan
    for foreign in ("", "[]", "{", '{"endpoints": [{"port": 1}]}'):
        assert endpoints.decode(foreign) == Plan(None, ())


# --- the Pod ------------------------------------------------------------------------------------


def test_a_routed_web_apps_pod_is_told_its_base_paths_and_carries_its_plan() -> None:
    exe = web_app(port(8000))
    exe["environment"] = {"EB_BASE_PATH": "/mine/", "OTHER": "1"}
    ex = execution(request(exe, compute(1, 1)))
    pod = pod_builder.build_pod(ex, exe, policy(LOCAL), now=T0)
    [main] = pod["spec"]["containers"]
    assert main["env"] == [
        {"name": "EB_BASE_PATH", "value": f"{APP_PATH}8000/"},
        {"name": "EB_BASE_PATH_8000", "value": f"{APP_PATH}8000/"},
        {"name": "OTHER", "value": "1"},
    ]
    assert main["ports"] == [{"containerPort": 8000, "protocol": "TCP"}]
    assert pod["metadata"]["annotations"] == {
        "executionbroker.ivoa.net/endpoints": endpoints.encode(endpoints.plan(ex, exe, policy(LOCAL)))
    }
    assert observe_pod(pod).reach == endpoints.plan(ex, exe, policy(LOCAL))


def test_a_batch_pod_has_no_endpoints_annotation() -> None:
    exe = docker("eb-workload:latest")
    pod = pod_builder.build_pod(execution(request(exe, compute(1, 1))), exe, policy(LOCAL), now=T0)
    assert "annotations" not in pod["metadata"]
    assert observe_pod(pod).reach is None


def test_a_routed_notebook_server_serves_under_its_path_and_is_ready_there() -> None:
    exe = notebook("http://files.example.org/a.ipynb")
    pod = pod_builder.build_pod(execution(request(exe, compute(1, 1))), exe, policy(LOCAL), now=T0)
    [main] = pod["spec"]["containers"]
    assert main["args"] == [
        "--ip=0.0.0.0",
        "--port=8888",
        "--no-browser",
        "--ServerApp.root_dir=/home/eb/work",
        "--ServerApp.allow_remote_access=True",
        f"--ServerApp.base_url={NB_PATH}",
    ]
    assert main["env"][-1] == {"name": "EB_BASE_PATH", "value": NB_PATH}
    assert main["readinessProbe"]["httpGet"] == {"path": f"{NB_PATH}api", "port": 8888}


# --- route objects ------------------------------------------------------------------------------


def notebook_plan(routes_spec: dict[str, Any]) -> tuple[dict[str, Any], Plan, SessionRoutes]:
    exe = notebook("http://files.example.org/a.ipynb")
    ex = execution(request(exe))
    pol = policy(routes_spec)
    assert pol.routes is not None
    return ex, endpoints.plan(ex, exe, pol), pol.routes


def test_the_gate_is_a_forwardauth_middleware_asking_the_api_about_this_session() -> None:
    ex, _, _ = notebook_plan(LOCAL)
    assert routes.build_middleware(ex, GATE + "/") == {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": {
            "name": f"eb-{UUID}-gate",
            "namespace": "execution-broker",
            "labels": MANAGED,
            "ownerReferences": [OWNER_REF],
        },
        "spec": {
            "forwardAuth": {
                "address": f"{GATE}/gate/{UUID}",
                "authRequestHeaders": ["Accept", "Authorization", "Cookie"],
                "authResponseHeaders": ["Authorization", "X-Eb-User"],
            }
        },
    }


def test_a_routed_notebook_has_an_ingress_of_the_platforms_class_behind_its_gate() -> None:
    ex, plan, pol = notebook_plan(LOCAL)
    assert routes.route_objects(ex, plan.endpoints, pol, GATE)[1:] == [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": f"eb-{UUID}-route",
                "namespace": "execution-broker",
                "labels": MANAGED,
                "ownerReferences": [OWNER_REF],
                "annotations": MIDDLEWARES,
            },
            "spec": {
                "ingressClassName": "traefik",
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {
                                    "path": NB_PATH,
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": f"eb-{UUID}-notebook", "port": {"number": 8888}}
                                    },
                                }
                            ]
                        }
                    }
                ],
            },
        }
    ]
    assert [o["kind"] for o in routes.route_objects(ex, plan.endpoints, pol, GATE)] == [
        "Middleware",
        "Ingress",
    ]


def test_a_sites_ingress_matches_its_host_with_tls_and_its_annotations() -> None:
    ex, plan, pol = notebook_plan(SITE)
    ingress = routes.build_ingress(ex, plan.endpoints, pol, GATE)
    assert ingress["metadata"]["annotations"] == {"example.org/team": "astro", **MIDDLEWARES}
    assert ingress["spec"] == {
        "ingressClassName": "traefik",
        "tls": [{"hosts": ["sessions.example.org"], "secretName": "sessions-tls"}],
        "rules": [
            {
                "host": "sessions.example.org",
                "http": {
                    "paths": [
                        {
                            "path": NB_PATH,
                            "pathType": "Prefix",
                            "backend": {"service": {"name": f"eb-{UUID}-notebook", "port": {"number": 8888}}},
                        }
                    ]
                },
            }
        ],
    }
    assert plan.route is not None
    assert plan.route.url == f"https://sessions.example.org{NB_PATH}lab/tree/a.ipynb"


def test_with_annotation_gating_there_is_no_middleware_and_the_gates_url_fills_the_annotations() -> None:
    spec = {
        **LOCAL,
        "ingressClassName": "nginx",
        "annotations": {"nginx.ingress.kubernetes.io/auth-url": "{gate}"},
        "gate": {"url": GATE, "provider": "annotations"},
    }
    ex, plan, pol = notebook_plan(spec)
    [ingress] = routes.route_objects(ex, plan.endpoints, pol, GATE)
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/auth-url": f"{GATE}/gate/{UUID}"
    }


def test_a_web_app_on_a_gateway_has_its_service_and_an_httproute_with_a_rule_per_port() -> None:
    exe = web_app(port(8000), port(8443, "HTTPS"))
    ex = execution(request(exe))
    pol = policy(GATEWAY)
    assert pol.routes is not None
    plan = endpoints.plan(ex, exe, pol)
    service, middleware, route = routes.route_objects(ex, plan.endpoints, pol.routes, GATE)
    assert middleware["kind"] == "Middleware"
    assert service == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"eb-{UUID}-app",
            "namespace": "execution-broker",
            "labels": MANAGED,
            "ownerReferences": [OWNER_REF],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {"executionbroker.ivoa.net/execution-uid": "uid-1"},
            "ports": [
                {"name": "http-8000", "port": 8000, "targetPort": 8000, "protocol": "TCP"},
                {
                    "name": "https-8443",
                    "port": 8443,
                    "targetPort": 8443,
                    "protocol": "TCP",
                    "appProtocol": "https",
                },
            ],
        },
    }
    gate = {
        "type": "ExtensionRef",
        "extensionRef": {"group": "traefik.io", "kind": "Middleware", "name": f"eb-{UUID}-gate"},
    }
    assert route == {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": f"eb-{UUID}-route",
            "namespace": "execution-broker",
            "labels": MANAGED,
            "ownerReferences": [OWNER_REF],
        },
        "spec": {
            "parentRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "namespace": "eb-ingress",
                    "name": "eb-gateway",
                }
            ],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": f"{APP_PATH}8000/"}}],
                    "filters": [gate],
                    "backendRefs": [{"name": f"eb-{UUID}-app", "port": 8000}],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": f"{APP_PATH}8443/"}}],
                    "filters": [gate],
                    "backendRefs": [{"name": f"eb-{UUID}-app", "port": 8443}],
                },
            ],
        },
    }


# --- the policy ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"publicUrl": "sessions.example.org"}, "absolute http(s) URL"),
        ({"publicUrl": "https://sessions.example.org/sub"}, "scheme, host and port only"),
        ({"pathPrefix": "/session"}, "start and end with /"),
        ({"tlsSecretName": "tls"}, "needs a host name"),
        ({"gate": {}}, "exactly one of url and service"),
        (
            {"gate": {"url": GATE, "service": {"namespace": "a", "name": "b"}}},
            "exactly one of url and service",
        ),
        ({"gate": {"url": "10.0.0.1:80"}}, "http(s) URL"),
        (
            {"gateway": {"namespace": "a", "name": "b"}, "gate": {"url": GATE, "provider": "annotations"}},
            "gate.provider traefik",
        ),
    ],
    ids=[
        "a public URL without a scheme",
        "a public URL with a path",
        "a path prefix without its slashes",
        "TLS on an address",
        "a gate with neither address",
        "a gate with both addresses",
        "a gate URL without a scheme",
        "annotation gating on a Gateway",
    ],
)
def test_a_routes_policy_that_cannot_work_is_refused_naming_why(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PlatformPolicy.model_validate({"routes": {**LOCAL, **change}})


def test_the_routes_match_the_public_urls_host_name_and_any_host_for_an_address() -> None:
    assert SessionRoutes.model_validate(SITE).match_host == "sessions.example.org"
    assert SessionRoutes.model_validate(LOCAL).match_host is None
    assert SessionRoutes.model_validate({**LOCAL, "host": "nb.local"}).match_host == "nb.local"


# --- the session key ----------------------------------------------------------------------------


def test_a_notebooks_token_is_derived_per_execution_and_per_key() -> None:
    key, other = b"k" * 32, b"o" * 32
    token = session_keys.jupyter_token(key, "uid-1")
    assert len(token) == 48
    assert token == session_keys.jupyter_token(key, "uid-1")
    assert token != session_keys.jupyter_token(key, "uid-2")
    assert token != session_keys.jupyter_token(other, "uid-1")
    # the parts are framed: moving a separator between them does not give the same MAC
    assert session_keys.mac(key, "p", "ab", "c") != session_keys.mac(key, "p", "a", "bc")


def test_a_short_session_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        session_keys.check_key(b"short")
    assert session_keys.check_key(b"x" * 32) == b"x" * 32
