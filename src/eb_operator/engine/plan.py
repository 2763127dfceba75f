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
jumps per node. The horizon and the slot size never cost by themselves: there is no per-slot
loop. See ``docs/engine.md`` for the table and the measurements.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from eb_operator.engine.calendar import Check, NodeUsage, iter_free_runs, last_violation, run_end, span_fits
from eb_operator.engine.ledger import LedgerSnapshot
from eb_operator.engine.nodes import NodeTable, Shape
from eb_operator.engine.types import GIB, Demand, NodeCapacity, Offer, Phase, Reservation
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.times import format_instant

Timer = Callable[[], float]

# How many more nodes a spread offer looks at for one that gives the requested max at the same
# start (the earliest and biggest offers need no such bound: their searches are exact).
UPGRADE_BUDGET = 64
# Nodes taken from each shape per round of a search (see _Cycle._pass_order).
ROUND = 32


@dataclass(frozen=True, slots=True)
class OfferPlan:
    """The outcome of one cycle: offers (possibly none) and, when none, why."""

    offers: tuple[Offer, ...]
    reason: str | None = None
    phases: tuple[tuple[str, float], ...] = ()  # (phase, seconds); empty unless a timer was given
    visited: int = 0  # node calendars examined: the unit of the cost model


@dataclass(frozen=True, slots=True)
class _Level:
    """Cores and memory a search asks for; GPUs and scratch are fixed by the demand."""

    cores: int
    memory_gib: int


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


