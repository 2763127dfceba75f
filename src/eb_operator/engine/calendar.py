"""The per-node capacity calendar: capacity held on one node as a step function of time.

A :class:`NodeUsage` is built once per node from that node's holding reservations and is then
read many times (every offer search, every accept check), so it is laid out for reading:

* ``times`` holds the sorted breakpoints ``T[0] < T[1] < ... < T[m-1]`` where the held amount
  changes; segment ``j`` is ``[T[j-1], T[j])`` with ``T[-1] = -inf`` and ``T[m] = +inf``, so there
  are ``m + 1`` segments and segments ``0`` and ``m`` hold nothing;
* ``cpu``, ``mem``, ``eph`` and each ``gpus[name]`` hold the amount held in each segment
  (tuples of ``m + 1`` integers, one column per resource, so that one column can be sliced and
  reduced with the C-level ``max`` without touching the others).

Capacity is checked as ``held <= free - need``: the per-query limit is computed once per node
and the calendar itself never depends on the node's capacity, so node capacity changes (Pods the
broker does not own) do not invalidate calendars, and calendars do not depend on the request.

Cost model (``m`` = breakpoints on the node, at most twice its reservations, ``k`` = breakpoints
inside the queried span):

* build: ``O(r log r)`` for ``r`` reservations on the node (sort the start/end events);
* :func:`span_fits`: two ``bisect`` calls and one C-level ``max`` per checked resource over the
  ``k`` segments of the span: ``O(log m + k)``;
* :func:`free_runs`: ``O(log m + k)``: one list comprehension over the ``k`` segments and
  ``list.index`` jumps between runs;
* :func:`peak`: like :func:`span_fits`.

Nothing here reads a clock or does I/O. Times are integer seconds, amounts integer millicores,
bytes and device counts, as in :mod:`eb_operator.engine.types`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, compress, repeat
from operator import ne

from eb_operator.engine.types import Reservation, Resources

# A time later than any real one: "the calendar never ends".
NEVER = 1 << 62

# Calendars with more breakpoints than this are not summarised (FreeRuns): a summary costs
# O(m log m) Python work to build and is built again whenever the node's calendar changes, which
# on a node holding thousands of reservations costs more than the searches it would shorten.
SUMMARY_MAX_BREAKPOINTS = 512

# One resource check of a query: the column of held amounts and the most that may be held
# (``free - need``) in any segment for the request to fit.
Check = tuple[Sequence[int], int]


@dataclass(frozen=True, slots=True, eq=False)
class NodeUsage:
    """Capacity held on one node by its holding reservations, as a step function of time."""

    times: tuple[int, ...]
    cpu: tuple[int, ...]
    mem: tuple[int, ...]
    eph: tuple[int, ...]
    gpus: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    reservations: tuple[Reservation, ...] = ()
    # The most held at any instant, per column: a request whose limit is at least this can
    # skip the column's check altogether.
    peak_cpu: int = 0
    peak_mem: int = 0
    peak_eph: int = 0
    peak_gpus: Mapping[str, int] = field(default_factory=dict)
    # Each column's FreeRuns, built the first time a search asks (keyed by the column's id: the
    # columns live as long as this calendar, which is never changed).
    _runs: dict[int, FreeRuns] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, reservations: Iterable[Reservation]) -> NodeUsage:
        """Sweep the start and end events of ``reservations`` into a step function.

        Empty spans (``end <= start``) hold nothing. Breakpoints where nothing changes (one
        reservation ends exactly where an identical one starts) are dropped, so scans stay short.
        The running sums are C-level ``itertools.accumulate`` over the sorted event times.
        """
        kept = tuple(r for r in reservations if r.end > r.start)
        dc: dict[int, int] = {}
        dm: dict[int, int] = {}
        de: dict[int, int] = {}
        dg: dict[str, dict[int, int]] = {}
        for r in kept:
            res = r.resources
            s, e = r.start, r.end
            if res.cpu_millis:
                dc[s] = dc.get(s, 0) + res.cpu_millis
                dc[e] = dc.get(e, 0) - res.cpu_millis
            if res.memory_bytes:
                dm[s] = dm.get(s, 0) + res.memory_bytes
                dm[e] = dm.get(e, 0) - res.memory_bytes
            if res.ephemeral_bytes:
                de[s] = de.get(s, 0) + res.ephemeral_bytes
                de[e] = de.get(e, 0) - res.ephemeral_bytes
            for name, count in res.gpus.items():
                if count:
                    g = dg.setdefault(name, {})
                    g[s] = g.get(s, 0) + count
                    g[e] = g.get(e, 0) - count
        names = sorted(dg)
        deltas = [dc, dm, de, *(dg[name] for name in names)]
        events = sorted(set().union(*deltas))
        sums = [[0, *accumulate(map(d.get, events, repeat(0)))] for d in deltas]
        # Keep a breakpoint only where some column changes (all C-level: map, zip, any).
        if events:
            changed = list(map(any, zip(*(map(ne, col, col[1:]) for col in sums), strict=True)))
            if not all(changed):
                events = list(compress(events, changed))
                sums = [[0, *compress(col[1:], changed)] for col in sums]
        cpu, mem, eph, *gcols = sums
        return cls(
            times=tuple(events),
            cpu=tuple(cpu),
            mem=tuple(mem),
            eph=tuple(eph),
            gpus={name: tuple(col) for name, col in zip(names, gcols, strict=True)},
            reservations=kept,
            peak_cpu=max(cpu),
            peak_mem=max(mem),
            peak_eph=max(eph),
            peak_gpus={name: max(col) for name, col in zip(names, gcols, strict=True)},
        )

    def apply(
        self,
        added: Sequence[Reservation] = (),
        removed: Sequence[Reservation] = (),
        reservations: tuple[Reservation, ...] | None = None,
    ) -> NodeUsage:
        """A new calendar with ``added`` held and ``removed`` released, without a rebuild.

        ``O(m)`` per change with C-level list operations (insert the two breakpoints, add the
        amounts over the slice between them), instead of the ``O(r log r)`` sweep of
        :meth:`build`. Every removed reservation must be held by this calendar (or added in
        the same call). Released breakpoints are left in place; :attr:`sparse` tells the
        ledger when a rebuild would be worth it. ``reservations`` replaces the list of held
        reservations when the caller already knows it.
        """
        times = list(self.times)
        cols: dict[str, list[int]] = {"cpu": list(self.cpu), "mem": list(self.mem), "eph": list(self.eph)}
        for name, col in self.gpus.items():
            cols["gpu:" + name] = list(col)
        changes = [(r, 1) for r in added] + [(r, -1) for r in removed]
        for r, _ in changes:
            for name, count in r.resources.gpus.items():
                if count and "gpu:" + name not in cols:
                    cols["gpu:" + name] = [0] * (len(times) + 1)
        columns = list(cols.values())
        for r, sign in changes:
            if r.end <= r.start:
                continue
            a = _split(times, columns, r.start)
            b = _split(times, columns, r.end)
            res = r.resources
            for key, amount in (
                ("cpu", res.cpu_millis),
                ("mem", res.memory_bytes),
                ("eph", res.ephemeral_bytes),
                *(("gpu:" + name, count) for name, count in res.gpus.items()),
            ):
                if amount:
                    column = cols[key]
                    delta = sign * amount
                    column[a + 1 : b + 1] = [x + delta for x in column[a + 1 : b + 1]]
        if reservations is None:
            if removed:
                gone = {r.key for r in removed}
                reservations = (*(r for r in self.reservations if r.key not in gone), *added)
            else:
                reservations = self.reservations + tuple(added)
        gpus = {key[4:]: tuple(col) for key, col in cols.items() if key.startswith("gpu:")}
        # Peaks only grow with what is added; after a release the old peak is kept as an upper
        # bound, which is all the checks need (a column under its limit everywhere is skipped).
        peaks = {"cpu": self.peak_cpu, "mem": self.peak_mem, "eph": self.peak_eph}
        peaks.update({"gpu:" + name: peak for name, peak in self.peak_gpus.items()})
        for r in added:
            res = r.resources
            for key, amount in (
                ("cpu", res.cpu_millis),
                ("mem", res.memory_bytes),
                ("eph", res.ephemeral_bytes),
                *(("gpu:" + name, count) for name, count in res.gpus.items()),
            ):
                if amount and r.end > r.start:
                    j0, j1 = segment_range(times, r.start, r.end)
                    peaks[key] = max(peaks.get(key, 0), max(cols[key][j0:j1]))
        return NodeUsage(
            times=tuple(times),
            cpu=tuple(cols["cpu"]),
            mem=tuple(cols["mem"]),
            eph=tuple(cols["eph"]),
            gpus=gpus,
            reservations=reservations,
            peak_cpu=peaks["cpu"],
            peak_mem=peaks["mem"],
            peak_eph=peaks["eph"],
            peak_gpus={name: peaks.get("gpu:" + name, 0) for name in gpus},
        )

    @property
    def sparse(self) -> bool:
        """True when many breakpoints change nothing any more (after many :meth:`apply`)."""
        return len(self.times) > 4 * len(self.reservations) + 16

    @property
    def busy_until(self) -> int:
        """A time after which nothing is held on the node (``-NEVER`` if never anything)."""
        return self.times[-1] if self.times else -NEVER

    def cpu_may_hold(self, limit: int, length: int, start: int, end: int) -> bool:
        """:meth:`may_hold` for the cpu column alone (the one that rules most nodes out)."""
        if limit >= self.peak_cpu or len(self.times) > SUMMARY_MAX_BREAKPOINTS:
            return True
        found = self._runs.get(id(self.cpu))
        if found is None:
            found = self._runs[id(self.cpu)] = FreeRuns.build(self.times, self.cpu)
        return found.may_hold(limit, length, start, end)

    def runs(self, column: Sequence[int]) -> FreeRuns:
        """The :class:`FreeRuns` of ``column``, one of this calendar's columns (built once)."""
        found = self._runs.get(id(column))
        if found is None:
            found = self._runs[id(column)] = FreeRuns.build(self.times, column)
        return found

    def may_hold(self, checks: Sequence[Check], length: int, start: int, end: int) -> bool:
        """False when no ``length`` seconds of ``[start, end)`` pass every check: a necessary
        condition for a fit, ``O(log m)`` per check once the columns' :class:`FreeRuns` exist.
        Always True (no opinion) on a calendar too long to summarise."""
        if len(self.times) > SUMMARY_MAX_BREAKPOINTS:
            return True
        runs = self._runs
        for col, limit in checks:
            found = runs.get(id(col))
            if found is None:
                found = runs[id(col)] = FreeRuns.build(self.times, col)
            if not found.may_hold(limit, length, start, end):
                return False
        return True

    def peak(self, start: int, end: int) -> Resources:
        """The most held at any instant of ``[start, end)``, per resource."""
        if end <= start or not self.times:
            return Resources()
        j0, j1 = segment_range(self.times, start, end)
        return Resources(
            cpu_millis=max(self.cpu[j0:j1]),
            memory_bytes=max(self.mem[j0:j1]),
            ephemeral_bytes=max(self.eph[j0:j1]),
            gpus={name: max(col[j0:j1]) for name, col in self.gpus.items()},
        )


