"""Reconciling one Execution: decide its next step from what is observed, and carry it out.

Level-based: :func:`~eb_operator.operator.lifecycle.decide` looks at the newest state each time,
so a key processed twice, or after a restart, does no harm. Immediate steps are followed at once
(up to a few) rather than waiting for our own writes' watch events.
"""

from __future__ import annotations

from typing import Any

from eb_operator.cluster.crs import EXECUTIONS, Conflict, NotFound
from eb_operator.engine.types import Phase
from eb_operator.model.common import FINAL_PHASES
from eb_operator.operator.accepting import Accepts
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.direct import DirectRequests
from eb_operator.operator.facts import facts_of
from eb_operator.operator.finishing import Finishing
from eb_operator.operator.lifecycle import POD_PHASES, Action, Step, decide
from eb_operator.operator.namespaces import OwnerNamespaces
from eb_operator.operator.pods import CannotPrepare, Pods
from eb_operator.operator.remote import RemoteSessions
from eb_operator.operator.requests import Interpretation
from eb_operator.operator.routes import RouteFailed
from eb_operator.operator.state import ExecutionView, execution_view
from eb_operator.operator.status import StatusWriter
from eb_operator.operator.workqueue import Retry

#: Phases after which nobody connects to a session: its route and Services go.
ENDED = FINAL_PHASES | {Phase.RELEASING}
#: Phases a session leaves with something to keep: its log, its storage's fate.
ENDING_PHASES = POD_PHASES | {Phase.RELEASING}


