"""Watch events: record each in the state and queue the keys whose next step may have changed.

Called by the operator's feeds (``eb_operator.cluster.feeds``, one task per kind), in the event
loop. No decision and no API write here: the workers reconcile each queued key from the newest
state. A standby operator records every event too (its queues drop the keys): it takes over with
a current picture.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from eb_operator.engine.types import Phase
from eb_operator.model.platform import PlatformPolicy
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.namespaces import OwnerNamespaces
from eb_operator.operator.state import NOT_ACCEPTED, key_of

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]


class WatchEvents:
    def __init__(self, ctx: OperatorContext, namespaces: OwnerNamespaces) -> None:
        self.ctx = ctx
        self.namespaces = namespaces

    def on_execution(self, obj: Obj, deleted: bool) -> None:
        """Every Execution's reservation counts (also those of namespaces another operator serves:
        they hold the same nodes); only our own namespaces' Executions are reconciled."""
        ctx = self.ctx
        key = key_of(obj)
        before = ctx.state.executions.get(key)
        view = ctx.state.on_execution(obj, deleted)
        if view is None:
            ctx.executions.forget(key)
            if deleted and before is not None and ctx.mine(before.namespace):
                where = self.namespaces.namespace_of(before)
                if where != before.namespace:  # no owner reference there: its children go now
                    ctx.cleanups.add((where, before.uid, before.name))
            return
        if not ctx.mine(view.namespace):
            if view.phase == Phase.OFFERED and view.expires is not None:
                ctx.executions.add_at(key, view.expires)  # then no longer held: see Reconciler
            return
        ctx.executions.add(key)
        if view.group and (before is None or before.phase != view.phase) and view.phase not in NOT_ACCEPTED:
            for s in ctx.state.siblings(view):
                ctx.executions.add(s.key)

    def on_offerset(self, obj: Obj, deleted: bool) -> None:
        """Every answered OfferSet's offers hold capacity (also another operator's: same nodes);
        only our own namespaces' unanswered sets are answered."""
        ctx = self.ctx
        meta = obj["metadata"]
        key = key_of(obj)
        ctx.state.on_offerset(obj, deleted or bool(meta.get("deletionTimestamp")))
        if deleted or meta.get("deletionTimestamp") or (obj.get("status") or {}).get("result"):
            ctx.pending_offersets.pop(key, None)
            ctx.pending_since.pop(key, None)
            return
        if ctx.mine(meta.get("namespace")):
            ctx.pending_offersets[key] = dict(obj)
            ctx.pending_since.setdefault(key, time.monotonic())
            ctx.offersets.add(key)

    def on_pod(self, obj: Obj, deleted: bool) -> None:
        key = self.ctx.state.on_pod(obj, deleted)
        if key is not None:
            self.ctx.executions.add(key)

    def on_node(self, obj: Obj, deleted: bool) -> None:
        """A node that is not Ready starts its grace (``node_lost_grace``); the Executions holding
        it are looked at now and again when the grace ends."""
        ctx = self.ctx
        name = obj["metadata"]["name"]
        ctx.state.on_node(obj, deleted)
        info = ctx.state.nodes.get(name)
        if info is not None and info.ready:
            ctx.not_ready_since.pop(name, None)
            return
        if info is not None:
            ctx.not_ready_since.setdefault(name, ctx.cfg.clock())
        for r in ctx.state.ledger.on_node(name):
            ctx.executions.add(r.key)
            ctx.executions.add_at(r.key, ctx.not_ready_since.get(name, 0) + ctx.cfg.node_lost_grace)

    def on_platform_event(self, obj: Obj, deleted: bool) -> None:
        """The platform changed: take its policy if valid, and have the operator report on it."""
        ctx = self.ctx
        name = obj["metadata"]["name"]
        if deleted:
            if name == ctx.cfg.platform:
                log.warning("%s", kv(msg="platform deleted; the last valid policy stays", platform=name))
            return
        status = self.on_platform(obj)
        if status is not None and any((obj.get("status") or {}).get(k) != v for k, v in status.items()):
            ctx.platform_report = (name, status)
            ctx.report_platform()

    def on_platform(self, obj: Obj) -> dict[str, Any] | None:
        """Take a new policy if it is valid; returns the status to report on the platform."""
        ctx = self.ctx
        if obj["metadata"]["name"] != ctx.cfg.platform:
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
        sharing_changed = policy.sharing != ctx.policy.sharing
        ctx.policy = policy
        ctx.policy_generation = generation
        ctx.state.account_of = policy.sharing.group_of
        if sharing_changed:  # groups listed or reordered: reservations are charged anew
            moved = ctx.state.recharge()
            if moved:
                log.info("%s", kv(msg="reservations charged to other groups", moved=moved))
        ctx.state.invalidate()
        table = ctx.state.node_table(policy)
        selected = table.selected(policy.node_selector)
        nodes = len(selected) if selected is not None else len(table)
        return {"valid": True, "message": "in force", "nodes": nodes, "observedGeneration": generation}
