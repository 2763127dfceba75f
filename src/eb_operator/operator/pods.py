"""Session Pods: create one (with what it refers to) on the reserved node, or delete it.

Idempotent: the Pod's name is deterministic, a create that finds it there is fine (its own events
drive the next steps), and a delete of a Pod already gone is success.
"""

from __future__ import annotations

import logging

from eb_operator.cluster.crs import EXECUTIONS, Conflict
from eb_operator.operator import children
from eb_operator.operator.builders.pod import build_pod, pod_name
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.lifecycle import observe_pod
from eb_operator.operator.lookup import execution_request
from eb_operator.operator.state import ExecutionView
from eb_operator.operator.workqueue import Retry

log = logging.getLogger("eb_operator.operator")


class Pods:
    def __init__(self, ctx: OperatorContext) -> None:
        self.ctx = ctx

    async def create(self, view: ExecutionView) -> None:
        ctx = self.ctx
        obj = await ctx.cluster.get(EXECUTIONS, view.namespace, view.name)
        request = await execution_request(ctx.cluster, obj)
        executable = (request or {}).get("executable")
        if not executable:
            raise Retry(5.0, "no executable to run")
        # an offer's Execution holds no request of its own: the Pod is built from its set's
        obj = {**obj, "spec": {**(obj.get("spec") or {}), "request": request}}
        policy = ctx.routing_policy()
        # PVCs, Secrets, Services, the route (RouteFailed when it cannot be made)
        await children.prepare(ctx.cluster, obj, executable, policy, ctx.cfg.session_key)
        body = build_pod(obj, executable, policy, ctx.now(), ctx.cfg.pod)
        name = body["metadata"]["name"]
        try:
            await ctx.cluster.create_pod(view.namespace, body)
            ctx.stats["pods"] += 1
            node = (view.reservation or {}).get("node")
            log.info("%s", kv(msg="pod created", execution=view.key, pod=name, node=node))
        except Conflict:
            pass  # created before: the Pod's own events drive the next steps
        ctx.state.broker_pods.setdefault(view.uid, observe_pod(body))

    async def release(self, view: ExecutionView) -> None:
        """The session ended: its route objects and Services go at once (the Pod stays for its logs)."""
        await children.release(self.ctx.cluster, view.ref())

    async def delete(self, view: ExecutionView) -> None:
        if await self.ctx.cluster.delete_pod(view.namespace, pod_name(view.name), grace_seconds=5):
            log.info("%s", kv(msg="pod deleted", execution=view.key))
