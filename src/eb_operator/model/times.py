"""The one place times are read and written: ISO 8601 durations, RFC 3339 timestamps, and the
start intervals of the schema (digest §3.0, §3.5, §9 item 11).

Everything in the broker (the wire model, the engine's messages, the operator's reservations, the
REST views, ``ebctl`` and the tests) parses and formats times here, so there is one meaning:

* **Durations** ``PnYnMnWnDTnHnMnS`` are whole seconds, zero or more. Years and months have no
  fixed length; they count as 365 and 30 days, which is all a start window, run time or storage
  lifetime needs. Only the seconds may carry a fraction (``.`` or ``,``), and a fraction **rounds
  up**: every duration the broker reads is something needed (a run time, a lifetime, a window
  width), and rounding down would promise less than was asked (``PT0.5S`` is 1 s, never 0).
  A **negative** duration (``-PT1H``, which the schemas' pattern lets through) is refused with
  :class:`Iso8601Error`, as is anything that is not ISO 8601 (``P1H``, the prose's mistake) or
  longer than :data:`MAX_SECONDS`. In a request this is a malformed value: the REST service
  answers 400 naming the field, a kubectl-made OfferSet is answered NO naming it.
* **Instants** are integer seconds since the Unix epoch (UTC), as in the engine. Input is an
  ISO 8601 date or date-time, with or without seconds, any zone (none means UTC); a fraction of a
  second **rounds up**, so a window never opens (and an offer never lapses) before the time
  written. Output is RFC 3339 in UTC with ``Z`` and whole seconds (``YYYY-MM-DDThh:mm:ssZ``).
* **Start intervals**: ISO 8601 type 1 ``start/end`` and type 2 ``start/duration``, with or
  without seconds, a date alone, or a zone (UTC assumed when there is none); an end may omit its
  date (``2023-08-14T11:30Z/T12:00Z``, as the prose writes it). A bare instant is an exact start.
  Type 3 ``duration/end``, type 4 ``duration`` alone and repeating ``R…`` intervals are valid ISO
  8601 but refused by tex §3.3: they parse, with ``supported`` False, so the broker can answer NO
  naming the field instead of 400 (C26 clients may legitimately send ``PT2H/2023-08-09``).
  Output is always ``YYYY-MM-DDThh:mm:ssZ/PnDTnHnMnS`` with zero parts left out, which matches
  both the ivoa-std and the C26 patterns.
* **Timestamps** of documents (``created``, ``expires``, message times) are aware UTC datetimes,
  written as RFC 3339 with ``Z``, sub-second digits only when present.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, GetCoreSchemaHandler, GetJsonSchemaHandler, PlainSerializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

_MINUTE = 60
_HOUR = 3600
_DAY = 86400
# Beyond ~10,000 years nothing is meaningful and datetime cannot represent the end any more.
MAX_SECONDS = 10_000 * 365 * _DAY

_DURATION_RE = re.compile(
    r"^(?P<sign>-)?P(?!$)"
    r"(?:(?P<Y>\d+)Y)?(?:(?P<M>\d+)M)?(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?:T(?!$)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:[.,]\d+)?)S)?)?$"
)
_UNIT_SECONDS = {"Y": 365 * _DAY, "M": 30 * _DAY, "W": 7 * _DAY, "D": _DAY, "h": _HOUR, "m": _MINUTE}

_ZONE = r"(?P<zone>Z|z|[+-]\d{2}(?::?\d{2})?)"
_INSTANT_RE = re.compile(
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?" + _ZONE + r"?)?$"
)
# An interval end that leaves out its date takes the start's date (ISO 8601 §4.4.5).
_TIME_ONLY_RE = re.compile(
    r"^[Tt]?(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?" + _ZONE + "?$"
)
_REPEAT_RE = re.compile(r"^R\d*$")


class Iso8601Error(ValueError):
    """A duration, interval or timestamp that cannot be read."""


# --- durations -------------------------------------------------------------------------------


def parse_duration(text: str) -> int:
    """Whole seconds in an ISO 8601 duration, zero or more; a fraction of a second rounds up."""
    m = _DURATION_RE.match(text.strip())
    if m is None:
        raise Iso8601Error(f"{text!r} is not an ISO 8601 duration (e.g. PT1H, P1D, PT30M)")
    if m.group("sign"):
        raise Iso8601Error(f"{text!r} is negative; a duration is a length of time, zero or more")
    total = 0.0
    for unit, scale in _UNIT_SECONDS.items():
        if m.group(unit):
            total += int(m.group(unit)) * scale
    if m.group("s"):
        total += float(m.group("s").replace(",", "."))
    seconds = math.ceil(total)
    if seconds > MAX_SECONDS:
        raise Iso8601Error(f"{text!r} is too long to be a useful duration")
    return seconds


def format_duration(seconds: int) -> str:
    """The canonical form: ``PT0S``, ``PT1H30M``, ``P1DT2H``; days are 24 h, no weeks, months or years."""
    if seconds < 0:
        raise Iso8601Error(f"{seconds} s is negative; a duration is a length of time, zero or more")
    days, rest = divmod(seconds, _DAY)
    hours, rest = divmod(rest, _HOUR)
    minutes, secs = divmod(rest, _MINUTE)
    date_part = f"{days}D" if days else ""
    time_part = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    if not date_part and not time_part:
        return "PT0S"
    return f"P{date_part}" + (f"T{time_part}" if time_part else "")


# --- instants --------------------------------------------------------------------------------


def _zone_offset(zone: str | None) -> timedelta:
    if zone is None or zone in ("Z", "z"):
        return timedelta(0)
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise Iso8601Error(f"bad zone offset {zone!r}")
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if zone[0] == "-" else offset


def _epoch(dt: datetime) -> int:
    """Whole seconds since the epoch, rounding a fraction up so a window never starts early."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * _DAY + delta.seconds + (1 if delta.microseconds else 0)


