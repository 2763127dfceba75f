"""Nothing crashes on any input: the readers raise RequestError or return a model, and whatever they
return can be judged, rendered and (when acceptable) turned into a Demand without an exception."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support import ivoa_examples as ex
from tests.support.fuzz import examples

from eb_operator.engine.demand import demand_from_request
from eb_operator.model import (
    Dialect,
    RequestError,
    has_errors,
    judge_request,
    parse_offerset_request,
    parse_update,
    render,
    render_update_request,
)
from eb_operator.model.platform import DataEndpoint, GpuFlavour, Images, PlatformPolicy

pytestmark = pytest.mark.unit

# 300 examples a test in CI (~2 s each); `pytest --long`: 20,000 (docs/reliability.md)
FUZZ = settings(
    max_examples=examples(300, 20_000), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
NOW = 1_786_694_400  # 2026-08-14T08:00:00Z

# Field names the model gives meaning to, so random documents reach deep code as well as the surface.
KEYS = [
    "type", "kind", "meta", "name", "uuid", "url", "href", "executable", "resources", "compute",
    "storage", "data", "schedule", "requested", "offered", "duration", "start", "cores", "memory",
    "size", "min", "max", "units", "volumes", "resource", "path", "mode", "gpus", "extras", "count",
    "spec", "image", "locations", "privileged", "environment", "network", "ports", "internal", "port",
    "location", "endpoint", "bucket", "rucio", "scope", "ivoa", "obscore", "datalink", "access_url",
    "content_length", "skao", "datasize", "costs", "metrics", "update", "value", "delta", "ident",
    "replicas", "request", "_paths", "__class__", "model_config", "client_path", "stageout", "s3",
    "http", "prefix", "webdav", "lifetime",
]  # fmt: skip
URIS = [
    "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0",
    "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0",
    "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-resource-1.0",
    "https://www.purl.org/ivoa.net/EB/schema/types/resources/storage/simple-storage-resource-1.0",
    "https://www.purl.org/ivoa.net/EB/schema/types/resources/data/S3-data-resource-1.0",
    "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml",
    "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/volume/simple-volume-mount.yaml",
    "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/rucio-data-resource.yaml",
    "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/skao-data-resource.yaml",
    "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/ivoa-data-resource.yaml",
    "uri:enum-value-update", "uri:integer-delta-update", "uri:docker-container-1.0", "PT1H", "P1H",
    "2026-08-14T09:00:00Z/PT3H", "PT2H/2026-08-14", "2023-08-14T11:30Z/T12:00Z", "R2/2026-08-14/P1D",
    "READWRITE", "rw", "ACCEPTED", "available", "phase", "/state", "TiB", "MiB",
    "https://s3.example.org/echo",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(URIS)
    | st.text(max_size=12)
)
keys = st.sampled_from(KEYS) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)

POLICIES = [
    PlatformPolicy(),
    PlatformPolicy(
        gpu_flavours=[
            GpuFlavour(name="a100", memory_gib=80),
            GpuFlavour(name="ad104", type_uris=["https://www.purl.org/ivoa.net/resource-types/nvidia-ad104"]),
        ],
        data_endpoints=[DataEndpoint(endpoint="https://s3.example.org/echo")],
        images=Images(apptainer="apptainer", rucio_stager="rucio"),
    ),
]

REQUEST_SEEDS = [doc for _, doc in ex.REQUESTS] + [c26 for _, c26, _ in ex.C26_TWINS]
UPDATE_SEEDS = [ex.ACCEPT_STD, ex.ACCEPT_C26, ex.REJECT_C26]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[dict[str, Any]]) -> Any:
    """A valid document with one value somewhere inside replaced, added or removed."""
    doc = copy.deepcopy(draw(st.sampled_from(seeds)))
    holder: Any = doc
    while True:
        children = list(holder.items()) if isinstance(holder, dict) else list(enumerate(holder))
        containers = [(k, v) for k, v in children if isinstance(v, dict | list) and v]
        if not containers or draw(st.integers(0, 3)) == 0:
            break
        _, holder = draw(st.sampled_from(containers))
    action = draw(st.sampled_from(["replace", "add", "remove"]))
    if isinstance(holder, dict):
        if action == "remove" and holder:
            del holder[draw(st.sampled_from(sorted(holder)))]
        elif action == "add" or not holder:
            holder[draw(keys)] = draw(json_values)
        else:
            holder[draw(st.sampled_from(sorted(holder)))] = draw(json_values)
    elif holder:
        index = draw(st.integers(0, len(holder) - 1))
        if action == "remove":
            del holder[index]
        else:
            holder[index] = draw(json_values)
    return doc


def _everything_after_parsing(doc: Any, hint: str | None) -> None:
    refused: RequestError | None
    try:
        req, dialect = parse_offerset_request(doc, hint)
    except RequestError as err:
        refused = err
    else:
        refused = None
    if refused is not None:
        assert isinstance(refused.path, str)
        assert refused.message
        return
    render(req)
    try:
        render(req, dialect)
    except ValueError:
        # C26 carries one compute resource and one start window; such requests are refused anyway.
        starts = req.requested_schedule.start if req.requested_schedule else None
        assert len(req.compute) > 1 or len(starts or []) > 1
    for policy in POLICIES:
        messages = judge_request(req, policy)
        for message in messages:
            assert message.path is not None
            render(message)
        if not has_errors(messages):
            demand_from_request(req, policy, NOW)


@FUZZ
@given(doc=json_values, hint=st.sampled_from([None, "ivoa-std", "c26", "c105"]))
def test_reading_any_json_value_as_a_request_raises_only_request_error(doc: Any, hint: str | None) -> None:
    _everything_after_parsing(doc, hint)


@FUZZ
@given(doc=mutated(REQUEST_SEEDS))
def test_reading_a_damaged_request_raises_only_request_error(doc: Any) -> None:
    _everything_after_parsing(doc, None)


def _update(doc: Any) -> None:
    refused: RequestError | None
    try:
        update, dialect = parse_update(doc)
    except RequestError as err:
        refused = err
    else:
        refused = None
    if refused is not None:
        assert isinstance(refused.path, str)
        return
    render(update)
    render_update_request(update, dialect)
    render_update_request(update, Dialect.IVOA_STD)


@FUZZ
@given(doc=json_values)
def test_reading_any_json_value_as_an_update_raises_only_request_error(doc: Any) -> None:
    _update(doc)


@FUZZ
@given(doc=mutated(UPDATE_SEEDS))
def test_reading_a_damaged_update_raises_only_request_error(doc: Any) -> None:
    _update(doc)


@pytest.mark.parametrize("doc", [None, {}, [], "", 0, {"request": None}], ids=repr)
def test_trivial_documents_are_refused_or_read(doc: Any) -> None:
    _everything_after_parsing(doc, None)
    _update(doc)


def test_a_very_deep_document_is_refused_without_recursion() -> None:
    doc: Any = {}
    for _ in range(5000):
        doc = {"executable": doc}
    with pytest.raises(RequestError, match="nested"):
        parse_offerset_request(doc)
