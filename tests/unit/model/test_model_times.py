"""The one time module: ISO 8601 durations, start intervals and RFC 3339 timestamps (digest §3.0,
§9 item 11), by example and by property (round trips; negatives and garbage refused with
:class:`Iso8601Error`, never another exception)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from tests.support.ivoa_schema import C26_DIR, IVOA_STD_DIR, schema_examples

from eb_operator.model import (
    IntervalForm,
    IsoDuration,
    IsoInterval,
    Timestamp,
    format_duration,
    parse_duration,
)
from eb_operator.model.times import (
    MAX_SECONDS,
    Iso8601Error,
    format_instant,
    format_timestamp,
    from_epoch,
    parse_datetime,
    parse_instant,
    to_epoch,
)

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
        pytest.param("PT0.5S", 1, id="half a second is a whole one, never zero"),
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
        pytest.param("-PT1H", id="negative, although the schemas' pattern allows the sign"),
        pytest.param("-P1D", id="a negative day"),
        pytest.param("-PT0S", id="a negative zero"),
        pytest.param("PT1.5H", id="a fraction anywhere but the seconds"),
    ],
)
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(Iso8601Error):
        parse_duration(text)


def test_a_negative_duration_is_refused_saying_why() -> None:
    with pytest.raises(Iso8601Error, match="negative"):
        parse_duration("-P1D")
    with pytest.raises(Iso8601Error, match="negative"):
        format_duration(-1)


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


# --- properties ------------------------------------------------------------------------------

SECONDS = st.integers(min_value=0, max_value=MAX_SECONDS)
#: Instants from year 1 to 9999, the years RFC 3339 can write.
EPOCHS = st.integers(min_value=-62_135_596_800, max_value=253_402_300_799)
PARTS = st.fixed_dictionaries(
    {},
    optional={
        "Y": st.integers(0, 99),
        "M": st.integers(0, 99),
        "W": st.integers(0, 99),
        "D": st.integers(0, 999),
        "h": st.integers(0, 99),
        "m": st.integers(0, 99),
        "s": st.integers(0, 99_999),
        "f": st.integers(1, 999_999),
    },
)
_UNIT = {"Y": 365 * 86400, "M": 30 * 86400, "W": 7 * 86400, "D": 86400, "h": H, "m": 60, "s": 1}


def _duration_text(parts: dict[str, int]) -> str | None:
    """The ISO 8601 text of ``parts`` (``f``: millionths of a second), None when it has none."""
    date = "".join(f"{parts[k]}{k}" for k in ("Y", "M", "W", "D") if k in parts)
    seconds = str(parts["s"]) if "s" in parts else ("0" if "f" in parts else "")
    if "f" in parts:
        seconds += f".{parts['f']:06d}"
    time = "".join(f"{parts[k]}{k.upper()}" for k in ("h", "m") if k in parts)
    time += f"{seconds}S" if seconds else ""
    if not date and not time:
        return None
    return f"P{date}" + (f"T{time}" if time else "")


@given(SECONDS)
def test_every_duration_round_trips_through_its_canonical_form(seconds: int) -> None:
    text = format_duration(seconds)
    assert STD_DURATION.match(text), text
    assert parse_duration(text) == seconds
    assert format_duration(parse_duration(text)) == text


@given(PARTS)
def test_a_duration_is_the_sum_of_its_parts_with_a_fraction_rounded_up(parts: dict[str, int]) -> None:
    text = _duration_text(parts)
    if text is None:
        return
    whole = sum(n * _UNIT[k] for k, n in parts.items() if k != "f")
    expected = whole + (1 if "f" in parts else 0)
    assert parse_duration(text) == expected
    assert parse_duration(text.replace(".", ",")) == expected  # ISO 8601's comma decimal
    assert parse_duration(format_duration(expected)) == expected  # canonical: no weeks, months, years


@given(PARTS)
def test_a_negative_duration_is_refused_whatever_its_parts(parts: dict[str, int]) -> None:
    text = _duration_text(parts)
    if text is None:
        return
    with pytest.raises(Iso8601Error, match="negative"):
        parse_duration("-" + text)


@given(st.integers(max_value=-1))
def test_a_negative_number_of_seconds_has_no_duration(seconds: int) -> None:
    with pytest.raises(Iso8601Error, match="negative"):
        format_duration(seconds)
    with pytest.raises(Iso8601Error, match="negative"):
        IsoDuration.of(seconds)


@settings(max_examples=500)
@given(st.text(max_size=40))
def test_garbage_is_a_duration_or_refused_with_iso8601error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except Iso8601Error:
        return
    assert 0 <= seconds <= MAX_SECONDS


@settings(max_examples=500)
@given(st.text(max_size=40))
def test_garbage_is_an_instant_or_an_interval_or_refused_with_iso8601error(text: str) -> None:
    for parse in (parse_instant, IsoInterval.parse):
        try:
            parse(text)
        except Iso8601Error:
            continue


@given(EPOCHS)
def test_every_instant_round_trips_through_rfc3339(epoch: int) -> None:
    text = format_instant(epoch)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", text), text
    assert parse_instant(text) == epoch
    assert to_epoch(from_epoch(epoch)) == epoch
    assert to_epoch(parse_datetime(text)) == epoch


@given(EPOCHS.filter(lambda t: t < 253_402_300_000), st.integers(1, 999_999))
def test_a_fraction_of_a_second_rounds_an_instant_up(epoch: int, micros: int) -> None:
    text = format_instant(epoch).replace("Z", f".{micros:06d}Z")
    assert parse_instant(text) == epoch + 1
    assert parse_datetime(text) == from_epoch(epoch) + timedelta(microseconds=micros)


@given(EPOCHS.filter(lambda t: 86400 < t < 253_402_200_000), st.integers(-23 * 60, 23 * 60))
def test_a_zone_offset_names_the_same_instant(epoch: int, minutes: int) -> None:
    zone = timezone(timedelta(minutes=minutes))
    local = from_epoch(epoch).astimezone(zone).replace(tzinfo=None).isoformat()
    sign = "-" if minutes < 0 else "+"
    text = f"{local}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    assert parse_instant(text) == epoch


@given(EPOCHS.filter(lambda t: t < 253_000_000_000), st.integers(0, 10 * 365 * 86400))
def test_a_start_duration_interval_round_trips(start: int, width: int) -> None:
    interval = IsoInterval(start, width)
    text = str(interval)
    assert STD_INTERVAL.match(text), text
    assert IsoInterval.parse(text) == interval
    assert IsoInterval.parse(f"{format_instant(start)}/{format_instant(start + width)}") == interval


@given(PARTS)
def test_an_interval_with_a_negative_width_is_refused(parts: dict[str, int]) -> None:
    text = _duration_text(parts)
    if text is None:
        return
    with pytest.raises(Iso8601Error, match="negative"):
        IsoInterval.parse(f"2026-08-14T09:00:00Z/-{text}")


class _Lifetime(BaseModel):
    min: IsoDuration


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("-P1D", "negative", id="negative"),
        pytest.param("P1H", "not an ISO 8601 duration", id="the prose's P1H"),
        pytest.param("soon", "not an ISO 8601 duration", id="garbage"),
        pytest.param(timedelta(seconds=-1), "negative", id="a negative timedelta"),
        pytest.param(3600, "must be a string", id="a number"),
    ],
)
def test_a_bad_duration_in_a_model_is_a_validation_error_saying_why(value: object, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        _Lifetime.model_validate({"min": value})