@dataclass(frozen=True, slots=True, eq=False)
class FreeRuns:
    """How long one column of a calendar stays at or under a limit, for every limit at once.

    A search that finds no fit at the first start would otherwise jump through the node's
    whole calendar over the look-ahead (``O(j * (log m + w))``); with this it can first ask
    whether any stretch of the needed length stays under the limit at all, in ``O(log m)``.
    The answer is a necessary condition (a stretch between two breakpoints is counted wherever
    it lies), so a node it keeps is still searched exactly; a node it drops cannot fit.

    Segment ``j`` spans ``[edges[j], edges[j + 1])``, ``edges`` being the calendar's breakpoints
    between ``-NEVER`` and ``NEVER``. For a limit ``x``, the maximal runs of segments at most
    ``x`` are a *leading* run (from ``-NEVER``), a *trailing* run (to ``NEVER``) and *bounded*
    runs between two segments above ``x``. A bounded run's highest segment ``j`` has it as its
    run at the limit ``values[j]`` (the segments next to it are higher), so the longest bounded
    run at ``x`` is the longest of those runs with ``values[j] <= x``: a sorted table and a
    running maximum, built in ``O(m log m)`` with a stack of the segments not yet closed.
    """

    edges: tuple[int, ...]
    rising: tuple[int, ...]  # rising[j]: the most held in segments 0..j
    falling: tuple[int, ...]  # falling[i]: the most held in the last i + 1 segments
    levels: tuple[int, ...]  # sorted limits at which the longest bounded run grows ...
    longest: tuple[int, ...]  # ... and the longest bounded run at each of those limits

    @classmethod
    def build(cls, times: Sequence[int], column: Sequence[int]) -> FreeRuns:
        edges = (-NEVER, *times, NEVER)
        n = len(column)
        # For each segment, the nearest segment on each side that holds more (-1 and n: none).
        left = [-1] * n
        right = [n] * n
        stack: list[int] = []
        for j, v in enumerate(column):
            while stack and column[stack[-1]] <= v:
                stack.pop()
            if stack:
                left[j] = stack[-1]
            stack.append(j)
        stack = []
        for j in range(n - 1, -1, -1):
            v = column[j]
            while stack and column[stack[-1]] <= v:
                stack.pop()
            if stack:
                right[j] = stack[-1]
            stack.append(j)
        pairs = sorted(
            (column[j], edges[right[j]] - edges[left[j] + 1])
            for j in range(n)
            if left[j] >= 0 and right[j] < n
        )
        levels: list[int] = []
        longest: list[int] = []
        best = 0
        for level, run in pairs:
            if run > best:
                best = run
                if levels and levels[-1] == level:
                    longest[-1] = best
                else:
                    levels.append(level)
                    longest.append(best)
        return cls(
            edges=edges,
            rising=tuple(accumulate(column, max)),
            falling=tuple(accumulate(reversed(column), max)),
            levels=tuple(levels),
            longest=tuple(longest),
        )

    def may_hold(self, limit: int, length: int, start: int, end: int) -> bool:
        """False when no ``length`` seconds of ``[start, end)`` stay at or under ``limit``."""
        if end - start < length:
            return False
        rising, edges = self.rising, self.edges
        j = bisect_right(rising, limit)  # the first segment above the limit
        if j == len(rising):
            return True  # never above it
        if (edges[j] if edges[j] < end else end) - start >= length:  # the leading run
            return True
        falling = self.falling
        k = len(falling) - bisect_right(falling, limit)  # the last segment above it
        if end - (edges[k] if edges[k] > start else start) >= length:  # the trailing run, from k's end
            return True
        i = bisect_right(self.levels, limit)
        return i > 0 and self.longest[i - 1] >= length


