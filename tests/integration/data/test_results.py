"""Results out, storage used again, and logs, on the real kubelet with a real S3 server (versitygw
on the node address), through the operator (and, for logs, the REST API):

* a container writes /results/out.fits, and in RELEASING the delivery Pod puts it in the bucket
  with the same bytes and a CRC32 the server checked; the session COMPLETED says what went out;
* a wrong bucket or a wrong credential makes the session FAILED with the stager's line, and the
  volume keeps the file (its claim stays, for a day);
* a second session of the same owner mounts the first one's storage by its href and reads that
  file; another owner naming it gets NO;
* a session's log streams while it runs (``follow=true``) and stays readable once it ended, also
  after its Pod is gone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import time
import zlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.api.stack import TOKENS, serve_api
from tests.integration.data.conftest import S3, S3_KEY, S3_SECRET, claim_path, earliest, reaches
from tests.integration.data.test_data_staging import with_resources
from tests.integration.operator.helpers import FAST, FINAL, REAL_NODE_PLATFORM, Broker, phase
from tests.support.kube import Kubectl, async_wait_for, unique_name

from eb_operator.api import ApiSettings
from eb_operator.client.cli import main as ebctl
from eb_operator.cluster.crs import EXECUTIONS
from eb_operator.cluster.offer_status import find_offer, offer_execution
from eb_operator.model.times import parse_instant

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
Volumes = Callable[..., tuple[str, list[Path]]]
pytestmark = pytest.mark.timeout(420)

STORAGE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/storage/simple-storage-resource-1.0"
#: Ten FITS blocks of a recognisable header line.
FITS = (b"SIMPLE  =                    T / a result of the broker's tests".ljust(80) * 360)[: 2880 * 10]
WRITE = f"printf '%s' '{base64.b64encode(FITS).decode()}' | base64 -d > /results/out.fits"
#: The claim of a session's first storage resource.
CLAIM = "eb-{}-storage-0"
#: Time for the claim to bind before the offered start (the local cluster binds in about a second).
PREPARE = {"preparationSeconds": 15}
DAY = 86400


def results_storage(stageout: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"type": STORAGE, "name": "results", "size": {"requested": {"min": 1}}, **extra}
    if stageout is not None:
        item["stageout"] = stageout
    return item


def writes_results(stageout: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return with_resources(
        WRITE,
        storage=[results_storage(stageout, **extra)],
        data=[],
        volumes=[{"name": "r", "resource": "results", "path": "/results", "mode": "READWRITE"}],
    )


def platform(s3: S3, secret: tuple[str, str], storage_class: str) -> dict[str, Any]:
    ns, name = secret
    endpoint = {"endpoint": s3.endpoint, "secretName": name, "secretNamespace": ns}
    return {
        **REAL_NODE_PLATFORM,
        **FAST,
        **PREPARE,
        "storageClassName": storage_class,
        "dataEndpoints": [endpoint],
    }


async def run(b: Broker, name: str, req: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
    """Ask (as ``owner``), accept the earliest offer, and wait for the session's end. An owner's
    accept writes the Execution the REST service writes (``offer_execution``: it carries the set's
    owner); without one, a kubectl user's."""
    await b.offerset(name, req, owner)
    answer = await b.answered(name)
    assert answer["status"]["result"] == "YES", answer["status"]
    offer = await earliest(b, answer)
    if owner is None:
        await b.desire(offer, "ACCEPTED")
    else:
        ref = find_offer(answer, offer)
        assert ref is not None
        await b.cluster.create(EXECUTIONS, b.namespace, offer_execution(answer, ref, "ACCEPTED"))
    return await reaches(b, offer, *FINAL, timeout=240)


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


