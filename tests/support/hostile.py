"""Hostile request bodies, as an attacker would send them, and what the REST service must answer.

``unreadable(limits)`` are bodies the service must refuse while reading them (400, 413 or 415),
before anything reaches the cluster: the unit test (``tests/unit/api/test_api_hostile.py``) sends
them through the app in-process, the integration test (``tests/integration/api/test_api_hostile.py``)
to the real service over one keep-alive connection. ``extreme()`` are well-formed requests with
extreme values in the places that matter (numbers, times, durations, lengths); they go through the
model and the cluster, so only the integration test sends them, and each must be answered (a 303
with YES or NO) or refused with a 400, never a 5xx.

The cases are built from the limits in force, so that each one tests the limit it names and not
another that happens to be smaller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.support.wire import COMPUTE, DOCKER, STORAGE

from eb_operator.api.documents import Limits

JSON = "application/json"
YAML = "application/yaml"


@dataclass(frozen=True)
class Hostile:
    id: str
    body: bytes
    content_type: str | None  # None: no Content-Type header (YAML, digest §2.2)
    status: int
    reason: str  # part of the ERROR message the answer must hold

    def headers(self) -> dict[str, str]:
        h = {"Accept": JSON}
        if self.content_type is not None:
            h["Content-Type"] = self.content_type
        return h


def base_request() -> dict[str, Any]:
    """A small request the broker answers YES on any platform with a 1-core, 1 GiB node."""
    return {
        "name": "hostile",
        "executable": {"type": DOCKER, "image": {"locations": ["eb-workload:latest"]}, "entrypoint": "true"},
        "resources": {
            "compute": [
                {
                    "type": COMPUTE,
                    "name": "compute-1",
                    "cores": {"requested": {"min": 1}},
                    "memory": {"requested": {"min": 1}},
                }
            ]
        },
        "schedule": {"requested": {"duration": "PT10M"}},
    }


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _with_name(raw: str, fmt: str = JSON) -> bytes:
    """The base request with ``name`` set to ``raw``, written verbatim (a JSON/YAML value)."""
    if fmt == JSON:
        text = json.dumps(base_request())
        return text.replace('"name": "hostile"', f'"name": {raw}', 1).encode()
    return (
        b"name: "
        + raw.encode()
        + b"\nexecutable: {type: "
        + DOCKER.encode()
        + b", image: {locations: [x]}}\n"
    )


BILLION_LAUGHS = b"""a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]
"""


def unreadable(limits: Limits) -> list[Hostile]:
    """Bodies refused while being read: nothing of them reaches the cluster."""
    big_number = "9" * 5000
    depth = limits.max_depth + 1
    long_string = "x" * (limits.max_string_chars + 1)
    cases = [
        # numbers
        Hostile("json: an integer of 5,000 digits", _with_name(big_number), JSON, 400, "number longer"),
        Hostile("json: a bare integer of 5,000 digits", big_number.encode(), JSON, 400, "number longer"),
        Hostile("yaml: an integer of 5,000 digits", _with_name(big_number, YAML), YAML, 400, "number longer"),
        Hostile(
            "yaml: a hex integer of 5,000 digits", _with_name("0x" + "f" * 5000, YAML), YAML, 400, "number"
        ),
        Hostile("json: 1e999 (not finite)", _with_name("1e999"), JSON, 400, "finite"),
        Hostile("yaml: -1e999 (not finite)", _with_name("-1e999", YAML), YAML, 400, "finite"),
        Hostile("json: NaN", _with_name("NaN"), JSON, 400, "NaN is not a JSON number"),
        Hostile("json: Infinity", _with_name("Infinity"), JSON, 400, "Infinity is not a JSON number"),
        Hostile("json: -Infinity", _with_name("-Infinity"), JSON, 400, "-Infinity is not a JSON number"),
        # YAML's own features
        Hostile("yaml: an alias bomb (billion laughs)", BILLION_LAUGHS, YAML, 400, "aliases"),
        Hostile("yaml: one alias", b"name: &n x\nother: *n\n", YAML, 400, "aliases"),
        Hostile("yaml: a merge key", b"name: x\n!!merge m: {a: 1}\n", YAML, 400, "merge keys"),
        Hostile(
            "yaml: a python object tag", b"!!python/object/apply:os.system ['true']", YAML, 400, "invalid"
        ),
        Hostile("yaml: a binary tag", b"name: !!binary aGk=\n", YAML, 400, "invalid"),
        Hostile("yaml: two documents", b"name: a\n---\nname: b\n", YAML, 400, "one YAML document"),
        Hostile("yaml: a list as a key", b"? [1, 2]\n: x\n", YAML, 400, "unhashable"),
        Hostile("yaml: a number as a key", b"1: x\n", YAML, 400, "keys must be strings"),
        # duplicate keys
        Hostile("yaml: duplicate keys", b"name: a\nname: b\n", YAML, 400, "duplicate key 'name'"),
        Hostile(
            "yaml: duplicate keys, nested and in flow style",
            b"resources: {compute: [{name: a, 'name': b}]}\n",
            YAML,
            400,
            "duplicate key 'name'",
        ),
        Hostile("json: duplicate keys", b'{"name": "a", "name": "b"}', JSON, 400, "duplicate key 'name'"),
        Hostile(
            "json: duplicate keys, nested",
            b'{"schedule": {"requested": {"duration": "PT1H", "duration": "PT2H"}}}',
            JSON,
            400,
            "duplicate key 'duration'",
        ),
        # nesting
        Hostile("json: nesting one deeper than the limit", b"[" * depth + b"]" * depth, JSON, 400, "deeper"),
        Hostile("json: 20,000 nested lists", b"[" * 20_000 + b"]" * 20_000, JSON, 400, "deeper"),
        Hostile(
            "json: nested objects one deeper than the limit",
            b'{"a":' * depth + b"1" + b"}" * depth,
            JSON,
            400,
            "deeper",
        ),
        Hostile(
            "yaml: nested flow lists one deeper than the limit",
            b"a: " + b"[" * depth + b"]" * depth,
            YAML,
            400,
            "deeper",
        ),
        # encodings
        Hostile("invalid UTF-8 (json)", b'{"name": "\xff\xfe"}', JSON, 400, "not UTF-8"),
        Hostile("invalid UTF-8 (yaml)", b"name: \xc0\xaf\n", YAML, 400, "not UTF-8"),
        Hostile("UTF-16 with a BOM", '{"name": "x"}'.encode("utf-16"), JSON, 400, "not UTF-8"),
        Hostile("json: a lone surrogate escape", _with_name('"\\ud800"'), JSON, 400, "not valid Unicode"),
        Hostile("json: a lone surrogate in a key", b'{"\\udfff": 1}', JSON, 400, "not valid Unicode"),
        Hostile("yaml: a lone surrogate escape", _with_name('"\\ud800"', YAML), YAML, 400, "Unicode"),
        # sizes
        Hostile(
            f"json: a string of {len(long_string):,} characters",
            _with_name(json.dumps(long_string)),
            JSON,
            400 if len(long_string) < limits.max_body_bytes - 1024 else 413,
            "string longer" if len(long_string) < limits.max_body_bytes - 1024 else "larger than",
        ),
        Hostile(
            "a body one byte over the limit",
            _json({"name": "x" * limits.max_body_bytes})[: limits.max_body_bytes + 1],
            JSON,
            413,
            "larger than",
        ),
        # shapes
        Hostile("an empty body", b"", JSON, 400, "empty"),
        Hostile("only white space", b" \n\t ", YAML, 400, "empty"),
        Hostile("json: a list, not an object", b"[1, 2]", JSON, 400, "mapping"),
        Hostile("json: a string, not an object", b'"request"', JSON, 400, "mapping"),
        Hostile("yaml: a bare word", b"request", YAML, 400, "mapping"),
        Hostile("yaml sent as JSON", b"name: x\n", JSON, 400, "invalid JSON"),
        # media types
        Hostile("text/plain", b"name: x", "text/plain", 415, "Unsupported Content-Type"),
        Hostile("application/xml", b"<request/>", "application/xml", 415, "Unsupported Content-Type"),
        Hostile("a form", b"name=x", "application/x-www-form-urlencoded", 415, "Unsupported Content-Type"),
        Hostile("multipart", b"--b\r\n\r\nx\r\n--b--", "multipart/form-data; boundary=b", 415, "Unsupported"),
        Hostile("JSON in UTF-16", b'{"name": "x"}', "application/json; charset=utf-16", 415, "Unsupported"),
        Hostile("a garbled Content-Type", b'{"name": "x"}', ";;;", 415, "Unsupported Content-Type"),
    ]
    piece = min(limits.max_string_chars, 8000)
    pieces = -(-(limits.max_stored_bytes // 6 + 1) // piece)
    if pieces * (piece + 3) + 1024 < limits.max_body_bytes:  # else the body's size would answer first
        stored = {**base_request(), "name": ["<" * piece] * pieces}  # '<' is stored as \u003c
        cases.append(
            Hostile(
                f"json: {pieces} strings of {piece:,} '<' (6x stored)", _json(stored), JSON, 413, "stored"
            )
        )
    nodes = limits.max_nodes + 1
    if 2 * nodes + 16 < limits.max_body_bytes:  # else the size limit would answer first
        many = b'{"name": [' + b",".join([b"0"] * nodes) + b"]}"
        cases.append(Hostile(f"json: {nodes:,} values", many, JSON, 400, "nodes"))
    return cases


def _compute(**fields: Any) -> dict[str, Any]:
    doc = base_request()
    doc["resources"]["compute"][0].update(fields)
    return doc


def _schedule(**requested: Any) -> dict[str, Any]:
    doc = base_request()
    doc["schedule"] = {"requested": requested}
    return doc


def _storage(size: Any, lifetime: Any | None = None) -> dict[str, Any]:
    doc = base_request()
    item: dict[str, Any] = {"type": STORAGE, "name": "scratch", "size": {"requested": {"min": size}}}
    if lifetime is not None:
        item["lifetime"] = {"requested": {"min": lifetime}}
    doc["resources"]["storage"] = [item]
    return doc


def _named(name: str) -> dict[str, Any]:
    doc = base_request()
    doc["name"] = name
    return doc


def extreme() -> list[tuple[str, dict[str, Any]]]:
    """Well-formed requests with extreme values: answered (303) or refused (400), never a 5xx."""
    huge = 10**40
    return [
        ("cores 10^40", _compute(cores={"requested": {"min": huge}})),
        ("cores max 2^63", _compute(cores={"requested": {"min": 1, "max": 2**63}})),
        ("cores -1", _compute(cores={"requested": {"min": -1}})),
        ("cores 0", _compute(cores={"requested": {"min": 0}})),
        ("cores 1.5e308", _compute(cores={"requested": {"min": 1.5e308}})),
        ("cores 0.5", _compute(cores={"requested": {"min": 0.5}})),
        ("memory 10^40 GiB", _compute(memory={"requested": {"min": huge}})),
        ("memory min above max", _compute(memory={"requested": {"min": 8, "max": 2}})),
        ("duration of 10^20 hours", _schedule(duration="PT100000000000000000000H")),
        ("duration of 9999999 years", _schedule(duration="P9999999Y")),
        ("a negative duration", _schedule(duration="-PT1H")),
        ("a zero duration", _schedule(duration="PT0S")),
        ("half a second", _schedule(duration="PT0.5S")),
        ("a duration that is not one", _schedule(duration="PT")),
        ("a start in year 9999", _schedule(start=["9999-12-31T23:59:59Z/PT0S"], duration="PT1H")),
        ("a start in year 1", _schedule(start=["0001-01-01T00:00:00Z/PT1H"], duration="PT1H")),
        ("30 February", _schedule(start=["2026-02-30T00:00:00Z/PT1H"], duration="PT1H")),
        ("a start window of 10^6 years", _schedule(start=["2026-01-01T00:00:00Z/P1000000Y"])),
        ("40 start windows", _schedule(start=["2026-01-01T00:00:00Z/PT1H"] * 40)),
        ("storage of 10^40 GiB", _storage(huge)),
        ("storage lifetime -P1D", _storage(1, "-P1D")),
        ("a NUL in the name", _named("a\u0000b")),
        ("control characters in the name", _named("\u0007\u001b[31m\r\n")),
        ("an astral-plane name", _named("\U0001f680" * 100)),
        ("a name of 4,000 characters", _named("n" * 4000)),
        ("a type URI of 4,000 characters", _compute(type=COMPUTE + "x" * 4000)),
        (
            "100 compute resources",
            {**base_request(), "resources": {"compute": [_compute()["resources"]["compute"][0]] * 100}},
        ),
        ("no compute resources", {**base_request(), "resources": {"compute": []}}),
        (
            "an image list of 1,000",
            {**base_request(), "executable": {"type": DOCKER, "image": {"locations": ["x"] * 1000}}},
        ),
        (
            "a command of 1,000 arguments",
            {**base_request(), "executable": {**base_request()["executable"], "command": ["a"] * 1000}},
        ),
        ("resources as a string", {**base_request(), "resources": "all of them"}),
        ("executable as a list", {**base_request(), "executable": [DOCKER]}),
        ("null everywhere", {"name": None, "executable": None, "resources": None, "schedule": None}),
    ]
