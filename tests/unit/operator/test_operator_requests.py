"""``interpret`` with the unknown requirement-like fields the REST service recorded on the CR: each
one is a NO naming its path (digest §9 item 26), and a broken record is a NO too, never ignored."""

from __future__ import annotations

import json
from typing import Any

from eb_operator.cluster.convert import UNKNOWN_REQUIREMENTS_ANNOTATION
from eb_operator.model.platform import PlatformPolicy
from eb_operator.operator.requests import interpret, unknown_requirements

DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0"
NOW = 1_800_000_000


def request() -> dict[str, Any]:
    return {"executable": {"type": DOCKER, "image": {"locations": ["eb-workload:latest"]}}}


def annotated(value: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {UNKNOWN_REQUIREMENTS_ANNOTATION: value}}}


def test_without_unknown_fields_there_is_a_demand() -> None:
    """No record of unknown fields: the request is served, with the policy's defaults for what it
    leaves out (one core, 1 GiB, the default duration, a start window from now)."""
    policy = PlatformPolicy()
    assert unknown_requirements({"metadata": {}}) == []
    interp = interpret(request(), policy, NOW, None, unknown_requirements({"metadata": {}}))
    assert interp.messages == []
    demand = interp.demand
    assert demand is not None
    assert (demand.cores_min, demand.cores_max, demand.memory_min_gib, demand.memory_max_gib) == (1, 1, 1, 1)
    assert demand.duration == policy.default_duration_seconds
    assert demand.preparation == policy.preparation_seconds
    [window] = demand.windows
    assert window.start == NOW + policy.preparation_seconds
    assert window.end == window.start + policy.default_start_window_seconds
    assert interp.request == request()


def test_each_unknown_field_is_a_no_naming_its_path() -> None:
    paths = unknown_requirements(annotated(json.dumps(["compute/interconnect", "priority"])))
    interp = interpret(request(), PlatformPolicy(), NOW, None, paths)
    assert interp.demand is None
    errors = [m for m in interp.messages if m["level"] == "ERROR"]
    assert [m["values"]["path"] for m in errors] == ["compute/interconnect", "priority"]
    assert all(m["type"] == "urn:ivoa:eb:unknown-requirement" for m in errors)
    assert "interconnect" in errors[0]["message"]


def test_a_broken_record_is_a_no_not_ignored() -> None:
    for raw in ("not json", json.dumps({"a": 1}), json.dumps([1, 2])):
        paths = unknown_requirements(annotated(raw))
        assert len(paths) == 1
        assert UNKNOWN_REQUIREMENTS_ANNOTATION in paths[0]
        assert interpret(request(), PlatformPolicy(), NOW, None, paths).demand is None