async def test_results_written_in_a_volume_appear_in_the_bucket_with_the_same_bytes_and_a_checksum(
    broker: MakeBroker, kube: Kubectl, s3: S3, s3_secret: tuple[str, str], local_volumes: Volumes
) -> None:
    storage_class, _ = local_volumes(1)
    bucket = unique_name("results", max_len=30)
    s3.bucket(bucket)
    b = await broker(platform(s3, s3_secret, storage_class))
    done = await run(
        b, "deliver", writes_results({"s3": {"endpoint": s3.endpoint, "bucket": bucket, "prefix": "run-1/"}})
    )
    name = done["metadata"]["name"]
    assert phase(done) == "COMPLETED", done["status"]
    assert done["status"]["message"] == (
        f"the execution completed; the results were delivered: 1 files, {len(FITS)} bytes"
    )
    assert s3.keys(bucket) == ["run-1/out.fits"]
    assert s3.get(bucket, "run-1/out.fits") == FITS
    head = s3.client.head_object(Bucket=bucket, Key="run-1/out.fits", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32(FITS)  # the stager sent it, the server checked it
    [item] = done["status"]["storage"]
    assert item["delivery"]["state"] == "Delivered"
    assert (item["delivery"]["files"], item["delivery"]["bytes"]) == (1, len(FITS))
    # delivered, and no lifetime asked: the claim goes with the session, its Pods with it
    await async_wait_for(
        lambda: not kube.exists("pvc", CLAIM.format(name), b.namespace), 60, "the claim to go"
    )
    assert parse_instant(item["expires"]) <= time.time() + 5
    # the log outlives the Pod: a copy beside the Execution
    assert done["status"]["logs"] == f"eb-{name}-log"
    assert kube.exists("configmap", f"eb-{name}-log", b.namespace)


@pytest.mark.parametrize(
    ("wrong", "cause"),
    [
        pytest.param("bucket", "NoSuchBucket (HTTP 404): The specified bucket does not exist.", id="bucket"),
        pytest.param(
            "credential",
            "SignatureDoesNotMatch (HTTP 403): The request signature we calculated does not match",
            id="credential",
        ),
    ],
)
async def test_a_wrong_bucket_or_credential_fails_the_session_and_the_volume_keeps_the_file(
    broker: MakeBroker,
    kube: Kubectl,
    s3: S3,
    make_namespace: Callable[..., str],
    local_volumes: Volumes,
    wrong: str,
    cause: str,
) -> None:
    storage_class, _ = local_volumes(1)
    bucket = unique_name("results", max_len=30)
    if wrong == "credential":
        s3.bucket(bucket)
    else:
        bucket = unique_name("no-such", max_len=30)
    creds = make_namespace("t-creds")
    secret = "s3-writers" if wrong == "bucket" else "s3-wrong"
    key = "not-the-secret" if wrong == "credential" else S3_SECRET
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": creds},
            "stringData": {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": key},
        }
    )
    b = await broker(platform(s3, (creds, secret), storage_class))
    done = await run(
        b,
        f"fail-{wrong}",
        writes_results({"s3": {"endpoint": s3.endpoint, "bucket": bucket, "prefix": "run"}}),
    )
    name = done["metadata"]["name"]
    assert phase(done) == "FAILED", done["status"]
    where = f"resources/storage/0: staging out failed: PUT s3://{bucket}/run/out.fits at {s3.endpoint}: "
    assert done["status"]["message"].startswith(where + cause), done["status"]["message"]
    [failed, kept] = done["status"]["messages"]
    assert failed["level"] == "ERROR"
    assert failed["message"] == done["status"]["message"]
    [item] = done["status"]["storage"]
    assert item["delivery"]["state"] == "Failed"
    assert kept["message"] == (
        f"the results of resources/storage/0 stay in storage {item['uuid']} until {item['expires']}: "
        f"a later request mounts them with a storage item naming it (href: {item['uuid']})"
    )
    # nothing is lost: the claim stays a day (keepUndeliveredSeconds), with the file in its volume
    assert parse_instant(item["expires"]) >= time.time() + DAY - 300
    assert kube.exists("pvc", CLAIM.format(name), b.namespace)
    assert (claim_path(kube, b.namespace, CLAIM.format(name)) / "out.fits").read_bytes() == FITS