EMPTY_USAGE = NodeUsage.build(())


def _split(times: list[int], columns: Sequence[list[int]], t: int) -> int:
    """Make ``t`` a breakpoint (splitting the segment that holds it); return its index."""
    i = bisect_left(times, t)
    if i < len(times) and times[i] == t:
        return i
    times.insert(i, t)
    for col in columns:
        col.insert(i, col[i])
    return i


def segment_range(times: Sequence[int], start: int, end: int) -> tuple[int, int]:
    """Indices ``[j0, j1)`` of the segments that intersect ``[start, end)`` (``start < end``)."""
    return bisect_right(times, start), bisect_left(times, end) + 1


def span_fits(times: Sequence[int], checks: Sequence[Check], start: int, end: int) -> bool:
    """True when no segment of ``[start, end)`` holds more than a check's limit."""
    if not times:
        return all(limit >= 0 for _, limit in checks)
    j0, j1 = segment_range(times, start, end)
    return all(max(col[j0:j1]) <= limit for col, limit in checks)


def _flags(checks: Sequence[Check], j0: int, j1: int) -> list[bool]:
    """Per segment in ``[j0, j1)``: does it pass every check?"""
    if len(checks) == 1:
        ((a, la),) = checks
        return [x <= la for x in a[j0:j1]]
    if len(checks) == 2:
        (a, la), (b, lb) = checks
        return [x <= la and y <= lb for x, y in zip(a[j0:j1], b[j0:j1], strict=True)]
    flags = [True] * (j1 - j0)
    for col, limit in checks:
        flags = [f and x <= limit for f, x in zip(flags, col[j0:j1], strict=True)]
    return flags


