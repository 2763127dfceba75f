"""Isolated workloads on the real node: REST sessions run in their owner's namespace, which the
operator makes (restricted, its RoleBinding, a default-deny ingress NetworkPolicy), cleans up after
and removes once empty; and the NetworkPolicy holds under the cluster's real enforcer (kube-router):
a Pod of one owner cannot open a TCP connection to another owner's session, a Pod of the same owner
can, and the owner reaches its session through the ingress (Traefik).

The operator runs in-process with the test's namespace as the REST API's; OfferSets name their
owner and accepts are written as the REST API writes them (``offer_execution``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from tests.integration.operator.helpers import FAST, REAL_NODE_PLATFORM, Broker, ivoa_request, phase
from tests.support.ingress import ingress
from tests.support.kube import Kubectl, async_wait_for, pod_logs

from eb_operator.cluster.crs import EXECUTIONS, NotFound
from eb_operator.cluster.offer_status import offer_execution
from eb_operator.model.tenancy import owner_namespace
from eb_operator.operator.builders.namespace import build_namespace

pytestmark = pytest.mark.integration

SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + sys.argv[1] + "\\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""
#: Tries for 20 s: the enforcer admits a new Pod's address a moment after it starts (a source
#: that stays refused is refused by the policy, not by that delay).
CLIENT = """
import socket, sys, time
deadline = time.monotonic() + 20
while True:
    try:
        socket.create_connection((sys.argv[1], 8080), timeout=3).close()
        print("connected")
        break
    except OSError as e:
        if time.monotonic() > deadline:
            print("blocked", type(e).__name__)
            break
        time.sleep(1)
