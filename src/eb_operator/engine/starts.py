"""The allowed starts of an offer: the requested windows, within what the platform can offer,
aligned to its slot grid, as disjoint sorted intervals (no per-slot list: the horizon and the slot
size cost nothing by themselves)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from eb_operator.engine.types import Window


class StartGrid:
    """Allowed offer starts: disjoint, sorted, slot-aligned inclusive intervals."""

    __slots__ = ("his", "los", "slot")

    def __init__(self, slot: int, intervals: Sequence[tuple[int, int]]) -> None:
        self.slot = slot
        self.los = [lo for lo, _ in intervals]
        self.his = [hi for _, hi in intervals]

    def __bool__(self) -> bool:
        return bool(self.los)

    @property
    def first(self) -> int:
        return self.los[0]

    @property
    def last(self) -> int:
        return self.his[-1]

    def earliest_in(self, x: int, y: int) -> int | None:
        """The earliest allowed start in ``[x, y]``."""
        x = -(-x // self.slot) * self.slot
        i = bisect_left(self.his, x)
        if i == len(self.his):
            return None
        t = max(x, self.los[i])
        return t if t <= y else None

    def without(self, lo_ex: int, hi_ex: int) -> StartGrid:
        """These starts minus every start in ``[lo_ex, hi_ex]``."""
        slot = self.slot
        kept: list[tuple[int, int]] = []
        for lo, hi in zip(self.los, self.his, strict=True):
            if hi < lo_ex or lo > hi_ex:
                kept.append((lo, hi))
                continue
            left = ((lo_ex - 1) // slot) * slot
            if left >= lo:
                kept.append((lo, left))
            right = -(-(hi_ex + 1) // slot) * slot
            if right <= hi:
                kept.append((right, hi))
        return StartGrid(slot, kept)


def align_up(t: int, slot: int) -> int:
    return -(-t // slot) * slot


def allowed_starts(windows: Sequence[Window], earliest: int, latest: int, slot: int) -> StartGrid:
    """The slot-aligned starts inside the requested ``windows`` and ``[earliest, latest]``."""
    spans = sorted(
        (align_up(max(w.start, earliest), slot), (min(w.end, latest) // slot) * slot) for w in windows
    )
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        if lo > hi:
            continue
        if merged and lo <= merged[-1][1] + slot:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return StartGrid(slot, merged)
