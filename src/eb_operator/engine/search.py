"""The node and calendar searches of one offer cycle over one snapshot: which nodes can hold a level
of resources, the earliest start and the longest run where it fits, and the offer at a node and
start. Offers chosen so far are held on a private overlay of their nodes' calendars, so the next
searches see them. See :mod:`eb_operator.engine.plan` for the cycle and the cost model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from eb_operator.engine.calendar import (
    EMPTY_USAGE,
    Check,
    NodeUsage,
    iter_free_runs,
    last_violation,
    run_end,
    span_fits,
)
from eb_operator.engine.ledger import LedgerSnapshot
from eb_operator.engine.nodes import NodeTable, Shape
from eb_operator.engine.starts import StartGrid
from eb_operator.engine.types import GIB, Demand, NodeCapacity, Offer, Phase, Reservation
from eb_operator.model.platform import PlatformPolicy

# Nodes taken from each shape per round of a search (see Search._pass_order).
ROUND = 32
# Node visits between two looks at the clock of a search with a deadline (a power of two, minus 1).
TICK = 63


class SearchOverrun(Exception):
    """A search with a deadline ran past it (the caller runs it again where time is cheaper)."""


@dataclass(frozen=True, slots=True)
class Level:
    """Cores and memory a search asks for; GPUs and scratch are fixed by the demand."""

    cores: int
    memory_gib: int


class Search:
    """The searches of one cycle over one snapshot, with the offers chosen so far held."""

    def __init__(
        self,
        demand: Demand,
        policy: PlatformPolicy,
        table: NodeTable,
        book: LedgerSnapshot,
        now: int,
        deadline: tuple[Callable[[], float], float] | None = None,
    ) -> None:
        self.demand = demand
        #: (timer, instant): raise SearchOverrun once ``timer()`` passes ``instant``
        self.deadline = deadline
        self.policy = policy
        self.table = table
        self.book = book
        self.now = now
        limits = policy.limits
        self.slot = policy.slot_seconds
        self.prep = max(0, demand.preparation)
        self.rel = policy.release_seconds if demand.release is None else max(0, demand.release)
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

    def overrun(self) -> None:
        """Raise :class:`SearchOverrun` if the deadline has passed (called every ``TICK + 1``
        node visits, so that the clock costs nothing against a visit)."""
        if self.deadline is not None:
            timer, instant = self.deadline
            if timer() > instant:
                raise SearchOverrun(f"the search passed its deadline after {self.visited} node visits")

    def whole_minutes(self, run: int) -> int:
        """Run times beyond the minimum are whole minutes (never below the minimum)."""
        return max(self.dmin, run - run % 60) if run > self.dmin else run

    def prune(self) -> None:
        selector = dict(self.policy.node_selector)
        selector.update(self.demand.node_selector)
        gpu = self.demand.gpu
        if self.gpu_name and gpu is not None and gpu.product:
            selector[gpu.product_label] = gpu.product
        self.selected = self.table.selected(selector)
        minimum = Level(self.cmin, self.mmin)
        self.shapes = [s for s in self.table.shapes if self._shape_fits(s, minimum)]

    def _shape_fits(self, shape: Shape, level: Level) -> bool:
        return (
            shape.cpu_millis >= level.cores * 1000
            and shape.memory_bytes >= level.memory_gib * GIB
            and shape.ephemeral_bytes >= self.eph
            and (self.gpu_name is None or shape.gpu(self.gpu_name) >= self.gpu_count)
        )

    def _nodes(self, level: Level) -> Iterator[NodeCapacity]:
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

    def checks(self, node: NodeCapacity, usage: NodeUsage, level: Level) -> list[Check] | None:
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

    def _pass_order(self, level: Level) -> Iterator[NodeCapacity]:
        """The nodes that can hold ``level`` statically, best-fit shape first, in rounds.

        Each round takes the next :data:`ROUND` nodes of every shape, smallest shape first:
        small shapes are preferred (packing), but when the small nodes are busy the search
        reaches a bigger shape after ``ROUND`` nodes instead of after all the small ones.
        """
        if level.cores == self.cmin and level.memory_gib == self.mmin:
            shapes = self.shapes  # pruned for the minimum already
        else:
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
        self, level: Level, tail: int, starts: StartGrid, *, any_fit: bool = False, budget: int = 0
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
        span, end = prep + tail, latest + tail
        later: list[tuple[NodeCapacity, NodeUsage, list[Check]]] = []
        visits = 0
        overlay, calendar = self._overlay, self.book.calendars.get
        need_cpu = level.cores * 1000
        for node in self._pass_order(level):
            visits += 1
            if budget and visits > budget:
                self.visited += visits - 1
                return None
            if not visits & TICK:
                self.overrun()
            usage = overlay.get(node.name) if overlay else None
            if usage is None:
                usage = calendar(node.name, EMPTY_USAGE)
            # cpu alone drops most nodes of a busy platform: ask it before building every check
            if not usage.cpu_may_hold(node.free.cpu_millis - need_cpu, span, lo, end):
                continue
            checks = self.checks(node, usage, level)
            if checks is None:
                continue
            if not checks or usage.busy_until <= lo:
                self.visited += visits
                return (node, first)
            if not usage.may_hold(checks, span, lo, end):
                continue  # no start fits on this node
            if span_fits(usage.times, checks, lo, hi):
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
            if not self.visited & TICK:
                self.overrun()
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

    def longest(self, level: Level, starts: StartGrid) -> tuple[NodeCapacity, int, int] | None:
        """The (node, start, run time) with the longest run time at ``level``; ties: earliest."""
        if not starts:
            return None
        prep, rel, dmin, dmax = self.prep, self.rel, self.dmin, self.dmax
        first, latest = starts.first, starts.last
        end = latest + dmax + rel
        best: tuple[NodeCapacity, int, int] | None = None
        for node in self._nodes(level):
            self.visited += 1
            if not self.visited & TICK:
                self.overrun()
            usage = self.usage(node.name)
            checks = self.checks(node, usage, level)
            if checks is None or not usage.may_hold(checks, prep + dmin + rel, first - prep, end):
                continue  # no run of the minimum length anywhere in the windows
            for a, b in iter_free_runs(usage.times, checks, first - prep, end):
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
        level = Level(cores, memory)
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

    def biggest_level(self, floor: Level, top: Level, starts: StartGrid) -> Level:
        """The highest level (cores, then memory) between ``floor`` (known to fit) and ``top``
        that fits anywhere: a binary search with existence probes."""
        tail = self.dmin + self.rel
        lo, hi = floor.cores, top.cores
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.earliest(Level(mid, self.mmin), tail, starts, any_fit=True) is not None:
                lo = mid
            else:
                hi = mid - 1
        cores = lo
        lo = floor.memory_gib if cores == floor.cores else self.mmin
        hi = top.memory_gib
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.earliest(Level(cores, mid), tail, starts, any_fit=True) is not None:
                lo = mid
            else:
                hi = mid - 1
        return Level(cores, lo)

    def top_level(self) -> Level:
        """The most any node could give, ignoring time: the cap for the biggest offer."""
        cores = self.cmin
        memory = self.mmin
        for shape in self.shapes:
            cores = max(cores, min(self.cmax, shape.cpu_millis // 1000))
        for shape in self.shapes:
            if shape.cpu_millis >= cores * 1000:
                memory = max(memory, min(self.mmax, shape.memory_bytes // GIB))
        return Level(cores, memory)