def iter_free_runs(
    times: Sequence[int], checks: Sequence[Check], start: int, end: int
) -> Iterator[tuple[int, int]]:
    """The maximal intervals of ``[start, end)`` in which every check passes, in time order.

    Intervals are clipped to ``[start, end)``; one that reaches ``end`` may continue beyond it.
    Segments are examined in chunks that grow fourfold, so a caller that stops at the first
    useful run pays for the segments up to it, not for the whole span.
    """
    if end <= start:
        return
    if not checks or not times:
        if all(limit >= 0 for _, limit in checks):
            yield (start, end)
        return
    j0, j1 = segment_range(times, start, end)
    open_at: int | None = None
    j = j0
    size = 32
    while j < j1:
        k = min(j1, j + size)
        flags = _flags(checks, j, k)
        n = k - j
        index = flags.index
        pos = 0
        while pos < n:
            if open_at is None:
                try:
                    s = index(True, pos)
                except ValueError:
                    break
                open_at = start if j + s == j0 else times[j + s - 1]
                pos = s
            try:
                e = index(False, pos)
            except ValueError:
                break  # the run goes on into the next chunk
            # Segment j + e fails and intersects the span, so the run ends inside it.
            yield (open_at, times[j + e - 1])
            open_at = None
            pos = e
        j = k
        size *= 4
    if open_at is not None:
        yield (open_at, end)


