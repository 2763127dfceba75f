"""Session Pods: create one (with what it refers to) on the reserved node, the Pod that delivers its
results when the run has ended, or delete them.

Idempotent: the Pods' names are deterministic, a create that finds one there is fine (its own
events drive the next steps), and a delete of a Pod already gone is success.

A session's Pod is created only once it fits beside the Pods the scheduler still counts on its node
(:meth:`~eb_operator.operator.state.ClusterState.crowded`): the Pod of the session before may
still be shutting down there (a container that ignores SIGTERM, a session that overran its
reservation), and the scheduler would refuse the new one for "Insufficient cpu". The session
waits for it (at most ``ROOM_WAIT`` past its preparation's start; then the scheduler decides).
"""

from __future__ import annotations

import logging
from typing import Any

from eb_operator.cluster.convert import object_uuid, reservation_from_spec
from eb_operator.cluster.crs import EXECUTIONS, Conflict
from eb_operator.engine.types import Phase
from eb_operator.model.reuse import storage_uuid
from eb_operator.model.times import format_duration, parse_instant
from eb_operator.operator import children, volumes
from eb_operator.operator.builders.children import child_namespace, placed
from eb_operator.operator.builders.pod import build_pod, pod_name, request_of, session_pods, storage_plan
from eb_operator.operator.builders.stageout import build_stageout_pod
from eb_operator.operator.builders.storage import (
    ANN_DELETE_AFTER,
    claim_name,
    is_claimed,
    offered_gib,
    offered_lifetime,
    reservation_span,
    reuses,
    stageout_pod_name,
)
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.lifecycle import OVERRUN_GRACE, observe_pod
from eb_operator.operator.lookup import execution_request
from eb_operator.operator.namespaces import OwnerNamespaces
from eb_operator.operator.state import ExecutionView
from eb_operator.operator.workqueue import Retry

log = logging.getLogger("eb_operator.operator")
Obj = dict[str, Any]


class CannotPrepare(Exception):
    """The session cannot start: the text says why (its FAILED message)."""


#: How long past its preparation's start a session waits for room on its node: long enough for
#: the session before it to be failed for overrunning (``OVERRUN_GRACE``) and its Pod to stop.
ROOM_WAIT = OVERRUN_GRACE + 30


