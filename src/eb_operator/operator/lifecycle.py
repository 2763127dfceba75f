"""The Execution phase machine, as a pure function of what is observed.

``decide(facts)`` looks at an Execution's current phase, the client's desired phase, the clock,
its Pod (and, once its run has ended, the Pod delivering its results) and its siblings, and says
what to do next: which phase to write, why, and which side effect to perform. It never reads the
clock or the API itself, so every transition is a table-driven unit test.
:class:`eb_operator.operator.reconcile.Reconciler` calls it on every change (level-based: the same
facts always give the same step, so running it twice is harmless).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eb_operator.engine.types import Phase
from eb_operator.model.common import ACCEPTED_PHASES, CANCELLABLE_PHASES, FINAL_PHASES
from eb_operator.model.times import format_instant
from eb_operator.operator.builders.endpoints import ANN_ENDPOINTS, Plan, decode
from eb_operator.operator.builders.notebook import LABEL_INTERACTIVE
from eb_operator.operator.builders.stageout import Delivered, delivered
from eb_operator.operator.builders.staging import WAIT_CONTAINER

Obj = Mapping[str, Any]

#: Phases in which the Execution's Pod should exist.
POD_PHASES = frozenset({Phase.PREPARING, Phase.READY, Phase.RUNNING})

IMAGE_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})
CREATE_ERRORS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
#: How long after the reservation ends a Pod that is somehow still there is failed and removed.
OVERRUN_GRACE = 60


# --- the Pod, as observed ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodView:
    name: str
    phase: str = "Pending"
    namespace: str = ""
    node: str | None = None
    deleting: bool = False
    scheduled: bool = False
    unschedulable: str | None = None
    initialized: bool = False
    running: bool = False
    waiting_reason: str | None = None
    waiting_message: str | None = None
    exit_code: int | None = None
    terminated_reason: str | None = None
    reason: str | None = None
    message: str | None = None
    disruption: str | None = None
    started: str | None = None
    finished: str | None = None
    ready: bool = False  # the Pod's Ready condition (a notebook server answers its readiness probe)
    interactive: bool = False  # a notebook server: READY when it answers, its deadline a normal end
    init_failure: str | None = None  # an init container (data staging) that failed, and why
    awaiting_start: bool = False  # staging done; the last init container waits for the offered start
    reach: Plan | None = None  # what a person connects to (a notebook server, web apps), and its route

    @property
    def finished_or_gone(self) -> bool:
        """Nothing left to stop: the Pod ended, its container ended, or it is being deleted."""
        return self.phase in ("Succeeded", "Failed") or self.deleting or self.exit_code is not None


def observe_pod(pod: Obj) -> PodView:
    """The few facts about a Pod that the phase machine needs."""
    meta = pod.get("metadata", {})
    status = pod.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    sched = conds.get("PodScheduled") or {}
    disruption = conds.get("DisruptionTarget") or {}
    main: Obj = next(iter(status.get("containerStatuses") or []), {})
    state = main.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    running = state.get("running") or {}
    return PodView(
        name=str(meta.get("name", "")),
        phase=str(status.get("phase") or "Pending"),
        namespace=str(meta.get("namespace", "")),
        node=(pod.get("spec") or {}).get("nodeName"),
        deleting=bool(meta.get("deletionTimestamp")),
        scheduled=sched.get("status") == "True",
        unschedulable=sched.get("message") if sched.get("reason") == "Unschedulable" else None,
        initialized=(conds.get("Initialized") or {}).get("status") == "True",
        running=bool(running),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
        exit_code=terminated.get("exitCode"),
        terminated_reason=terminated.get("reason"),
        reason=status.get("reason"),
        message=status.get("message"),
        disruption=(
            f"{disruption.get('reason')}: {disruption.get('message')}"
            if disruption.get("status") == "True"
            else None
        ),
        started=running.get("startedAt") or terminated.get("startedAt"),
        finished=terminated.get("finishedAt"),
        ready=(conds.get("Ready") or {}).get("status") == "True",
        interactive=(meta.get("labels") or {}).get(LABEL_INTERACTIVE) == "true",
        init_failure=_init_failure(status.get("initContainerStatuses") or []),
        awaiting_start=_awaiting_start(status.get("initContainerStatuses") or []),
        reach=_reach((meta.get("annotations") or {}).get(ANN_ENDPOINTS)),
    )


def _reach(annotation: str | None) -> Plan | None:
    found = decode(annotation) if annotation else None
    return found if found is not None and found.endpoints else None


def _awaiting_start(statuses: list[Obj]) -> bool:
    for c in statuses:
        if c.get("name") == WAIT_CONTAINER:
            state = c.get("state") or {}
            return bool(state.get("running")) or (state.get("terminated") or {}).get("exitCode") == 0
    return False


def _init_failure(statuses: list[Obj]) -> str | None:
    """``<name> exited with code N: <termination message>`` for the first failed init container."""
    for c in statuses:
        term = (c.get("state") or {}).get("terminated") or (c.get("lastState") or {}).get("terminated")
        if term and term.get("exitCode") not in (None, 0):
            text = " ".join(str(term.get("message") or term.get("reason") or "").split())
            return f"{c.get('name')} exited with code {term['exitCode']}" + (f": {text}" if text else "")
    return None


class Outcome(StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


def pod_outcome(p: PodView) -> tuple[Outcome, str]:
    """What a Pod's state means for its Execution, with a message naming the cause of a failure."""
    if p.init_failure is not None:
        if p.init_failure.startswith(f"{WAIT_CONTAINER} "):
            return Outcome.FAILED, f"waiting for the offered start failed: {p.init_failure}"
        return Outcome.FAILED, f"data staging failed: {p.init_failure}"
    if p.interactive and p.phase == "Failed" and p.reason == "DeadlineExceeded":
        return Outcome.SUCCEEDED, "the session's duration elapsed: the notebook server was stopped"
    if p.phase == "Failed":
        if p.reason == "DeadlineExceeded":
            return Outcome.FAILED, (
                "the run time limit was reached: the Pod was stopped at its deadline (DeadlineExceeded)"
            )
        if p.reason == "Evicted":
            return Outcome.FAILED, f"the Pod was evicted (Evicted): {p.message or 'no message'}"
        if p.disruption:  # the container's exit (e.g. 143) is the effect, the disruption the cause
            return Outcome.FAILED, disruption_message(p.disruption)
        if p.exit_code is not None and p.exit_code != 0:
            return Outcome.FAILED, _exit_message(p)
        return Outcome.FAILED, f"the Pod failed ({p.reason or 'unknown reason'}): {p.message or 'no message'}"
    if p.phase == "Succeeded":
        return Outcome.SUCCEEDED, "the container exited with code 0"
    if p.disruption:
        return Outcome.FAILED, disruption_message(p.disruption)
    if p.exit_code is not None and p.exit_code != 0:
        return Outcome.FAILED, _exit_message(p)
    if p.waiting_reason in IMAGE_ERRORS:
        return (
            Outcome.FAILED,
            f"the image could not be pulled ({p.waiting_reason}): {p.waiting_message or ''}".rstrip(": "),
        )
    if p.waiting_reason in CREATE_ERRORS:
        return (
            Outcome.FAILED,
            f"the container could not be created ({p.waiting_reason}): {p.waiting_message or ''}",
        )
    if p.exit_code == 0:
        return Outcome.SUCCEEDED, "the container exited with code 0"
    if p.interactive:
        if p.running and p.ready:
            return Outcome.READY, "the notebook server answers"
        return Outcome.PENDING, "waiting for the notebook server to answer"
    if p.running:
        return Outcome.RUNNING, "the container is running"
    if p.scheduled and p.initialized:
        return Outcome.READY, "the Pod is scheduled and initialised"
    if p.scheduled and p.awaiting_start:
        return Outcome.READY, "the Pod is prepared and waits for the offered start"
    return Outcome.PENDING, "the Pod is pending"


