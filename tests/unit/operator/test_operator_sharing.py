"""Sharing a platform in the operator, without a cluster: what an answer decides under the caller's
limits and its group's share, rates, withdrawn offers in the state and the phase machine, and the
builders of owner namespaces and of children placed in them."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, cast

import pytest
from tests.support.builders import H, at, demand, node, reservation

from eb_operator import operator as operator_package
from eb_operator.cli import _parser
from eb_operator.cli import main as cli_main
from eb_operator.cluster.crs import Cluster
from eb_operator.cluster.offer_status import offer_execution, offer_name
from eb_operator.engine import LedgerSnapshot, NodeTable
from eb_operator.engine.types import Phase, Reservation
from eb_operator.model.common import MessageType
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.sharing import OTHER, NetworkPeer
from eb_operator.model.times import format_instant
from eb_operator.operator.answering import OfferSetAnswers
from eb_operator.operator.builders import children, notebook
from eb_operator.operator.builders import namespace as ns_builders
from eb_operator.operator.builders.pod import PodSettings, build_pod
from eb_operator.operator.config import OperatorConfig
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.forwarding import Forwarding
from eb_operator.operator.lifecycle import Action, Facts, decide
from eb_operator.operator.sharing import Caller, SharingRules
from eb_operator.operator.state import NodeInfo
from eb_operator.operator.workqueue import WorkQueue

pytestmark = pytest.mark.unit

NOW = at("09:00")


def context(policy: dict[str, Any]) -> OperatorContext:
    ctx = OperatorContext(cast(Cluster, None), OperatorConfig(clock=lambda: float(NOW)))
    ctx.policy = PlatformPolicy.model_validate(
        {"slotSeconds": 300, "horizonSeconds": 10 * H, "preparationSeconds": 0, "releaseSeconds": 0, **policy}
    )
    ctx.state.account_of = ctx.policy.sharing.group_of
    ctx.executions = WorkQueue("executions", _nothing, 1)  # keys queued, never processed here
    return ctx


async def _nothing(key: str) -> None:
    return None


def choose(ctx: OperatorContext, want: Any, caller: Caller, nodes: list[Any]) -> Any:
    answers = OfferSetAnswers(ctx, SharingRules(ctx), cast(Forwarding, None))  # no peers asked here
    table = NodeTable(nodes)
    return asyncio.run(answers._choose(want, caller, table, ctx.state.ledger.snapshot(), NOW))


def hold(ctx: OperatorContext, r: Reservation) -> None:
    ctx.state.ledger.upsert(r)


def offered(
    key: str, owner: str, account: str, cores: int, hours: float, node_name: str = "n1"
) -> Reservation:
    return reservation(
        node_name,
        NOW,
        NOW + int(hours * H),
        cores=cores,
        phase=Phase.OFFERED,
        key=key,
        group=f"ns/set-{key}",
        owner=owner,
        account=account,
    )


ALICE = Caller("alice", OTHER)
WANT = demand(cores=2, max_cores=4, hours=1, between=(at("09:00"), at("12:00")))
SOON = demand(cores=2, max_cores=4, hours=1, between=(at("09:00"), at("10:00")))  # while the node is held


def test_a_caller_under_its_limits_gets_offers() -> None:
    ctx = context({"sharing": {"ownerLimits": {"offerSets": 2}}})
    decision = choose(ctx, WANT, ALICE, [node(cores=8)])
    assert decision.offers, decision.message
    assert decision.message is None


def test_a_caller_over_a_limit_gets_no_with_the_limit_named() -> None:
    ctx = context({"sharing": {"ownerLimits": {"offerSets": 1}}})
    hold(ctx, offered("ns/a", "alice", OTHER, 1, 1))
    decision = choose(ctx, WANT, ALICE, [node(cores=8)])
    assert decision.offers == []
    assert decision.message["type"] == MessageType.OVER_LIMIT
    assert decision.message["level"] == "ERROR"
    assert "(offerSets) is 1" in decision.message["message"]
    assert choose(ctx, WANT, Caller("bob", OTHER), [node(cores=8)]).offers  # bob is not alice


def test_a_group_limit_binds_its_members_together() -> None:
    ctx = context(
        {"sharing": {"ownerLimits": {}, "groups": [{"name": "astro", "limits": {"sessionCores": 4}}]}}
    )
    hold(ctx, replace(offered("ns/y", "bob", "astro", 3, 1), phase=Phase.RUNNING))
    decision = choose(ctx, WANT, Caller("carol", "astro"), [node(cores=8)])
    assert decision.offers == []
    assert "group astro together" in decision.message["message"]
    assert "sessionCores" in decision.message["message"]


def test_offers_beyond_the_offered_capacity_limit_are_not_made() -> None:
    # 2 cores for an hour is 7,200 core-seconds; alice may hold 10,000 in offers
    ctx = context({"sharing": {"ownerLimits": {"offeredCoreSeconds": 10_000}}})
    decision = choose(ctx, WANT, ALICE, [node(cores=8)])
    assert len(decision.offers) == 1
    offer = decision.offers[0]["offer"]
    assert offer.cores * (offer.release_end - offer.prepare_start) <= 10_000


def halves() -> OperatorContext:
    return context(
        {
            "sharing": {
                "ownerLimits": {},
                "groups": [{"name": "astro", "share": 0.5}, {"name": "students", "share": 0.5}],
            }
        }
    )


def test_a_group_within_its_share_keeps_its_offers_even_when_they_are_in_the_way() -> None:
    ctx = halves()  # one node of 8 cores for 10 h: 80 core-hours, 40 each
    for i in range(4):  # the whole node for 3 h: 24 core-hours, within the students' 40
        hold(ctx, offered(f"ns/st{i}", "sam", "students", 2, 3))
    decision = choose(ctx, SOON, Caller("ann", "astro"), [node(cores=8)])
    assert decision.offers == []
    assert decision.withdrawn == {}


def test_a_group_under_its_share_takes_back_what_another_borrowed_beyond_its_own() -> None:
    ctx = halves()  # two nodes of 8 cores for 10 h: 160 core-hours, 80 each
    for i in range(8):  # both nodes whole for 6 h: 96 core-hours, 16 beyond the students' 80
        hold(ctx, offered(f"ns/st{i}", "sam", "students", 2, 6, node_name=f"n{1 + i % 2}"))
    decision = choose(ctx, SOON, Caller("ann", "astro"), [node("n1", cores=8), node("n2", cores=8)])
    assert len(decision.offers) == 1, decision.message
    offer = decision.offers[0]["offer"]
    assert (offer.cores, offer.start) == (2, NOW)  # the smallest offer, at once
    taken = sorted(name for names in decision.withdrawn.values() for name in names)
    # newest first, only as many as bring the students back to their share (16 core-hours: two
    # offers of 12), and of those only what is in the way of the new offer: one, on its node
    assert len(taken) == 1
    assert taken[0] in ("st7", "st6")
    assert ctx.state.ledger.get(f"ns/{taken[0]}") is None
    assert all("under its share" in why for names in decision.withdrawn.values() for why in names.values())
    assert ctx.state.ledger.tallies.account("students").offers == 7
    assert ctx.state.is_withdrawn(f"ns/set-ns/{taken[0]}", taken[0])
    assert len(ctx.executions) == 1  # its Execution, if it was written as one, becomes EXPIRED


def test_a_group_over_its_share_takes_nothing_back() -> None:
    ctx = context(
        {
            "sharing": {
                "ownerLimits": {},
                "groups": [{"name": "astro", "share": 0.01}, {"name": "students", "share": 0.2}],
            }
        }
    )
    for i in range(8):
        hold(ctx, offered(f"ns/st{i}", "sam", "students", 1, 9))
    decision = choose(ctx, SOON, Caller("ann", "astro"), [node(cores=8)])
    assert decision.offers == []
    assert decision.withdrawn == {}


def test_rates_are_counted_per_owner_and_per_group() -> None:
    ctx = context(
        {
            "sharing": {
                "ownerLimits": {"requestsPerSecond": 1, "requestBurst": 2},
                "groups": [{"name": "astro", "limits": {"requestsPerSecond": 1, "requestBurst": 3}}],
            }
        }
    )
    rules = SharingRules(ctx)
    ann, bea = Caller("ann", "astro"), Caller("bea", "astro")
    assert rules.rate(ann, 0.0)[0] == 0
    assert rules.rate(ann, 0.0)[0] == 0
    wait, why = rules.rate(ann, 0.0)
    assert wait == pytest.approx(1.0)
    assert why.startswith("you asked more often")
    assert rules.rate(bea, 0.0)[0] == 0  # the group's third
    wait, why = rules.rate(bea, 0.0)
    assert wait > 0
    assert why.startswith("group astro together")
    rules.forget_idle(100.0)
    assert rules._buckets == {}


def test_a_withdrawn_offer_holds_nothing_and_its_accept_is_refused() -> None:
    ctx = context({})
    meta = {"name": "set", "namespace": "ns", "uid": "u"}
    name = offer_name(meta, 0)
    reservation = {
        "node": "n1",
        "prepareStart": format_instant(NOW),
        "start": format_instant(NOW),
        "duration": "PT1H",
        "releaseEnd": format_instant(NOW + H),
        "expires": format_instant(NOW + 300),
        "cores": 2,
        "memoryGiB": 1,
    }
    why = "withdrawn for group astro, which is under its share of the platform"
    answered = {
        "metadata": meta,
        "spec": {"owner": "sam", "groups": ["students"], "request": {}},
        "status": {
            "result": "YES",
            "offers": [{"name": name, "uuid": name, "reservation": reservation}],
            "withdrawn": [{"name": name, "message": why}],
        },
    }
    ctx.state.on_offerset(answered)
    assert ctx.state.ledger.get(f"ns/{name}") is None
    shown = offer_execution(answered, answered["status"]["offers"][0])
    assert shown["status"]["phase"] == "EXPIRED"
    assert shown["status"]["messages"][0]["type"] == MessageType.PREEMPTED
    facts = Facts(
        now=NOW,
        phase=Phase.OFFERED,
        offered=True,
        reserved=True,
        desired="ACCEPTED",
        desired_new=True,
        withdrawn=why,
    )
    step = decide(facts)
    assert step.refused
    assert step.phase == Phase.EXPIRED
    assert step.reason == "Preempted"
    assert step.action is Action.NONE
    assert (
        decide(Facts(now=NOW, phase=Phase.OFFERED, offered=True, reserved=True, withdrawn=why)).phase
        == Phase.EXPIRED
    )


def test_an_owner_namespace_is_labelled_restricted_and_names_its_owner() -> None:
    assert ns_builders.build_namespace("eb-alice-3bc5106297", "Alice", "default") == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "eb-alice-3bc5106297",
            "labels": {
                "app.kubernetes.io/managed-by": "eb-operator",
                "executionbroker.ivoa.net/owner": "alice-3bc5106297",
                "executionbroker.ivoa.net/platform": "default",
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            },
            "annotations": {"executionbroker.ivoa.net/owner": "Alice"},
        },
    }


def test_the_operator_binds_its_workloads_role_to_itself_in_an_owner_namespace() -> None:
    assert ns_builders.build_role_binding("eb-a", "r-eb-operator-workloads", "brk/eb-operator") == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": "eb-operator-workloads",
            "namespace": "eb-a",
            "labels": {"app.kubernetes.io/managed-by": "eb-operator"},
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "r-eb-operator-workloads",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "eb-operator", "namespace": "brk"}],
    }


def test_the_operator_binds_the_apis_log_reads_to_the_api_in_an_owner_namespace() -> None:
    binding = ns_builders.build_role_binding(
        "eb-a", "r-eb-api-logs", "brk/eb-api", name=ns_builders.API_LOGS_ROLE_BINDING
    )
    assert binding == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": "eb-api-logs",
            "namespace": "eb-a",
            "labels": {"app.kubernetes.io/managed-by": "eb-operator"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r-eb-api-logs"},
        "subjects": [{"kind": "ServiceAccount", "name": "eb-api", "namespace": "brk"}],
    }
    workloads = ns_builders.build_role_binding("eb-a", "r-eb-operator-workloads", "brk/eb-operator")
    assert binding["metadata"]["name"] != workloads["metadata"]["name"], "two bindings, side by side"


def test_the_apis_log_binding_is_configured_by_flags_or_env_and_off_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("EB_API_LOGS_CLUSTERROLE", "EB_API_SERVICE_ACCOUNT"):
        monkeypatch.delenv(var, raising=False)
    assert (OperatorConfig().api_logs_cluster_role, OperatorConfig().api_service_account) == (None, None)
    args = _parser().parse_args(["operator"])
    assert (args.api_logs_cluster_role, args.api_service_account) == (None, None)
    args = _parser().parse_args(
        ["operator", "--api-logs-cluster-role", "r-eb-api-logs", "--api-service-account", "brk/eb-api"]
    )
    assert (args.api_logs_cluster_role, args.api_service_account) == ("r-eb-api-logs", "brk/eb-api")
    monkeypatch.setenv("EB_API_LOGS_CLUSTERROLE", "eb-api-logs")
    monkeypatch.setenv("EB_API_SERVICE_ACCOUNT", "execution-broker/eb-api")
    args = _parser().parse_args(["operator"])
    assert (args.api_logs_cluster_role, args.api_service_account) == (
        "eb-api-logs",
        "execution-broker/eb-api",
    )
    # and the command hands them to the operator's settings
    started: dict[str, Any] = {}
    monkeypatch.setattr(operator_package, "run", lambda **kw: started.update(kw))
    assert cli_main(["operator", "--no-peering"]) == 0
    config = OperatorConfig(**{k: started[k] for k in ("api_logs_cluster_role", "api_service_account")})
    assert (config.api_logs_cluster_role, config.api_service_account) == (
        "eb-api-logs",
        "execution-broker/eb-api",
    )


def test_an_owner_namespace_admits_only_its_own_pods_and_the_ingress() -> None:
    ingress = NetworkPeer.model_validate(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
    )
    assert ns_builders.build_network_policy("eb-a", [ingress]) == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "eb-owner-isolation",
            "namespace": "eb-a",
            "labels": {"app.kubernetes.io/managed-by": "eb-operator"},
        },
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {}},
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}},
                    ]
                }
            ],
        },
    }


def execution(namespace: str = "broker") -> dict[str, Any]:
    return {
        "apiVersion": "executionbroker.ivoa.net/v1alpha1",
        "kind": "Execution",
        "metadata": {"name": "job-1", "namespace": namespace, "uid": "uid-1"},
        "spec": {
            "owner": "alice",
            "reservation": {
                "node": "n1",
                "prepareStart": format_instant(NOW),
                "start": format_instant(NOW),
                "duration": "PT1H",
                "releaseEnd": format_instant(NOW + H),
                "cores": 1,
                "memoryGiB": 1,
            },
        },
    }


def test_children_beside_their_execution_are_owned_by_it() -> None:
    meta = children.child_metadata(execution(), "eb-job-1-notebook")
    assert meta == {
        "name": "eb-job-1-notebook",
        "namespace": "broker",
        "labels": {
            "app.kubernetes.io/managed-by": "eb-operator",
            "executionbroker.ivoa.net/execution-uid": "uid-1",
        },
        "ownerReferences": [
            {
                "apiVersion": "executionbroker.ivoa.net/v1alpha1",
                "kind": "Execution",
                "name": "job-1",
                "uid": "uid-1",
                "controller": True,
                "blockOwnerDeletion": False,
            }
        ],
    }


def test_children_in_an_owner_namespace_name_their_execution_instead_of_an_owner_reference() -> None:
    there = children.placed(execution(), "eb-alice-3bc5106297")
    meta = children.child_metadata(there, "eb-job-1-notebook")
    assert meta == {
        "name": "eb-job-1-notebook",
        "namespace": "eb-alice-3bc5106297",
        "labels": {
            "app.kubernetes.io/managed-by": "eb-operator",
            "executionbroker.ivoa.net/execution-uid": "uid-1",
            "executionbroker.ivoa.net/execution-namespace": "broker",
        },
        "annotations": {"executionbroker.ivoa.net/execution": "broker/job-1"},
    }
    pod = build_pod(
        there,
        {"type": "docker-container", "image": {"locations": ["eb-workload"]}},
        PlatformPolicy(),
        NOW,
        PodSettings(),
    )
    assert pod["metadata"]["namespace"] == "eb-alice-3bc5106297"
    assert "ownerReferences" not in pod["metadata"]
    service = notebook.build_service(there)
    assert service["metadata"]["namespace"] == "eb-alice-3bc5106297"
    assert "ownerReferences" not in service["metadata"]


def test_an_empty_ledger_and_table_are_fine_for_the_share_rules() -> None:
    ctx = context({"sharing": {"groups": [{"name": "astro", "share": 0.5}]}})
    rules = SharingRules(ctx)
    assert rules.borrowed(WANT, Caller("ann", "astro"), NodeTable([])) == []
    assert LedgerSnapshot.of([]) is not None


def test_percentages_are_of_the_nodes_allocatable_capacity_not_of_what_other_pods_leave_free() -> None:
    """A "100%" session limit on a 2-core node whose other Pods leave 0.85 cores free is 2 cores:
    it was 0.85, and every 1-core request was refused as over the limit."""
    ctx = context({})
    free = node("n1", cores=0.85)
    ctx.state.nodes["n1"] = NodeInfo(
        name="n1", labels={}, allocatable=node("n1", cores=2).free, ready=True,
        unschedulable=False, taints=(), rv=1,
    )  # fmt: skip
    platform = SharingRules(ctx).platform(NodeTable([free]))
    assert platform.cores == 2
    assert SharingRules(ctx).platform(NodeTable([node("n2", cores=3)])).cores == 3  # a node not seen yet
