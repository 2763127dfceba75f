"""Two operators under kopf peering, on the real API server: the one of higher priority leads and
answers; the other stays passive (it watches and keeps its state, and writes nothing) until the
leader leaves, then takes over without listing again. Each test uses a ClusterKopfPeering of its
own, so the installed brokers' operators (peering ``eb-operator``) never see these."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import pytest
from tests.integration.operator.helpers import FAST, Broker, OperatorThread, ivoa_request
from tests.support.kube import REPO, Kubectl, async_wait_for, unique_name

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(240)


def answered(op: OperatorThread) -> float:
    registry = op.operator.ctx.metrics.registry
    yes = registry.get_sample_value(
        "eb_operator_offersets_answered_total", {"result": "YES", "reason": "offered"}
    )
    return yes or 0.0


async def test_a_standby_operator_stays_passive_until_the_leader_leaves(
    broker: MakeBroker, kube: Kubectl
) -> None:
    kube.run("apply", "-f", str(REPO / "manifests" / "crds" / "kopf-peering.yaml"))
    kube.run("wait", "--for=condition=Established", "--timeout=60s", "crd/clusterkopfpeerings.kopf.dev")
    peering = unique_name("eb-peering-test", max_len=40)
    kube.create({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}})
    # a kwok node of its own: the offers this test leaves behind hold nobody else's capacity
    b = await broker({**FAST}, nodes=[{"cpu": "8", "memory": "32Gi"}])  # its operator is stopped below
    assert b.runner is not None
    config = b.runner.config
    await b.runner.stop()
    leader = OperatorThread(replace(config, priority=10), peering=peering)
    standby = OperatorThread(replace(config, priority=0), peering=peering)
    try:
        await leader.start()
        await async_wait_for(lambda: leader.operator.ctx.leading.is_set(), 30, "the first operator to lead")
        me = leader.operator.ctx.cfg.identity

        def peers() -> dict[str, Any]:
            return dict(kube.get("clusterkopfpeering", peering).get("status") or {})

        await async_wait_for(lambda: me in peers(), 30, "the leader's keep-alive in the peering object")
        await standby.start()
        assert standby.operator.leadership.blockers == (me,)
        assert not standby.operator.ctx.leading.is_set()

        b.runner = leader
        first = await b.ask("first", ivoa_request())
        assert first["status"]["result"] == "YES"
        assert answered(leader) == 1
        await async_wait_for(
            lambda: f"{b.namespace}/first" in standby.operator.state.offers,
            30,
            "the standby to see the answer",
        )
        assert answered(standby) == 0, "the standby answered too"
        assert len(standby.operator.ctx.offersets) == 0, "the standby queued work"
        held = standby.operator.state.ledger.get(f"{b.namespace}/{first['status']['offers'][0]['name']}")
        assert held is not None, "the standby's ledger follows the leader's offers"

        await leader.stop()  # a clean exit removes its keep-alive: the standby takes over
        await async_wait_for(lambda: standby.operator.ctx.leading.is_set(), 60, "the standby to lead")
        assert standby.operator.feed_stats()["offersets"].relists == 0, "it listed again"
        b.runner = standby
        second = await b.ask("second", ivoa_request())
        assert second["status"]["result"] == "YES"
        assert answered(standby) == 1
    finally:
        for op in (leader, standby):
            if op.thread.is_alive():
                await op.stop()
        kube.run("delete", "clusterkopfpeering", peering, "--ignore-not-found", check=False)
