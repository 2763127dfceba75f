"""One answer from many sites: this broker's offers and its peers', ranked (docs/federation.md).

Pure: the local offers (as the OfferSet's status holds them, each with its reservation) and what
each peer contributed go in; the status's offers, their shared ``expires`` and the messages come
out. Offers are ranked by their offered start, then by their site's preference (higher first;
this broker's own platform counts 0), then this broker's own first, then as each site ranked
them. This broker's own offers are always kept; peers' offers fill the set up to
``MAX_OFFERS`` (the session uuids of a set's offers number 01 to 20 hex, see
``eb_operator.cluster.offer_status``), and each gets the next free one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eb_operator.cluster.offer_status import MAX_OFFERS, offer_name
from eb_operator.model.times import format_instant, parse_instant
from eb_operator.operator.builders.status import message_item
from eb_operator.peers import RemoteOffer

Obj = Mapping[str, Any]
LOCAL_PREFERENCE = 0


@dataclass(frozen=True, slots=True)
class PeerAnswer:
    """What one peer contributes to a merged answer: its usable offers and messages naming it."""

    peer: str
    preference: int
    offers: tuple[RemoteOffer, ...] = ()
    messages: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Merged:
    offers: list[dict[str, Any]] = field(default_factory=list)
    expires: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)


def peer_entry(name: str, peer: str, offer: RemoteOffer) -> dict[str, Any]:
    """One offer held at ``peer``, as the OfferSet's status holds it (session uuid ``name`` here)."""
    return {
        "name": name,
        "uuid": name,
        "peer": {
            "name": peer,
            "session": offer.session,
            "href": offer.href,
            "expires": format_instant(offer.expires),
            "start": format_instant(offer.start),
        },
        "offered": dict(offer.document),
    }


def _local_messages(messages: Sequence[Obj], demoted: bool) -> list[dict[str, Any]]:
    """This broker's own messages; when the set is YES through peers alone, its reasons for not
    offering are WARNs about its own platform, not ERRORs of the answer."""
    out = []
    for m in messages:
        item = dict(m)
        if demoted and item.get("level") == "ERROR":
            item["level"] = "WARN"
            item["message"] = f"this broker's own platform: {item.get('message', '')}"
        out.append(item)
    return out


def merge_answers(
    offerset_meta: Obj,
    local: Sequence[Obj],
    local_expires: int | None,
    local_messages: Sequence[Obj],
    peers: Sequence[PeerAnswer],
    now: int,
    max_offers: int = MAX_OFFERS,
) -> Merged:
    """The merged answer of one OfferSet (``offerset_meta``: its metadata, which names offers).
    Without peers' offers, this broker's own keep the engine's order (earliest, biggest, longest:
    docs/engine.md)."""
    if not any(answer.offers for answer in peers):
        messages = [dict(m) for m in local_messages]
        for answer in peers:
            messages.extend(dict(m) for m in answer.messages)
        return Merged([dict(e) for e in local], local_expires, messages)
    ranked: list[tuple[tuple[int, int, int, int], Obj | None, str, RemoteOffer | None]] = []
    for i, own in enumerate(local):
        start = parse_instant(str((own.get("reservation") or {}).get("start")))
        ranked.append(((start, -LOCAL_PREFERENCE, 0, i), own, "", None))
    for site, answer in enumerate(peers, start=1):
        for j, theirs in enumerate(answer.offers):
            ranked.append(((theirs.start, -answer.preference, site, j), None, answer.peer, theirs))
    ranked.sort(key=lambda r: r[0])

    room = max(0, max_offers - len(local))
    offers: list[dict[str, Any]] = []
    left_out = 0
    next_index = len(local)
    peer_expiries: list[int] = []
    for _, entry, peer, offer in ranked:
        if entry is not None:
            offers.append(dict(entry))
        elif offer is not None and room > 0:
            offers.append(peer_entry(offer_name(offerset_meta, next_index), peer, offer))
            peer_expiries.append(offer.expires)
            next_index += 1
            room -= 1
        else:
            left_out += 1
    messages = _local_messages(local_messages, demoted=bool(offers) and not local)
    for answer in peers:
        messages.extend(dict(m) for m in answer.messages)
    if left_out:
        text = f"{left_out} offers of peer brokers left out: a set holds at most {max_offers}"
        messages.append(message_item("INFO", "urn:ivoa:eb:offers-capped", text, now))
    expires = local_expires if local else (min(peer_expiries) if peer_expiries else None)
    return Merged(offers, expires, messages)
