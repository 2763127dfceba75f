"""The talk's seed scenario (digest §5.3) as a test, step by step, with exact starts.

A 64-core platform (one 64-core node with one GPU) cut into 2-hour slots S1 10:00 ... S5 18:00
(now is 10:00, the look-ahead is 8 h so 18:00 is the last start). Run times are exact (factor
1), nothing is reserved for preparation or release, so a 4-hour run fills two slots exactly.
R1 and R2 ask for two offers each, as in the walk-through; R3 takes the default.
"""

from __future__ import annotations

import pytest
from tests.support.builders import H, at, demand, in_phase, node, offered, policy, starts

from eb_operator.engine import Ledger, check_accept, find_offers
from eb_operator.engine.types import Demand, Phase

pytestmark = pytest.mark.unit

PLATFORM = policy(slot=2 * H, horizon=8 * H)
NODES = [node("n1", cores=64, memory_gib=256, gpus=1)]
NOW = at("10:00")
SLOTS = (at("10:00"), at("18:00"))

R1 = demand(cores=32, gpus=1, hours=4, between=SLOTS, max_offers=2)
R2 = demand(cores=16, hours=2, between=SLOTS, max_offers=2)
R3 = demand(cores=32, gpus=1, hours=2, between=SLOTS)


def ask(ledger: Ledger, want: Demand, group: str) -> list[str]:
    """Make an offer set and record its offers as OFFERED, as the operator does."""
    offers = find_offers(want, PLATFORM, NODES, ledger.snapshot(), NOW)
    for i, offer in enumerate(offers):
        ledger.add(offered(offer, group=group, index=i))
    return starts(offers)


def test_the_seed_scenario_step_by_step() -> None:
    ledger = Ledger()
    # Step 1: an empty platform. A1 takes S1-S2; the GPU is then busy until 14:00, so A2 is S3-S4.
    assert ask(ledger, R1, "a") == ["10:00", "14:00"]
    # Step 2: A1/A2 hold 32 cores in S1-S4, so 32 are free: B1 in S1 and B2 in S2.
    assert ask(ledger, R2, "b") == ["10:00", "12:00"]
    # Step 3: the GPU is held by A1 or A2 in S1-S4: only S5 is left.
    assert ask(ledger, R3, "c") == ["18:00"]
    # Step 4: the client of R1 accepts A1; A2 is rejected in the same step and released.
    a1 = ledger.get("ns/a-0")
    assert a1 is not None
    assert check_accept(a1, NODES, ledger.snapshot(), NOW, ignore_group="a") is None
    ledger.upsert(in_phase(a1, Phase.ACCEPTED))
    ledger.upsert(in_phase(ledger.get("ns/a-1") or a1, Phase.REJECTED))
    # A new R3 now gets S3 and S4 (C1 still holds the GPU in S5).
    assert ask(ledger, R3, "d") == ["14:00", "16:00"]


def test_the_offers_of_the_seed_scenario_hold_what_was_asked() -> None:
    ledger = Ledger()
    ask(ledger, R1, "a")
    held = ledger.on_node("n1")
    assert [(r.start, r.end) for r in held] == [(at("10:00"), at("14:00")), (at("14:00"), at("18:00"))]
    assert all(r.resources.cpu_millis == 32_000 and r.resources.gpus == {"nvidia.com/gpu": 1} for r in held)


def test_step_4_without_releasing_a2_gives_a_new_r3_nothing_before_s5() -> None:
    ledger = Ledger()
    ask(ledger, R1, "a")
    ask(ledger, R2, "b")
    ask(ledger, R3, "c")
    # Nobody accepted or released anything: the GPU is held in every slot.
    assert ask(ledger, R3, "d") == []
