"""Asking the peer brokers for offers: every ready peer at once, each within its deadline.

:meth:`Forwarding.start` is called as an OfferSet's answer begins, so the peers work while this
broker decides its own offers; :meth:`Asking.answers` then waits for what is left of each peer's
deadline. A peer that errs or does not answer in time contributes a WARN naming it and no offers;
a peer's answer is read like client input (``eb_operator.peers.documents``). Nothing here raises.

A request is forwarded only whole: one whose unknown requirement-like fields this broker could
not store (the REST API noted them on the set) is not sent on, since a peer would then be asked
for less than the client asked. And only within the hop limit of the ``EB-Via`` header the set
arrived with (``eb_operator.model.federation``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from eb_operator.cluster.convert import UNKNOWN_REQUIREMENTS_ANNOTATION, VIA_ANNOTATION
from eb_operator.model import OfferSetRequest
from eb_operator.model.errors import RequestError
from eb_operator.model.federation import forwarded_via, parse_via
from eb_operator.model.types import Dialect
from eb_operator.operator.builders.merge import PeerAnswer
from eb_operator.operator.builders.status import message_item
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.directory import Peer, PeerDirectory
from eb_operator.operator.events import kv
from eb_operator.peers import OfferSetAnswer, PeerError
from eb_operator.peers.documents import read_offerset

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]

PEER_UNAVAILABLE = "urn:ivoa:eb:peer-unavailable"
PEER_NOT_ASKED = "urn:ivoa:eb:peer-not-asked"
PEER_ANSWER = "urn:ivoa:eb:peer-answer"
PEER_OFFER_DROPPED = "urn:ivoa:eb:peer-offer-dropped"


@dataclass
class Asking:
    """The peers' answers to one OfferSet, under way."""

    tasks: list[asyncio.Task[PeerAnswer]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)  # about peers not asked

    async def answers(self) -> list[PeerAnswer]:
        """Every peer's answer (each task ends within its peer's deadline)."""
        done = list(await asyncio.gather(*self.tasks)) if self.tasks else []
        if self.messages:
            done.append(PeerAnswer("", 0, (), tuple(self.messages)))
        return done

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()


def _warn(type_: str, now: int, peer: str, text: str, level: str = "WARN") -> dict[str, Any]:
    return message_item(level, type_, f"peer {peer}: {text}", now, {"peer": peer})


class Forwarding:
    def __init__(self, ctx: OperatorContext, directory: PeerDirectory) -> None:
        self.ctx = ctx
        self.directory = directory

    def start(self, obj: Obj, now: int) -> Asking:
        """Ask every ready peer for offers for OfferSet ``obj`` (returns at once)."""
        asking = Asking()
        if not self.directory.enabled or not self.directory.peers:
            return asking
        meta = obj.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        skip = self._not_forwarded(annotations)
        if skip is not None:
            asking.messages.append(message_item("INFO", PEER_NOT_ASKED, skip, now))
            return asking
        try:
            came = parse_via(annotations.get(VIA_ANNOTATION))
        except RequestError:  # the REST API writes it only after checking it
            came = None
        via = forwarded_via(came, self.ctx.cfg.broker_id, self.ctx.cfg.max_hops) if came is not None else None
        if via is None:
            text = f"not forwarded to peer brokers: the hop limit ({self.ctx.cfg.max_hops}) is reached"
            asking.messages.append(message_item("INFO", PEER_NOT_ASKED, text, now))
            return asking
        request = (obj.get("spec") or {}).get("request") or {}
        try:
            model: OfferSetRequest | None = OfferSetRequest.model_validate(request)
        except ValidationError:
            model = None  # the local answer says why it is NO; peers are not asked with it
        if model is None:
            return asking
        for peer in self.directory.unready():
            why = peer.probe.error if peer.probe is not None and peer.probe.error else "not probed yet"
            asking.messages.append(_warn(PEER_NOT_ASKED, now, peer.name, f"not asked: {why}"))
        for peer in self.directory.ready():
            asking.tasks.append(
                asyncio.create_task(self._ask(peer, request, model, via, now), name=f"ask-{peer.name}")
            )
        return asking

    @staticmethod
    def _not_forwarded(annotations: Mapping[str, str]) -> str | None:
        if annotations.get(UNKNOWN_REQUIREMENTS_ANNOTATION):
            return (
                "not forwarded to peer brokers: the request holds fields this broker does not "
                "understand, so it cannot pass the whole request on"
            )
        return None

    async def _ask(
        self, peer: Peer, request: Obj, model: OfferSetRequest, via: Sequence[str], now: int
    ) -> PeerAnswer:
        client, spec = peer.client, peer.spec
        assert client is not None
        assert spec is not None
        started = time.perf_counter()
        try:
            doc = await client.offerset(request, via)
            answer: OfferSetAnswer = read_offerset(
                doc,
                base=spec.url,
                dialect=Dialect.parse(spec.dialect.value),
                now=self.ctx.now(),
                request=model,
                max_offers=spec.max_offers,
                max_ttl=self.ctx.cfg.peer_offer_ttl,
            )
        except PeerError as e:
            self.directory.suspect(peer.name)
            log.info("%s", kv(msg="peer did not answer", peer=peer.name, error=e))
            warning = _warn(PEER_UNAVAILABLE, now, peer.name, str(e))
            return PeerAnswer(peer.name, spec.preference, (), (warning,))
        except Exception as e:  # never the merged set's failure, whatever a peer answers
            log.exception("%s", kv(msg="peer answer failed", peer=peer.name))
            text = f"its answer could not be used ({type(e).__name__})"
            warning = _warn(PEER_UNAVAILABLE, now, peer.name, text)
            return PeerAnswer(peer.name, spec.preference, (), (warning,))
        took = round(1000 * (time.perf_counter() - started))
        messages = [
            _warn(PEER_OFFER_DROPPED, now, peer.name, f"offer dropped: {d}") for d in answer.dropped[:8]
        ]
        if answer.result == "NO" or not answer.offers:
            why = "; ".join(answer.reasons[:3]) or "no offers"
            messages.append(_warn(PEER_ANSWER, now, peer.name, f"answered {answer.result}: {why}", "INFO"))
        log.info("%s", kv(msg="peer answered", peer=peer.name, offers=len(answer.offers), ms=took))
        return PeerAnswer(peer.name, spec.preference, answer.offers, tuple(messages))
