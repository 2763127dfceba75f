"""The operator's route objects on the real API server (kwok nodes: no container needs to run to
be routed): made when a session prepares, an existing one of that name adopted, and deleted, with
the Services, when the session ends; the session's status says where it is reached; a route the
cluster refuses fails the session with the cause. Requests reach these routes through the local
cluster's ingress in tests/integration/sessions."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.integration.operator.helpers import API, COMPUTE, DOCKER, FAST, Broker, phase
from tests.support.kube import Kubectl

from eb_operator.cluster.crs import EXECUTIONS
from eb_operator.model.session_keys import jupyter_token

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(300)

KEY = b"integration-test-session-key-0123456789"
JUPYTER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0"
PUBLIC = "http://sessions.test:8088"
GATE = "http://127.0.0.1:9/gate-unused"  # the gate is not asked here: no request goes through the routes
# An ingress controller gated by annotations (no Traefik CRD needed on the API server)
ROUTES = {
    "publicUrl": PUBLIC,
    "ingressClassName": "eb-test",
    "annotations": {"example.org/auth-url": "{gate}"},
    "gate": {"url": GATE, "provider": "annotations"},
}


def compute() -> dict[str, Any]:
    return {"type": COMPUTE, "cores": {"requested": {"min": 1}}, "memory": {"requested": {"min": 1}}}


def web_app() -> dict[str, Any]:
    return {
        "type": DOCKER,
        "image": {"locations": ["eb-workload:latest"]},
        "entrypoint": "sleep",
        "command": ["600"],
        "network": {
            "ports": [{"access": True, "internal": {"port": 8000}, "protocol": "HTTP", "path": "ui/"}]
        },
    }


async def session(b: Broker, executable: dict[str, Any], owner: str | None = "alice", name: str = "") -> str:
    """A direct request as the REST API writes it (named by a uuid, with its owner)."""
    name = name or str(uuid.uuid4())
    spec: dict[str, Any] = {
        "request": {
            "executable": executable,
            "resources": {"compute": [compute()]},
            "schedule": {"requested": {"duration": "PT10M"}},
        }
    }
    if owner:
        spec["owner"] = owner
    body = {"apiVersion": API, "kind": "Execution", "metadata": {"name": name}, "spec": spec}
    await b.cluster.create(EXECUTIONS, b.namespace, body)
    return name


async def test_a_web_apps_route_is_made_adopting_what_is_there_and_goes_with_its_service_at_the_end(
    broker: MakeBroker, kube: Kubectl
) -> None:
    b = await broker({**FAST, "routes": ROUTES}, nodes=[{}], session_key=KEY)
    name = str(uuid.uuid4())
    ns, route, service = b.namespace, f"eb-{name}-route", f"eb-{name}-app"
    path = f"/session/container/{name}/8000/"
    # an Ingress of that name is there already (an earlier attempt, or made by hand): adopted
    stale = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": route, "namespace": ns, "annotations": {"left": "over"}},
        "spec": {
            "ingressClassName": "other",
            "defaultBackend": {"service": {"name": "x", "port": {"number": 1}}},
        },
    }
    kube.create(stale)

    await session(b, web_app(), name=name)
    running = await b.reaches(name, "RUNNING", "FAILED")
    assert phase(running) == "RUNNING", running["status"]
    uid = running["metadata"]["uid"]

    ingress = kube.get("ingress", route, ns)  # replaced: nothing of the old one is left
    assert ingress["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "eb-operator",
        "executionbroker.ivoa.net/execution-uid": uid,
    }
    assert [r["uid"] for r in ingress["metadata"]["ownerReferences"]] == [uid]
    assert ingress["metadata"]["annotations"] == {"example.org/auth-url": f"{GATE}/gate/{name}"}
    assert ingress["spec"] == {
        "ingressClassName": "eb-test",
        "rules": [
            {
                "host": "sessions.test",  # publicUrl's host name
                "http": {
                    "paths": [
                        {
                            "path": path,
                            "pathType": "Prefix",
                            "backend": {"service": {"name": service, "port": {"number": 8000}}},
                        }
                    ]
                },
            }
        ],
    }
    svc = kube.get("service", service, ns)
    assert svc["spec"]["selector"] == {"executionbroker.ivoa.net/execution-uid": uid}
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http-8000", 8000)]

    status = running["status"]
    assert status["route"] == {
        "kind": "container",
        "path": f"/session/container/{name}/",
        "url": f"{PUBLIC}{path}ui/",
    }
    assert status["ports"] == [
        {
            "access": True,
            "internal": {"port": 8000},
            "external": {"port": 8088, "addresses": ["sessions.test"]},
            "protocol": "HTTP",
            "path": f"{path}ui/",
        }
    ]
    [access] = status["access"]
    pod_ip = kube.get("pod", f"eb-{name}", ns)["status"]["podIP"]
    assert access == {
        "status": "ACTIVE",
        "protocol": "HTTP",
        "locations": [
            f"{PUBLIC}{path}ui/",
            f"http://{svc['spec']['clusterIP']}:8000{path}ui/",
            f"http://{pod_ip}:8000{path}ui/",
        ],
    }
    env = {
        e["name"]: e.get("value") for e in kube.get("pod", f"eb-{name}", ns)["spec"]["containers"][0]["env"]
    }
    assert env["EB_BASE_PATH"] == env["EB_BASE_PATH_8000"] == path

    await b.desire(name, "CANCELLED")
    done = await b.reaches(name, "CANCELLED")
    # gone before the phase was written: nothing routes to a session that has ended
    assert not kube.exists("ingress", route, ns)
    assert not kube.exists("service", service, ns)
    assert done["status"]["access"] == [{"status": "FINISHED", "protocol": "HTTP"}]


async def test_a_routed_notebooks_token_is_the_one_the_gate_derives_and_a_session_without_owner_has_no_route(
    broker: MakeBroker, kube: Kubectl
) -> None:
    b = await broker({**FAST, "routes": ROUTES}, nodes=[{"cpu": "4"}], session_key=KEY)
    notebook = {"type": JUPYTER}
    routed, unowned = await session(b, notebook), await session(b, notebook, owner=None)
    for name in (routed, unowned):
        ready = await b.reaches(name, "READY", "FAILED")
        assert phase(ready) == "READY", ready["status"]
    ex = await b.execution(routed)
    secret = kube.get("secret", f"eb-{routed}-notebook", b.namespace)
    assert base64.b64decode(secret["data"]["token"]).decode() == jupyter_token(KEY, ex["metadata"]["uid"])
    prefix = f"/session/notebook/{routed}/"
    assert ex["status"]["route"] == {"kind": "notebook", "path": prefix, "url": f"{PUBLIC}{prefix}lab"}
    [access] = ex["status"]["access"]
    assert access["locations"][0] == f"{PUBLIC}{prefix}lab"
    assert all(prefix in url and "?token=" in url for url in access["locations"][1:])
    assert (
        kube.get("ingress", f"eb-{routed}-route", b.namespace)["spec"]["rules"][0]["http"]["paths"][0]["path"]
        == prefix
    )

    alone = await b.execution(unowned)
    assert "route" not in alone["status"]
    assert not kube.exists("ingress", f"eb-{unowned}-route", b.namespace)
    assert all("/session/" not in url for url in alone["status"]["access"][0]["locations"])
    for name in (routed, unowned):
        await b.desire(name, "CANCELLED")
        await b.reaches(name, "CANCELLED")
        assert not kube.exists("service", f"eb-{name}-notebook", b.namespace)


async def test_a_route_the_cluster_refuses_fails_the_session_naming_why(
    broker: MakeBroker, kube: Kubectl
) -> None:
    b = await broker(
        {**FAST, "routes": {**ROUTES, "ingressClassName": "Not_A_Name"}}, nodes=[{}], session_key=KEY
    )
    name = await session(b, web_app())
    failed = await b.reaches(name, "FAILED", "RUNNING")
    assert phase(failed) == "FAILED"
    assert failed["status"]["message"].startswith("the session's route could not be made: 422"), failed[
        "status"
    ]
    assert "ingressClassName" in failed["status"]["message"]
    assert await b.pod(name) is None
    assert not kube.exists("service", f"eb-{name}-app", b.namespace)
