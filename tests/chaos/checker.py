"""An independent checker of the broker's promises, run over the API server's state after each
chaos scenario.

It deliberately shares no code with the broker (operator, engine, API), nor with the other
tests' helpers but for ``tests.support.reservations.with_offers`` (the offers held in OfferSet
statuses, as Executions): it reads OfferSets, Executions, Pods and Nodes as plain JSON through
kubectl, parses quantities and times itself, and finds

* lost objects: an OfferSet the scenario created, or an Execution the scenario saw, that is gone
  (offers live in their set's status until a client's accept or reject writes them);
* duplicate Pods: more than one Pod uid ever seen for one Execution (a :class:`PodRecorder`
  follows the namespace while the scenario runs), or more than one Pod owned by it now;
* stuck Executions: outside a final phase although their time has passed (an offer past its
  expiry, a session past the end of its reservation plus the operator's overrun allowance), with
  a grace;
* overbooking: an instant where the reservations held on a node exceed its allocatable cpu,
  memory, ephemeral storage or GPUs. Each reservation occupies a box in two times: its reserved
  interval [prepareStart, releaseEnd) and the wall-clock window during which it was held
  (from its creation until its offer expired or was declined, or until its session ended). Two
  reservations compete only if both boxes overlap, so the sweep runs over reserved time per node
  and, at each reserved instant, over the wall-clock windows of what is active there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.kube import Kubectl, api_client
from tests.support.reservations import with_offers

FINAL = frozenset({"REJECTED", "EXPIRED", "COMPLETED", "FAILED", "CANCELLED"})
NEVER_ACCEPTED = frozenset({"REJECTED", "EXPIRED"})
EXECUTION_UID_LABEL = "executionbroker.ivoa.net/execution-uid"
#: The operator fails a session whose Pod is still there this long after its reservation ended.
OVERRUN_ALLOWANCE = 60.0
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
GIB = 2**30


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity as a number (cores, bytes, count)."""
    s = str(text).strip()
    for suffix, factor in _BINARY.items():
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * factor
    if s[-1:] in _DECIMAL and not s[-2:-1].isalpha():
        return float(s[:-1]) * _DECIMAL[s[-1]]
    return float(s)


def instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def phase_of(e: Mapping[str, Any]) -> str | None:
    spec, status = e.get("spec") or {}, e.get("status") or {}
    ph = status.get("phase")
    if ph is None and spec.get("reservation") and spec.get("offerSet"):
        return "OFFERED"  # an offer's status is written at its first transition
    return str(ph) if ph is not None else None


