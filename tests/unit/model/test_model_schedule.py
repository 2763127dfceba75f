"""ISO 8601 durations, start intervals and timestamps (digest §3.0, §9 item 11)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel
from tests.support.ivoa_schema import C26_DIR, IVOA_STD_DIR, schema_examples

from eb_operator.model import (
    IntervalForm,
    IsoDuration,
    IsoInterval,
    Timestamp,
    format_duration,
    parse_duration,
)
from eb_operator.model.schedule import Iso8601Error, format_timestamp, parse_instant

pytestmark = pytest.mark.unit

H = 3600
STD_DURATION = re.compile(
    r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
STD_INTERVAL = re.compile(
    r"^(\d{4}(?:-\d{2}){2}T\d{2}(?::\d{2}){2}(?>[^\/]+))\/"
    r"(P(?=.)(?:\d+Y)?(?:\d+M)?(?:\d+D)?(?:T(?=.)(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)$"
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("PT1H", H, id="one hour"),
        pytest.param("PT30M", 1800, id="thirty minutes"),
        pytest.param("P1D", 24 * H, id="one day"),
        pytest.param("PT0S", 0, id="zero"),
        pytest.param("P1DT2H3M4S", 26 * H + 184, id="all time parts"),
        pytest.param("P2W", 14 * 24 * H, id="weeks"),
        pytest.param("PT1.5S", 2, id="a fraction of a second rounds up"),
        pytest.param("PT0,5S", 1, id="a comma decimal"),
        pytest.param("-PT1H", -H, id="negative"),
        pytest.param("P1M", 30 * 24 * H, id="a month is 30 days"),
        pytest.param("P1Y", 365 * 24 * H, id="a year is 365 days"),
    ],
)
def test_durations_parse_to_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("P1H", id="the prose's P1H is not ISO 8601"),
        pytest.param("P", id="no parts"),
        pytest.param("PT", id="an empty time part"),
        pytest.param("1H", id="no P"),
        pytest.param("PT1H30", id="a trailing number"),
        pytest.param("P99999999Y", id="absurdly long"),
    ],
)
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(Iso8601Error):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "PT0S", id="zero is PT0S"),
        pytest.param(H, "PT1H", id="hours"),
        pytest.param(5400, "PT1H30M", id="hours and minutes"),
        pytest.param(24 * H, "P1D", id="a whole day"),
        pytest.param(26 * H + 1, "P1DT2H1S", id="days hours seconds"),
    ],
)
def test_durations_render_canonically_and_match_the_ivoa_std_pattern(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text
    assert STD_DURATION.match(text)
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "start", "width", "form"),
    [
        pytest.param(
            "2026-08-14T09:00:00Z/PT3H", "2026-08-14T09:00:00Z", 3 * H, "start/duration", id="start/duration"
        ),
        pytest.param(
            "2023-08-14T11:30Z/PT30M", "2023-08-14T11:30:00Z", 1800, "start/duration", id="no seconds"
        ),
        pytest.param(
            "2023-08-14T11:30Z/T12:00Z",
            "2023-08-14T11:30:00Z",
            1800,
            "start/end",
            id="the prose's end without a date",
        ),
        pytest.param(
            "2023-08-14T11:30:00Z/2023-08-14T12:00:00Z",
            "2023-08-14T11:30:00Z",
            1800,
            "start/end",
            id="start/end",
        ),
        pytest.param("2023-08-14/P1D", "2023-08-14T00:00:00Z", 24 * H, "start/duration", id="a date alone"),
        pytest.param(
            "2023-08-14T11:30Z", "2023-08-14T11:30:00Z", 0, "instant", id="a bare instant is an exact start"
        ),
        pytest.param(
            "2023-08-14T13:30:00+02:00/PT1H", "2023-08-14T11:30:00Z", H, "start/duration", id="a zone offset"
        ),
        pytest.param(
            "2023-08-14T11:30:00/PT1H", "2023-08-14T11:30:00Z", H, "start/duration", id="no zone means UTC"
        ),
        pytest.param(
            "2023-08-14T22:00Z/T23:00Z", "2023-08-14T22:00:00Z", H, "start/end", id="X10's late window"
        ),
    ],
)
def test_start_intervals_parse_to_a_window(text: str, start: str, width: int, form: str) -> None:
    interval = IsoInterval.parse(text)
    assert (interval.start, interval.seconds, interval.form) == (
        parse_instant(start),
        width,
        IntervalForm(form),
    )
    assert interval.supported
    canonical = str(interval)
    assert STD_INTERVAL.match(canonical), canonical
    assert IsoInterval.parse(canonical) == interval


@pytest.mark.parametrize(
    ("text", "form"),
    [
        pytest.param("PT2H/2023-08-09", "duration/end", id="duration/end, valid in C26, refused by tex §3.3"),
        pytest.param("PT2H", "duration", id="a duration alone"),
        pytest.param("R5/2023-08-14T11:30:00Z/PT1H", "repeating", id="a repeating interval"),
    ],
)
def test_refused_interval_forms_parse_so_the_broker_can_say_no(text: str, form: str) -> None:
    interval = IsoInterval.parse(text)
    assert interval.form == IntervalForm(form)
    assert not interval.supported
    assert str(interval) == text  # echoed as written, never rewritten into something else


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("yesterday", id="not a date"),
        pytest.param("2023-13-01T00:00:00Z/PT1H", id="month 13"),
        pytest.param("2023-08-14T12:00Z/2023-08-14T11:00Z", id="ends before it starts"),
        pytest.param("2023-08-14T12:00Z/-PT1H", id="a negative width"),
        pytest.param("2023-08-14T12:00Z/PT1H/PT2H", id="two slashes"),
        pytest.param("PT1H/PT2H", id="two durations"),
        pytest.param("2023-08-14T12:00Z/P1H", id="the prose's P1H"),
    ],
)
def test_unparseable_intervals_are_refused(text: str) -> None:
    with pytest.raises(Iso8601Error):
        IsoInterval.parse(text)


def _schema_examples() -> list[Any]:
    found = [
        pytest.param(schema, example, id=f"{file}:{schema}:{example}")
        for root in (IVOA_STD_DIR, C26_DIR)
        for file, schema, example in schema_examples(root)
    ]
    assert found, "the official schemas should hold at least the C26 interval examples"
    return found


@pytest.mark.parametrize(("schema", "example"), _schema_examples())
def test_every_example_in_the_official_schemas_parses_and_round_trips(schema: str, example: str) -> None:
    assert schema == "ISO8601Interval"  # the only examples the schemas hold
    interval = IsoInterval.parse(example)
    if interval.supported:
        assert IsoInterval.parse(str(interval)) == interval
    else:
        assert interval.form is IntervalForm.DURATION_END
        assert str(interval) == example


class _Stamped(BaseModel):
    at: Timestamp


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param("2026-08-14T08:00:00Z", "2026-08-14T08:00:00Z", id="Z stays Z"),
        pytest.param("2026-08-14T10:00:00+02:00", "2026-08-14T08:00:00Z", id="an offset becomes UTC"),
        pytest.param("2023-09-18T07:05:21", "2023-09-18T07:05:21Z", id="the prose's zoneless time is UTC"),
        pytest.param(datetime(2026, 8, 14, 8, tzinfo=UTC), "2026-08-14T08:00:00Z", id="a datetime"),
        pytest.param(
            datetime(2026, 8, 14, 9, tzinfo=timezone(timedelta(hours=1))),
            "2026-08-14T08:00:00Z",
            id="an aware datetime",
        ),
        pytest.param("2026-08-14T08:00:00.25Z", "2026-08-14T08:00:00.250000Z", id="fractions kept"),
    ],
)
def test_timestamps_are_rfc3339_utc_with_z(value: object, text: str) -> None:
    stamped = _Stamped.model_validate({"at": value})
    assert stamped.model_dump(mode="json") == {"at": text}
    assert format_timestamp(stamped.at) == text


def test_durations_and_intervals_serialise_as_strings_inside_models() -> None:
    class Item(BaseModel):
        duration: IsoDuration
        start: IsoInterval

    item = Item.model_validate({"duration": "PT2H", "start": "2026-08-14T10:00:00Z/PT0S"})
    assert item.model_dump(mode="json") == {"duration": "PT2H", "start": "2026-08-14T10:00:00Z/PT0S"}
    assert item.start == IsoInterval.exact(parse_instant("2026-08-14T10:00:00Z"))
    assert item.duration == IsoDuration(2 * H)
