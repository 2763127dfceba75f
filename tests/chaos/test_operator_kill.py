"""Scenario 1: the operator process SIGKILLed at random moments (seeded; the seed is printed)
while 100 lifecycles run on kwok nodes, and restarted each time. Every lifecycle reaches the
phase its client's choices call for, no Pod is created twice, and the checker finds nothing.

Lifecycles (chosen by the seed): accepted and run to completion (the test plays the kwok
node's kubelet and ends the container), rejected, left to expire, accepted then cancelled. The
offers a client does not act on live in their set's status: never written as Executions, and the
checker counts their capacity until they expire or a sibling is accepted.
Kill moments: mostly 0-4 s after the operator reported "started", sometimes during its start-up.
Sessions last 60 s, longer than the operator is ever down, so the client's accept always lands
before its slot is over (an accept processed after the slot ended is refused, rightly: a first
run with 10 s sessions saw exactly that).
Bounded: ~2-3 min on the 2-core machine.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.chaos.checker import PodRecorder, check
from tests.chaos.stage import OperatorProcess, container_exits, kwok_platform
from tests.integration.operator.helpers import Broker, ivoa_request, phase
from tests.support.kube import Kubectl

from eb_operator.cluster.crs import Cluster
from eb_operator.cluster.kube import ClientSettings

pytestmark = pytest.mark.timeout(420)

LIFECYCLES = 100
CONCURRENCY = 12
KILLS = 12  # then the operator runs undisturbed until every lifecycle has ended
TTL = 30
SPEC = {
    "slotSeconds": 1,
    "preparationSeconds": 0,
    "releaseSeconds": 1,
    "offerTtlSeconds": TTL,
    "maxOffers": 2,
    "horizonSeconds": 3600,
}
KINDS = ("complete",) * 6 + ("reject",) * 2 + ("expire",) + ("cancel",) * 2  # drawn from with the seed


@dataclass
class Lifecycle:
    index: int
    kind: str
    offers: list[str] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


async def run_lifecycle(b: Broker, lc: Lifecycle, rng: random.Random) -> None:
    t0 = time.monotonic()
    name = f"lc-{lc.index:03d}"
    req = ivoa_request(
        ("sh", "-c", "exit 0"), cores=rng.randint(1, 3), memory=rng.randint(1, 4), duration="PT10S"
    )
    await b.offerset(name, req)
    answer = await b.answered(name, timeout=120)
    assert answer["status"]["result"] == "YES", answer["status"]
    lc.offers = [o["name"] for o in answer["status"]["offers"]]
    first = lc.offers[0]
    # the offers a client does not act on stay in the set's status: never written as Executions
    if lc.kind == "expire":
        await b.lapsed(answer)
    elif lc.kind == "reject":
        await b.desire(first, "REJECTED")
        lc.expected = {first: "REJECTED"}
    else:
        await b.desire(first, "ACCEPTED")
        lc.expected = {first: "COMPLETED" if lc.kind == "complete" else "CANCELLED"}
        if lc.kind == "complete":
            await b.reaches(first, "RUNNING", timeout=180)
            await container_exits(b.cluster, b.namespace, f"eb-{first}")
        else:  # cancel at once (ACCEPTED or WAITING) or once it runs
            if rng.random() < 0.5:
                await b.reaches(first, "RUNNING", timeout=180)
            else:
                await b.reaches(first, "ACCEPTED", "WAITING", "PREPARING", "READY", "RUNNING", timeout=180)
            await b.desire(first, "CANCELLED")
    for offer in lc.expected:
        await b.settles(offer, timeout=180)
    lc.seconds = time.monotonic() - t0


async def killer(op: OperatorProcess, rng: random.Random, done: Callable[[], bool], log: list[str]) -> int:
    """SIGKILL the operator at random moments and restart it at once, ``KILLS`` times."""
    kills = 0
    while kills < KILLS and not done():
        if rng.random() < 0.2:  # during start-up: before or while it lists and rebuilds its ledger
            await asyncio.sleep(rng.uniform(0.0, 2.0))
        else:
            await asyncio.to_thread(op.wait_started, 90)
            await asyncio.sleep(rng.uniform(0.0, 4.0))
        if done():
            break
        up = time.monotonic() - op.started_at
        op.kill()
        kills += 1
        log.append(f"kill {kills} after {up:.1f} s up")
        op.start()
    await asyncio.to_thread(op.wait_started, 90)
    return kills


async def test_operator_sigkilled_at_random_moments_during_100_lifecycles(
    crds: None, kube: Kubectl, make_namespace: Callable[..., str], tmp_path: Path, rng: random.Random
) -> None:
    ns = make_namespace("chaos-kill")
    lifecycles = [Lifecycle(i, rng.choice(KINDS)) for i in range(LIFECYCLES)]
    with kwok_platform(kube, ns, "chaos-kill", nodes=3, spec=SPEC, cpu="16") as stage:
        cluster = await Cluster.connect(ClientSettings(pool_size=48))
        b = Broker(cluster, kube, ns, stage.platform)
        op = OperatorProcess(kube, stage, tmp_path / "operator.log")
        recorder = PodRecorder(kube.kubeconfig, ns)
        kill_log: list[str] = []
        try:
            async with recorder.running():
                t0 = time.monotonic()
                op.start()
                limit = asyncio.Semaphore(CONCURRENCY)
                seeds = [rng.randrange(2**32) for _ in lifecycles]

                async def one(lc: Lifecycle, seed: int) -> None:
                    async with limit:
                        await run_lifecycle(b, lc, random.Random(seed))

                work = asyncio.gather(*(one(lc, s) for lc, s in zip(lifecycles, seeds, strict=True)))
                kills = await killer(op, rng, work.done, kill_log)
                try:
                    await work
                except BaseException as e:
                    raise AssertionError(f"{e!r}\nkills: {kill_log}\noperator log:\n{op.tail(40)}") from e
                took = time.monotonic() - t0
            executions = {e["metadata"]["uid"]: e["metadata"]["name"] for e in await b.executions()}
            report = check(
                kube,
                ns,
                stage.nodes,
                time.time(),
                offersets=[f"lc-{lc.index:03d}" for lc in lifecycles],
                executions=[o for lc in lifecycles for o in lc.expected],
                pod_uids=recorder.by_execution(executions),
            )
            final = {e["metadata"]["name"]: phase(e) for e in await b.executions()}
        finally:
            op.stop()
            await cluster.close()

    wrong = {
        n: (final.get(n), want)
        for lc in lifecycles
        for n, want in lc.expected.items()
        if final.get(n) != want
    }
    kinds = {k: sum(lc.kind == k for lc in lifecycles) for k in set(KINDS)}
    startups = sorted(op.startups)
    print(
        f"operator kill: {LIFECYCLES} lifecycles {kinds} in {took:.0f} s, {kills} SIGKILLs ({kill_log}), "
        f"start-up to ready p50 {startups[len(startups) // 2]:.1f} s max {startups[-1]:.1f} s, "
        f"lifecycle p50 {sorted(lc.seconds for lc in lifecycles)[LIFECYCLES // 2]:.1f} s; checker: {report}"
    )
    # the lifecycles may all end before the last kills on a fast machine; half of them must land
    assert kills >= KILLS // 2, kill_log
    assert not wrong, wrong
    unwritten = {o for lc in lifecycles for o in lc.offers if o not in lc.expected}
    assert not unwritten & final.keys(), "an offer no client acted on was written"
    assert not report.problems, report
    pods = recorder.by_execution(executions)
    ran = [lc.offers[0] for lc in lifecycles if lc.kind == "complete"]
    assert all(len(pods.get(o, ())) == 1 for o in ran), {o: pods.get(o) for o in ran}
