"""The operator's offer-time probe (cluster/probe.py, botocore for S3) against the real servers on
127.0.0.1: an object's or a prefix's size with the platform's credentials; NO, with the cause,
for a missing object, a wrong bucket, a wrong credential, an endpoint nobody answers; a Rucio
server that answers /ping."""

from __future__ import annotations

import base64

import pytest
from tests.support.kube import unique_name
from tests.support.rucio_server import Rucio
from tests.support.servers import S3, S3_KEY, S3_SECRET
from tests.support.wire import docker, request, rucio_data, s3_data

from eb_operator.cluster.probe import probe_request
from eb_operator.model.platform import PlatformPolicy

pytestmark = pytest.mark.timeout(120)


def platform(endpoint: str, **images: str) -> PlatformPolicy:
    spec = {"dataEndpoints": [{"endpoint": endpoint, "secretName": "s3", "secretNamespace": "broker"}]}
    return PlatformPolicy.model_validate({**spec, "images": images})


def secrets(access: str = S3_KEY, secret: str = S3_SECRET):  # type: ignore[no-untyped-def]
    async def read(namespace: str | None, name: str) -> dict[str, str] | None:
        assert (namespace, name) == ("broker", "s3")
        data = {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
        return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}

    return read


async def test_s3_sizes_of_an_object_and_a_prefix(s3: S3) -> None:
    bucket = unique_name("probe", max_len=30)
    s3.bucket(bucket)
    s3.put(bucket, "tiles/a.fits", b"a" * 1000)
    s3.put(bucket, "tiles/b.fits", b"b" * 24)
    req = request(
        docker(),
        data=[
            s3_data("one", endpoint=s3.endpoint, bucket=bucket, object="tiles/a.fits"),
            s3_data("all", endpoint=s3.endpoint, bucket=bucket, object="tiles/"),
        ],
    )
    found = await probe_request(req, platform(s3.endpoint), secrets())
    assert found.messages == []
    assert found.bytes == 1000 + 1024


@pytest.mark.parametrize(
    ("where", "creds", "message"),
    [
        pytest.param(
            ("missing", "x.fits"),
            (S3_KEY, S3_SECRET),
            "s3://{bucket}/x.fits does not exist at {endpoint}",
            id="no object",
        ),
        pytest.param(
            ("no-such-bucket", "x.fits"),
            (S3_KEY, S3_SECRET),
            "s3://no-such-bucket/x.fits does not exist at {endpoint}",
            id="no bucket",
        ),
        pytest.param(
            ("present", "a.fits"),
            (S3_KEY, "not-the-secret"),
            "{endpoint} refused access to s3://{bucket}/a.fits (HTTP 403",
            id="a wrong credential",
        ),
    ],
)
async def test_s3_problems_are_reasons_for_no(
    s3: S3, where: tuple[str, str], creds: tuple[str, str], message: str
) -> None:
    bucket = unique_name("probe", max_len=30) if where[0] != "no-such-bucket" else where[0]
    if where[0] != "no-such-bucket":
        s3.bucket(bucket)
        s3.put(bucket, "a.fits", b"a")
    req = request(docker(), data=[s3_data("d", endpoint=s3.endpoint, bucket=bucket, object=where[1])])
    found = await probe_request(req, platform(s3.endpoint), secrets(*creds))
    [m] = found.messages
    assert m.message.startswith(
        "resources/data/0/endpoint: " + message.format(bucket=bucket, endpoint=s3.endpoint)
    ), m.message


async def test_an_s3_endpoint_nobody_answers_is_a_reason_for_no() -> None:
    closed = "http://127.0.0.1:9"
    req = request(docker(), data=[s3_data("d", endpoint=closed, bucket="b", object="x")])
    found = await probe_request(req, platform(closed), secrets(), timeout=2)
    [m] = found.messages
    assert m.message.startswith(
        f"resources/data/0/endpoint: the broker cannot reach the S3 endpoint {closed}: connection failed"
    )


async def test_a_real_rucio_server_answers_the_probe(rucio: Rucio) -> None:
    req = request(docker(), data=[rucio_data("r", endpoint=rucio.url)])
    found = await probe_request(req, platform(rucio.url, rucioStager="eb-stager:0.1.0"))
    assert found.messages == []
    gone = request(docker(), data=[rucio_data("r", endpoint="http://127.0.0.1:9")])
    [m] = (await probe_request(gone, platform(rucio.url, rucioStager="eb-stager:0.1.0"), timeout=2)).messages
    assert m.message.startswith("resources/data/0/endpoint: the broker cannot reach the Rucio server")