def disruption_message(disruption: str) -> str:
    """The Pod's DisruptionTarget condition (``reason: message``) as the cause of a failure: an
    eviction (the Eviction API, a taint, preemption) says so."""
    if "Evict" in disruption.split(":", 1)[0]:
        return f"the Pod was evicted ({disruption})"
    return f"the Pod was disrupted ({disruption})"


def _exit_message(p: PodView) -> str:
    reason = f" ({p.terminated_reason})" if p.terminated_reason and p.terminated_reason != "Error" else ""
    return f"the container exited with code {p.exit_code}{reason}"


# --- the delivery Pod, as observed ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """The Pod that stages a session's results out (``builders.stageout``), as observed."""

    name: str
    phase: str = "Pending"
    deleting: bool = False
    results: tuple[Delivered, ...] = ()  # what each ended delivery container reported
    reason: str | None = None
    message: str | None = None
    waiting_reason: str | None = None
    waiting_message: str | None = None

    @property
    def finished_or_gone(self) -> bool:
        return self.phase in ("Succeeded", "Failed") or self.deleting


def observe_delivery(pod: Obj) -> DeliveryView:
    """The facts about a delivery Pod the phase machine needs."""
    meta = pod.get("metadata", {})
    status = pod.get("status") or {}
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    waiting: Obj = next(
        (w for c in statuses if (w := (c.get("state") or {}).get("waiting")) and w.get("reason")), {}
    )
    return DeliveryView(
        name=str(meta.get("name", "")),
        phase=str(status.get("phase") or "Pending"),
        deleting=bool(meta.get("deletionTimestamp")),
        results=tuple(delivered(statuses)),
        reason=status.get("reason"),
        message=status.get("message"),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
    )


