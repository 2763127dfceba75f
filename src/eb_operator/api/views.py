"""What a caller sees: IVOA documents (ivoa-std shape) built from the OfferSet and Execution CRs.

Pure functions of (CR dicts, base URL, now). The phase shown applies lazy expiry (digest §5.4): an
OFFERED session whose ``expires`` has passed reads as EXPIRED even before the operator's sweeper
has written it. Options follow digest §4.4. Rendering into the caller's dialect happens afterwards
(``eb_operator.model``), so everything here speaks the canonical ivoa-std shape.
"""

from __future__ import annotations

import copy
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from eb_operator.model.times import (
    Iso8601Error,
    IsoInterval,
    format_duration,
    format_instant,
    parse_duration,
    parse_instant,
    to_epoch,
)

OFFERSET_TYPE = "https://www.purl.org/ivoa.net/EB/schema/types/offersets/offerset-response-1.0"
SESSION_TYPE = "https://www.purl.org/ivoa.net/EB/schema/types/sessions/execution-session-response-1.0"
ENUM_OPTION = "uri:enum-value-option"

#: Annotation on an OfferSet (or a direct Execution) recording the dialect the client spoke.
DIALECT_ANNOTATION = "executionbroker.ivoa.net/dialect"

FINAL = frozenset({"REJECTED", "EXPIRED", "COMPLETED", "FAILED", "CANCELLED"})
CANCELLABLE = frozenset({"ACCEPTED", "WAITING", "PREPARING", "READY", "RUNNING"})
#: Phases that show an accept went through (the session may already have moved on).
AFTER_ACCEPT = frozenset({"ACCEPTED", "WAITING", "PREPARING", "READY", "RUNNING", "RELEASING", "COMPLETED"})

Obj = Mapping[str, Any]


def _instant(text: str | None) -> int | None:
    """A time the operator wrote (epoch seconds), or None when absent or unreadable: a reservation
    a kubectl user wrote by hand may hold anything, and its session is still shown (the operator
    fails such an Execution)."""
    if not text:
        return None
    try:
        return parse_instant(text)
    except Iso8601Error:
        return None


def _duration(text: str | None) -> int | None:
    """A duration the operator wrote (seconds), or None when absent or unreadable (as :func:`_instant`)."""
    if not text:
        return None
    try:
        return parse_duration(text)
    except Iso8601Error:
        return None


def _exact(epoch: int) -> str:
    """An exact offered time, as the schema's start interval of width zero (``…/PT0S``)."""
    return str(IsoInterval.exact(epoch))


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def expires_of(execution: Obj) -> int | None:
    reservation = _spec(execution).get("reservation") or {}
    return _instant(_status(execution).get("expires") or reservation.get("expires"))


def stored_phase(execution: Obj) -> str | None:
    """status.phase; an offer the operator created with its reservation but no status yet is OFFERED."""
    phase: str | None = _status(execution).get("phase")
    if not phase and _spec(execution).get("reservation"):
        return "OFFERED"
    return phase or None


def effective_phase(execution: Obj, now: datetime) -> str | None:
    """The phase to show: the stored one, with lazy expiry applied."""
    phase = stored_phase(execution)
    if phase == "OFFERED":
        expires = expires_of(execution)
        if expires is not None and to_epoch(now) >= expires:
            return "EXPIRED"
    return phase


def phase_options(phase: str | None) -> list[dict[str, Any]]:
    """Digest §4.4: what the owner may set the phase to now."""
    if phase == "OFFERED":
        values = ["ACCEPTED", "REJECTED"]
    elif phase in CANCELLABLE:
        values = ["CANCELLED"]
    else:
        return []
    return [{"type": ENUM_OPTION, "path": "phase", "values": values}]


def _is_uuid(text: str) -> bool:
    try:
        return str(uuidlib.UUID(text)) == text.lower()
    except ValueError:
        return False


def object_uuid(obj: Obj) -> str:
    """The IVOA uuid of a broker object: ``status.uuid`` when written, else its name when that is a
    UUID (REST-made objects and offers), else its Kubernetes uid (objects named by kubectl users)."""
    written = _status(obj).get("uuid")
    if written:
        return str(written)
    meta = obj.get("metadata", {})
    name = str(meta.get("name", ""))
    return name if _is_uuid(name) else str(meta.get("uid", ""))


def is_answered(offerset: Obj) -> bool:
    """True once the operator has written its YES/NO answer."""
    return _status(offerset).get("result") in ("YES", "NO")


def is_offered(execution: Obj) -> bool:
    """True once an Execution is a visible session (a phase past PROPOSED)."""
    return stored_phase(execution) not in (None, "PROPOSED")


def _minmax(value: int) -> dict[str, int]:
    return {"min": value, "max": value}


