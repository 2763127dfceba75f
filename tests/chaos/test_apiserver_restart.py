"""Scenario 3: the kube-apiserver restarted (``hack/cluster.sh restart kube-apiserver``) while
sessions are in flight. kopf's most reported failure is a watch that goes silent and never
delivers again; so after the restart every one of the operator's watches must deliver within a
bound: Pod events (running sessions complete when their containers end), Execution events
(offers made before the restart are accepted after it: their Pods are made), OfferSet events (a
new set is answered) and Node events (a node added after the restart is offered). The test ends
the sessions' containers itself, as a kubelet would, so kwok's own recovery after the restart
(its Pod watch once took over 45 s) is not what is timed. Then the checker.

Bounded: ~1.5 min (the API server takes 6-10 s to be ready again).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.chaos.checker import PodRecorder, check
from tests.chaos.stage import OperatorProcess, cluster_sh, container_exits, kwok_platform, phase
from tests.integration.operator.helpers import Broker, ivoa_request
from tests.support.kube import POOL_LABEL, Kubectl, async_wait_for, kwok_node

from eb_operator.cluster.crs import EXECUTIONS, OFFERSETS, Cluster, Conflict
from eb_operator.cluster.kube import ClientSettings

pytestmark = pytest.mark.timeout(400)

SPEC = {
    "slotSeconds": 1,
    "preparationSeconds": 0,
    "releaseSeconds": 1,
    "offerTtlSeconds": 120,
    "maxOffers": 2,
}
#: Every watch must deliver again within this after the API server is ready (kopf's own
#: client timeout is 35 s: a watch left silent is re-made before it).
RECOVERY = 45.0


async def until(what: str, probe: Callable[[], Awaitable[Any]], timeout: float = RECOVERY) -> Any:  # noqa: ASYNC109
    """Poll ``probe`` (errors while the API server is away count as "not yet")."""
    return await async_wait_for(probe, timeout, what, interval=0.2)


async def test_apiserver_restarted_while_sessions_are_in_flight(
    crds: None, kube: Kubectl, make_namespace: Callable[..., str], tmp_path: Path
) -> None:
    ns = make_namespace("chaos-apiserver")
    with kwok_platform(kube, ns, "chaos-apiserver", nodes=2, spec=SPEC) as stage:
        cluster = await Cluster.connect(ClientSettings())
        b = Broker(cluster, kube, ns, stage.platform)
        op = OperatorProcess(kube, stage, tmp_path / "operator.log")
        recorder = PodRecorder(kube.kubeconfig, ns)

        async def phase_is(name: str, *want: str) -> bool:
            return phase(await cluster.get(EXECUTIONS, ns, name)) in want

        async def answered(name: str) -> dict[str, Any] | None:
            o = await cluster.get(OFFERSETS, ns, name)
            return o if (o.get("status") or {}).get("result") else None

        async def create_set(name: str, cores: int) -> bool:
            with contextlib.suppress(Conflict):  # made by an attempt whose answer was lost
                await b.offerset(name, ivoa_request(cores=cores))
            return True

        async def ends(pod: str) -> bool:
            await container_exits(cluster, ns, pod)
            return True

        try:
            async with recorder.running():
                op.start()
                await asyncio.to_thread(op.wait_started, 90)
                running, waiting = [], []
                for i in range(6):
                    answer = await b.ask(f"before-{i}", ivoa_request(cores=1, duration="PT10M"), timeout=60)
                    (running if i < 4 else waiting).append(answer["status"]["offers"][0]["name"])
                for name in running:
                    await b.desire(name, "ACCEPTED")
                for name in running:
                    await b.reaches(name, "RUNNING", timeout=60)

                downtime = await asyncio.to_thread(cluster_sh, "restart", "kube-apiserver")
                # The harness's fake kubelet (kwok v0.7.0) does not always come back after an API
                # server restart (its informers can stay silent, so new nodes' Pods never run, also
                # for the next tests); a kubelet does. Restart it: what is timed is the operator.
                await asyncio.to_thread(cluster_sh, "restart", "kwok")
                ready = time.monotonic()
                recovered: dict[str, float] = {}

                # Pod watch: containers end -> COMPLETED
                for name in running:
                    await until(f"the Pod of {name} to end", lambda n=name: ends(f"eb-{n}"))
                for name in running:
                    await until(f"{name} COMPLETED", lambda n=name: phase_is(n, "COMPLETED"))
                recovered["pods"] = time.monotonic() - ready
                # Execution watch: offers made before the restart are accepted after it
                for name in waiting:
                    await until(f"accept {name}", lambda n=name: b.desire(n, "ACCEPTED"))
                for name in waiting:
                    # the operator's part: the accept seen and the Pod made (kwok's own Pod watch,
                    # which reports it running, may take longer to come back: not the broker's)
                    await until(
                        f"{name} PREPARING", lambda n=name: phase_is(n, "PREPARING", "READY", "RUNNING")
                    )
                recovered["executions"] = time.monotonic() - ready
                # OfferSet watch: a new set is answered
                await until("a new OfferSet", lambda: create_set("after", 1))
                after = await until("the new OfferSet answered", lambda: answered("after"))
                recovered["offersets"] = time.monotonic() - ready
                # Node watch: a node added now, the only one that fits 12 cores, is offered
                big = f"{stage.platform}-big"
                kube.apply(kwok_node(big, cpu="16", memory="32Gi", labels={POOL_LABEL: stage.platform}))
                stage.nodes.append(big)
                await until(
                    "the big node Ready", lambda: kube.run("wait", "--for=condition=Ready", f"node/{big}")
                )
                # The operator sees the node through its own watch, which may deliver the node's
                # Ready after the set's creation (no order across watches): ask again until a YES
                bigs: list[str] = []

                async def big_offered() -> dict[str, Any] | None:
                    answer = await answered(bigs[-1]) if bigs else None
                    if answer is not None and answer["status"]["result"] == "YES":
                        return answer
                    if answer is not None or not bigs:  # a NO (the node not seen yet): ask anew
                        await create_set(f"big-{len(bigs)}", 12)
                        bigs.append(f"big-{len(bigs)}")
                    return None

                big_answer = await until("a 12-core set answered YES", big_offered)
                recovered["nodes"] = time.monotonic() - ready

                for name in waiting:
                    await until(f"the Pod of {name} to end", lambda n=name: ends(f"eb-{n}"))
                for name in waiting:
                    await until(f"{name} COMPLETED", lambda n=name: phase_is(n, "COMPLETED"))
                placed = [o["reservation"]["node"] for o in big_answer["status"]["offers"]]
            executions = {e["metadata"]["uid"]: e["metadata"]["name"] for e in await b.executions()}
            report = check(
                kube,
                ns,
                stage.nodes,
                time.time(),
                offersets=[
                    *(f"before-{i}" for i in range(6)),
                    "after",
                    *bigs,
                ],
                executions=running + waiting,
                pod_uids=recorder.by_execution(executions),
            )
        except BaseException as e:
            raise AssertionError(f"{e!r}\noperator log:\n{op.tail(40)}") from e
        finally:
            op.stop()
            await cluster.close()

    print(
        f"apiserver restart: down and back to /readyz in {downtime:.1f} s; watches delivering again after "
        f"(s from ready): {', '.join(f'{k} {v:.1f}' for k, v in recovered.items())}; "
        f"12-core sets asked until a YES: {len(bigs)}; "
        f"test's pod watch re-listed {recorder.breaks} times; checker: {report}"
    )
    assert after["status"]["result"] == "YES"
    assert big_answer["status"]["result"] == "YES", big_answer["status"]
    assert set(placed) == {big}, placed
    assert not report.problems, report
