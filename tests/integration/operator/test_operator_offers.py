"""Offers through CRs alone: the seed scenario, GPUs, expiry, concurrent accepts, bad input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.integration.operator.helpers import (
    API,
    FAST,
    REAL_NODE_PLATFORM,
    Broker,
    ivoa_request,
    phase,
)
from tests.support.kube import REAL_NODE, async_wait_for

from eb_operator.cluster.crs import EXECUTABLES, OFFERSETS, PLATFORMS
from eb_operator.model.times import format_instant, parse_instant

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(240)
H = 3600
AD104 = "https://www.purl.org/ivoa.net/resource-types/nvidia-ad104"


async def starts(b: Broker, answer: dict[str, Any]) -> list[int]:
    out = []
    for o in answer["status"].get("offers") or []:
        out.append(parse_instant((await b.execution(o["name"]))["spec"]["reservation"]["start"]))
    return sorted(out)


async def test_the_seed_scenario_through_crs_alone(broker: MakeBroker) -> None:
    """64 cores in 2-hour slots; 32 cores + GPU for 4 h, 16 cores for 2 h, 32 cores + GPU for 2 h
    (digest §5.3): offers at different start times, and accepting one frees its sibling's slots."""
    b = await broker(
        {
            "slotSeconds": 2 * H,
            "horizonSeconds": 14 * H,
            "offerTtlSeconds": 600,
            "maxOffers": 2,
            "preparationSeconds": 0,
            "releaseSeconds": 0,
            "maxDurationFactor": 1.0,
            "gpuFlavours": [{"name": "ad104", "product": "nvidia-ad104", "typeUris": [AD104]}],
        },
        nodes=[{"cpu": "64", "memory": "256Gi", "gpus": 1}],
    )
    s1 = -(-int(time.time()) // (2 * H)) * (2 * H)  # the next 2-hour boundary
    window = [f"{format_instant(s1)}/PT8H"]  # starts S1..S5
    slot = [s1 + i * 2 * H for i in range(5)]

    r1 = await b.ask("r1", ivoa_request(cores=32, max_cores=32, gpus=1, duration="PT4H", start=window))
    # A1 S1-S2, A2 S3-S4 (the broker fixture waits for the new node to lose its not-ready taint)
    assert await starts(b, r1) == [slot[0], slot[2]], r1["status"]

    r2 = await b.ask("r2", ivoa_request(cores=16, max_cores=16, duration="PT2H", start=window))
    assert await starts(b, r2) == [slot[0], slot[1]]  # 32 + 16 <= 64 in S1 and S2

    r3 = await b.ask("r3", ivoa_request(cores=32, max_cores=32, gpus=1, duration="PT2H", start=window))
    assert await starts(b, r3) == [slot[4]]  # the GPU is held in S1-S4

    by_start = {}
    for o in r1["status"]["offers"]:
        by_start[parse_instant((await b.execution(o["name"]))["spec"]["reservation"]["start"])] = o["name"]
    await b.desire(by_start[slot[0]], "ACCEPTED")
    assert phase(await b.reaches(by_start[slot[0]], "ACCEPTED", "WAITING")) in ("ACCEPTED", "WAITING")
    await b.released(by_start[slot[2]])  # the sibling: no write, its capacity is free
    assert not await b.written(by_start[slot[2]])

    again = await b.ask(
        "r3-again", ivoa_request(cores=32, max_cores=32, gpus=1, duration="PT2H", start=window)
    )
    assert (await starts(b, again))[0] in (slot[2], slot[3])  # S3 or S4 now that A2 is gone


async def test_a_gpu_execution_lands_on_a_gpu_node_with_the_gpu_limit(broker: MakeBroker) -> None:
    b = await broker(
        {
            **REAL_NODE_PLATFORM,
            **FAST,
            "gpuFlavours": [{"name": "test", "product": "real-test-gpu", "resourceName": "nvidia.com/gpu"}],
        }
    )
    await b.direct("gpu-job", ivoa_request(("sh", "-c", "exit 0"), gpus=1))
    done = await b.settles("gpu-job")
    assert phase(done) == "COMPLETED", done["status"]
    assert done["spec"]["reservation"]["gpus"] == 1
    pod = await b.pod("gpu-job")
    assert pod is not None
    assert pod["spec"]["nodeName"] == REAL_NODE
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "real-test-gpu"}


