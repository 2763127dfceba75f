"""Scenario 5: the clock exactly at slot boundaries and at offer expiry, with the operator's
injectable clock (``OperatorConfig.clock``) frozen at chosen instants and the operator running
in-process against the real API server, on one kwok node of 2 cores:

* an offer can start exactly now; a second request gets an offer starting exactly when the
  first one's reservation ends (back to back, not overlapping, not a slot later);
* accepting one second before ``expires`` works; accepting at exactly ``expires`` is refused
  and the offer is EXPIRED;
* preparation starts exactly at ``prepareStart`` (the Pod is created then, not a tick later);
* a session whose Pod still runs is failed exactly ``OVERRUN_GRACE`` after its reservation ended.

Plus the pure decision at the same boundaries, one second either side. Bounded: ~40 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from tests.chaos.checker import check, instant
from tests.chaos.stage import API, container_exits
from tests.integration.operator.helpers import Broker, OperatorThread, ivoa_request, phase
from tests.support.kube import KWOK_TOLERATION, POOL_LABEL, Kubectl, kwok_node, unique_name, wait_nodes_usable

from eb_operator.cluster.crs import EXECUTIONS, PLATFORMS, Cluster
from eb_operator.cluster.kube import ClientSettings
from eb_operator.engine.types import Phase
from eb_operator.operator import OperatorConfig
from eb_operator.operator.builders.pod import PodSettings
from eb_operator.operator.lifecycle import OVERRUN_GRACE, Facts, PodView, decide

pytestmark = pytest.mark.timeout(240)

TTL = 10
SPEC = {
    "slotSeconds": 1,
    "preparationSeconds": 0,
    "releaseSeconds": 2,
    "offerTtlSeconds": TTL,
    "maxOffers": 1,
    "horizonSeconds": 3600,
}


class FrozenClock:
    """The operator's clock: stands still until the test moves it (the sweeper is off, so only
    watch events make the operator look at it)."""

    def __init__(self, t: int) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def frozen(
    crds: None, kube: Kubectl, make_namespace: Callable[..., str]
) -> AsyncIterator[tuple[Broker, FrozenClock, str]]:
    ns = make_namespace("chaos-clock")
    name = unique_name("chaos-clock", max_len=30)
    node = f"{name}-n0"
    cluster = await Cluster.connect(ClientSettings())
    runner: OperatorThread | None = None
    try:
        kube.apply(kwok_node(node, cpu="2", memory="8Gi", labels={POOL_LABEL: name}))
        toleration = {k: v for k, v in KWOK_TOLERATION.items() if k != "operator"}
        spec = {"nodeSelector": {POOL_LABEL: name}, "toleration": toleration, **SPEC}
        platform = {"apiVersion": API, "kind": "ExecutionPlatform", "metadata": {"name": name}, "spec": spec}
        await cluster.create(PLATFORMS, None, platform)
        await asyncio.to_thread(wait_nodes_usable, kube, f"{POOL_LABEL}={name}", 1)
        clock = FrozenClock(int(time.time()))
        config = OperatorConfig(
            platform=name,
            namespaces=frozenset({ns}),
            sweep_seconds=3600.0,  # no sweeper: the test decides when the operator looks at the clock
            pod=PodSettings(image_pull_policy="Never", termination_grace_seconds=2),
            clock=clock,
        )
        runner = OperatorThread(config)
        await runner.start()
        yield Broker(cluster, kube, ns, name, runner=runner, nodes=[node]), clock, node
    finally:
        if runner is not None:
            await runner.stop()
        kube.run("delete", "executionplatform", name, "--ignore-not-found", "--wait=false", check=False)
        kube.run("delete", "node", node, "--ignore-not-found", "--wait=false", check=False)
        await cluster.close()


async def poke(b: Broker, name: str, n: int) -> None:
    """Make the operator look at an Execution again (a watch event that changes nothing it reads)."""
    await b.cluster.patch(
        EXECUTIONS, b.namespace, name, {"metadata": {"annotations": {"chaos/poke": str(n)}}}
    )


def t(e: dict[str, Any], field: str) -> int:
    return int(instant(e["spec"]["reservation"][field]))


async def test_slot_boundaries_and_offer_expiry_at_the_exact_second(
    frozen: tuple[Broker, FrozenClock, str], kube: Kubectl
) -> None:
    b, clock, node = frozen
    t0 = int(clock.t)
    req = ivoa_request(("sh", "-c", "exit 0"), cores=2, memory=1, duration="PT10S")

    first = (await b.ask("first", req))["status"]["offers"][0]["name"]
    x1 = await b.execution(first)
    assert t(x1, "prepareStart") == t0, "an offer can start now"
    assert t(x1, "expires") == t0 + TTL
    second = (await b.ask("second", req))["status"]["offers"][0]["name"]
    x2 = await b.execution(second)
    assert t(x2, "prepareStart") == t(x1, "releaseEnd"), "back to back: starts exactly when the first ends"

    clock.t = t0 + TTL - 1  # one second before expiry: accepted
    await b.desire(first, "ACCEPTED")
    await b.reaches(first, "RUNNING", timeout=60)
    await b.desire(second, "ACCEPTED")
    waiting = await b.reaches(second, "WAITING", timeout=30)
    assert (await b.pod(second)) is None
    await container_exits(b.cluster, b.namespace, f"eb-{first}")
    await b.reaches(first, "COMPLETED", timeout=30)

    clock.t = t(x2, "prepareStart")  # exactly the slot boundary: preparation starts now
    await poke(b, second, 1)
    await b.reaches(second, "RUNNING", timeout=60)

    third = (await b.ask("third", req))["status"]["offers"][0]["name"]
    x3 = await b.execution(third)
    assert t(x3, "prepareStart") == t(x2, "releaseEnd")
    clock.t = t(x3, "expires")  # exactly at expiry: too late
    await b.desire(third, "ACCEPTED")
    expired = await b.reaches(third, "EXPIRED", "ACCEPTED", "WAITING", timeout=30)

    clock.t = t(x2, "releaseEnd") + OVERRUN_GRACE  # the Pod still runs when its allowance is over
    await poke(b, second, 2)
    overrun = await b.reaches(second, "FAILED", "COMPLETED", timeout=30)

    report = check(kube, b.namespace, [node], clock.t, offersets=["first", "second", "third"])
    print(
        f"clock edges on {node}: t0={t0}; offers at t0, t0+{t(x2, 'prepareStart') - t0} (back to back), "
        f"t0+{t(x3, 'prepareStart') - t0}; {second} waited in {phase(waiting)} until its prepareStart; "
        f"{third} at exactly expires -> {phase(expired)}; {second} at releaseEnd+{OVERRUN_GRACE} -> "
        f"{phase(overrun)} ({overrun['status'].get('reason') or overrun['status'].get('message')}); "
        f"checker: {report}"
    )
    assert phase(expired) == "EXPIRED", expired["status"]
    desired = {c["type"]: c for c in expired["status"]["conditions"]}.get("DesiredPhase")
    assert desired is not None, expired["status"]
    assert desired["status"] == "False", expired["status"]
    assert phase(overrun) == "FAILED", overrun["status"]
    assert "still not finished" in overrun["status"]["message"], overrun["status"]
    assert not report.problems, report


NOW = 1_000_000


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (Facts(NOW - 1, Phase.OFFERED, True, True, "ACCEPTED", True, expires=NOW), None),
        (Facts(NOW, Phase.OFFERED, True, True, "ACCEPTED", True, expires=NOW), Phase.EXPIRED),
        (Facts(NOW - 1, Phase.OFFERED, True, True, expires=NOW), None),
        (Facts(NOW, Phase.OFFERED, True, True, expires=NOW), Phase.EXPIRED),
        (Facts(NOW - 1, Phase.WAITING, True, True, prepare_start=NOW, start=NOW), None),
        (Facts(NOW, Phase.WAITING, True, True, prepare_start=NOW, start=NOW), Phase.PREPARING),
    ],
)
def test_the_decision_one_second_either_side_of_a_boundary(facts: Facts, expected: Phase | None) -> None:
    assert decide(facts).phase == expected


def test_overrun_is_decided_exactly_at_the_end_of_the_allowance() -> None:
    pod = PodView(name="p", phase="Running", running=True, scheduled=True, initialized=True)
    end = NOW + 12
    before = Facts(end + OVERRUN_GRACE - 1, Phase.RUNNING, True, True, release_end=end, pod=pod)
    at = Facts(end + OVERRUN_GRACE, Phase.RUNNING, True, True, release_end=end, pod=pod)
    assert decide(before).phase is None
    assert decide(at).phase == Phase.FAILED
