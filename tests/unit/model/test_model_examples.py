"""Schema truth: the digest's examples round-trip, every document the model emits validates against
the official ivoa-std schema, C26 inputs read into the same model as their ivoa-std twins, and C26
output validates against the C26 schema."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from tests.support import ivoa_examples as ex
from tests.support.ivoa_schema import c26_validator, discriminators, errors, ivoa_std_validator

from eb_operator.model import (
    AccessMethod,
    AccessStatus,
    Dialect,
    ErrorResponse,
    ExecutionSessionPhase,
    ExecutionSessionResponse,
    Grant,
    OfferSetRequest,
    OfferSetResponse,
    Result,
    make_offer,
    parse_offerset_request,
    parse_update,
    phase_options,
    render,
    render_update_request,
)
from eb_operator.model.platform import GpuFlavour
from eb_operator.model.times import parse_instant
from eb_operator.model.types import family_of

pytestmark = pytest.mark.unit

NOW = datetime(2026, 8, 14, 8, 0, tzinfo=UTC)
START = parse_instant("2026-08-14T10:00:00Z")
REQUEST_IDS = [name for name, _ in ex.REQUESTS]


def _std_valid(schema: str, doc: Any, file: str = "openapi.yaml") -> None:
    assert errors(ivoa_std_validator(schema, file), doc) == []


def _c26_valid(schema: str, doc: Any) -> None:
    assert errors(c26_validator(schema), doc) == []


def _offer(
    request: OfferSetRequest, index: int = 0, phase: ExecutionSessionPhase = ExecutionSessionPhase.OFFERED
) -> ExecutionSessionResponse:
    """An offer of ``request`` as the operator would build it."""
    uuid = f"a1f2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c{index:02d}"
    grant = Grant(
        prepare_start=START - 600,
        start=START + index * 7200,
        duration=7200,
        release_end=START + index * 7200 + 7200 + 300,
        cores=8,
        memory_gib=16,
        gpus=1 if "gpu" in str(render(request)) else 0,
        gpu_flavour=GpuFlavour(name="ad104", product="NVIDIA-RTX-4070", type_uris=[]),
    )
    return make_offer(
        request,
        grant,
        uuid=uuid,
        href=f"{ex.BROKER}/sessions/{uuid}",
        expires=NOW.replace(minute=5),
        created=NOW,
        name=f"{request.name or 'offer'}-{index}",
        phase=phase,
        executable_uuid=ex.EXECUTABLE_UUID,
    )


def _offerset(request: OfferSetRequest, offers: int = 2) -> OfferSetResponse:
    return OfferSetResponse(
        uuid=ex.OFFERSET_UUID,
        href=f"{ex.BROKER}/offersets/{ex.OFFERSET_UUID}",
        name=request.name,
        created=NOW,
        result=Result.YES,
        offers=[_offer(request, i) for i in range(offers)],
    )


# --- requests --------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", [doc for _, doc in ex.REQUESTS], ids=REQUEST_IDS)
def test_request_examples_round_trip_and_validate_against_the_ivoa_std_schema(doc: dict[str, Any]) -> None:
    _std_valid("OfferSetRequest", doc)
    request, dialect = parse_offerset_request(copy.deepcopy(doc))
    assert dialect is Dialect.IVOA_STD
    assert render(request) == doc
    assert parse_offerset_request(render(request))[0] == request


@pytest.mark.parametrize(
    ("c26", "std"), [(c, s) for _, c, s in ex.C26_TWINS], ids=[n for n, _, _ in ex.C26_TWINS]
)
def test_c26_requests_read_into_the_same_model_as_their_ivoa_std_twins(
    c26: dict[str, Any], std: dict[str, Any]
) -> None:
    _c26_valid("ExecutionRequest", c26)
    from_c26, dialect = parse_offerset_request(copy.deepcopy(c26))
    from_std, _ = parse_offerset_request(copy.deepcopy(std))
    assert dialect is Dialect.C26
    assert from_c26 == from_std
    assert render(from_c26) == std
    assert render(from_c26, Dialect.C26) == c26  # and back again


@pytest.mark.parametrize("doc", [doc for _, doc in ex.REQUESTS], ids=REQUEST_IDS)
def test_every_request_renders_as_valid_c26_that_reads_back_the_same(doc: dict[str, Any]) -> None:
    request, _ = parse_offerset_request(copy.deepcopy(doc))
    c26 = render(request, Dialect.C26)
    _c26_valid("ExecutionRequest", c26)
    again, dialect = parse_offerset_request(c26)
    assert dialect is Dialect.C26
    assert again == request.model_copy(update={"name": None})  # C26 requests have no name


def test_a_wrapping_request_key_is_unwrapped() -> None:
    request, _ = parse_offerset_request({"request": copy.deepcopy(ex.NB_DEMO)})
    assert render(request) == ex.NB_DEMO


def test_the_prose_spec_sub_block_and_volume_mode_aliases_are_read() -> None:
    doc = copy.deepcopy(ex.X3)
    compute = doc["resources"]["compute"][0]
    compute["spec"] = {"volumes": compute.pop("volumes")}
    compute["spec"]["volumes"][0]["mode"] = "rw"
    request, _ = parse_offerset_request(doc)
    assert render(request) == ex.X3


@pytest.mark.parametrize(
    ("units", "low", "high", "expected"),
    [
        pytest.param("TiB", 10, None, {"min": 10240}, id="TiB to GiB"),
        pytest.param(
            "MiB", 1536, 2560, {"min": 2, "max": 2}, id="MiB: min rounds up, max down but not below min"
        ),
        pytest.param("GB", 2, 4, {"min": 2, "max": 3}, id="decimal GB"),
        pytest.param("gib", 1.5, None, {"min": 2}, id="a fraction rounds up, units case-insensitive"),
    ],
)
def test_sizes_with_units_are_read_as_whole_gib(
    units: str, low: float, high: int | None, expected: dict[str, int]
) -> None:
    doc = copy.deepcopy(ex.X14)
    requested: dict[str, Any] = {"min": low, "units": units}
    if high is not None:
        requested["max"] = high
    doc["resources"]["compute"][0]["memory"] = {"requested": requested}
    request, _ = parse_offerset_request(doc)
    assert render(request)["resources"]["compute"][0]["memory"] == {"requested": expected}


# --- responses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "schema", "doc"),
    [
        pytest.param(
            OfferSetResponse, "OfferSetResponse", ex.NB_DEMO_OFFERSET, id="digest 2.9 offer set YES"
        ),
        pytest.param(OfferSetResponse, "OfferSetResponse", ex.NO_OFFERSET, id="digest 2.3 offer set NO"),
        pytest.param(
            ExecutionSessionResponse, "ExecutionSessionResponse", ex.NB_DEMO_OFFER, id="digest 2.9 offer"
        ),
        pytest.param(
            ExecutionSessionResponse,
            "ExecutionSessionResponse",
            ex.NB_DEMO_ACCEPTED,
            id="digest 2.9 accepted",
        ),
    ],
)
def test_response_examples_round_trip_and_validate(
    model: type[BaseModel], schema: str, doc: dict[str, Any]
) -> None:
    _std_valid(schema, doc)
    parsed = model.model_validate(copy.deepcopy(doc))
    assert render(parsed) == doc


def test_the_error_document_example_round_trips_and_its_messages_validate() -> None:
    parsed = ErrorResponse.model_validate(copy.deepcopy(ex.ERROR_DOCUMENT))
    assert render(parsed) == ex.ERROR_DOCUMENT
    for message in render(parsed)["messages"]:
        _std_valid("MessageItem", message, "components/messages.yaml")
    assert render(parsed, Dialect.C26) == {
        "meta": {
            "messages": [
                {("kind" if k == "type" else k): v for k, v in ex.ERROR_DOCUMENT["messages"][0].items()}
            ]
        }
    }


@pytest.mark.parametrize("doc", [doc for _, doc in ex.REQUESTS], ids=REQUEST_IDS)
def test_offers_built_for_every_example_validate_in_both_dialects(doc: dict[str, Any]) -> None:
    request, _ = parse_offerset_request(copy.deepcopy(doc))
    offerset = _offerset(request)
    std = render(offerset)
    _std_valid("OfferSetResponse", std)
    for offer in std["offers"]:
        _std_valid("ExecutionSessionResponse", offer)
        assert offer["schedule"].get("requested") == (doc.get("schedule") or {}).get("requested")
    c26 = render(offerset, Dialect.C26)
    _c26_valid("OfferSetResponse", c26)
    for offer in c26["offers"]:
        _c26_valid("AbstractExecutionSession", offer)
    assert OfferSetResponse.model_validate(std) == offerset


def test_an_offer_keeps_the_requested_values_beside_the_offered_ones() -> None:
    request, _ = parse_offerset_request(copy.deepcopy(ex.X1))
    offer = render(_offer(request))
    compute = offer["resources"]["compute"][0]
    assert compute["cores"] == {"requested": {"min": 4}, "offered": {"min": 8, "max": 8}}
    assert compute["memory"] == {"requested": {"min": 16}, "offered": {"min": 16, "max": 16}}
    assert offer["schedule"]["executing"] == {"start": "2026-08-14T10:00:00Z/PT0S", "duration": "PT2H"}
    assert offer["schedule"]["preparing"] == {"start": "2026-08-14T09:50:00Z/PT0S", "duration": "PT10M"}
    assert offer["schedule"]["releasing"] == {"start": "2026-08-14T12:00:00Z/PT0S", "duration": "PT5M"}
    assert offer["executable"]["uuid"] == ex.EXECUTABLE_UUID


def test_an_offer_reports_granted_gpus_in_the_gpus_block_or_the_extras_item() -> None:
    seed, _ = parse_offerset_request(copy.deepcopy(ex.SEED_R1))
    gpus = render(_offer(seed))["resources"]["compute"][0]["gpus"]
    assert gpus == {
        "requested": {"min": 1, "max": 1},
        "offered": {"min": 1, "max": 1},
        "name": "ad104",
        "product": "NVIDIA-RTX-4070",
    }
    extras, _ = parse_offerset_request(copy.deepcopy(ex.GPU_EXTRAS))
    item = render(_offer(extras))["resources"]["compute"][0]["extras"][0]
    assert item["offered"] == {"min": 1, "max": 1}
    assert "gpus" not in render(_offer(extras))["resources"]["compute"][0]


# --- the C26 rendering of responses (digest §8.3) ---------------------------------------------


def test_a_session_in_c26_maps_every_renamed_field() -> None:
    session = ExecutionSessionResponse.model_validate(copy.deepcopy(ex.NB_DEMO_OFFER)).model_copy(
        update={"phase": ExecutionSessionPhase.READY}
    )
    assert session.executable is not None
    session.executable.access = [
        AccessMethod(status=AccessStatus.ACTIVE, protocol="HTTPS", locations=["https://nb.example.org/lab"])
    ]
    c26 = render(session, Dialect.C26)
    _c26_valid("AbstractExecutionSession", c26)
    assert c26["kind"].endswith("/session/scheduled-execution-session.yaml")
    assert c26["phase"] == "AVAILABLE"
    assert c26["meta"]["url"] == ex.NB_DEMO_OFFER["href"]
    assert c26["meta"]["options"] == [
        {"kind": "uri:enum-value-option", "path": "phase", "values": ["ACCEPTED", "REJECTED"]}
    ]
    assert "options" not in c26
    assert "href" not in c26
    assert "resources" not in c26
    assert c26["schedule"] == {
        "preparing": {"start": "2026-08-14T09:50:00Z", "duration": "PT10M"},
        "available": {"start": "2026-08-14T10:00:00Z/PT0S", "duration": "PT2H"},
        "releasing": {"start": "2026-08-14T12:00:00Z", "duration": "PT5M"},
    }
    assert c26["compute"]["cores"] == {"min": 8, "max": 8}  # offered values, flat
    assert c26["connectors"] == [
        {"protocol": "HTTPS", "status": "AVAILABLE", "location": "https://nb.example.org/lab"}
    ]
    assert "access" not in c26["executable"]


@pytest.mark.parametrize(
    ("phase", "c26_name"),
    [
        pytest.param(ExecutionSessionPhase.PROPOSED, "INITIAL", id="PROPOSED is INITIAL"),
        pytest.param(ExecutionSessionPhase.READY, "AVAILABLE", id="READY is AVAILABLE"),
        pytest.param(ExecutionSessionPhase.OFFERED, "OFFERED", id="OFFERED is unchanged"),
    ],
)
def test_phase_names_follow_the_dialect(phase: ExecutionSessionPhase, c26_name: str) -> None:
    request, _ = parse_offerset_request(copy.deepcopy(ex.X14))
    offer = _offer(request, phase=phase)
    assert render(offer)["phase"] == phase.value
    assert render(offer, Dialect.C26)["phase"] == c26_name


def test_c105_answers_use_the_c105_type_uris() -> None:
    request, _ = parse_offerset_request(copy.deepcopy(ex.MOUNTS_STD))
    c105 = render(_offerset(request), Dialect.C105)
    kinds = [
        value for path, value in discriminators(c105, ("kind",)) if not path.endswith(("messages", "options"))
    ]
    schema_kinds = [k for k in kinds if not k.startswith("uri:")]
    assert schema_kinds
    assert all(family_of(k) is Dialect.C105 for k in schema_kinds), schema_kinds
    assert (
        c105["kind"] == "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/offerset/execution-offerset-1.0"
    )


# --- updates, options, YAML -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "dialect"),
    [
        pytest.param(ex.ACCEPT_STD, Dialect.IVOA_STD, id="digest 2.9 ivoa-std UpdateRequest"),
        pytest.param(ex.ACCEPT_C26, Dialect.C26, id="digest 2.9 bare C26 update"),
        pytest.param(ex.REJECT_C26, Dialect.C26, id="digest 5.3 ref impl reject"),
    ],
)
def test_update_examples_round_trip_in_their_dialect_and_validate(
    doc: dict[str, Any], dialect: Dialect
) -> None:
    update, found = parse_update(copy.deepcopy(doc))
    assert found is dialect
    assert render_update_request(update, dialect) == doc
    _std_valid("UpdateRequest", render_update_request(update))
    _c26_valid("AbstractUpdate", render_update_request(update, Dialect.C26))


@pytest.mark.parametrize(
    ("phase", "values"),
    [
        pytest.param("OFFERED", ["ACCEPTED", "REJECTED"], id="OFFERED may be accepted or rejected"),
        pytest.param("ACCEPTED", ["CANCELLED"], id="ACCEPTED may be cancelled"),
        pytest.param("RUNNING", ["CANCELLED"], id="RUNNING may be cancelled"),
        pytest.param("RELEASING", None, id="RELEASING has no options"),
        pytest.param("EXPIRED", None, id="a final phase has no options"),
    ],
)
def test_phase_options_follow_the_table_of_section_4_4(phase: str, values: list[str] | None) -> None:
    options = [render(o) for o in phase_options(phase)]
    expected = [{"type": "uri:enum-value-option", "path": "phase", "values": values}] if values else []
    assert options == expected
    for option in options:
        _std_valid("AbstractOption", option)


def test_result_stays_a_string_through_yaml() -> None:
    data = render(OfferSetResponse.model_validate(copy.deepcopy(ex.NO_OFFERSET)))
    text = yaml.safe_dump(data)
    assert yaml.safe_load(text)["result"] == "NO"
    assert (
        OfferSetResponse.model_validate({**data, "result": False}).result is Result.NO
    )  # a YAML 1.1 reader's NO


def test_the_request_model_has_a_json_schema_for_crd_generation() -> None:
    schema = OfferSetRequest.model_json_schema(by_alias=True)
    assert "executable" in schema["properties"]
