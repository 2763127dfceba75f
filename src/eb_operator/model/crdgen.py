"""CustomResourceDefinitions generated from the pydantic models in ``eb_operator.model.crds``.

``generate()`` returns the YAML text of every CRD by file name; ``write(directory)`` writes them
(``eb-operator crds`` and ``hack/gen-crds.py`` call it). A unit test compares the committed
``crds/*.yaml`` with ``generate()``.

A pydantic JSON schema becomes a structural OpenAPI v3 schema by: inlining every ``$ref``;
turning ``X | None`` into ``X`` (absent = None); merging a union of objects into one object with the
union of their fields; turning ``dict[str, X]`` into ``additionalProperties``; and dropping what a
structural schema may not hold (``title``, ``default``, ``additionalProperties: false``, regex
``pattern`` - Go's RE2 lacks features Python's ``re`` has, so patterns are checked by the operator).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import TypeAdapter

from eb_operator.model import crds as m

JsonSchema = dict[str, Any]

_KEEP = {
    "type",
    "description",
    "format",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "required",
    "nullable",
    "x-kubernetes-validations",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
}


class SchemaError(ValueError):
    """A pydantic schema that has no structural equivalent."""


def _resolve(node: JsonSchema, defs: Mapping[str, JsonSchema]) -> JsonSchema:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        node = merged
    return node


def _merge_objects(branches: list[JsonSchema]) -> JsonSchema:
    """The union of the fields of several object schemas (a flattened discriminated union)."""
    props: dict[str, JsonSchema] = {}
    for b in branches:
        for name, sub in b.get("properties", {}).items():
            if name in props and props[name] != sub:
                if props[name].get("type") == sub.get("type") == "object":
                    props[name] = _merge_objects([props[name], sub])
                    continue
                raise SchemaError(f"field {name!r} has different types in a union")
            props[name] = sub
    required = set.intersection(*(set(b.get("required", [])) for b in branches)) if branches else set()
    out: JsonSchema = {"type": "object", "properties": props}
    if required:
        out["required"] = sorted(required)
    return out


def structural(node: JsonSchema, defs: Mapping[str, JsonSchema]) -> JsonSchema:
    """A structural OpenAPI v3 schema equivalent (as far as the API server checks) to ``node``."""
    node = _resolve(node, defs)
    for key in ("anyOf", "oneOf"):
        if key in node:
            branches = [structural(b, defs) for b in node[key] if b.get("type") != "null"]
            rest = {k: v for k, v in node.items() if k not in (key, "discriminator")}
            if len(branches) == 1:
                return {**branches[0], **_keep(rest)}
            types = {b.get("type") for b in branches}
            if types == {"object"}:
                merged = {**_merge_objects(branches), **_keep(rest)}
                _min_le_max(merged)
                return merged
            if types == {"integer", "string"}:
                return {"x-kubernetes-int-or-string": True, **_keep(rest)}
            raise SchemaError(f"union of {sorted(map(str, types))} has no structural form")
    if "allOf" in node:
        if len(node["allOf"]) != 1:
            raise SchemaError("allOf with several parts")
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return {**structural(node["allOf"][0], defs), **_keep(rest)}
    if "const" in node:
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
        node.setdefault("type", "string" if isinstance(node["enum"][0], str) else "integer")
    out = _keep(node)
    if out.get("type") == "integer":
        out.setdefault("format", "int64")
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {k: structural(v, defs) for k, v in node["properties"].items()}
        _min_le_max(out)
    elif node.get("type") == "object":
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = structural(extra, defs)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if "items" in node:
        out["items"] = structural(node["items"], defs)
        out.setdefault("maxItems", DEFAULT_MAX_ITEMS)
    if "type" not in out and "x-kubernetes-int-or-string" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if isinstance(out.get("exclusiveMinimum"), int | float) and not isinstance(out["exclusiveMinimum"], bool):
        out["minimum"], out["exclusiveMinimum"] = out["exclusiveMinimum"], True
    if isinstance(out.get("exclusiveMaximum"), int | float) and not isinstance(out["exclusiveMaximum"], bool):
        out["maximum"], out["exclusiveMaximum"] = out["exclusiveMaximum"], True
    return out


#: Arrays without a bound get this one, so the API server can bound the cost of CEL rules inside.
DEFAULT_MAX_ITEMS = 32

#: CEL: when both bounds are present the lower one may not exceed the upper one.
MIN_LE_MAX = {
    "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
    "message": "min must not exceed max",
}


def _min_le_max(out: JsonSchema) -> None:
    props = out["properties"]
    numeric = ("integer", "number")
    if props.get("min", {}).get("type") in numeric and props.get("max", {}).get("type") in numeric:
        rules = out.setdefault("x-kubernetes-validations", [])
        if MIN_LE_MAX not in rules:
            rules.append(dict(MIN_LE_MAX))


def _keep(node: JsonSchema) -> JsonSchema:
    return {k: copy.deepcopy(v) for k, v in node.items() if k in _KEEP}


def model_schema(model: Any) -> JsonSchema:
    """The structural schema of a pydantic model or any type pydantic can validate."""
    raw = TypeAdapter(model).json_schema(by_alias=True)
    return structural(raw, raw.get("$defs", {}))


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: list[str]
    scope: str
    spec: Any  # a pydantic model, or a type such as a discriminated union
    status: Any
    columns: list[dict[str, Any]] = field(default_factory=list)
    spec_required: bool = True
    description: str = ""


def _phase_column() -> dict[str, Any]:
    """``status.phase``, else the phase the object was created in (an offer: ``OFFERED``).

    A printer column's JSONPath has no "or"; a union does it: ``.*`` is every top-level value
    (apiVersion, kind, metadata, spec, status), and the union takes, in order, their ``phase``
    (only ``status`` has one) and their ``annotations.<initial phase>`` (only ``metadata``). The
    API server prints the first value found (tableconvertor: ``results[0][0]``, missing keys
    allowed), so ``status.phase`` wins once it is written."""
    annotation = m.ANNOTATION_INITIAL_PHASE.replace(".", "\\.")
    return {
        "name": "Phase",
        "type": "string",
        "jsonPath": f".*['phase','annotations.{annotation}']",
        "description": "status.phase; a fresh offer, whose status is not written yet, shows OFFERED",
    }


def _age() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


KINDS: tuple[Kind, ...] = (
    Kind(
        kind="Executable",
        plural="executables",
        short_names=["exe"],
        scope="Namespaced",
        spec=m.ExecutableSpec,
        status=m.ExecutableStatus,
        columns=[
            {"name": "Type", "type": "string", "jsonPath": ".spec.type", "priority": 1},
            {"name": "Image", "type": "string", "jsonPath": ".spec.image.locations[0]"},
            _age(),
        ],
        description="A reusable IVOA executable (container, notebook, Singularity image).",
    ),
    Kind(
        kind="OfferSet",
        plural="offersets",
        short_names=["ofs"],
        scope="Namespaced",
        spec=m.OfferSetSpec,
        status=m.OfferSetStatus,
        columns=[
            {"name": "Result", "type": "string", "jsonPath": ".status.result"},
            {"name": "Offers", "type": "string", "jsonPath": ".status.offers[*].name", "priority": 1},
            {"name": "Expires", "type": "string", "jsonPath": ".status.expires"},
            {"name": "Owner", "type": "string", "jsonPath": ".spec.owner", "priority": 1},
            _age(),
        ],
        description="One IVOA 'when can I run this?' request (spec) and its answer (status).",
    ),
    Kind(
        kind="Execution",
        plural="executions",
        short_names=["exec", "ebx"],
        scope="Namespaced",
        spec=m.ExecutionSpec,
        status=m.ExecutionStatus,
        spec_required=False,
        columns=[
            _phase_column(),
            {"name": "Start", "type": "string", "jsonPath": ".spec.reservation.start"},
            {"name": "Duration", "type": "string", "jsonPath": ".spec.reservation.duration"},
            {"name": "Cores", "type": "integer", "jsonPath": ".spec.reservation.cores"},
            {"name": "Memory(GiB)", "type": "integer", "jsonPath": ".spec.reservation.memoryGiB"},
            {"name": "GPUs", "type": "integer", "jsonPath": ".spec.reservation.gpus"},
            {"name": "Node", "type": "string", "jsonPath": ".spec.reservation.node"},
            {"name": "OfferSet", "type": "string", "jsonPath": ".spec.offerSet", "priority": 1},
            {"name": "Peer", "type": "string", "jsonPath": ".spec.peer.name", "priority": 1},
            {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
            _age(),
        ],
        description="One offer and, once accepted, the execution session it becomes.",
    ),
    Kind(
        kind="ExecutionPlatform",
        plural="executionplatforms",
        short_names=["ebp"],
        scope="Cluster",
        spec=m.PlatformPolicy,
        status=m.ExecutionPlatformStatus,
        spec_required=False,
        columns=[
            {"name": "Valid", "type": "boolean", "jsonPath": ".status.valid"},
            {"name": "Nodes", "type": "integer", "jsonPath": ".status.nodes"},
            {"name": "Slot(s)", "type": "integer", "jsonPath": ".spec.slotSeconds", "priority": 1},
            {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
            _age(),
        ],
        description="The broker's policy: nodes it may use, slots, horizon, offer TTL, limits, GPU flavours.",
    ),
    Kind(
        kind="BrokerPeer",
        plural="brokerpeers",
        short_names=["ebpeer"],
        scope="Namespaced",
        spec=m.BrokerPeerSpec,
        status=m.BrokerPeerStatus,
        columns=[
            {"name": "URL", "type": "string", "jsonPath": ".spec.url"},
            {"name": "Dialect", "type": "string", "jsonPath": ".spec.dialect"},
            {"name": "Reachable", "type": "boolean", "jsonPath": ".status.reachable"},
            {"name": "Latency(ms)", "type": "integer", "jsonPath": ".status.latencyMs"},
            {"name": "Preference", "type": "integer", "jsonPath": ".spec.preference", "priority": 1},
            {"name": "Last Error", "type": "string", "jsonPath": ".status.lastError", "priority": 1},
            _age(),
        ],
        description="Another IVOA ExecutionBroker whose offers this broker merges into its own "
        "answers (stacked brokers; docs/federation.md).",
    ),
)


def crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind, as a dict."""
    spec_schema = model_schema(kind.spec)
    root: JsonSchema = {
        "type": "object",
        "description": kind.description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": model_schema(kind.status),
        },
    }
    if kind.spec_required:
        root["required"] = ["spec"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{m.GROUP}"},
        "spec": {
            "group": m.GROUP,
            "scope": kind.scope,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": kind.short_names,
                "categories": ["executionbroker"],
            },
            "versions": [
                {
                    "name": m.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": kind.columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


_HEADER = (
    "# Generated by `eb-operator crds` (eb_operator.model.crdgen) from eb_operator.model.crds. Do not edit.\n"
)


def generate() -> dict[str, str]:
    """File name -> YAML text, one file per CRD."""
    return dict(_generate())


@functools.lru_cache(maxsize=1)
def _generate() -> dict[str, str]:
    return {
        f"{k.plural}.yaml": _HEADER + yaml.dump(crd(k), Dumper=_NoAliases, sort_keys=False, width=110)
        for k in KINDS
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def write_crds(out: str | Path | None, stream: TextIO) -> None:
    """``eb-operator crds``: every CRD as one YAML stream, or one file per CRD in ``out``."""
    if out is not None:
        for path in write(Path(out)):
            print(path, file=stream)
        return
    stream.write("---\n".join(generate().values()))
