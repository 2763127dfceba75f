"""The eb-stager image as real Pods on the real node, against the real servers on the node
address: a container writes /results/out.fits and the stager's stage-out puts it in versitygw
with the same bytes and CRC32; a wrong bucket and a wrong credential fail the Pod with one line
in its termination message. And Rucio end to end through the broker: a session names a DID on a
real Rucio server, its init container resolves it to a URL the server signs for a bucket on
versitygw (TLS), fetches it and checks its adler32, and the workload reads it."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.integration.data.conftest import S3, S3_KEY, S3_SECRET, Rucio, earliest, reaches
from tests.integration.data.test_data_staging import k8s_v1, with_resources
from tests.integration.operator.helpers import FAST, FINAL, REAL_NODE_PLATFORM, Broker, phase
from tests.support.kube import (
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    REAL_NODE,
    TEST_LABEL,
    Kubectl,
    pod_logs,
    unique_name,
    wait_for,
)

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(300)

FITS = b"SIMPLE  =                    T / written in a Pod" + bytes(range(256)) * 40
RUCIO_DATA = "https://www.purl.org/ivoa.net/EB/schema/types/resources/data/Rucio-data-resource-1.0"
WRITE = "; ".join(
    [
        "import base64, os",
        "os.makedirs('/results/logs')",
        f"open('/results/out.fits', 'wb').write(base64.b64decode('{base64.b64encode(FITS).decode()}'))",
        "open('/results/logs/run.txt', 'w').write('done')",
    ]
)


def secret(kube: Kubectl, namespace: str, name: str, values: dict[str, str]) -> None:
    meta = {"name": name, "namespace": namespace}
    kube.create({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": values})


def stage_out_pod(name: str, namespace: str, image: str, args: list[str], secret_name: str) -> dict[str, Any]:
    """A Pod on the real node: ``write`` fills /results, then the stager stages it out."""
    container = {
        "imagePullPolicy": "Never",
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "volumeMounts": [{"name": "results", "mountPath": "/results"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {TEST_LABEL: "true"}},
        "spec": {
            "restartPolicy": "Never",
            "nodeName": REAL_NODE,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": POD_SECURITY_CONTEXT,
            "volumes": [{"name": "results", "emptyDir": {}}],
            "initContainers": [
                {"name": "write", "image": image, "command": ["python3", "-c", WRITE], **container}
            ],
            "containers": [
                {
                    "name": "stage-out",
                    "image": image,
                    "args": args,
                    "envFrom": [{"secretRef": {"name": secret_name}}],
                    **container,
                }
            ],
        },
    }


def finished(kube: Kubectl, name: str, namespace: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        pod = kube.get("pod", name, namespace)
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None

    return wait_for(done, 120, f"pod {name} to finish")


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    [status] = pod["status"]["containerStatuses"]
    return dict(status["state"]["terminated"])


def test_a_pod_stages_its_results_out_to_s3_with_the_same_bytes_and_checksum(
    kube: Kubectl, namespace: str, s3: S3, stager_image: str
) -> None:
    bucket = unique_name("results", max_len=30)
    s3.bucket(bucket)
    secret(kube, namespace, "s3", {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET})
    args = ["out", "s3", s3.endpoint, bucket, "session-1", "/results"]
    kube.create(stage_out_pod("out", namespace, stager_image, args, "s3"))
    pod = finished(kube, "out", namespace)
    state = terminated(pod)
    assert pod["status"]["phase"] == "Succeeded", state
    logs = kube.run("logs", "out", "-c", "stage-out", "-n", namespace).stdout
    assert logs.startswith(f"staged out 2 files, {len(FITS) + 4} bytes in "), logs
    assert sorted(s3.keys(bucket)) == ["session-1/logs/run.txt", "session-1/out.fits"]
    assert s3.get(bucket, "session-1/out.fits") == FITS
    head = s3.client.head_object(Bucket=bucket, Key="session-1/out.fits", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == base64.b64encode(zlib.crc32(FITS).to_bytes(4, "big")).decode()
    print(f"\nstage-out from a Pod: {logs.strip()}")


@pytest.mark.parametrize(
    ("bucket", "key", "cause"),
    [
        pytest.param(
            None, S3_SECRET, "NoSuchBucket (HTTP 404): The specified bucket does not exist.", id="bucket"
        ),
        pytest.param(
            "results",
            "not-the-secret",
            "SignatureDoesNotMatch (HTTP 403): The request signature we calculated does not match",
            id="credential",
        ),
    ],
)
def test_a_wrong_bucket_or_credential_fails_the_pod_with_one_line(
    kube: Kubectl, namespace: str, s3: S3, stager_image: str, bucket: str | None, key: str, cause: str
) -> None:
    if bucket is None:
        bucket = unique_name("no-such", max_len=30)
    else:
        bucket = unique_name(bucket, max_len=30)
        s3.bucket(bucket)
    secret(kube, namespace, "s3", {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": key})
    args = ["out", "s3", s3.endpoint, bucket, "session-1", "/results"]
    kube.create(stage_out_pod("out", namespace, stager_image, args, "s3"))
    pod = finished(kube, "out", namespace)
    state = terminated(pod)
    assert pod["status"]["phase"] == "Failed"
    assert state["exitCode"] == 1
    where = f"staging out failed: PUT s3://{bucket}/session-1/out.fits at {s3.endpoint}: "
    assert state["message"].startswith(where + cause), state["message"]
    assert "\n" not in state["message"]


async def test_rucio_data_is_resolved_by_a_real_rucio_server_and_staged_by_the_broker(
    broker: MakeBroker, kube: Kubectl, make_namespace: Callable[..., str], rucio: Rucio, s3_tls: S3, k8s: Any
) -> None:
    bucket = unique_name("lake", max_len=30)
    s3_tls.bucket(bucket)
    rse = unique_name("EB-POD", max_len=20).upper().replace("-", "_")
    rucio.register_s3(rse, s3_tls, bucket, "survey", {"obs1.fits": ("survey/obs1.fits", FITS)})
    creds = make_namespace("t-rucio-creds")
    secret(kube, creds, "rucio", rucio.secret)
    b = await broker(
        {
            **REAL_NODE_PLATFORM,
            **FAST,
            "images": {"rucioStager": "eb-stager:0.1.0"},
            "dataEndpoints": [{"endpoint": rucio.url, "secretName": "rucio", "secretNamespace": creds}],
        }
    )
    req = with_resources(
        "wc -c < /data/obs1.fits; head -c 30 /data/obs1.fits; echo",
        storage=[],
        data=[
            {
                "type": RUCIO_DATA,
                "name": "obs",
                "endpoint": rucio.url,
                "domain": "survey",
                "object": "obs1.fits",
            }
        ],
        volumes=[{"name": "d", "resource": "obs", "path": "/data", "mode": "READONLY"}],
    )
    answer = await b.ask("rucio", req)
    assert answer["status"]["result"] == "YES", answer["status"]
    offer = await earliest(b, answer)
    await b.desire(offer, "ACCEPTED")
    done = await reaches(b, offer, *FINAL, timeout=180)
    assert phase(done) == "COMPLETED", done["status"]
    logs = await pod_logs(k8s_v1(k8s), f"eb-{offer}", b.namespace, container="main")
    assert logs.split("\n") == [str(len(FITS)), FITS[:30].decode(), ""]
    staged = await pod_logs(k8s_v1(k8s), f"eb-{offer}", b.namespace, container="stage-0")
    assert staged.strip().splitlines()[-1].startswith(f"staged 1 files, {len(FITS)} bytes in "), staged
