"""The Execution phase machine, one row per rule."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from eb_operator.engine.types import Phase
from eb_operator.operator.lifecycle import (
    Action,
    Facts,
    Outcome,
    PodView,
    Step,
    decide,
    observe_pod,
    pod_outcome,
)

pytestmark = pytest.mark.unit

NOW = 1_000_000
OFFER = Facts(
    now=NOW,
    phase=Phase.OFFERED,
    offered=True,
    reserved=True,
    expires=NOW + 300,
    prepare_start=NOW + 600,
    start=NOW + 630,
    release_end=NOW + 630 + 3600 + 60,
    node="n1",
)
RUNNING_POD = PodView(name="p", phase="Running", scheduled=True, initialized=True, running=True)


def accepted(phase: Phase, **kw: Any) -> Facts:
    return replace(OFFER, phase=phase, **kw)


def wants(f: Facts, desired: str) -> Facts:
    return replace(f, desired=desired, desired_new=True)


CASES: list[tuple[str, Facts, Step]] = [
    ("an offer waits for its expiry", OFFER, Step(wake_at=NOW + 300)),
    (
        "an offer past its expiry expires",
        replace(OFFER, now=NOW + 300),
        Step(phase=Phase.EXPIRED, reason="Expired", message="not accepted by 1970-01-12T13:51:40Z"),
    ),
    (
        "an offer whose sibling was accepted is rejected",
        replace(OFFER, accepted_sibling="other"),
        Step(
            phase=Phase.REJECTED, reason="Rejected", message="another offer of this set (other) was accepted"
        ),
    ),
    (
        "accepting an offer asks for the accept step",
        wants(OFFER, "ACCEPTED"),
        Step(action=Action.ACCEPT, reason="Accepted", message="accepted by the client"),
    ),
    (
        "accepting an expired offer expires it and refuses",
        wants(replace(OFFER, now=NOW + 301), "ACCEPTED"),
        Step(
            phase=Phase.EXPIRED,
            reason="Expired",
            message="the offer expired at 1970-01-12T13:51:40Z",
            refused=True,
        ),
    ),
    (
        "accepting an offer whose sibling won rejects it and refuses",
        wants(replace(OFFER, accepted_sibling="winner"), "ACCEPTED"),
        Step(
            phase=Phase.REJECTED,
            reason="Rejected",
            message="another offer of this set (winner) was accepted",
            refused=True,
        ),
    ),
    (
        "rejecting an offer rejects it",
        wants(OFFER, "REJECTED"),
        Step(phase=Phase.REJECTED, reason="Rejected", message="rejected by the client"),
    ),
    (
        "cancelling an offer is refused",
        wants(OFFER, "CANCELLED"),
        Step(
            reason="InvalidTransition",
            message="an offer is declined with REJECTED, not CANCELLED",
            refused=True,
        ),
    ),
    (
        "any change in a final phase is refused",
        wants(accepted(Phase.COMPLETED), "CANCELLED"),
        Step(
            reason="InvalidTransition",
            message="cannot change to CANCELLED: phase COMPLETED is final",
            refused=True,
        ),
    ),
    (
        "rejecting after acceptance is refused",
        wants(accepted(Phase.WAITING), "REJECTED"),
        Step(
            reason="InvalidTransition",
            message="only an OFFERED offer can be rejected; phase is WAITING",
            refused=True,
        ),
    ),
    (
        "cancelling a running execution cancels it and deletes its Pod",
        wants(accepted(Phase.RUNNING, pod=RUNNING_POD), "CANCELLED"),
        Step(
            phase=Phase.CANCELLED,
            reason="Cancelled",
            message="cancelled by the client",
            action=Action.DELETE_POD,
        ),
    ),
    (
        "cancelling while releasing is refused",
        wants(accepted(Phase.RELEASING), "CANCELLED"),
        Step(reason="InvalidTransition", message="cannot cancel in phase RELEASING", refused=True),
    ),
    (
        "a repeated accept after acceptance is not refused",
        wants(accepted(Phase.WAITING), "ACCEPTED"),
        Step(wake_at=NOW + 600),
    ),
    (
        "accepted before its preparation time it waits",
        accepted(Phase.ACCEPTED),
        Step(
            phase=Phase.WAITING,
            reason="Waiting",
            message="waiting until 1970-01-12T13:56:40Z",
            wake_at=NOW + 600,
        ),
    ),
    (
        "waiting until preparation time it prepares with a Pod",
        accepted(Phase.WAITING, now=NOW + 600),
        Step(phase=Phase.PREPARING, reason="Preparing", message="creating the Pod", action=Action.CREATE_POD),
    ),
    (
        "preparing without a Pod creates it",
        accepted(Phase.PREPARING, now=NOW + 600),
        Step(action=Action.CREATE_POD),
    ),
    (
        "a running container makes it RUNNING",
        accepted(Phase.PREPARING, now=NOW + 601, pod=RUNNING_POD),
        Step(
            phase=Phase.RUNNING,
            reason="Running",
            message="the container is running",
            wake_at=NOW + 630 + 3720,
        ),
    ),
    (
        "a scheduled, initialised Pod makes it READY",
        accepted(Phase.PREPARING, now=NOW + 601, pod=PodView(name="p", scheduled=True, initialized=True)),
        Step(
            phase=Phase.READY,
            reason="Ready",
            message="the Pod is scheduled and initialised",
            wake_at=NOW + 630 + 3720,
        ),
    ),
    (
        "a Pod whose staging is done and that waits for the offered start makes it READY",
        accepted(Phase.PREPARING, now=NOW + 610, pod=PodView(name="p", scheduled=True, awaiting_start=True)),
        Step(
            phase=Phase.READY,
            reason="Ready",
            message="the Pod is prepared and waits for the offered start",
            wake_at=NOW + 630 + 3720,
        ),
    ),
    (
        "a READY Pod waiting for the offered start stays READY",
        accepted(Phase.READY, now=NOW + 620, pod=PodView(name="p", scheduled=True, awaiting_start=True)),
        Step(wake_at=NOW + 630 + 3720),
    ),
    (
        "a zero exit releases",
        accepted(Phase.RUNNING, pod=replace(RUNNING_POD, phase="Succeeded", running=False, exit_code=0)),
        Step(phase=Phase.RELEASING, reason="Releasing", message="the container exited with code 0"),
    ),
    (
        "releasing completes",
        accepted(Phase.RELEASING),
        Step(phase=Phase.COMPLETED, reason="Completed", message="the execution completed"),
    ),
    (
        "a non-zero exit fails with the exit code",
        accepted(Phase.RUNNING, pod=replace(RUNNING_POD, phase="Failed", running=False, exit_code=1)),
        Step(phase=Phase.FAILED, reason="Failed", message="the container exited with code 1"),
    ),
    (
        "a pull failure fails and removes the Pod",
        accepted(
            Phase.PREPARING,
            pod=PodView(
                name="p", scheduled=True, waiting_reason="ErrImageNeverPull", waiting_message="not present"
            ),
        ),
        Step(
            phase=Phase.FAILED,
            reason="Failed",
            message="the image could not be pulled (ErrImageNeverPull): not present",
            action=Action.DELETE_POD,
        ),
    ),
    (
        "a vanished Pod while running fails",
        accepted(Phase.RUNNING),
        Step(phase=Phase.FAILED, reason="PodLost", message="the Pod was deleted or its node was lost"),
    ),
    (
        "an evicted Pod being deleted fails naming the eviction, not a lost Pod",
        accepted(
            Phase.RUNNING,
            pod=replace(
                RUNNING_POD, deleting=True, disruption="EvictionByEvictionAPI: Eviction API: evicting"
            ),
        ),
        Step(
            phase=Phase.FAILED,
            reason="Disrupted",
            message="the Pod was evicted (EvictionByEvictionAPI: Eviction API: evicting)",
        ),
    ),
    (
        "a lost node fails the execution",
        accepted(Phase.RUNNING, pod=RUNNING_POD, node_lost=True),
        Step(phase=Phase.FAILED, reason="NodeLost", message="node n1 was lost", action=Action.DELETE_POD),
    ),
    (
        "a Pod still running long after the reservation is failed and removed",
        accepted(Phase.RUNNING, pod=RUNNING_POD, now=NOW + 630 + 3720),
        Step(
            phase=Phase.FAILED,
            reason="Overrun",
            message="still not finished when the reservation ended at 1970-01-12T14:58:10Z",
            action=Action.DELETE_POD,
        ),
    ),
    (
        "a final execution with a live Pod deletes it",
        accepted(Phase.CANCELLED, pod=RUNNING_POD),
        Step(action=Action.DELETE_POD),
    ),
    (
        "a completed execution keeps its finished Pod for the logs",
        accepted(Phase.COMPLETED, pod=replace(RUNNING_POD, running=False, exit_code=0)),
        Step(),
    ),
    (
        "a new direct request asks for a reservation",
        Facts(now=NOW, phase=None),
        Step(action=Action.RESERVE),
    ),
    (
        "a direct request naming a reservation asks for validation",
        Facts(now=NOW, phase=None, reserved=True),
        Step(action=Action.VALIDATE),
    ),
    (
        "a direct request may be cancelled before it is handled",
        wants(Facts(now=NOW, phase=None), "CANCELLED"),
        Step(
            phase=Phase.CANCELLED,
            reason="Cancelled",
            message="cancelled by the client",
            action=Action.DELETE_POD,
        ),
    ),
]


@pytest.mark.parametrize(("facts", "step"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(facts: Facts, step: Step) -> None:
    assert decide(facts) == step


def pod(phase: str = "Pending", reason: str | None = None, **container: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "PodScheduled", "status": "True"}]}
    if reason:
        status |= {"reason": reason, "message": "details"}
    if container:
        status["containerStatuses"] = [{"name": "main", "state": container}]
    return {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": status}


OUTCOMES = [
    ("pending", pod(), Outcome.PENDING, "the Pod is pending"),
    ("running", pod("Running", running={"startedAt": "x"}), Outcome.RUNNING, "the container is running"),
    (
        "deadline",
        pod("Failed", "DeadlineExceeded"),
        Outcome.FAILED,
        "the run time limit was reached: the Pod was stopped at its deadline (DeadlineExceeded)",
    ),
    ("evicted", pod("Failed", "Evicted"), Outcome.FAILED, "the Pod was evicted (Evicted): details"),
    (
        "oom",
        pod("Failed", terminated={"exitCode": 137, "reason": "OOMKilled"}),
        Outcome.FAILED,
        "the container exited with code 137 (OOMKilled)",
    ),
    (
        "pull backoff",
        pod(waiting={"reason": "ImagePullBackOff", "message": "back-off pulling"}),
        Outcome.FAILED,
        "the image could not be pulled (ImagePullBackOff): back-off pulling",
    ),
    (
        "succeeded",
        pod("Succeeded", terminated={"exitCode": 0}),
        Outcome.SUCCEEDED,
        "the container exited with code 0",
    ),
]


def waiting_pod(stage: dict[str, Any], wait: dict[str, Any]) -> dict[str, Any]:
    """A Pod created before its start: ``stage-0``, then ``wait-start`` (staging.wait_container)."""
    obj = pod(waiting={"reason": "PodInitializing"})
    obj["status"]["initContainerStatuses"] = [
        {"name": "stage-0", "state": stage},
        {"name": "wait-start", "state": wait},
    ]
    return obj


DISRUPTED = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "EvictionByEvictionAPI",
    "message": "Eviction API: evicting",
}


def evicted(phase: str, **container: Any) -> dict[str, Any]:
    obj = pod(phase, **container)
    obj["status"]["conditions"].append(DISRUPTED)
    return obj


OUTCOMES += [
    (
        "evicted, still running",
        evicted("Running", running={"startedAt": "x"}),
        Outcome.FAILED,
        "the Pod was evicted (EvictionByEvictionAPI: Eviction API: evicting)",
    ),
    (
        "evicted, its container killed",
        evicted("Failed", terminated={"exitCode": 143}),
        Outcome.FAILED,
        "the Pod was evicted (EvictionByEvictionAPI: Eviction API: evicting)",
    ),
]

OUTCOMES += [
    (
        "staging",
        waiting_pod({"running": {}}, {"waiting": {"reason": "PodInitializing"}}),
        Outcome.PENDING,
        "the Pod is pending",
    ),
    (
        "staged, waiting for the start",
        waiting_pod({"terminated": {"exitCode": 0}}, {"running": {"startedAt": "x"}}),
        Outcome.READY,
        "the Pod is prepared and waits for the offered start",
    ),
    (
        "the wait killed",
        waiting_pod(
            {"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
        ),
        Outcome.FAILED,
        "waiting for the offered start failed: wait-start exited with code 137: OOMKilled",
    ),
]


@pytest.mark.parametrize(
    ("obj", "outcome", "message"), [o[1:] for o in OUTCOMES], ids=[o[0] for o in OUTCOMES]
)
def test_pod_outcomes_name_their_cause(obj: dict[str, Any], outcome: Outcome, message: str) -> None:
    assert pod_outcome(observe_pod(obj)) == (outcome, message)
