"""Request bodies in, response bodies out: safe YAML and JSON with limits. Pure functions.

YAML input is read with a YAML 1.2 core-schema resolver (``true``/``false`` are booleans, ``YES``,
``on`` and timestamps stay strings, no sexagesimal numbers), aliases and merge keys are refused
outright (no alias bombs), and nesting depth and node count are bounded before anything is
constructed. Only plain data types are built (safe constructor). Both formats refuse what a
JSON-shaped document cannot hold or should not: duplicate keys (YAML says keys are unique; JSON's
"last one wins" would hide a typo), ``NaN``/``Infinity`` and numbers too large to be finite,
numbers and strings longer than :class:`Limits` allows, and strings that are not valid Unicode
(a lone surrogate escape). Every refusal is a ``DocumentError`` (400), never anything else.

YAML output is always block style and quotes anything a YAML 1.1 reader could misread, so
``result: "YES"`` stays a string (digest §9 item 37).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
import yaml.composer
import yaml.constructor
import yaml.cyaml
import yaml.parser
import yaml.resolver

from eb_operator.api.media import Format

_LIBYAML: bool = getattr(yaml, "__with_libyaml__", False)
_Dumper: Any = yaml.CSafeDumper if _LIBYAML else yaml.SafeDumper
# libyaml's parser composes nodes itself; the pure-Python one needs the Composer.
_PARSER_BASES: tuple[type, ...] = (
    (yaml.cyaml.CParser,) if _LIBYAML else (yaml.parser.Parser, yaml.composer.Composer)  # type: ignore[attr-defined]
)


class DocumentError(ValueError):
    """A body that cannot be read as a document. ``where`` says where, when known."""

    def __init__(self, reason: str, where: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.where: dict[str, str] = dict(where or {})


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound on a request body, in one place. ``ApiSettings`` exposes each as an ``EB_API_*``
    setting with these defaults (docs/api.md, "Limits on request bodies")."""

    max_body_bytes: int = 1024 * 1024  # larger bodies are 413, checked before any parsing
    # The document as the API server will store it (413 past it). An OfferSet holds the request
    # twice (spec, and status as offered), and etcd refuses an object over 1.5 MiB (its default
    # --max-request-bytes): past that the answer could never be written, and the client would
    # get a 503 after the operator's retries instead of a 413 now.
    max_stored_bytes: int = 512 * 1024
    max_depth: int = 64  # nested mappings and lists
    max_nodes: int = 50_000  # mappings, lists and scalars together
    max_number_chars: int = 64  # one number as written; int64 needs 20, a float 24
    max_string_chars: int = 64 * 1024  # one string or key


DEFAULT_LIMITS = Limits()


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema: the implicit types JSON has, nothing more."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$"),
    list("-+.0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Constructor(yaml.constructor.SafeConstructor):
    """Plain data only: maps (with unique keys), lists, strings, numbers, booleans, null."""

    limits: Limits = DEFAULT_LIMITS

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                raise DocumentError("YAML merge keys are not accepted", _where(key_node.start_mark))
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        if len(mapping) != len(node.value):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise DocumentError(f"duplicate key {key!r:.40}", _where(key_node.start_mark))
                seen.add(key)
        return mapping


def _number_text(loader: Any, node: Any) -> str:
    value = str(loader.construct_scalar(node))
    if len(value) > loader.limits.max_number_chars:
        raise DocumentError(
            f"a number longer than {loader.limits.max_number_chars} characters", _where(node.start_mark)
        )
    return value


def _construct_int(loader: Any, node: Any) -> int:
    value = _number_text(loader, node)
    if value.startswith("0o"):
        return int(value[2:], 8)
    return int(value, 16) if value.startswith("0x") else int(value)


def _construct_float(loader: Any, node: Any) -> float:
    value = float(_number_text(loader, node))
    if not math.isfinite(value):
        raise DocumentError("numbers must be finite", _where(node.start_mark))
    return value


_C: Any = _Constructor
_C.add_constructor("tag:yaml.org,2002:int", _construct_int)
_C.add_constructor("tag:yaml.org,2002:float", _construct_float)
for _tag in ("timestamp", "binary", "set", "omap", "pairs", "merge"):
    _C.yaml_constructors.pop(f"tag:yaml.org,2002:{_tag}", None)
_C.add_constructor(None, yaml.constructor.SafeConstructor.construct_undefined)


def _loader_init(self: Any, stream: str) -> None:
    base: Any = _PARSER_BASES[0]
    base.__init__(self, stream)
    if not _LIBYAML:
        yaml.composer.Composer.__init__(self)
    _Constructor.__init__(self)
    _Resolver.__init__(self)


_Loader: Any = type("_Loader", (*_PARSER_BASES, _Constructor, _Resolver), {"__init__": _loader_init})


def _where(mark: Any) -> dict[str, str]:
    if mark is None:
        return {}
    return {"line": str(mark.line + 1), "column": str(mark.column + 1)}


def _check_events(text: str, limits: Limits) -> None:
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                raise DocumentError("YAML aliases are not accepted", _where(event.start_mark))
            if isinstance(event, yaml.DocumentStartEvent) and nodes:
                raise DocumentError("a body holds exactly one YAML document", _where(event.start_mark))
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                nodes += 1
                if depth > limits.max_depth:
                    raise DocumentError(f"nesting deeper than {limits.max_depth}", _where(event.start_mark))
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.ScalarEvent):
                nodes += 1
            if nodes > limits.max_nodes:
                raise DocumentError(f"more than {limits.max_nodes} nodes", _where(event.start_mark))
    except yaml.MarkedYAMLError as e:
        raise DocumentError(f"invalid YAML: {e.problem or e.context}", _where(e.problem_mark)) from None
    except yaml.YAMLError as e:
        raise DocumentError(f"invalid YAML: {e}") from None


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DocumentError("the body is not UTF-8", {"offset": str(e.start)}) from None


