"""The reservation ledger and its snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.builders import GPU, in_phase, reservation

from eb_operator.engine import Ledger, LedgerSnapshot, NodeUsage
from eb_operator.engine.types import Phase

pytestmark = pytest.mark.unit


def test_add_remove_and_replace_by_key() -> None:
    ledger = Ledger()
    r = reservation("n1", 0, 10, key="ns/a")
    ledger.add(r)
    with pytest.raises(KeyError):
        ledger.add(r)
    moved = reservation("n2", 5, 15, key="ns/a")
    ledger.replace(moved)
    assert ledger.get("ns/a") == moved
    assert ledger.on_node("n1") == []
    assert ledger.remove("ns/a") == moved
    assert ledger.remove("ns/a") is None
    with pytest.raises(KeyError):
        ledger.replace(moved)
    assert len(ledger) == 0


@pytest.mark.parametrize(
    "phase",
    [Phase.REJECTED, Phase.EXPIRED, Phase.COMPLETED, Phase.FAILED, Phase.CANCELLED, Phase.PROPOSED],
    ids=lambda p: f"an upsert to {p} releases the reservation",
)
def test_phases_that_hold_nothing_leave_the_ledger(phase: Phase) -> None:
    ledger = Ledger([reservation("n1", 0, 10, key="ns/a", phase=Phase.OFFERED)])
    ledger.upsert(in_phase(ledger.get("ns/a") or reservation(), phase))
    assert "ns/a" not in ledger
    assert len(ledger.snapshot()) == 0


def test_query_by_node_and_time() -> None:
    a = reservation("n1", 0, 10, key="ns/a")
    b = reservation("n1", 10, 20, key="ns/b")
    c = reservation("n2", 5, 15, key="ns/c")
    ledger = Ledger([b, c, a])
    assert ledger.on_node("n1") == [a, b]
    assert ledger.on_node("n1", 9, 10) == [a]
    assert ledger.on_node("n1", 10, 11) == [b]
    assert ledger.on_node("n3") == []
    snap = ledger.snapshot()
    assert snap.on_node("n1", 9, 10) == (a,)
    assert list(snap) == [a, b, c]
    assert snap[2] == c


def test_a_snapshot_does_not_change_when_the_ledger_does() -> None:
    ledger = Ledger([reservation("n1", 0, 10, cores=2, key="ns/a")])
    before = ledger.snapshot()
    ledger.add(reservation("n1", 0, 10, cores=3, key="ns/b"))
    ledger.remove("ns/a")
    after = ledger.snapshot()
    assert before.usage("n1").cpu == (0, 2000, 0)
    assert after.usage("n1").cpu == (0, 3000, 0)
    assert len(before) == 1
    assert len(after) == 1


def test_an_unchanged_ledger_gives_the_same_snapshot_and_only_touched_nodes_are_rebuilt() -> None:
    ledger = Ledger([reservation("n1", 0, 10, key="ns/a"), reservation("n2", 0, 10, key="ns/b")])
    first = ledger.snapshot()
    assert ledger.snapshot() is first
    ledger.add(reservation("n1", 20, 30, key="ns/c"))
    second = ledger.snapshot()
    assert second is not first
    assert second.usage("n2") is first.usage("n2")
    assert second.usage("n1") is not first.usage("n1")


def test_a_plain_list_is_indexed_like_a_ledger() -> None:
    held = [reservation("n1", 0, 10, cores=2), reservation("n1", 5, 15, cores=1, phase=Phase.EXPIRED)]
    snap = LedgerSnapshot.of(held)
    assert len(snap) == 1
    assert snap.usage("n1").cpu == (0, 2000, 0)
    assert LedgerSnapshot.of(snap) is snap


def test_offers_of_one_group_can_be_listed() -> None:
    ledger = Ledger(
        [reservation("n1", 0, 10, key="ns/a-1", group="a"), reservation("n1", 0, 10, key="ns/b-0", group="b")]
    )
    assert [r.key for r in ledger.in_group("a")] == ["ns/a-1"]


def held_by_step(usage: NodeUsage, t: int) -> tuple[int, ...]:
    """What the calendar holds at instant ``t``, read point by point (cpu, mem, eph, gpus)."""
    peak = usage.peak(t, t + 1)
    return (peak.cpu_millis, peak.memory_bytes, peak.ephemeral_bytes, peak.gpus.get(GPU, 0))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["upsert", "upsert", "load", "remove", "final", "snapshot"]),
            st.integers(0, 7),  # key
            st.sampled_from(["n1", "n2"]),
            st.integers(0, 20),  # start
            st.integers(1, 10),  # length
            st.integers(0, 4),  # cores
            st.integers(0, 1),  # gpus
        ),
        max_size=60,
    )
)
def test_incremental_snapshots_equal_a_fresh_index_of_the_same_reservations(
    ops: list[tuple[str, int, str, int, int, int, int]],
) -> None:
    ledger = Ledger()
    for action, k, where, start, length, cores, gpus in ops:
        key = f"ns/r{k}"
        if action == "upsert":
            ledger.upsert(reservation(where, start, start + length, cores=cores, gpus=gpus, key=key))
        elif action == "load":
            ledger.load([reservation(where, start, start + length, cores=cores, gpus=gpus, key=key)])
        elif action == "remove":
            ledger.remove(key)
        elif action == "final":
            ledger.upsert(reservation(where, start, start + length, key=key, phase=Phase.COMPLETED))
        else:
            ledger.snapshot()
    incremental = ledger.snapshot()
    fresh = LedgerSnapshot.of(list(ledger))
    assert sorted(r.key for r in incremental) == sorted(r.key for r in ledger)
    for where in ("n1", "n2"):
        for t in range(-1, 32):
            assert held_by_step(incremental.usage(where), t) == held_by_step(fresh.usage(where), t)
