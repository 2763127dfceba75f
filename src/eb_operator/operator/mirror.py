"""The phase machine of a session held at a peer broker, as a pure function of what is observed.

Such a session is a local Execution (``spec.peer``) whose phase follows the peer's: this broker
asks the peer to accept, reject or cancel it when the client asks this broker, and otherwise
reads the peer's session and mirrors its phase, forwards only (digest §4). Like
:mod:`eb_operator.operator.lifecycle`, :func:`decide_remote` says what to do next from the facts
and never does it; :mod:`eb_operator.operator.remote` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from eb_operator.engine.types import Phase
from eb_operator.model.common import ACCEPTED_PHASES, CANCELLABLE_PHASES, FINAL_PHASES
from eb_operator.model.times import format_instant

#: The forward order of an accepted session's phases (a peer's report never moves one back).
_ORDER = {
    p: i
    for i, p in enumerate(
        (Phase.ACCEPTED, Phase.WAITING, Phase.PREPARING, Phase.READY, Phase.RUNNING, Phase.RELEASING)
    )
}


class RemoteAction(StrEnum):
    NONE = "none"
    ACCEPT = "accept"  # ask the peer to accept; ACCEPTED here only once it did
    REJECT = "reject"  # tell the peer (best effort); REJECTED here whatever it answers
    CANCEL = "cancel"  # ask the peer to cancel; CANCELLED here only once it did
    POLL = "poll"  # read the peer's session and mirror it


@dataclass(frozen=True, slots=True)
class RemoteFacts:
    now: int
    phase: Phase | None
    peer: str
    desired: str | None = None
    desired_new: bool = False
    expires: int | None = None
    accepted_sibling: str | None = None
    unreachable_since: int | None = None
    lost_after: int = 300


@dataclass(frozen=True, slots=True)
class RemoteStep:
    phase: Phase | None = None  # to write now (before or without any call to the peer)
    reason: str = ""
    message: str = ""
    action: RemoteAction = RemoteAction.NONE
    refused: bool = False
    wake_at: int | None = None


def _refuse(message: str, phase: Phase | None = None, reason: str = "InvalidTransition") -> RemoteStep:
    return RemoteStep(phase=phase, reason=reason, message=message, refused=True)


def decide_remote(f: RemoteFacts) -> RemoteStep:
    """The next step for one session held at a peer."""
    if f.desired_new and f.desired:
        step = _desired(f)
        if step is not None:
            return step
    return _progress(f)


def _desired(f: RemoteFacts) -> RemoteStep | None:
    p, want = f.phase, f.desired
    offered = p in (None, Phase.OFFERED)
    if p is not None and p in FINAL_PHASES:
        return _refuse(f"cannot change to {want}: phase {p} is final")
    if want == Phase.ACCEPTED:
        if offered:
            if f.expires is not None and f.now >= f.expires:
                return _refuse(f"the offer expired at {format_instant(f.expires)}", Phase.EXPIRED, "Expired")
            if f.accepted_sibling:
                msg = f"another offer of this set ({f.accepted_sibling}) was accepted"
                return _refuse(msg, Phase.REJECTED, "Rejected")
            msg = f"accepted at peer {f.peer}"
            return RemoteStep(action=RemoteAction.ACCEPT, reason="Accepted", message=msg)
        if p in ACCEPTED_PHASES:
            return None  # already accepted: nothing to refuse
        return _refuse(f"only an OFFERED offer can be accepted; phase is {p}")
    if want == Phase.REJECTED:
        if offered:
            return RemoteStep(
                phase=Phase.REJECTED,
                reason="Rejected",
                message="rejected by the client",
                action=RemoteAction.REJECT,
            )
        return _refuse(f"only an OFFERED offer can be rejected; phase is {p}")
    if want == Phase.CANCELLED:
        if p in CANCELLABLE_PHASES:
            msg = f"cancelled at peer {f.peer}"
            return RemoteStep(action=RemoteAction.CANCEL, reason="Cancelled", message=msg)
        if offered:
            return _refuse("an offer is declined with REJECTED, not CANCELLED")
        return _refuse(f"cannot cancel in phase {p}")
    return _refuse(f"{want} cannot be requested; use ACCEPTED, REJECTED or CANCELLED")


def _progress(f: RemoteFacts) -> RemoteStep:
    p = f.phase
    if p is None or p == Phase.PROPOSED:
        return RemoteStep(
            phase=Phase.OFFERED, reason="Offered", message=f"held at peer {f.peer}", wake_at=f.expires
        )
    if p in FINAL_PHASES:
        return RemoteStep()
    if p == Phase.OFFERED:
        if f.accepted_sibling:
            msg = f"another offer of this set ({f.accepted_sibling}) was accepted"
            action = RemoteAction.REJECT
            return RemoteStep(phase=Phase.REJECTED, reason="Rejected", message=msg, action=action)
        if f.expires is not None and f.now >= f.expires:
            msg = f"not accepted by {format_instant(f.expires)}"
            return RemoteStep(phase=Phase.EXPIRED, reason="Expired", message=msg)
        return RemoteStep(wake_at=f.expires)
    if f.unreachable_since is not None and f.now - f.unreachable_since >= f.lost_after:
        return RemoteStep(
            phase=Phase.FAILED,
            reason="PeerLost",
            message=f"peer {f.peer} has not answered about the session since "
            f"{format_instant(f.unreachable_since)} ({f.now - f.unreachable_since} s)",
        )
    return RemoteStep(action=RemoteAction.POLL)


def mirror_phase(local: Phase, remote: Phase) -> tuple[Phase | None, str]:
    """The phase to write when the peer reports ``remote`` for a session accepted here (None:
    keep ``local``), and why. Forward only; a peer's REJECTED or EXPIRED after an accept is a
    failure of the session, said so."""
    if local in FINAL_PHASES:
        return None, ""
    if remote in (Phase.COMPLETED, Phase.FAILED, Phase.CANCELLED):
        return remote, f"the peer reports {remote}"
    if remote in (Phase.REJECTED, Phase.EXPIRED):
        return Phase.FAILED, f"the peer reports the accepted session {remote}"
    if remote in _ORDER and local in _ORDER and _ORDER[remote] > _ORDER[local]:
        return remote, f"the peer reports {remote}"
    return None, ""