class Pods:
    def __init__(self, ctx: OperatorContext, namespaces: OwnerNamespaces) -> None:
        self.ctx = ctx
        self._waiting: set[str] = set()  # uids of sessions told to wait for room
        self.namespaces = namespaces

    async def _execution(self, view: ExecutionView) -> Obj:
        """The Execution with the request it runs (an offer's is its set's), placed where its
        children live."""
        ctx = self.ctx
        obj = await ctx.cluster.get(EXECUTIONS, view.namespace, view.name)
        request = await execution_request(ctx.cluster, obj)
        namespace = self.namespaces.namespace_of(view)
        return placed({**obj, "spec": {**(obj.get("spec") or {}), "request": request or {}}}, namespace)

    async def create(self, view: ExecutionView) -> tuple[str, dict[str, Any]]:
        """Create the session's Pod and what it needs where its children live; returns where, and
        the status fields that say what was made (``podName``, ``storage``). Raises
        :class:`CannotPrepare` when storage it names again cannot be mounted."""
        ctx = self.ctx
        self._wait_for_room(view)
        obj = await self._execution(view)
        executable = request_of(obj).get("executable")
        if not executable:
            raise Retry(5.0, "no executable to run")
        namespace = self.namespaces.namespace_of(view)
        await self.namespaces.ensure(namespace, view)
        found = await self._reused(obj, view)
        obj = {**obj, "status": {**(obj.get("status") or {}), "storage": found}}
        policy = ctx.routing_policy()
        # PVCs, Secrets, Services, the route (RouteFailed when it cannot be made)
        await children.prepare(ctx.cluster, obj, executable, policy, ctx.cfg.session_key)
        body = build_pod(obj, executable, policy, ctx.now(), ctx.cfg.pod)
        name = body["metadata"]["name"]
        try:
            await ctx.cluster.create_pod(namespace, body)
            ctx.stats["pods"] += 1
            node = (view.reservation or {}).get("node")
            log.info("%s", kv(msg="pod created", execution=view.key, pod=f"{namespace}/{name}", node=node))
        except Conflict:
            pass  # created before: the Pod's own events drive the next steps
        ctx.state.broker_pods.setdefault(view.uid, observe_pod(body))
        made: dict[str, Any] = {"podName": name}
        storage = self._storage_status(obj, found)
        if storage:
            made["storage"] = storage
        return namespace, made

    async def _reused(self, obj: Obj, view: ExecutionView) -> list[dict[str, Any]]:
        """Find and hold every earlier session's storage the request names (``operator.volumes``):
        its ``status.storage`` entries."""
        ctx = self.ctx
        out = []
        namespace = child_namespace(obj)
        span = reservation_span(obj)
        limit = ctx.policy.limits.max_storage_lifetime_seconds
        for i, item in enumerate((request_of(obj).get("resources") or {}).get("storage") or []):
            uuid = reuses(item)
            if not uuid:
                continue
            claim = await volumes.find(ctx.cluster, uuid, view.owner, namespace)
            if claim is None:
                raise CannotPrepare(
                    f"resources/storage/{i}: there is no storage {uuid} of yours to mount any more"
                )
            lifetime = volumes.requested_lifetime(item, limit)
            try:
                claim = await volumes.hold(
                    ctx.cluster, claim, view.uid, span, lifetime, session_pods(obj), ctx.state.phase_of_uid
                )
            except volumes.InUse as e:
                raise CannotPrepare(f"resources/storage/{i}: storage {uuid} cannot be mounted: {e}") from None
            except Conflict:
                raise Retry(0.2, "the claim changed meanwhile") from None
            meta = claim["metadata"]
            out.append(
                {
                    "index": i,
                    "uuid": uuid,
                    "claim": meta["name"],
                    "namespace": meta["namespace"],
                    "sizeGiB": volumes.size_gib(claim),
                    "lifetime": format_duration(lifetime) if lifetime else None,
                    "expires": (meta.get("annotations") or {}).get(ANN_DELETE_AFTER),
                    "reused": True,
                    "delivers": bool(item.get("stageout")),
                }
            )
        return out

    def _storage_status(self, obj: Obj, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``status.storage``: every storage resource's uuid, claim, size and expiry."""
        policy = self.ctx.policy
        reused = {int(e["index"]): e for e in found}
        plan = storage_plan(obj, policy)
        deadlines = {
            c["metadata"]["name"]: c["metadata"]["annotations"].get(ANN_DELETE_AFTER) for c in plan.claims
        }
        session = object_uuid(obj)
        out = []
        for i, item in enumerate((request_of(obj).get("resources") or {}).get("storage") or []):
            if i in reused:
                out.append({k: v for k, v in reused[i].items() if v is not None})
                continue
            entry: dict[str, Any] = {
                "index": i,
                "uuid": storage_uuid(session, i),
                "sizeGiB": offered_gib(item),
            }
            if is_claimed(item):
                name = claim_name(obj["metadata"]["name"], i)
                entry |= {"claim": name, "namespace": child_namespace(obj), "expires": deadlines.get(name)}
                lifetime = offered_lifetime(item, policy.limits.max_storage_lifetime_seconds)
                if lifetime is not None:
                    entry["lifetime"] = format_duration(lifetime)
            if item.get("stageout"):
                entry["delivers"] = True
            out.append(entry)
        return out

    async def deliver(self, view: ExecutionView) -> None:
        """Create the Pod that stages the session's results out (``builders.stageout``)."""
        ctx = self.ctx
        obj = await self._execution(view)
        await children.prepare_delivery(ctx.cluster, obj, ctx.policy)
        body = build_stageout_pod(obj, ctx.policy, ctx.now(), ctx.cfg.pod)
        try:
            await ctx.cluster.create_pod(body["metadata"]["namespace"], body)
            log.info("%s", kv(msg="delivery pod created", execution=view.key, pod=body["metadata"]["name"]))
        except Conflict:
            pass

    async def release(self, view: ExecutionView, namespace: str | None = None) -> None:
        """The session ended: its route objects and Services go at once (the Pod stays for its
        logs), where its children live (``namespace``: where they were just made)."""
        where = namespace or self.namespaces.namespace_of(view)
        await children.release(self.ctx.cluster, placed(view.ref(), where))

    def _wait_for_room(self, view: ExecutionView) -> None:
        """Retry soon (before any request to the API server) while the node is still too full for
        the Pod: it requests what the reservation holds."""
        ctx = self.ctx
        r = view.reservation
        if not r or ctx.state.broker_pods.get(view.uid) is not None:
            return  # nothing to place, or made before (a create that finds it is fine)
        needs = reservation_from_spec(view.key, r, Phase.PREPARING).resources
        crowded = ctx.state.crowded(str(r["node"]), needs)
        if crowded is None:
            self._waiting.discard(view.uid)
            return
        if ctx.now() >= parse_instant(r["prepareStart"]) + ROOM_WAIT:
            self._waiting.discard(view.uid)
            log.warning("%s", kv(msg="creating the pod on a full node", execution=view.key, why=crowded))
            return
        if view.uid not in self._waiting:  # once per session, not per retry
            self._waiting.add(view.uid)
            ctx.stats["room_waits"] += 1
            ctx.metrics.room_waits.inc()
            log.info("%s", kv(msg="waiting for room", execution=view.key, why=crowded))
        raise Retry(1.0, crowded)

    async def delete(self, view: ExecutionView) -> None:
        """Stop the session's Pods (its workload's, and its delivery's if any)."""
        namespace = self.namespaces.namespace_of(view)
        names = [pod_name(view.name), *([stageout_pod_name(view.name)] if view.delivers else [])]
        for name in names:
            if await self.ctx.cluster.delete_pod(namespace, name, grace_seconds=5):
                log.info("%s", kv(msg="pod deleted", execution=view.key, pod=name))
