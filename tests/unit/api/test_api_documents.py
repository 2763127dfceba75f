"""Bodies are read safely (digest §6.1, issue 6: size, depth, no alias bombs) and written exactly."""

from __future__ import annotations

import json

import pytest

from eb_operator.api.documents import DocumentError, Limits, dump_document, parse_document
from eb_operator.api.media import Format

pytestmark = pytest.mark.unit

BILLION_LAUGHS = b"""
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: [*c,*c,*c,*c,*c,*c,*c,*c,*c]
"""


def test_yaml_reads_like_json_would() -> None:
    body = (
        b"name: x\nresult: YES\ncreated: 2026-08-14T09:00:00Z\nt: 12:30:00\n"
        b"ok: true\nn: ~\nc: 4\nm: 1.5\no: on"
    )
    assert parse_document(body, Format.YAML) == {
        "name": "x",
        "result": "YES",
        "created": "2026-08-14T09:00:00Z",
        "t": "12:30:00",
        "ok": True,
        "n": None,
        "c": 4,
        "m": 1.5,
        "o": "on",
    }


def test_json_body() -> None:
    assert parse_document(b'{"a": [1, {"b": null}]}', Format.JSON) == {"a": [1, {"b": None}]}


@pytest.mark.parametrize(
    ("body", "fmt", "reason"),
    [
        pytest.param(BILLION_LAUGHS, Format.YAML, "aliases", id="an alias bomb is refused"),
        pytest.param(b"a: &x 1\nb: *x", Format.YAML, "aliases", id="any alias is refused"),
        pytest.param(b"!!python/object/apply:os.system ['true']", Format.YAML, "constructor", id="python"),
        pytest.param(b"a: !!binary aGk=", Format.YAML, "constructor", id="binary tag"),
        pytest.param(b"a: !!timestamp 2020-01-01", Format.YAML, "constructor", id="timestamp tag"),
        pytest.param(b"- 1\n- 2", Format.YAML, "mapping", id="a YAML list is not a document"),
        pytest.param(b"[1]", Format.JSON, "mapping", id="a JSON list is not a document"),
        pytest.param(b"just words", Format.YAML, "mapping", id="a bare scalar"),
        pytest.param(b"", Format.YAML, "empty", id="an empty body"),
        pytest.param(b"a: 1\n---\nb: 2\n", Format.YAML, "one YAML document", id="two documents"),
        pytest.param(b"a: [1, 2\n", Format.YAML, "invalid YAML", id="broken YAML"),
        pytest.param(b'{"a": 1', Format.JSON, "invalid JSON", id="broken JSON"),
        pytest.param(b'{"a": NaN}', Format.JSON, "NaN", id="NaN is not JSON"),
        pytest.param(b"1: x\n", Format.YAML, "keys must be strings", id="a number as key"),
        pytest.param(b"? [1, 2]\n: x\n", Format.YAML, "invalid YAML", id="a list as key"),
        pytest.param(b"\xff\xfe", Format.YAML, "UTF-8", id="not UTF-8"),
        pytest.param(b"a: " + b"[" * 100 + b"]" * 100, Format.YAML, "deeper", id="deep YAML"),
        pytest.param(b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", Format.JSON, "deeper", id="deep JSON"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, Format.JSON, "deeper", id="very deep JSON"),
        pytest.param(b"a: 1\na: 2\n", Format.YAML, "duplicate key 'a'", id="duplicate YAML keys"),
        pytest.param(b'{"a": {"b": 1, "b": 1}}', Format.JSON, "duplicate key 'b'", id="duplicate JSON keys"),
        pytest.param(b"a: {!!merge x: {b: 1}}", Format.YAML, "merge keys", id="a YAML merge key"),
        pytest.param(b'{"a": ' + b"1" * 5000 + b"}", Format.JSON, "number longer", id="a 5,000-digit int"),
        pytest.param(b"a: " + b"1" * 5000, Format.YAML, "number longer", id="a 5,000-digit YAML int"),
        pytest.param(b'{"a": 1e999}', Format.JSON, "finite", id="a JSON number too large to be finite"),
        pytest.param(b"a: 1e999", Format.YAML, "finite", id="a YAML number too large to be finite"),
        pytest.param(b'{"a": "\\ud800"}', Format.JSON, "not valid Unicode", id="a lone surrogate"),
    ],
)
def test_bad_bodies_are_refused(body: bytes, fmt: Format, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason):
        parse_document(body, fmt)


def test_node_limit() -> None:
    body = ("a: [" + ",".join(["1"] * 200) + "]").encode()
    with pytest.raises(DocumentError, match="more than 100 nodes"):
        parse_document(body, Format.YAML, Limits(max_nodes=100))
    with pytest.raises(DocumentError, match="more than 100 nodes"):
        parse_document(json.dumps({"a": [1] * 200}).encode(), Format.JSON, Limits(max_nodes=100))


def test_string_and_number_limits() -> None:
    limits = Limits(max_string_chars=10, max_number_chars=30)
    assert parse_document(b'{"a": "x"}', Format.JSON, limits) == {"a": "x"}
    with pytest.raises(DocumentError, match="string longer than 10"):
        parse_document(b'{"a": "' + b"x" * 11 + b'"}', Format.JSON, limits)
    with pytest.raises(DocumentError, match="string longer than 10"):
        parse_document(b"x" * 11 + b": 1", Format.YAML, limits)
    assert parse_document(b"a: " + b"9" * 30, Format.YAML, limits) == {"a": int("9" * 30)}
    with pytest.raises(DocumentError, match="number longer than 30"):
        parse_document(b"a: " + b"9" * 31, Format.YAML, limits)


def test_a_duplicate_yaml_key_says_where() -> None:
    with pytest.raises(DocumentError) as info:
        parse_document(b"a: 1\nb:\n  c: 1\n  c: 2\n", Format.YAML)
    assert info.value.where == {"line": "4", "column": "3"}


def test_yaml_error_says_where() -> None:
    with pytest.raises(DocumentError) as info:
        parse_document(b"a: 1\nb: [1,\n", Format.YAML)
    assert info.value.where["line"] == "3"


def test_yaml_output_quotes_what_yaml_11_would_misread() -> None:
    doc = {"result": "YES", "other": "NO", "created": "2026-08-14T09:00:00Z", "n": "null", "l": [{"a": "b"}]}
    text = dump_document(doc, Format.YAML).decode()
    assert "result: 'YES'" in text
    assert "other: 'NO'" in text
    assert "created: '2026-08-14T09:00:00Z'" in text
    assert parse_document(text.encode(), Format.YAML) == doc


def test_json_output_round_trips() -> None:
    doc = {"name": "données", "offers": [{"phase": "OFFERED"}]}
    assert json.loads(dump_document(doc, Format.JSON)) == doc
