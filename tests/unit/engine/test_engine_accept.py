"""check_accept: the exact re-validation at accept time."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.builders import GPU, at, node, reservation

from eb_operator.engine import Ledger, NodeTable, check_accept
from eb_operator.engine.types import NodeCapacity, Phase, Reservation

pytestmark = pytest.mark.unit

NOW = at("09:00")
NODES = [node("n1", cores=16, memory_gib=64, gpus=1)]
MINE = reservation("n1", at("10:00"), at("12:00"), cores=8, key="ns/set-0", group="set", phase=Phase.OFFERED)


def sibling(cores: int, phase: Phase = Phase.OFFERED) -> Reservation:
    return reservation("n1", at("11:00"), at("13:00"), cores=cores, key="ns/set-1", group="set", phase=phase)


@pytest.mark.parametrize(
    ("others", "kwargs", "expected"),
    [
        pytest.param([], {}, None, id="alone on its node it fits"),
        pytest.param([MINE], {}, None, id="the candidate does not count against itself"),
        pytest.param(
            [reservation("n1", at("11:00"), at("13:00"), cores=8)], {}, None, id="exactly full is fine"
        ),
        pytest.param(
            [reservation("n1", at("11:00"), at("13:00"), cores=9)],
            {},
            "node n1 no longer has 8 cores free at 2023-08-14T11:00:00Z: "
            "9 cores of 16 cores are held by other reservations",
            id="an overlapping reservation that leaves too little",
        ),
        pytest.param(
            [reservation("n1", at("12:00"), at("13:00"), cores=16)],
            {},
            None,
            id="a reservation that starts as it ends",
        ),
        pytest.param(
            [reservation("n2", at("10:00"), at("12:00"), cores=16)],
            {},
            None,
            id="a reservation on another node",
        ),
        pytest.param(
            [reservation("n1", at("10:00"), at("12:00"), cores=16, phase=Phase.EXPIRED)],
            {},
            None,
            id="an expired offer holds nothing",
        ),
        pytest.param(
            [sibling(16)],
            {"ignore_group": "set"},
            None,
            id="offered siblings that the same step rejects are ignored with ignore_group",
        ),
        pytest.param(
            [sibling(16, Phase.ACCEPTED)],
            {"ignore_group": "set"},
            "node n1 no longer has 8 cores free at 2023-08-14T11:00:00Z: "
            "16 cores of 16 cores are held by other reservations",
            id="an accepted sibling is never ignored",
        ),
        pytest.param(
            [sibling(16)], {}, "node n1 no longer has 8 cores free", id="siblings count unless ignored"
        ),
        pytest.param(
            [reservation("n1", at("10:00"), at("12:00"), cores=16, key="ns/other")],
            {"ignore_keys": {"ns/other"}},
            None,
            id="ignore_keys leaves out named reservations",
        ),
        pytest.param(
            [reservation("n1", at("10:00"), at("12:00"), cores=1, memory_gib=60)],
            {},
            None,
            id="memory only counts what the candidate asks",
        ),
    ],
)
def test_check_accept(others: list[Reservation], kwargs: dict[str, Any], expected: str | None) -> None:
    result = check_accept(MINE, NODES, others, NOW, **kwargs)
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert result.startswith(expected)


@pytest.mark.parametrize(
    ("candidate", "nodes", "now", "expected"),
    [
        pytest.param(
            MINE, [node("n2")], NOW, "node n1 is no longer available to the broker", id="the node is gone"
        ),
        pytest.param(
            MINE, NODES, at("12:00"), "the slot of ns/set-0 ended at 2023-08-14T12:00:00Z", id="too late"
        ),
        pytest.param(
            reservation("n1", at("10:00"), at("12:00"), cores=32, key="ns/big"),
            NODES,
            NOW,
            "node n1 has 16 cores in all, the reservation needs 32 cores",
            id="the node shrank below the candidate",
        ),
        pytest.param(
            reservation("n1", at("10:00"), at("10:00"), key="ns/empty"),
            NODES,
            NOW,
            "reservation ns/empty has an empty time span",
            id="an empty span",
        ),
    ],
)
def test_check_accept_refuses(
    candidate: Reservation, nodes: list[NodeCapacity], now: int, expected: str
) -> None:
    assert check_accept(candidate, nodes, [], now) == expected


def test_a_held_gpu_blocks_the_accept_of_another_gpu_reservation() -> None:
    mine = reservation("n1", at("10:00"), at("12:00"), gpus=1, key="ns/mine")
    theirs = reservation("n1", at("11:59"), at("13:00"), gpus=1, key="ns/theirs")
    assert check_accept(mine, NODES, [theirs], NOW) == (
        f"node n1 no longer has 1 x {GPU} free at 2023-08-14T11:59:00Z: "
        f"1 x {GPU} of 1 x {GPU} are held by other reservations"
    )


def test_the_ledger_snapshot_and_node_table_give_the_same_answers() -> None:
    others = [reservation("n1", at("11:00"), at("13:00"), cores=9), sibling(16)]
    plain = check_accept(MINE, NODES, others, NOW, ignore_group="set")
    indexed = check_accept(MINE, NodeTable(NODES), Ledger(others).snapshot(), NOW, ignore_group="set")
    assert plain == indexed
    assert plain == (
        "node n1 no longer has 8 cores free at 2023-08-14T11:00:00Z: "
        "9 cores of 16 cores are held by other reservations"
    )
