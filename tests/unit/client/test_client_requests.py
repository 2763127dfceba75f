"""Request documents built from command-line values: ivoa-std, as a conformant broker reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eb_operator.client import offer_request, parse_duration, parse_range, parse_start
from eb_operator.client.requests import COMPUTE, DOCKER, JUPYTER

pytestmark = pytest.mark.unit

NOW = datetime(2030, 1, 1, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("4", (4, None), id="a bare number is a minimum"),
        pytest.param("4-8", (4, 8), id="a dash gives min and max"),
        pytest.param("4:8", (4, 8), id="a colon gives min and max"),
        pytest.param("16Gi", (16, None), id="memory may carry Gi"),
        pytest.param("16GiB", (16, None), id="memory may carry GiB"),
        pytest.param("0", (0, None), id="zero GPUs is allowed"),
    ],
)
def test_ranges(text: str, expected: tuple[int, int | None]) -> None:
    assert parse_range(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("8-4", "maximum 4 is below the minimum 8", id="a max below its min is refused"),
        pytest.param("two", "expected N or MIN-MAX", id="words are refused"),
        pytest.param("1.5", "expected N or MIN-MAX", id="fractions are refused"),
        pytest.param("-1", "expected N or MIN-MAX", id="negative numbers are refused"),
        pytest.param("8G-16G", "expected N or MIN-MAX", id="a unit is allowed only at the end"),
    ],
)
def test_bad_ranges(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_range(text, "cores")


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        pytest.param("PT1H", "PT1H", id="ISO 8601 passes unchanged"),
        pytest.param("pt30m", "PT30M", id="ISO 8601 in lower case is upper-cased"),
        pytest.param("P1DT2H", "P1DT2H", id="days and hours"),
        pytest.param("90m", "PT1H30M", id="minutes over an hour are carried"),
        pytest.param("1h30m", "PT1H30M", id="hours and minutes"),
        pytest.param("45s", "PT45S", id="seconds"),
        pytest.param("2d", "P2D", id="days"),
        pytest.param("600", "PT10M", id="a bare number is seconds"),
    ],
)
def test_durations(text: str, iso: str) -> None:
    assert parse_duration(text) == iso


@pytest.mark.parametrize("text", ["", "P", "PT", "1 hour", "1h30", "0s", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "window"),
    [
        pytest.param(
            "2030-01-02T09:00:00Z/PT3H", "2030-01-02T09:00:00Z/PT3H", id="an interval passes unchanged"
        ),
        pytest.param("2030-01-02T09:00Z", "2030-01-02T09:00Z", id="an instant passes unchanged"),
        pytest.param("now", "2030-01-01T10:00:00Z", id="now is an exact start"),
        pytest.param("+10m", "2030-01-01T10:10:00Z", id="a relative start is resolved in UTC"),
        pytest.param("now/2h", "2030-01-01T10:00:00Z/PT2H", id="now with a width is a window"),
        pytest.param("+1h/PT30M", "2030-01-01T11:00:00Z/PT30M", id="a relative window"),
    ],
)
def test_start_windows(text: str, window: str) -> None:
    assert parse_start(text, NOW) == window


def test_a_container_request_carries_every_flag() -> None:
    doc = offer_request(
        image="eb-workload:latest",
        command=["sh", "-c", "echo hi"],
        cores="2-4",
        memory=8,
        gpus="1",
        gpu_type="a100",
        duration="90m",
        start=["+10m/1h"],
        name="demo",
        environment={"A": "1"},
        now=NOW,
    )
    assert doc == {
        "name": "demo",
        "executable": {
            "name": "executable",
            "type": DOCKER,
            "image": {"locations": ["eb-workload:latest"]},
            "entrypoint": "sh",
            "command": ["-c", "echo hi"],
            "environment": {"A": "1"},
        },
        "resources": {
            "compute": [
                {
                    "type": COMPUTE,
                    "name": "compute",
                    "cores": {"requested": {"min": 2, "max": 4}},
                    "memory": {"requested": {"min": 8}},
                    "gpus": {"requested": {"min": 1}, "name": "a100"},
                }
            ]
        },
        "schedule": {"requested": {"duration": "PT1H30M", "start": ["2030-01-01T10:10:00Z/PT1H"]}},
    }


def test_a_minimal_request_has_no_schedule_and_no_gpus() -> None:
    doc = offer_request(image="busybox")
    compute: dict[str, Any] = doc["resources"]["compute"][0]
    assert "schedule" not in doc
    assert "gpus" not in compute
    assert compute["cores"] == {"requested": {"min": 1}}
    assert doc["executable"] == {"name": "executable", "type": DOCKER, "image": {"locations": ["busybox"]}}


def test_zero_gpus_asks_for_none() -> None:
    assert "gpus" not in offer_request(image="x", gpus="0")["resources"]["compute"][0]


def test_a_gpu_type_uri_is_sent_as_type() -> None:
    uri = "https://www.purl.org/ivoa.net/resource-types/nvidia-ad104"
    gpus = offer_request(image="x", gpu_type=uri)["resources"]["compute"][0]["gpus"]
    assert gpus == {"requested": {"min": 1}, "type": uri}


def test_a_notebook_request() -> None:
    doc = offer_request(notebook="https://example.org/a.ipynb")
    assert doc["executable"] == {
        "name": "executable",
        "type": JUPYTER,
        "location": "https://example.org/a.ipynb",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({}, "exactly one of an image or a notebook", id="neither image nor notebook"),
        pytest.param({"image": "x", "notebook": "y"}, "exactly one", id="both image and notebook"),
        pytest.param({"notebook": "y", "command": ["ls"]}, "no command", id="a notebook with a command"),
    ],
)
def test_bad_requests(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        offer_request(**kwargs)
