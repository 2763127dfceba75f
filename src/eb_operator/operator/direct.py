"""Direct requests: an Execution applied without an OfferSet holds the earliest fitting slot and
is accepted at once; one that already names a reservation has it checked instead.

The slot goes into the ledger under the decision lock before it is written, and comes out again
if the write fails.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from eb_operator.cluster.convert import reservation_from_spec, reservation_spec
from eb_operator.cluster.crs import EXECUTIONS
from eb_operator.engine import check_accept
from eb_operator.engine.types import Phase
from eb_operator.model.common import MessageType
from eb_operator.operator import children, volumes
from eb_operator.operator.builders.status import message_item
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.lifecycle import Step
from eb_operator.operator.lookup import execution_request
from eb_operator.operator.planning import plan
from eb_operator.operator.requests import Interpretation, interpret, unknown_requirements
from eb_operator.operator.sharing import Caller, SharingRules
from eb_operator.operator.state import ExecutionView, execution_view
from eb_operator.operator.status import StatusWriter


class DirectRequests:
    def __init__(self, ctx: OperatorContext, status: StatusWriter, rules: SharingRules) -> None:
        self.ctx = ctx
        self.status = status
        self.rules = rules

    async def reserve(self, key: str, validate: bool) -> None:
        """Hold the earliest fitting slot for Execution ``key`` and accept it (``validate``: check
        the reservation it names instead); FAILED with the reasons when nothing fits."""
        ctx = self.ctx
        view = ctx.state.executions[key]
        caller = self.rules.caller(view.owner, view.groups)
        wait, why = self.rules.rate(caller, ctx.cfg.clock())
        if wait > 0:  # the REST API answers 429 with Retry-After and deletes the Execution
            seconds = {"retryAfter": str(max(1, math.ceil(wait)))}
            item = message_item("ERROR", MessageType.RATE_LIMITED, why, ctx.now(), seconds)
            await self.status.fail(view, "RateLimited", why, Interpretation(None, [item]))
            return
        obj = await ctx.cluster.get(EXECUTIONS, view.namespace, view.name)
        request = await execution_request(ctx.cluster, obj)
        found = await children.probe(ctx.cluster, view.namespace, request, ctx.policy)
        where = ctx.children_namespace(view.namespace, view.owner)
        reuse = await volumes.inspect(ctx.cluster, request, view.owner, where, ctx.state.phase_of_uid)
        now = ctx.now()
        interp = (
            interpret(request, ctx.policy, now, found, unknown_requirements(obj), caller.account, reuse=reuse)
            if request is not None
            else Interpretation(
                None, [message_item("ERROR", "urn:missing-value", "no request and no executableRef", now)]
            )
        )
        if interp.demand is None and not validate:
            reasons = "; ".join(str(m.get("message")) for m in interp.messages)
            await self.status.fail(view, "Invalid", reasons, interp)
            return
        async with ctx.lock:
            view = ctx.state.executions[key]
            with ctx.deciding("direct"):
                spec, reason_text, reason = await self._slot(view, interp, validate, caller, now)
            if spec is None:
                await self.status.fail(view, reason, reason_text or "no slot fits", interp)
                return
            held = reservation_from_spec(key, spec, Phase.ACCEPTED, "", caller.owner, caller.account)
            ctx.state.ledger.upsert(held)
            try:
                patched = (
                    await ctx.cluster.patch(
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
                ctx.state.ledger.remove(key)
                raise
            view = execution_view(patched)
            await self.status.patch(
                view, self.status.status(view, Phase.ACCEPTED, "Accepted", "earliest slot reserved")
            )
        self.status.announce(
            view,
            Step(
                phase=Phase.ACCEPTED,
                reason="Accepted",
                message=f"reserved {spec['cores']} cores on {spec['node']} from {spec['start']}",
            ),
        )

    async def _slot(
        self, view: ExecutionView, interp: Interpretation, validate: bool, caller: Caller, now: int
    ) -> tuple[dict[str, Any] | None, str | None, str]:
        """The reservation to hold (or None, why not and the reason's name): the one named, if
        still free, else the earliest of the engine's offers; within the caller's session limits."""
        ctx = self.ctx
        table, book = ctx.capacity(now)
        if validate:
            spec = view.reservation or {}
            cand = reservation_from_spec(view.key, spec, Phase.ACCEPTED, "", caller.owner, caller.account)
            over = self.rules.admit_session(cand, caller, table)
            if over is not None:
                return None, over, "OverLimit"
            why = check_accept(cand, table, book, now)
            return (spec, None, "") if why is None else (None, why, "NoCapacity")
        assert interp.demand is not None
        after, why = volumes.start_after_holds(interp, ctx.state, but=view.key)
        if after is None:
            return None, why, "NoCapacity"
        over = None
        for demand in (
            dataclasses.replace(after, max_offers=1),
            dataclasses.replace(after, max_offers=1, cores_max=after.cores_min),
        ):
            found = await plan(ctx, demand, table, book, now)  # one search, NO reason included
            if not found.offers:
                return None, found.reason, "NoCapacity"
            best = min(found.offers, key=lambda o: (o.start, o.node))
            spec = reservation_spec(best, None, interp.node_selector)
            cand = reservation_from_spec(view.key, spec, Phase.ACCEPTED, "", caller.owner, caller.account)
            over = self.rules.admit_session(cand, caller, table)
            if over is None:
                return spec, None, ""
        return None, over, "OverLimit"
