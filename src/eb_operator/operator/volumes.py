"""Storage an earlier session made, mounted again by a later session of the same owner.

A storage item with an ``href`` names such storage by its uuid (:mod:`eb_operator.model.reuse`).
The claims the broker makes carry that uuid (label ``storage-uuid``), their owner (annotation
``owner``: the REST caller, "" for a kubectl user's session) and the sessions that may mount them
and when (annotation ``holds``), so everything here is read from the API server, level-based:

* **At offer time** (:func:`inspect`): the claim must exist, not be going, be the caller's, and be
  in the namespace the session's children run in; otherwise NO, with one message for "no such
  storage" and "someone else's" alike (a caller learns nothing about storage that is not theirs).
  Its size is what is offered. One session at a time mounts it, READONLY or READWRITE: the offers
  start after every reservation that holds it (the claim's holds, and the accepted sessions that
  name it, :func:`booked_until`).
* **At accept** (:func:`booked_conflict`): under the decision lock, against every other accepted
  session naming it, as capacity is re-validated (two offers of different sets cannot both win).
* **When the session prepares** (:func:`hold`): its hold is written on the claim with a
  resourceVersion precondition (checked once more against the claim's live holds), the lifetime
  it asked for extends the claim's (``delete-after`` = its reservation's end + that lifetime, never
  earlier than before; up to the platform's maximum, as the judge checks), and its Pods are added
  to those deleted with the claim.

Why exclusive: a ReadWriteOnce volume attaches to one node, and a writer beside readers would
give them a changing view; a site that wants shared read-only data stages it in as data instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eb_operator.cluster import objects
from eb_operator.cluster.convert import LABEL_MANAGED_BY, MANAGER, parse_quantity
from eb_operator.cluster.crs import Cluster
from eb_operator.engine.demand import not_before
from eb_operator.engine.types import Phase
from eb_operator.model.common import FINAL_PHASES, MessageItem, MessageLevel, MessageType
from eb_operator.model.times import format_duration, format_instant, parse_duration, parse_instant
from eb_operator.operator.builders.storage import (
    ANN_DELETE_AFTER,
    ANN_LIFETIME,
    ANN_OWNER,
    ANN_POD,
    ANN_SESSION_ENDED,
    LABEL_STORAGE_UUID,
    holds_of,
    holds_text,
    offered_lifetime,
    reuses,
)
from eb_operator.operator.state import NOT_ACCEPTED, ClusterState, ExecutionView

if TYPE_CHECKING:
    from eb_operator.engine.types import Demand
    from eb_operator.operator.requests import Interpretation

Obj = Mapping[str, Any]
#: ``phase_of(execution uid)``: its phase, None before it has one, False when there is none.
PhaseOf = Callable[[str], Phase | bool | None]
GIB = 1024**3


class InUse(Exception):
    """The storage is held by another session over an overlapping time."""


def selector(uuid: str) -> str:
    return f"{LABEL_MANAGED_BY}={MANAGER},{LABEL_STORAGE_UUID}={uuid}"


def owner_of(claim: Obj) -> str:
    return str(((claim.get("metadata") or {}).get("annotations") or {}).get(ANN_OWNER) or "")


def mountable(claim: Obj, owner: str, namespace: str) -> bool:
    """``owner``'s session with its children in ``namespace`` may mount ``claim``."""
    meta = claim.get("metadata") or {}
    return (
        not meta.get("deletionTimestamp") and owner_of(claim) == owner and meta.get("namespace") == namespace
    )


async def find(cluster: Cluster, uuid: str, owner: str, namespace: str) -> Obj | None:
    """The claim of storage ``uuid`` that ``owner``'s session in ``namespace`` may mount."""
    for claim in await objects.list_claims(cluster, selector(uuid)):
        if mountable(claim, owner, namespace):
            return claim
    return None