def _left_holding_at(e: Mapping[str, Any]) -> float | None:
    """When the Execution stopped holding: the Reserved condition's last transition to False."""
    for c in (e.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Reserved" and c.get("status") == "False" and c.get("lastTransitionTime"):
            return instant(c["lastTransitionTime"])
    return None


@dataclass(frozen=True)
class Box:
    execution: str
    node: str
    start: float  # reserved time
    end: float
    held_from: float  # wall-clock time
    held_until: float
    use: dict[str, float]


def _group(e: Mapping[str, Any]) -> tuple[str, str]:
    return e["metadata"]["namespace"], str((e.get("spec") or {}).get("offerSet"))


def _accepted_at(e: Mapping[str, Any]) -> float | None:
    """When the client's ACCEPTED was applied (the DesiredPhase condition turned True)."""
    for c in (e.get("status") or {}).get("conditions") or []:
        if c.get("type") == "DesiredPhase" and c.get("status") == "True" and c.get("lastTransitionTime"):
            return instant(c["lastTransitionTime"])
    return None


def box(
    e: Mapping[str, Any], now: float, freed_at: float | None = None, offered_at: float | None = None
) -> Box | None:
    """The reservation of ``e`` as a box in reserved x wall-clock time; None if it never held one.
    ``freed_at``: when a sibling's acceptance freed this offer (the operator frees the siblings
    in the accepting step and writes REJECTED afterwards). ``offered_at``: when its OfferSet was
    answered, for an offer a client wrote as an Execution later (it held from the answer on)."""
    r = (e.get("spec") or {}).get("reservation")
    ph = phase_of(e)
    if not r or ph is None or ph == "PROPOSED":
        return None
    meta = e["metadata"]
    until = _left_holding_at(e) if ph in FINAL else now
    if until is None:  # final without the condition: assume it held to the end (stricter)
        until = instant(r["releaseEnd"])
    if (ph in NEVER_ACCEPTED or ph == "OFFERED") and r.get("expires"):
        until = min(until, instant(r["expires"]))  # an offer promises nothing past its expiry
        if freed_at is not None:
            until = min(until, freed_at)
    use = {
        "cpu": float(r.get("cores") or 0),
        "memory": float(r.get("memoryGiB") or 0) * GIB,
        "ephemeral-storage": float(r.get("storageGiB") or 0) * GIB,
    }
    if r.get("gpus"):
        use[str(r.get("gpuResource") or "nvidia.com/gpu")] = float(r["gpus"])
    return Box(
        execution=f"{meta['namespace']}/{meta['name']}",
        node=str(r["node"]),
        start=instant(r["prepareStart"]),
        end=instant(r["releaseEnd"]),
        held_from=min(instant(meta["creationTimestamp"]), offered_at or float("inf")),
        held_until=until,
        use=use,
    )


def _peak(boxes: list[Box], resource: str) -> tuple[float, float]:
    """The most of ``resource`` held at one wall-clock instant by boxes that all overlap in
    reserved time, and that instant (windows are half-open: one ending when another starts does
    not overlap it)."""
    events = sorted(
        [(b.held_from, 1, b.use.get(resource, 0.0)) for b in boxes]
        + [(b.held_until, -1, b.use.get(resource, 0.0)) for b in boxes],
        key=lambda ev: (ev[0], ev[1]),
    )
    level = best = 0.0
    when = 0.0
    for t, sign, amount in events:
        level += sign * amount
        if level > best:
            best, when = level, t
    return best, when


def overbooked(boxes: Iterable[Box], allocatable: Mapping[str, Mapping[str, float]]) -> list[str]:
    problems: list[str] = []
    by_node: dict[str, list[Box]] = {}
    for b in boxes:
        by_node.setdefault(b.node, []).append(b)
    for node, mine in by_node.items():
        cap = allocatable.get(node)
        if cap is None:
            problems.append(f"{node}: {len(mine)} reservations on a node that does not exist")
            continue
        starts = sorted({b.start for b in mine})
        for t in starts:  # the set of reservations active in reserved time only grows at starts
            active = [b for b in mine if b.start <= t < b.end]
            for resource in {k for b in active for k in b.use}:
                peak, when = _peak(active, resource)
                limit = cap.get(resource, 0.0)
                if peak > limit + 1e-9:
                    names = sorted(b.execution for b in active if b.use.get(resource))
                    problems.append(
                        f"{node}: {resource} {peak:g} > allocatable {limit:g} at reserved time {t:.0f} "
                        f"(held together at {when:.0f}) by {names}"
                    )
                    break
    return problems


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    offersets: int = 0
    executions: int = 0
    pods_seen: int = 0
    boxes: int = 0
    phases: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"{self.offersets} OfferSets, {self.executions} Executions {self.phases}, "
            f"{self.pods_seen} Pods seen, {self.boxes} reservations swept; problems: {self.problems}"
        )