def last_violation(times: Sequence[int], checks: Sequence[Check], start: int, end: int) -> int | None:
    """The end of the last segment of ``[start, end)`` where some check fails, or None if none.

    Searches from the right in chunks that grow fourfold, each tested with C-level ``max``, so
    a busy window (the usual case when this is called) costs one small chunk, and a window
    that passes costs a few ``max`` calls.
    """
    if not times:
        return None if all(limit >= 0 for _, limit in checks) else end
    j0, j1 = segment_range(times, start, end)
    m = len(times)
    hi = j1
    size = 16
    while hi > j0:
        lo = max(j0, hi - size)
        failing = [(col, limit) for col, limit in checks if max(col[lo:hi]) > limit]
        if failing:
            for j in range(hi - 1, lo - 1, -1):
                for col, limit in failing:
                    if col[j] > limit:
                        return end if j >= m else min(end, times[j])
        hi = lo
        size *= 4
    return None


def free_runs(times: Sequence[int], checks: Sequence[Check], start: int, end: int) -> list[tuple[int, int]]:
    """:func:`iter_free_runs` as a list."""
    return list(iter_free_runs(times, checks, start, end))


def run_end(times: Sequence[int], checks: Sequence[Check], start: int, end: int) -> int:
    """How far from ``start`` (up to ``end``) every check keeps passing; ``start`` if not at all."""
    for a, b in iter_free_runs(times, checks, start, end):
        return b if a == start else start
    return start
