"""The installed broker, used as a user would: REST through its Service, ebctl, kubectl apply."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from tests.e2e.helpers import WORKLOAD_IMAGE, assert_ran_on_a_real_node, execution_doc, pod_of, user
from tests.e2e.install import Installation
from tests.support.kube import Kubectl, wait_for

from eb_operator.client import FINAL_PHASES, BrokerClient, BrokerError

RUN_TIMEOUT = 180  # seconds from accept to a final phase: a slot, Pod start, a few seconds of work


def test_the_broker_runs_one_operator_and_two_api_replicas_as_restricted_pods(
    installed: Installation,
) -> None:
    pods = installed.broker_pods()
    by = {
        c: [p for p in pods if p["metadata"]["labels"].get("app.kubernetes.io/component") == c]
        for c in ("operator", "api")
    }
    assert len(by["operator"]) == 1
    assert len(by["api"]) == 2
    for pod in pods:
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert sc["readOnlyRootFilesystem"] is True
        assert pod["status"]["containerStatuses"], pod["status"]
        assert all(s["ready"] for s in pod["status"]["containerStatuses"]), pod["status"]
    ns = installed.kube.get("namespace", installed.namespace)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    kinds = installed.kube.json("get", "pdb,networkpolicy", "-n", installed.namespace)["items"]
    assert sorted(k["kind"] for k in kinds) == ["NetworkPolicy", "NetworkPolicy", "PodDisruptionBudget"]


def test_a_rest_session_runs_to_completed_in_a_real_pod(installed: Installation) -> None:
    with user(installed) as alice:
        session = alice.run(["sh", "-c", "echo hello from the broker"], cores=1, memory=1, duration="PT1M")
        assert session["phase"] in ("ACCEPTED", "WAITING", "PREPARING", "READY", "RUNNING", "COMPLETED")
        done = alice.follow(session["uuid"], RUN_TIMEOUT)
    assert done["phase"] == "COMPLETED", done
    pod = pod_of(installed.kube, installed.namespace, session["uuid"])
    assert_ran_on_a_real_node(installed.kube, pod)
    logs = installed.kube.run("logs", pod["metadata"]["name"], "-n", pod["metadata"]["namespace"]).stdout
    assert "hello from the broker" in logs
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert (limits["cpu"], limits["memory"]) == ("1", "1Gi")


def test_ebctl_offers_accepts_and_watches_to_completed(installed: Installation, tmp_path: Path) -> None:
    env = {**os.environ, "EB_URL": installed.url(), "EB_TOKEN": installed.tokens["alice"]}
    argv = [
        sys.executable,
        "-m",
        "eb_operator.client.cli",
        "-o",
        "json",
        "offer",
        "--cores",
        "1",
        "--memory",
        "1",
    ]
    argv += ["--duration", "1m", "--image", WORKLOAD_IMAGE, "--", "sh", "-c", "echo from ebctl"]
    offered = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert offered.returncode == 0, offered.stderr
    answer = json.loads(offered.stdout)
    first = min(answer["offers"], key=lambda o: o["schedule"]["executing"]["start"])
    others = [o["uuid"] for o in answer["offers"] if o["uuid"] != first["uuid"]]
    cli = [sys.executable, "-m", "eb_operator.client.cli"]
    accepted = subprocess.run(
        [*cli, "-o", "json", "accept", first["uuid"]], env=env, capture_output=True, text=True, check=False
    )
    assert accepted.returncode == 0, accepted.stderr
    session = json.loads(accepted.stdout)
    assert session["uuid"] == first["uuid"]
    assert session["phase"] in ("ACCEPTED", "WAITING", "PREPARING", "READY", "RUNNING"), session
    watched = subprocess.run(
        [*cli, "watch", first["uuid"], "--interval", "0.5", "--for", str(RUN_TIMEOUT)],
        env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT + 30, check=False,
    )  # fmt: skip
    phases = [line.split()[2] for line in watched.stdout.splitlines()]
    assert watched.returncode == 0, (watched.stdout, watched.stderr)
    assert phases, watched.stdout
    assert phases[-1] == "COMPLETED"
    assert len(phases) == len(set(phases)), "each phase is shown once"
    shown = subprocess.run(
        [*cli, "-o", "yaml", "show", others[0]], env=env, capture_output=True, text=True, check=False
    )
    assert yaml.safe_load(shown.stdout)["phase"] == "REJECTED", "accepting one offer rejects its siblings"


def test_a_kubectl_applied_execution_runs_to_completed(installed: Installation, tmp_path: Path) -> None:
    kube, ns = installed.kube, installed.user_namespace
    name = f"hello-{uuid.uuid4().hex[:6]}"
    manifest = tmp_path / "execution.yaml"
    manifest.write_text(
        yaml.safe_dump(execution_doc(name, ns, ["sh", "-c", "echo applied with kubectl"], "PT1M"))
    )
    kube.run("apply", "-f", str(manifest))
    try:
        final = wait_for(
            lambda: (
                (kube.get("execution", name, ns).get("status") or {}).get("phase")
                in ("COMPLETED", "FAILED", "CANCELLED", "REJECTED", "EXPIRED")
                and kube.get("execution", name, ns)
            ),
            RUN_TIMEOUT,
            f"execution {ns}/{name} to reach a final phase",
        )
        assert final["status"]["phase"] == "COMPLETED", final["status"]
        header, row = kube.run("get", "executions", name, "-n", ns).stdout.splitlines()
        assert dict(zip(header.split(), row.split(), strict=False))["PHASE"] == "COMPLETED", (header, row)
        assert_ran_on_a_real_node(kube, pod_of(kube, ns, name))
    finally:
        kube.run("delete", "-f", str(manifest), "--ignore-not-found", "--wait=false", check=False)


def test_a_gpu_request_gets_a_gpu_and_its_pod_limits_one(installed: Installation) -> None:
    with user(installed) as alice:
        answer = alice.ask(["sh", "-c", "echo gpu job"], cores=1, memory=1, gpus=1, duration="PT1M")
        assert answer["result"] == "YES", answer.get("messages")
        for offer in answer["offers"]:
            assert offer["resources"]["compute"][0]["gpus"]["offered"]["min"] == 1
        session = alice.client.accept(
            min(answer["offers"], key=lambda o: o["schedule"]["executing"]["start"])["uuid"]
        )
        done = alice.follow(session["uuid"], RUN_TIMEOUT)
    assert done["phase"] == "COMPLETED", done
    pod = pod_of(installed.kube, installed.namespace, session["uuid"])
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    node = assert_ran_on_a_real_node(installed.kube, pod)
    assert int(installed.kube.get("node", node)["status"]["allocatable"]["nvidia.com/gpu"]) >= 1


def test_callers_are_authenticated_and_see_only_their_own_sessions(installed: Installation) -> None:
    with user(installed, "alice") as alice:
        answer = alice.ask(["true"], duration="PT1M")
        offer = answer["offers"][0]["uuid"]
        with BrokerClient(installed.url(), installed.tokens["bob"]) as bob, pytest.raises(BrokerError) as e:
            bob.session(offer)
        assert e.value.status == 404, "another caller's session looks like an unknown one"
        with BrokerClient(installed.url()) as anonymous, pytest.raises(BrokerError) as e:
            anonymous.session(offer)
        assert e.value.status == 401
    # a Kubernetes service-account token is accepted through TokenReview
    token = installed.kube.run("create", "token", "default", "-n", installed.user_namespace).stdout.strip()
    with BrokerClient(installed.url(), token) as sa:
        with pytest.raises(BrokerError) as e:
            sa.session(offer)
        assert e.value.status == 404
    availability = httpx.get(f"{installed.url()}/availability", timeout=10).text
    assert "<vosi:available>true</vosi:available>" in availability, availability


def test_helm_test_checks_the_service(installed: Installation) -> None:
    """``helm test`` runs every test hook of the chart, and each one's last run Succeeded (read
    from the release record, not from a word somewhere in the command's output)."""
    hooks = installed.helm.run("get", "hooks", installed.release, "-n", installed.namespace).stdout
    expected = {
        d["metadata"]["name"]
        for d in yaml.safe_load_all(hooks)
        if d and "test" in d["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(",")
    }
    assert expected, "the chart has test hooks"
    installed.helm.run("test", installed.release, "-n", installed.namespace, "--timeout", "3m")
    release = installed.helm.status(installed.release, installed.namespace)
    assert release is not None
    ran = {
        h["name"]: (h.get("last_run") or {}).get("phase")
        for h in release.get("hooks", [])
        if "test" in h.get("events", [])
    }
    assert ran == dict.fromkeys(expected, "Succeeded"), ran


def test_metrics_are_served(installed: Installation, kube: Kubectl) -> None:
    text = httpx.get(f"{installed.url()}/metrics", timeout=10).text
    counts = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("eb_api_requests_total{")
    ]
    assert counts, text[:2000]
    assert sum(counts) >= 1, "the replica that answered counts the requests it served (its probes at least)"


