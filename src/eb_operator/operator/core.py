"""The operator's decisions: offers for OfferSets, the Execution phase machine, Pods.

kopf delivers watch events to ``eb_operator.operator.handlers``, which only update
:class:`~eb_operator.operator.state.ClusterState` and mark keys dirty here. Workers then
reconcile each key from the newest state (level-based): the same state always leads to the same
step, so a key processed twice, or after a restart, does no harm.

No double booking (see docs/operator.md):

1. one active operator (kopf peering) holds the reservation ledger, rebuilt from a LIST of every
   Execution before any offer is made and then kept current by watch events;
2. every decision that takes capacity (offers, accepts, direct requests) runs under one asyncio
   lock over a snapshot of that ledger, and puts its reservations into the ledger before the
   lock is released, so the next decision counts them;
3. a reservation is only shown to a client (OfferSet status, ACCEPTED) after the API server has
   it; a write that fails takes its reservation back out of the ledger.

Offers are held in the OfferSet's status, not as Executions (``eb_operator.cluster.offers``): an
answer is one status write, and an offer nobody takes costs no write when it lapses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from eb_operator.cluster.convert import object_uuid, reservation_from_spec, reservation_spec
from eb_operator.cluster.crs import (
    EXECUTABLES,
    EXECUTIONS,
    OFFERSETS,
    PLATFORMS,
    Cluster,
    Conflict,
    NotFound,
    cr_path,
)
from eb_operator.cluster.offers import offer_name
from eb_operator.engine import (
    LedgerSnapshot,
    NodeTable,
    check_accept,
    explain_no_offers,
    find_offers,
    offer_expiry,
)
from eb_operator.engine.types import Offer, Phase
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.times import format_instant, parse_instant
from eb_operator.operator import builders, children
from eb_operator.operator.events import EventPoster, kv
from eb_operator.operator.lifecycle import Action, Facts, PodView, Step, decide
from eb_operator.operator.requests import Interpretation, interpret, unknown_requirements
from eb_operator.operator.state import NOT_ACCEPTED, ClusterState, ExecutionView, execution_view, key_of
from eb_operator.operator.workqueue import Retry, WorkQueue

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]

#: A node NotReady for longer than this is lost for the Executions that hold it (the default of
#: ``OperatorConfig.node_lost_grace``).
NODE_LOST_GRACE = 60.0


@dataclass(frozen=True)
class OperatorConfig:
    platform: str = "default"
    namespaces: frozenset[str] | None = None  # None: every namespace
    workers: int = 16
    offer_workers: int = 32  # OfferSets in flight: the lock serialises decisions, not writes
    sweep_seconds: float = 15.0
    pod: builders.PodSettings = field(default_factory=builders.PodSettings)
    clock: Callable[[], float] = time.time
    node_lost_grace: float = NODE_LOST_GRACE  # seconds NotReady before a node's sessions fail


class Operator:
    def __init__(self, cluster: Cluster, config: OperatorConfig = OperatorConfig()) -> None:
        self.cluster = cluster
        self.cfg = config
        self.state = ClusterState()
        self.policy = PlatformPolicy()
        self.policy_generation: int | None = None
        self.lock = asyncio.Lock()
        self.ready = asyncio.Event()
        self.events = EventPoster(cluster)
        self.executions: WorkQueue[str] = WorkQueue("executions", self.reconcile, config.workers)
        self.offersets: WorkQueue[str] = WorkQueue("offersets", self.process_offerset, config.offer_workers)
        self.pending_offersets: dict[str, dict[str, Any]] = {}
        self.not_ready_since: dict[str, float] = {}
        self.last_sweep = time.monotonic()
        self.active = False  # kopf delivered an Execution event: peering made this replica active
        self._sweeper: asyncio.Task[None] | None = None
        self.stats: dict[str, int] = {"offersets": 0, "offers": 0, "accepts": 0, "pods": 0}
        self.timings: dict[str, list[float]] = {}  # phase -> [count, seconds]

    def now(self) -> int:
        return int(self.cfg.clock())

    def mine(self, namespace: str | None) -> bool:
        return self.cfg.namespaces is None or namespace in self.cfg.namespaces

    # -- start and stop --------------------------------------------------------------------

    async def start(self) -> None:
        """Read the platform, rebuild every cache from LISTs, then start the workers."""
        # Everything allocated so far (imported modules: kopf, the Kubernetes client's models,
        # pydantic's schemas) lives as long as the process: keep it out of every collection, so a
        # full collection walks only the broker's own state (a shorter pause, and fewer of them).
        gc.freeze()
        try:
            self.on_platform(await self.cluster.get(PLATFORMS, None, self.cfg.platform))
        except NotFound:
            log.warning(
                "%s", kv(msg="platform not found; using the default policy", platform=self.cfg.platform)
            )
        # Page by page, each page recorded before the next is read: the start-up peak is one page,
        # not every object of the cluster at once. Executions before OfferSets: an offer written
        # as an Execution is counted as that.
        record = self.state
        for listing, on in (
            (self.cluster.pages("/api/v1/nodes"), record.on_node),
            (self.cluster.pages("/api/v1/pods"), record.on_pod),
            (self.cluster.pages(cr_path(EXECUTIONS)), record.on_execution),
            (self.cluster.pages(cr_path(OFFERSETS)), record.on_offerset),
        ):
            async for page in listing:
                for obj in page:
                    on(obj)
        # Free the pages' garbage, then keep what was loaded (the state of every object in the
        # cluster, long-lived) out of later collections too: a full collection otherwise walks
        # every view of 50,000 Executions, a pause of ~100 ms at a random decision. Frozen objects
        # are still freed by reference counting when the state drops them.
        gc.collect()
        gc.freeze()
        self.ready.set()
        self.executions.start()
        self.offersets.start()
        self.events.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="sweeper")
        log.info(
            "%s",
            kv(
                msg="started",
                platform=self.cfg.platform,
                nodes=len(self.state.nodes),
                executions=len(self.state.executions),
                reservations=len(self.state.ledger),
            ),
        )

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.executions.stop()
        await self.offersets.stop()
        await self.events.stop()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.sweep_seconds)
            self.sweep()
            try:  # persistent storage past its lifetime (eb_operator.operator.children)
                await children.sweep_claims(self.cluster, self.mine, self._phase_of_uid, self.now())
            except Exception as e:
                log.warning("%s", kv(msg="storage sweep failed", error=e))

    def _phase_of_uid(self, uid: str) -> Phase | bool | None:
        key = self.state.by_uid.get(uid)
        view = self.state.executions.get(key) if key is not None else None
        return False if view is None else view.phase

    def sweep(self) -> None:
        """Queue every Execution whose offer expired or whose next step is due (catches up after
        downtime and after missed timers), and every OfferSet still without an answer. Only once
        kopf has delivered events (this replica is the active one)."""
        if not self.active:
            return
        now = self.now()
        self.state.purge_offers(now)
        for view in list(self.state.executions.values()):
            if self._due(view, now):
                self.executions.add(view.key)
        for key in list(self.pending_offersets):
            self.offersets.add(key)
        self.last_sweep = time.monotonic()

    @staticmethod
    def _due(view: ExecutionView, now: int) -> bool:
        if view.phase == Phase.OFFERED:
            return view.expires is not None and view.expires <= now
        if view.phase in (Phase.ACCEPTED, Phase.WAITING) and view.reservation:
            return parse_instant(view.reservation["prepareStart"]) <= now
        return False

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Count and time one named phase (reported by the liveness probe, as Kueue names its)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            entry = self.timings.setdefault(phase, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - t

    def health(self) -> dict[str, Any]:
        """Liveness: raises when the work has stopped flowing."""
        stuck = max(self.executions.oldest_wait(), self.offersets.oldest_wait())
        if stuck > 120:
            raise RuntimeError(f"work queue stalled: a key has waited {stuck:.0f} s")
        if time.monotonic() - self.last_sweep > 5 * self.cfg.sweep_seconds + 30:
            raise RuntimeError("the expiry sweeper has stopped")
        return {
            "ready": self.ready.is_set(),
            "executions": len(self.state.executions),
            "reservations": len(self.state.ledger),
            "queued": len(self.executions) + len(self.offersets),
            **self.stats,
            "mean_ms": {k: round(1000 * v[1] / v[0], 2) for k, v in self.timings.items() if v[0]},
        }

    # -- watch events (called by the kopf handlers) ----------------------------------------

    def on_execution(self, obj: Obj, deleted: bool) -> None:
        """Every Execution's reservation counts (also those of namespaces another operator serves:
        they hold the same nodes); only our own namespaces' Executions are reconciled."""
        self.active = True
        key = key_of(obj)
        before = self.state.executions.get(key)
        view = self.state.on_execution(obj, deleted)
        if view is None:
            self.executions.forget(key)
            return
        if not self.mine(view.namespace):
            if view.phase == Phase.OFFERED and view.expires is not None:
                self.executions.add_at(key, view.expires)  # then no longer held: see reconcile
            return
        self.executions.add(key)
        if view.group and (before is None or before.phase != view.phase) and view.phase not in NOT_ACCEPTED:
            for s in self.state.siblings(view):
                self.executions.add(s.key)

    def on_offerset(self, obj: Obj, deleted: bool) -> None:
        """Every answered OfferSet's offers hold capacity (also another operator's: same nodes);
        only our own namespaces' unanswered sets are answered."""
        meta = obj["metadata"]
        key = key_of(obj)
        self.state.on_offerset(obj, deleted or bool(meta.get("deletionTimestamp")))
        if deleted or meta.get("deletionTimestamp") or (obj.get("status") or {}).get("result"):
            self.pending_offersets.pop(key, None)
            return
        if self.mine(meta.get("namespace")):
            self.pending_offersets[key] = dict(obj)
            self.offersets.add(key)

    def on_pod(self, obj: Obj, deleted: bool) -> None:
        key = self.state.on_pod(obj, deleted)
        if key is not None:
            self.executions.add(key)

    def on_node(self, obj: Obj, deleted: bool) -> None:
        name = obj["metadata"]["name"]
        self.state.on_node(obj, deleted)
        info = self.state.nodes.get(name)
        if info is not None and info.ready:
            self.not_ready_since.pop(name, None)
            return
        if info is not None:
            self.not_ready_since.setdefault(name, self.cfg.clock())
        for r in self.state.ledger.on_node(name):
            self.executions.add(r.key)
            self.executions.add_at(r.key, self.not_ready_since.get(name, 0) + self.cfg.node_lost_grace)

    def on_platform(self, obj: Obj) -> dict[str, Any] | None:
        """Take a new policy if it is valid; returns the status to report on the platform."""
        if obj["metadata"]["name"] != self.cfg.platform:
            return None
        generation = obj["metadata"].get("generation")
        try:
            policy = PlatformPolicy.model_validate(obj.get("spec") or {})
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            log.warning("%s", kv(msg="invalid platform policy; keeping the previous one", problems=problems))
            return {
                "valid": False,
                "message": f"invalid policy, the previous one stays in force: {problems}",
                "observedGeneration": generation,
            }
        self.policy = policy
        self.policy_generation = generation
        self.state.invalidate()
        table = self.state.node_table(policy)
        selected = table.selected(policy.node_selector)
        nodes = len(selected) if selected is not None else len(table)
        return {"valid": True, "message": "in force", "nodes": nodes, "observedGeneration": generation}

    def capacity(self, now: int) -> tuple[NodeTable, LedgerSnapshot]:
        """What a decision taking capacity at ``now`` sees (under the lock): the nodes' free
        capacity and a snapshot of the ledger, without the offers that have expired by then."""
        self.state.purge_offers(now)
        return self.state.node_table(self.policy), self.state.ledger.snapshot()

    # -- OfferSets ---------------------------------------------------------------------------

    async def process_offerset(self, key: str) -> None:
        await self.ready.wait()
        obj = self.pending_offersets.get(key)
        if obj is None:
            return
        request = obj.get("spec", {}).get("request")
        with self.timed("probe"):
            found = await children.probe(self.cluster, obj["metadata"]["namespace"], request, self.policy)
        now = self.now()  # probing may have taken a while
        with self.timed("interpret"):
            interp = interpret(request, self.policy, now, found, unknown_requirements(obj))
        if interp.demand is None:
            await self._answer(obj, [], None, interp.messages, now)
            return
        made, expires, reason = await self._make_offers(obj, interp, now)
        messages = list(interp.messages)
        if not made:
            messages.append(builders.message_item("INFO", "urn:no-capacity", reason or "no offers", now))
        with self.timed("answer"):
            await self._answer(obj, made, expires, messages, now, interp.request)

    async def _make_offers(
        self, obj: Obj, interp: Interpretation, now: int
    ) -> tuple[list[dict[str, Any]], int, str | None]:
        """Decide the offers and hold them in the ledger; ``_answer`` writes them (one write)."""
        assert interp.demand is not None
        meta = obj["metadata"]
        ns = meta["namespace"]
        with self.timed("lock_wait"):
            await self.lock.acquire()
        try:
            with self.timed("decide"):
                table, book = self.capacity(now)
                offers = find_offers(interp.demand, self.policy, table, book, now)
                reason = None if offers else explain_no_offers(interp.demand, self.policy, table, book, now)
                expires = offer_expiry(offers, self.policy, now)
                made = []
                for i, offer in enumerate(offers):
                    name = offer_name(meta, i)
                    spec = reservation_spec(offer, expires, interp.node_selector)
                    made.append({"name": name, "uuid": name, "reservation": spec})
                    held = reservation_from_spec(f"{ns}/{name}", spec, Phase.OFFERED, key_of(obj))
                    self.state.ledger.upsert(held)
        finally:
            self.lock.release()
        self.stats["offers"] += len(made)
        return made, expires, reason

    async def _answer(
        self,
        obj: Obj,
        offers: list[dict[str, Any]],
        expires: int | None,
        messages: list[Any],
        now: int,
        request: Obj | None = None,
    ) -> None:
        meta = obj["metadata"]
        status = builders.offerset_status(
            object_uuid(obj), offers, expires, now, messages, meta.get("generation"), request
        )
        try:
            answered = await self.cluster.patch(
                OFFERSETS, meta["namespace"], meta["name"], {"status": status}, status=True
            )
        except BaseException as e:
            for o in offers:  # the API server does not have them: they hold nothing
                self.state.ledger.remove(f"{meta['namespace']}/{o['name']}")
            if not isinstance(e, NotFound):  # deleted meanwhile: nothing to answer
                raise
        else:
            self.state.on_offerset(answered)
        self.pending_offersets.pop(key_of(obj), None)
        self.stats["offersets"] += 1
        result = status["result"]
        if not offers:  # a YES is in the status and the offers; an Event for it would cost a write each
            text = "; ".join(str(m.get("message")) for m in messages)[:500]
            self.events.post(obj, "OfferSet", "NoOffers", text, warning=True)
        log.info("%s", kv(msg="offerset answered", offerset=key_of(obj), result=result, offers=len(offers)))

    # -- Executions --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        await self.ready.wait()
        for _ in range(6):  # follow immediate steps without waiting for our own watch events
            view = self.state.executions.get(key)
            if view is None or view.deleting:
                return
            if not self.mine(view.namespace):
                # Another operator's offer: it holds capacity until it expires, even if that operator
                # is gone and never writes EXPIRED (it would refuse an accept after expiry anyway).
                if view.phase == Phase.OFFERED and view.expires is not None and view.expires <= self.now():
                    self.state.ledger.remove(key)
                return
            try:
                if view.offer_set and not view.status_written and await self._adopt_offer(view):
                    continue
                step = decide(self.facts(view))
                if step.action is Action.ACCEPT:
                    await self.accept(key)
                elif step.action in (Action.RESERVE, Action.VALIDATE):
                    await self.direct(key, validate=step.action is Action.VALIDATE)
                elif not await self.apply(view, step):
                    return
            except NotFound:  # deleted meanwhile; its DELETED event may still be on its way
                self.state.on_execution(view.ref(), deleted=True)
                return

    async def _adopt_offer(self, view: ExecutionView) -> bool:
        """An offer just written as an Execution (a client's accept or reject): it must hold that
        offer's reservation, which is copied in from the OfferSet when left out (kubectl users name
        the offer and the set only). True when this wrote something."""
        offer = self.state.offer(view.group, view.name)
        if view.reservation is not None and (offer is None or view.reservation == offer):
            return False  # as offered, or an offer no longer held (expiry and siblings judge it)
        nothing = Interpretation(None)
        if view.reservation is not None:
            why = f"spec.reservation is not the one offer {view.name} of OfferSet {view.offer_set} holds"
            await self._fail(view, "NotOffered", why, nothing)
        elif offer is None:
            why = f"OfferSet {view.offer_set} holds no live offer {view.name} (it expired, or was never made)"
            await self._fail(view, "NoSuchOffer", why, nothing)
        else:
            try:
                patched = await self.cluster.patch(
                    EXECUTIONS,
                    view.namespace,
                    view.name,
                    {"spec": {"reservation": offer}},
                    resource_version=str(view.rv),
                )
            except Conflict:
                raise Retry(0.2, "changed meanwhile") from None
            self.state.put(execution_view(patched))
        return True

    def facts(self, view: ExecutionView) -> Facts:
        r = view.reservation or {}
        node = r.get("node")
        start = parse_instant(r["start"]) if r else None
        sibling = next((s.name for s in self.state.siblings(view) if s.phase not in NOT_ACCEPTED), None)
        return Facts(
            now=self.now(),
            phase=view.phase,
            offered=view.offer_set is not None,
            reserved=bool(r),
            desired=view.desired,
            desired_new=view.desired_new,
            expires=view.expires,
            prepare_start=parse_instant(r["prepareStart"]) if r else None,
            start=start,
            release_end=parse_instant(r["releaseEnd"]) if r else None,
            node=node,
            node_lost=bool(node) and self._node_lost(str(node)),
            pod=self.state.pod_of(view),
            accepted_sibling=sibling,
        )

    def _node_lost(self, node: str) -> bool:
        if node not in self.state.nodes:
            return True
        since = self.not_ready_since.get(node)
        return since is not None and self.cfg.clock() - since >= self.cfg.node_lost_grace

    async def apply(self, view: ExecutionView, step: Step) -> bool:
        """Carry out one step; True when it changed something (so the next step may follow)."""
        if step.wake_at is not None:
            self.executions.add_at(view.key, step.wake_at)
        if step.noop and not view.desired_new:
            return False
        if step.action is Action.CREATE_POD:
            await self.create_pod(view)
        elif step.action is Action.DELETE_POD:
            await self.delete_pod(view)
        if step.phase is None and not step.refused and not view.desired_new:
            return False
        phase = step.phase or view.phase
        status = self._status(view, phase, step.reason, step.message, step.refused)
        pod = self.state.pod_of(view)
        access = await children.access(self.cluster, view.namespace, view.name, phase, pod)
        if access is not None:  # a notebook: its URL once READY (eb_operator.operator.children)
            status["access"] = access
        await self._patch_status(view, status)
        self._announce(view, step)
        return step.phase is not None

    def _status(
        self, view: ExecutionView, phase: Phase | None, reason: str, message: str, refused: bool = False
    ) -> dict[str, Any]:
        now = self.now()
        status: dict[str, Any] = {"observedGeneration": view.generation}
        if phase is not None:
            status["phase"] = str(phase)
        if not view.status_written:
            status |= {
                "uuid": object_uuid({"metadata": {"name": view.name, "uid": view.uid}}),
                "created": view.created or format_instant(now),
            }
            if view.expires is not None:
                status["expires"] = format_instant(view.expires)
        conds = []
        if phase is not None:
            holding = phase not in (
                Phase.REJECTED,
                Phase.EXPIRED,
                Phase.COMPLETED,
                Phase.FAILED,
                Phase.CANCELLED,
            )
            conds.append(
                builders.condition(
                    "Reserved", holding, reason or str(phase), message or str(phase), now, view.generation
                )
            )
        if view.desired:
            ok = not refused
            conds.append(
                builders.condition(
                    "DesiredPhase",
                    ok,
                    reason if refused else "Applied",
                    message if refused else f"{view.desired} applied",
                    now,
                    view.generation,
                )
            )
        status["conditions"] = builders.merge_conditions(view.conditions, conds)
        if message:
            status["message"] = message
        if phase == Phase.FAILED or refused:
            level = "ERROR" if phase == Phase.FAILED else "WARN"
            status["messages"] = [
                builders.message_item(level, f"urn:{reason.lower() or 'failed'}", message, now)
            ]
        return status

    async def _patch_status(self, view: ExecutionView, status: dict[str, Any]) -> ExecutionView:
        try:
            obj = await self.cluster.patch(
                EXECUTIONS,
                view.namespace,
                view.name,
                {"status": status},
                status=True,
                resource_version=str(view.rv),
            )
        except Conflict:
            raise Retry(0.2, "changed meanwhile") from None
        except NotFound:
            return view
        new = execution_view(obj)
        self.state.put(new)
        return new

    def _announce(self, view: ExecutionView, step: Step) -> None:
        old = view.phase
        new = step.phase or old
        warning = step.refused or new == Phase.FAILED
        reason = "PhaseChangeRefused" if step.refused and step.phase is None else (step.reason or str(new))
        text = f"{old} -> {new}: {step.message}" if new != old else step.message
        if text:
            self.events.post(view.ref(), "Execution", reason, text, warning)
        log.info(
            "%s",
            kv(msg="transition", execution=view.key, old=old, new=new, reason=reason, detail=step.message),
        )

    # -- accept ----------------------------------------------------------------------------

    async def accept(self, key: str) -> None:
        """OFFERED -> ACCEPTED: re-validate capacity, then reject the siblings, atomically with
        respect to every other decision (the lock), with resourceVersion preconditions."""
        async with self.lock:
            view = self.state.executions.get(key)
            if view is None:
                return
            step = decide(self.facts(view))
            if step.action is not Action.ACCEPT:
                return  # something changed while we waited for the lock: the loop re-decides
            now = self.now()
            table, book = self.capacity(now)
            cand = self.state.ledger.get(key) or reservation_from_spec(
                key, view.reservation or {}, Phase.OFFERED, view.group
            )
            why = check_accept(cand, table, book, now, ignore_group=view.group)
            if why is not None:
                await self.apply(view, Step(reason="CapacityGone", message=why, refused=True))
                return
            await self._patch_status(
                view, self._status(view, Phase.ACCEPTED, "Accepted", "accepted by the client")
            )
            # The siblings' capacity is free from now on; each one's own reconcile writes REJECTED
            # (the level rule "a sibling was accepted"), so this step does not wait for them.
            for s in self.state.siblings(view):
                if s.phase == Phase.OFFERED:
                    self.state.ledger.remove(s.key)
                    self.executions.add(s.key)
        self.stats["accepts"] += 1
        self._announce(view, Step(phase=Phase.ACCEPTED, reason="Accepted", message="accepted by the client"))

    # -- direct requests -------------------------------------------------------------------

    async def direct(self, key: str, validate: bool) -> None:
        """An Execution applied without an OfferSet: hold the earliest fitting slot and accept it."""
        view = self.state.executions[key]
        obj = await self.cluster.get(EXECUTIONS, view.namespace, view.name)
        request = await self._direct_request(obj)
        found = await children.probe(self.cluster, view.namespace, request, self.policy)
        now = self.now()
        interp = (
            interpret(request, self.policy, now, found, unknown_requirements(obj))
            if request is not None
            else Interpretation(
                None,
                [builders.message_item("ERROR", "urn:missing-value", "no request and no executableRef", now)],
            )
        )
        if interp.demand is None and not validate:
            await self._fail(
                view, "Invalid", "; ".join(str(m.get("message")) for m in interp.messages), interp
            )
            return
        async with self.lock:
            view = self.state.executions[key]
            spec, why = self._direct_slot(view, interp, validate, now)
            if spec is None:
                await self._fail(view, "NoCapacity", why or "no slot fits", interp)
                return
            self.state.ledger.upsert(reservation_from_spec(key, spec, Phase.ACCEPTED))
            try:
                patched = (
                    await self.cluster.patch(
                        EXECUTIONS,
                        view.namespace,
                        view.name,
                        {"spec": {"reservation": spec}},
                        resource_version=str(view.rv),
                    )
                    if not validate
                    else obj
                )
            except BaseException:
                self.state.ledger.remove(key)
                raise
            view = execution_view(patched)
            await self._patch_status(
                view, self._status(view, Phase.ACCEPTED, "Accepted", "earliest slot reserved")
            )
        self._announce(
            view,
            Step(
                phase=Phase.ACCEPTED,
                reason="Accepted",
                message=f"reserved {spec['cores']} cores on {spec['node']} from {spec['start']}",
            ),
        )

    def _direct_slot(
        self, view: ExecutionView, interp: Interpretation, validate: bool, now: int
    ) -> tuple[dict[str, Any] | None, str | None]:
        table, book = self.capacity(now)
        if validate:
            spec = view.reservation or {}
            cand = reservation_from_spec(view.key, spec, Phase.ACCEPTED)
            why = check_accept(cand, table, book, now)
            return (spec, None) if why is None else (None, why)
        assert interp.demand is not None
        demand = dataclasses.replace(interp.demand, max_offers=1)
        offers: list[Offer] = find_offers(demand, self.policy, table, book, now)
        if not offers:
            return None, explain_no_offers(demand, self.policy, table, book, now)
        best = min(offers, key=lambda o: (o.start, o.node))
        return reservation_spec(best, None, interp.node_selector), None

    async def _direct_request(self, obj: Obj) -> dict[str, Any] | None:
        """The request an Execution runs: inline, else its OfferSet's as offered, with the
        executable from ``executableRef`` when it has none."""
        spec = obj.get("spec") or {}
        request = dict(spec.get("request") or {})
        if not request and spec.get("offerSet"):
            with contextlib.suppress(NotFound):
                offerset = await self.cluster.get(OFFERSETS, obj["metadata"]["namespace"], spec["offerSet"])
                status = offerset.get("status") or {}
                request = dict(status.get("request") or (offerset.get("spec") or {}).get("request") or {})
        ref = spec.get("executableRef")
        if ref and not request.get("executable"):
            try:
                exe = await self.cluster.get(EXECUTABLES, obj["metadata"]["namespace"], ref)
            except NotFound:
                return None
            request["executable"] = exe.get("spec") or {}
        return request if request.get("executable") else None

    async def _fail(self, view: ExecutionView, reason: str, message: str, interp: Interpretation) -> None:
        status = self._status(view, Phase.FAILED, reason, message)
        status["messages"] = list(interp.messages) or status.get("messages", [])
        await self._patch_status(view, status)
        self._announce(view, Step(phase=Phase.FAILED, reason=reason, message=message))

    # -- Pods ------------------------------------------------------------------------------

    async def create_pod(self, view: ExecutionView) -> None:
        obj = await self.cluster.get(EXECUTIONS, view.namespace, view.name)
        request = await self._direct_request(obj)
        executable = (request or {}).get("executable")
        if not executable:
            raise Retry(5.0, "no executable to run")
        # an offer's Execution holds no request of its own: the Pod is built from its set's
        obj = {**obj, "spec": {**(obj.get("spec") or {}), "request": request}}
        await children.prepare(self.cluster, obj, executable, self.policy)  # PVCs, Secrets, Service
        body = builders.build_pod(obj, executable, self.policy, self.now(), self.cfg.pod)
        name = body["metadata"]["name"]
        try:
            await self.cluster.create_pod(view.namespace, body)
            self.stats["pods"] += 1
            log.info(
                "%s",
                kv(
                    msg="pod created", execution=view.key, pod=name, node=(view.reservation or {}).get("node")
                ),
            )
        except Conflict:
            pass  # created before: the Pod's own events drive the next steps
        self.state.broker_pods.setdefault(view.uid, PodView(name=name))

    async def delete_pod(self, view: ExecutionView) -> None:
        if await self.cluster.delete_pod(view.namespace, builders.pod_name(view.name), grace_seconds=5):
            log.info("%s", kv(msg="pod deleted", execution=view.key))


__all__ = ["Operator", "OperatorConfig"]
