"""Reading client documents: structural errors are RequestErrors naming the client's own field;
dialects are detected; updates in both shapes (digest §2.6, §6.1, §8.3, §9 items 2 and 23)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support import ivoa_examples as ex
from tests.support.wire import (
    C26_COMPUTE,
    C26_DOCKER,
    C26_RUCIO_DATA,
    C26_STORAGE,
    C26_VOLUME,
    C105,
    compute,
    docker,
    request,
)

from eb_operator.model import (
    Dialect,
    DockerContainer,
    EnumValueUpdate,
    ExecutionSessionPhase,
    IntegerDeltaUpdate,
    IntegerValueUpdate,
    PhaseUpdate,
    RequestError,
    StringValueUpdate,
    UnknownExecutable,
    parse_offerset_request,
    parse_update,
)

pytestmark = pytest.mark.unit


def _error(doc: object, hint: str | None = None) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse_offerset_request(doc, hint)
    return caught.value


def _nb_demo_with(
    path: tuple[str | int, ...], value: Any, base: dict[str, Any] = ex.NB_DEMO
) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    holder: Any = doc
    for part in path[:-1]:
        holder = holder[part]
    if value is KeyError:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "path", "reason"),
    [
        pytest.param([1, 2], "", "object", id="a list is not a request"),
        pytest.param("executable: x", "", "object", id="a string is not a request"),
        pytest.param(
            _nb_demo_with(("executable", "type"), KeyError),
            "executable",
            "discriminator",
            id="an executable without type",
        ),
        pytest.param(
            _nb_demo_with(("resources", "compute", 0, "type"), KeyError),
            "resources/compute/0",
            "discriminator",
            id="a compute resource without type",
        ),
        pytest.param(
            _nb_demo_with(("executable", "type"), 42),
            "executable",
            "discriminator",
            id="a type that is not a string",
        ),
        pytest.param(
            _nb_demo_with(("resources", "compute", 0, "cores", "requested", "min"), "four"),
            "resources/compute/0/cores/requested/min",
            "integer",
            id="cores as a string",
        ),
        pytest.param(
            _nb_demo_with(("resources", "compute", 0, "cores", "requested", "min"), True),
            "resources/compute/0/cores/requested/min",
            "boolean",
            id="cores as a boolean",
        ),
        pytest.param(
            _nb_demo_with(("resources", "compute", 0, "cores", "requested", "min"), 4.5),
            "resources/compute/0/cores/requested/min",
            "whole",
            id="fractional cores",
        ),
        pytest.param(
            _nb_demo_with(("resources", "compute", 0, "memory", "requested", "min"), 2**70),
            "resources/compute/0/memory/requested/min",
            "64-bit",
            id="memory beyond int64",
        ),
        pytest.param(
            _nb_demo_with(("resources", "compute"), {"type": "x"}),
            "resources/compute",
            "list",
            id="compute not a list",
        ),
        pytest.param(_nb_demo_with(("resources",), []), "resources", "object", id="resources not an object"),
        pytest.param(_nb_demo_with(("name",), 7), "name", "string", id="a numeric name"),
        pytest.param(
            _nb_demo_with(("schedule", "requested", "duration"), "P1H"),
            "schedule/requested/duration",
            "ISO 8601",
            id="the prose's P1H duration",
        ),
        pytest.param(
            _nb_demo_with(("schedule", "requested", "start", 0), "tomorrow morning"),
            "schedule/requested/start/0",
            "ISO 8601",
            id="an unparseable start",
        ),
        pytest.param(
            _nb_demo_with(("schedule", "requested", "start", 0), "2026-08-14T12:00Z/2026-08-14T11:00Z"),
            "schedule/requested/start/0",
            "ends before",
            id="a window that ends before it starts",
        ),
        pytest.param(
            _nb_demo_with(("resources", "compute", 0, "memory", "requested", "units"), "furlongs"),
            "resources/compute/0/memory/requested/units",
            "ComputeUnitsEnum",
            id="unknown units",
        ),
        pytest.param(
            request(docker(), compute(volumes=[{"resource": "x", "path": "/x", "mode": "sometimes"}])),
            "resources/compute/0/volumes/0/mode",
            "READONLY",
            id="a volume mode that is no mode",
        ),
        pytest.param(
            request(docker(environment={"DEBUG": 1})),
            "executable/environment/DEBUG",
            "string",
            id="a numeric environment value",
        ),
        pytest.param(
            request(docker(privileged="yes")), "executable/privileged", "boolean", id="privileged as a string"
        ),
        pytest.param(
            {"executable": {"type": C26_DOCKER, "kind": C26_DOCKER + "x"}},
            "executable/kind",
            "differ",
            id="type and kind that differ",
        ),
        pytest.param(
            {"executable": {"kind": C26_DOCKER, "meta": {"name": "a"}, "name": "b"}},
            "executable/name",
            "twice",
            id="a name both flat and in meta",
        ),
        pytest.param(
            {"executable": {"kind": C26_DOCKER, "meta": "x"}},
            "executable/meta",
            "object",
            id="meta not an object",
        ),
        pytest.param({"a": {"b": {1: "c"}}}, "a/b", "strings", id="a non-string key"),
        pytest.param({"a": {1, 2}}, "a", "JSON", id="a set is not JSON"),
    ],
)
def test_structural_errors_name_the_bad_field(doc: object, path: str, reason: str) -> None:
    err = _error(doc)
    assert err.path == path
    assert reason in err.reason
    assert path in err.message or not path


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        pytest.param(
            {**ex.NB_DEMO_C26, "compute": {**ex.NB_DEMO_C26["compute"], "cores": {"min": "four"}}},
            "compute/cores/min",
            id="flat C26 cores",
        ),
        pytest.param(
            {**ex.NB_DEMO_C26, "compute": {"meta": {"name": "c"}, "cores": {"min": 1}}},
            "compute",
            id="a C26 compute without kind",
        ),
        pytest.param(
            {**ex.NB_DEMO_C26, "compute": {**ex.NB_DEMO_C26["compute"], "meta": {"name": 5}}},
            "compute/meta/name",
            id="a name in meta",
        ),
        pytest.param(
            {**ex.NB_DEMO_C26, "schedule": {"requested": {"start": "soon"}}},
            "schedule/requested/start",
            id="a single C26 start interval",
        ),
        pytest.param(
            {**ex.NB_DEMO_C26, "storage": [{"kind": C26_STORAGE, "size": {"min": 1, "max": "lots"}}]},
            "storage/0/size/max",
            id="a top-level C26 storage list",
        ),
        pytest.param(
            {
                **ex.NB_DEMO_C26,
                "compute": {**ex.NB_DEMO_C26["compute"], "volumes": [{"kind": C26_VOLUME, "path": 3}]},
            },
            "compute/volumes/0/path",
            id="a C26 volume mount",
        ),
        pytest.param(
            {**ex.MOUNTS_C26, "data": [{"kind": C26_RUCIO_DATA, "rucio": {"scope": 1}}]},
            "data/0/rucio/scope",
            id="the C26 rucio block",
        ),
        pytest.param(
            {**ex.NB_DEMO_C26, "compute": {**ex.NB_DEMO_C26["compute"], "gpus": {"count": "one"}}},
            "compute/gpus/count",
            id="a GPU count",
        ),
        pytest.param(
            {"request": {"executable": {"name": "x"}}}, "request/executable", id="inside a request wrapper"
        ),
    ],
)
def test_c26_errors_name_the_field_as_the_client_wrote_it(doc: dict[str, Any], path: str) -> None:
    assert _error(doc).path == path


def test_unknown_types_are_not_structural_errors_but_kept_for_the_judge() -> None:
    doc = request({"type": "uri:zeppelin-notebook", "name": "z", "notebook": {"file": "z.json"}})
    parsed, _ = parse_offerset_request(doc)
    assert isinstance(parsed.executable, UnknownExecutable)
    assert parsed.executable.unknown_fields == {"notebook": {"file": "z.json"}}


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param(
            "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0", id="ivoa-std"
        ),
        pytest.param(C105 + "executable/docker-container-1.0", id="C105"),
        pytest.param(C26_DOCKER, id="C26"),
    ],
)
def test_all_three_uri_families_read_as_the_same_executable(uri: str) -> None:
    parsed, _ = parse_offerset_request(request(docker(type=uri)))
    assert isinstance(parsed.executable, DockerContainer)
    assert parsed == parse_offerset_request(request(docker()))[0]


@pytest.mark.parametrize(
    ("doc", "hint", "dialect"),
    [
        pytest.param(ex.NB_DEMO, None, Dialect.IVOA_STD, id="ivoa-std by type and resources"),
        pytest.param(ex.NB_DEMO, "c26", Dialect.IVOA_STD, id="the document's markers beat the hint"),
        pytest.param(ex.NB_DEMO_C26, None, Dialect.C26, id="C26 by kind and compute"),
        pytest.param(
            {
                "executable": {"kind": C105 + "executable/docker-container-1.0"},
                "compute": {"kind": C105 + "compute/x"},
            },
            None,
            Dialect.C105,
            id="C105 by its type URIs",
        ),
        pytest.param(
            {"executable": {"kind": "uri:x"}},
            "c105",
            Dialect.C105,
            id="C105 by the hint when URIs do not tell",
        ),
        pytest.param({}, "c26", Dialect.C26, id="an empty document follows the hint"),
        pytest.param({}, None, Dialect.IVOA_STD, id="an empty document defaults to ivoa-std"),
        pytest.param(
            {"executable": {"kind": C26_DOCKER}}, "ivoa-std", Dialect.C26, id="kind means Calycopis"
        ),
        pytest.param(
            {"compute": {"kind": C26_COMPUTE}}, None, Dialect.C26, id="a compute object means Calycopis"
        ),
    ],
)
def test_the_dialect_is_detected_from_the_document(
    doc: dict[str, Any], hint: str | None, dialect: Dialect
) -> None:
    assert parse_offerset_request(copy.deepcopy(doc), hint)[1] is dialect


def test_a_bad_hint_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown dialect"):
        parse_offerset_request({}, "klingon")


def test_yaml_timestamps_and_booleans_from_a_yaml_1_1_reader_are_understood() -> None:
    doc = request(docker(), compute(cores=2))
    doc["schedule"] = {"requested": {"start": [datetime(2026, 8, 14, 9, tzinfo=UTC)]}}
    parsed, _ = parse_offerset_request(doc)
    start = parsed.requested_schedule.start[0]  # type: ignore[union-attr,index]
    assert str(start) == "2026-08-14T09:00:00Z/PT0S"


# --- updates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "phase", "dialect", "ident"),
    [
        pytest.param(ex.ACCEPT_STD, "ACCEPTED", Dialect.IVOA_STD, None, id="ivoa-std accept"),
        pytest.param(ex.ACCEPT_C26, "ACCEPTED", Dialect.C26, None, id="C26 accept"),
        pytest.param(
            {"update": {"type": "uri:enum-value-update", "path": "/phase", "value": "REJECTED"}},
            "REJECTED",
            Dialect.IVOA_STD,
            None,
            id="the JSON-pointer path /phase",
        ),
        pytest.param(
            {"update": {"type": "uri:enum-value-update", "path": "state", "value": "CANCELLED"}},
            "CANCELLED",
            Dialect.IVOA_STD,
            None,
            id="the prose's path state",
        ),
        pytest.param(
            {"kind": "uri:enum-value-update", "path": "/state", "value": "available"},
            "READY",
            Dialect.C26,
            None,
            id="C26 AVAILABLE is READY",
        ),
        pytest.param(
            {
                "uuid": "abc",
                "update": {"type": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"},
            },
            "ACCEPTED",
            Dialect.IVOA_STD,
            "abc",
            id="a uuid at the top is kept for the URL check",
        ),
        pytest.param(
            {
                "update": {
                    "ident": "abc",
                    "type": "uri:enum-value-update",
                    "path": "phase",
                    "value": "ACCEPTED",
                }
            },
            "ACCEPTED",
            Dialect.IVOA_STD,
            "abc",
            id="the prose's ident inside the update",
        ),
        pytest.param(
            {
                "kind": "uri:enum-value-update",
                "path": "phase",
                "value": "ACCEPTED",
                "uuid": "abc",
                "ident": "abc",
            },
            "ACCEPTED",
            Dialect.C26,
            "abc",
            id="the same identifier twice",
        ),
    ],
)
def test_phase_updates_are_read_in_both_shapes(
    doc: dict[str, Any], phase: str, dialect: Dialect, ident: str | None
) -> None:
    update, found = parse_update(copy.deepcopy(doc))
    assert isinstance(update, PhaseUpdate)
    assert update.phase is ExecutionSessionPhase(phase)
    assert update.path == "phase"
    assert found is dialect
    assert update.ident == ident


@pytest.mark.parametrize(
    ("doc", "model"),
    [
        pytest.param(
            {"kind": "uri:string-value-update", "path": "name", "value": "x"}, StringValueUpdate, id="string"
        ),
        pytest.param(
            {"kind": "uri:enum-value-update", "path": "colour", "value": "RED"}, EnumValueUpdate, id="enum"
        ),
        pytest.param(
            {"kind": "uri:integer-value-update", "path": "cores", "value": 4},
            IntegerValueUpdate,
            id="integer",
        ),
        pytest.param(
            {"kind": "uri:integer-delta-update", "path": "cores", "delta": -2}, IntegerDeltaUpdate, id="delta"
        ),
    ],
)
def test_other_updates_parse_for_the_api_to_refuse(doc: dict[str, Any], model: type) -> None:
    update, _ = parse_update(doc)
    assert type(update) is model


@pytest.mark.parametrize(
    ("doc", "path", "reason"),
    [
        pytest.param([], "", "object", id="not an object"),
        pytest.param({"update": "ACCEPTED"}, "update", "object", id="update not an object"),
        pytest.param(
            {"update": {"path": "phase", "value": "ACCEPTED"}}, "update", "discriminator", id="no type"
        ),
        pytest.param(
            {"kind": "uri:set-phase", "path": "phase"}, "kind", "unknown update type", id="unknown C26 kind"
        ),
        pytest.param(
            {"update": {"type": "uri:enum-value-option", "path": "phase", "values": []}},
            "update/type",
            "unknown update type",
            id="an option is not an update",
        ),
        pytest.param(
            {"update": {"type": "uri:enum-value-update", "path": "phase", "value": "SLEEPING"}},
            "update/value",
            "not a session phase",
            id="not a phase name",
        ),
        pytest.param(
            {"update": {"type": "uri:enum-value-update", "path": "phase", "value": 3}},
            "update/value",
            "string",
            id="a numeric phase",
        ),
        pytest.param(
            {"update": {"type": "uri:enum-value-update", "value": "ACCEPTED"}},
            "update/path",
            "required",
            id="no path",
        ),
        pytest.param(
            {"kind": "uri:integer-value-update", "path": "cores", "value": "4"},
            "value",
            "integer",
            id="a string integer",
        ),
        pytest.param(
            {"kind": "uri:integer-delta-update", "path": "cores"}, "delta", "required", id="no delta"
        ),
        pytest.param(
            {
                "uuid": "a",
                "update": {
                    "uuid": "b",
                    "type": "uri:enum-value-update",
                    "path": "phase",
                    "value": "ACCEPTED",
                },
            },
            "update/uuid",
            "two different",
            id="two different identifiers",
        ),
        pytest.param(
            {"uuid": 5, "update": {"type": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}},
            "uuid",
            "string",
            id="a numeric identifier",
        ),
        pytest.param(
            {"type": "uri:enum-value-update", "kind": "uri:string-value-update", "path": "p", "value": "v"},
            "kind",
            "differ",
            id="type and kind that differ",
        ),
    ],
)
def test_malformed_updates_are_request_errors(doc: object, path: str, reason: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_update(doc)
    assert caught.value.path == path
    assert reason in caught.value.reason
