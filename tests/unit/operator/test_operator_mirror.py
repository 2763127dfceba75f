"""The phase machine of a session held at a peer broker, one row per rule; and how a peer's
reported phase is mirrored (forward only)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from eb_operator.engine.types import Phase
from eb_operator.operator.mirror import RemoteAction, RemoteFacts, RemoteStep, decide_remote, mirror_phase

pytestmark = pytest.mark.unit

NOW = 1_000_000
OFFER = RemoteFacts(now=NOW, phase=Phase.OFFERED, peer="b", expires=NOW + 300, lost_after=60)


def wants(f: RemoteFacts, desired: str) -> RemoteFacts:
    return replace(f, desired=desired, desired_new=True)


def running(**kw: object) -> RemoteFacts:
    return replace(OFFER, phase=Phase.RUNNING, **kw)  # type: ignore[arg-type]


CASES: list[tuple[str, RemoteFacts, RemoteStep]] = [
    (
        "a fresh offer written as an Execution is OFFERED",
        replace(OFFER, phase=None),
        RemoteStep(phase=Phase.OFFERED, reason="Offered", message="held at peer b", wake_at=NOW + 300),
    ),
    ("an offer waits for its expiry", OFFER, RemoteStep(wake_at=NOW + 300)),
    (
        "an offer past its expiry expires, with no call to the peer",
        replace(OFFER, now=NOW + 300),
        RemoteStep(phase=Phase.EXPIRED, reason="Expired", message="not accepted by 1970-01-12T13:51:40Z"),
    ),
    (
        "an offer whose sibling was accepted is rejected, here and at the peer",
        replace(OFFER, accepted_sibling="x"),
        RemoteStep(
            phase=Phase.REJECTED,
            reason="Rejected",
            message="another offer of this set (x) was accepted",
            action=RemoteAction.REJECT,
        ),
    ),
    (
        "an accept asks the peer first",
        wants(OFFER, "ACCEPTED"),
        RemoteStep(action=RemoteAction.ACCEPT, reason="Accepted", message="accepted at peer b"),
    ),
    (
        "an accept of an offer written with it asks the peer first",
        wants(replace(OFFER, phase=None), "ACCEPTED"),
        RemoteStep(action=RemoteAction.ACCEPT, reason="Accepted", message="accepted at peer b"),
    ),
    (
        "an accept after the expiry is refused and the offer expires",
        wants(replace(OFFER, now=NOW + 300), "ACCEPTED"),
        RemoteStep(
            phase=Phase.EXPIRED,
            reason="Expired",
            message="the offer expired at 1970-01-12T13:51:40Z",
            refused=True,
        ),
    ),
    (
        "an accept after a sibling's is refused and the offer rejected",
        wants(replace(OFFER, accepted_sibling="x"), "ACCEPTED"),
        RemoteStep(
            phase=Phase.REJECTED,
            reason="Rejected",
            message="another offer of this set (x) was accepted",
            refused=True,
        ),
    ),
    ("an accept of an accepted session follows the peer", wants(running(), "ACCEPTED"),
     RemoteStep(action=RemoteAction.POLL)),
    (
        "a reject is told to the peer and applied here whatever it answers",
        wants(OFFER, "REJECTED"),
        RemoteStep(Phase.REJECTED, "Rejected", "rejected by the client", RemoteAction.REJECT),
    ),
    (
        "a cancel asks the peer first",
        wants(running(), "CANCELLED"),
        RemoteStep(action=RemoteAction.CANCEL, reason="Cancelled", message="cancelled at peer b"),
    ),
    (
        "a cancel of an offer is refused",
        wants(OFFER, "CANCELLED"),
        RemoteStep(reason="InvalidTransition", message="an offer is declined with REJECTED, not CANCELLED",
                   refused=True),
    ),
    (
        "a cancel while releasing is refused",
        wants(replace(OFFER, phase=Phase.RELEASING), "CANCELLED"),
        RemoteStep(reason="InvalidTransition", message="cannot cancel in phase RELEASING", refused=True),
    ),
    (
        "anything asked of a final session is refused",
        wants(replace(OFFER, phase=Phase.COMPLETED), "CANCELLED"),
        RemoteStep(reason="InvalidTransition", message="cannot change to CANCELLED: phase COMPLETED is final",
                   refused=True),
    ),
    (
        "a broker-driven phase cannot be asked for",
        wants(OFFER, "RUNNING"),
        RemoteStep(reason="InvalidTransition", refused=True,
                   message="RUNNING cannot be requested; use ACCEPTED, REJECTED or CANCELLED"),
    ),
    ("an accepted session follows the peer", running(), RemoteStep(action=RemoteAction.POLL)),
    (
        "a session whose peer is silent, within the bound, is still followed",
        running(unreachable_since=NOW - 59),
        RemoteStep(action=RemoteAction.POLL),
    ),
    (
        "a session whose peer is silent past the bound fails",
        running(unreachable_since=NOW - 60),
        RemoteStep(
            phase=Phase.FAILED,
            reason="PeerLost",
            message="peer b has not answered about the session since 1970-01-12T13:45:40Z (60 s)",
        ),
    ),
    ("a final session rests", replace(OFFER, phase=Phase.COMPLETED), RemoteStep()),
]  # fmt: skip


@pytest.mark.parametrize(("what", "facts", "step"), CASES, ids=[c[0] for c in CASES])
def test_the_next_step(what: str, facts: RemoteFacts, step: RemoteStep) -> None:
    assert decide_remote(facts) == step


MIRROR = [
    (Phase.ACCEPTED, Phase.WAITING, Phase.WAITING),
    (Phase.ACCEPTED, Phase.RUNNING, Phase.RUNNING),
    (Phase.WAITING, Phase.READY, Phase.READY),
    (Phase.RUNNING, Phase.RELEASING, Phase.RELEASING),
    (Phase.RUNNING, Phase.COMPLETED, Phase.COMPLETED),
    (Phase.PREPARING, Phase.FAILED, Phase.FAILED),
    (Phase.READY, Phase.CANCELLED, Phase.CANCELLED),
    (Phase.RUNNING, Phase.PREPARING, None),  # never backwards
    (Phase.RUNNING, Phase.RUNNING, None),
    (Phase.WAITING, Phase.ACCEPTED, None),
    (Phase.WAITING, Phase.OFFERED, None),
    (Phase.RUNNING, Phase.REJECTED, Phase.FAILED),  # an accepted session rejected there failed
    (Phase.ACCEPTED, Phase.EXPIRED, Phase.FAILED),
    (Phase.COMPLETED, Phase.FAILED, None),  # a final phase never changes
]


@pytest.mark.parametrize(("local", "remote", "written"), MIRROR, ids=[f"{a} sees {b}" for a, b, _ in MIRROR])
def test_a_peers_phase_is_mirrored_forward_only(local: Phase, remote: Phase, written: Phase | None) -> None:
    phase, why = mirror_phase(local, remote)
    assert phase == written
    assert bool(why) is (written is not None)
