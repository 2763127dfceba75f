"""The operator's in-memory picture of the cluster, kept current by watch events.

* nodes: allocatable resources, labels, readiness, taints;
* Pods the broker does not own: what each requests, summed per node (they shrink capacity);
* the broker's Pods: a small view per Execution;
* Executions: a compact view each, and their reservations in the engine's :class:`Ledger`;
* answered OfferSets: their offers' reservations (``eb_operator.cluster.offer_status``), held in the
  ledger until they expire (:meth:`ClusterState.purge_offers`), an offer of the same set is
  accepted, or the set is deleted. An offer written as an Execution is counted as that Execution.

Everything is rebuilt from a LIST at start (``load_*``) and then updated by events (``on_*``).
Stale events are ignored by comparing resourceVersions, so a LIST and a replayed watch can be
applied in any order, and a view written locally after our own write is not undone by an older
event arriving later.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from eb_operator.cluster.convert import (
    LABEL_EXECUTION_UID,
    LABEL_MANAGED_BY,
    MANAGER,
    add,
    clamp_free,
    node_allocatable,
    node_ready,
    pod_done,
    pod_requests,
    pod_scheduled,
    recorded_phase,
    reservation_from_spec,
)
from eb_operator.cluster.offer_status import offer_refs
from eb_operator.engine import Ledger, NodeTable
from eb_operator.engine.types import HOLDING_PHASES, NodeCapacity, Phase, Resources
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.sharing import OTHER
from eb_operator.model.times import parse_instant
from eb_operator.operator.builders.stageout import LABEL_ROLE, ROLE
from eb_operator.operator.builders.storage import reused_uuids
from eb_operator.operator.lifecycle import DeliveryView, PodView, observe_delivery, observe_pod

Obj = Mapping[str, Any]

#: How long past its expiry an offer's reservation is still known (not held): a kubectl user's
#: late accept then gets EXPIRED, not "no such offer".
FORGET_OFFERS_AFTER = 600

#: Phases an offer can only have reached without being accepted.
#: How long an ended session's Pod that is still shutting down keeps its node, from the last change
#: seen of the session or its Pod (the Pod is deleted with a 5 s grace; then the kubelet reports it
#: gone). Past it, a Pod that
#: still lingers no longer holds offers back: the next session's Pod waits for room on its node
#: (operator/pods.py) instead.
SHUTDOWN_HOLD = 30
NOT_ACCEPTED = frozenset({None, Phase.PROPOSED, Phase.OFFERED, Phase.REJECTED, Phase.EXPIRED})


def _rv(obj: Obj) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _offer_key(group: str, name: str) -> str:
    """The ledger key of offer ``name`` of the set ``group`` ("ns/set"): its Execution's key."""
    return f"{group.split('/', 1)[0]}/{name}"


