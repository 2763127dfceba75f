"""What the phase machine sees of one Execution: its :class:`~eb_operator.operator.lifecycle.Facts`
gathered from the state (its reservation, Pod, node and siblings) and the clock."""

from __future__ import annotations

from eb_operator.model.times import parse_instant
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.lifecycle import Facts
from eb_operator.operator.state import NOT_ACCEPTED, ExecutionView


def facts_of(ctx: OperatorContext, view: ExecutionView) -> Facts:
    r = view.reservation or {}
    node = r.get("node")
    sibling = next((s.name for s in ctx.state.siblings(view) if s.phase not in NOT_ACCEPTED), None)
    return Facts(
        now=ctx.now(),
        phase=view.phase,
        offered=view.offer_set is not None,
        reserved=bool(r),
        desired=view.desired,
        desired_new=view.desired_new,
        expires=view.expires,
        prepare_start=parse_instant(r["prepareStart"]) if r else None,
        start=parse_instant(r["start"]) if r else None,
        release_end=parse_instant(r["releaseEnd"]) if r else None,
        node=node,
        node_lost=bool(node) and ctx.node_lost(str(node)),
        pod=ctx.state.pod_of(view),
        accepted_sibling=sibling,
        withdrawn=ctx.state.withdrawn.get(view.group, {}).get(view.name) if view.group else None,
        delivers=view.delivers,
        delivery=ctx.state.delivery_of(view),
    )