def _check_tree(doc: Any, limits: Limits) -> None:
    """What both formats must hold, checked on the built document: bounded nesting and size,
    string keys, finite numbers, strings of bounded length that are valid Unicode."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise DocumentError(f"more than {limits.max_nodes} nodes")
        if isinstance(value, dict):
            if depth > limits.max_depth:
                raise DocumentError(f"nesting deeper than {limits.max_depth}")
            for k, v in value.items():
                if not isinstance(k, str):
                    raise DocumentError(f"mapping keys must be strings, not {_kind(k)} ({k!r:.40})")
                _check_string(k, limits)
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            if depth > limits.max_depth:
                raise DocumentError(f"nesting deeper than {limits.max_depth}")
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            _check_string(value, limits)
        elif isinstance(value, float) and not math.isfinite(value):
            raise DocumentError("numbers must be finite")


def _check_string(text: str, limits: Limits) -> None:
    if len(text) > limits.max_string_chars:
        raise DocumentError(f"a string longer than {limits.max_string_chars} characters ({text[:40]!r}...)")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise DocumentError(f"a string that is not valid Unicode ({text[: e.start + 1]!r})") from None


def _no_constant(name: str) -> float:
    raise DocumentError(f"{name} is not a JSON number")


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DocumentError(f"duplicate key {key!r:.40}")
            seen.add(key)
    return out


def _json_number(limits: Limits, text: str) -> str:
    if len(text) > limits.max_number_chars:
        raise DocumentError(f"a number longer than {limits.max_number_chars} characters")
    return text


def _json_float(limits: Limits, text: str) -> float:
    value = float(_json_number(limits, text))
    if not math.isfinite(value):
        raise DocumentError("numbers must be finite")
    return value


def _read_json(text: str, limits: Limits) -> Any:
    try:
        return json.loads(
            text,
            parse_constant=_no_constant,
            parse_int=lambda s: int(_json_number(limits, s)),
            parse_float=lambda s: _json_float(limits, s),
            object_pairs_hook=_json_object,
        )
    except json.JSONDecodeError as e:
        where = {"line": str(e.lineno), "column": str(e.colno)}
        raise DocumentError(f"invalid JSON: {e.msg}", where) from None
    except RecursionError:
        raise DocumentError(f"nesting deeper than {limits.max_depth}") from None


def _read_yaml(text: str, limits: Limits) -> Any:
    _check_events(text, limits)
    loader = _Loader(text)
    loader.limits = limits
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        raise DocumentError(f"invalid YAML: {e.problem or e.context}", _where(e.problem_mark)) from None
    except (yaml.YAMLError, RecursionError) as e:
        raise DocumentError(f"invalid YAML: {e}") from None
    finally:
        loader.dispose()


def parse_document(body: bytes, fmt: Format, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """One mapping document from a request body, or ``DocumentError``. (``limits.max_body_bytes``
    is the caller's to check, while it reads the body: it answers 413, not 400.)"""
    text = _decode(body)
    if not text.strip():
        raise DocumentError("the body is empty")
    try:
        doc = _read_json(text, limits) if fmt is Format.JSON else _read_yaml(text, limits)
    except DocumentError:
        raise
    except (ValueError, TypeError, OverflowError, MemoryError) as e:
        # a reader's own limit (e.g. CPython's on int digits) or a case the checks above missed:
        # still the client's body that cannot be read, never a 500
        raise DocumentError(f"unreadable {fmt.value.upper()}: {type(e).__name__}") from None
    _check_tree(doc, limits)
    if not isinstance(doc, dict):
        raise DocumentError(f"the body must be a mapping (an object), not {_kind(doc)}")
    return doc


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__
    )


def stored_size(doc: Any) -> int:
    """An upper bound of the bytes ``doc`` takes as JSON in the API server's storage: ASCII-escaped
    (a character never takes more there), and ``<``, ``>`` and ``&`` escaped as ``\u003c`` as Go's
    JSON encoder does."""
    text = json.dumps(doc, separators=(",", ":"))
    return len(text) + 5 * (text.count("<") + text.count(">") + text.count("&"))


def dump_document(doc: Any, fmt: Format) -> bytes:
    """A response body in the negotiated format."""
    if fmt is Format.JSON:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text: str = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text.encode("utf-8")
