"""The committed CRDs are exactly what the generator makes, and they are structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eb_operator.model import crdgen

pytestmark = pytest.mark.unit

CRDS = Path(__file__).resolve().parents[3] / "crds"


@pytest.mark.parametrize("name", sorted(crdgen.generate()))
def test_committed_crd_matches_the_generator(name: str) -> None:
    committed = CRDS / name
    assert committed.exists(), f"crds/{name} is missing: run hack/gen-crds.py"
    assert committed.read_text(encoding="utf-8") == crdgen.generate()[name], "run hack/gen-crds.py"


def test_no_stray_files_in_crds() -> None:
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == sorted(crdgen.generate())


def _walk(node: dict[str, Any], path: str = "") -> list[str]:
    """Every place where the schema breaks the structural rules we rely on."""
    bad = []
    for key in ("$ref", "anyOf", "oneOf", "allOf", "title", "default", "pattern", "const"):
        if key in node:
            bad.append(f"{path}: {key}")
    if node.get("additionalProperties") is False:
        bad.append(f"{path}: additionalProperties false")
    if (
        "type" not in node
        and not node.get("x-kubernetes-int-or-string")
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        bad.append(f"{path}: no type")
    for name, sub in node.get("properties", {}).items():
        bad += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        bad += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        bad += _walk(node["additionalProperties"], f"{path}{{}}")
    return bad


@pytest.mark.parametrize("kind", crdgen.KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_with_no_unknown_fields_preserved(kind: crdgen.Kind) -> None:
    schema = crdgen.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []
    assert "x-kubernetes-preserve-unknown-fields" not in yaml.safe_dump(schema)


def test_a_union_of_objects_is_flattened_into_the_union_of_their_fields() -> None:
    defs = {
        "A": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "a": {"type": "integer"}},
            "required": ["type", "a"],
        },
        "B": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "b": {"type": "string"}},
            "required": ["type"],
        },
    }
    schema = {
        "oneOf": [{"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}],
        "discriminator": {"propertyName": "type"},
    }
    assert crdgen.structural(schema, defs) == {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "a": {"type": "integer", "format": "int64"},
            "b": {"type": "string"},
        },
        "required": ["type"],
    }


def test_optional_becomes_absent_and_dict_becomes_additional_properties() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {
                "anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}],
                "default": None,
                "title": "N",
            },
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    assert crdgen.structural(schema, {}) == {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 0, "format": "int64"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }


def test_executions_print_phase_start_duration_cores_memory_gpus_node_age() -> None:
    crd = crdgen.crd(next(k for k in crdgen.KINDS if k.kind == "Execution"))
    names = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"] if "priority" not in c]
    assert names == ["Phase", "Start", "Duration", "Cores", "Memory(GiB)", "GPUs", "Node", "Age"]
    assert crd["spec"]["names"]["shortNames"] == ["exec", "ebx"]
    assert crd["spec"]["names"]["categories"] == ["executionbroker"]


def test_min_max_carries_a_cel_rule() -> None:
    text = crdgen.generate()["offersets.yaml"]
    assert "self.min <= self.max" in text
