"""The worst case: a request that fits nowhere on nodes whose calendars leave only short gaps.

The search drops such a node from one summary of its calendar (``FreeRuns``) instead of jumping
through its whole calendar; these tests pin that the answers do not change: the same NO reason
as a search that jumps (the sentence clients see), a node with one long enough gap still found
wherever it is, and a deadline that stops a search between node visits.
"""

from __future__ import annotations

import pytest
from tests.support.builders import MIN, H, at, demand, policy, tiled

from eb_operator.engine import Ledger, NodeTable, SearchOverrun, explain_no_offers, find_offers, plan_offers

pytestmark = pytest.mark.unit

NOW = at("10:00")
DAY = (NOW, NOW + 24 * H)


def test_a_request_that_fits_nowhere_gets_the_same_no_as_before() -> None:
    nodes, held = tiled(100, NOW)
    want = demand(cores=2, hours=2, between=DAY)
    table, book = NodeTable(nodes), Ledger(held).snapshot()
    plan = plan_offers(want, policy(slot=MIN), table, book, NOW)
    assert plan.offers == ()
    assert plan.reason == (
        "no free slot in the requested start windows: no node can hold 2 cores, 1 GiB of memory for 2 h "
        "starting between 2023-08-14T10:00:00Z and 2023-08-15T10:00:00Z"
    )
    assert plan.reason == explain_no_offers(want, policy(slot=MIN), table, book, NOW)
    assert plan.visited == len(nodes), "every node is looked at once, none searched through"


@pytest.mark.parametrize("where", [0, 37, 99])
def test_one_node_with_a_long_enough_gap_is_found_wherever_it_is(where: int) -> None:
    nodes, held = tiled(100, NOW)
    name = f"n{where:03d}"
    # free one piece of that node's calendar in the afternoon: the gap around it is long enough
    piece = next(r for r in held if r.node == name and r.start >= NOW + 4 * H)
    held.remove(piece)
    want = demand(cores=2, hours=2, between=DAY, max_offers=1)
    offers = find_offers(want, policy(slot=MIN), NodeTable(nodes), Ledger(held).snapshot(), NOW)
    assert [(o.node, o.start) for o in offers] == [(name, -(-(piece.start - 40 * MIN) // MIN) * MIN)]


def test_the_longest_run_search_skips_the_nodes_that_cannot_give_the_minimum() -> None:
    nodes, held = tiled(50, NOW)
    name = "n020"
    piece = next(r for r in held if r.node == name and r.start >= NOW + 4 * H)
    held.remove(piece)
    # at most a 4-hour run, at least 2: only the freed gap gives anything
    want = demand(cores=2, hours=2, between=DAY, max_offers=4)
    offers = find_offers(want, policy(slot=MIN, factor=2.0), NodeTable(nodes), Ledger(held).snapshot(), NOW)
    assert offers
    assert {o.node for o in offers} == {name}


class Clock:
    """A timer that moves one second every time it is read."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_a_search_past_its_deadline_stops_between_node_visits() -> None:
    nodes, held = tiled(200, NOW)
    want = demand(cores=2, hours=2, between=DAY)
    table, book = NodeTable(nodes), Ledger(held).snapshot()
    with pytest.raises(SearchOverrun):
        plan_offers(want, policy(slot=MIN), table, book, NOW, timer=Clock(), deadline=3.0)
    # far enough away, the same search ends with its answer
    assert plan_offers(want, policy(slot=MIN), table, book, NOW, timer=Clock(), deadline=1e9).reason
    with pytest.raises(ValueError, match="timer"):
        plan_offers(want, policy(slot=MIN), table, book, NOW, deadline=1.0)
