"""Storage named again: a request's storage item with an ``href`` names an earlier session's
storage (docs/wire-model.md, "Reusing storage"). Judged without I/O here; whether it exists and is
the caller's is the operator's to find at offer time."""

from __future__ import annotations

import pytest
from tests.support.wire import compute, docker, request, storage

from eb_operator.engine.demand import demand_from_request
from eb_operator.model import judge_request, parse_offerset_request, render
from eb_operator.model.common import MessageType
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.resources import SimpleStorageResource

pytestmark = pytest.mark.unit

U = "7d0e6a36-9a35-5e0a-b7a3-0d6a2b1e9c11"
C26_STORAGE = (
    "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/storage/simple-storage-resource.yaml"
)


def test_both_dialects_name_earlier_storage_by_href_and_keep_it() -> None:
    std, _ = parse_offerset_request(request(docker(), compute(), storage=[{**storage("old"), "href": U}]))
    c26, _ = parse_offerset_request(
        {
            "executable": render(std.executable) if std.executable else {},
            "compute": {"kind": C26_STORAGE.replace("storage/simple-storage", "compute/simple-compute")},
            "storage": [{"kind": C26_STORAGE, "meta": {"name": "old", "url": f"https://eb/x/storage/{U}"}}],
        }
    )
    [a], [b] = std.storage, c26.storage
    assert isinstance(a, SimpleStorageResource)
    assert isinstance(b, SimpleStorageResource)
    assert a.reuses == b.reuses == U
    assert render(a)["href"] == U  # stored and shown as the client wrote it


def test_a_client_uuid_on_new_storage_names_nothing_earlier() -> None:
    req, _ = parse_offerset_request(request(docker(), compute(), storage=[{**storage("s"), "uuid": U}]))
    [item] = req.storage
    assert isinstance(item, SimpleStorageResource)
    assert item.reuses is None
    assert not item.claimed


def test_an_href_without_a_storage_uuid_is_a_bad_value() -> None:
    req, _ = parse_offerset_request(
        request(docker(), compute(), storage=[{**storage("s"), "href": "https://eb/sessions/x/storage/s"}])
    )
    [m] = judge_request(req, PlatformPolicy())
    assert m.type == MessageType.BAD_VALUE
    assert m.message == (
        "resources/storage/0/href: names no storage the broker made: https://eb/sessions/x/storage/s "
        "does not end in a storage uuid"
    )


def test_reused_storage_needs_no_storage_class_and_takes_no_new_space() -> None:
    policy = PlatformPolicy.model_validate({"limits": {"maxStorageGib": 10}})
    item = {**storage("old", 8), "href": U, "lifetime": {"requested": {"min": "P2D"}}}
    req, _ = parse_offerset_request(request(docker(), compute(), storage=[item, storage("new", 4)]))
    assert judge_request(req, policy) == []  # 8 + 4 > 10, but the 8 exist already
    assert demand_from_request(req, policy, 0).storage_gib == 4
