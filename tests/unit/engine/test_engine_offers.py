"""find_offers and explain_no_offers, one rule per row."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from tests.support.builders import (
    GPU,
    MIN,
    H,
    at,
    clock,
    demand,
    node,
    policy,
    reservation,
    starts,
    window,
)

from eb_operator.engine import Ledger, NodeTable, explain_no_offers, find_offers, offer_expiry, plan_offers
from eb_operator.engine.types import Demand, NodeCapacity, Phase, Reservation
from eb_operator.model.platform import PlatformPolicy

pytestmark = pytest.mark.unit

NOW = at("10:00")
NEXT_2H = (NOW, NOW + 2 * H)


def first_placement(
    want: Demand,
    nodes: Sequence[NodeCapacity],
    held: Sequence[Reservation] = (),
    platform: PlatformPolicy | None = None,
    now: int = NOW,
) -> tuple[str, str] | None:
    offers = find_offers(want, platform or policy(), nodes, held, now)
    return (offers[0].node, clock(offers[0].start)) if offers else None


@pytest.mark.parametrize(
    ("want", "nodes", "held", "expected"),
    [
        pytest.param(
            demand(gpus=1),
            [node("a-cpu"), node("b-gpu", gpus=1)],
            [],
            ("b-gpu", "10:00"),
            id="a GPU request goes to the node with the GPU",
        ),
        pytest.param(
            demand(gpus=1, product="A100"),
            [node("a", gpus=1, product="T4"), node("b", gpus=1, product="A100")],
            [],
            ("b", "10:00"),
            id="a GPU request for a product skips nodes with another product",
        ),
        pytest.param(
            demand(gpus=2),
            [node("a", gpus=1), node("b", gpus=2)],
            [],
            ("b", "10:00"),
            id="a request for two GPUs skips a one-GPU node",
        ),
        pytest.param(
            demand(cores=4),
            [node("a-gpu", gpus=4), node("z-cpu")],
            [],
            ("z-cpu", "10:00"),
            id="a request without GPUs leaves the GPU node alone",
        ),
        pytest.param(
            demand(gpus=1, between=(NOW, NOW + 6 * H)),
            [node("n1", gpus=1)],
            [reservation("n1", NOW - H, NOW + 3 * H, gpus=1)],
            ("n1", "13:00"),
            id="a held GPU pushes the start to when it is released",
        ),
        pytest.param(
            demand(cores=32),
            [node("a", cores=64)],
            [reservation("a", NOW, NOW + H, cores=32)],
            ("a", "10:00"),
            id="a job fits next to another when the node has room for both",
        ),
        pytest.param(
            demand(cores=33),
            [node("a", cores=64)],
            [reservation("a", NOW - H, NOW + H, cores=32)],
            ("a", "11:00"),
            id="a job that does not fit next to another waits for it to end",
        ),
        pytest.param(
            demand(cores=8, selector={"pool": "science"}),
            [node("a"), node("b", labels={"pool": "science"})],
            [],
            ("b", "10:00"),
            id="the node selector of the demand is honoured",
        ),
        pytest.param(
            demand(cores=8, storage_gib=500),
            [node("a", storage_gib=100), node("b", storage_gib=1000)],
            [],
            ("b", "10:00"),
            id="scratch storage goes where there is room for it",
        ),
        pytest.param(
            demand(cores=4),
            [node("a", cores=16)],
            [
                reservation("a", NOW - H, NOW + 2 * H, cores=16, phase=phase)
                for phase in (Phase.REJECTED, Phase.EXPIRED, Phase.COMPLETED, Phase.FAILED, Phase.CANCELLED)
            ],
            ("a", "10:00"),
            id="reservations in final phases hold nothing",
        ),
        pytest.param(
            demand(cores=4, between=(NOW, NOW + 12 * H)),
            [node("a", cores=16)],
            [
                reservation("a", NOW - H, NOW + H, cores=16, phase=Phase.OFFERED),
                reservation("a", NOW + H, NOW + 2 * H, cores=16, phase=Phase.WAITING),
                reservation("a", NOW + 2 * H, NOW + 3 * H, cores=16, phase=Phase.READY),
                reservation("a", NOW + 3 * H, NOW + 4 * H, cores=16, phase=Phase.RELEASING),
            ],
            ("a", "14:00"),
            id="every non-final phase from OFFERED on holds capacity",
        ),
    ],
)
def test_where_the_first_offer_lands(
    want: Demand, nodes: list[NodeCapacity], held: list[Reservation], expected: tuple[str, str]
) -> None:
    assert first_placement(want, nodes, held) == expected


def test_one_node_for_the_whole_slot_two_half_free_nodes_do_not_make_one() -> None:
    nodes = [node("a", cores=32), node("b", cores=32)]
    held = [
        reservation("a", NOW - H, NOW + 4 * H, cores=16),
        reservation("b", NOW - H, NOW + 4 * H, cores=16),
    ]
    assert find_offers(demand(cores=32), policy(), nodes, held, NOW) == []


def test_a_job_cannot_straddle_two_nodes_over_time() -> None:
    # a is free 10-11, b is free 11-12: a 2-hour job fits on neither.
    nodes = [node("a", cores=8), node("b", cores=8)]
    held = [
        reservation("a", NOW + H, NOW + 9 * H, cores=8),
        reservation("b", NOW - H, NOW + H, cores=8),
        reservation("b", NOW + 2 * H, NOW + 9 * H, cores=8),
    ]
    assert find_offers(demand(cores=8, hours=2), policy(), nodes, held, NOW) == []


# -- start windows, preparation, horizon -----------------------------------------------------------


TWO_BIG_NODES = [node("a", cores=64), node("b", cores=64)]
BOTH_BUSY_UNTIL_13_30 = [reservation(n.name, at("09:00"), at("13:30"), cores=64) for n in TWO_BIG_NODES]


@pytest.mark.parametrize(
    ("want", "nodes", "held", "platform", "now", "expected"),
    [
        pytest.param(
            demand(duration=5 * MIN, windows=[window(at("10:15"), at("10:45"))]),
            [node("a", cores=1)],
            [],
            policy(slot=5 * MIN),
            NOW,
            ["10:15", "10:20", "10:25", "10:30"],
            id="starts fall inside the window, on the slot grid, one run apart on a 1-core node",
        ),
        pytest.param(
            demand(cores=64, windows=[window(at("10:00"), at("10:10")), window(at("14:00"), at("15:00"))]),
            TWO_BIG_NODES,
            BOTH_BUSY_UNTIL_13_30,
            policy(slot=30 * MIN),
            NOW,
            ["14:00", "15:00"],
            id="several windows are a union and the busy one is skipped",
        ),
        pytest.param(
            demand(windows=[window(at("10:07"), at("10:12"))]),
            TWO_BIG_NODES,
            [],
            policy(slot=10 * MIN),
            NOW,
            ["10:10"],
            id="a start is rounded up to the slot grid inside the window",
        ),
        pytest.param(
            demand(between=(at("09:00"), at("12:00")), preparation=10 * MIN),
            TWO_BIG_NODES,
            [],
            policy(slot=5 * MIN),
            at("10:02"),
            ["10:15", "11:15"],
            id="the start leaves the preparation time after now",
        ),
        pytest.param(
            demand(hours=1, between=(NOW, NOW + 24 * H)),
            TWO_BIG_NODES,
            [],
            policy(slot=H, horizon=2 * H),
            NOW,
            ["10:00", "11:00", "12:00"],
            id="the horizon clips the window: no start later than now plus the look-ahead",
        ),
        pytest.param(
            demand(hours=2, between=(NOW, NOW + 6 * H)),
            TWO_BIG_NODES,
            [],
            policy(slot=30 * MIN),
            NOW,
            ["10:00", "12:00", "14:00", "16:00"],
            id="offers differ usefully: starts at least one run time apart, never near-copies",
        ),
    ],
)
def test_offer_starts(
    want: Demand,
    nodes: list[NodeCapacity],
    held: list[Reservation],
    platform: PlatformPolicy,
    now: int,
    expected: list[str],
) -> None:
    assert starts(find_offers(want, platform, nodes, held, now)) == expected


def test_preparation_and_release_time_are_held_around_the_run() -> None:
    want = demand(cores=8, hours=1, preparation=10 * MIN, between=(NOW, NOW + 4 * H))
    platform = policy(slot=5 * MIN, release=2 * MIN)
    offers = find_offers(
        want, platform, [node(cores=8)], [reservation("n1", NOW - H, at("10:20"), cores=8)], NOW
    )
    first = offers[0]
    assert clock(first.prepare_start) == "10:20"  # preparation begins as soon as the node is free
    assert clock(first.start) == "10:30"
    assert clock(first.release_end) == "11:32"  # run 1 h, then 2 min of release
    assert clock(offers[1].prepare_start) >= clock(first.release_end)  # one node: no overlap


def test_a_demand_with_its_own_release_time_holds_the_node_that_long() -> None:
    want = demand(cores=8, hours=1, between=(NOW, NOW + 4 * H))
    platform = policy(slot=5 * MIN, release=2 * MIN)
    [plain, *_] = find_offers(want, platform, [node(cores=8)], [], NOW)
    assert plain.release_end - plain.start - plain.duration == 2 * MIN
    slow = dataclasses.replace(want, release=15 * MIN)  # results staged out (engine/demand.py)
    first, second, *_ = find_offers(slow, platform, [node(cores=8)], [], NOW)
    assert first.release_end - first.start - first.duration == 15 * MIN
    assert second.prepare_start >= first.release_end  # one node: no overlap


# -- resources, run times and variety ---------------------------------------------------------------


def test_resources_are_clamped_between_min_and_max_and_never_above_free() -> None:
    held = [reservation("n1", NOW - H, NOW + 9 * H, cores=20, memory_gib=200)]
    want = demand(cores=4, max_cores=64, memory_gib=8, max_memory_gib=512)
    offer = find_offers(want, policy(max_memory_gib=512), [node(cores=64, memory_gib=256)], held, NOW)[0]
    assert (offer.cores, offer.memory_gib) == (44, 56)


def test_the_platform_limits_cap_the_requested_max() -> None:
    want = demand(cores=4, max_cores=64, memory_gib=8, max_memory_gib=256)
    offer = find_offers(want, policy(max_cores=16, max_memory_gib=32), [node()], [], NOW)[0]
    assert (offer.cores, offer.memory_gib) == (16, 32)


@pytest.mark.parametrize(
    ("factor", "max_duration", "held_from", "expected"),
    [
        pytest.param(1.0, 24 * H, None, 2 * H, id="factor 1 gives exactly the requested run time"),
        pytest.param(2.0, 24 * H, None, 4 * H, id="factor 2 gives up to twice the requested run time"),
        pytest.param(2.0, 3 * H, None, 3 * H, id="the platform's run-time limit caps the factor"),
        pytest.param(2.0, 24 * H, at("13:17"), 3 * H + 17 * MIN, id="the next reservation cuts the run time"),
        pytest.param(
            2.0, 24 * H, at("12:00") + 59, 2 * H, id="beyond the minimum, run times are whole minutes"
        ),
    ],
)
def test_offered_run_time(factor: float, max_duration: int, held_from: int | None, expected: int) -> None:
    held = [reservation("n1", held_from, held_from + H, cores=64)] if held_from else []
    platform = policy(factor=factor, max_duration=max_duration)
    want = demand(cores=64, hours=2, windows=[window(NOW, NOW)])
    assert [o.duration for o in find_offers(want, platform, [node(cores=64)], held, NOW)] == [expected]


def test_the_biggest_offer_comes_when_the_earliest_one_is_small() -> None:
    # a: 12 of 16 cores held until 11:00; b: all 16 held until 12:00. Ask for 4..16 cores.
    nodes = [node("a", cores=16), node("b", cores=16)]
    held = [reservation("a", NOW - H, NOW + H, cores=12), reservation("b", NOW - H, NOW + 2 * H, cores=16)]
    offers = find_offers(demand(cores=4, max_cores=16, between=NEXT_2H), policy(), nodes, held, NOW)
    assert [(o.node, clock(o.start), o.cores) for o in offers][:2] == [("a", "10:00", 4), ("a", "11:00", 16)]


def test_when_some_node_gives_the_most_at_the_earliest_start_one_offer_is_both() -> None:
    nodes = [node("a", cores=16), node("b", cores=16)]
    held = [reservation("a", NOW - H, NOW + 9 * H, cores=12)]
    offers = find_offers(demand(cores=4, max_cores=16, between=NEXT_2H), policy(), nodes, held, NOW)
    assert (offers[0].node, clock(offers[0].start), offers[0].cores) == ("b", "10:00", 16)
    assert all(o.cores == 16 for o in offers)  # no dominated 4-core copy at 10:00


def test_the_longest_offer_comes_when_the_earliest_one_is_short() -> None:
    # Free 10-11, busy 11-13, free after: 1 h now, or 2 h (factor 2) from 13:00.
    held = [reservation("n1", NOW + H, NOW + 3 * H, cores=64)]
    offers = find_offers(demand(hours=1, between=(NOW, NOW + 6 * H)), policy(factor=2), [node()], held, NOW)
    assert [(clock(o.start), o.duration // MIN) for o in offers][:2] == [("10:00", 60), ("13:00", 120)]


def test_offers_of_one_set_never_double_book_each_other() -> None:
    # 8 of 16 cores held until 10:30. The earliest offer takes the other 8 until 11:00, so the
    # biggest (16 cores) cannot start at 10:30 any more but at 11:00.
    held = [reservation("n1", NOW - H, NOW + 30 * MIN, cores=8)]
    offers = find_offers(
        demand(cores=4, max_cores=16, between=NEXT_2H), policy(), [node(cores=16)], held, NOW
    )
    assert [(clock(o.start), o.cores) for o in offers][:2] == [("10:00", 8), ("11:00", 16)]


@pytest.mark.parametrize(
    ("asked", "allowed", "expected"),
    [
        pytest.param(2, 4, 2, id="the demand's max offers when it is smaller"),
        pytest.param(8, 3, 3, id="the policy's max offers when it is smaller"),
        pytest.param(1, 4, 1, id="a single offer (direct execution) is the earliest"),
    ],
)
def test_at_most_max_offers(asked: int, allowed: int, expected: int) -> None:
    want = demand(hours=1, between=(NOW, NOW + 12 * H), max_offers=asked)
    offers = find_offers(want, policy(max_offers=allowed), [node()], [], NOW)
    assert len(offers) == expected
    assert clock(offers[0].start) == "10:00"


def test_a_ledger_snapshot_and_plain_lists_give_the_same_offers() -> None:
    nodes = [node(f"n{i}", cores=16 * (1 + i % 3), gpus=i % 2) for i in range(6)]
    held = [reservation(f"n{i}", NOW + i * 20 * MIN, NOW + (i + 3) * 20 * MIN, cores=8 + i) for i in range(6)]
    want = demand(cores=4, max_cores=32, gpus=1, hours=2, between=(NOW, NOW + 8 * H))
    plain = find_offers(want, policy(factor=2), nodes, held, NOW)
    indexed = find_offers(want, policy(factor=2), NodeTable(nodes), Ledger(held).snapshot(), NOW)
    assert plain == indexed
    assert len(plain) == 4


def test_the_cycle_names_and_times_its_phases_only_when_given_a_timer() -> None:
    ticks = iter(range(100))
    plan = plan_offers(demand(), policy(), [node()], [], NOW, timer=lambda: float(next(ticks)))
    assert [name for name, _ in plan.phases] == ["index", "prune", "earliest", "biggest", "longest", "spread"]
    assert all(seconds == 1.0 for _, seconds in plan.phases)
    assert plan_offers(demand(), policy(), [node()], [], NOW).phases == ()


# -- NO, with a reason ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("want", "nodes", "held", "platform", "reason"),
    [
        pytest.param(
            demand(cores=128),
            [node(cores=64)],
            [],
            policy(max_cores=256),
            "no node has 128 cores (the most on one node is 64)",
            id="more cores than any node has",
        ),
        pytest.param(
            demand(cores=128),
            [node(cores=64)],
            [],
            policy(max_cores=64),
            "128 cores is more than the platform's limit of 64 cores per request",
            id="more cores than the platform allows per request",
        ),
        pytest.param(
            demand(memory_gib=300),
            [node(memory_gib=256)],
            [],
            policy(max_memory_gib=512),
            "no node has 300 GiB of memory (the most on one node is 256 GiB)",
            id="more memory than any node has",
        ),
        pytest.param(
            demand(cores=64, memory_gib=256),
            [node("a", cores=64, memory_gib=64), node("b", cores=8)],
            [],
            policy(),
            "no single node has 64 cores, 256 GiB of memory together",
            id="enough cores on one node and enough memory on another",
        ),
        pytest.param(
            demand(gpus=1, product="H100"),
            [node(gpus=4, product="A100")],
            [],
            policy(),
            "no node has GPUs of product H100 (label nvidia.com/gpu.product)",
            id="a GPU product the platform does not have",
        ),
        pytest.param(
            demand(gpus=1),
            [node()],
            [],
            policy(),
            f"no node has any {GPU}",
            id="a GPU on a platform without GPUs",
        ),
        pytest.param(
            demand(gpus=4),
            [node(gpus=2)],
            [],
            policy(),
            f"no node has 4 x {GPU} (the most on one node is 2)",
            id="more GPUs than any node has",
        ),
        pytest.param(
            demand(storage_gib=500),
            [node(storage_gib=100)],
            [],
            policy(),
            "no node has 500 GiB of scratch storage (the most on one node is 100 GiB)",
            id="more scratch storage than any node has",
        ),
        pytest.param(
            demand(selector={"pool": "gpu"}),
            [node()],
            [],
            policy(),
            "no Ready, schedulable, untainted node carries the labels pool=gpu",
            id="a node selector nothing matches",
        ),
        pytest.param(
            demand(hours=30),
            [node()],
            [],
            policy(max_duration=24 * H),
            "a run time of 30 h is more than the platform's limit of 24 h",
            id="a run time over the platform limit",
        ),
        pytest.param(
            demand(cores=8, between=NEXT_2H),
            [node(cores=8)],
            [reservation("n1", NOW - H, NOW + 9 * H, cores=1)],
            policy(),
            "no free slot in the requested start windows: no node can hold 8 cores, 1 GiB of memory for 1 h "
            "starting between 2023-08-14T10:00:00Z and 2023-08-14T12:00:00Z",
            id="the node is busy over the whole window",
        ),
        pytest.param(
            demand(between=(at("06:00"), at("09:00"))),
            [node()],
            [],
            policy(),
            "every requested start window ends before the earliest possible start "
            "(now, 2023-08-14T10:00:00Z)",
            id="a window in the past",
        ),
        pytest.param(
            demand(between=(at("10:00", day=2), at("11:00", day=2))),
            [node()],
            [],
            policy(horizon=24 * H),
            "every requested start window begins after the platform's look-ahead of 24 h "
            "(2023-08-15T10:00:00Z)",
            id="a window beyond the look-ahead",
        ),
        pytest.param(
            demand(windows=[window(at("10:31"), at("10:59"))]),
            [node()],
            [],
            policy(slot=H),
            "no slot start (every 1 h) falls inside the requested start windows",
            id="a window between two slot starts",
        ),
        pytest.param(
            demand(windows=[]),
            [node()],
            [],
            policy(),
            "the request has no start window",
            id="no window at all",
        ),
        pytest.param(
            demand(),
            [],
            [],
            policy(),
            "the platform has no nodes the broker may use",
            id="a platform without nodes",
        ),
    ],
)
def test_no_offers_and_why(
    want: Demand, nodes: list[NodeCapacity], held: list[Reservation], platform: PlatformPolicy, reason: str
) -> None:
    assert find_offers(want, platform, nodes, held, NOW) == []
    assert explain_no_offers(want, platform, nodes, held, NOW) == reason


def test_explain_no_offers_is_none_when_there_are_offers() -> None:
    assert explain_no_offers(demand(), policy(), [node()], [], NOW) is None


def test_offers_lapse_after_the_ttl_or_when_the_earliest_slot_ends() -> None:
    """A set's offers share one expiry: the platform's TTL, capped at the earliest offer's
    releaseEnd so a short session cannot be accepted after its slot is over."""
    platform = policy(slot=MIN, horizon=H)
    ttl = platform.offer_ttl_seconds
    assert ttl == 300
    short = find_offers(demand(cores=1, duration=MIN), platform, [node()], [], NOW)
    assert short, "a 1-minute session fits an empty node"
    assert offer_expiry(short, platform, NOW) == min(o.release_end for o in short) < NOW + ttl
    long = find_offers(demand(cores=1, duration=H), platform, [node()], [], NOW)
    assert offer_expiry(long, platform, NOW) == NOW + ttl
    assert offer_expiry([], platform, NOW) == NOW + ttl