class Reconciler:
    def __init__(
        self,
        ctx: OperatorContext,
        status: StatusWriter,
        accepts: Accepts,
        direct: DirectRequests,
        pods: Pods,
        remote: RemoteSessions,
        namespaces: OwnerNamespaces,
        finishing: Finishing,
    ) -> None:
        self.ctx = ctx
        self.status = status
        self.accepts = accepts
        self.direct = direct
        self.pods = pods
        self.remote = remote
        self.namespaces = namespaces
        self.finishing = finishing

    async def reconcile(self, key: str) -> None:
        ctx = self.ctx
        await ctx.ready.wait()
        for _ in range(6):  # follow immediate steps without waiting for our own watch events
            view = ctx.state.executions.get(key)
            if view is None or view.deleting:
                return
            if not ctx.mine(view.namespace):
                # Another operator's offer: it holds capacity until it expires, even if that operator
                # is gone and never writes EXPIRED (it would refuse an accept after expiry anyway).
                if view.phase == Phase.OFFERED and view.expires is not None and view.expires <= ctx.now():
                    ctx.state.ledger.remove(key)
                return
            try:
                if view.offer_set and not view.status_written and await self._adopt_offer(view):
                    continue
                if view.peer is not None:  # held at a peer broker (eb_operator.operator.remote)
                    if not await self.remote.reconcile(view):
                        return
                    continue
                step = decide(facts_of(ctx, view))
                if step.action is Action.ACCEPT:
                    await self.accepts.accept(key)
                elif step.action in (Action.RESERVE, Action.VALIDATE):
                    await self.direct.reserve(key, validate=step.action is Action.VALIDATE)
                elif not await self.apply(view, step):
                    return
            except NotFound:  # deleted meanwhile; its DELETED event may still be on its way
                ctx.state.on_execution(view.ref(), deleted=True)
                return

    async def _adopt_offer(self, view: ExecutionView) -> bool:
        """An offer just written as an Execution (a client's accept or reject): it must hold that
        offer's reservation, which is copied in from the OfferSet when left out (kubectl users name
        the offer and the set only). True when this wrote something."""
        ctx = self.ctx
        offer = ctx.state.offer(view.group, view.name)
        held_at = ctx.state.peer_offer(view.group, view.name)
        if view.peer is not None or (view.reservation is None and offer is None and held_at is not None):
            return await self._adopt_peer_offer(view, held_at)
        if view.reservation is not None and (offer is None or view.reservation == offer):
            return False  # as offered, or an offer no longer held (expiry and siblings judge it)
        nothing = Interpretation(None)
        if view.reservation is not None:
            why = f"spec.reservation is not the one offer {view.name} of OfferSet {view.offer_set} holds"
            await self.status.fail(view, "NotOffered", why, nothing)
        elif offer is None:
            why = f"OfferSet {view.offer_set} holds no live offer {view.name} (it expired, or was never made)"
            await self.status.fail(view, "NoSuchOffer", why, nothing)
        else:
            try:
                patched = await ctx.cluster.patch(
                    EXECUTIONS,
                    view.namespace,
                    view.name,
                    {"spec": {"reservation": offer}},
                    resource_version=str(view.rv),
                )
            except Conflict:
                raise Retry(0.2, "changed meanwhile") from None
            ctx.state.put(execution_view(patched))
        return True

    async def _adopt_peer_offer(self, view: ExecutionView, held_at: dict[str, Any] | None) -> bool:
        """As :meth:`_adopt_offer`, for an offer held at a peer broker: ``spec.peer`` must say where
        the set's offer is held, and is copied in when left out."""
        if view.peer is not None:
            if held_at is None or view.peer == held_at:
                return False
            why = f"spec.peer is not where offer {view.name} of OfferSet {view.offer_set} is held"
            await self.status.fail(view, "NotOffered", why, Interpretation(None))
            return True
        try:
            patched = await self.ctx.cluster.patch(
                EXECUTIONS,
                view.namespace,
                view.name,
                {"spec": {"peer": held_at}},
                resource_version=str(view.rv),
            )
        except Conflict:
            raise Retry(0.2, "changed meanwhile") from None
        self.ctx.state.put(execution_view(patched))
        return True

    async def apply(self, view: ExecutionView, step: Step) -> bool:
        """Carry out one step; True when it changed something (so the next step may follow)."""
        if step.wake_at is not None:
            self.ctx.executions.add_at(view.key, step.wake_at)
        if step.noop and not view.desired_new:
            return False
        placed = None
        extra: dict[str, Any] = {}
        messages: list[dict[str, Any]] = []
        if step.action is Action.CREATE_POD:
            try:
                placed, made = await self.pods.create(view)
                extra |= made
            except RouteFailed as e:
                await self.pods.release(view, self.namespaces.namespace_of(view))
                await self.status.fail(view, "RouteFailed", str(e), Interpretation(None))
                return True
            except CannotPrepare as e:
                await self.status.fail(view, "StorageUnavailable", str(e), Interpretation(None))
                return True
        elif step.action is Action.DELETE_POD:
            await self.pods.delete(view)
        elif step.action is Action.DELIVER:
            await self.pods.deliver(view)
        if step.phase in ENDED and self._reachable(view):
            # before the phase is written: a failed deletion is tried again with the whole step
            await self.pods.release(view)
        if step.phase in FINAL_PHASES and (view.phase in POD_PHASES or view.phase == Phase.RELEASING):
            # its Services and Secrets go at once (the finished Pod stays for its logs), before
            # the final phase is written: a failure here is retried, never forgotten
            await self.namespaces.release(self.namespaces.namespace_of(view), view.uid)
        if step.phase in FINAL_PHASES and view.phase in ENDING_PHASES:
            # its log and its storage are settled before the final phase is written: a failure
            # here is retried with the step, never forgotten
            kept = await self.finishing.finish(view, step)
            extra |= kept.status
            messages = kept.messages
        if step.phase is None and not step.refused and not view.desired_new:
            return False
        await self.status.record(view, step, placed, extra, messages)
        return step.phase is not None

    def _reachable(self, view: ExecutionView) -> bool:
        """The session may have a route or Services now: it has endpoints (its Pod says so, or its
        status has a route) and has not ended yet."""
        if view.phase in ENDED:
            return False
        pod = self.ctx.state.pod_of(view)
        return (
            view.routed
            or (pod is not None and pod.reach is not None)
            or (pod is None and view.phase in POD_PHASES)
        )
