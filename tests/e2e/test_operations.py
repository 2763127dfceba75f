"""Operating the installed broker: the operator's own metrics, scraped from the running operator
(through the API server's proxy to its Pod's metrics port, as any cluster allows) during a
workload and parsed with prometheus_client's parser; the values must follow what the workload did.
And the operator leads under kopf peering, under the identity the chart gives it (its Pod's name)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.helpers import earliest, user
from tests.e2e.install import Installation
from tests.support.kube import wait_for

from eb_operator.client import offer_request

pytestmark = pytest.mark.timeout(400)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _operator_pod(installed: Installation) -> str:
    pods = [
        p
        for p in installed.broker_pods()
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"
        and not p["metadata"].get("deletionTimestamp")
    ]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return str(pods[0]["metadata"]["name"])


def scrape(installed: Installation) -> Samples:
    pod = _operator_pod(installed)
    path = f"/api/v1/namespaces/{installed.namespace}/pods/{pod}:8082/proxy/metrics"
    text = installed.kube.run("get", "--raw", path).stdout
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _total(samples: Samples, name: str, label: str, value_of: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and dict(ls).get(label) == value_of)


def test_the_operators_metrics_follow_a_workload(installed: Installation) -> None:
    before = scrape(installed)
    assert value(before, "eb_operator_leading") == 1
    assert value(before, "eb_operator_ready") == 1
    node = (
        installed.kube.get("node", "eb-real-node") if installed.kube.exists("node", "eb-real-node") else None
    )
    if node is not None:  # the local cluster: the platform is its real node
        cpu = float(node["status"]["allocatable"]["cpu"])
        assert value(before, "eb_operator_capacity_allocatable", resource="cpu") == cpu

    answers: list[Mapping[str, object]] = []
    with user(installed) as alice:
        for i in range(3):  # asked and declined
            answer = alice.client.create_offerset(
                offer_request(
                    image=alice.image, command=["sh", "-c", "exit 0"], duration="PT1M", name=f"m{i}"
                )
            )
            answers.append(answer)
            alice.sessions += [str(o["uuid"]) for o in answer.get("offers") or []]
            for o in answer.get("offers") or []:
                alice.client.reject(str(o["uuid"]))
        run = alice.ask(["sh", "-c", "sleep 20"], duration="PT1M")
        answers.append(run)
        session = alice.client.accept(str(earliest(run["offers"])["uuid"]))
        alice.follow(session["uuid"], 180, until=frozenset({"RUNNING"}))
        during = scrape(installed)
        done = alice.follow(session["uuid"], 180)
    assert done["phase"] == "COMPLETED", done
    after = wait_for(
        lambda: (
            (s := scrape(installed))
            and delta(before, s, "eb_operator_phase_transitions_total", phase="COMPLETED") >= 1
            and s
        ),
        60,
        "the scrape to show the session COMPLETED",
    )

    yes = sum(a.get("result") == "YES" for a in answers)
    no = len(answers) - yes
    offers = sum(len(a.get("offers") or []) for a in answers)  # type: ignore[arg-type]
    rejected = sum(len(a.get("offers") or []) for a in answers[:3])  # type: ignore[arg-type]
    assert yes >= 4, answers  # the last set was asked until YES
    assert delta(before, after, "eb_operator_offersets_answered_total", result="YES", reason="offered") == yes
    assert (
        _total(after, "eb_operator_offersets_answered_total", "result", "NO")
        - _total(before, "eb_operator_offersets_answered_total", "result", "NO")
        == no
    )
    assert delta(before, after, "eb_operator_offers_total") == offers
    assert delta(before, after, "eb_operator_offerset_answer_seconds_count") == len(answers)
    assert delta(before, after, "eb_operator_accepts_total", outcome="accepted") == 1
    assert delta(before, after, "eb_operator_sessions", phase="COMPLETED") == 1
    # each declined offer was written as an Execution, REJECTED (and the run's siblings too)
    assert delta(before, after, "eb_operator_sessions", phase="REJECTED") >= rejected
    assert delta(before, after, "eb_operator_watch_events_total", resource="offersets") >= 2 * len(answers)
    # while the session ran: one RUNNING session, its core reserved
    assert (
        value(during, "eb_operator_sessions", phase="RUNNING")
        == value(before, "eb_operator_sessions", phase="RUNNING") + 1
    )
    assert value(during, "eb_operator_capacity_reserved", resource="cpu") >= 1
    assert value(during, "eb_operator_capacity_utilisation_ratio", resource="cpu") > 0
    assert value(after, "eb_operator_sessions", phase="RUNNING") == value(
        before, "eb_operator_sessions", phase="RUNNING"
    )
    for resource in ("nodes", "pods", "executions", "offersets", "clusterkopfpeerings"):
        assert value(after, "eb_operator_watch_silence_seconds", resource=resource) < 60, resource
    assert value(after, "eb_operator_queue_depth", queue="offersets") == 0


def test_the_operator_leads_under_its_pods_name_in_kopfs_peering(installed: Installation) -> None:
    pod = _operator_pod(installed)
    peering = installed.kube.get("clusterkopfpeering", "eb-operator")
    assert pod in (peering.get("status") or {}), peering.get("status")
    assert value(scrape(installed), "eb_operator_leading") == 1