"""


def prefix() -> str:
    return f"i{uuid.uuid4().hex[:6]}-"


async def session(b: Broker, owner: str, command: tuple[str, ...], duration: str = "PT3M") -> dict[str, Any]:
    """Ask as ``owner`` and accept the first offer as the REST API does; the accepted Execution."""
    name = f"{owner}-{uuid.uuid4().hex[:6]}"
    await b.offerset(name, ivoa_request(command=command, duration=duration), owner=owner)
    answer = await b.answered(name)
    assert answer["status"]["result"] == "YES", answer["status"].get("messages")
    ref = answer["status"]["offers"][0]
    body = offer_execution(answer, ref, desired="ACCEPTED")
    return await b.cluster.create(EXECUTIONS, b.namespace, body)


async def pod_of(b: Broker, execution: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    return await b.cluster.get_pod(namespace, f"eb-{execution['metadata']['name']}")


async def outcome(b: Broker, execution: Mapping[str, Any], namespace: str) -> str:
    """What a client session printed, once it has run."""
    name = execution["metadata"]["name"]
    done = await b.settles(name, timeout=120)
    assert phase(done) == "COMPLETED", done.get("status")

    async def ended() -> bool:  # the scheduler counts its core until the kubelet says so
        pod = await pod_of(b, execution, namespace)
        return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")

    await async_wait_for(ended, 60, f"the Pod of {name} to have ended")
    return (await pod_logs(b.cluster.core, f"eb-{name}", namespace)).strip()


def ingress_url() -> str:
    found = ingress()
    if found is None:
        pytest.fail(
            "no ingress: the local cluster's Traefik writes its URL to ingress.env on `hack/cluster.sh up` "
            "(or set EB_INGRESS_URL)",
            pytrace=False,
        )
    return found.url


async def test_an_owner_cannot_reach_another_owners_session_but_its_own_sessions_and_the_ingress_can(
    broker: Any, kube: Kubectl
) -> None:
    b: Broker = await broker(
        {**REAL_NODE_PLATFORM, **FAST, "namespaces": {"prefix": prefix()}, "sharing": {"ownerLimits": {}}},
        rest_sessions=True,
    )
    spec = kube.get("executionplatform", b.platform)["spec"]
    bob_ns, alice_ns = (owner_namespace(o, spec["namespaces"]["prefix"]) for o in ("bob", "alice"))

    server = await session(b, "bob", ("python3", "-c", SERVER, "bob"), duration="PT5M")
    running = await b.reaches(server["metadata"]["name"], "RUNNING", timeout=120)
    assert running["status"]["childNamespace"] == bob_ns
    ip = (await pod_of(b, server, bob_ns))["status"]["podIP"]

    async def answers() -> bool:  # from the node itself: always allowed (kubelet probes)
        try:
            async with httpx.AsyncClient(timeout=2) as c:
                return (await c.get(f"http://{ip}:8080/")).text == "hello from bob\n"
        except httpx.HTTPError:
            return False

    await async_wait_for(answers, 60, "bob's server to answer")

    alice = await session(b, "alice", ("python3", "-c", CLIENT, ip))
    blocked = await outcome(b, alice, alice_ns)  # kube-router rejects (refused), or drops (timeout)
    assert blocked in ("blocked ConnectionRefusedError", "blocked TimeoutError"), blocked

    bob = await session(b, "bob", ("python3", "-c", CLIENT, ip))
    assert await outcome(b, bob, bob_ns) == "connected"

    # bob reaches his session through the ingress (routes to sessions are issue 17's; here a plain
    # Service and Ingress in his namespace, as a route would be)
    url, path = ingress_url(), f"iso-{uuid.uuid4().hex[:8]}"
    uid = server["metadata"]["uid"]
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": path, "namespace": bob_ns},
            "spec": {
                "selector": {"executionbroker.ivoa.net/execution-uid": uid},
                "ports": [{"port": 8080, "targetPort": 8080}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": path, "namespace": bob_ns},
            "spec": {
                "ingressClassName": "traefik",
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {
                                    "path": f"/{path}",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": path, "port": {"number": 8080}}},
                                }
                            ]
                        }
                    }
                ],
            },
        },
    )

    async def routed() -> bool:
        try:
            async with httpx.AsyncClient(timeout=3) as c:
                return (await c.get(f"{url}/{path}/")).text == "hello from bob\n"
        except httpx.HTTPError:
            return False

    await async_wait_for(routed, 60, f"bob's session through the ingress at {url}/{path}/")


async def test_an_owner_namespace_is_made_cleaned_up_and_removed_once_empty(
    broker: Any, kube: Kubectl
) -> None:
    b: Broker = await broker(
        {
            **REAL_NODE_PLATFORM,
            **FAST,
            "namespaces": {"prefix": prefix(), "emptyGraceSeconds": 3},
            "sharing": {"ownerLimits": {}},
        },
        rest_sessions=True,
        namespace_sweep_seconds=1.0,
        workloads_cluster_role="eb-operator-workloads",
        service_account="execution-broker/eb-operator",
    )
    spec = kube.get("executionplatform", b.platform)["spec"]
    carol_ns = owner_namespace("carol", spec["namespaces"]["prefix"])

    job = await session(b, "carol", ("sh", "-c", "echo done"))
    done = await b.settles(job["metadata"]["name"], timeout=120)
    assert phase(done) == "COMPLETED"
    assert done["status"]["childNamespace"] == carol_ns

    ns = kube.get("namespace", carol_ns)
    labels = ns["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "eb-operator"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["executionbroker.ivoa.net/platform"] == b.platform
    assert ns["metadata"]["annotations"]["executionbroker.ivoa.net/owner"] == "carol"
    policy = kube.get("networkpolicy", "eb-owner-isolation", carol_ns)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    binding = kube.get("rolebinding", "eb-operator-workloads", carol_ns)
    assert binding["roleRef"]["name"] == "eb-operator-workloads"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "eb-operator", "namespace": "execution-broker"}
    ]

    # the finished Pod stays for its logs; nothing of the session is in the test's namespace
    pod = await pod_of(b, job, carol_ns)
    assert "ownerReferences" not in pod["metadata"]
    assert pod["metadata"]["labels"]["executionbroker.ivoa.net/execution-uid"] == job["metadata"]["uid"]
    assert pod["metadata"]["annotations"]["executionbroker.ivoa.net/execution"] == (
        f"{b.namespace}/{job['metadata']['name']}"
    )
    assert kube.get("pods", None, b.namespace)["items"] == []

    # deleting the Execution deletes its children in the owner namespace, then the namespace goes
    await b.cluster.delete(EXECUTIONS, b.namespace, job["metadata"]["name"])

    async def pod_gone() -> bool:
        try:
            await pod_of(b, job, carol_ns)
        except NotFound:
            return True
        return False

    await async_wait_for(pod_gone, 60, "the session's Pod in the owner namespace to be deleted")
    await async_wait_for(
        lambda: not kube.exists("namespace", carol_ns), 120, f"the empty owner namespace {carol_ns} to go"
    )


async def test_an_owner_namespace_another_platforms_broker_made_is_not_used(
    broker: Any, kube: Kubectl, caplog: pytest.LogCaptureFixture
) -> None:
    """Two releases with one prefix (or one that is gone) name an owner's namespace alike: this
    broker does not run its session in the other's namespace (that broker's sweeper would delete it
    under the session, and this one's listings by label would miss it) and says why."""
    b: Broker = await broker(
        {**REAL_NODE_PLATFORM, **FAST, "namespaces": {"prefix": prefix()}, "sharing": {"ownerLimits": {}}},
        rest_sessions=True,
    )
    spec = kube.get("executionplatform", b.platform)["spec"]
    dave_ns = owner_namespace("dave", spec["namespaces"]["prefix"])
    kube.create(build_namespace(dave_ns, "dave", "another-platform"))
    try:
        with caplog.at_level(logging.WARNING, logger="eb_operator.operator"):
            job = await session(b, "dave", ("sh", "-c", "echo ran"))

            def refused() -> bool:
                return any(
                    "owner namespace of another platform" in r.getMessage() and dave_ns in r.getMessage()
                    for r in caplog.records
                )

            await async_wait_for(refused, 60, f"the operator to refuse {dave_ns}")
        assert kube.get("pods", None, dave_ns)["items"] == []
        now = await b.cluster.get(EXECUTIONS, b.namespace, job["metadata"]["name"])
        assert phase(now) not in ("RUNNING", "COMPLETED"), now.get("status")
    finally:
        kube.run("delete", "namespace", dave_ns, "--wait=false", check=False)