def test_rest_sessions_run_in_their_owners_namespace_the_only_ones_the_operator_may_touch(
    installed: Installation,
) -> None:
    """The operator (its ServiceAccount, with the chart's RBAC and admission policy) makes alice's
    namespace for her session; it may delete, and bind roles in, that one and no other namespace
    (checked with server-side dry runs as the operator: admission runs, nothing is changed)."""
    kube = installed.kube
    with user(installed) as alice:
        session = alice.run(["true"], cores=1, memory=1, duration="PT1M")
        assert alice.follow(session["uuid"], RUN_TIMEOUT)["phase"] == "COMPLETED"
    pod = pod_of(kube, installed.namespace, session["uuid"])
    owned = pod["metadata"]["namespace"]
    assert owned != installed.namespace
    assert owned in installed.owner_namespaces()
    labels = kube.get("namespace", owned)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert kube.exists("networkpolicy", "eb-owner-isolation", owned)
    assert kube.exists("rolebinding", "eb-operator-workloads", owned)

    operator = f"system:serviceaccount:{installed.namespace}:eb-operator"
    role = f"{installed.fullname}-eb-operator-workloads"

    def as_operator(*args: str) -> subprocess.CompletedProcess[str]:
        return kube.run(*args, "--as", operator, "--dry-run=server", check=False)

    subject = f"--serviceaccount={installed.namespace}:x"
    bind = ("create", "rolebinding", "probe", f"--clusterrole={role}", subject)
    for other in (installed.user_namespace, "kube-system"):
        denied = as_operator(*bind, "-n", other)
        assert denied.returncode != 0
        assert "only the owner namespaces it made" in denied.stderr, denied.stderr
    # kube-system the API server itself never deletes ("this namespace may not be deleted")
    denied = as_operator("delete", "namespace", installed.user_namespace)
    assert denied.returncode != 0
    assert "only the owner namespaces it made" in denied.stderr, denied.stderr
    assert as_operator(*bind, "-n", owned).returncode == 0
    assert as_operator("delete", "namespace", owned).returncode == 0


