"""Offer-set answering: the caller's request rate, probe, interpret, decide the offers under the
lock (within the caller's limits, and taking back what other groups borrowed beyond their shares
when its own group is under its share), write one answer.

A decision is one search (its NO reason comes with it), moved off the event loop when it is long
(``eb_operator.operator.planning``).

An answer is one status write holding every offer's reservation (``eb_operator.cluster.
offer_status``). The offers go into the ledger while the lock is held, so the next decision
counts them, and are taken out again if the answer cannot be written: the API server must have a
reservation before a client sees it (docs/operator.md, "No double booking"). Offers taken back
are recorded in their own sets' statuses before the answer that uses their capacity is written.

With peer brokers (docs/federation.md) the peers are asked as the answer begins (after the
caller's request rate: a caller over it costs the peers nothing), so they work while this broker
decides; their offers join the answer in one step of its own
(:func:`~eb_operator.operator.builders.merge.merge_answers`) just before the write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eb_operator.cluster.convert import object_uuid, reservation_from_spec, reservation_spec
from eb_operator.cluster.crs import OFFERSETS, NotFound
from eb_operator.cluster.offer_status import offer_name
from eb_operator.engine import LedgerSnapshot, NodeTable, offer_expiry
from eb_operator.engine.limits import Admission, trim_offers
from eb_operator.engine.shares import needed
from eb_operator.engine.types import Demand, Offer, Phase, Reservation
from eb_operator.model.common import MessageType
from eb_operator.operator import children, volumes
from eb_operator.operator.builders.merge import merge_answers
from eb_operator.operator.builders.status import message_item, offerset_status
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.forwarding import Forwarding
from eb_operator.operator.metrics import reason_label
from eb_operator.operator.planning import plan
from eb_operator.operator.requests import Interpretation, interpret, unknown_requirements
from eb_operator.operator.sharing import Caller, SharingRules, without
from eb_operator.operator.state import key_of

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]


@dataclass
class Decision:
    """What answering one set decided: its offers (held in the ledger), when they lapse, why there
    are none, and the offers of other sets it took back (withdrawn, by set)."""

    offers: list[dict[str, Any]] = field(default_factory=list)
    expires: int | None = None
    message: dict[str, Any] | None = None
    withdrawn: dict[str, dict[str, str]] = field(default_factory=dict)  # "ns/set" -> name -> why


def smallest(demand: Demand) -> Demand:
    """The least a request can be given: its minimum resources, one offer."""
    return dataclasses.replace(
        demand, cores_max=demand.cores_min, memory_max_gib=demand.memory_min_gib, max_offers=1
    )


class OfferSetAnswers:
    def __init__(self, ctx: OperatorContext, rules: SharingRules, forwarding: Forwarding) -> None:
        self.ctx = ctx
        self.rules = rules
        self.forwarding = forwarding

    async def answer(self, key: str) -> None:
        """Answer the unanswered OfferSet ``key``: YES with offers, or NO with the reasons."""
        ctx = self.ctx
        await ctx.ready.wait()
        obj = ctx.pending_offersets.get(key)
        if obj is None:
            return
        spec = obj.get("spec", {})
        caller = self.rules.caller(spec.get("owner"), spec.get("groups"))
        wait, why = self.rules.rate(caller, ctx.cfg.clock())
        if wait > 0:  # before any other work: a caller over its rate costs one status write
            await self._refuse_rate(obj, wait, why)
            return
        asking = self.forwarding.start(obj, ctx.now())
        try:
            decision, messages, request, now = await self._local(obj, caller)
            with ctx.timed("peers"):
                peers = await asking.answers()
        except BaseException:
            asking.cancel()
            raise
        merged = merge_answers(obj["metadata"], decision.offers, decision.expires, messages, peers, now)
        decision = dataclasses.replace(decision, offers=merged.offers, expires=merged.expires)
        with ctx.timed("answer"):
            await self._write(obj, decision, merged.messages, now, request)

    async def _local(self, obj: Obj, caller: Caller) -> tuple[Decision, list[Any], Obj | None, int]:
        """This broker's own decision (its offers held in the ledger), the messages, the request
        as offered, and the time it was decided at."""
        ctx = self.ctx
        request = obj.get("spec", {}).get("request")
        namespace = obj["metadata"]["namespace"]
        with ctx.timed("probe"):
            found = await children.probe(ctx.cluster, namespace, request, ctx.policy)
            owner = str(obj.get("spec", {}).get("owner") or "")
            where = ctx.children_namespace(namespace, owner)
            reuse = await volumes.inspect(ctx.cluster, request, owner, where, ctx.state.phase_of_uid)
        now = ctx.now()  # probing may have taken a while
        with ctx.timed("interpret"):
            interp = interpret(
                request, ctx.policy, now, found, unknown_requirements(obj), caller.account, reuse=reuse
            )
        if interp.demand is None:
            return Decision(), list(interp.messages), None, now
        decision, now = await self._decide(obj, interp, caller, now)
        messages = list(interp.messages)
        if decision.message is not None:
            messages.append(decision.message)
        return decision, messages, interp.request, now

    async def _decide(
        self, obj: Obj, interp: Interpretation, caller: Caller, now: int
    ) -> tuple[Decision, int]:
        """Decide the offers and hold them in the ledger; ``_write`` writes them (one write).
        Returns the time they were decided at, read once the lock is held: a session that ended
        while this set waited for the lock gave its time back then, and an answer dated earlier
        would claim that time while the session still held it."""
        assert interp.demand is not None
        ctx = self.ctx
        meta = obj["metadata"]
        ns = meta["namespace"]
        with ctx.timed("lock_wait"):
            await ctx.lock.acquire()
        try:
            now = max(now, ctx.now())
            with ctx.timed("decide"), ctx.deciding("offerset"):
                demand, in_use = volumes.start_after_holds(interp, ctx.state)
                if demand is None:
                    why = in_use or "no offers"
                    return Decision(message=message_item("INFO", "urn:no-capacity", why, now)), now
                table, book = ctx.capacity(now)
                decision = await self._choose(demand, caller, table, book, now)
                for i, offer in enumerate(decision.offers):
                    name = offer_name(meta, i)
                    spec = reservation_spec(offer["offer"], decision.expires, interp.node_selector)
                    decision.offers[i] = {"name": name, "uuid": name, "reservation": spec}
                    held = reservation_from_spec(
                        f"{ns}/{name}", spec, Phase.OFFERED, key_of(obj), caller.owner, caller.account
                    )
                    ctx.state.ledger.upsert(held)
        finally:
            ctx.lock.release()
        ctx.stats["offers"] += len(decision.offers)
        return decision, now

    async def _choose(
        self, demand: Demand, caller: Caller, table: NodeTable, book: LedgerSnapshot, now: int
    ) -> Decision:
        """The offers for ``demand`` within the caller's limits (under the lock, no I/O; each search
        one engine plan, off the event loop when long)."""
        ctx, policy = self.ctx, self.ctx.policy
        admission = self.rules.admit(demand, caller, table)
        if admission.reason is not None:
            return Decision(message=_over_limit(admission.reason, now))
        found = await plan(ctx, admission.demand, table, book, now)  # one search, NO reason included
        offers = trim_offers(list(found.offers), admission)
        if found.offers and not offers:
            # the limits leave room for less than the offers found: search for the smallest one
            exact = policy.model_copy(update={"max_duration_factor": 1.0})
            least = await plan(ctx, smallest(admission.demand), table, book, now, exact)
            offers = trim_offers(list(least.offers), admission)
            if not offers:
                return Decision(message=_over_limit(_no_room(admission), now))
        withdrawn: dict[str, dict[str, str]] = {}
        if not offers:
            offers, victims = await self._reclaim(admission, caller, table, book, now)
            why = (
                f"withdrawn for {caller.group_words}, which is under its share of the platform: "
                "this offer held capacity beyond its own group's share"
            )
            for v in victims:
                name = v.key.split("/", 1)[1]
                ctx.state.withdraw(v.key, v.group, name, why)
                withdrawn.setdefault(v.group, {})[name] = why
                ctx.executions.add(v.key)  # an offer written as an Execution: it becomes EXPIRED
            if victims:
                log.info("%s", kv(msg="offers withdrawn", offers=len(victims), group=caller.account))
        if not offers:
            reason = found.reason or "no offers"
            return Decision(message=message_item("INFO", "urn:no-capacity", reason, now))
        expires = offer_expiry(offers, policy, now)
        return Decision([{"offer": o} for o in offers], expires, None, withdrawn)

    async def _reclaim(
        self, admission: Admission, caller: Caller, table: NodeTable, book: LedgerSnapshot, now: int
    ) -> tuple[list[Offer], list[Reservation]]:
        """Fair sharing: if the caller's group is under its share and other groups' unaccepted
        offers beyond theirs are in the way, the smallest offer found once they are out of the way,
        and those of them it overlaps (to be taken back)."""
        borrowed = self.rules.borrowed(admission.demand, caller, table)
        if not borrowed:
            return [], []
        exact = self.ctx.policy.model_copy(update={"max_duration_factor": 1.0})
        what_if = without(book, borrowed)
        least = await plan(self.ctx, smallest(admission.demand), table, what_if, now, exact)
        found = trim_offers(list(least.offers), admission)
        if not found:
            return [], []
        taken = [
            Reservation("", o.node, o.prepare_start, o.release_end, o.reservation_resources()) for o in found
        ]
        return found, needed(borrowed, taken)

    async def _refuse_rate(self, obj: Obj, wait: float, why: str) -> None:
        """NO for a caller over its request rate, with ``retryAfterSeconds`` (the REST API answers
        429 with Retry-After and deletes the set). No Event: a flood would double its writes."""
        ctx = self.ctx
        meta = obj["metadata"]
        now = ctx.now()
        seconds = max(1, math.ceil(wait))
        item = message_item("ERROR", MessageType.RATE_LIMITED, why, now, {"retryAfter": str(seconds)})
        status = offerset_status(object_uuid(obj), [], None, now, [item], meta.get("generation"))
        status["retryAfterSeconds"] = seconds
        with contextlib.suppress(NotFound):  # deleted meanwhile
            await ctx.cluster.patch(
                OFFERSETS, meta["namespace"], meta["name"], {"status": status}, status=True
            )
        ctx.pending_offersets.pop(key_of(obj), None)
        ctx.stats["rate_limited"] = ctx.stats.get("rate_limited", 0) + 1

    async def _write(
        self,
        obj: Obj,
        decision: Decision,
        messages: Sequence[Any],
        now: int,
        request: Obj | None = None,
    ) -> None:
        ctx = self.ctx
        meta = obj["metadata"]
        offers = decision.offers
        status = offerset_status(
            object_uuid(obj), offers, decision.expires, now, messages, meta.get("generation"), request
        )
        # read before the write: the watch may deliver the answered set (and forget when it was
        # first seen) before the patch's own response is back
        seen = ctx.pending_since.get(key_of(obj))
        try:
            for group in decision.withdrawn:  # before the answer that uses their capacity
                await self._record_withdrawn(group)
            answered = await ctx.cluster.patch(
                OFFERSETS, meta["namespace"], meta["name"], {"status": status}, status=True
            )
        except BaseException as e:
            for o in offers:  # the API server does not have them: they hold nothing
                ctx.state.ledger.remove(f"{meta['namespace']}/{o['name']}")
            if not isinstance(e, NotFound):  # deleted meanwhile: nothing to answer
                raise
        else:
            ctx.state.on_offerset(answered)
        ctx.pending_offersets.pop(key_of(obj), None)
        ctx.pending_since.pop(key_of(obj), None)
        if seen is not None:
            ctx.metrics.answer_seconds.observe(time.monotonic() - seen)
        ctx.stats["offersets"] += 1
        result = status["result"]
        first = next(
            (m for m in messages if m.get("level") in ("ERROR", "WARN")), messages[-1] if messages else None
        )
        reason = "offered" if offers else reason_label((first or {}).get("type"))
        ctx.metrics.answered.labels(result, reason).inc()
        ctx.metrics.offers.inc(len(offers))
        if not offers:  # a YES is in the status and the offers; an Event for it would cost a write each
            text = "; ".join(str(m.get("message")) for m in messages)[:500]
            ctx.events.post(obj, "OfferSet", "NoOffers", text, warning=True)
        log.info("%s", kv(msg="offerset answered", offerset=key_of(obj), result=result, offers=len(offers)))

    async def _record_withdrawn(self, group: str) -> None:
        """Write every withdrawn offer of set ``group`` into its status (they survive a restart so)."""
        ns, name = group.split("/", 1)
        items = [
            {"name": n, "message": m} for n, m in sorted(self.ctx.state.withdrawn.get(group, {}).items())
        ]
        with contextlib.suppress(NotFound):  # the set is gone, its offers with it
            await self.ctx.cluster.patch(OFFERSETS, ns, name, {"status": {"withdrawn": items}}, status=True)


def _over_limit(reason: str, now: int) -> dict[str, Any]:
    return message_item("ERROR", MessageType.OVER_LIMIT, reason, now)


def _no_room(admission: Admission) -> str:
    left = admission.core_seconds_left or 0.0
    return (
        f"the offers the platform could make would take you past a limit on capacity held by offers "
        f"not accepted yet (offeredCoreSeconds or offeredGpuSeconds): {left:,.0f} core-seconds are "
        "left; accept, reject or let some offers expire first"
    )
