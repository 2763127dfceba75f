"""Sizes in other units, converted to the schemas' whole GiB (digest §3.0, §9 item 16).

The schema says memory and storage are integers in GiB. Clients from the prose era send a
``units`` key (``ComputeUnitsEnum``) and fractions; we convert on input and emit GiB only.
A minimum rounds *up* (an offer must meet it); a maximum rounds down (an offer should not exceed
it), but never below the rounded minimum, so "exactly 1.5 GiB" stays satisfiable.
"""

from __future__ import annotations

import math
from fractions import Fraction

GIB = 1024**3

# ComputeUnitsEnum of utils.yaml: decimal and binary multiples of a byte.
UNIT_BYTES: dict[str, int] = {
    "kB": 1000,
    "kiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
    "TB": 1000**4,
    "TiB": 1024**4,
    "PB": 1000**5,
    "PiB": 1024**5,
    "EB": 1000**6,
    "EiB": 1024**6,
    "ZB": 1000**7,
    "ZiB": 1024**7,
    "YB": 1000**8,
    "YiB": 1024**8,
}
_BY_LOWER = {name.lower(): name for name in UNIT_BYTES}


def unit_name(text: str) -> str | None:
    """The ``ComputeUnitsEnum`` spelling of ``text`` (case-insensitive, ``KiB`` = ``kiB``), or None."""
    return _BY_LOWER.get(text.strip().lower())


def to_gib(value: int | float, units: str | None, *, round_up: bool) -> int:
    """``value`` ``units`` in whole GiB. Exact arithmetic, so 1024 MiB is 1 GiB, not 1.0000001."""
    scale = Fraction(UNIT_BYTES[unit_name(units) or "GiB"] if units else GIB, GIB)
    amount = Fraction(value) * scale
    return math.ceil(amount) if round_up else math.floor(amount)


def min_max_gib(
    low: int | float | None, high: int | float | None, units: str | None
) -> tuple[int | None, int | None]:
    """A requested or offered ``{min, max}`` pair in whole GiB (see module doc for rounding)."""
    new_low = None if low is None else to_gib(low, units, round_up=True)
    new_high = None if high is None else to_gib(high, units, round_up=False)
    both = new_low is not None and new_high is not None and low is not None and high is not None
    if both and new_high < new_low and high >= low:  # type: ignore[operator]
        new_high = new_low
    return new_low, new_high
