"""Storage after its sessions: when its PersistentVolumeClaim is deleted.

A claim (built by :func:`eb_operator.operator.builders.storage.build_claim`) carries its lifetime
and a ``delete-after`` deadline in annotations, and the sessions that hold it (``holds``: the one
that made it, and later ones that mount it again). Once none of them is still to run or running,
it may go ``lifetime`` later (``keep-undelivered`` later when the last one did not deliver the
results it should have), and never later than that deadline. The session's end settles it at
once (``eb_operator.operator.finishing``); the sweeper (``eb_operator.operator.children``) applies
the same verdicts to claims whose sessions ended without it (deleted, or an operator restart).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eb_operator.cluster.convert import LABEL_EXECUTION_UID
from eb_operator.engine.types import Phase
from eb_operator.model.common import FINAL_PHASES
from eb_operator.model.times import format_instant, parse_duration, parse_instant
from eb_operator.operator.builders.storage import (
    ANN_DELETE_AFTER,
    ANN_KEEP_UNDELIVERED,
    ANN_LIFETIME,
    ANN_SESSION_ENDED,
    holds_of,
)

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    delete: bool = False
    annotations: dict[str, str] | None = None  # to merge-patch onto the claim


def claim_verdict(claim: Obj, session_ended: bool, now: int, delivered: bool = True) -> Verdict:
    """What to do with a persistent-storage PVC: once its sessions have ended (final phases, or
    their Executions gone), it may be deleted ``lifetime`` later (``keep-undelivered`` later when
    the last session did not deliver its results: ``delivered`` False), recorded once in
    annotations; whatever happens, no later than its ``delete-after``."""
    annotations = claim.get("metadata", {}).get("annotations") or {}
    if claim.get("metadata", {}).get("deletionTimestamp"):
        return Verdict()
    try:
        deadline = parse_instant(annotations[ANN_DELETE_AFTER])
        lifetime = parse_duration(annotations.get(ANN_LIFETIME) or "PT0S")
        keep = parse_duration(annotations.get(ANN_KEEP_UNDELIVERED) or "PT0S")
    except (KeyError, ValueError):
        return Verdict()
    if now >= deadline:
        return Verdict(delete=True)
    if session_ended and ANN_SESSION_ENDED not in annotations:
        earlier = min(deadline, now + (lifetime if delivered else max(lifetime, keep)))
        if now >= earlier:
            return Verdict(delete=True)
        return Verdict(
            annotations={ANN_SESSION_ENDED: format_instant(now), ANN_DELETE_AFTER: format_instant(earlier)}
        )
    return Verdict()


def next_deadline(claims: Sequence[Obj]) -> int | None:
    """The earliest ``delete-after`` among ``claims``."""
    times = []
    for c in claims:
        text = (c.get("metadata", {}).get("annotations") or {}).get(ANN_DELETE_AFTER)
        if text:
            try:
                times.append(parse_instant(text))
            except ValueError:
                continue
    return min(times, default=None)


PhaseOf = Callable[[str], "Phase | bool | None"]


def holders(claim: Obj) -> dict[str, tuple[int, int]]:
    """The sessions that hold a claim (uid -> reservation span); a claim without ``holds`` is held
    by the session that made it (its execution-uid label)."""
    found = holds_of(claim)
    if found:
        return found
    uid = (claim.get("metadata", {}).get("labels") or {}).get(LABEL_EXECUTION_UID)
    return {uid: (0, 0)} if uid else {}


def sessions_over(claim: Obj, phase_of: PhaseOf, but: str | None = None) -> tuple[bool, bool]:
    """(ended, delivered): whether every session holding ``claim`` (except ``but``) has ended, and
    whether the last of them (by reservation end) delivered its results: COMPLETED, or gone."""
    held = holders(claim)
    last: tuple[int, Phase | bool | None] | None = None
    for uid, (_, end) in held.items():
        if uid == but:
            continue
        phase = phase_of(uid)
        if phase is not False and not (isinstance(phase, Phase) and phase in FINAL_PHASES):
            return False, True
        if last is None or end >= last[0]:
            last = (end, phase)
    delivered = last is None or last[1] is False or last[1] == Phase.COMPLETED
    return True, delivered
