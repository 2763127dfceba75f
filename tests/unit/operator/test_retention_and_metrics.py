"""Retention (what is deleted when) and the operator's metrics, read from a state built by events."""

from __future__ import annotations

from typing import Any, cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eb_operator.cluster.crs import EXECUTIONS, OFFERSETS, Cluster
from eb_operator.model.platform import PlatformPolicy, Retention
from eb_operator.model.times import format_instant
from eb_operator.operator.core import Operator, OperatorConfig
from eb_operator.operator.metrics import reason_label
from eb_operator.operator.retention import due
from eb_operator.operator.state import ClusterState

pytestmark = pytest.mark.unit

T0 = 1_900_000_000


def execution(
    name: str, phase: str | None, finished: int | None = None, ttl: int | None = None, **spec: Any
) -> dict[str, Any]:
    reservation = {
        "node": "n1",
        "prepareStart": format_instant(T0),
        "start": format_instant(T0),
        "duration": "PT1H",
        "releaseEnd": format_instant(T0 + 3600),
        "cores": 2,
        "memoryGiB": 4,
    }
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if finished is not None:
        status["conditions"] = [
            {"type": "Reserved", "status": "False", "lastTransitionTime": format_instant(finished)}
        ]
    body = {"reservation": reservation, **spec}
    if ttl is not None:
        body["ttlSecondsAfterFinished"] = ttl
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "1"},
        "spec": body,
        "status": status,
    }


def offerset(name: str, result: str, done: int) -> dict[str, Any]:
    status: dict[str, Any] = {"result": result, "created": format_instant(done)}
    if result == "YES":  # answered 20 s before its offers expire
        status |= {"created": format_instant(done - 20), "expires": format_instant(done)}
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"}, "status": status}


def doomed(state: ClusterState, now: int, policy: Retention | None = None) -> list[tuple[str, str]]:
    return [(d.plural, d.name) for d in due(state, policy or Retention(), now, lambda ns: ns == "ns")]


def test_a_session_is_deleted_a_day_after_it_ended_or_after_its_own_ttl() -> None:
    s = ClusterState(clock=lambda: T0)
    s.on_execution(execution("done", "COMPLETED", finished=T0))
    s.on_execution(execution("quick", "CANCELLED", finished=T0, ttl=60))
    s.on_execution(execution("running", "RUNNING"))
    assert doomed(s, T0 + 59) == []
    assert doomed(s, T0 + 60) == [(EXECUTIONS, "quick")]
    assert doomed(s, T0 + 86_400) == [(EXECUTIONS, "done"), (EXECUTIONS, "quick")]
    assert doomed(s, T0 + 100, Retention(ttl_seconds_after_finished=100)) == [
        (EXECUTIONS, "done"),
        (EXECUTIONS, "quick"),
    ]


def test_a_session_whose_status_says_not_when_it_ended_counts_from_when_it_was_seen_so() -> None:
    s = ClusterState(clock=lambda: T0 + 500)
    s.on_execution(execution("old", "EXPIRED"))
    assert doomed(s, T0 + 500 + 86_399) == []
    assert doomed(s, T0 + 500 + 86_400) == [(EXECUTIONS, "old")]


def test_an_offer_set_goes_after_its_offers_expired_once_none_of_them_is_a_session() -> None:
    s = ClusterState(clock=lambda: T0)
    s.on_offerset(offerset("yes", "YES", T0))
    s.on_offerset(offerset("no", "NO", T0))
    s.on_offerset(offerset("taken", "YES", T0))
    s.on_execution(execution("taken-0", "RUNNING", offerSet="taken"))
    s.on_offerset({"metadata": {"name": "pending", "namespace": "ns", "uid": "p"}, "spec": {}})
    s.on_offerset(offerset("elsewhere", "YES", T0) | {"metadata": {"name": "x", "namespace": "other"}})
    policy = Retention(offer_set_ttl_seconds=30)
    assert doomed(s, T0 + 29, policy) == []
    assert doomed(s, T0 + 30, policy) == [(OFFERSETS, "yes"), (OFFERSETS, "no")]
    s.on_execution(execution("taken-0", None), deleted=True)  # its session went: the set may go too
    assert (OFFERSETS, "taken") in doomed(s, T0 + 30, policy)
    s.on_offerset(offerset("yes", "YES", T0), deleted=True)
    assert (OFFERSETS, "yes") not in doomed(s, T0 + 30, policy)


@pytest.mark.parametrize(
    ("urn", "label"),
    [("urn:ivoa:eb:no-capacity", "no-capacity"), ("urn:no-capacity", "no-capacity"), (None, "unknown")],
)
def test_refusal_reasons_become_short_labels(urn: str | None, label: str) -> None:
    assert reason_label(urn) == label


def node(name: str, cpu: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"pool": "a"}, "resourceVersion": "1"},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": "32Gi"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def samples(op: Operator) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = op.ctx.metrics.exposition().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_the_metrics_read_sessions_capacity_and_queues_from_the_state() -> None:
    op = Operator(cast(Cluster, None), OperatorConfig(clock=lambda: T0 + 600, namespaces=frozenset({"ns"})))
    op.ctx.policy = PlatformPolicy()
    op.on_node(node("n1", "8"), deleted=False)
    op.on_node(node("n2", "8"), deleted=False)
    op.on_execution(execution("a", "RUNNING"), deleted=False)
    op.on_execution(
        execution("b", "WAITING") | {"metadata": {"name": "b", "namespace": "ns", "uid": "b"}}, False
    )
    op.on_execution(execution("c", "COMPLETED", finished=T0), deleted=False)
    op.ctx.metrics.answered.labels("NO", "no-capacity").inc()
    got = samples(op)
    assert got[("eb_operator_sessions", (("phase", "RUNNING"),))] == 1
    assert got[("eb_operator_sessions", (("phase", "WAITING"),))] == 1
    assert got[("eb_operator_sessions", (("phase", "COMPLETED"),))] == 1
    assert got[("eb_operator_sessions", (("phase", "FAILED"),))] == 0
    # the WAITING one's preparation was due 600 s ago: overdue (stuck) past 300 s
    assert got[("eb_operator_sessions_overdue", (("phase", "WAITING"),))] == 1
    assert got[("eb_operator_capacity_allocatable", (("resource", "cpu"),))] == 16
    # RUNNING and WAITING both hold 2 cores on n1 now (their slot began at T0)
    assert got[("eb_operator_capacity_reserved", (("resource", "cpu"),))] == 4
    assert got[("eb_operator_capacity_utilisation_ratio", (("resource", "cpu"),))] == pytest.approx(0.25)
    assert got[("eb_operator_offersets_answered_total", (("reason", "no-capacity"), ("result", "NO")))] == 1
    assert got[("eb_operator_queue_depth", (("queue", "executions"),))] == 0  # paused: not leading
    assert got[("eb_operator_leading", ())] == 0