def _build(parts: dict[str, str | None], day: date, text: str) -> datetime:
    try:
        hour, minute = int(parts["h"] or 0), int(parts["mi"] or 0)
        second = int(parts["s"] or 0)
        frac = parts.get("f")
        micro = int((frac + "000000")[:6]) if frac else 0
        naive = datetime(day.year, day.month, day.day, hour, minute, second, micro)
        return naive.replace(tzinfo=UTC) - _zone_offset(parts["zone"])
    except (ValueError, OverflowError) as exc:
        raise Iso8601Error(f"{text!r} is not a valid date and time ({exc})") from None


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime (sub-seconds kept); no zone means UTC."""
    m = _INSTANT_RE.match(text.strip())
    if m is None:
        raise Iso8601Error(f"{text!r} is not an ISO 8601 date-time (e.g. 2026-08-14T09:00:00Z)")
    try:
        day = date(int(m["y"]), int(m["mo"]), int(m["d"]))
    except ValueError as exc:
        raise Iso8601Error(f"{text!r} is not a valid date ({exc})") from None
    return _build(m.groupdict(), day, text)


def parse_instant(text: str) -> int:
    """Epoch seconds of an ISO 8601 date or date-time; a fraction of a second rounds up."""
    return _epoch(parse_datetime(text))


def _is_instant(text: str) -> bool:
    return _INSTANT_RE.match(text) is not None


def _is_duration(text: str) -> bool:
    return _DURATION_RE.match(text) is not None


def format_instant(epoch: int) -> str:
    """``YYYY-MM-DDThh:mm:ssZ`` (RFC 3339, UTC)."""
    try:
        dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=epoch)
    except OverflowError:
        raise Iso8601Error(f"{epoch} is outside the representable range of dates") from None
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"


def from_epoch(epoch: int) -> datetime:
    """The aware UTC datetime of an epoch second."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=epoch)


