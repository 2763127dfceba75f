"""FreeRuns: the per-column summary that lets a search drop a node without scanning its calendar.

Checked against a point-by-point scan of the calendar that never uses the summary: the maximal
runs at or under a limit, found by walking the segments, then the filter's rule spelled out.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.builders import reservation

from eb_operator.engine.calendar import NEVER, SUMMARY_MAX_BREAKPOINTS, FreeRuns, NodeUsage, span_fits

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def runs_under(times: Sequence[int], column: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """The maximal runs of segments holding at most ``limit``, from a walk over the segments."""
    edges = [-NEVER, *times, NEVER]
    out: list[tuple[int, int]] = []
    open_at: int | None = None
    for j, held in enumerate(column):
        if held <= limit:
            if open_at is None:
                open_at = edges[j]
        elif open_at is not None:
            out.append((open_at, edges[j]))
            open_at = None
    if open_at is not None:
        out.append((open_at, NEVER))
    return out


def expected(
    times: Sequence[int], column: Sequence[int], limit: int, length: int, start: int, end: int
) -> bool:
    """The filter's rule: a run at ``limit`` that reaches an end of the calendar counts clipped
    to ``[start, end)``; a run between two breakpoints, at ``limit`` or any lower level, counts
    by its length wherever it is (looser than the runs at ``limit`` alone, never tighter)."""
    if end - start < length:
        return False
    for a, b in runs_under(times, column, limit):
        if (a == -NEVER or b == NEVER) and min(b, end) - max(a, start) >= length:
            return True
    for level in {x for x in column if x <= limit} | {limit}:
        for a, b in runs_under(times, column, level):
            if a != -NEVER and b != NEVER and b - a >= length:
                return True
    return False


spans = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 15), st.integers(1, 4)), min_size=0, max_size=12
)


@SETTINGS
@given(
    spans=spans,
    limit=st.integers(0, 12),
    length=st.integers(1, 30),
    start=st.integers(-10, 50),
    width=st.integers(0, 60),
)
def test_the_summary_answers_like_a_walk_over_the_segments(
    spans: list[tuple[int, int, int]], limit: int, length: int, start: int, width: int
) -> None:
    usage = NodeUsage.build(reservation("n", a, a + n, cores=c) for a, n, c in spans)
    runs = FreeRuns.build(usage.times, usage.cpu)
    end = start + width
    assert runs.may_hold(limit * 1000, length, start, end) == expected(
        usage.times, usage.cpu, limit * 1000, length, start, end
    )


@SETTINGS
@given(
    spans=spans,
    limit=st.integers(0, 12),
    length=st.integers(1, 30),
    start=st.integers(-10, 50),
    width=st.integers(0, 60),
)
def test_it_never_drops_a_node_where_some_span_fits(
    spans: list[tuple[int, int, int]], limit: int, length: int, start: int, width: int
) -> None:
    usage = NodeUsage.build(reservation("n", a, a + n, cores=c) for a, n, c in spans)
    checks = [(usage.cpu, limit * 1000)]
    end = start + width
    fits = any(span_fits(usage.times, checks, t, t + length) for t in range(start, end - length + 1))
    if fits:
        assert usage.may_hold(checks, length, start, end)


def test_a_tiled_calendar_with_short_gaps_holds_no_long_run() -> None:
    # 10-20, 25-40, 42-60 hold 3 cores: the gaps are 5 and 2 long
    usage = NodeUsage.build(
        [
            reservation("n", 10, 20, cores=3),
            reservation("n", 25, 40, cores=3),
            reservation("n", 42, 60, cores=3),
        ]
    )
    checks = [(usage.cpu, 2000)]  # 2 cores may be held: every reservation is in the way
    assert not usage.may_hold(checks, 6, 10, 60)
    assert usage.may_hold(checks, 5, 10, 60)  # the gap 20-25
    assert usage.may_hold(checks, 6, 0, 60)  # before the first reservation: 0-10
    assert usage.may_hold(checks, 6, 10, 70)  # after the last one: 60-70
    assert not usage.may_hold(checks, 7, 4, 66)  # 4-10 and 60-66 are too short
    assert usage.may_hold(checks, 6, 4, 66)  # 60-66 is not
    assert usage.may_hold([(usage.cpu, 3000)], 50, 10, 60)  # 3 cores fit beside them everywhere


def test_the_summary_is_built_once_per_calendar_and_column() -> None:
    usage = NodeUsage.build([reservation("n", 10, 20, cores=3)])
    assert usage.runs(usage.cpu) is usage.runs(usage.cpu)
    assert usage.runs(usage.mem) is not usage.runs(usage.cpu)


def test_a_calendar_too_long_to_summarise_has_no_opinion() -> None:
    pieces = SUMMARY_MAX_BREAKPOINTS // 2 + 1  # two breakpoints each
    usage = NodeUsage.build(reservation("n", 10 * i, 10 * i + 9, cores=3) for i in range(pieces))
    assert len(usage.times) > SUMMARY_MAX_BREAKPOINTS
    checks = [(usage.cpu, 2000)]
    assert usage.may_hold(checks, 5, 0, 10 * pieces)  # it is searched through instead
    assert usage.cpu_may_hold(2000, 5, 0, 10 * pieces)
    short = NodeUsage.build(reservation("n", 10 * i, 10 * i + 9, cores=3) for i in range(10))
    assert not short.may_hold([(short.cpu, 2000)], 5, 0, 100)
    assert not short.cpu_may_hold(2000, 5, 0, 100)
    assert short.cpu_may_hold(3000, 5, 0, 100)  # under the peak: nothing to check