async def test_a_later_session_of_the_same_owner_mounts_the_storage_and_reads_the_file_another_owner_gets_no(
    broker: MakeBroker, kube: Kubectl, local_volumes: Volumes
) -> None:
    storage_class, _ = local_volumes(1)
    b = await broker({**REAL_NODE_PLATFORM, **FAST, **PREPARE, "storageClassName": storage_class})
    first = await run(b, "first", writes_results(lifetime={"requested": {"min": "PT10M"}}), owner="alice")
    assert phase(first) == "COMPLETED", first["status"]
    [made] = first["status"]["storage"]
    kept_until = parse_instant(made["expires"])
    href = f"http://broker.example/sessions/{first['metadata']['name']}/storage/{made['uuid']}"
    digest = hashlib.sha256(FITS).hexdigest()

    read = with_resources(
        "sha256sum /in/out.fits; if touch /in/x 2>/dev/null; then echo writable; exit 3; fi; echo read-only",
        storage=[
            {"type": STORAGE, "name": "earlier", "href": href, "lifetime": {"requested": {"min": "PT20M"}}}
        ],
        data=[],
        volumes=[{"name": "in", "resource": "earlier", "path": "/in", "mode": "READONLY"}],
    )
    # another owner naming it: NO, as if it did not exist
    await b.offerset("stranger", read, owner="bob")
    refused = await b.answered("stranger")
    assert refused["status"]["result"] == "NO"
    assert [m["message"] for m in refused["status"]["messages"]] == [
        f"resources/storage/0/href: there is no storage {made['uuid']} of yours to mount (it may have been "
        "deleted after its lifetime)"
    ]

    second = await run(b, "second", read, owner="alice")
    name = second["metadata"]["name"]
    assert phase(second) == "COMPLETED", second["status"]
    logs = kube.run("logs", f"eb-{name}", "-n", b.namespace).stdout
    assert logs == f"{digest}  /in/out.fits\nread-only\n"
    [reused] = second["status"]["storage"]
    assert reused["reused"] is True
    assert reused["uuid"] == made["uuid"]
    assert reused["claim"] == CLAIM.format(first["metadata"]["name"])
    # its lifetime extended: 20 minutes after the second session, later than the first one's
    assert parse_instant(reused["expires"]) > kept_until
    claim = kube.get("pvc", reused["claim"], b.namespace)
    holds = claim["metadata"]["annotations"]["executionbroker.ivoa.net/holds"]
    assert first["metadata"]["uid"] in holds
    assert second["metadata"]["uid"] in holds


async def test_logs_stream_while_the_session_runs_and_stay_readable_after_it_ends_and_its_pod_is_gone(
    broker: MakeBroker, kube: Kubectl
) -> None:
    b = await broker({**REAL_NODE_PLATFORM, **FAST, "preparationSeconds": 5})
    settings = ApiSettings(
        namespace=b.namespace,
        kubeconfig=kube.kubeconfig,
        static_tokens="\n".join(f"{t},{u}" for u, t in TOKENS.items()),
        allow_anonymous=False,
        answer_timeout_seconds=60,
    )
    # six lines, a second apart, then a line that only exists once the others were read
    printing = "for i in 1 2 3 4 5 6; do echo line $i; sleep 1; done"
    req = with_resources(printing, storage=[], data=[], volumes=[], duration="PT2M")
    with serve_api(settings) as url:
        auth = {u: {"Authorization": f"Bearer {t}"} for u, t in TOKENS.items()}
        async with (
            httpx.AsyncClient(base_url=url, headers=auth["alice"], timeout=60) as alice,
            httpx.AsyncClient(base_url=url, headers=auth["bob"], timeout=60) as bob,
        ):
            offers = (await alice.post("/offersets", json=req, headers={"Accept": "application/json"})).json()
            assert offers["result"] == "YES", offers
            uuid = offers["offers"][0]["uuid"]
            update = {"update": {"type": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}}
            assert (await alice.post(f"/sessions/{uuid}", json=update)).status_code == 200
            got: list[str] = []
            seen_while_running = None
            follow = {"follow": "true"}
            async with alice.stream(
                "GET", f"/sessions/{uuid}/logs", params=follow, timeout=httpx.Timeout(60, read=None)
            ) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/plain")
                async for line in stream.aiter_lines():
                    got.append(line)
                    if seen_while_running is None:
                        seen_while_running = (await b.execution(uuid))["status"]["phase"]
            assert got == [f"line {i}" for i in range(1, 7)]
            assert seen_while_running == "RUNNING"  # the first line came while the workload ran
            done = await reaches(b, uuid, *FINAL)
            assert phase(done) == "COMPLETED", done["status"]
            whole = "".join(f"line {i}\n" for i in range(1, 7))
            assert (await alice.get(f"/sessions/{uuid}/logs")).text == whole
            assert (await alice.get(f"/sessions/{uuid}/logs", params={"tail": 2})).text == "line 5\nline 6\n"
            assert (await bob.get(f"/sessions/{uuid}/logs")).status_code == 404  # someone else's session
            # the Pod gone (retention, the cluster's garbage collector): the copy the operator kept
            kube.run("delete", "pod", f"eb-{uuid}", "-n", b.namespace, "--wait=true")
            assert (await alice.get(f"/sessions/{uuid}/logs")).text == whole
            assert (await alice.get(f"/sessions/{uuid}/logs", params=follow)).text == whole
        out = io.StringIO()
        argv = ["--url", url, "--token", TOKENS["alice"], "logs", "--tail", "3", uuid]
        assert await asyncio.to_thread(ebctl, argv, out=out) == 0
        assert out.getvalue() == "line 4\nline 5\nline 6\n"