def to_epoch(dt: datetime) -> int:
    """Epoch seconds of a datetime (naive means UTC); a fraction of a second rounds up."""
    return _epoch(dt)


# --- intervals -------------------------------------------------------------------------------


class IntervalForm(StrEnum):
    START_DURATION = "start/duration"  # ISO 8601 type 2; the only form the ivoa-std pattern allows
    START_END = "start/end"  # type 1
    INSTANT = "instant"  # a bare instant: an exact start (prose), read as start/PT0S
    DURATION_END = "duration/end"  # type 3: refused (tex §3.3)
    DURATION = "duration"  # type 4: refused
    REPEATING = "repeating"  # R[n]/...: refused


SUPPORTED_FORMS = frozenset({IntervalForm.START_DURATION, IntervalForm.START_END, IntervalForm.INSTANT})


def _text_schema(coerce: Callable[[Any], object]) -> CoreSchema:
    """How pydantic reads an ISO 8601 value type (through ``coerce``) and writes it in JSON (as its
    ``str``); one place, so durations and intervals cannot drift apart."""
    return core_schema.no_info_plain_validator_function(
        coerce, serialization=core_schema.to_string_ser_schema(when_used="json-unless-none")
    )


@dataclass(frozen=True, slots=True)
class IsoDuration:
    """An ISO 8601 duration held as whole seconds; renders in canonical form."""

    seconds: int

    @classmethod
    def parse(cls, text: str) -> IsoDuration:
        return cls(parse_duration(text))

    @classmethod
    def of(cls, seconds: int) -> IsoDuration:
        """A duration of ``seconds``; refused when negative, like the text of one."""
        format_duration(seconds)
        return cls(seconds)

    def __str__(self) -> str:
        return format_duration(self.seconds)

    @classmethod
    def _coerce(cls, value: Any) -> IsoDuration:
        if isinstance(value, IsoDuration):
            return value
        try:
            if isinstance(value, timedelta):
                return cls.of(math.ceil(value.total_seconds()))
            if not isinstance(value, str):
                raise PydanticCustomError("iso8601_type", "an ISO 8601 duration must be a string")
            return cls.parse(value)
        except Iso8601Error as exc:
            raise PydanticCustomError("iso8601", "{reason}", {"reason": str(exc)}) from None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return _text_schema(cls._coerce)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "duration", "description": "ISO 8601 duration, e.g. PT1H"}


