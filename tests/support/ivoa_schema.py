"""The official IVOA ExecutionBroker schemas as JSON Schema validators, for tests.

The copies are verbatim (``tests/data/spec/``, the same bytes as ``../shared/spec/``; a test
checks that). ivoa-std's ``openapi.yaml`` does not load as published (digest §8.1 item 32, §9
item 10), so three defects are repaired *in memory*, never in the files:

1. bare ``$ref: 'Name'`` becomes ``#/components/schemas/Name`` of the same file when that file
   defines ``Name``, else of ``openapi.yaml`` (what the Calycopis pre-processor does);
2. the stray quote in ``$ref: ScheduleRequestBlock'`` (``types/offersets/offerset-request-1.0``)
   is dropped;
3. ``ExecutionSessionResponse.required`` lists ``state``, a property that does not exist; the
   property is ``phase`` (digest §9 item 2), so ``phase`` is required instead.

The Calycopis (C26) files load as published.

OpenAPI 3.1 schema objects are JSON Schema 2020-12 plus annotations (``discriminator``, ``xml``)
that a 2020-12 validator ignores. Ignoring ``discriminator`` would check a compute resource only
against ``AbstractComputeResource`` (a ``type`` string) and never against the cores and memory of
``SimpleComputeResource``. So, for both schemas, every ``discriminator.mapping`` is also applied in
memory: a use of an abstract schema (a ``$ref`` that is not a direct ``allOf`` base) is pointed at
a ``<Name>__dispatch`` schema that requires the discriminator to be one of the mapping's values and
the object to match the mapped schema (OpenAPI 3.1 §4.8.25).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).resolve().parent
SPEC_DIR = Path(os.environ.get("EB_SPEC_DIR", HERE.parent / "data" / "spec"))
IVOA_STD_DIR = SPEC_DIR / "ivoa-std-schema"
C26_DIR = SPEC_DIR / "calycopis-schema" / "v1.0"


def _uri(path: Path) -> str:
    return path.resolve().as_uri()


def _schemas_of(doc: Any) -> set[str]:
    components = doc.get("components") if isinstance(doc, dict) else None
    schemas = components.get("schemas") if isinstance(components, dict) else None
    return set(schemas) if isinstance(schemas, dict) else set()


def _repair_refs(node: Any, local: set[str], main_uri: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                ref = value.strip().strip("'\"")  # defect 2
                if "#" not in ref and not ref.endswith((".yaml", ".json")):  # defect 1
                    ref = (
                        f"#/components/schemas/{ref}"
                        if ref in local
                        else f"{main_uri}#/components/schemas/{ref}"
                    )
                out[key] = ref
            else:
                out[key] = _repair_refs(value, local, main_uri)
        return out
    if isinstance(node, list):
        return [_repair_refs(item, local, main_uri) for item in node]
    return node


def _repair_session_required(doc: dict[str, Any]) -> None:
    # Defect 3: required `state` where the property is `phase`.
    schema = ((doc.get("components") or {}).get("schemas") or {}).get("ExecutionSessionResponse")
    for part in (schema or {}).get("allOf", []):
        if (
            isinstance(part, dict)
            and "state" in part.get("required", [])
            and "phase" in part.get("properties", {})
        ):
            part["required"] = ["phase" if name == "state" else name for name in part["required"]]


DISPATCH = "__dispatch"


def _abstracts(docs: dict[str, Any]) -> dict[str, tuple[str, dict[str, str]]]:
    """Absolute URI of each schema with a discriminator mapping -> (property, value -> target URI)."""
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for uri, doc in docs.items():
        schemas = ((doc.get("components") or {}).get("schemas") or {}) if isinstance(doc, dict) else {}
        for name, schema in schemas.items():
            disc = schema.get("discriminator") if isinstance(schema, dict) else None
            if not isinstance(disc, dict) or not disc.get("mapping"):
                continue
            targets = {}
            for value, ref in disc["mapping"].items():
                ref = ref if "#" in ref or ref.endswith(".yaml") else f"#/components/schemas/{ref}"
                targets[value] = urljoin(uri, ref)
            found[f"{uri}#/components/schemas/{name}"] = (disc["propertyName"], targets)
    return found


def _point_uses_at_dispatch(node: Any, doc_uri: str, abstracts: set[str], base: bool = False) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not base and urljoin(doc_uri, ref) in abstracts:
            node["$ref"] = urljoin(doc_uri, ref) + DISPATCH
        for key, value in node.items():
            if key == "allOf" and isinstance(value, list):
                for item in value:
                    _point_uses_at_dispatch(item, doc_uri, abstracts, base=True)
            else:
                _point_uses_at_dispatch(value, doc_uri, abstracts)
    elif isinstance(node, list):
        for item in node:
            _point_uses_at_dispatch(item, doc_uri, abstracts)


def _add_dispatch(docs: dict[str, Any]) -> None:
    abstracts = _abstracts(docs)
    for uri, doc in docs.items():
        _point_uses_at_dispatch(doc, uri, set(abstracts))
    for abstract, (prop, targets) in abstracts.items():
        doc_uri, _, pointer = abstract.partition("#")
        name = pointer.rsplit("/", 1)[-1]
        docs[doc_uri]["components"]["schemas"][name + DISPATCH] = {
            "allOf": [
                {"$ref": abstract},
                {"required": [prop], "properties": {prop: {"enum": sorted(targets)}}},
                *(
                    {"if": {"properties": {prop: {"const": value}}}, "then": {"$ref": target}}
                    for value, target in sorted(targets.items())
                ),
            ]
        }


def _load_dir(root: Path, repair: bool) -> Registry[Any]:
    main_uri = _uri(root / "openapi.yaml")
    docs: dict[str, Any] = {}
    for path in sorted(root.rglob("*.yaml")):
        doc = copy.deepcopy(yaml.safe_load(path.read_text(encoding="utf-8")))
        if repair:
            doc = _repair_refs(doc, _schemas_of(doc), main_uri)
            _repair_session_required(doc)
        docs[_uri(path)] = doc
    _add_dispatch(docs)
    registry: Registry[Any] = Registry()
    for uri, doc in docs.items():
        registry = registry.with_resource(uri, Resource.from_contents(doc, default_specification=DRAFT202012))
    return registry.crawl()


@cache
def _ivoa_std_registry() -> Registry[Any]:
    return _load_dir(IVOA_STD_DIR, repair=True)


@cache
def _c26_registry() -> Registry[Any]:
    return _load_dir(C26_DIR, repair=False)


@cache
def ivoa_std_validator(schema: str, file: str = "openapi.yaml") -> Draft202012Validator:
    """A validator for ``components.schemas[schema]`` of an ivoa-std file (default ``openapi.yaml``)."""
    ref = {"$ref": f"{_uri(IVOA_STD_DIR / file)}#/components/schemas/{schema}"}
    return Draft202012Validator(
        ref, registry=_ivoa_std_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@cache
def c26_validator(schema: str, file: str = "components.yaml") -> Draft202012Validator:
    """A validator for ``components.schemas[schema]`` of a C26 file (default ``components.yaml``)."""
    ref = {"$ref": f"{_uri(C26_DIR / file)}#/components/schemas/{schema}"}
    return Draft202012Validator(
        ref, registry=_c26_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def errors(validator: Draft202012Validator, document: Any) -> list[str]:
    """Every validation error, as ``path: message`` lines (empty when valid)."""
    found = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in found]


def discriminators(document: Any, keys: tuple[str, ...] = ("type", "kind")) -> Iterator[tuple[str, str]]:
    """``(path, value)`` of every discriminator-looking string in ``document``."""

    def walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{path}/{key}" if path else key
                if key in keys and isinstance(value, str):
                    yield here, value
                else:
                    yield from walk(value, here)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                yield from walk(item, f"{path}/{i}" if path else str(i))

    yield from walk(document, "")


def schema_examples(root: Path) -> Iterator[tuple[str, str, Any]]:
    """``(file, schema, example)`` for every ``example``/``examples`` value in the YAML under ``root``."""

    def walk(node: Any, file: str, schema: str) -> Iterator[tuple[str, str, Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "examples" and isinstance(value, list):
                    for example in value:
                        yield file, schema, example
                elif key == "example":
                    yield file, schema, value
                else:
                    yield from walk(value, file, schema if schema else "")
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, file, schema)

    for path in sorted(root.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
            yield from walk(schema, str(path.relative_to(root)), name)