def _offered_resources(request: Obj, reservation: Mapping[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = copy.deepcopy(dict(request.get("resources") or {}))
    if not reservation:
        return resources
    compute = resources.get("compute") or []
    if compute:
        first = compute[0]
        first.setdefault("cores", {})["offered"] = _minmax(int(reservation.get("cores", 0)))
        first.setdefault("memory", {})["offered"] = _minmax(int(reservation.get("memoryGiB", 0)))
        gpus = int(reservation.get("gpus", 0) or 0)
        if gpus or first.get("gpus"):
            first.setdefault("gpus", {})["offered"] = _minmax(gpus)
    storage = resources.get("storage") or []
    left = int(reservation.get("storageGiB", 0) or 0)
    for i, item in enumerate(storage):
        size = item.setdefault("size", {})
        want = int(((size.get("requested") or {}).get("min")) or 1)
        give = left if i == len(storage) - 1 else min(want, left)
        size["offered"] = _minmax(max(give, 0))
        left -= give
    return resources


def _offered_schedule(request: Obj, reservation: Mapping[str, Any]) -> dict[str, Any]:
    schedule: dict[str, Any] = {}
    requested = (request.get("schedule") or {}).get("requested")
    if requested:
        schedule["requested"] = copy.deepcopy(dict(requested))
    prepare = _instant(reservation.get("prepareStart"))
    start = _instant(reservation.get("start"))
    duration = _duration(reservation.get("duration"))
    release_end = _instant(reservation.get("releaseEnd"))
    if start is None or duration is None:
        return schedule
    if prepare is not None:
        schedule["preparing"] = {
            "start": _exact(prepare),
            "duration": format_duration(max(start - prepare, 0)),
        }
    schedule["executing"] = {"start": _exact(start), "duration": format_duration(duration)}
    end = start + duration
    if release_end is not None:
        schedule["releasing"] = {
            "start": _exact(end),
            "duration": format_duration(max(release_end - end, 0)),
        }
    return schedule


def request_of(execution: Obj, offerset: Obj | None) -> Mapping[str, Any]:
    """The IVOA request an Execution answers: inline (direct), else its OfferSet's as offered (with
    the offered storage), else as asked."""
    inline = _spec(execution).get("request")
    if inline:
        req: Mapping[str, Any] = inline
        return req
    if offerset is not None:
        return _status(offerset).get("request") or _spec(offerset).get("request") or {}
    return {}


def session_document(
    execution: Obj,
    offerset: Obj | None,
    base_url: str,
    now: datetime,
    *,
    sibling_accepted: bool = False,
) -> dict[str, Any]:
    """One ExecutionSessionResponse (ivoa-std shape). ``sibling_accepted``: another offer of the
    same set is accepted, so an offer still stored OFFERED is shown REJECTED, as the operator is
    about to write it (digest §4.3)."""
    spec, st = _spec(execution), _status(execution)
    request = request_of(execution, offerset)
    reservation = spec.get("reservation") or {}
    uuid = object_uuid(execution)
    phase = effective_phase(execution, now) or "PROPOSED"
    if sibling_accepted and phase == "OFFERED":
        phase = "REJECTED"
    doc: dict[str, Any] = {
        "uuid": uuid,
        "href": f"{base_url}/sessions/{uuid}",
        "type": SESSION_TYPE,
        "name": execution.get("metadata", {}).get("name"),
        "created": st.get("created") or execution.get("metadata", {}).get("creationTimestamp"),
        "phase": phase,
    }
    expires = expires_of(execution)
    if expires is not None:
        doc["expires"] = format_instant(expires)
    executable = request.get("executable")
    if executable:
        doc["executable"] = copy.deepcopy(dict(executable))
        access = st.get("access")
        if access:
            doc["executable"]["access"] = copy.deepcopy(list(access))
    resources = _offered_resources(request, reservation)
    if resources:
        doc["resources"] = resources
    schedule = _offered_schedule(request, reservation)
    if schedule:
        doc["schedule"] = schedule
    doc["options"] = phase_options(phase)
    messages = list(st.get("messages") or [])
    if st.get("message") and phase == "FAILED" and not messages:
        messages.append({"type": "urn:ivoa:eb:failed", "level": "ERROR", "message": st["message"]})
    if messages:
        doc["messages"] = copy.deepcopy(messages)
    return {k: v for k, v in doc.items() if v is not None}


def offerset_document(
    offerset: Obj, executions: Sequence[Obj], base_url: str, now: datetime
) -> dict[str, Any]:
    """One OfferSetResponse (ivoa-std shape), offers with their current phases."""
    st = _status(offerset)
    uuid = object_uuid(offerset)
    request = _spec(offerset).get("request") or {}
    offers = [e for e in executions if is_offered(e)]
    accepted = next((object_uuid(e) for e in offers if stored_phase(e) in AFTER_ACCEPT), None)
    doc: dict[str, Any] = {
        "uuid": uuid,
        "href": f"{base_url}/offersets/{uuid}",
        "type": OFFERSET_TYPE,
        "name": request.get("name"),
        "created": st.get("created") or offerset.get("metadata", {}).get("creationTimestamp"),
        "result": st.get("result"),
        "offers": [
            session_document(
                e, offerset, base_url, now, sibling_accepted=accepted not in (None, object_uuid(e))
            )
            for e in offers
        ],
    }
    messages = st.get("messages")
    if messages:
        doc["messages"] = copy.deepcopy(list(messages))
    return {k: v for k, v in doc.items() if v is not None}