def test_a_running_sessions_log_is_read_from_its_owners_namespace(installed: Installation) -> None:
    """The installed API (its own ServiceAccount, the chart's RBAC) reads a RUNNING session's live
    log from its Pod in the owner's namespace: the operator bound the API's log reads to it there
    when it made the namespace. Read while the session still runs, so it is the Pod's log, not the
    copy kept at the end."""
    kube = installed.kube
    marker = f"live-log-{uuid.uuid4().hex[:8]}"
    with user(installed) as alice:
        session = alice.run(["sh", "-c", f"echo {marker}; sleep 90"], cores=1, memory=1, duration="PT2M")
        ident = str(session["uuid"])
        running = alice.follow(ident, RUN_TIMEOUT, until=frozenset({"RUNNING"}) | FINAL_PHASES)
        assert running["phase"] == "RUNNING", running
        pod = pod_of(kube, installed.namespace, ident)
        owned = pod["metadata"]["namespace"]
        assert owned != installed.namespace
        assert owned in installed.owner_namespaces()
        binding = kube.get("rolebinding", "eb-api-logs", owned)
        assert binding["roleRef"]["name"] == f"{installed.fullname}-eb-api-logs"
        api = kube.get("deployment", installed.api_deployment, installed.namespace)
        api_sa = api["spec"]["template"]["spec"]["serviceAccountName"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": api_sa, "namespace": installed.namespace}
        ]
        # the operator may bind that role (server-side dry runs as the operator: RBAC's bind check
        # and the admission policy run, nothing is made) in its owner namespaces, not elsewhere
        operator = f"system:serviceaccount:{installed.namespace}:eb-operator"
        probe = ("create", "rolebinding", "probe", f"--clusterrole={installed.fullname}-eb-api-logs")
        probe += (f"--serviceaccount={installed.namespace}:{api_sa}", "--as", operator, "--dry-run=server")
        allowed = kube.run(*probe, "-n", owned, check=False)
        assert allowed.returncode == 0, allowed.stderr
        denied = kube.run(*probe, "-n", installed.user_namespace, check=False)
        assert denied.returncode != 0
        assert "only the owner namespaces it made" in denied.stderr, denied.stderr
        # until the container's first line reaches its log; a refusal (503) stays the last error
        wait_for(
            lambda: marker in alice.client.logs(ident),
            60,
            f"GET /sessions/{ident}/logs to answer the running container's output",
        )
        followed = ""
        for chunk in alice.client.follow_logs(ident):  # the stream ends only when the container does
            followed += chunk
            if marker in followed:
                break
        assert marker in followed, followed
        assert alice.client.session(ident)["phase"] == "RUNNING", "read while it runs: the Pod's log"
