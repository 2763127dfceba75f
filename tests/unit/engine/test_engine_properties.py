"""Property tests: random platforms, reservations and demands, checked by a naive checker.

The checker here is deliberately independent of the engine: it never uses the calendar, the
ledger's index or the engine's search. It sums, at every instant where something starts, the
reservations that cover that instant, straight from the list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.builders import GPU, MIN, PRODUCT_LABEL, TEST_DAY, H, offered

from eb_operator.engine import Ledger, check_accept, find_offers, plan_offers
from eb_operator.engine.types import (
    GIB,
    HOLDING_PHASES,
    Demand,
    GpuDemand,
    NodeCapacity,
    Offer,
    Phase,
    Reservation,
    Resources,
    Window,
)
from eb_operator.model.platform import PlatformPolicy, RequestLimits

pytestmark = pytest.mark.unit

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NOW = TEST_DAY + 10 * H
PRODUCTS = [None, "A100", "T4"]

# -- the independent checker ---------------------------------------------------------------------


def _columns(res: Resources) -> dict[str, int]:
    cols = {"cpu": res.cpu_millis, "memory": res.memory_bytes, "ephemeral": res.ephemeral_bytes}
    for name, count in res.gpus.items():
        cols[f"gpu:{name}"] = count
    return cols


def held_at(t: int, node: str, spans: Iterable[tuple[str, int, int, Resources]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for where, start, end, res in spans:
        if where == node and start <= t < end:
            for k, v in _columns(res).items():
                total[k] = total.get(k, 0) + v
    return total


def overbooked(
    nodes: Sequence[NodeCapacity],
    spans: Sequence[tuple[str, int, int, Resources]],
    only: Sequence[int] | None = None,
) -> list[str]:
    """Every (node, instant, resource) where the spans hold more than the node has free.

    ``only`` restricts the check to the spans with those indices (and the columns they use):
    the instants inside them, the resources they ask for.
    """
    problems = []
    free = {n.name: _columns(n.free) for n in nodes}
    watched = [spans[i] for i in only] if only is not None else list(spans)
    for where, start, end, res in watched:
        used = {k for k, v in _columns(res).items() if v > 0}
        instants = {start} | {s for w, s, _, _ in spans if w == where and start < s < end}
        for t in sorted(instants):
            total = held_at(t, where, spans)
            for k in used:
                if total.get(k, 0) > free[where].get(k, 0):
                    problems.append(f"{where} at {t}: {k} {total[k]} > {free[where].get(k, 0)}")
    return problems


def spans_of(reservations: Iterable[Reservation]) -> list[tuple[str, int, int, Resources]]:
    return [(r.node, r.start, r.end, r.resources) for r in reservations if r.phase in HOLDING_PHASES]


def offer_span(o: Offer) -> tuple[str, int, int, Resources]:
    return (o.node, o.prepare_start, o.release_end, o.reservation_resources())


def node_allowed(n: NodeCapacity, want: Demand, platform: PlatformPolicy) -> bool:
    selector = {**platform.node_selector, **want.node_selector}
    if want.gpu is not None and want.gpu.count > 0 and want.gpu.product:
        selector[want.gpu.product_label] = want.gpu.product
    return all(n.labels.get(k) == v for k, v in selector.items())


def naive_earliest(
    want: Demand,
    platform: PlatformPolicy,
    nodes: Sequence[NodeCapacity],
    held: Sequence[Reservation],
    now: int,
) -> int | None:
    """Every slot start x every node x every reservation: the earliest start of the minimum."""
    lim = platform.limits
    gpus = want.gpu.count if want.gpu else 0
    if (
        want.cores_min > lim.max_cores
        or want.memory_min_gib > lim.max_memory_gib
        or gpus > lim.max_gpus
        or want.storage_gib > lim.max_storage_gib
        or want.duration > lim.max_duration_seconds
    ):
        return None
    slot = platform.slot_seconds
    need = Resources(
        cpu_millis=want.cores_min * 1000,
        memory_bytes=want.memory_min_gib * GIB,
        ephemeral_bytes=want.storage_gib * GIB,
        gpus={want.gpu.resource_name: want.gpu.count} if want.gpu and want.gpu.count else {},
    )
    spans = spans_of(held)
    tail = want.duration + platform.release_seconds
    candidates = sorted(
        t
        for w in want.windows
        for t in range(-(-w.start // slot) * slot, w.end + 1, slot)
        if t - want.preparation >= now and t <= now + platform.horizon_seconds
    )
    for t in candidates:
        for n in nodes:
            if not node_allowed(n, want, platform):
                continue
            probe = (n.name, t - want.preparation, t + tail, need)
            if not overbooked(nodes, [*spans, probe], only=[len(spans)]):
                return t
    return None


# -- strategies ------------------------------------------------------------------------------------


@st.composite
def platforms(draw: st.DrawFn) -> PlatformPolicy:
    slot = draw(st.sampled_from([5 * MIN, 15 * MIN, 30 * MIN, H]))
    return PlatformPolicy(
        slot_seconds=slot,
        horizon_seconds=draw(st.integers(1, 24)) * H,
        max_duration_factor=draw(st.sampled_from([1.0, 1.5, 2.0, 4.0])),
        release_seconds=draw(st.sampled_from([0, 60, 5 * MIN])),
        max_offers=draw(st.integers(1, 6)),
        limits=RequestLimits(
            max_cores=draw(st.integers(4, 64)), max_duration_seconds=draw(st.sampled_from([6 * H, 24 * H]))
        ),
    )


@st.composite
def node_lists(draw: st.DrawFn) -> list[NodeCapacity]:
    count = draw(st.integers(1, 4))
    nodes = []
    for i in range(count):
        gpus = draw(st.integers(0, 2))
        product = draw(st.sampled_from(PRODUCTS)) if gpus else None
        labels = {"zone": draw(st.sampled_from(["a", "b"]))}
        if product:
            labels[PRODUCT_LABEL] = product
        nodes.append(
            NodeCapacity(
                name=f"n{i}",
                free=Resources(
                    cpu_millis=draw(st.integers(1, 32)) * 500,
                    memory_bytes=draw(st.integers(1, 32)) * GIB // 2,
                    ephemeral_bytes=draw(st.integers(0, 40)) * GIB,
                    gpus={GPU: gpus} if gpus else {},
                ),
                labels=labels,
            )
        )
    return nodes


@st.composite
def reservation_lists(draw: st.DrawFn, nodes: Sequence[NodeCapacity]) -> list[Reservation]:
    out = []
    for i in range(draw(st.integers(0, 10))):
        n = draw(st.sampled_from(list(nodes)))
        start = NOW + draw(st.integers(-4 * 12, 28 * 12)) * 5 * MIN + draw(st.sampled_from([0, 0, 17]))
        gpus = draw(st.integers(0, 1))
        out.append(
            Reservation(
                key=f"ns/held-{i}",
                node=n.name,
                start=start,
                end=start + draw(st.integers(1, 96)) * 5 * MIN,
                resources=Resources(
                    cpu_millis=draw(st.integers(0, 16)) * 500,
                    memory_bytes=draw(st.integers(0, 16)) * GIB // 2,
                    ephemeral_bytes=draw(st.integers(0, 10)) * GIB,
                    gpus={GPU: gpus} if gpus else {},
                ),
                phase=draw(st.sampled_from(list(Phase))),
            )
        )
    return out


@st.composite
def demands(draw: st.DrawFn) -> Demand:
    cores = draw(st.integers(1, 8))
    memory = draw(st.integers(0, 8))
    windows = []
    for _ in range(draw(st.integers(1, 3))):
        start = NOW + draw(st.integers(-12, 26 * 6)) * 10 * MIN + draw(st.sampled_from([0, 0, 7 * MIN]))
        windows.append(Window(start, start + draw(st.integers(0, 8 * 6)) * 10 * MIN))
    gpus = draw(st.integers(0, 2))
    return Demand(
        cores_min=cores,
        cores_max=cores + draw(st.integers(0, 8)),
        memory_min_gib=memory,
        memory_max_gib=memory + draw(st.integers(0, 8)),
        duration=draw(st.integers(1, 36)) * 10 * MIN + draw(st.sampled_from([0, 0, 1])),
        windows=tuple(windows),
        gpu=GpuDemand(gpus, GPU, draw(st.sampled_from(PRODUCTS))) if gpus else None,
        storage_gib=draw(st.sampled_from([0, 0, 5, 20])),
        preparation=draw(st.sampled_from([0, 0, 30, 10 * MIN, H])),
        node_selector=draw(st.sampled_from([{}, {}, {"zone": "a"}])),
        max_offers=draw(st.integers(1, 6)),
    )


# -- properties ------------------------------------------------------------------------------------


def assert_offer_is_true(
    offer: Offer, want: Demand, platform: PlatformPolicy, nodes: Sequence[NodeCapacity]
) -> None:
    limits = platform.limits
    assert want.cores_min <= offer.cores <= min(max(want.cores_max, want.cores_min), limits.max_cores)
    assert want.memory_min_gib <= offer.memory_gib <= max(want.memory_max_gib, want.memory_min_gib)
    assert offer.start % platform.slot_seconds == 0
    assert any(w.start <= offer.start <= w.end for w in want.windows)
    assert offer.start - want.preparation >= NOW
    assert offer.start <= NOW + platform.horizon_seconds
    assert offer.prepare_start == offer.start - want.preparation
    assert offer.release_end == offer.start + offer.duration + platform.release_seconds
    assert want.duration <= offer.duration
    assert offer.duration <= max(
        want.duration, min(int(want.duration * platform.max_duration_factor), limits.max_duration_seconds)
    )
    assert offer.storage_gib == want.storage_gib
    if want.gpu is not None:
        assert (offer.gpus, offer.gpu_resource) == (want.gpu.count, want.gpu.resource_name)
    else:
        assert offer.gpus == 0
    placed = next(n for n in nodes if n.name == offer.node)
    assert node_allowed(placed, want, platform)


@SETTINGS
@given(data=st.data(), platform=platforms(), nodes=node_lists(), want=demands())
def test_every_offer_is_true_and_the_set_fits_on_its_nodes(
    data: st.DataObject, platform: PlatformPolicy, nodes: list[NodeCapacity], want: Demand
) -> None:
    held = data.draw(reservation_lists(nodes))
    plan = plan_offers(want, platform, nodes, held, NOW)
    offers = list(plan.offers)
    assert len(offers) <= min(want.max_offers, platform.max_offers)
    if not offers:
        assert plan.reason
    for offer in offers:
        assert_offer_is_true(offer, want, platform, nodes)
    # One set holds all its offers at once: together with every holding reservation, no
    # resource an offer asks for is ever over what its node has free during the offer.
    spans = spans_of(held)
    offer_spans = [offer_span(o) for o in offers]
    assert overbooked(nodes, [*spans, *offer_spans], only=range(len(spans), len(spans) + len(offers))) == []
    # No near-copies: two offers at the same start differ in what they give, neither is
    # simply less of the other.
    for i, a in enumerate(offers):
        for b in offers[i + 1 :]:
            if a.start == b.start:
                assert not (a.cores <= b.cores and a.memory_gib <= b.memory_gib and a.duration <= b.duration)
                assert not (b.cores <= a.cores and b.memory_gib <= a.memory_gib and b.duration <= a.duration)


@SETTINGS
@given(data=st.data(), platform=platforms(), nodes=node_lists(), want=demands())
def test_the_first_offer_is_the_earliest_start_a_brute_force_scan_finds(
    data: st.DataObject, platform: PlatformPolicy, nodes: list[NodeCapacity], want: Demand
) -> None:
    held = data.draw(reservation_lists(nodes))
    offers = find_offers(want, platform, nodes, held, NOW)
    expected = naive_earliest(want, platform, nodes, held, NOW)
    assert (offers[0].start if offers else None) == expected


@st.composite
def sessions(draw: st.DrawFn) -> list[tuple[str, int]]:
    """A random sequence of client actions: (action, a number used to pick a target)."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(["request", "request", "accept", "reject", "expire", "finish"]),
                st.integers(0, 99),
            ),
            min_size=1,
            max_size=25,
        )
    )


