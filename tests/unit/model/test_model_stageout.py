"""Stage-out, this broker's extension of the storage resource (docs/wire-model.md, "Stage-out"):
read the same in both dialects, judged (every structural problem named; NO on a platform without a
storage class, since results are delivered from a volume claim), and counted in the offer's
release time (size / bandwidth, as preparation does for staging in)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from tests.support.wire import compute, docker, request, storage

from eb_operator.engine.demand import demand_from_request
from eb_operator.model import judge_request, parse_offerset_request, render
from eb_operator.model.common import MessageType
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.resources import SimpleStorageResource
from eb_operator.model.stageout import GIB, StageOut, stage_out_gib, stage_out_problems

pytestmark = pytest.mark.unit

S3 = "http://s3.example.org:7070"
PLATFORM = PlatformPolicy.model_validate(
    {"dataEndpoints": [{"endpoint": S3, "secretName": "s3"}], "releaseSeconds": 60}
)
TO_S3 = {"s3": {"endpoint": S3, "bucket": "results", "prefix": "run-42/"}}
C26_STORAGE = (
    "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/storage/simple-storage-resource.yaml"
)


def with_stageout(stageout: Any, size: int | None = 2) -> dict[str, Any]:
    return request(docker(), compute(), storage=[storage("results", size, stageout=stageout)])


def problems(stageout: dict[str, Any], storage_gib: int = 2) -> list[tuple[str, str, tuple[str | int, ...]]]:
    found = stage_out_problems(StageOut.model_validate(stageout), storage_gib, PLATFORM)
    return [(p.type, p.template, tuple(p.where)) for p in found if p.type != MessageType.NOT_SUPPORTED]


def test_both_dialects_read_the_same_stageout() -> None:
    std, _ = parse_offerset_request(with_stageout(TO_S3))
    c26_doc = {
        "executable": std.executable.model_dump(mode="json", exclude_none=True) if std.executable else {},
        "compute": {
            "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml"
        },
        "storage": [{"kind": C26_STORAGE, "name": "results", "size": {"min": 2}, "stageout": TO_S3}],
    }
    c26, _ = parse_offerset_request(c26_doc)
    [a], [b] = std.storage, c26.storage
    assert isinstance(a, SimpleStorageResource)
    assert isinstance(b, SimpleStorageResource)
    assert a.stageout == b.stageout == StageOut.model_validate(TO_S3)
    assert render(a)["stageout"] == TO_S3


@pytest.mark.parametrize(
    ("stageout", "expected"),
    [
        pytest.param(TO_S3, [], id="an S3 bucket on a listed endpoint"),
        pytest.param({"http": {"location": "https://dav.example.org/r/", "webdav": True}}, [], id="WebDAV"),
        pytest.param({**TO_S3, "size": 1}, [], id="a size within the storage"),
        pytest.param(
            {},
            [(MessageType.MISSING_VALUE, "{path}: name one destination for the results, s3 or http", ())],
            id="no destination",
        ),
        pytest.param(
            {**TO_S3, "http": {"location": "https://dav.example.org/"}},
            [(MessageType.BAD_VALUE, "{path}: name one destination for the results, s3 or http", ())],
            id="two destinations",
        ),
        pytest.param(
            {"s3": {"endpoint": "http://elsewhere:9000", "bucket": "b"}},
            [
                (
                    MessageType.UNREACHABLE,
                    "{path}: this platform cannot reach the S3 endpoint {endpoint}",
                    ("s3", "endpoint"),
                )
            ],
            id="an endpoint the platform does not list",
        ),
        pytest.param(
            {"s3": {}},
            [
                (MessageType.MISSING_VALUE, "{path}: the S3 endpoint is missing", ("s3", "endpoint")),
                (MessageType.MISSING_VALUE, "{path}: the S3 bucket is missing", ("s3", "bucket")),
            ],
            id="no endpoint and no bucket",
        ),
        pytest.param(
            {"http": {"location": "ftp://files.example.org/r/"}},
            [
                (
                    MessageType.UNREACHABLE,
                    "{path}: results go out only over HTTP(S), not to {location}",
                    ("http", "location"),
                )
            ],
            id="not HTTP",
        ),
        pytest.param(
            {**TO_S3, "size": 3},
            [
                (
                    MessageType.BAD_VALUE,
                    "{path}: between 1 GiB and the storage's {limit} GiB can be staged out, not {value}",
                    ("size",),
                )
            ],
            id="more than the storage holds",
        ),
    ],
)
def test_what_makes_a_stageout_impossible(stageout: dict[str, Any], expected: list[Any]) -> None:
    assert problems(stageout) == expected


def test_the_judge_names_every_problem_and_needs_a_storage_class() -> None:
    req, _ = parse_offerset_request(with_stageout({"s3": {"endpoint": S3}, "colour": "blue"}))
    messages = [(m.type, m.values["path"] if m.values else None) for m in judge_request(req, PLATFORM)]
    base = "resources/storage/0/stageout"
    assert messages == [
        (MessageType.UNKNOWN_REQUIREMENT, f"{base}/colour"),
        (MessageType.MISSING_VALUE, f"{base}/s3/bucket"),
        (MessageType.NOT_SUPPORTED, base),
    ]
    [no_class] = [m for m in judge_request(req, PLATFORM) if m.type == MessageType.NOT_SUPPORTED]
    assert no_class.message == (
        f"{base}: results are delivered from a volume claim, and this platform offers none "
        "(no storage class is configured)"
    )


def test_a_stageout_the_platform_can_deliver_is_judged_fine() -> None:
    platform = PLATFORM.model_copy(update={"storage_class_name": "local"})
    for stageout in (TO_S3, {"http": {"location": "https://dav.example.org/r/", "webdav": True}}):
        req, _ = parse_offerset_request(with_stageout(stageout))
        assert judge_request(req, platform) == []


@pytest.mark.parametrize(
    ("location", "endpoint"),
    [
        ("https://dav.example.org/results/run-1/", "https://dav.example.org/results"),
        ("https://DAV.example.org/results", "https://dav.example.org/results"),
        ("https://dav.example.org/results/deep/x/", "https://dav.example.org/results/deep"),
        ("https://dav.example.org/resultsX/", "https://dav.example.org"),
        ("https://other.example.org/results/", None),
        ("http://dav.example.org/results/", None),
    ],
    ids=[
        "below it",
        "host without case",
        "the longest wins",
        "a path boundary",
        "another host",
        "another scheme",
    ],
)
def test_a_results_location_takes_the_credentials_of_the_endpoint_it_falls_under(
    location: str, endpoint: str | None
) -> None:
    platform = PlatformPolicy.model_validate(
        {
            "dataEndpoints": [
                {"endpoint": "https://dav.example.org", "secretName": "root"},
                {"endpoint": "https://dav.example.org/results/", "secretName": "results"},
                {"endpoint": "https://dav.example.org/results/deep", "secretName": "deep"},
            ]
        }
    )
    found = platform.endpoint_under(location)
    assert (found.endpoint.rstrip("/") if found else None) == endpoint


@pytest.mark.parametrize(
    ("stageout", "storage_gib", "expected"),
    [
        pytest.param(None, 4, 0, id="nothing goes out"),
        pytest.param(StageOut.model_validate(TO_S3), 4, 4, id="the whole storage by default"),
        pytest.param(StageOut.model_validate({**TO_S3, "size": 1}), 4, 1, id="the client's size"),
    ],
)
def test_the_most_a_delivery_moves(stageout: StageOut | None, storage_gib: int, expected: int) -> None:
    assert stage_out_gib(stageout, storage_gib) == expected


def test_the_release_time_covers_the_transfer_at_the_platforms_bandwidth() -> None:
    bandwidth = 50 * 1024 * 1024
    platform = PLATFORM.model_copy(update={"data_bandwidth_bytes_per_second": bandwidth})
    plain, _ = parse_offerset_request(request(docker(), compute(), storage=[storage("scratch", 2)]))
    assert demand_from_request(plain, platform, 0).release is None  # the policy's releaseSeconds
    req, _ = parse_offerset_request(with_stageout({**TO_S3, "size": 1}))
    assert demand_from_request(req, platform, 0).release == 60 + math.ceil(GIB / bandwidth)  # 60 + 21 s
    whole, _ = parse_offerset_request(with_stageout(TO_S3, size=3))
    assert demand_from_request(whole, platform, 0).release == 60 + math.ceil(3 * GIB / bandwidth)
