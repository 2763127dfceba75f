"""Accepts: OFFERED -> ACCEPTED after re-validating the offer's capacity (and that no other
accepted session mounts the same earlier storage meanwhile), releasing its siblings.

Under the decision lock, so no other decision takes the capacity between the check and the write;
the status write is resourceVersion-guarded, so a change meanwhile retries the whole step.
"""

from __future__ import annotations

from collections.abc import Callable

from eb_operator.cluster.convert import reservation_from_spec
from eb_operator.engine import check_accept
from eb_operator.engine.types import Phase
from eb_operator.operator import volumes
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.facts import facts_of
from eb_operator.operator.lifecycle import Action, Step, decide
from eb_operator.operator.sharing import SharingRules
from eb_operator.operator.state import ExecutionView
from eb_operator.operator.status import StatusWriter
from eb_operator.operator.workqueue import Retry


class Accepts:
    def __init__(
        self,
        ctx: OperatorContext,
        status: StatusWriter,
        rules: SharingRules,
        release_remote: Callable[[ExecutionView], None] = lambda _: None,
    ) -> None:
        self.ctx = ctx
        self.status = status
        self.rules = rules
        self.release_remote = release_remote  # reject the set's offers held at peer brokers

    async def accept(self, key: str) -> None:
        """Accept offer ``key`` if its capacity is still free, atomically with respect to every
        other decision (the lock), with resourceVersion preconditions; refuse it otherwise."""
        ctx = self.ctx
        async with ctx.lock:
            view = ctx.state.executions.get(key)
            if view is None:
                return
            step = decide(facts_of(ctx, view))
            if step.action is not Action.ACCEPT:
                return  # something changed while we waited for the lock: the loop re-decides
            holder = ctx.accepting.get(view.group)
            if holder is not None and holder != key:  # a peer is being asked to accept a sibling
                raise Retry(0.5, f"the accept of {holder} is under way")
            now = ctx.now()
            with ctx.deciding("accept"):
                table, book = ctx.capacity(now)
                caller = self.rules.caller(*ctx.state.charged_to(view))
                cand = ctx.state.ledger.get(key) or reservation_from_spec(
                    key, view.reservation or {}, Phase.OFFERED, view.group, caller.owner, caller.account
                )
                over = self.rules.admit_session(cand, caller, table)
                why = (
                    None
                    if over is not None
                    else check_accept(cand, table, book, now, ignore_group=view.group)
                    or volumes.booked_conflict(ctx.state, view)
                )
            if over is not None:  # the offer stays OFFERED: it may be accepted once a session ends
                await self.status.record(view, Step(reason="OverLimit", message=over, refused=True))
                return
            if why is not None:
                ctx.metrics.accepts.labels("refused").inc()
                await self.status.record(view, Step(reason="CapacityGone", message=why, refused=True))
                return
            await self.status.patch(
                view, self.status.status(view, Phase.ACCEPTED, "Accepted", "accepted by the client")
            )
            # The siblings' capacity is free from now on; each one's own reconcile writes REJECTED
            # (the level rule "a sibling was accepted"), so this step does not wait for them.
            for s in ctx.state.siblings(view):
                if s.phase == Phase.OFFERED:
                    ctx.state.ledger.remove(s.key)
                    ctx.executions.add(s.key)
        ctx.stats["accepts"] += 1
        self.release_remote(view)
        ctx.metrics.accepts.labels("accepted").inc()
        accepted = Step(phase=Phase.ACCEPTED, reason="Accepted", message="accepted by the client")
        self.status.announce(view, accepted)
