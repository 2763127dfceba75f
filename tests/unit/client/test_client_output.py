"""Tables, YAML and JSON of broker documents, in both dialects."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from eb_operator.client.output import amount, render, session_row

pytestmark = pytest.mark.unit

SESSION: dict[str, Any] = {
    "uuid": "a1f2",
    "href": "http://eb/sessions/a1f2",
    "phase": "OFFERED",
    "expires": "2030-01-01T10:05:00Z",
    "resources": {
        "compute": [
            {
                "cores": {"requested": {"min": 2, "max": 4}, "offered": {"min": 4, "max": 4}},
                "memory": {"requested": {"min": 8}, "offered": {"min": 8, "max": 8}},
                "gpus": {
                    "requested": {"min": 1},
                    "offered": {"min": 1, "max": 1},
                    "product": "real-test-gpu",
                },
            }
        ]
    },
    "schedule": {"executing": {"start": "2030-01-01T11:00:00Z/PT0S", "duration": "PT1H"}},
    "options": [{"type": "uri:enum-value-option", "path": "phase", "values": ["ACCEPTED", "REJECTED"]}],
}
C26_SESSION: dict[str, Any] = {
    "meta": {"uuid": "c26-1", "url": "http://eb/sessions/c26-1"},
    "phase": "WAITING",
    "compute": {"cores": {"min": 2, "max": 2}, "memory": {"min": 4, "max": 4}},
    "schedule": {"available": {"start": "2030-01-01T11:00:00Z", "duration": "PT10M"}},
}


def test_a_session_row_shows_what_was_offered() -> None:
    row = session_row(SESSION)
    assert (row.uuid, row.phase, row.start, row.duration) == (
        "a1f2",
        "OFFERED",
        "2030-01-01T11:00:00Z",
        "PT1H",
    )
    assert (row.cores, row.memory, row.gpus) == ("4", "8", "1 (real-test-gpu)")


def test_a_c26_session_row() -> None:
    row = session_row(C26_SESSION)
    assert (row.uuid, row.phase, row.start, row.cores, row.memory, row.gpus) == (
        "c26-1",
        "WAITING",
        "2030-01-01T11:00:00Z",
        "2",
        "4",
        "0",
    )


@pytest.mark.parametrize(
    ("block", "text"),
    [
        pytest.param({"offered": {"min": 2, "max": 4}}, "2-4", id="a range"),
        pytest.param({"offered": {"min": 2, "max": 2}}, "2", id="min equal to max is one number"),
        pytest.param({"requested": {"min": 2}}, "2", id="requested when nothing was offered"),
        pytest.param({"min": 1, "max": 3}, "1-3", id="flat C26 counts"),
        pytest.param({"count": 2}, "2", id="a count"),
        pytest.param(3, "3", id="a bare number"),
        pytest.param(None, "-", id="nothing"),
    ],
)
def test_amounts(block: Any, text: str) -> None:
    assert amount(block) == text


def test_a_session_table() -> None:
    lines = render({**SESSION, "messages": [{"level": "WARN", "message": "capped"}]}, "table").splitlines()
    assert lines[0].split() == [
        "SESSION",
        "PHASE",
        "START",
        "DURATION",
        "CORES",
        "MEMORY(GiB)",
        "GPUS",
        "EXPIRES",
    ]
    assert lines[1].split() == [
        "a1f2",
        "OFFERED",
        "2030-01-01T11:00:00Z",
        "PT1H",
        "4",
        "8",
        "1",
        "(real-test-gpu)",
        "2030-01-01T10:05:00Z",
    ]
    assert lines[2] == "may become: ACCEPTED, REJECTED"
    assert lines[3] == "WARN: capped"


def test_an_offerset_table_lists_its_offers() -> None:
    doc = {"uuid": "set-1", "result": "YES", "offers": [SESSION, {**SESSION, "uuid": "b2"}]}
    lines = render(doc, "table").splitlines()
    assert lines[0] == "offer set set-1: YES"
    assert [line.split()[0] for line in lines[2:]] == ["a1f2", "b2"]


def test_a_no_answer_shows_why() -> None:
    doc = {"uuid": "set-2", "result": "NO", "messages": [{"level": "ERROR", "message": "no GPUs here"}]}
    assert render(doc, "table") == "offer set set-2: NO\nERROR: no GPUs here"


def test_yaml_keeps_yes_a_string() -> None:
    text = render({"uuid": "s", "result": "YES"}, "yaml")
    assert "result: 'YES'" in text
    assert yaml.safe_load(text)["result"] == "YES"


def test_json_is_the_document() -> None:
    assert json.loads(render(SESSION, "json")) == SESSION


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown output format"):
        render(SESSION, "xml")
