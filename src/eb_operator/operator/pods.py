"""Session Pods: create one (with what it refers to) on the reserved node, or delete it.

Idempotent: the Pod's name is deterministic, a create that finds it there is fine (its own events
drive the next steps), and a delete of a Pod already gone is success.

A Pod is created only once it fits beside the Pods the scheduler still counts on its node
(:meth:`~eb_operator.operator.state.ClusterState.crowded`): the Pod of the session before may
still be shutting down there (a container that ignores SIGTERM, a session that overran its
reservation), and the scheduler would refuse the new one for "Insufficient cpu". The session
waits for it (at most ``ROOM_WAIT`` past its preparation's start; then the scheduler decides).
"""

from __future__ import annotations

import logging

from eb_operator.cluster.convert import reservation_from_spec
from eb_operator.cluster.crs import EXECUTIONS, Conflict
from eb_operator.engine.types import Phase
from eb_operator.model.times import parse_instant
from eb_operator.operator import children
from eb_operator.operator.builders.children import placed
from eb_operator.operator.builders.pod import build_pod, pod_name
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.lifecycle import OVERRUN_GRACE, observe_pod
from eb_operator.operator.lookup import execution_request
from eb_operator.operator.namespaces import OwnerNamespaces
from eb_operator.operator.state import ExecutionView
from eb_operator.operator.workqueue import Retry

log = logging.getLogger("eb_operator.operator")

#: How long past its preparation's start a session waits for room on its node: long enough for
#: the session before it to be failed for overrunning (``OVERRUN_GRACE``) and its Pod to stop.
ROOM_WAIT = OVERRUN_GRACE + 30


class Pods:
    def __init__(self, ctx: OperatorContext, namespaces: OwnerNamespaces) -> None:
        self.ctx = ctx
        self._waiting: set[str] = set()  # uids of sessions told to wait for room
        self.namespaces = namespaces

    async def create(self, view: ExecutionView) -> str:
        """Create the session's Pod and what it needs where its children live; returns where."""
        ctx = self.ctx
        self._wait_for_room(view)
        obj = await ctx.cluster.get(EXECUTIONS, view.namespace, view.name)
        request = await execution_request(ctx.cluster, obj)
        executable = (request or {}).get("executable")
        if not executable:
            raise Retry(5.0, "no executable to run")
        namespace = self.namespaces.namespace_of(view)
        await self.namespaces.ensure(namespace, view)
        # an offer's Execution holds no request of its own: the Pod is built from its set's
        obj = placed({**obj, "spec": {**(obj.get("spec") or {}), "request": request}}, namespace)
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
        return namespace

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
        namespace = self.namespaces.namespace_of(view)
        if await self.ctx.cluster.delete_pod(namespace, pod_name(view.name), grace_seconds=5):
            log.info("%s", kv(msg="pod deleted", execution=view.key))
