"""The wire model and the engine together, as the operator will use them: a client document in,
offers out in the client's dialect, valid against the official schema of that dialect."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support import ivoa_examples as ex
from tests.support.ivoa_schema import c26_validator, errors, ivoa_std_validator

from eb_operator.engine import find_offers
from eb_operator.engine.demand import demand_from_request
from eb_operator.engine.types import GIB, NodeCapacity, Offer, Resources
from eb_operator.model import (
    Dialect,
    Grant,
    OfferSetResponse,
    Result,
    has_errors,
    judge_request,
    make_offer,
    parse_offerset_request,
    render,
)
from eb_operator.model.platform import GpuFlavour, PlatformPolicy
from eb_operator.model.times import format_instant, parse_instant

pytestmark = pytest.mark.unit

NOW = parse_instant("2026-08-14T08:00:00Z")
FLAVOUR = GpuFlavour(
    name="ad104",
    product="NVIDIA-RTX-4070",
    type_uris=["https://www.purl.org/ivoa.net/resource-types/nvidia-ad104"],
    memory_gib=24,
)
POLICY = PlatformPolicy(slot_seconds=2 * 3600, horizon_seconds=12 * 3600, gpu_flavours=[FLAVOUR])
NODES = [
    NodeCapacity(
        name="gpu-node",
        free=Resources(
            cpu_millis=64_000, memory_bytes=256 * GIB, ephemeral_bytes=500 * GIB, gpus={"nvidia.com/gpu": 1}
        ),
        labels={"nvidia.com/gpu.product": "NVIDIA-RTX-4070"},
    )
]


def answer(doc: dict[str, Any]) -> tuple[dict[str, Any], Dialect]:
    """What the broker answers ``doc`` with, rendered in the client's dialect."""
    request, dialect = parse_offerset_request(copy.deepcopy(doc))
    messages = judge_request(request, POLICY)
    offers: list[Offer] = []
    if not has_errors(messages):
        offers = find_offers(demand_from_request(request, POLICY, NOW), POLICY, NODES, [], NOW)
    created = datetime(2026, 8, 14, 8, tzinfo=UTC)
    sessions = [
        make_offer(
            request,
            Grant(
                o.prepare_start, o.start, o.duration, o.release_end, o.cores, o.memory_gib, o.gpus, FLAVOUR
            ),
            uuid=f"a1f2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c{i:02d}",
            href=f"{ex.BROKER}/sessions/{i}",
            expires=created.replace(minute=5),
            created=created,
        )
        for i, o in enumerate(offers)
    ]
    response = OfferSetResponse(
        uuid=ex.OFFERSET_UUID,
        href=f"{ex.BROKER}/offersets/{ex.OFFERSET_UUID}",
        created=created,
        result=Result.YES if sessions else Result.NO,
        offers=sessions,
        messages=messages or None,
    )
    return render(response, dialect), dialect


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(ex.SEED_R1, id="the seed request for 32 cores and a GPU"),
        pytest.param(ex.NB_DEMO, id="the digest 2.9 notebook"),
        pytest.param(ex.GPU_EXTRAS, id="a GPU as an extras item"),
    ],
)
def test_an_ivoa_std_request_gets_valid_ivoa_std_offers(doc: dict[str, Any]) -> None:
    body, dialect = answer(doc)
    assert dialect is Dialect.IVOA_STD
    assert errors(ivoa_std_validator("OfferSetResponse"), body) == []
    assert body["result"] == "YES"
    for offer in body["offers"]:
        compute = offer["resources"]["compute"][0]
        assert compute["cores"]["offered"]["min"] >= compute["cores"]["requested"]["min"]
        assert offer["schedule"]["executing"]["start"].endswith("/PT0S")


def test_a_c26_request_gets_valid_c26_offers_starting_in_its_window() -> None:
    body, dialect = answer(ex.NB_DEMO_C26)
    assert dialect is Dialect.C26
    assert errors(c26_validator("OfferSetResponse"), body) == []
    assert body["result"] == "YES"
    window = (parse_instant("2026-08-14T09:00:00Z"), parse_instant("2026-08-14T12:00:00Z"))
    for offer in body["offers"]:
        start = parse_instant(offer["schedule"]["available"]["start"].split("/")[0])
        assert window[0] <= start <= window[1], format_instant(start)
        assert 4 <= offer["compute"]["cores"]["min"] <= 8


def test_a_request_the_platform_cannot_serve_gets_no_with_the_reason_in_the_client_s_terms() -> None:
    doc = {**ex.NB_DEMO_C26, "compute": {**ex.NB_DEMO_C26["compute"], "cores": {"min": 1000}}}
    body, _ = answer(doc)
    assert errors(c26_validator("OfferSetResponse"), body) == []
    assert body["result"] == "NO"
    assert [m["values"]["path"] for m in body["meta"]["messages"]] == ["compute/cores/min"]