async def test_expiry_frees_capacity_for_the_next_request(broker: MakeBroker) -> None:
    b = await broker(
        {
            "slotSeconds": 60,
            "horizonSeconds": 120,
            "offerTtlSeconds": 3,
            "preparationSeconds": 0,
            "releaseSeconds": 0,
            "maxDurationFactor": 1.0,
        },
        nodes=[{"cpu": "4", "memory": "16Gi"}],
        sweep_seconds=1.0,
    )
    everything = ivoa_request(cores=4, max_cores=4, duration="PT10M")
    first = await b.ask("first", everything)
    assert first["status"]["result"] == "YES"
    second = await b.ask("second", everything)
    assert second["status"]["result"] == "NO"
    assert second["status"]["messages"]
    await b.lapsed(first)
    assert not any([await b.written(o["name"]) for o in first["status"]["offers"]])  # no write at expiry
    third = await b.ask("third", everything)
    assert third["status"]["result"] == "YES"


async def test_a_short_session_cannot_be_accepted_after_its_slot_is_over(broker: MakeBroker) -> None:
    """A 1-minute session offered with a 300 s TTL: the set lapses when its earliest slot ends."""
    b = await broker(
        {
            "slotSeconds": 60,
            "offerTtlSeconds": 300,
            "preparationSeconds": 0,
            "releaseSeconds": 0,
            "maxDurationFactor": 1.0,
        },
        nodes=[{"cpu": "4", "memory": "16Gi"}],
    )
    answer = await b.ask("short", ivoa_request(cores=1, max_cores=1, duration="PT1M"))
    assert answer["status"]["result"] == "YES"
    reservations = [(await b.execution(o["name"]))["spec"]["reservation"] for o in answer["status"]["offers"]]
    expires = parse_instant(answer["status"]["expires"])
    assert expires == min(parse_instant(r["releaseEnd"]) for r in reservations)
    assert expires < parse_instant(answer["status"]["created"]) + 300
    assert {parse_instant(r["expires"]) for r in reservations} == {expires}


async def test_two_concurrent_accepts_of_siblings_end_with_exactly_one_accepted(broker: MakeBroker) -> None:
    b = await broker(
        {"slotSeconds": 300, "offerTtlSeconds": 120, "maxOffers": 4}, nodes=[{"cpu": "8", "memory": "32Gi"}]
    )
    answer = await b.ask("pair", ivoa_request(cores=2, duration="PT1H"))
    names = [o["name"] for o in answer["status"]["offers"]]
    assert len(names) >= 2
    await asyncio.gather(b.desire(names[0], "ACCEPTED"), b.desire(names[1], "ACCEPTED"))
    settled = [
        await b.until(n, lambda o: phase(o) != "OFFERED" and _answered(o), timeout=30) for n in names[:2]
    ]
    won = [o for o in settled if phase(o) in ("ACCEPTED", "WAITING", "PREPARING", "READY", "RUNNING")]
    lost = [o for o in settled if phase(o) == "REJECTED"]
    assert len(won) == 1
    assert len(lost) == 1
    refusal = next(c for c in lost[0]["status"]["conditions"] if c["type"] == "DesiredPhase")
    assert refusal["status"] == "False"
    for other in names[2:]:
        await b.released(other)


def _answered(obj: dict[str, Any]) -> bool:
    st = obj.get("status") or {}
    return int(st.get("observedGeneration") or 0) >= int(obj["metadata"]["generation"])


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        ({"executable": {"type": "urn:not-a-known-type"}}, "unknown executable type"),
        (ivoa_request(cores=1000), "1000 cores"),
        ({"schedule": {"requested": {"duration": "PT1H"}}}, "executable"),
    ],
    ids=["unknown executable type", "more cores than the platform allows", "no executable"],
)
async def test_a_request_the_platform_cannot_serve_is_answered_no_with_reasons(
    broker: MakeBroker, request_: dict[str, Any], says: str
) -> None:
    b = await broker({"slotSeconds": 300}, nodes=[{"cpu": "8", "memory": "32Gi"}])
    answer = await b.ask("bad", request_)
    assert answer["status"]["result"] == "NO"
    assert answer["status"]["offers"] == []
    text = " ".join(str(m.get("message")) for m in answer["status"]["messages"])
    assert says in text


