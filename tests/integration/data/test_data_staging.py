"""Data staging and storage on the real kubelet, with real servers: an HTTP file server and
versitygw (S3) on this machine. The workload reads what init containers staged; READONLY is
enforced; failures and unreachable endpoints say why; persistent storage goes after its lifetime."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.integration.data.conftest import S3, Files, earliest, reaches
from tests.integration.operator.helpers import FAST, FINAL, REAL_NODE_PLATFORM, Broker, ivoa_request, phase
from tests.support.kube import Kubectl, async_wait_for, pod_logs, unique_name

from eb_operator.model.times import parse_instant

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(300)

STORAGE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/storage/simple-storage-resource-1.0"
SIMPLE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/data/simple-data-resource-1.0"
S3_DATA = "https://www.purl.org/ivoa.net/EB/schema/types/resources/data/S3-data-resource-1.0"
SINGULARITY = "https://www.purl.org/ivoa.net/EB/schema/types/executables/singularity-container-1.0"
BIG = 32 * 1024 * 1024


def with_resources(
    command: str,
    storage: list[dict[str, Any]],
    data: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    duration: str = "PT2M",
) -> dict[str, Any]:
    req = ivoa_request(("sh", "-c", command), duration=duration)
    req["resources"] = {
        "compute": [{**req["resources"]["compute"][0], "volumes": volumes}],
        "storage": storage,
        "data": data,
    }
    return req


def endpoints(s3: S3, secret: tuple[str, str]) -> dict[str, Any]:
    ns, name = secret
    return {"dataEndpoints": [{"endpoint": s3.endpoint, "secretName": name, "secretNamespace": ns}]}


async def accept_first(b: Broker, name: str, req: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    answer = await b.ask(name, req)
    assert answer["status"]["result"] == "YES", answer["status"]
    offer = await earliest(b, answer)
    execution = await b.execution(offer)
    await b.desire(offer, "ACCEPTED")
    return offer, execution


async def test_http_and_s3_data_are_staged_into_volumes_and_read_by_the_workload(
    broker: MakeBroker, files: Files, s3: S3, s3_secret: tuple[str, str], k8s: Any
) -> None:
    bucket = unique_name("survey", max_len=30)
    s3.bucket(bucket)
    s3.put(bucket, "tiles/a.txt", b"tile a\n")
    s3.put(bucket, "tiles/deep/b.txt", b"tile b\n")
    s3.put(bucket, "big.bin", os.urandom(BIG))
    catalogue = files.put(f"{bucket}/cat.csv", b"ra,dec\n10.68,41.27\n")
    bandwidth = 8 * 1024 * 1024
    b = await broker(
        {**REAL_NODE_PLATFORM, **FAST, **endpoints(s3, s3_secret), "dataBandwidthBytesPerSecond": bandwidth}
    )
    command = (
        "cat /work/cat/cat.csv /work/tiles/a.txt /work/tiles/deep/b.txt; "
        "wc -c < /big/big.bin; "
        "echo written > /work/out.txt && cat /work/out.txt; "
        "if touch /big/new 2>/dev/null; then echo big-is-writable; exit 3; fi; echo big-is-readonly"
    )
    req = with_resources(
        command,
        storage=[{"type": STORAGE, "name": "work", "size": {"requested": {"min": 1}}}],
        data=[
            {"type": SIMPLE, "name": "cat", "location": catalogue, "storage": "work"},
            {
                "type": S3_DATA,
                "name": "tiles",
                "endpoint": s3.endpoint,
                "bucket": bucket,
                "object": "tiles/",
                "storage": "work",
            },
            {"type": S3_DATA, "name": "big", "endpoint": s3.endpoint, "bucket": bucket, "object": "big.bin"},
        ],
        volumes=[
            {"name": "w", "resource": "work", "path": "/work", "mode": "READWRITE"},
            {"name": "b", "resource": "big", "path": "/big", "mode": "READONLY"},
        ],
    )
    offer, execution = await accept_first(b, "staged", req)
    r = execution["spec"]["reservation"]
    lead = parse_instant(r["start"]) - parse_instant(r["prepareStart"])
    assert lead >= BIG // bandwidth, "the preparation lead time counts the probed data size"
    done = await reaches(b, offer, *FINAL, timeout=180)
    assert phase(done) == "COMPLETED", done["status"]
    logs = await pod_logs(k8s_v1(k8s), f"eb-{offer}", b.namespace, container="main")
    assert logs.split("\n") == [
        "ra,dec",
        "10.68,41.27",
        "tile a",
        "tile b",
        str(BIG),
        "written",
        "big-is-readonly",
        "",
    ]
    big = await pod_logs(k8s_v1(k8s), f"eb-{offer}", b.namespace, container="stage-2")
    match = re.match(r"staged 1 files, (\d+) bytes in ([\d.]+) s \(([\d.]+) MB/s\)", big)
    assert match, big
    assert int(match.group(1)) == BIG
    print(
        f"\nS3 staging of {BIG} bytes: {match.group(2)} s, {match.group(3)} MB/s; lead time offered {lead} s"
    )


def k8s_v1(k8s: Any) -> Any:
    from kubernetes_asyncio import client

    return client.CoreV1Api(k8s)


async def test_a_staging_failure_makes_the_session_failed_with_the_cause(
    broker: MakeBroker, files: Files
) -> None:
    url = files.put(unique_name("gone", max_len=20) + ".fits", b"soon gone")
    b = await broker({**REAL_NODE_PLATFORM, **FAST})
    req = with_resources(
        "ls /data",
        storage=[],
        data=[{"type": SIMPLE, "name": "obs", "location": url}],
        volumes=[{"name": "d", "resource": "obs", "path": "/data"}],
    )
    answer = await b.ask("fails", req)
    assert answer["status"]["result"] == "YES", answer["status"]
    (files.root / url.rsplit("/", 1)[1]).unlink()  # the data goes away after the offer was made
    offer = await earliest(b, answer)
    await b.desire(offer, "ACCEPTED")
    done = await reaches(b, offer, *FINAL, timeout=120)
    assert phase(done) == "FAILED"
    cause = (
        f"data staging failed: stage-0 exited with code 1: staging failed: GET {url}: HTTP 404 File not found"
    )
    assert done["status"]["message"] == cause
    assert any(m.get("message") == cause for m in done["status"]["messages"])


async def test_unreachable_or_unconfigured_data_and_singularity_without_a_runner_are_no_at_offer_time(
    broker: MakeBroker, files: Files
) -> None:
    closed = "http://10.213.0.1:9"  # nothing listens on the discard port here
    b = await broker({**REAL_NODE_PLATFORM, **FAST, "dataEndpoints": [{"endpoint": closed}]})
    cases = {
        "unreachable-s3": (
            {"type": S3_DATA, "name": "d", "endpoint": closed, "bucket": "sky", "object": "x"},
            "resources/data/0/endpoint: the broker cannot reach the S3 endpoint "
            "http://10.213.0.1:9: connection failed",
        ),
        "unconfigured-s3": (
            {"type": S3_DATA, "name": "d", "endpoint": "http://10.213.0.1:7777", "bucket": "sky"},
            "resources/data/0/endpoint: this platform cannot reach the S3 endpoint http://10.213.0.1:7777",
        ),
        "missing-http": (
            {"type": SIMPLE, "name": "d", "location": f"{files.url}/no-such-file"},
            f"resources/data/0/location: {files.url}/no-such-file answered HTTP 404 File not found",
        ),
    }
    for name, (data, message) in cases.items():
        req = with_resources("true", storage=[], data=[data], volumes=[])
        answer = await b.ask(name, req)
        assert answer["status"]["result"] == "NO", name
        [error] = [m for m in answer["status"]["messages"] if m["level"] == "ERROR"]
        assert error["message"].startswith(message), (name, error["message"])
    req = ivoa_request()
    req["executable"] = {"type": SINGULARITY, "location": f"{files.url}/image.sif"}
    answer = await b.ask("singularity", req)
    assert answer["status"]["result"] == "NO"
    assert [m["message"] for m in answer["status"]["messages"]] == [
        "executable/type: this platform does not run Singularity containers"
    ]


async def test_persistent_storage_outlives_the_session_by_its_lifetime_and_is_then_removed(
    broker: MakeBroker, kube: Kubectl, local_volume: tuple[str, Path]
) -> None:
    storage_class, path = local_volume
    # the preparation lead time covers binding the claim before the offered start
    b = await broker(
        {**REAL_NODE_PLATFORM, **FAST, "preparationSeconds": 15, "storageClassName": storage_class}
    )
    req = with_resources(
        "echo result > /results/out.txt",
        storage=[
            {
                "type": STORAGE,
                "name": "results",
                "size": {"requested": {"min": 1}},
                "lifetime": {"requested": {"min": "PT8S"}},
            }
        ],
        data=[],
        volumes=[{"name": "r", "resource": "results", "path": "/results", "mode": "READWRITE"}],
    )
    answer = await b.ask("persist", req)
    assert answer["status"]["result"] == "YES", answer["status"]
    offer = await earliest(b, answer)
    offered = answer["status"]["request"]["resources"]["storage"][0]  # the request as offered
    assert offered["lifetime"]["offered"] == {"min": "PT8S", "max": "PT8S"}
    assert offered["size"]["offered"] == {"min": 1, "max": 1}
    claim = f"eb-{offer}-storage-0"
    assert not kube.exists("pvc", claim, b.namespace), "an offer only proposes storage"
    await b.desire(offer, "ACCEPTED")
    done = await reaches(b, offer, *FINAL, timeout=120)
    ended = time.monotonic()
    assert phase(done) == "COMPLETED", done["status"]
    assert (path / "out.txt").read_text() == "result\n"
    assert kube.exists("pvc", claim, b.namespace), "the storage outlives the session"
    await async_wait_for(lambda: not kube.exists("pvc", claim, b.namespace), 60, "the claim to be deleted")
    kept = time.monotonic() - ended
    assert kept >= 4, f"deleted {kept:.1f} s after the session: before its lifetime"
