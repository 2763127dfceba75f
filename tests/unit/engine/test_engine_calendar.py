"""The per-node calendar: held capacity as a step function of time."""

from __future__ import annotations

import pytest
from tests.support.builders import GPU, reservation

from eb_operator.engine.calendar import EMPTY_USAGE, NodeUsage, free_runs, run_end, span_fits
from eb_operator.engine.types import GIB, Resources

pytestmark = pytest.mark.unit


def test_overlapping_reservations_add_up_and_the_calendar_steps_at_each_change() -> None:
    usage = NodeUsage.build(
        [reservation("n", 10, 30, cores=2, memory_gib=1), reservation("n", 20, 40, cores=3, gpus=1)]
    )
    assert usage.times == (10, 20, 30, 40)
    assert usage.cpu == (0, 2000, 5000, 3000, 0)
    assert usage.mem == (0, GIB, GIB, 0, 0)
    assert usage.gpus == {GPU: (0, 0, 1, 1, 0)}
    assert (usage.peak_cpu, usage.peak_gpus) == (5000, {GPU: 1})
    assert usage.busy_until == 40


def test_back_to_back_identical_reservations_leave_no_breakpoint_between_them() -> None:
    usage = NodeUsage.build([reservation("n", 10, 20, cores=2), reservation("n", 20, 30, cores=2)])
    assert usage.times == (10, 30)


def test_empty_spans_hold_nothing() -> None:
    assert NodeUsage.build([reservation("n", 10, 10, cores=2)]).times == ()
    assert EMPTY_USAGE.peak(0, 100) == Resources()


@pytest.mark.parametrize(
    ("start", "end", "cores"),
    [
        pytest.param(0, 10, 0, id="before everything"),
        pytest.param(0, 11, 2, id="touching the first reservation"),
        pytest.param(25, 26, 5, id="inside the overlap"),
        pytest.param(30, 100, 3, id="after the overlap"),
        pytest.param(40, 100, 0, id="after everything"),
    ],
)
def test_the_peak_over_a_span(start: int, end: int, cores: int) -> None:
    usage = NodeUsage.build([reservation("n", 10, 30, cores=2), reservation("n", 20, 40, cores=3)])
    assert usage.peak(start, end).cpu_millis == cores * 1000


def test_free_runs_are_the_maximal_intervals_under_the_limit() -> None:
    usage = NodeUsage.build([reservation("n", 10, 30, cores=2), reservation("n", 20, 40, cores=3)])
    checks = [(usage.cpu, 3000)]  # at most 3 cores may be held
    assert free_runs(usage.times, checks, 0, 100) == [(0, 20), (30, 100)]
    assert free_runs(usage.times, checks, 15, 35) == [(15, 20), (30, 35)]
    assert free_runs(usage.times, [(usage.cpu, 1000)], 0, 100) == [(0, 10), (40, 100)]
    assert span_fits(usage.times, checks, 30, 100)
    assert not span_fits(usage.times, checks, 19, 21)
    assert run_end(usage.times, checks, 0, 100) == 20
    assert run_end(usage.times, checks, 25, 100) == 25


def test_free_runs_across_many_segments_match_a_point_by_point_scan() -> None:
    # Long calendars are scanned in growing chunks; the runs must not depend on the chunking.
    held = [reservation("n", t, t + 7, cores=1 + (t // 5) % 4) for t in range(0, 2000, 5)]
    usage = NodeUsage.build(held)
    limit = 4000
    checks = [(usage.cpu, limit)]
    runs = free_runs(usage.times, checks, 3, 1990)

    def held_at(t: int) -> int:
        return sum(r.resources.cpu_millis for r in held if r.start <= t < r.end)

    expected: list[tuple[int, int]] = []
    for t in range(3, 1990):
        if held_at(t) <= limit:
            if expected and expected[-1][1] == t:
                expected[-1] = (expected[-1][0], t + 1)
            else:
                expected.append((t, t + 1))
    assert runs == expected