def check(
    kube: Kubectl,
    namespace: str,
    nodes: Iterable[str],
    now: float,
    *,
    offersets: Iterable[str] = (),
    executions: Iterable[str] = (),
    pod_uids: Mapping[str, set[str]] | None = None,
    grace: float = 30.0,
) -> Report:
    """Every problem found in ``namespace`` (and on ``nodes``, counting every namespace's
    reservations there). ``now``: the clock the scenario's operator used."""
    rep = Report()
    osets = {
        o["metadata"]["name"]: o
        for o in kube.json("get", "offersets", "-n", namespace, "-o", "json")["items"]
    }
    written = kube.json("get", "executions", "-A", "-o", "json")["items"]
    execs = {e["metadata"]["name"]: e for e in written if e["metadata"]["namespace"] == namespace}
    sets = kube.json("get", "offersets", "-A", "-o", "json")["items"]
    everywhere = with_offers(written, sets, released=True)  # each offer's hold ends at an accept
    pods = kube.json("get", "pods", "-n", namespace, "-o", "json")["items"]
    node_objs = kube.json("get", "nodes", "-o", "json")["items"]
    rep.offersets, rep.executions = len(osets), len(execs)

    # lost
    for name in offersets:
        if name not in osets:
            rep.problems.append(f"OfferSet {name} was lost")
    for name in sorted(set(executions) - set(execs)):
        rep.problems.append(f"Execution {name} was lost")

    # duplicate Pods
    owners: dict[str, list[str]] = {}
    for p in pods:
        uid = (p["metadata"].get("labels") or {}).get(EXECUTION_UID_LABEL)
        if uid:
            owners.setdefault(uid, []).append(p["metadata"]["name"])
    by_uid = {e["metadata"]["uid"]: n for n, e in execs.items()}
    for uid, names in owners.items():
        if len(names) > 1:
            rep.problems.append(f"Execution {by_uid.get(uid, uid)} owns {len(names)} Pods: {names}")
    for execution, uids in (pod_uids or {}).items():
        rep.pods_seen += len(uids)
        if len(uids) > 1:
            rep.problems.append(f"Execution {execution} had {len(uids)} Pods created: {sorted(uids)}")

    # stuck
    for name, e in execs.items():
        ph = phase_of(e)
        rep.phases[str(ph)] = rep.phases.get(str(ph), 0) + 1
        if ph in FINAL:
            continue
        r = (e.get("spec") or {}).get("reservation") or {}
        if ph == "OFFERED" and r.get("expires"):
            due = instant(r["expires"]) + grace
        elif r.get("releaseEnd"):
            due = instant(r["releaseEnd"]) + OVERRUN_ALLOWANCE + grace
        else:
            due = instant(e["metadata"]["creationTimestamp"]) + 3600  # no reservation: never placed
        if now > due:
            rep.problems.append(f"Execution {name} is still {ph} {now - due + grace:.0f} s after its time")

    # overbooking
    wanted = set(nodes)
    allocatable = {
        n["metadata"]["name"]: {k: quantity(v) for k, v in (n["status"].get("allocatable") or {}).items()}
        for n in node_objs
        if n["metadata"]["name"] in wanted
    }
    accepted: dict[tuple[str, str], float] = {}
    for e in everywhere:
        group, at = _group(e), _accepted_at(e)
        if at is not None and phase_of(e) not in NEVER_ACCEPTED:
            accepted[group] = min(at, accepted.get(group, at))
    answered = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): instant(o["status"]["created"])
        for o in sets
        if (o.get("status") or {}).get("created")
    }
    boxes = [
        b
        for b in (box(e, now, accepted.get(_group(e)), answered.get(_group(e))) for e in everywhere)
        if b is not None and b.node in wanted
    ]
    rep.boxes = len(boxes)
    rep.problems += overbooked(boxes, allocatable)
    return rep


class PodRecorder:
    """Every Pod uid seen in a namespace while it runs, by the Execution it belongs to (its
    ``execution-uid`` label, or its name). Re-lists after a broken watch (an API server restart),
    so a Pod created and deleted entirely within such a gap could be missed."""

    def __init__(self, kubeconfig: Path | str, namespace: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.uids: dict[str, set[str]] = {}
        self.breaks = 0

    def _see(self, pod: Any) -> None:
        meta = pod.metadata
        key = (meta.labels or {}).get(EXECUTION_UID_LABEL) or meta.name
        self.uids.setdefault(key, set()).add(meta.uid)

    async def _follow(self) -> None:
        from kubernetes_asyncio import client, watch

        while True:
            try:
                api = await api_client(self.kubeconfig)
                try:
                    v1 = client.CoreV1Api(api)
                    listed = await v1.list_namespaced_pod(self.namespace)
                    for pod in listed.items:
                        self._see(pod)
                    w = watch.Watch()
                    async for event in w.stream(
                        v1.list_namespaced_pod,
                        self.namespace,
                        resource_version=listed.metadata.resource_version,
                        timeout_seconds=300,
                    ):
                        if isinstance(event.get("object"), dict):
                            break  # an ERROR event (410 Gone): list again
                        self._see(event["object"])
                finally:
                    await api.close()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.breaks += 1
                await asyncio.sleep(0.5)  # the API server is away: ask again shortly

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[PodRecorder]:
        task = asyncio.create_task(self._follow())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def by_execution(self, executions: Mapping[str, str]) -> dict[str, set[str]]:
        """uids by Execution name, given Execution uid -> name."""
        return {executions.get(k, k): v for k, v in self.uids.items()}
