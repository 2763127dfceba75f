"""Accept-time re-validation: does this reservation still fit, against everything else held?

The operator calls :func:`check_accept` inside the accept step (after it has read the newest
reservations and before it writes ACCEPTED with a resourceVersion precondition). Offers were
true when made, but the world moves: node capacity shrinks when Pods the broker does not own
arrive, nodes disappear, and a ledger may have missed nothing but a cache may have. This check
is exact for the candidate's node and span and does not trust any calendar built earlier.

Cost: ``O(r log r)`` for the ``r`` holding reservations on the candidate's node that overlap its
span (found through the snapshot's per-node index when given a ``LedgerSnapshot``; otherwise
one pass over ``reservations``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from eb_operator.engine.calendar import NodeUsage, segment_range
from eb_operator.engine.ledger import LedgerSnapshot
from eb_operator.engine.nodes import NodeTable
from eb_operator.engine.types import GIB, HOLDING_PHASES, NodeCapacity, Phase, Reservation
from eb_operator.model.times import format_instant


def _find_node(nodes: Sequence[NodeCapacity], name: str) -> NodeCapacity | None:
    if isinstance(nodes, NodeTable):
        return nodes.get(name)
    for node in nodes:
        if node.name == name:
            return node
    return None


def check_accept(
    candidate: Reservation,
    nodes: Sequence[NodeCapacity],
    reservations: Sequence[Reservation],
    now: int,
    *,
    ignore_keys: Collection[str] = (),
    ignore_group: str | None = None,
) -> str | None:
    """None if ``candidate`` fits on its node for its whole span, else why not.

    Counted against it: every reservation in ``HOLDING_PHASES`` on the same node that overlaps
    ``[candidate.start, candidate.end)``, except

    * the candidate itself (same ``key``: it is usually in ``reservations`` as OFFERED),
    * any reservation whose key is in ``ignore_keys``,
    * when ``ignore_group`` is given, the OFFERED reservations of that group: the siblings that
      the same accept step rejects (pass ``ignore_group=candidate.group``). Siblings in any other
      phase still count, so a second accept in the same set is never hidden by this.

    ``now`` rejects a candidate whose slot is already over (``now >= candidate.end``). Expiry is
    the caller's check: it knows the offer's ``expires``.
    """
    if candidate.end <= candidate.start:
        return f"reservation {candidate.key} has an empty time span"
    if now >= candidate.end:
        return f"the slot of {candidate.key} ended at {format_instant(candidate.end)}"
    node = _find_node(nodes, candidate.node)
    if node is None:
        return f"node {candidate.node} is no longer available to the broker"
    ignored = frozenset(ignore_keys) | {candidate.key}

    def counts(r: Reservation) -> bool:
        if r.key in ignored or r.phase not in HOLDING_PHASES:
            return False
        return not (ignore_group is not None and r.group == ignore_group and r.phase == Phase.OFFERED)

    if isinstance(reservations, LedgerSnapshot):
        pool: Sequence[Reservation] = reservations.on_node(candidate.node, candidate.start, candidate.end)
    else:
        pool = reservations
    others = [
        r
        for r in pool
        if r.node == candidate.node and r.start < candidate.end and r.end > candidate.start and counts(r)
    ]
    usage = NodeUsage.build(others)
    want = candidate.resources
    free = node.free
    columns: list[tuple[str, tuple[int, ...], int, int, int]] = [
        ("cpu", usage.cpu, want.cpu_millis, free.cpu_millis, 1000),
        ("memory", usage.mem, want.memory_bytes, free.memory_bytes, GIB),
        ("ephemeral storage", usage.eph, want.ephemeral_bytes, free.ephemeral_bytes, GIB),
    ]
    for name, count in sorted(want.gpus.items()):
        if count > 0:
            columns.append(
                (name, usage.gpus.get(name, (0,) * len(usage.cpu)), count, free.gpus.get(name, 0), 1)
            )
    j0, j1 = (0, 1) if not usage.times else segment_range(usage.times, candidate.start, candidate.end)
    for label, col, need, cap, unit in columns:
        if need <= 0:
            continue
        if need > cap:
            return (
                f"node {node.name} has {_amount(cap, unit, label)} in all, "
                f"the reservation needs {_amount(need, unit, label)}"
            )
        for j in range(j0, j1):
            if col[j] + need > cap:
                at = max(candidate.start, usage.times[j - 1]) if j > 0 else candidate.start
                when = format_instant(at)
                return (
                    f"node {node.name} no longer has {_amount(need, unit, label)} free at {when}: "
                    f"{_amount(col[j], unit, label)} of {_amount(cap, unit, label)} "
                    "are held by other reservations"
                )
    return None


def _amount(value: int, unit: int, label: str) -> str:
    if label == "cpu":
        cores = value / 1000
        return f"{cores:g} cores"
    if unit == GIB:
        return f"{value / GIB:g} GiB of {label}"
    return f"{value} x {label}"