def delivery_outcome(d: DeliveryView) -> tuple[Outcome, str]:
    """What a delivery Pod's state means for its session, with the cause of a failure."""
    failed = next((r for r in d.results if not r.ok), None)
    if failed is not None:
        text = failed.message or "no message"
        if not text.startswith("staging out failed"):
            text = f"staging out failed: {text}"
        return Outcome.FAILED, f"resources/storage/{failed.index}: {text}"
    if d.phase == "Failed":
        if d.reason == "DeadlineExceeded":
            return (
                Outcome.FAILED,
                "the results were not delivered by the end of the reservation (DeadlineExceeded)",
            )
        return (
            Outcome.FAILED,
            f"the delivery Pod failed ({d.reason or 'unknown reason'}): {d.message or 'no message'}",
        )
    if d.waiting_reason in IMAGE_ERRORS or d.waiting_reason in CREATE_ERRORS:
        return (
            Outcome.FAILED,
            f"the delivery could not start ({d.waiting_reason}): {d.waiting_message or ''}".rstrip(": "),
        )
    if d.phase == "Succeeded":
        files = sum(r.files or 0 for r in d.results)
        size = sum(r.bytes or 0 for r in d.results)
        return Outcome.SUCCEEDED, f"the results were delivered: {files} files, {size} bytes"
    return Outcome.PENDING, "delivering the results"


# --- the decision -------------------------------------------------------------------------------


class Action(StrEnum):
    NONE = "none"
    ACCEPT = "accept"  # re-validate and accept this offer, reject its siblings
    RESERVE = "reserve"  # a direct request: find the earliest slot and hold it
    VALIDATE = "validate"  # a direct request that already names a reservation: check it
    CREATE_POD = "create-pod"
    DELETE_POD = "delete-pod"  # the session's Pods: its workload's, and its delivery's
    DELIVER = "deliver"  # create the Pod that stages the results out


@dataclass(frozen=True, slots=True)
class Facts:
    now: int
    phase: Phase | None
    offered: bool = False  # it belongs to an OfferSet
    reserved: bool = False  # spec.reservation is set
    desired: str | None = None
    desired_new: bool = False  # metadata.generation > status.observedGeneration
    expires: int | None = None
    prepare_start: int | None = None
    start: int | None = None
    release_end: int | None = None
    node: str | None = None
    node_lost: bool = False
    pod: PodView | None = None
    accepted_sibling: str | None = None
    withdrawn: str | None = None  # an offer taken back (fair sharing): why
    delivers: bool = False  # results to stage out once the run ends (a storage ``stageout``)
    delivery: DeliveryView | None = None


