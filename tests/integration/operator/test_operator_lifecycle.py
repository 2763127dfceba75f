"""Executions on the real kubelet: real containers decide COMPLETED and FAILED."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.integration.operator.helpers import FAST, REAL_NODE_PLATFORM, Broker, ivoa_request, phase
from tests.support.kube import REAL_NODE, async_wait_for

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(240)


async def test_an_accepted_offer_runs_to_completed_when_its_container_exits_zero(broker: MakeBroker) -> None:
    b = await broker({**REAL_NODE_PLATFORM, **FAST})
    answer = await b.ask("job", ivoa_request(("sh", "-c", "echo hello; sleep 1")))
    assert answer["status"]["result"] == "YES"
    offers = [o["name"] for o in answer["status"]["offers"]]
    assert len(offers) >= 2, "a small request gets several offers, whose release is checked below"
    first = await b.execution(offers[0])
    assert phase(first) == "OFFERED"
    assert first["metadata"]["ownerReferences"][0]["kind"] == "OfferSet"
    assert first["spec"]["reservation"]["node"] == REAL_NODE

    await b.desire(offers[0], "ACCEPTED")
    done = await b.settles(offers[0])
    assert phase(done) == "COMPLETED", done["status"]
    for other in offers[1:]:
        assert not b.holds(other)  # siblings of an accepted offer: free, with no write
        assert not await b.written(other)

    async def pod_succeeded() -> bool:
        pod = await b.pod(offers[0])
        return pod is not None and pod["status"]["phase"] == "Succeeded"

    await async_wait_for(pod_succeeded, 30, "the finished Pod to be kept, for its logs")
    for seen in ("Accepted", "Preparing", "Running", "Releasing", "Completed"):
        await b.event(offers[0], seen)


@pytest.mark.parametrize(
    ("command", "image", "cause"),
    [
        (("sh", "-c", "exit 1"), "eb-workload:latest", "the container exited with code 1"),
        (
            ("sh", "-c", "exit 0"),
            "eb-no-such-image:latest",
            "the image could not be pulled (ErrImageNeverPull)",
        ),
    ],
    ids=["exit 1", "bad image"],
)
async def test_a_failing_execution_says_why(
    broker: MakeBroker, command: tuple[str, ...], image: str, cause: str
) -> None:
    b = await broker({**REAL_NODE_PLATFORM, **FAST})
    await b.direct("job", ivoa_request(command, image=image))
    done = await b.settles("job")
    assert phase(done) == "FAILED"
    assert cause in done["status"]["message"]
    assert any(cause in str(m.get("message")) for m in done["status"]["messages"])
    failed = await b.event("job", "Failed")
    assert failed["type"] == "Warning"


async def test_a_run_past_its_offered_duration_fails_at_the_deadline(broker: MakeBroker) -> None:
    b = await broker({**REAL_NODE_PLATFORM, **FAST, "maxDurationFactor": 1.0})
    await b.direct("job", ivoa_request(("sleep", "600"), duration="PT5S"))
    running = await b.reaches("job", "RUNNING", "FAILED")
    assert phase(running) == "RUNNING"
    done = await b.settles("job", timeout=60)
    assert phase(done) == "FAILED"
    assert "DeadlineExceeded" in done["status"]["message"]


async def test_cancelling_a_running_execution_removes_its_pod(broker: MakeBroker) -> None:
    b = await broker({**REAL_NODE_PLATFORM, **FAST})
    await b.direct("job", ivoa_request(("sleep", "600"), duration="PT10M"))
    await b.reaches("job", "RUNNING")
    pod = await b.pod("job")
    assert pod is not None
    assert pod["status"]["phase"] == "Running", pod["status"]
    await b.desire("job", "CANCELLED")
    done = await b.settles("job")
    assert phase(done) == "CANCELLED"

    async def pod_gone() -> bool:
        return await b.pod("job") is None

    await async_wait_for(pod_gone, 30, "the Pod of a cancelled execution to be deleted")
    reserved = next(c for c in done["status"]["conditions"] if c["type"] == "Reserved")
    assert reserved["status"] == "False"


async def test_a_direct_request_gets_the_earliest_slot_and_is_accepted(broker: MakeBroker) -> None:
    b = await broker({**REAL_NODE_PLATFORM, **FAST})
    await b.direct("job", ivoa_request(("sh", "-c", "exit 0")))
    done = await b.settles("job")
    assert phase(done) == "COMPLETED"
    assert done["spec"]["reservation"]["node"] == REAL_NODE
    assert done["status"]["uuid"] == done["metadata"]["uid"]  # kubectl-named: the Kubernetes uid