def key_of(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace')}/{meta['name']}"


@dataclass(slots=True)
class NodeInfo:
    name: str
    labels: dict[str, str]
    allocatable: Resources
    ready: bool
    unschedulable: bool
    taints: tuple[tuple[str, str], ...]  # (key, effect) of NoSchedule/NoExecute taints
    rv: int


@dataclass(slots=True)
class ExecutionView:
    key: str
    namespace: str
    name: str
    uid: str
    rv: int
    generation: int
    phase: Phase | None
    status_written: bool
    desired: str | None
    observed_generation: int
    offer_set: str | None
    reservation: dict[str, Any] | None
    expires: int | None
    deleting: bool
    conditions: list[dict[str, Any]] = field(default_factory=list)
    uuid: str | None = None
    created: str | None = None  # metadata.creationTimestamp
    peer: dict[str, Any] | None = None  # spec.peer: the session is held at a peer broker
    remote: dict[str, Any] = field(default_factory=dict)  # status.remote: how the peer last showed it
    access: list[dict[str, Any]] | None = None  # status.access
    routed: bool = False  # status.route: the session was given a route
    access_protocols: tuple[str, ...] = ()  # status.access: how it is reached, one per endpoint
    phase_since: int = 0  # when this operator saw the phase begin (its start-up, for older ones)
    finished: int | None = None  # when it reached its final phase, as its status says
    ttl: int | None = None  # spec.ttlSecondsAfterFinished
    owner: str = ""  # spec.owner: whom its reservation is charged to
    groups: tuple[str, ...] = ()  # spec.groups: which sharing group it is charged to
    child_namespace: str | None = None  # status.childNamespace: where its Pod and children live
    storage: list[dict[str, Any]] = field(default_factory=list)  # status.storage, as written
    reuses: tuple[str, ...] = ()  # uuids of earlier sessions' storage its own request mounts (direct)

    @property
    def delivers(self) -> bool:
        """Results to stage out when the run ends (recorded when the session prepared)."""
        return any(item.get("delivers") for item in self.storage)

    @property
    def group(self) -> str:
        return f"{self.namespace}/{self.offer_set}" if self.offer_set else ""

    @property
    def desired_new(self) -> bool:
        """The client changed spec.desiredPhase since the operator last answered."""
        return self.desired is not None and self.generation > self.observed_generation

    def ref(self) -> dict[str, Any]:
        return {"metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid}}


def execution_view(obj: Obj) -> ExecutionView:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    reservation = spec.get("reservation")
    peer = spec.get("peer")
    expires = (reservation or peer or {}).get("expires")
    return ExecutionView(
        key=key_of(obj),
        namespace=str(meta.get("namespace")),
        name=str(meta["name"]),
        uid=str(meta.get("uid", "")),
        rv=_rv(obj),
        generation=int(meta.get("generation") or 1),
        phase=recorded_phase(obj),
        status_written=bool(status.get("phase")),
        desired=spec.get("desiredPhase"),
        observed_generation=int(status.get("observedGeneration") or 0),
        offer_set=spec.get("offerSet"),
        reservation=dict(reservation) if reservation else None,
        expires=parse_instant(expires) if expires else None,
        deleting=bool(meta.get("deletionTimestamp")),
        conditions=list(status.get("conditions") or []),
        uuid=status.get("uuid"),
        created=meta.get("creationTimestamp"),
        peer=dict(peer) if peer else None,
        remote=dict(status.get("remote") or {}),
        access=list(status["access"]) if status.get("access") else None,
        routed=bool(status.get("route")),
        access_protocols=tuple(str(a.get("protocol") or "HTTP") for a in status.get("access") or []),
        finished=_finished(status),
        ttl=spec.get("ttlSecondsAfterFinished"),
        owner=str(spec.get("owner") or ""),
        groups=tuple(spec.get("groups") or ()),
        child_namespace=status.get("childNamespace"),
        storage=[dict(item) for item in status.get("storage") or []],
        reuses=reused_uuids(spec.get("request")),
    )


def _finished(status: Obj) -> int | None:
    """When a session reached its final phase: its Reserved condition turned False then (every
    final phase writes it so; see ``builders.status.execution_status``)."""
    for c in status.get("conditions") or []:
        if c.get("type") == "Reserved" and c.get("status") == "False" and c.get("lastTransitionTime"):
            return parse_instant(c["lastTransitionTime"])
    return None


@dataclass(frozen=True, slots=True)
class AnsweredSet:
    """An answered OfferSet as retention needs it: done (its offers expired; a NO: answered) at."""

    uid: str
    done: int


class ClusterState:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.nodes: dict[str, NodeInfo] = {}
        self.pod_use: dict[str, tuple[str, Resources]] = {}  # foreign pod key -> (node, requests)
        self.node_used: dict[str, Resources] = {}
        self.broker_pods: dict[str, PodView] = {}  # execution uid -> its Pod
        self.delivery_pods: dict[str, DeliveryView] = {}  # execution uid -> its results' delivery Pod
        self.set_reuses: dict[str, tuple[str, ...]] = {}  # "ns/offerset" -> storage uuids it mounts again
        self.broker_use: dict[
            str, tuple[str, Resources]
        ] = {}  # execution uid -> (node, requests) of a live Pod
        self.foreign_broker: set[str] = set()  # broker Pods counted as foreign use (Execution not ours)
        # What the scheduler counts on each node now: every Pod bound to it and not in a final
        # phase (also one being deleted), by pod key. Pods the broker creates must fit beside these.
        self.scheduled: dict[str, dict[str, Resources]] = {}  # node -> pod key -> requests
        self._scheduled_on: dict[str, str] = {}  # pod key -> node
        self._broker_pod_keys: dict[str, str] = {}  # broker pod key -> execution uid
        self._delivery_pod_keys: set[str] = set()  # those of them that deliver results
        self.executions: dict[str, ExecutionView] = {}
        self.by_uid: dict[str, str] = {}  # execution uid -> key
        self.groups: dict[str, set[str]] = {}  # "ns/offerset" -> execution keys
        self.offers: dict[str, dict[str, dict[str, Any]]] = {}  # "ns/offerset" -> offer name -> reservation
        # "ns/offerset" -> offer name -> where a peer broker holds it (spec.peer)
        self.peer_offers: dict[str, dict[str, dict[str, Any]]] = {}
        self.answered: dict[str, AnsweredSet] = {}  # "ns/offerset" -> when it was done (retention)
        self._offer_expiry: list[tuple[int, str, str]] = []  # heap of (expires, group, offer name)
        self._offer_forget: list[tuple[int, str, str]] = []  # heap of (when to forget, group, name)
        self.ledger = Ledger()
        #: the sharing group a caller with these groups is charged to (the policy's rule)
        self.account_of: Callable[[Sequence[str]], str] = lambda groups: OTHER
        self.set_owners: dict[str, tuple[str, tuple[str, ...]]] = {}  # "ns/offerset" -> (owner, groups)
        #: offers taken back for a group under its share: "ns/offerset" -> offer name -> why
        self.withdrawn: dict[str, dict[str, str]] = {}
        self._table: NodeTable | None = None
        self._table_key: tuple[Any, ...] | None = None

    # -- nodes -----------------------------------------------------------------------------

    def on_node(self, node: Obj, deleted: bool = False) -> bool:
        """Record a node; True when its usability may have changed (ready, taints, gone)."""
        name = node["metadata"]["name"]
        old = self.nodes.get(name)
        if deleted:
            self.nodes.pop(name, None)
            self._table = None
            self._release_ended_on(name)
            return old is not None
        rv = _rv(node)
        if old is not None and rv < old.rv:
            return False
        spec = node.get("spec") or {}
        info = NodeInfo(
            name=name,
            labels=dict(node["metadata"].get("labels") or {}),
            allocatable=node_allocatable(node),
            ready=node_ready(node),
            unschedulable=bool(spec.get("unschedulable")),
            taints=tuple(
                (str(t.get("key")), str(t.get("effect")))
                for t in spec.get("taints") or []
                if t.get("effect") in ("NoSchedule", "NoExecute")
            ),
            rv=rv,
        )
        self.nodes[name] = info
        changed = old is None or (
            old.ready,
            old.unschedulable,
            old.taints,
            old.labels,
            old.allocatable,
        ) != (info.ready, info.unschedulable, info.taints, info.labels, info.allocatable)
        if changed:
            self._table = None
        if not info.ready and (old is None or old.ready):
            self._release_ended_on(name)
        return old is not None and (old.ready != info.ready)

    def _release_ended_on(self, node: str) -> None:
        """Ended sessions held for their Pods on ``node`` stop holding it: it is gone or NotReady."""
        for r in self.ledger.on_node(node):
            view = self.executions.get(r.key)
            if r.phase == Phase.RELEASING and view is not None and view.phase not in HOLDING_PHASES:
                self._reserve(view)

    def invalidate(self) -> None:
        self._table = None

    def node_lost(self, name: str) -> bool:
        info = self.nodes.get(name)
        return info is None or not info.ready

    def node_table(self, policy: PlatformPolicy) -> NodeTable:
        """The nodes the platform may use, with what Pods the broker does not own leave free."""
        tol = policy.toleration.key if policy.toleration else None
        key = (tol,)
        if self._table is not None and self._table_key == key:
            return self._table
        caps = []
        for info in self.nodes.values():
            if not info.ready or info.unschedulable:
                continue
            if any(k != tol for k, _ in info.taints):
                continue
            used = self.node_used.get(info.name)
            free = clamp_free(info.allocatable, used) if used is not None else info.allocatable
            caps.append(NodeCapacity(name=info.name, free=free, labels=info.labels))
        self._table = NodeTable(caps)
        self._table_key = key
        return self._table

    # -- pods ------------------------------------------------------------------------------

    def on_pod(self, pod: Obj, deleted: bool = False) -> str | None:
        """Record a Pod; returns the key of the Execution it belongs to, if it is a broker Pod."""
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        key = f"{meta.get('namespace')}/{meta['name']}"
        exec_uid = labels.get(LABEL_EXECUTION_UID) if labels.get(LABEL_MANAGED_BY) == MANAGER else None
        delivery = labels.get(LABEL_ROLE) == ROLE
        if deleted:  # a deletion known only by its key (a re-list) has no labels
            exec_uid = self._broker_pod_keys.pop(key, exec_uid)
            delivery = delivery or key in self._delivery_pod_keys
            self._delivery_pod_keys.discard(key)
        elif exec_uid:
            self._broker_pod_keys[key] = exec_uid
            if delivery:
                self._delivery_pod_keys.add(key)
        node = (pod.get("spec") or {}).get("nodeName")
        live = not deleted and bool(node) and not pod_done(pod)
        self._schedule(key, str(node) if not deleted and pod_scheduled(pod) else None, pod)
        if exec_uid and delivery:
            # A delivery Pod runs within its Execution's reservation, after the workload's Pod ended.
            if deleted:
                self.delivery_pods.pop(exec_uid, None)
            else:
                self.delivery_pods[exec_uid] = observe_delivery(pod)
            return self.by_uid.get(exec_uid)
        if exec_uid:
            # A broker Pod is covered by its Execution's reservation, unless that Execution is not
            # one of ours (another platform or namespace set): then it is foreign use like any Pod.
            self._unforeign(exec_uid)
            was_live = exec_uid in self.broker_use
            if deleted:
                self.broker_pods.pop(exec_uid, None)
                self.broker_use.pop(exec_uid, None)
            else:
                self.broker_pods[exec_uid] = observe_pod(pod)
                if live:
                    self.broker_use[exec_uid] = (str(node), pod_requests(pod))
                else:
                    self.broker_use.pop(exec_uid, None)
                if exec_uid not in self.by_uid:
                    self._foreign(exec_uid)
            owner = self.by_uid.get(exec_uid)
            if owner is not None and was_live != (exec_uid in self.broker_use):
                self._reserve(self.executions[owner])  # an ended session holds until its Pod is gone
            return owner
        old = self.pod_use.pop(key, None)
        if old is not None:
            self._use(old[0], old[1], -1)
        if live:
            req = pod_requests(pod)
            self.pod_use[key] = (str(node), req)
            self._use(str(node), req, +1)
        return None

    def _schedule(self, key: str, node: str | None, pod: Obj) -> None:
        old = self._scheduled_on.pop(key, None)
        if old is not None:
            on_node = self.scheduled[old]
            on_node.pop(key, None)
            if not on_node:
                del self.scheduled[old]
        if node is not None:
            self._scheduled_on[key] = node
            self.scheduled.setdefault(node, {})[key] = pod_requests(pod)

    def crowded(self, node: str, requests: Resources) -> str | None:
        """Why a Pod requesting ``requests`` would not fit on ``node`` beside the Pods the scheduler
        counts there now (None: it fits, or the node is unknown). A broker Pod is created only once
        this is None: the Pod of a session that just ended (or overran its reservation) may still be
        shutting down on the node, and the scheduler would refuse the next one ("Insufficient cpu")."""
        info = self.nodes.get(node)
        if info is None:
            return None
        used = Resources()
        for r in self.scheduled.get(node, {}).values():
            used = add(used, r)
        need = add(used, requests)
        cap = info.allocatable
        short = [
            name
            for name, want, have in (
                ("cpu", need.cpu_millis, cap.cpu_millis),
                ("memory", need.memory_bytes, cap.memory_bytes),
                ("ephemeral-storage", need.ephemeral_bytes, cap.ephemeral_bytes),
                *((g, n, cap.gpus.get(g, 0)) for g, n in need.gpus.items()),
            )
            if want > have
        ]
        if not short:
            return None
        pods = ", ".join(sorted(self.scheduled.get(node, {})))
        return f"not enough {', '.join(short)} on {node} yet beside the Pods still there ({pods})"

    def _foreign(self, exec_uid: str) -> None:
        use = self.broker_use.get(exec_uid)
        if use is not None and exec_uid not in self.foreign_broker:
            self.foreign_broker.add(exec_uid)
            self._use(use[0], use[1], +1)

    def _unforeign(self, exec_uid: str) -> None:
        if exec_uid in self.foreign_broker:
            self.foreign_broker.discard(exec_uid)
            use = self.broker_use[exec_uid]
            self._use(use[0], use[1], -1)

    def _use(self, node: str, req: Resources, sign: int) -> None:
        self.node_used[node] = add(self.node_used.get(node, Resources()), req, sign)
        self._table = None

    def pod_of(self, view: ExecutionView) -> PodView | None:
        return self.broker_pods.get(view.uid)

    def delivery_of(self, view: ExecutionView) -> DeliveryView | None:
        return self.delivery_pods.get(view.uid)

    def phase_of_uid(self, uid: str) -> Phase | bool | None:
        """The phase of the Execution with this uid; False when there is no such Execution."""
        key = self.by_uid.get(uid)
        view = self.executions.get(key) if key is not None else None
        return False if view is None else view.phase

    def reuses_of(self, view: ExecutionView) -> tuple[str, ...]:
        """The uuids of earlier sessions' storage the session mounts again."""
        return self.set_reuses.get(view.group, ()) if view.group else view.reuses

    # -- executions ------------------------------------------------------------------------

    def on_execution(self, obj: Obj, deleted: bool = False) -> ExecutionView | None:
        """Record an Execution (unless the event is older than what we hold); returns the view."""
        key = key_of(obj)
        old = self.executions.get(key)
        if deleted:
            if old is not None:
                self._drop(old)
            return None
        view = execution_view(obj)
        if old is not None and view.rv < old.rv:
            return old
        self.put(view)
        return view

    def put(self, view: ExecutionView) -> None:
        """Install a view (from an event, or after our own write) and update the ledger; never one
        older than the view held. The watch can deliver a change made after our write (a client's
        cancel) before our write's response is back: installing that response then would hide the
        change, and nothing would queue the session again (it stayed WAITING, its cancel unapplied)."""
        old = self.executions.get(view.key)
        if old is not None and old.uid != view.uid:
            self._drop(old)
            old = None
        if old is not None and view.rv < old.rv:
            return
        view.phase_since = (
            old.phase_since if old is not None and old.phase == view.phase else int(self.clock())
        )
        self.executions[view.key] = view
        self.by_uid[view.uid] = view.key
        self._unforeign(view.uid)
        if view.group:
            self.groups.setdefault(view.group, set()).add(view.key)
        self._reserve(view)
        if view.group and view.phase not in NOT_ACCEPTED:
            self._release_offers(view.group)

    def _reserve(self, view: ExecutionView) -> None:
        spec, phase = view.reservation, view.phase
        if not spec and view.group and phase is None:
            # an offer a kubectl user wrote by name only: it holds the offer's reservation until
            # the operator copies that in (or fails it), as the offer did before
            spec = self.offer(view.group, view.name)
            phase = Phase.OFFERED if spec else None
        if phase in (None, Phase.OFFERED) and self.is_withdrawn(view.group, view.name):
            spec = None  # taken back: it holds nothing, and its accept is refused
        if spec and phase is not None and (phase not in HOLDING_PHASES or view.deleting):
            # Ended (or being deleted): free once its Pod is gone, not before. The scheduler still
            # counts a Pod that is shutting down, and would refuse the next session placed there.
            # It holds the node from now for its shutdown only, not to the end it was offered (a
            # session cancelled 30 minutes early made every offer asked meanwhile start after
            # those 30 minutes). A node that is gone or NotReady takes nothing new, and its Pods
            # may never report.
            # A session deleted before its end holds all of it while its Pod goes: it is not
            # ended, and only an ended session has given up the rest of its time.
            if not self._pod_on_a_ready_node(view.uid):
                phase = None
            elif phase in HOLDING_PHASES:
                phase = Phase.RELEASING
            else:
                account = self.account_of(view.groups)
                held = reservation_from_spec(view.key, spec, Phase.RELEASING, view.group, view.owner, account)
                now = int(self.clock())
                start = min(held.start, now)
                end = max(start + 1, min(held.end, now + SHUTDOWN_HOLD))
                self.ledger.upsert(replace(held, start=start, end=end))
                return
        if spec and phase is not None:
            owner, groups = self.charged_to(view)
            held = reservation_from_spec(view.key, spec, phase, view.group, owner, self.account_of(groups))
            self.ledger.upsert(held)
        else:
            self.ledger.remove(view.key)

    def _pod_on_a_ready_node(self, exec_uid: str) -> bool:
        use = self.broker_use.get(exec_uid)
        info = self.nodes.get(use[0]) if use is not None else None
        return info is not None and info.ready

    def _drop(self, view: ExecutionView) -> None:
        self.executions.pop(view.key, None)
        self.by_uid.pop(view.uid, None)
        self._foreign(view.uid)
        self.ledger.remove(view.key)
        if view.group:
            members = self.groups.get(view.group)
            if members is not None:
                members.discard(view.key)
                if not members:
                    del self.groups[view.group]

    def siblings(self, view: ExecutionView) -> list[ExecutionView]:
        if not view.group:
            return []
        keys = self.groups.get(view.group, set())
        return [self.executions[k] for k in sorted(keys) if k != view.key and k in self.executions]

    # -- offers ----------------------------------------------------------------------------

    def on_offerset(self, obj: Obj, deleted: bool = False) -> None:
        """Hold the offers of an answered OfferSet (each until it expires, a sibling is accepted or
        the set is deleted); a deleted set's offers not written as Executions hold nothing."""
        group = key_of(obj)
        if deleted:
            self._release_offers(group)
            self.offers.pop(group, None)
            self.peer_offers.pop(group, None)
            self.answered.pop(group, None)
            self.set_owners.pop(group, None)
            self.withdrawn.pop(group, None)
            self.set_reuses.pop(group, None)
            return
        status = obj.get("status") or {}
        if status.get("result") and group not in self.answered:
            done = status.get("expires") or status.get("created")
            if done:
                self.answered[group] = AnsweredSet(str(obj["metadata"].get("uid", "")), parse_instant(done))
        reuses = reused_uuids((obj.get("spec") or {}).get("request"))
        if reuses:
            self.set_reuses[group] = reuses
        if group in self.offers or group in self.peer_offers:
            return  # an answer is written once: later events of the set change nothing here
        remote = {str(r["name"]): dict(r["peer"]) for r in offer_refs(obj) if r.get("peer")}
        if remote:  # held at peers: known (to accept, reject and release them), holding nothing here
            self.peer_offers[group] = remote
            for name, ref in remote.items():
                if ref.get("expires"):
                    forget = parse_instant(ref["expires"]) + FORGET_OFFERS_AFTER
                    heapq.heappush(self._offer_forget, (forget, group, name))
        refs = [r for r in offer_refs(obj) if r.get("reservation")]
        if not refs:
            return
        self.offers[group] = {str(r["name"]): dict(r["reservation"]) for r in refs}
        spec = obj.get("spec") or {}
        owner, groups = str(spec.get("owner") or ""), tuple(spec.get("groups") or ())
        self.set_owners[group] = (owner, groups)
        account = self.account_of(groups)
        for w in (obj.get("status") or {}).get("withdrawn") or []:
            name = str(w.get("name"))
            self.withdrawn.setdefault(group, {})[name] = str(w.get("message") or "")
            held = self.ledger.get(_offer_key(group, name))
            if held is not None and held.phase == Phase.OFFERED:  # written as an Execution, loaded first
                self.ledger.remove(held.key)
        accepted = self.accepted(group)
        for name, spec in self.offers[group].items():
            expires = parse_instant(spec["expires"]) if spec.get("expires") else None
            if expires is not None:  # every offer is forgotten in time, held or not
                heapq.heappush(self._offer_forget, (expires + FORGET_OFFERS_AFTER, group, name))
            key = _offer_key(group, name)
            written = self.executions.get(key)
            if accepted or (written is not None and (written.reservation or written.phase is not None)):
                continue  # a sibling accepted, or written as an Execution: counted as that
            if self.is_withdrawn(group, name):
                continue
            self.ledger.upsert(reservation_from_spec(key, spec, Phase.OFFERED, group, owner, account))
            if expires is not None:
                heapq.heappush(self._offer_expiry, (expires, group, name))

    def offer(self, group: str, name: str) -> dict[str, Any] | None:
        """The reservation of offer ``name`` of an answered OfferSet, while that offer is live."""
        return (self.offers.get(group) or {}).get(name)

    def peer_offer(self, group: str, name: str) -> dict[str, Any] | None:
        """Where offer ``name`` of an answered OfferSet is held, if a peer broker holds it."""
        return (self.peer_offers.get(group) or {}).get(name)

    def charged_to(self, view: ExecutionView) -> tuple[str, tuple[str, ...]]:
        """The owner and groups ``view``'s reservation is charged to: its own, or, for an offer a
        kubectl user wrote by name only (no owner), its OfferSet's, as the offer was before."""
        if view.owner or not view.group:
            return view.owner, view.groups
        return self.set_owners.get(view.group, (view.owner, view.groups))

    def is_withdrawn(self, group: str, name: str) -> bool:
        return name in self.withdrawn.get(group, ())

    def withdraw(self, key: str, group: str, name: str, why: str) -> None:
        """Take an unaccepted offer back (fair sharing): it holds nothing from now on, and an
        accept of it is refused saying ``why``."""
        self.withdrawn.setdefault(group, {})[name] = why
        self.ledger.remove(key)

    def recharge(self) -> int:
        """Charge every held reservation to the sharing group the policy now puts its owner's
        groups in (after a policy change); returns how many moved."""
        moved = []
        for r in self.ledger:
            view = self.executions.get(r.key)
            groups = (
                self.charged_to(view)[1] if view is not None else self.set_owners.get(r.group, ("", ()))[1]
            )
            account = self.account_of(groups)
            if account != r.account:
                moved.append(replace(r, account=account))
        self.ledger.load(moved)
        return len(moved)

    def accepted(self, group: str) -> bool:
        return any(self.executions[k].phase not in NOT_ACCEPTED for k in self.groups.get(group, ()))

    def _release_offers(self, group: str) -> None:
        for name in self.offers.get(group, ()):
            key = _offer_key(group, name)
            if key not in self.executions:
                self.ledger.remove(key)

    def purge_offers(self, now: int) -> int:
        """Stop holding the offers that have expired by ``now`` (and were not written as
        Executions, whose own phase then says EXPIRED); returns how many. Called before every
        decision, so an offer holds its capacity exactly until it expires, with no write."""
        purged = 0
        while self._offer_expiry and self._offer_expiry[0][0] <= now:
            _, group, name = heapq.heappop(self._offer_expiry)
            key = _offer_key(group, name)
            if key not in self.executions and self.ledger.remove(key) is not None:
                purged += 1
        while self._offer_forget and self._offer_forget[0][0] <= now:
            _, group, name = heapq.heappop(self._offer_forget)
            for held in (self.offers, self.peer_offers):
                offers = held.get(group)
                if offers is not None:  # so memory stays bounded by the recent offers
                    offers.pop(name, None)
                    if not offers:
                        del held[group]
            if group not in self.offers and group not in self.peer_offers:
                self.set_owners.pop(group, None)
                self.withdrawn.pop(group, None)
        return purged

    def load(
        self,
        nodes: Iterable[Obj],
        pods: Iterable[Obj],
        executions: Iterable[Obj],
        offersets: Iterable[Obj] = (),
    ) -> None:
        for n in nodes:
            self.on_node(n)
        for p in pods:
            self.on_pod(p)
        for e in executions:
            self.on_execution(e)
        for o in offersets:  # after the Executions: an offer written as one is counted as that
            self.on_offerset(o)
