"""What a caller sees: IVOA documents (ivoa-std shape) built from the OfferSet and Execution CRs.

Pure functions of (CR dicts, base URL, now). The phase shown applies lazy expiry (digest §5.4): an
OFFERED session whose ``expires`` has passed reads as EXPIRED even before the operator's sweeper
has written it. Options follow digest §4.4. Rendering into the caller's dialect happens afterwards
(``eb_operator.model``), so everything here speaks the canonical ivoa-std shape.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from eb_operator.cluster.convert import object_uuid, recorded_phase
from eb_operator.cluster.offer_status import find_offer
from eb_operator.engine.types import Phase
from eb_operator.model import (
    ACCEPTED_PHASES,
    FINAL_PHASES,
    OFFERSET_TYPE,
    SESSION_TYPE,
    phase_options,
    render,
)
from eb_operator.model.reuse import named_storage, storage_href, storage_uuid
from eb_operator.model.times import (
    Iso8601Error,
    IsoInterval,
    format_duration,
    format_instant,
    parse_duration,
    parse_instant,
    to_epoch,
)

#: Annotation on an OfferSet (or a direct Execution) recording the dialect the client spoke.
DIALECT_ANNOTATION = "executionbroker.ivoa.net/dialect"

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
    spec = _spec(execution)
    held = spec.get("reservation") or spec.get("peer") or {}
    return _instant(_status(execution).get("expires") or held.get("expires"))


def shown_phase(execution: Obj, now: datetime) -> Phase | None:
    """The phase a client sees at ``now``: the recorded one (``recorded_phase``), with lazy expiry
    applied (an OFFERED session past its ``expires`` is EXPIRED before the operator writes it)."""
    phase = recorded_phase(execution)
    if phase == Phase.OFFERED:
        expires = expires_of(execution)
        if expires is not None and to_epoch(now) >= expires:
            return Phase.EXPIRED
    return phase


def phase_option_documents(phase: Phase) -> list[dict[str, Any]]:
    """The ``options`` of a session in ``phase`` (digest §4.4), as JSON-ready documents."""
    return [render(option) for option in phase_options(phase)]


def is_answered(offerset: Obj) -> bool:
    """True once the operator has written its YES/NO answer."""
    return _status(offerset).get("result") in ("YES", "NO")


def is_offered(execution: Obj) -> bool:
    """True once an Execution is a visible session (a phase past PROPOSED)."""
    return recorded_phase(execution) not in (None, Phase.PROPOSED)


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
    new = [item for item in storage if item.get("href") is None]  # reused storage is offered as found
    for i, item in enumerate(new):
        size = item.setdefault("size", {})
        want = int(((size.get("requested") or {}).get("min")) or 1)
        give = left if i == len(new) - 1 else min(want, left)
        size["offered"] = _minmax(max(give, 0))
        left -= give
    return resources


def _storage_identity(resources: dict[str, Any], session: str, status: Obj, base_url: str) -> None:
    """Each storage item's uuid (server-assigned; an earlier session's when it names one) and href,
    and, once the session has prepared, what the operator recorded: its size, until when it is
    kept (``expires``), and how its results went out (``stageout.delivery``)."""
    recorded = {int(e.get("index", -1)): e for e in status.get("storage") or []}
    for i, item in enumerate(resources.get("storage") or []):
        entry = recorded.get(i) or {}
        named = named_storage(item.get("href")) if item.get("href") is not None else None
        uuid = str(entry.get("uuid") or named or storage_uuid(session, i))
        item.setdefault("uuid", uuid)  # a client's own uuid stays: its volumes may name it (§9 item 28)
        item["href"] = storage_href(base_url, session, uuid)
        if entry.get("sizeGiB") is not None:
            item.setdefault("size", {})["offered"] = _minmax(int(entry["sizeGiB"]))
        if entry.get("expires"):
            item["expires"] = entry["expires"]
        if entry.get("delivery") and isinstance(item.get("stageout"), dict):
            item["stageout"]["delivery"] = copy.deepcopy(dict(entry["delivery"]))


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


def peer_offered(execution: Obj, offerset: Obj | None) -> Mapping[str, Any]:
    """What a peer offered for a session it holds (the set keeps it), or nothing when the set is
    gone."""
    ref = find_offer(offerset, str(execution.get("metadata", {}).get("name"))) if offerset else None
    return (ref or {}).get("offered") or {}


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
    phase = shown_phase(execution, now) or Phase.PROPOSED
    if sibling_accepted and phase == Phase.OFFERED:
        phase = Phase.REJECTED
    doc: dict[str, Any] = {
        "uuid": uuid,
        "href": f"{base_url}/sessions/{uuid}",
        "type": SESSION_TYPE,
        "name": execution.get("metadata", {}).get("name"),
        "created": st.get("created") or execution.get("metadata", {}).get("creationTimestamp"),
        "phase": str(phase),
    }
    expires = expires_of(execution)
    if expires is not None:
        doc["expires"] = format_instant(expires)
    if spec.get("peer"):  # held at a peer broker: what that peer offered, kept in the set
        offered = peer_offered(execution, offerset)
        executable = offered.get("executable")
        resources = copy.deepcopy(dict(offered.get("resources") or {}))
        schedule = copy.deepcopy(dict(offered.get("schedule") or {}))
    else:
        executable = request.get("executable")
        resources = _offered_resources(request, reservation)
        _storage_identity(resources, uuid, st, base_url)
        schedule = _offered_schedule(request, reservation)
    if executable:
        doc["executable"] = copy.deepcopy(dict(executable))
        access = st.get("access")
        if access:
            doc["executable"]["access"] = copy.deepcopy(list(access))
        if st.get("ports"):
            _fill_ports(doc["executable"], st["ports"])
    if resources:
        doc["resources"] = resources
    if schedule:
        doc["schedule"] = schedule
    doc["options"] = phase_option_documents(phase)
    messages = list(st.get("messages") or [])
    if st.get("message") and phase == Phase.FAILED and not messages:
        messages.append({"type": "urn:ivoa:eb:failed", "level": "ERROR", "message": st["message"]})
    if (st.get("remote") or {}).get("unreachableSince") and st.get("message") and phase not in FINAL_PHASES:
        messages.append({"type": "urn:ivoa:eb:peer-unreachable", "level": "WARN", "message": st["message"]})
    if messages:
        doc["messages"] = copy.deepcopy(messages)
    return {k: v for k, v in doc.items() if v is not None}


def _fill_ports(executable: dict[str, Any], filled: Sequence[Obj]) -> None:
    """The request's ``network.ports`` with what the service filled in for the routed ones:
    ``external`` (port, addresses) and ``path`` (digest §3.3, DockerNetworkPort)."""
    by_port = {(p.get("internal") or {}).get("port"): p for p in filled}
    for port in (executable.get("network") or {}).get("ports") or []:
        done = by_port.get((port.get("internal") or {}).get("port"))
        if done is not None:
            port["external"] = copy.deepcopy(dict(done.get("external") or {}))
            if done.get("path"):
                port["path"] = done["path"]


def offerset_document(
    offerset: Obj, executions: Sequence[Obj], base_url: str, now: datetime
) -> dict[str, Any]:
    """One OfferSetResponse (ivoa-std shape), offers with their current phases."""
    st = _status(offerset)
    uuid = object_uuid(offerset)
    request = _spec(offerset).get("request") or {}
    offers = [e for e in executions if is_offered(e)]
    accepted = next((object_uuid(e) for e in offers if recorded_phase(e) in ACCEPTED_PHASES), None)
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


def storage_document(session: Mapping[str, Any], storage: str) -> dict[str, Any] | None:
    """The storage item whose href names ``storage`` (a uuid) in a session document, if any."""
    for item in (session.get("resources") or {}).get("storage") or []:
        if named_storage(str(item.get("href") or "")) == storage:
            return copy.deepcopy(dict(item))
    return None


def pod_of(execution: Obj) -> tuple[str, str]:
    """(namespace, name) of a session's Pod: where the operator recorded it, else where it makes it."""
    st = _status(execution)
    meta = execution.get("metadata") or {}
    namespace = str(st.get("childNamespace") or meta.get("namespace") or "")
    return namespace, str(st.get("podName") or f"eb-{meta.get('name', '')}")
