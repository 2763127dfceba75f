"""A session's capacity is free only once its Pod is gone, so the next session on that node is
never refused by the scheduler ("Insufficient cpu"). On the real kubelet, whose Pods take real
time to stop: ``sleep`` as a container's first process ignores SIGTERM, so a Pod being stopped
stays (and the scheduler counts it) until the kubelet kills it at the end of its grace period.

Each session asks for every whole core the real node has free, so the second of two is placed
right after the first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.integration.operator.helpers import FAST, REAL_NODE_PLATFORM, Broker, ivoa_request, phase
from tests.support.kube import REAL_NODE, async_wait_for

from eb_operator.model.times import parse_instant
from eb_operator.operator.builders.pod import PodSettings
from eb_operator.operator.state import SHUTDOWN_HOLD

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(240)


def _whole_free_cores(b: Broker) -> int:
    """The real node's free whole cores as the operator sees them (the e2e release's Pods may
    hold some): a session asking for all of them leaves no room beside it."""
    assert b.runner is not None
    op = b.runner.operator
    free = op.state.node_table(op.ctx.policy).get(REAL_NODE)
    assert free is not None
    assert free.free.cpu_millis >= 1000, free
    return free.free.cpu_millis // 1000


def _gone(pod: dict[str, Any] | None) -> bool:
    return pod is None or pod["status"].get("phase") in ("Succeeded", "Failed")


async def test_the_next_session_waits_for_the_pod_before_it_and_never_fails_for_insufficient_cpu(
    broker: MakeBroker,
) -> None:
    """The first session overruns its time (its process ignores SIGTERM: the kubelet kills it 8 s
    after its deadline, past its reservation's end); the second, placed right after it on the same
    core, must wait for it rather than be refused by the scheduler."""
    b = await broker(
        {**REAL_NODE_PLATFORM, **FAST, "maxDurationFactor": 1.0},
        pod=PodSettings(termination_grace_seconds=8),
    )
    cores = _whole_free_cores(b)
    await b.direct("first", ivoa_request(("sleep", "600"), duration="PT6S", cores=cores))
    await b.reaches("first", "RUNNING")
    await b.direct("second", ivoa_request(("sh", "-c", "echo second"), duration="PT5S", cores=cores))
    second = await b.until("second", lambda o: bool((o.get("spec") or {}).get("reservation")), 30)
    first = await b.execution("first")
    back_to_back = second["spec"]["reservation"]["prepareStart"] == first["spec"]["reservation"]["releaseEnd"]
    assert back_to_back, (first["spec"]["reservation"], second["spec"]["reservation"])

    done = await b.settles("second", timeout=120)
    assert phase(done) == "COMPLETED", done["status"]
    first_done = await b.settles("first", timeout=60)
    assert phase(first_done) == "FAILED"  # the deadline stopped it
    assert "DeadlineExceeded" in first_done["status"]["message"]
    assert b.runner is not None
    assert b.runner.operator.ctx.stats["room_waits"] >= 1, "the second session never had to wait"
    # The second Pod was made only after the first had stopped: the scheduler never refused it.
    pod, before = await b.pod("second"), await b.pod("first")
    assert pod is not None
    assert before is not None  # a finished Pod is kept (for its logs)
    stopped = before["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
    assert parse_instant(pod["metadata"]["creationTimestamp"]) >= parse_instant(stopped)
    scheduled = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["status"] == "True"
    refusals = [e for e in await b.events("eb-second") if e["reason"] == "FailedScheduling"]
    assert not refusals, [e["message"] for e in refusals]


async def test_a_cancelled_session_holds_its_capacity_until_its_pod_is_gone(broker: MakeBroker) -> None:
    """Cancelled, the session's Pod is stopped with a 10 s grace (its process ignores SIGTERM, so it
    takes all of it): until then its node is held for that shutdown (``SHUTDOWN_HOLD`` from the
    cancel), and a set asked for meanwhile is offered the core after it, not at once and not at the
    end the cancelled session was offered; once the Pod is gone, the core is free at once."""
    b = await broker({**REAL_NODE_PLATFORM, **FAST}, pod=PodSettings(termination_grace_seconds=10))
    cores = _whole_free_cores(b)
    await b.direct("job", ivoa_request(("sleep", "600"), duration="PT10M", cores=cores))
    await b.reaches("job", "RUNNING")
    cancelling = int(time.time())
    await b.desire("job", "CANCELLED")
    cancelled = await b.reaches("job", "CANCELLED")
    assert b.holds("job"), "released while its Pod still runs"
    meanwhile = await b.ask("meanwhile", ivoa_request(duration="PT1M", cores=cores))
    pod = await b.pod("job")
    assert not _gone(pod), "the Pod was gone before the set was answered: the test shows nothing"
    assert meanwhile["status"]["result"] == "YES"
    release_end = parse_instant(cancelled["spec"]["reservation"]["releaseEnd"])
    starts = [parse_instant(o["reservation"]["prepareStart"]) for o in meanwhile["status"]["offers"]]
    assert starts
    assert cancelling + SHUTDOWN_HOLD <= min(starts) < release_end, (starts, cancelling, release_end)

    for o in meanwhile["status"]["offers"]:  # declined: their own holds are not what is measured
        await b.desire(o["name"], "REJECTED")
        await b.released(o["name"])
    await async_wait_for(lambda: not b.holds("job"), 60, "the cancelled session's capacity to be free")
    assert _gone(await b.pod("job")), "released before its Pod was gone"
    t = time.time()
    after = await b.ask("after", ivoa_request(duration="PT1M", cores=cores))
    assert after["status"]["result"] == "YES"
    assert parse_instant(after["status"]["offers"][0]["reservation"]["prepareStart"]) <= t + 5