async def test_a_negative_storage_lifetime_is_answered_no_naming_the_field(broker: MakeBroker) -> None:
    """On a platform with a storage class the lifetime reaches the operator's storage code: a
    negative one is answered NO naming the field, before any of that code reads it."""
    b = await broker(
        {"slotSeconds": 300, "storageClassName": "standard"}, nodes=[{"cpu": "8", "memory": "32Gi"}]
    )
    req = ivoa_request()
    req["resources"]["storage"] = [
        {
            "type": "https://www.purl.org/ivoa.net/EB/schema/types/resources/storage/simple-storage-resource-1.0",
            "name": "results",
            "lifetime": {"requested": {"min": "-P1D"}},
        }
    ]
    answer = await b.ask("negative-lifetime", req)
    assert answer["status"]["result"] == "NO", answer["status"]
    paths = [(m.get("values") or {}).get("path") for m in answer["status"]["messages"]]
    assert paths == ["resources/storage/0/lifetime/requested/min"], answer["status"]["messages"]
    assert "negative" in answer["status"]["messages"][0]["message"]


async def test_unknown_fields_are_pruned_by_the_schema(broker: MakeBroker) -> None:
    b = await broker({"slotSeconds": 300}, nodes=[{"cpu": "8", "memory": "32Gi"}])
    req = ivoa_request()
    req["executable"]["colour"] = "blue"
    body = {
        "apiVersion": API,
        "kind": "OfferSet",
        "metadata": {"name": "odd"},
        "spec": {"request": req, "x": 1},
    }
    made = await b.cluster.create(OFFERSETS, b.namespace, body)
    assert "x" not in made["spec"]
    assert "colour" not in made["spec"]["request"]["executable"]
    assert (await b.answered("odd"))["status"]["result"] == "YES"


async def test_a_direct_execution_may_name_an_executable(broker: MakeBroker) -> None:
    b = await broker({**REAL_NODE_PLATFORM, **FAST})
    exe = ivoa_request(("sh", "-c", "exit 0"))["executable"]
    await b.cluster.create(
        EXECUTABLES,
        b.namespace,
        {"apiVersion": API, "kind": "Executable", "metadata": {"name": "hello"}, "spec": exe},
    )
    req = ivoa_request()
    del req["executable"]
    body = {
        "apiVersion": API,
        "kind": "Execution",
        "metadata": {"name": "by-ref"},
        "spec": {"executableRef": "hello", "request": req},
    }
    await b.cluster.create("executions", b.namespace, body)
    assert phase(await b.settles("by-ref")) == "COMPLETED"

    body["metadata"]["name"] = "missing-ref"
    body["spec"]["executableRef"] = "nope"
    await b.cluster.create("executions", b.namespace, body)
    failed = await b.settles("missing-ref")
    assert phase(failed) == "FAILED"


async def test_an_invalid_platform_is_reported_and_the_previous_policy_stays(broker: MakeBroker) -> None:
    b = await broker({"slotSeconds": 300, "maxOffers": 1}, nodes=[{"cpu": "8", "memory": "32Gi"}])
    await b.cluster.patch(
        PLATFORMS, None, b.platform, {"spec": {"slotSeconds": 7200, "horizonSeconds": 3600}}
    )

    async def reported() -> dict[str, Any] | None:
        p = await b.cluster.get(PLATFORMS, None, b.platform)
        st = p.get("status") or {}
        return p if st.get("valid") is False else None

    bad = await async_wait_for(reported, 30, "the invalid policy to be reported")
    assert "horizonSeconds" in bad["status"]["message"]
    answer = await b.ask("still-served", ivoa_request(cores=1, duration="PT1H"))
    assert answer["status"]["result"] == "YES"
    assert len(answer["status"]["offers"]) == 1  # maxOffers 1 from the previous, valid policy
    start = (await b.execution(answer["status"]["offers"][0]["name"]))["spec"]["reservation"]["start"]
    assert parse_instant(start) % 300 == 0
