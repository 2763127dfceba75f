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

from eb_operator.engine.types import Reservation, Resources

# A time later than any real one: "the calendar never ends".
NEVER = 1 << 62

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

    @classmethod
    def build(cls, reservations: Iterable[Reservation]) -> NodeUsage:
        """Sweep the start and end events of ``reservations`` into a step function.

        Empty spans (``end <= start``) hold nothing. Breakpoints where nothing changes (one
        reservation ends exactly where an identical one starts) are dropped, so scans stay short.
        """
        kept = tuple(r for r in reservations if r.end > r.start)
        deltas: dict[int, list[int]] = {}
        gpu_deltas: dict[str, dict[int, int]] = {}
        for r in kept:
            res = r.resources
            for t, sign in ((r.start, 1), (r.end, -1)):
                d = deltas.get(t)
                if d is None:
                    d = deltas[t] = [0, 0, 0]
                d[0] += sign * res.cpu_millis
                d[1] += sign * res.memory_bytes
                d[2] += sign * res.ephemeral_bytes
            for name, count in res.gpus.items():
                if count:
                    g = gpu_deltas.setdefault(name, {})
                    g[r.start] = g.get(r.start, 0) + count
                    g[r.end] = g.get(r.end, 0) - count
        names = sorted(gpu_deltas)
        times: list[int] = []
        cpu = [0]
        mem = [0]
        eph = [0]
        gcols: list[list[int]] = [[0] for _ in names]
        c = m = e = 0
        gcur = [0] * len(names)
        for t in sorted(deltas):
            d = deltas[t]
            c += d[0]
            m += d[1]
            e += d[2]
            changed = bool(d[0] or d[1] or d[2])
            for i, name in enumerate(names):
                gd = gpu_deltas[name].get(t, 0)
                if gd:
                    gcur[i] += gd
                    changed = True
            if not changed:
                continue
            if (
                times
                and cpu[-1] == c
                and mem[-1] == m
                and eph[-1] == e
                and all(gcols[i][-1] == gcur[i] for i in range(len(names)))
            ):
                # The amounts went back to what the previous segment held: extend it.
                continue
            times.append(t)
            cpu.append(c)
            mem.append(m)
            eph.append(e)
            for i in range(len(names)):
                gcols[i].append(gcur[i])
        return cls(
            times=tuple(times),
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
            gone = {r.key for r in removed}
            reservations = (*(r for r in self.reservations if r.key not in gone), *added)
        gpus = {key[4:]: tuple(col) for key, col in cols.items() if key.startswith("gpu:")}
        return NodeUsage(
            times=tuple(times),
            cpu=tuple(cols["cpu"]),
            mem=tuple(cols["mem"]),
            eph=tuple(cols["eph"]),
            gpus=gpus,
            reservations=reservations,
            peak_cpu=max(cols["cpu"]),
            peak_mem=max(cols["mem"]),
            peak_eph=max(cols["eph"]),
            peak_gpus={name: max(col) for name, col in gpus.items()},
        )

    @property
    def sparse(self) -> bool:
        """True when many breakpoints change nothing any more (after many :meth:`apply`)."""
        return len(self.times) > 4 * len(self.reservations) + 16

    @property
    def busy_until(self) -> int:
        """A time after which nothing is held on the node (``-NEVER`` if never anything)."""
        return self.times[-1] if self.times else -NEVER

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


def free_runs(times: Sequence[int], checks: Sequence[Check], start: int, end: int) -> list[tuple[int, int]]:
    """:func:`iter_free_runs` as a list."""
    return list(iter_free_runs(times, checks, start, end))


def run_end(times: Sequence[int], checks: Sequence[Check], start: int, end: int) -> int:
    """How far from ``start`` (up to ``end``) every check keeps passing; ``start`` if not at all."""
    for a, b in iter_free_runs(times, checks, start, end):
        return b if a == start else start
    return start