@SETTINGS
@given(data=st.data(), platform=platforms(), nodes=node_lists(), actions=sessions())
def test_request_accept_reject_expire_never_overbooks_a_node(
    data: st.DataObject, platform: PlatformPolicy, nodes: list[NodeCapacity], actions: list[tuple[str, int]]
) -> None:
    ledger = Ledger()
    groups: list[str] = []
    for step, (action, pick) in enumerate(actions):
        offered_now = [r for r in ledger if r.phase == Phase.OFFERED]
        if action == "request":
            want = data.draw(demands())
            group = f"g{step}"
            for i, offer in enumerate(find_offers(want, platform, nodes, ledger.snapshot(), NOW)):
                ledger.add(offered(offer, group=group, index=i))
            groups.append(group)
        elif action == "accept" and offered_now:
            chosen = offered_now[pick % len(offered_now)]
            siblings = [r for r in offered_now if r.group == chosen.group and r.key != chosen.key]
            # The offer was true when made and everything since was placed around it.
            assert check_accept(chosen, nodes, ledger.snapshot(), NOW, ignore_group=chosen.group) is None
            ledger.upsert(dataclasses.replace(chosen, phase=Phase.ACCEPTED))
            for s in siblings:
                ledger.upsert(dataclasses.replace(s, phase=Phase.REJECTED))
        elif action == "reject" and offered_now:
            chosen = offered_now[pick % len(offered_now)]
            ledger.upsert(dataclasses.replace(chosen, phase=Phase.REJECTED))
        elif action == "expire" and groups:
            group = groups[pick % len(groups)]
            for r in ledger.in_group(group):
                if r.phase == Phase.OFFERED:
                    ledger.upsert(dataclasses.replace(r, phase=Phase.EXPIRED))
        elif action == "finish":
            running = [r for r in ledger if r.phase == Phase.ACCEPTED]
            if running:
                ledger.upsert(dataclasses.replace(running[pick % len(running)], phase=Phase.COMPLETED))
        # At every instant, on every node, what is held fits in what is free.
        assert overbooked(nodes, spans_of(ledger)) == []