@dataclass(frozen=True, slots=True)
class Step:
    phase: Phase | None = None  # the phase to write; None keeps the current one
    reason: str = ""
    message: str = ""
    action: Action = Action.NONE
    refused: bool = False  # the desired phase was refused (the phase is unchanged unless ``phase``)
    wake_at: int | None = None  # reconcile again at this time

    @property
    def noop(self) -> bool:
        return self.phase is None and self.action is Action.NONE and not self.refused


def refuse(message: str, phase: Phase | None = None, reason: str = "InvalidTransition") -> Step:
    return Step(phase=phase, reason=reason, message=message, refused=True)


def decide(f: Facts) -> Step:
    """The next step for one Execution."""
    if f.desired_new and f.desired:
        step = _desired(f)
        if step is not None:
            return step
    return _progress(f)


def _desired(f: Facts) -> Step | None:
    p, want = f.phase, f.desired
    if p is not None and p in FINAL_PHASES:
        return refuse(f"cannot change to {want}: phase {p} is final")
    if want == Phase.ACCEPTED:
        if p == Phase.OFFERED:
            if f.expires is not None and f.now >= f.expires:
                return refuse(f"the offer expired at {format_instant(f.expires)}", Phase.EXPIRED, "Expired")
            if f.accepted_sibling:
                return refuse(
                    f"another offer of this set ({f.accepted_sibling}) was accepted",
                    Phase.REJECTED,
                    "Rejected",
                )
            if f.withdrawn:
                return refuse(f"the offer was {f.withdrawn}", Phase.EXPIRED, "Preempted")
            return Step(action=Action.ACCEPT, reason="Accepted", message="accepted by the client")
        if p is None and not f.offered:
            return None  # a direct request is accepted anyway
        if p is not None and p in ACCEPTED_PHASES:
            return None  # already accepted: nothing to refuse
        return refuse(f"only an OFFERED offer can be accepted; phase is {p or 'unset'}")
    if want == Phase.REJECTED:
        if p == Phase.OFFERED:
            return Step(phase=Phase.REJECTED, reason="Rejected", message="rejected by the client")
        return refuse(f"only an OFFERED offer can be rejected; phase is {p or 'unset'}")
    if want == Phase.CANCELLED:
        if p in CANCELLABLE_PHASES or (p is None and not f.offered):
            return Step(
                phase=Phase.CANCELLED,
                reason="Cancelled",
                message="cancelled by the client",
                action=Action.DELETE_POD,
            )
        if p == Phase.OFFERED:
            return refuse("an offer is declined with REJECTED, not CANCELLED")
        return refuse(f"cannot cancel in phase {p}")
    return refuse(f"{want} cannot be requested; use ACCEPTED, REJECTED or CANCELLED")


def _progress(f: Facts) -> Step:
    p = f.phase
    if p is None or p == Phase.PROPOSED:
        if f.offered and f.reserved:
            return Step(phase=Phase.OFFERED, reason="Offered", message="capacity reserved", wake_at=f.expires)
        if f.offered:
            return Step(phase=Phase.FAILED, reason="Invalid", message="an offer must carry a reservation")
        return Step(action=Action.VALIDATE if f.reserved else Action.RESERVE)
    if p in FINAL_PHASES:
        if (f.pod is not None and not f.pod.finished_or_gone) or (
            f.delivery is not None and not f.delivery.finished_or_gone
        ):
            return Step(action=Action.DELETE_POD)
        return Step()
    if p == Phase.OFFERED:
        if f.accepted_sibling:
            msg = f"another offer of this set ({f.accepted_sibling}) was accepted"
            return Step(phase=Phase.REJECTED, reason="Rejected", message=msg)
        if f.expires is not None and f.now >= f.expires:
            return Step(
                phase=Phase.EXPIRED, reason="Expired", message=f"not accepted by {format_instant(f.expires)}"
            )
        if f.withdrawn:
            return Step(phase=Phase.EXPIRED, reason="Preempted", message=f"the offer was {f.withdrawn}")
        return Step(wake_at=f.expires)
    if f.node_lost and p != Phase.RELEASING:
        return Step(
            phase=Phase.FAILED, reason="NodeLost", message=f"node {f.node} was lost", action=Action.DELETE_POD
        )
    if p in (Phase.ACCEPTED, Phase.WAITING):
        assert f.prepare_start is not None
        if f.now >= f.prepare_start:
            return Step(
                phase=Phase.PREPARING,
                reason="Preparing",
                message="creating the Pod",
                action=Action.CREATE_POD,
            )
        if p == Phase.ACCEPTED:
            msg = f"waiting until {format_instant(f.prepare_start)}"
            return Step(phase=Phase.WAITING, reason="Waiting", message=msg, wake_at=f.prepare_start)
        return Step(wake_at=f.prepare_start)
    if p in POD_PHASES:
        return _with_pod(f, p)
    if p == Phase.RELEASING:
        return _releasing(f)
    return Step()


