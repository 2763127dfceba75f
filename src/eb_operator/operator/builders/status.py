"""Status patches: an Execution's phase, conditions and messages; an OfferSet's answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eb_operator.cluster.convert import object_uuid
from eb_operator.engine.types import Phase
from eb_operator.model.common import FINAL_PHASES
from eb_operator.model.times import format_instant
from eb_operator.operator.state import ExecutionView

Obj = Mapping[str, Any]


def message_item(
    level: str, type_: str, message: str, now: int, values: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An IVOA MessageItem."""
    item: dict[str, Any] = {"type": type_, "time": format_instant(now), "level": level, "message": message}
    if values:
        item["values"] = dict(values)
    return item


def condition(
    type_: str, status: bool, reason: str, message: str, now: int, generation: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": type_,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": format_instant(now),
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def merge_conditions(old: Sequence[Obj] | None, new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace conditions of the same type; keep lastTransitionTime when the status did not change."""
    out = {str(c.get("type")): dict(c) for c in old or []}
    for c in new:
        prev = out.get(c["type"])
        if prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
            c = {**c, "lastTransitionTime": prev["lastTransitionTime"]}
        out[c["type"]] = c
    return sorted(out.values(), key=lambda c: str(c["type"]))


def offerset_status(
    uuid: str,
    offers: Sequence[Obj],
    expires: int | None,
    created: int,
    messages: Sequence[Obj],
    generation: int | None,
    request: Obj | None = None,
) -> dict[str, Any]:
    """OfferSet.status: YES with the offers (name, uuid, reservation) and the request as offered
    (the canonical request with its offered storage: what each offer's session shows and runs),
    or NO with the reasons in messages."""
    status: dict[str, Any] = {
        "uuid": uuid,
        "result": "YES" if offers else "NO",
        "offers": [dict(o) for o in offers],
        "created": format_instant(created),
        "messages": [dict(m) for m in messages],
    }
    if offers and expires is not None:
        status["expires"] = format_instant(expires)
    if offers and request is not None:
        status["request"] = dict(request)
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def execution_status(
    view: ExecutionView, phase: Phase | None, reason: str, message: str, now: int, refused: bool = False
) -> dict[str, Any]:
    """The status patch of an Execution moving to ``phase`` (None: the phase stays) for ``reason``;
    ``refused``: the client's desired phase was refused, and the DesiredPhase condition says why.
    The first write also records the session's uuid, creation time and expiry."""
    status: dict[str, Any] = {"observedGeneration": view.generation}
    if phase is not None:
        status["phase"] = str(phase)
    if not view.status_written:
        status |= {
            "uuid": object_uuid({"metadata": {"name": view.name, "uid": view.uid}}),
            "created": view.created or format_instant(now),
        }
        if view.expires is not None:
            status["expires"] = format_instant(view.expires)
    conds = []
    if phase is not None:
        holding = phase not in FINAL_PHASES
        conds.append(
            condition("Reserved", holding, reason or str(phase), message or str(phase), now, view.generation)
        )
    if view.desired:
        ok = not refused
        conds.append(
            condition(
                "DesiredPhase",
                ok,
                reason if refused else "Applied",
                message if refused else f"{view.desired} applied",
                now,
                view.generation,
            )
        )
    status["conditions"] = merge_conditions(view.conditions, conds)
    if message:
        status["message"] = message
    if phase == Phase.FAILED or refused:
        level = "ERROR" if phase == Phase.FAILED else "WARN"
        status["messages"] = [message_item(level, f"urn:{reason.lower() or 'failed'}", message, now)]
    return status
