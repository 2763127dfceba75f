"""The digest's worked examples X1, X9, X10 and X14 (§5.3), as Demands plus the policy knobs
and platform state that produce the offers the tex shows.

Deviations, all on the engine's side of the contract:

* An offer carries one value per resource (what it reserves: Pod requests = limits), so the
  tex's "offered min..max" ranges appear as that one value; the wire model may render it as
  ``offered.min = offered.max``. X14's "cores 8..16" is the offer reserving 16 (the growth
  limit), which is what a requests = limits Pod needs.
* A window start such as X9/X10's ``22:00Z/T23:00Z`` is offered as an exact start (22:00): the
  digest allows offers to be more precise than the request (§5.1 rule 3).
* The tex draws no platform, so each example states the free capacity that explains its
  offers (busy until 11:30, a one-hour gap, busy again until 22:00).
* "More than the minimum" (X1, X14) comes from the Demand's max, which demand_from_request
  derives from the request and policy; the engine never goes above a Demand's max.
"""

from __future__ import annotations

import pytest
from tests.support.builders import DAY, MIN, H, at, clock, demand, node, policy, reservation

from eb_operator.engine import explain_no_offers, find_offers
from eb_operator.engine.types import Offer

pytestmark = pytest.mark.unit

NOW = at("08:00")
THE_DAY = (at("00:00"), at("00:00", day=1))  # X8/X10: "2023-08-14/P1D", any time that day


def summary(offers: list[Offer]) -> list[tuple[str, str, int, int]]:
    """(start, run time, cores, GiB) per offer."""
    return [(clock(o.start), f"{o.duration // H}h", o.cores, o.memory_gib) for o in offers]


def test_x1_a_notebook_may_be_offered_more_than_its_minimum() -> None:
    # cores.requested.min 4, memory.requested.min 16 GiB; the demand's max is twice the min
    # (the ref impl's rule), the node has room: the offer is 8 cores and 32 GiB.
    want = demand(cores=4, max_cores=8, memory_gib=16, max_memory_gib=32, between=(NOW, NOW + 2 * H))
    offers = find_offers(want, policy(), [node(cores=16, memory_gib=64)], [], NOW)
    assert summary(offers)[0] == ("08:00", "1h", 8, 32)


def test_x1_with_an_exact_fit_flavour_node_the_offer_is_the_flavour() -> None:
    # The same request where the only free node is an 8-core / 32 GiB "flavour": all of it.
    want = demand(cores=4, max_cores=64, memory_gib=16, max_memory_gib=256, between=(NOW, NOW + 2 * H))
    offers = find_offers(want, policy(), [node(cores=8, memory_gib=32)], [], NOW)
    assert summary(offers)[0] == ("08:00", "1h", 8, 32)


# A one-core node that is busy until 11:30, free for one hour, then busy until 22:00.
X9_NODE = node(cores=1, memory_gib=1)
X9_BUSY = [
    reservation("n1", at("00:00"), at("11:30"), cores=1, memory_gib=1),
    reservation("n1", at("12:30"), at("22:00"), cores=1, memory_gib=1),
]


def test_x9_different_start_times_and_different_maximum_durations() -> None:
    # Batch: only a duration of 1 h; run times may grow to 4 h (factor 4); any start that day.
    want = demand(hours=1, between=THE_DAY)
    offers = find_offers(want, policy(slot=30 * MIN, factor=4), [X9_NODE], X9_BUSY, NOW)
    # (a) 11:30 for exactly 1 h (the gap closes at 12:30); (b) 22:00 for up to 4 h.
    assert summary(offers) == [("11:30", "1h", 1, 1), ("22:00", "4h", 1, 1)]


# An 8-core / 8 GiB node: busy until 11:30, 6 cores and 6 GiB busy until 12:30, busy until 22:00.
X10_NODE = node(cores=8, memory_gib=8)
X10_BUSY = [
    reservation("n1", at("00:00"), at("11:30"), cores=8, memory_gib=8),
    reservation("n1", at("11:30"), at("12:30"), cores=6, memory_gib=6),
    reservation("n1", at("12:30"), at("22:00"), cores=8, memory_gib=8),
]


def test_x10_resources_and_timing_combined() -> None:
    # 2 cores, 2 GiB (max 8/8), 1 h (up to 4 h), start any time on 2023-08-14.
    want = demand(cores=2, max_cores=8, memory_gib=2, max_memory_gib=8, hours=1, between=THE_DAY)
    offers = find_offers(want, policy(slot=30 * MIN, factor=4), [X10_NODE], X10_BUSY, NOW)
    # offer-001: 2/2 at 11:30 for 1 h; offer-002: 8/8 at 22:00 for up to 4 h. Exactly two.
    assert summary(offers) == [("11:30", "1h", 2, 2), ("22:00", "4h", 8, 8)]


def test_x10_each_offer_is_one_time_slot() -> None:
    want = demand(cores=2, max_cores=8, memory_gib=2, max_memory_gib=8, hours=1, between=THE_DAY)
    offers = find_offers(want, policy(slot=30 * MIN, factor=4), [X10_NODE], X10_BUSY, NOW)
    assert len({o.start for o in offers}) == len(offers)
    assert all(o.release_end - o.prepare_start == o.duration for o in offers)


@pytest.mark.parametrize(
    ("free_cores", "free_gib", "expected"),
    [
        pytest.param(32, 128, (16, 32), id="a big node: the growth limit, 16 cores and 32 GiB"),
        pytest.param(12, 24, (12, 24), id="a 12-core node: everything free, between min and max"),
        pytest.param(8, 16, (8, 16), id="an 8-core node: exactly the minimum"),
    ],
)
def test_x14_a_kubernetes_style_offer_starts_small_and_may_grow(
    free_cores: int, free_gib: int, expected: tuple[int, int]
) -> None:
    # 8 cores, 16 GiB; the demand allows growth to 16 cores / 32 GiB.
    want = demand(cores=8, max_cores=16, memory_gib=16, max_memory_gib=32, between=(NOW, NOW + H))
    offers = find_offers(want, policy(), [node(cores=free_cores, memory_gib=free_gib)], [], NOW)
    assert (offers[0].cores, offers[0].memory_gib) == expected


def test_x14_a_flavour_of_1_core_and_2_gib_is_never_offered() -> None:
    want = demand(cores=8, max_cores=16, memory_gib=16, max_memory_gib=32, between=(NOW, NOW + H))
    small = node(cores=1, memory_gib=2)
    assert find_offers(want, policy(), [small], [], NOW) == []
    assert (
        explain_no_offers(want, policy(), [small], [], NOW)
        == "no node has 8 cores (the most on one node is 1)"
    )


def test_x14_nor_is_what_is_left_of_a_busy_node() -> None:
    want = demand(cores=8, max_cores=16, memory_gib=16, max_memory_gib=32, between=(NOW, NOW + H))
    busy = [reservation("n1", NOW - H, NOW + DAY, cores=31, memory_gib=126)]
    assert find_offers(want, policy(), [node(cores=32, memory_gib=128)], busy, NOW) == []
