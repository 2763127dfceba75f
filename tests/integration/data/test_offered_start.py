"""The offered start on the real kubelet (digest §7 item 55): the Pod is created at the
reservation's prepare start so its data can be staged first; the session is READY while it waits,
and the workload starts at the offered start, not before."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.integration.data.conftest import Files, earliest, reaches
from tests.integration.data.test_data_staging import SIMPLE, with_resources
from tests.integration.operator.helpers import FAST, FINAL, REAL_NODE_PLATFORM, Broker, phase
from tests.support.kube import unique_name

from eb_operator.model.times import parse_instant

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(300)
LEAD = 12  # preparationSeconds: long enough that staging ends well before the start


def _terminated(statuses: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [status] = [s for s in statuses if s["name"] == name]
    return dict(status["state"]["terminated"])


async def test_staged_data_waits_for_the_offered_start_and_the_workload_starts_at_it(
    broker: MakeBroker, files: Files
) -> None:
    url = files.put(unique_name("obs", max_len=20) + ".csv", b"ra,dec\n1,2\n")
    b = await broker({**REAL_NODE_PLATFORM, **FAST, "preparationSeconds": LEAD})
    req = with_resources(
        "cat /data/*.csv",
        storage=[],
        data=[{"type": SIMPLE, "name": "obs", "location": url}],
        volumes=[{"name": "d", "resource": "obs", "path": "/data"}],
    )
    answer = await b.ask("on-time", req)
    assert answer["status"]["result"] == "YES", answer["status"]
    offer = await earliest(b, answer)
    start = parse_instant((await b.execution(offer))["spec"]["reservation"]["start"])
    # the real node is this test's: the earliest offer starts once staging can be done
    assert start - time.time() <= LEAD + 30, answer["status"]
    await b.desire(offer, "ACCEPTED")
    done = await reaches(b, offer, *FINAL, timeout=180)
    assert phase(done) == "COMPLETED", done["status"]

    pod = await b.pod(offer)
    assert pod is not None
    created = parse_instant(pod["metadata"]["creationTimestamp"])
    staged = parse_instant(_terminated(pod["status"]["initContainerStatuses"], "stage-0")["finishedAt"])
    waited = _terminated(pod["status"]["initContainerStatuses"], "wait-start")
    started = parse_instant(_terminated(pod["status"]["containerStatuses"], "main")["startedAt"])
    assert created < start, "the Pod is made at the prepare start, before the offered start"
    assert staged < start, "staging ends before the offered start"
    assert parse_instant(waited["finishedAt"]) >= start
    assert started >= start, f"the workload started at {started}, before the offered start {start}"
    # the session was READY (prepared) before it ran, and ran on time, not much later
    ready = await b.event(offer, "Ready")
    assert "waits for the offered start" in ready["message"], ready
    assert started - start <= 10, f"the workload started {started - start} s after the offered start"
    early, late = start - staged, started - start
    print(f"\nstaged {early} s before the offered start; the workload started {late} s after it")
