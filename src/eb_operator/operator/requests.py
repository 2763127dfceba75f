"""From the IVOA request in a CR to the engine's Demand, with the messages a client should see.

The wire model parses (``parse_offerset_request``) and judges (``judge_request``) the request;
``demand_from_request`` reduces it to a :class:`~eb_operator.engine.types.Demand` under the
platform policy. A request that cannot be served gives no Demand and ERROR messages saying why:
the OfferSet answers NO, a direct Execution becomes FAILED. Never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eb_operator.cluster.convert import UNKNOWN_REQUIREMENTS_ANNOTATION
from eb_operator.cluster.probe import Probe
from eb_operator.engine.demand import demand_from_request
from eb_operator.engine.types import Demand
from eb_operator.model import (
    MessageItem,
    MessageLevel,
    MessageType,
    RequestError,
    has_errors,
    judge_images,
    judge_request,
    parse_offerset_request,
    render,
)
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.sharing import OTHER
from eb_operator.model.times import from_epoch
from eb_operator.operator.builders.storage import reused_uuids, with_offered_storage
from eb_operator.operator.volumes import Reuse


@dataclass(frozen=True, slots=True)
class Interpretation:
    demand: Demand | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    request: dict[str, Any] | None = None  # the canonical (ivoa-std) request, copied into each offer
    node_selector: dict[str, str] = field(default_factory=dict)  # e.g. the GPU product label
    reuses: tuple[str, ...] = ()  # earlier sessions' storage it mounts again (``operator.volumes``)
    not_before: int | None = None  # that storage is held until then: no reservation begins earlier


def _message(item: MessageItem) -> dict[str, Any]:
    return render(item)


def refusal(type_uri: str, text: str, now: int) -> Interpretation:
    when = from_epoch(now)
    item = MessageItem.make(type_uri, MessageLevel.ERROR, "{reason}", {"reason": text}, time=when)
    return Interpretation(None, [_message(item)])


def unknown_requirements(obj: Mapping[str, Any]) -> list[str]:
    """The unknown requirement-like fields the REST service found in the client's document (the
    CR's schema pruned them from the stored request): paths as the client wrote them."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(UNKNOWN_REQUIREMENTS_ANNOTATION)
    if not raw:
        return []
    try:
        paths = json.loads(raw)
    except ValueError:
        paths = None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        return [f"metadata/annotations/{UNKNOWN_REQUIREMENTS_ANNOTATION} (not a JSON list of paths)"]
    return paths


def _not_understood(path: str) -> MessageItem:
    return MessageItem.make(
        MessageType.UNKNOWN_REQUIREMENT,
        MessageLevel.ERROR,
        "{path}: the broker does not understand {field}, so it cannot promise to meet it",
        {"path": path, "field": path.rsplit("/", 1)[-1]},
    )


def interpret(
    request: Mapping[str, Any] | None,
    policy: PlatformPolicy,
    now: int,
    probe: Probe | None = None,
    unknown: Sequence[str] = (),
    group: str = OTHER,
    reuse: Reuse | None = None,
) -> Interpretation:
    """Parse, judge and reduce one request. No Demand (and ERROR messages) when it cannot be served.

    ``probe``: what probing the request's data found at offer time (``eb_operator.cluster.probe``):
    its ERRORs (unreachable data) are reasons for NO too, and its byte count lengthens the
    preparation lead time. ``unknown``: paths of requirement-like fields the request held that the
    stored copy lost (:func:`unknown_requirements`): each is a reason for NO (digest §9 item 26).
    ``group``: the sharing group the caller is charged to, whose allowed images the executable's
    image must be under.
    ``reuse``: what looking up the earlier sessions' storage it names found (``operator.volumes``):
    its ERRORs are reasons for NO, its sizes are offered, and the offers start after its holds."""
    if not request:
        return refusal("urn:missing-value", "the resource holds no IVOA request", now)
    try:
        req, _ = parse_offerset_request(dict(request))
    except RequestError as e:  # e.g. a kubectl user's negative duration: NO naming the field
        item = MessageItem.make(e.type_uri, MessageLevel.ERROR, e.template, e.values, time=from_epoch(now))
        return Interpretation(None, [_message(item)])
    judged = [
        *judge_request(req, policy),
        *judge_images(req, policy, group),
        *(_not_understood(p) for p in unknown),
    ]
    if probe is not None and not has_errors(judged):
        judged = [*judged, *probe.messages]
    if reuse is not None and not has_errors(judged):
        judged = [*judged, *reuse.messages]
    messages = [_message(m) for m in judged]
    if has_errors(judged):
        return Interpretation(None, messages)
    try:
        demand = demand_from_request(req, policy, now, probe.bytes if probe is not None else None)
    except ValueError as e:
        return Interpretation(None, [*messages, *refusal("urn:not-supported", str(e), now).messages])
    selector: dict[str, str] = {}
    if demand.gpu is not None and demand.gpu.product:
        selector[demand.gpu.product_label] = demand.gpu.product
    sizes = reuse.sizes if reuse is not None else {}
    offered = with_offered_storage(render(req), policy.limits.max_storage_lifetime_seconds, sizes)
    reused = reused_uuids(offered)
    return Interpretation(
        demand, messages, offered, selector, reused, reuse.not_before if reuse is not None else None
    )
