"""Offer-set answering: probe, interpret, decide the offers under the lock, write one answer.

A decision is one search (its NO reason comes with it), moved off the event loop when it is long
(``eb_operator.operator.planning``).

An answer is one status write holding every offer's reservation (``eb_operator.cluster.
offer_status``). The offers go into the ledger while the lock is held, so the next decision
counts them, and are taken out again if the answer cannot be written: the API server must have a
reservation before a client sees it (docs/operator.md, "No double booking").

With peer brokers (docs/federation.md) the peers are asked as the answer begins, so they work
while this broker decides; their offers join the answer in one step of its own
(:func:`~eb_operator.operator.builders.merge.merge_answers`) just before the write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from eb_operator.cluster.convert import object_uuid, reservation_from_spec, reservation_spec
from eb_operator.cluster.crs import OFFERSETS, NotFound
from eb_operator.cluster.offer_status import offer_name
from eb_operator.engine import offer_expiry
from eb_operator.engine.types import Phase
from eb_operator.operator import children
from eb_operator.operator.builders.merge import merge_answers
from eb_operator.operator.builders.status import message_item, offerset_status
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.forwarding import Forwarding
from eb_operator.operator.metrics import reason_label
from eb_operator.operator.planning import plan
from eb_operator.operator.requests import Interpretation, interpret, unknown_requirements
from eb_operator.operator.state import key_of

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]


class OfferSetAnswers:
    def __init__(self, ctx: OperatorContext, forwarding: Forwarding) -> None:
        self.ctx = ctx
        self.forwarding = forwarding

    async def answer(self, key: str) -> None:
        """Answer the unanswered OfferSet ``key``: YES with offers, or NO with the reasons."""
        ctx = self.ctx
        await ctx.ready.wait()
        obj = ctx.pending_offersets.get(key)
        if obj is None:
            return
        asking = self.forwarding.start(obj, ctx.now())
        try:
            made, expires, messages, request, now = await self._local(obj)
            with ctx.timed("peers"):
                peers = await asking.answers()
        except BaseException:
            asking.cancel()
            raise
        merged = merge_answers(obj["metadata"], made, expires, messages, peers, now)
        with ctx.timed("answer"):
            await self._write(obj, merged.offers, merged.expires, merged.messages, now, request)

    async def _local(self, obj: Obj) -> tuple[list[dict[str, Any]], int | None, list[Any], Obj | None, int]:
        """This broker's own offers (held in the ledger), their expiry, the messages, the request
        as offered, and the time they were decided at."""
        ctx = self.ctx
        request = obj.get("spec", {}).get("request")
        with ctx.timed("probe"):
            found = await children.probe(ctx.cluster, obj["metadata"]["namespace"], request, ctx.policy)
        now = ctx.now()  # probing may have taken a while
        with ctx.timed("interpret"):
            interp = interpret(request, ctx.policy, now, found, unknown_requirements(obj))
        if interp.demand is None:
            return [], None, list(interp.messages), None, now
        made, expires, reason, now = await self._decide(obj, interp, now)
        messages = list(interp.messages)
        if not made:
            messages.append(message_item("INFO", "urn:no-capacity", reason or "no offers", now))
        return made, expires, messages, interp.request, now

    async def _decide(
        self, obj: Obj, interp: Interpretation, now: int
    ) -> tuple[list[dict[str, Any]], int, str | None, int]:
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
                table, book = ctx.capacity(now)
                found = await plan(ctx, interp.demand, table, book, now)  # one search, NO reason included
                offers, reason = found.offers, found.reason
                expires = offer_expiry(offers, ctx.policy, now)
                made = []
                for i, offer in enumerate(offers):
                    name = offer_name(meta, i)
                    spec = reservation_spec(offer, expires, interp.node_selector)
                    made.append({"name": name, "uuid": name, "reservation": spec})
                    held = reservation_from_spec(f"{ns}/{name}", spec, Phase.OFFERED, key_of(obj))
                    ctx.state.ledger.upsert(held)
        finally:
            ctx.lock.release()
        ctx.stats["offers"] += len(made)
        return made, expires, reason, now

    async def _write(
        self,
        obj: Obj,
        offers: list[dict[str, Any]],
        expires: int | None,
        messages: list[Any],
        now: int,
        request: Obj | None = None,
    ) -> None:
        ctx = self.ctx
        meta = obj["metadata"]
        status = offerset_status(
            object_uuid(obj), offers, expires, now, messages, meta.get("generation"), request
        )
        # read before the write: the watch may deliver the answered set (and forget when it was
        # first seen) before the patch's own response is back
        seen = ctx.pending_since.get(key_of(obj))
        try:
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
