"""The offer search: from a Demand and a snapshot of the platform to a varied set of true offers.

One call is one *cycle* over an immutable snapshot (nodes, reservations, ``now``): no I/O, no
clock reads (``now`` is an argument; the optional ``timer`` only measures the phases). Phases,
named and timed in :attr:`OfferPlan.phases`:

``index``
    Find or build the node table and the per-node calendars. Free when the caller passes a
    :class:`~eb_operator.engine.nodes.NodeTable` and a
    :class:`~eb_operator.engine.ledger.LedgerSnapshot`; ``O(n log n + r log r)`` otherwise.
``prune``
    Policy limits, the start grid (requested windows intersected with ``[now + preparation,
    now + horizon]``, aligned to ``slot_seconds``), then the static node test per node *shape*
    and the label selectors (node selector, GPU product). No time work yet.
``earliest``
    E: the earliest start at which any node holds the minimum for the minimum run time.
``biggest``
    B: the most resources (cores, then memory, up to the requested max) at any start. Probed at
    the requested max first; only if no node can ever give it, a binary search on the level.
``longest``
    L: the longest run time (up to ``duration * max_duration_factor`` and the platform limit)
    at the minimum resources. Probed at the maximum first; a single full scan only if no node
    can give it.
``spread``
    Fill the remaining places with the earliest starts at least ``max(slot, duration)`` away
    from every start already chosen, so that offers are different time options, not copies.

Each chosen offer is *held* at once on a private overlay of its node's calendar, so the later
searches see it: the offers of one set never double-book each other (they all hold capacity
while OFFERED). Every offer gets, at its node and start, the most resources that fit there (up
to the requested max) and then the longest run time those resources can keep.

Cost model (``n`` nodes that pass the static test, ``m`` breakpoints of a node's calendar, ``w``
the breakpoints inside one candidate window). Every search runs in two passes. Pass 1 asks each
node only "do you fit at the first allowed start?" (two bisects and a C-level ``max`` per
checked column, nothing when the node's peaks are under the limits), visiting nodes best-fit
shape first in rounds of :data:`ROUND` per shape, and stops at the first yes: the answer is
exact and costs ``O(v * (log m + w))`` for the ``v`` nodes visited, a handful when the cluster
has room. Only if no node fits at the first start, pass 2 gives each node its earliest start by
jumping past the last failing segment of the current window (each jump skips about a window in
a busy calendar), bounded by the best start found so far: ``O(n * j * (log m + w))`` for ``j``
jumps per node. A node that does not fit at the first start is first asked its calendar's
:class:`~eb_operator.engine.calendar.FreeRuns` (``O(log m)``): one with no stretch of the needed
length under the limits anywhere in the span is dropped before pass 2. The horizon and the slot
size never cost by themselves: there is no per-slot loop. See ``docs/engine.md`` for the table
and the measurements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eb_operator.engine.ledger import LedgerSnapshot
from eb_operator.engine.nodes import NodeTable
from eb_operator.engine.reasons import limits_reason, starts_reason, static_reason, time_reason
from eb_operator.engine.search import Level, Search
from eb_operator.engine.starts import StartGrid, allowed_starts
from eb_operator.engine.types import Demand, NodeCapacity, Offer, Reservation
from eb_operator.model.platform import PlatformPolicy

Timer = Callable[[], float]

# How many more nodes a spread offer looks at for one that gives the requested max at the same
# start (the earliest and biggest offers need no such bound: their searches are exact).
UPGRADE_BUDGET = 64


@dataclass(frozen=True, slots=True)
class OfferPlan:
    """The outcome of one cycle: offers (possibly none) and, when none, why."""

    offers: tuple[Offer, ...]
    reason: str | None = None
    phases: tuple[tuple[str, float], ...] = ()  # (phase, seconds); empty unless a timer was given
    visited: int = 0  # node calendars examined: the unit of the cost model


class _Phases:
    def __init__(self, timer: Timer | None) -> None:
        self._timer = timer
        self._last = timer() if timer else 0.0
        self.done: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        if self._timer is not None:
            t = self._timer()
            self.done.append((name, t - self._last))
            self._last = t


class _Cycle(Search):
    """One offer cycle: the searches, and the choice of a varied set of offers from them."""

    def choose(self, offer: Offer, chosen: list[Offer]) -> bool:
        """Add ``offer`` to the set unless it is a near-copy; drop what it makes a near-copy.

        A near-copy starts at the same time as another offer and gives nothing more (cores,
        memory, run time). The dropped offer's hold is released; ``offer`` was found with it
        held, so it stays true.
        """
        if not self.adds_something(offer, chosen):
            return False
        for old in [o for o in chosen if o.start == offer.start]:
            if self.adds_something(old, [offer]):
                continue
            chosen.remove(old)
            self.unhold(old)
        chosen.append(offer)
        self.hold(offer)
        return True

    @staticmethod
    def adds_something(offer: Offer, chosen: Sequence[Offer]) -> bool:
        """False for a near-copy: same start as a chosen offer and nothing more of anything."""
        return not any(
            o.start == offer.start
            and offer.cores <= o.cores
            and offer.memory_gib <= o.memory_gib
            and offer.duration <= o.duration
            for o in chosen
        )

    def run(self, phases: _Phases) -> OfferPlan:
        reason = limits_reason(self)
        if reason:
            phases.mark("prune")
            return OfferPlan((), reason, tuple(phases.done), self.visited)
        starts = allowed_starts(
            self.demand.windows, self.now + self.prep, self.now + self.policy.horizon_seconds, self.slot
        )
        if not starts:
            phases.mark("prune")
            return OfferPlan((), starts_reason(self), tuple(phases.done), self.visited)
        self.prune()
        phases.mark("prune")
        if not self.shapes or (self.selected is not None and not self.selected):
            return OfferPlan((), static_reason(self), tuple(phases.done), self.visited)

        minimum = Level(self.cmin, self.mmin)
        short_tail = self.dmin + self.rel
        found = self.earliest(minimum, short_tail, starts)
        phases.mark("earliest")
        if found is None:
            reason = static_reason(self) if self.visited == 0 else time_reason(self, starts)
            return OfferPlan((), reason, tuple(phases.done), self.visited)

        chosen: list[Offer] = []
        node_e, t_e = found
        first = self.offer_at(node_e, t_e, short_tail)
        top = self.top_level()
        bigger: tuple[NodeCapacity, int] | None = None
        if (first.cores, first.memory_gib) < (top.cores, top.memory_gib):
            bigger = self.earliest(top, short_tail, starts)
            if bigger is not None and bigger[1] == t_e:
                # Some node gives the most at the earliest start too: one offer is both.
                first = self.offer_at(bigger[0], t_e, short_tail)
                bigger = None
        self.choose(first, chosen)

        if len(chosen) < self.n_offers and (first.cores, first.memory_gib) < (top.cores, top.memory_gib):
            if bigger is not None and bigger[0].name == first.node:
                bigger = self.earliest(top, short_tail, starts)  # re-check against the held offer
            if bigger is None:
                level = self.biggest_level(Level(first.cores, first.memory_gib), top, starts)
                if (level.cores, level.memory_gib) > (first.cores, first.memory_gib):
                    bigger = self.earliest(level, short_tail, starts)
            if bigger is not None:
                offer = self.offer_at(bigger[0], bigger[1], short_tail)
                self.choose(offer, chosen)
        phases.mark("biggest")

        if len(chosen) < self.n_offers and max(o.duration for o in chosen) < self.dmax:
            # Probe for the maximum run time first; scan for the longest only if nobody has it.
            probe = self.earliest(minimum, self.dmax + self.rel, starts)
            pick = (probe[0], probe[1], self.dmax) if probe is not None else self.longest(minimum, starts)
            if pick is not None and pick[2] > max(o.duration for o in chosen):
                offer = self.offer_at(pick[0], pick[1], pick[2] + self.rel)
                self.choose(offer, chosen)
        phases.mark("longest")

        sep = max(self.slot, self.dmin)
        spread = starts
        for o in chosen:
            spread = spread.without(o.start - sep + 1, o.start + sep - 1)
        while len(chosen) < self.n_offers and spread:
            found = self.earliest(minimum, short_tail, spread)
            if found is None:
                break
            offer = self.offer_at(found[0], found[1], short_tail)
            if (offer.cores, offer.memory_gib) < (top.cores, top.memory_gib):
                # Another node may give the most at the same start: look a little further.
                at_start = StartGrid(self.slot, [(offer.start, offer.start)])
                upgrade = self.earliest(top, short_tail, at_start, any_fit=True, budget=UPGRADE_BUDGET)
                if upgrade is not None:
                    offer = self.offer_at(upgrade[0], offer.start, short_tail)
            self.choose(offer, chosen)
            spread = spread.without(offer.start - sep + 1, offer.start + sep - 1)
        phases.mark("spread")

        chosen.sort(key=lambda o: (o.start, -o.cores, -o.memory_gib, -o.duration, o.node))
        return OfferPlan(tuple(chosen), None, tuple(phases.done), self.visited)


def plan_offers(
    demand: Demand,
    policy: PlatformPolicy,
    nodes: Sequence[NodeCapacity],
    reservations: Sequence[Reservation],
    now: int,
    *,
    timer: Timer | None = None,
    deadline: float | None = None,
) -> OfferPlan:
    """One offer cycle: the offers for ``demand`` and, when there are none, the reason.

    ``nodes`` and ``reservations`` may be plain sequences; pass a
    :class:`~eb_operator.engine.nodes.NodeTable` and a
    :class:`~eb_operator.engine.ledger.LedgerSnapshot` to skip the ``index`` phase. Only
    reservations in ``HOLDING_PHASES`` count. ``timer`` (e.g. ``time.perf_counter``) only
    measures the phases and, with a ``deadline`` (an instant of ``timer``), bounds the search:
    :class:`~eb_operator.engine.search.SearchOverrun` once it passes it (looked at every 64 node
    visits), so a caller can stop a long search and run it again elsewhere. The engine never
    reads a clock otherwise, and never for ``now``.
    """
    if deadline is not None and timer is None:
        raise ValueError("a deadline needs the timer it is an instant of")
    phases = _Phases(timer)
    table = NodeTable.of(nodes)
    book = LedgerSnapshot.of(reservations)
    phases.mark("index")
    bound = (timer, deadline) if timer is not None and deadline is not None else None
    return _Cycle(demand, policy, table, book, now, bound).run(phases)


def find_offers(
    demand: Demand,
    policy: PlatformPolicy,
    nodes: Sequence[NodeCapacity],
    reservations: Sequence[Reservation],
    now: int,
) -> list[Offer]:
    """The offers for ``demand`` (digest §5), earliest first; empty when there are none.

    Every offer starts on the slot grid inside a requested window, no earlier than ``now +
    preparation`` and no later than ``now + horizon``; holds its node from ``start -
    preparation`` to ``start + duration + release``; meets every minimum, stays within the
    requested maxima, the policy limits and what is free; and fits on one node together with
    every holding reservation and every other offer of the same set.
    """
    return list(plan_offers(demand, policy, nodes, reservations, now).offers)


def explain_no_offers(
    demand: Demand,
    policy: PlatformPolicy,
    nodes: Sequence[NodeCapacity],
    reservations: Sequence[Reservation],
    now: int,
) -> str | None:
    """Why :func:`find_offers` finds nothing, as a sentence for a NO; None when it finds offers."""
    return plan_offers(demand, policy, nodes, reservations, now).reason


def offer_expiry(offers: Sequence[Offer], policy: PlatformPolicy, now: int) -> int:
    """When the offers of one set lapse (they share one ``expires``, digest §5): after the
    platform's time-to-live, but never after the earliest offer's reservation has ended. A short
    session offered now would otherwise stay acceptable after its slot was over."""
    expires = now + policy.offer_ttl_seconds
    return min([expires, *(o.release_end for o in offers)])
