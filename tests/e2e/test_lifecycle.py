"""Day two: upgrading the release with sessions in flight, and uninstalling it.

These run after the other e2e modules (file order); the uninstall test leaves the release
removed, and the next test that needs it installs it again.
"""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path

import yaml
from tests.e2e.helpers import User, earliest, execution_doc, pod_of, user
from tests.e2e.install import MANAGED_BY_BROKER, Installation, namespace_doc
from tests.support.kube import wait_for

from eb_operator.client import FINAL_PHASES, BrokerClient

BEFORE_START = frozenset({"ACCEPTED", "WAITING", "PREPARING", "READY"})
STARTED = frozenset({"RUNNING"}) | FINAL_PHASES


def test_helm_upgrade_with_sessions_in_flight_loses_none(installed: Installation) -> None:
    kube, ns = installed.kube, installed.namespace
    client = BrokerClient(installed.url(), installed.tokens["alice"], timeout=60)
    before = User(client)
    try:
        # one session running through the upgrade, one accepted to start after it, one set offered
        running = before.run(["sh", "-c", "sleep 15; echo survived the upgrade"], duration="PT30S")
        assert before.follow(running["uuid"], 120, until=STARTED)["phase"] == "RUNNING"
        waiting = before.run(["sh", "-c", "echo started after the upgrade"], duration="PT30S")
        third = before.ask(["true"], duration="PT1M")
        assert third["result"] == "YES", third.get("messages")  # a set to carry through the upgrade, offered
        offered = [o["uuid"] for o in third["offers"]]
        assert client.session(waiting["uuid"])["phase"] in BEFORE_START
        pod_before = pod_of(kube, ns, running["uuid"])
        broker_before = {p["metadata"]["uid"] for p in installed.broker_pods()}
    except BaseException:
        before.tidy()
        raise
    finally:
        client.close()

    nonce = {"executionbroker.ivoa.net/e2e-upgrade": secrets.token_hex(4)}
    took = installed.install({"operator": {"podAnnotations": nonce}, "api": {"podAnnotations": nonce}})
    wait_for(
        lambda: not broker_before & {p["metadata"]["uid"] for p in installed.broker_pods()},
        120,
        "every broker Pod of before the upgrade to be gone",
    )
    assert took < 300

    with user(installed) as after:  # a new connection: a port-forward ends with its Pod
        after.sessions += [running["uuid"], waiting["uuid"], *offered]
        for uuid_ in offered:
            assert after.client.session(uuid_)["phase"] == "OFFERED", "an offer outlives the upgrade"
        assert after.follow(running["uuid"], 180)["phase"] == "COMPLETED"
        assert after.follow(waiting["uuid"], 240)["phase"] == "COMPLETED"
        accepted = after.client.accept(earliest([after.client.session(u) for u in offered])["uuid"])
        assert accepted["phase"] in BEFORE_START | {"RUNNING", "COMPLETED"}, (
            "an offer made before is still good"
        )
    pod_after = pod_of(kube, ns, running["uuid"])
    assert pod_after["metadata"]["uid"] == pod_before["metadata"]["uid"], "the running Pod was not replaced"
    assert pod_after["status"]["containerStatuses"][0]["restartCount"] == 0
    logs = kube.run("logs", f"eb-{running['uuid']}", "-n", pod_after["metadata"]["namespace"]).stdout
    assert "survived the upgrade" in logs


def test_helm_uninstall_leaves_no_pods_or_reservations(installed: Installation, tmp_path: Path) -> None:
    kube = installed.kube
    namespaces = (installed.namespace, installed.user_namespace)
    client = BrokerClient(installed.url(), installed.tokens["alice"], timeout=60)
    alice = User(client)
    name = f"direct-{uuid.uuid4().hex[:6]}"
    manifest = tmp_path / "execution.yaml"
    manifest.write_text(
        yaml.safe_dump(execution_doc(name, installed.user_namespace, ["sleep", "600"], "PT10M"))
    )
    try:
        running = alice.run(["sleep", "600"], duration="PT10M")
        assert alice.follow(running["uuid"], 120, until=STARTED)["phase"] == "RUNNING"
        alice.ask(["true"], duration="PT1M")  # offers holding capacity
        kube.run("apply", "-f", str(manifest))
        wait_for(
            lambda: (kube.get("execution", name, installed.user_namespace).get("status") or {}).get("phase"),
            60,
            "the applied Execution to be taken",
        )
        assert installed.workload_pods(), "a session is running before the uninstall"
    except BaseException:
        alice.tidy()
        kube.run("delete", "-f", str(manifest), "--ignore-not-found", "--wait=false", check=False)
        raise
    finally:
        client.close()

    # a session of someone else, in a namespace this release does not serve, must survive
    bystander = f"{installed.user_namespace}-bystander"
    kube.apply(namespace_doc(bystander))
    kube.apply(execution_doc("not-ours", bystander, ["true"], "PT1M"))

    owners = installed.owner_namespaces()
    assert owners, "alice's session runs in her owner namespace"
    t0 = time.monotonic()
    installed.uninstall()
    took = time.monotonic() - t0
    assert kube.exists("execution", "not-ours", bystander), "the uninstall touched another namespace"
    kube.run("delete", "namespace", bystander, "--wait=false")

    assert installed.helm.status(installed.release, installed.namespace) is None
    assert not installed.workload_pods(namespaces), "no workload Pod outlives the release"
    assert not installed.workload_pods(owners), "nor in an owner namespace"
    wait_for(lambda: not installed.owner_namespaces(), 120, "the owner namespaces to be gone")
    for kind in ("executions", "offersets"):
        for ns in namespaces:
            left = kube.json("get", kind, "-n", ns)["items"]
            assert not left, f"{kind} left in {ns}: {[i['metadata']['name'] for i in left]}"
    wait_for(lambda: not installed.broker_pods(), 120, "the broker's Pods to be gone")
    selector = f"app.kubernetes.io/instance={installed.release}"
    leftovers = kube.json("get", "clusterroles,clusterrolebindings,executionplatforms", "-l", selector)[
        "items"
    ]
    assert not leftovers, [f"{i['kind']}/{i['metadata']['name']}" for i in leftovers]
    pods = kube.json("get", "pods", "-A", "-l", MANAGED_BY_BROKER)["items"]
    assert not [p for p in pods if p["metadata"]["namespace"] in namespaces]
    assert took < 300