@dataclass(frozen=True, slots=True, eq=False)
class IsoInterval:
    """A start window: ``start`` (epoch seconds, UTC) and its width in ``seconds``.

    Two supported windows are equal when they cover the same time, however they were written
    (``…T11:30Z/T12:00Z`` is ``…T11:30:00Z/PT30M``). Refused forms keep ``start`` None, render as
    they were written, and are equal only to the same text.
    """

    start: int | None
    seconds: int
    form: IntervalForm = IntervalForm.START_DURATION
    text: str | None = None

    def _key(self) -> tuple[object, ...]:
        return (self.start, self.seconds) if self.supported else (self.form, self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IsoInterval) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def supported(self) -> bool:
        return self.form in SUPPORTED_FORMS and self.start is not None

    @property
    def end(self) -> int | None:
        return None if self.start is None else self.start + self.seconds

    @classmethod
    def exact(cls, start: int) -> IsoInterval:
        return cls(start, 0)

    @classmethod
    def parse(cls, text: str) -> IsoInterval:
        raw = text.strip()
        parts = raw.split("/")
        if len(parts) == 1:
            if _is_instant(raw):
                return cls(parse_instant(raw), 0, IntervalForm.INSTANT, text)
            if _is_duration(raw):
                return cls(None, parse_duration(raw), IntervalForm.DURATION, text)
            raise Iso8601Error(f"{text!r} is not an ISO 8601 interval (e.g. 2026-08-14T09:00:00Z/PT3H)")
        if _REPEAT_RE.match(parts[0]) and len(parts) in (2, 3):
            return cls(None, 0, IntervalForm.REPEATING, text)
        if len(parts) != 2:
            raise Iso8601Error(f"{text!r} has more than one '/'")
        first, second = parts
        if _is_instant(first):
            start = parse_instant(first)
            if _is_duration(second):
                return cls(start, parse_duration(second), IntervalForm.START_DURATION, text)
            end = cls._parse_end(first, second, text)
            if end < start:
                raise Iso8601Error(f"{text!r} ends before it starts")
            return cls(start, end - start, IntervalForm.START_END, text)
        if _is_duration(first) and _is_instant(second):
            width, _ = parse_duration(first), parse_instant(second)  # both must read
            return cls(None, width, IntervalForm.DURATION_END, text)
        raise Iso8601Error(f"{text!r} is not an ISO 8601 interval (e.g. 2026-08-14T09:00:00Z/PT3H)")

    @staticmethod
    def _parse_end(first: str, second: str, text: str) -> int:
        if _is_instant(second):
            return parse_instant(second)
        m = _TIME_ONLY_RE.match(second)
        start_m = _INSTANT_RE.match(first)
        if m is None or start_m is None:
            raise Iso8601Error(f"{text!r} is not an ISO 8601 interval (e.g. 2026-08-14T09:00:00Z/PT3H)")
        parts: dict[str, str | None] = dict(m.groupdict())
        if parts["zone"] is None:
            parts["zone"] = start_m["zone"]
        day = date(int(start_m["y"]), int(start_m["mo"]), int(start_m["d"]))
        return _epoch(_build(parts, day, text))

    def __str__(self) -> str:
        if self.start is None or self.form not in SUPPORTED_FORMS:
            return self.text if self.text is not None else format_duration(self.seconds)
        return f"{format_instant(self.start)}/{format_duration(self.seconds)}"

    def instant(self) -> str:
        """The start alone (C26 ``ISO8601Instant``)."""
        if self.start is None:
            raise Iso8601Error(f"{self} has no start")
        return format_instant(self.start)

    @classmethod
    def _coerce(cls, value: Any) -> IsoInterval:
        if isinstance(value, IsoInterval):
            return value
        try:
            # YAML 1.1 readers turn an unquoted instant into a datetime or date.
            if isinstance(value, datetime):
                return cls(_epoch(value), 0, IntervalForm.INSTANT, value.isoformat())
            if isinstance(value, date):
                return cls(parse_instant(value.isoformat()), 0, IntervalForm.INSTANT, value.isoformat())
            if not isinstance(value, str):
                raise PydanticCustomError("iso8601_type", "an ISO 8601 interval must be a string")
            interval = cls.parse(value)
            if interval.start is not None:
                format_instant(interval.start)  # refuse years the renderer could not write back
            return interval
        except (Iso8601Error, OverflowError) as exc:
            raise PydanticCustomError("iso8601", "{reason}", {"reason": str(exc)}) from None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return _text_schema(cls._coerce)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "description": "ISO 8601 interval, e.g. 2026-08-14T09:00:00Z/PT3H"}


# --- timestamps ------------------------------------------------------------------------------


def _to_utc(value: Any) -> datetime:
    try:
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, str):
            return parse_datetime(value)
    except (ValueError, OverflowError):
        raise PydanticCustomError(
            "datetime", "{value} is not an RFC 3339 date-time", {"value": str(value)}
        ) from None
    raise PydanticCustomError("datetime_type", "a date-time must be an RFC 3339 string")


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z`` (digest §9 item 31); sub-second digits only when present."""
    dt = _to_utc(value)
    base = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    return base + (f".{dt.microsecond:06d}Z" if dt.microsecond else "Z")


Timestamp = Annotated[
    datetime,
    BeforeValidator(_to_utc),
    PlainSerializer(format_timestamp, return_type=str, when_used="json-unless-none"),
]
"""An aware UTC datetime on the wire as RFC 3339 with ``Z``."""