class _Starts:
    """Allowed offer starts: disjoint, sorted, slot-aligned inclusive intervals."""

    __slots__ = ("his", "los", "slot")

    def __init__(self, slot: int, intervals: Sequence[tuple[int, int]]) -> None:
        self.slot = slot
        self.los = [lo for lo, _ in intervals]
        self.his = [hi for _, hi in intervals]

    def __bool__(self) -> bool:
        return bool(self.los)

    @property
    def first(self) -> int:
        return self.los[0]

    @property
    def last(self) -> int:
        return self.his[-1]

    def earliest_in(self, x: int, y: int) -> int | None:
        """The earliest allowed start in ``[x, y]``."""
        x = -(-x // self.slot) * self.slot
        i = bisect_left(self.his, x)
        if i == len(self.his):
            return None
        t = max(x, self.los[i])
        return t if t <= y else None

    def without(self, lo_ex: int, hi_ex: int) -> _Starts:
        """These starts minus every start in ``[lo_ex, hi_ex]``."""
        slot = self.slot
        kept: list[tuple[int, int]] = []
        for lo, hi in zip(self.los, self.his, strict=True):
            if hi < lo_ex or lo > hi_ex:
                kept.append((lo, hi))
                continue
            left = ((lo_ex - 1) // slot) * slot
            if left >= lo:
                kept.append((lo, left))
            right = -(-(hi_ex + 1) // slot) * slot
            if right <= hi:
                kept.append((right, hi))
        return _Starts(slot, kept)


def _align_up(t: int, slot: int) -> int:
    return -(-t // slot) * slot


def _hours(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


class _Cycle:
    """One offer search over one snapshot. Private: use :func:`plan_offers`."""

    def __init__(
        self,
        demand: Demand,
        policy: PlatformPolicy,
        table: NodeTable,
        book: LedgerSnapshot,
        now: int,
    ) -> None:
        self.demand = demand
        self.policy = policy
        self.table = table
        self.book = book
        self.now = now
        limits = policy.limits
        self.slot = policy.slot_seconds
        self.prep = max(0, demand.preparation)
        self.rel = policy.release_seconds
        self.cmin = demand.cores_min
        self.cmax = min(max(demand.cores_max, demand.cores_min), limits.max_cores)
        self.mmin = demand.memory_min_gib
        self.mmax = min(max(demand.memory_max_gib, demand.memory_min_gib), limits.max_memory_gib)
        self.dmin = demand.duration
        self.dmax = self.whole_minutes(
            max(
                self.dmin,
                min(math.floor(demand.duration * policy.max_duration_factor), limits.max_duration_seconds),
            )
        )
        gpu = demand.gpu
        self.gpu_name = gpu.resource_name if gpu and gpu.count > 0 else None
        self.gpu_count = gpu.count if gpu and gpu.count > 0 else 0
        self.eph = demand.storage_gib * GIB
        self.n_offers = max(1, min(demand.max_offers, policy.max_offers))
        self.visited = 0
        self.selected: frozenset[str] | None = None
        self.shapes: list[Shape] = []
        self._overlay: dict[str, NodeUsage] = {}
        self._held: dict[int, Reservation] = {}

    def whole_minutes(self, run: int) -> int:
        """Run times beyond the minimum are whole minutes (never below the minimum)."""
        return max(self.dmin, run - run % 60) if run > self.dmin else run

    # -- inputs ----------------------------------------------------------------------------

    def limits_reason(self) -> str | None:
        d, lim = self.demand, self.policy.limits
        if d.cores_min < 1:
            return "the request must ask for at least 1 core"
        if d.memory_min_gib < 0 or d.storage_gib < 0:
            return "memory and storage cannot be negative"
        if d.duration <= 0:
            return "the requested duration must be positive"
        if d.gpu is not None and d.gpu.count < 0:
            return "the GPU count cannot be negative"
        if d.cores_min > lim.max_cores:
            return (
                f"{d.cores_min} cores is more than the platform's limit of {lim.max_cores} cores per request"
            )
        if d.memory_min_gib > lim.max_memory_gib:
            return (
                f"{d.memory_min_gib} GiB of memory is more than the platform's limit of "
                f"{lim.max_memory_gib} GiB per request"
            )
        if self.gpu_count > lim.max_gpus:
            return (
                f"{self.gpu_count} GPUs is more than the platform's limit of {lim.max_gpus} GPUs per request"
            )
        if d.storage_gib > lim.max_storage_gib:
            return (
                f"{d.storage_gib} GiB of scratch storage is more than the platform's limit of "
                f"{lim.max_storage_gib} GiB per request"
            )
        if d.duration > lim.max_duration_seconds:
            return (
                f"a run time of {_hours(d.duration)} is more than the platform's limit of "
                f"{_hours(lim.max_duration_seconds)}"
            )
        return None

    def starts(self) -> _Starts:
        slot = self.slot
        earliest = self.now + self.prep
        latest = self.now + self.policy.horizon_seconds
        spans = sorted(
            (_align_up(max(w.start, earliest), slot), (min(w.end, latest) // slot) * slot)
            for w in self.demand.windows
        )
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if lo > hi:
                continue
            if merged and lo <= merged[-1][1] + slot:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return _Starts(slot, merged)

    def starts_reason(self) -> str:
        windows = self.demand.windows
        if not windows:
            return "the request has no start window"
        earliest = self.now + self.prep
        latest = self.now + self.policy.horizon_seconds
        if all(w.end < earliest for w in windows):
            what = "now" if not self.prep else f"now plus {_hours(self.prep)} of preparation"
            return (
                "every requested start window ends before the earliest possible start "
                f"({what}, {format_instant(earliest)})"
            )
        if all(w.start > latest for w in windows):
            return (
                f"every requested start window begins after the platform's look-ahead of "
                f"{_hours(self.policy.horizon_seconds)} ({format_instant(latest)})"
            )
        return f"no slot start (every {_hours(self.slot)}) falls inside the requested start windows"

    def prune(self) -> None:
        selector = dict(self.policy.node_selector)
        selector.update(self.demand.node_selector)
        gpu = self.demand.gpu
        if self.gpu_name and gpu is not None and gpu.product:
            selector[gpu.product_label] = gpu.product
        self.selected = self.table.selected(selector)
        self.shapes = [s for s in self.table.shapes if self._shape_fits(s, _Level(self.cmin, self.mmin))]

    def _shape_fits(self, shape: Shape, level: _Level) -> bool:
        return (
            shape.cpu_millis >= level.cores * 1000
            and shape.memory_bytes >= level.memory_gib * GIB
            and shape.ephemeral_bytes >= self.eph
            and (self.gpu_name is None or shape.gpu(self.gpu_name) >= self.gpu_count)
        )

    def _nodes(self, level: _Level) -> Iterator[NodeCapacity]:
        selected = self.selected
        for shape in self.shapes:
            if not self._shape_fits(shape, level):
                continue
            if selected is None:
                yield from shape.nodes
            else:
                for node in shape.nodes:
                    if node.name in selected:
                        yield node

    # -- calendars -------------------------------------------------------------------------

    def usage(self, node: str) -> NodeUsage:
        found = self._overlay.get(node)
        return found if found is not None else self.book.usage(node)

    def hold(self, offer: Offer) -> None:
        """Hold ``offer`` on the private overlay, so the next searches see it."""
        held = Reservation(
            key=f"~offer-{id(offer)}",
            node=offer.node,
            start=offer.prepare_start,
            end=offer.release_end,
            resources=offer.reservation_resources(),
            phase=Phase.OFFERED,
        )
        self._held[id(offer)] = held
        self._overlay[offer.node] = self.usage(offer.node).apply([held])

    def unhold(self, offer: Offer) -> None:
        held = self._held.pop(id(offer))
        self._overlay[offer.node] = self.usage(offer.node).apply(removed=[held])

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

    def checks(self, node: NodeCapacity, usage: NodeUsage, level: _Level) -> list[Check] | None:
        """The column checks for ``level`` on ``node``; None if it can never fit there.

        A column whose limit is at least the most ever held there cannot fail and is left out,
        so a lightly used node usually needs no check at all.
        """
        free = node.free
        checks: list[Check] = []
        limit = free.cpu_millis - level.cores * 1000
        if limit < 0:
            return None
        if limit < usage.peak_cpu:
            checks.append((usage.cpu, limit))
        if level.memory_gib > 0:
            limit = free.memory_bytes - level.memory_gib * GIB
            if limit < 0:
                return None
            if limit < usage.peak_mem:
                checks.append((usage.mem, limit))
        if self.eph:
            limit = free.ephemeral_bytes - self.eph
            if limit < 0:
                return None
            if limit < usage.peak_eph:
                checks.append((usage.eph, limit))
        if self.gpu_name is not None:
            limit = free.gpus.get(self.gpu_name, 0) - self.gpu_count
            if limit < 0:
                return None
            if limit < usage.peak_gpus.get(self.gpu_name, 0):
                checks.append((usage.gpus[self.gpu_name], limit))
        return checks

    # -- searches --------------------------------------------------------------------------

    def _pass_order(self, level: _Level) -> Iterator[NodeCapacity]:
        """The nodes that can hold ``level`` statically, best-fit shape first, in rounds.

        Each round takes the next :data:`ROUND` nodes of every shape, smallest shape first:
        small shapes are preferred (packing), but when the small nodes are busy the search
        reaches a bigger shape after ``ROUND`` nodes instead of after all the small ones.
        """
        shapes = [shape for shape in self.shapes if self._shape_fits(shape, level)]
        if not shapes:
            return
        selected = self.selected
        longest = max(len(shape.nodes) for shape in shapes)
        for lo in range(0, longest, ROUND):
            for shape in shapes:
                for node in shape.nodes[lo : lo + ROUND]:
                    if selected is None or node.name in selected:
                        yield node

    def earliest(
        self, level: _Level, tail: int, starts: _Starts, *, any_fit: bool = False, budget: int = 0
    ) -> tuple[NodeCapacity, int] | None:
        """The earliest (node, start) where ``level`` fits over ``[start - prep, start + tail)``.

        Exact, in two passes. The first pass asks every node only "do you fit at the first
        allowed start?" (a few bisects and a C-level ``max``) and stops at the first yes:
        nothing can start earlier. Only if no node does, the second pass computes each node's
        earliest start, skipping whatever cannot beat the best so far. With ``any_fit`` it
        stops at the first fit (an existence probe); with a ``budget`` it gives up after that
        many node visits.
        """
        if not starts:
            return None
        prep = self.prep
        first = starts.first
        latest = starts.last
        lo, hi = first - prep, first + tail
        later: list[tuple[NodeCapacity, NodeUsage, list[Check]]] = []
        visits = 0
        for node in self._pass_order(level):
            visits += 1
            if budget and visits > budget:
                self.visited += visits - 1
                return None
            usage = self.usage(node.name)
            checks = self.checks(node, usage, level)
            if checks is None:
                continue
            if not checks or usage.busy_until <= lo or span_fits(usage.times, checks, lo, hi):
                self.visited += visits
                return (node, first)
            later.append((node, usage, checks))
        self.visited += visits
        best: tuple[NodeCapacity, int] | None = None
        for node, usage, checks in later:
            if budget:
                visits += 1
                if visits > budget:
                    break
            self.visited += 1
            # Jump past the last failing segment of the current window until one passes: in a
            # busy calendar each jump skips about a window's length.
            t: int | None = starts.earliest_in(first + 1, latest)
            times = usage.times
            while t is not None:
                bad = last_violation(times, checks, t - prep, t + tail)
                if bad is None:
                    break
                t = starts.earliest_in(bad + prep, latest)
            if t is None:
                continue
            best = (node, t)
            if any_fit:
                break
            latest = t - 1
            if latest < first:
                break
        return best

    def longest(self, level: _Level, starts: _Starts) -> tuple[NodeCapacity, int, int] | None:
        """The (node, start, run time) with the longest run time at ``level``; ties: earliest."""
        if not starts:
            return None
        prep, rel, dmin, dmax = self.prep, self.rel, self.dmin, self.dmax
        first, latest = starts.first, starts.last
        best: tuple[NodeCapacity, int, int] | None = None
        for node in self._nodes(level):
            self.visited += 1
            usage = self.usage(node.name)
            checks = self.checks(node, usage, level)
            if checks is None:
                continue
            for a, b in iter_free_runs(usage.times, checks, first - prep, latest + dmax + rel):
                t = starts.earliest_in(a + prep, min(b - dmin - rel, latest))
                if t is None:
                    continue
                run = self.whole_minutes(min(dmax, b - rel - t))
                if best is None or run > best[2] or (run == best[2] and t < best[1]):
                    best = (node, t, run)
                if run == dmax:
                    break  # later runs of this node start later
            if best is not None and best[2] == dmax and best[1] == first:
                break
        return best

    def offer_at(self, node: NodeCapacity, start: int, tail: int) -> Offer:
        """The offer at ``node`` and ``start``: most resources that fit over ``[start - prep,
        start + tail)``, then the longest run time (<= dmax) those resources can keep."""
        usage = self.usage(node.name)
        prep, rel = self.prep, self.rel
        peak = usage.peak(start - prep, start + tail)
        free = node.free
        cores = min(self.cmax, (free.cpu_millis - peak.cpu_millis) // 1000)
        # With no memory minimum the search does not check memory; never offer less than none.
        memory = max(self.mmin, min(self.mmax, (free.memory_bytes - peak.memory_bytes) // GIB))
        if cores < self.cmin or memory < self.mmin:  # pragma: no cover - a search bug, not an input
            raise AssertionError(f"engine chose {node.name} at {start} where the minimum does not fit")
        level = _Level(cores, memory)
        checks = self.checks(node, usage, level) or []
        end = run_end(usage.times, checks, start - prep, start + self.dmax + rel)
        run = self.whole_minutes(min(self.dmax, end - rel - start))
        return Offer(
            node=node.name,
            prepare_start=start - prep,
            start=start,
            duration=run,
            release_end=start + run + rel,
            cores=cores,
            memory_gib=memory,
            gpus=self.gpu_count,
            gpu_resource=self.gpu_name,
            storage_gib=self.demand.storage_gib,
        )

    def biggest_level(self, floor: _Level, top: _Level, starts: _Starts) -> _Level:
        """The highest level (cores, then memory) between ``floor`` (known to fit) and ``top``
        that fits anywhere: a binary search with existence probes."""
        tail = self.dmin + self.rel
        lo, hi = floor.cores, top.cores
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.earliest(_Level(mid, self.mmin), tail, starts, any_fit=True) is not None:
                lo = mid
            else:
                hi = mid - 1
        cores = lo
        lo = floor.memory_gib if cores == floor.cores else self.mmin
        hi = top.memory_gib
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.earliest(_Level(cores, mid), tail, starts, any_fit=True) is not None:
                lo = mid
            else:
                hi = mid - 1
        return _Level(cores, lo)

    # -- the cycle -------------------------------------------------------------------------

    def top_level(self) -> _Level:
        """The most any node could give, ignoring time: the cap for the biggest offer."""
        cores = self.cmin
        memory = self.mmin
        for shape in self.shapes:
            cores = max(cores, min(self.cmax, shape.cpu_millis // 1000))
        for shape in self.shapes:
            if shape.cpu_millis >= cores * 1000:
                memory = max(memory, min(self.mmax, shape.memory_bytes // GIB))
        return _Level(cores, memory)

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
        reason = self.limits_reason()
        if reason:
            phases.mark("prune")
            return OfferPlan((), reason, tuple(phases.done), self.visited)
        starts = self.starts()
        if not starts:
            phases.mark("prune")
            return OfferPlan((), self.starts_reason(), tuple(phases.done), self.visited)
        self.prune()
        phases.mark("prune")
        if not self.shapes or (self.selected is not None and not self.selected):
            return OfferPlan((), self.static_reason(), tuple(phases.done), self.visited)

        minimum = _Level(self.cmin, self.mmin)
        short_tail = self.dmin + self.rel
        found = self.earliest(minimum, short_tail, starts)
        phases.mark("earliest")
        if found is None:
            reason = self.static_reason() if self.visited == 0 else self.time_reason(starts)
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
                level = self.biggest_level(_Level(first.cores, first.memory_gib), top, starts)
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
                at_start = _Starts(self.slot, [(offer.start, offer.start)])
                upgrade = self.earliest(top, short_tail, at_start, any_fit=True, budget=UPGRADE_BUDGET)
                if upgrade is not None:
                    offer = self.offer_at(upgrade[0], offer.start, short_tail)
            self.choose(offer, chosen)
            spread = spread.without(offer.start - sep + 1, offer.start + sep - 1)
        phases.mark("spread")

        chosen.sort(key=lambda o: (o.start, -o.cores, -o.memory_gib, -o.duration, o.node))
        return OfferPlan(tuple(chosen), None, tuple(phases.done), self.visited)

    # -- reasons ---------------------------------------------------------------------------

    def _need_text(self) -> str:
        parts = [f"{self.cmin} cores", f"{self.mmin} GiB of memory"]
        if self.gpu_count:
            gpu = self.demand.gpu
            product = f" ({gpu.product})" if gpu is not None and gpu.product else ""
            parts.append(f"{self.gpu_count} x {self.gpu_name}{product}")
        if self.eph:
            parts.append(f"{self.demand.storage_gib} GiB of scratch storage")
        return ", ".join(parts)

    def static_reason(self) -> str:
        """Why no node can ever hold the minimum, whatever the time."""
        nodes: list[NodeCapacity] = list(self.table)
        if not nodes:
            return "the platform has no nodes the broker may use"
        gpu = self.demand.gpu
        product_key = gpu.product_label if gpu is not None and gpu.product and self.gpu_name else None
        selector = dict(self.policy.node_selector)
        selector.update(self.demand.node_selector)
        if selector:
            chosen = self.table.selected(selector) or frozenset()
            nodes = [n for n in nodes if n.name in chosen]
            if not nodes:
                text = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
                return f"no node carries the labels {text}"
        if product_key is not None and gpu is not None:
            nodes = [n for n in nodes if n.labels.get(product_key) == gpu.product]
            if not nodes:
                return f"no node has GPUs of product {gpu.product} (label {product_key})"
        if self.gpu_name is not None:
            most = max(n.free.gpus.get(self.gpu_name, 0) for n in nodes)
            if most == 0:
                return f"no node has any {self.gpu_name}"
            if most < self.gpu_count:
                return f"no node has {self.gpu_count} x {self.gpu_name} (the most on one node is {most})"
        most_cores = max(n.free.cpu_millis for n in nodes) // 1000
        if most_cores < self.cmin:
            return f"no node has {self.cmin} cores (the most on one node is {most_cores})"
        most_mem = max(n.free.memory_bytes for n in nodes) // GIB
        if most_mem < self.mmin:
            return f"no node has {self.mmin} GiB of memory (the most on one node is {most_mem} GiB)"
        if self.eph:
            most_eph = max(n.free.ephemeral_bytes for n in nodes) // GIB
            if most_eph < self.demand.storage_gib:
                return (
                    f"no node has {self.demand.storage_gib} GiB of scratch storage "
                    f"(the most on one node is {most_eph} GiB)"
                )
        return f"no single node has {self._need_text()} together"

    def time_reason(self, starts: _Starts) -> str:
        span = f"between {format_instant(starts.first)} and {format_instant(starts.last)}"
        return (
            f"no free slot in the requested start windows: no node can hold {self._need_text()} "
            f"for {_hours(self.dmin)} starting {span}"
        )


def plan_offers(
    demand: Demand,
    policy: PlatformPolicy,
    nodes: Sequence[NodeCapacity],
    reservations: Sequence[Reservation],
    now: int,
    *,
    timer: Timer | None = None,
) -> OfferPlan:
    """One offer cycle: the offers for ``demand`` and, when there are none, the reason.

    ``nodes`` and ``reservations`` may be plain sequences; pass a
    :class:`~eb_operator.engine.nodes.NodeTable` and a
    :class:`~eb_operator.engine.ledger.LedgerSnapshot` to skip the ``index`` phase. Only
    reservations in ``HOLDING_PHASES`` count. ``timer`` (e.g. ``time.perf_counter``) only
    measures the phases; the engine never reads a clock otherwise.
    """
    phases = _Phases(timer)
    table = NodeTable.of(nodes)
    book = LedgerSnapshot.of(reservations)
    phases.mark("index")
    return _Cycle(demand, policy, table, book, now).run(phases)


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