def _releasing(f: Facts) -> Step:
    """The run has ended: deliver the results (if any), then COMPLETED; FAILED with the cause when
    they cannot be delivered (they stay in their storage: the claim outlives the session)."""
    if not f.delivers:
        return Step(phase=Phase.COMPLETED, reason="Completed", message="the execution completed")
    wake = f.release_end + OVERRUN_GRACE if f.release_end is not None else None
    d = f.delivery
    if d is None:
        return Step(
            reason="Delivering", message="staging the results out", action=Action.DELIVER, wake_at=wake
        )
    outcome, message = delivery_outcome(d)
    if outcome is Outcome.SUCCEEDED:
        return Step(phase=Phase.COMPLETED, reason="Completed", message=f"the execution completed; {message}")
    if outcome is Outcome.FAILED:
        action = Action.NONE if d.finished_or_gone else Action.DELETE_POD
        return Step(phase=Phase.FAILED, reason="DeliveryFailed", message=message, action=action)
    if d.deleting:
        return Step(phase=Phase.FAILED, reason="DeliveryFailed", message="the delivery Pod was deleted")
    if f.release_end is not None and f.now >= f.release_end + OVERRUN_GRACE:
        return Step(
            phase=Phase.FAILED,
            reason="Overrun",
            message=f"the results were still not delivered when the reservation ended at "
            f"{format_instant(f.release_end)}",
            action=Action.DELETE_POD,
        )
    return Step(wake_at=wake)


def _with_pod(f: Facts, p: Phase) -> Step:
    pod = f.pod
    if pod is None or pod.deleting:
        if p == Phase.PREPARING and pod is None:
            return Step(action=Action.CREATE_POD)
        if pod is not None and pod.disruption:  # evicted: the eviction deletes it, and is the cause
            return Step(phase=Phase.FAILED, reason="Disrupted", message=disruption_message(pod.disruption))
        return Step(phase=Phase.FAILED, reason="PodLost", message="the Pod was deleted or its node was lost")
    outcome, message = pod_outcome(pod)
    if outcome is Outcome.FAILED:
        action = Action.NONE if pod.finished_or_gone else Action.DELETE_POD
        return Step(phase=Phase.FAILED, reason="Failed", message=message, action=action)
    if outcome is Outcome.SUCCEEDED:
        return Step(phase=Phase.RELEASING, reason="Releasing", message=message)
    if f.release_end is not None and f.now >= f.release_end + OVERRUN_GRACE:
        return Step(
            phase=Phase.FAILED,
            reason="Overrun",
            message=f"still not finished when the reservation ended at {format_instant(f.release_end)}",
            action=Action.DELETE_POD,
        )
    wake = f.release_end + OVERRUN_GRACE if f.release_end is not None else None
    if outcome is Outcome.RUNNING:
        if p != Phase.RUNNING:
            return Step(phase=Phase.RUNNING, reason="Running", message=message, wake_at=wake)
        return Step(wake_at=wake)
    if outcome is Outcome.READY and p == Phase.PREPARING:
        return Step(phase=Phase.READY, reason="Ready", message=message, wake_at=wake)
    if pod.unschedulable and f.start is not None and f.now >= f.start:
        return Step(
            phase=Phase.FAILED,
            reason="Unschedulable",
            message=f"the Pod could not be placed on its reserved node: {pod.unschedulable}",
            action=Action.DELETE_POD,
        )
    if pod.unschedulable and f.start is not None:
        return Step(wake_at=f.start)
    return Step(wake_at=wake)