def size_gib(claim: Obj) -> int:
    """The claim's size in GiB: what the volume has (status), else what was asked (spec)."""
    capacity = ((claim.get("status") or {}).get("capacity") or {}).get("storage")
    asked = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    text = capacity or asked or "0"
    return int(parse_quantity(str(text)) // GIB)


def expires_of(claim: Obj) -> int | None:
    text = ((claim.get("metadata") or {}).get("annotations") or {}).get(ANN_DELETE_AFTER)
    try:
        return parse_instant(text) if text else None
    except ValueError:
        return None


def live_holds(claim: Obj, phase_of: PhaseOf, but: str | None = None) -> list[tuple[str, int, int]]:
    """The claim's holds of sessions that have not ended: (uid, from, to)."""
    out = []
    for uid, (begin, end) in holds_of(claim).items():
        if uid == but:
            continue
        phase = phase_of(uid)
        if phase is False or (isinstance(phase, Phase) and phase in FINAL_PHASES):
            continue
        out.append((uid, begin, end))
    return out


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# --- at offer time ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reuse:
    """What looking up a request's named storage found."""

    messages: list[MessageItem] = field(default_factory=list)  # ERRORs: the answer is NO
    not_before: int | None = None  # the earliest a reservation may begin (its prepare start)
    sizes: dict[int, int] = field(default_factory=dict)  # index -> GiB of each found claim


async def inspect(
    cluster: Cluster, request: Obj | None, owner: str, namespace: str, phase_of: PhaseOf
) -> Reuse:
    """Find every storage a request names (see the module doc); no I/O when it names none."""
    storage = ((request or {}).get("resources") or {}).get("storage") or []
    messages: list[MessageItem] = []
    sizes: dict[int, int] = {}
    until: list[int] = []
    for i, item in enumerate(storage):
        uuid = reuses(item)
        if not uuid:
            continue  # new storage, or an href the judge refuses
        claim = await find(cluster, uuid, owner, namespace)
        if claim is None:
            messages.append(
                MessageItem.make(
                    MessageType.UNRESOLVED_REFERENCE,
                    MessageLevel.ERROR,
                    "{path}: there is no storage {uuid} of yours to mount (it may have been deleted "
                    "after its lifetime)",
                    {"path": f"resources/storage/{i}/href", "uuid": uuid},
                )
            )
            continue
        sizes[i] = size_gib(claim)
        wanted = ((item.get("size") or {}).get("requested") or {}).get("min")
        if wanted is not None and int(wanted) > sizes[i]:
            messages.append(
                MessageItem.make(
                    MessageType.RESOURCE_LIMIT,
                    MessageLevel.ERROR,
                    "{path}: storage {uuid} holds {size} GiB, not {value}",
                    {
                        "path": f"resources/storage/{i}/size/requested/min",
                        "uuid": uuid,
                        "size": sizes[i],
                        "value": wanted,
                    },
                )
            )
        until += [end for _, _, end in live_holds(claim, phase_of)]
    return Reuse(messages, max(until, default=None), sizes)


def booked_until(state: ClusterState, uuids: Sequence[str], but: str | None = None) -> int | None:
    """The end of the last reservation of an accepted, unfinished session that mounts any of
    ``uuids`` (sessions not yet holding the claim count too), except the Execution ``but``."""
    wanted = set(uuids)
    ends = [
        parse_instant(v.reservation["releaseEnd"])
        for v in _accepted(state)
        if v.key != but and v.reservation and wanted & set(state.reuses_of(v))
    ]
    return max(ends, default=None)


def start_after_holds(
    interp: Interpretation, state: ClusterState, but: str | None = None
) -> tuple[Demand | None, str | None]:
    """The request's demand with its starts after every hold on the storage it mounts again
    (:func:`booked_until` and the claims' holds found at offer time), or None and why no requested
    start is left. Under the decision lock: accepted sessions are counted as the ledger has them."""
    assert interp.demand is not None
    if not interp.reuses:
        return interp.demand, None
    ends = [t for t in (interp.not_before, booked_until(state, interp.reuses, but)) if t is not None]
    if not ends:
        return interp.demand, None
    held = max(ends)
    demand = not_before(interp.demand, held)
    if demand is None:
        return None, (
            f"the storage it mounts again is held by another session until {format_instant(held)}, "
            "after every requested start"
        )
    return demand, None


def _accepted(state: ClusterState) -> list[ExecutionView]:
    return [
        v for v in state.executions.values() if v.phase not in NOT_ACCEPTED and v.phase not in FINAL_PHASES
    ]


# --- at accept -------------------------------------------------------------------------------------


def booked_conflict(state: ClusterState, view: ExecutionView) -> str | None:
    """Why ``view`` cannot be accepted: another accepted session mounts storage it names over an
    overlapping time (None when there is none, or it names no earlier storage)."""
    mine = set(state.reuses_of(view))
    if not mine or not view.reservation:
        return None
    span = (parse_instant(view.reservation["prepareStart"]), parse_instant(view.reservation["releaseEnd"]))
    for other in _accepted(state):
        if other.key == view.key or not other.reservation:
            continue
        shared = sorted(mine & set(state.reuses_of(other)))
        theirs = (
            parse_instant(other.reservation["prepareStart"]),
            parse_instant(other.reservation["releaseEnd"]),
        )
        if shared and overlaps(span, theirs):
            return (
                f"storage {shared[0]} is mounted by another session from {format_instant(theirs[0])} "
                f"to {format_instant(theirs[1])}"
            )
    return None


# --- when the session prepares ---------------------------------------------------------------------


def hold_patch(
    claim: Obj,
    uid: str,
    span: tuple[int, int],
    lifetime: int,
    pods: Sequence[str],
    phase_of: PhaseOf,
) -> dict[str, str | None] | None:
    """The annotations that make ``claim`` held by session ``uid`` over ``span`` with ``lifetime``
    after it, its ``pods`` deleted with it (None: nothing to change). Raises :class:`InUse` when
    another unfinished session holds it over an overlapping time."""
    for _, begin, end in live_holds(claim, phase_of, but=uid):
        if overlaps(span, (begin, end)):
            raise InUse(
                f"it is held by another session from {format_instant(begin)} to {format_instant(end)}"
            )
    notes = (claim.get("metadata") or {}).get("annotations") or {}
    holds = holds_of(claim)
    old_deadline = expires_of(claim) or 0
    try:
        old_lifetime = parse_duration(notes.get(ANN_LIFETIME) or "PT0S")
    except ValueError:
        old_lifetime = 0
    listed = [p for p in str(notes.get(ANN_POD) or "").split(",") if p]
    want_pods = listed + [p for p in pods if p not in listed]
    deadline = max(old_deadline, span[1] + lifetime)
    if holds.get(uid) == span and deadline == old_deadline and want_pods == listed:
        return None
    return {
        "executionbroker.ivoa.net/holds": holds_text({**holds, uid: span}),
        ANN_DELETE_AFTER: format_instant(deadline),
        ANN_LIFETIME: format_duration(max(old_lifetime, lifetime)),
        ANN_SESSION_ENDED: None,  # a session holds it again: its end decides anew
        ANN_POD: ",".join(want_pods),
    }


def requested_lifetime(item: Obj, limit_seconds: int) -> int:
    """The lifetime a reused storage item asks for (0: as it is), capped at the platform's limit."""
    return offered_lifetime(item, limit_seconds) or 0


async def hold(
    cluster: Cluster,
    claim: Obj,
    uid: str,
    span: tuple[int, int],
    lifetime: int,
    pods: Sequence[str],
    phase_of: PhaseOf,
) -> Obj:
    """Write the hold (:func:`hold_patch`) with the claim's resourceVersion as precondition; the
    claim as it is afterwards. Conflict (changed meanwhile) and InUse propagate."""
    patch = hold_patch(claim, uid, span, lifetime, pods, phase_of)
    if patch is None:
        return dict(claim)
    meta = claim["metadata"]
    return await objects.patch_claim(
        cluster, meta["namespace"], meta["name"], patch, resource_version=str(meta.get("resourceVersion"))
    )
