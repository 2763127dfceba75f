"""Persistent storage after its session: when its PersistentVolumeClaim is deleted.

A claim (built by :func:`eb_operator.operator.builders.storage.build_claim`) carries its lifetime
and a ``delete-after`` deadline in annotations; once its session has ended it may go ``lifetime``
later, and never later than that deadline. The sweeper (``eb_operator.operator.children``) applies
the verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eb_operator.model.times import format_instant, parse_duration, parse_instant
from eb_operator.operator.builders.storage import ANN_DELETE_AFTER, ANN_LIFETIME, ANN_SESSION_ENDED

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    delete: bool = False
    annotations: dict[str, str] | None = None  # to merge-patch onto the claim


def claim_verdict(claim: Obj, session_ended: bool, now: int) -> Verdict:
    """What to do with a persistent-storage PVC: once its session has ended (final phase, or the
    Execution is gone), it may be deleted ``lifetime`` later (recorded once, in annotations);
    whatever happens, no later than the ``delete-after`` written at creation."""
    annotations = claim.get("metadata", {}).get("annotations") or {}
    if claim.get("metadata", {}).get("deletionTimestamp"):
        return Verdict()
    try:
        deadline = parse_instant(annotations[ANN_DELETE_AFTER])
        lifetime = parse_duration(annotations.get(ANN_LIFETIME) or "PT0S")
    except (KeyError, ValueError):
        return Verdict()
    if now >= deadline:
        return Verdict(delete=True)
    if session_ended and ANN_SESSION_ENDED not in annotations:
        earlier = min(deadline, now + lifetime)
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
