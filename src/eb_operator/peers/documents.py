"""A peer's answers, read like client input: bounded, validated, re-rendered; pure (no I/O, no clock).

An offer set from a peer is taken apart offer by offer: each offer is validated with the wire
model (``ExecutionSessionResponse``) and checked against the request it answers (digest §5.1:
the offered start inside a requested window, the run time at least the requested duration, the
offered cores and memory at least the requested minimums), and it must be OFFERED, unexpired, and
reached at the peer's own origin. An offer that fails is dropped with its reason; the others
stand. What is kept is re-rendered from the model's known fields only, and bounded in size, so a
peer cannot put arbitrary data into this broker's OfferSets.
"""

from __future__ import annotations

import json
import re
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, TypeAdapter, ValidationError

from eb_operator.model import (
    AccessMethod,
    ExecutionSessionPhase,
    ExecutionSessionResponse,
    MessageItem,
    OfferSetRequest,
    RequestError,
    render,
)
from eb_operator.model.codec import check_plain
from eb_operator.model.common import PhaseField
from eb_operator.model.dialect import normalise_response
from eb_operator.model.times import to_epoch
from eb_operator.model.types import Dialect
from eb_operator.peers.errors import PeerError

#: The most a kept offer may weigh, as JSON (32 of them stay well inside one OfferSet's status).
MAX_OFFER_BYTES = 16 * 1024
#: Offers of one answer looked at; a peer sending more is cut off there.
MAX_RAW_OFFERS = 64
#: The most items of any list the OfferSet CRD stores (``eb_operator.model.crdgen``).
MAX_LIST_ITEMS = 32
#: The longest text of a peer's that is repeated (messages, reasons).
MAX_TEXT = 300
#: What is kept of an offer: what the client needs to see it (uuid, href, phase, expires and
#: options are this broker's own).
OFFER_FIELDS = ("name", "executable", "resources", "schedule", "messages")

_PHASE = TypeAdapter[ExecutionSessionPhase](PhaseField)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """A peer's text fit to repeat: control characters as spaces, at most ``limit`` characters."""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def same_origin(url: str, base: str) -> bool:
    """``url`` is on the peer's own scheme, host and port (so the peer's token goes nowhere else)."""
    mine = _origin(url)
    return mine is not None and mine == _origin(base)


def check_base_url(url: str) -> str | None:
    """Why ``url`` cannot be a peer's base URL, or None: http(s), a host, no credentials, no query
    or fragment."""
    if _origin(url) is None:
        return "the url must be http:// or https:// with a host, and no user or password in it"
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        return "the url must have no query or fragment"
    return None


def messages_text(doc: Mapping[str, Any]) -> list[str]:
    """The texts of a document's messages (ivoa-std ``messages``, C26 ``meta.messages``)."""
    found: list[str] = []
    holders = [doc, doc.get("meta")]
    for holder in holders:
        items = holder.get("messages") if isinstance(holder, Mapping) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping):
                text = item.get("message") or item.get("template")
                if isinstance(text, str) and text.strip():
                    found.append(clean_text(text))
    return found[:5]


def _first_error(err: ValidationError) -> str:
    e = err.errors(include_url=False)[0]
    where = "/".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p.startswith("!")))
    return clean_text(f"{where or '(document)'}: {e.get('msg', 'is invalid')}", 160)


def _known(model: BaseModel, data: Any) -> Any:
    """``data`` (the JSON of ``model``) without the fields the model does not define, at any depth."""
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        if key in data:
            out[key] = _known_value(getattr(model, name), data[key])
    return out


def _known_value(value: Any, data: Any) -> Any:
    if isinstance(value, BaseModel):
        return _known(value, data)
    if isinstance(value, list) and isinstance(data, list):
        return [_known_value(v, d) for v, d in zip(value, data, strict=False)]
    return data


def _prepared(doc: object, dialect: Dialect, kind: str) -> dict[str, Any]:
    try:
        check_plain(doc)
    except RequestError as e:
        raise PeerError(f"the answer is not a plain document: {clean_text(e.reason, 120)}") from None
    if not isinstance(doc, dict):
        raise PeerError("the answer is not an object")
    if dialect.calycopis or "meta" in doc or "kind" in doc:
        try:
            return normalise_response(doc, kind)
        except RequestError as e:
            raise PeerError(f"the answer cannot be read: {clean_text(e.message, 160)}") from None
    return doc


# --- offer sets --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteOffer:
    """One offer a peer made, as this broker keeps it."""

    session: str  # its uuid at the peer
    href: str  # its URL at the peer
    expires: int  # epoch seconds (capped, see read_offerset)
    start: int  # the offered start of execution, epoch seconds
    document: dict[str, Any]  # OFFER_FIELDS, ivoa-std shaped, known fields only


@dataclass(frozen=True, slots=True)
class OfferSetAnswer:
    result: str  # "YES" or "NO", as the peer said
    offers: tuple[RemoteOffer, ...]  # the usable ones, earliest first, at most max_offers
    dropped: tuple[str, ...] = ()  # why an offer was not taken, one line each
    reasons: tuple[str, ...] = ()  # the peer's own messages (why NO)


class _Dropped(Exception):
    pass


def read_offerset(
    doc: object,
    *,
    base: str,
    dialect: Dialect,
    now: int,
    request: OfferSetRequest | None,
    max_offers: int,
    max_ttl: int,
) -> OfferSetAnswer:
    """A peer's OfferSetResponse (either dialect) as the offers this broker may pass on.

    Raises :class:`PeerError` when the document as a whole is unusable (not an object, no
    result); an offer that is not usable is dropped, with its reason in ``dropped``. ``base``: the
    peer's base URL (offers must be reached at its origin); ``max_ttl``: an offer's expiry is
    cut to ``now + max_ttl`` (a peer cannot make this broker show an offer for ever)."""
    data = _prepared(doc, dialect, "offerset")
    result = data.get("result")
    if result is True or result is False:  # a YAML 1.1 YES/NO, as the model reads it
        result = "YES" if result else "NO"
    if result not in ("YES", "NO"):
        raise PeerError("the answer has no result YES or NO")
    raw = data.get("offers") or []
    if not isinstance(raw, list):
        raise PeerError("the answer's offers are not a list")
    reasons = tuple(messages_text(data))
    if result == "NO":
        dropped = (f"{len(raw)} offers of a NO answer ignored",) if raw else ()
        return OfferSetAnswer("NO", (), dropped, reasons)
    offers: list[RemoteOffer] = []
    dropped_list: list[str] = []
    if len(raw) > MAX_RAW_OFFERS:
        dropped_list.append(f"offers past the first {MAX_RAW_OFFERS} ignored")
    for i, item in enumerate(raw[:MAX_RAW_OFFERS]):
        try:
            offers.append(_offer(item, base, now, request, max_ttl))
        except _Dropped as e:
            dropped_list.append(f"offer {i}: {e}")
    offers.sort(key=lambda o: o.start)
    return OfferSetAnswer("YES", tuple(offers[:max_offers]), tuple(dropped_list), reasons)


def _offer(item: Any, base: str, now: int, request: OfferSetRequest | None, max_ttl: int) -> RemoteOffer:
    try:
        session = ExecutionSessionResponse.model_validate(item)
    except ValidationError as e:
        raise _Dropped(_first_error(e)) from None
    if session.phase is not ExecutionSessionPhase.OFFERED:
        raise _Dropped(f"phase is {session.phase}, not OFFERED")
    try:
        uuid = str(uuidlib.UUID(session.uuid))
    except ValueError:
        raise _Dropped("uuid is not a UUID") from None
    if not same_origin(session.href, base):
        raise _Dropped("href is not at the peer's own url")
    if session.expires is None:
        raise _Dropped("no expires")
    expires = to_epoch(session.expires)
    if expires <= now:
        raise _Dropped("already expired")
    executing = session.schedule.executing if session.schedule else None
    if executing is None or executing.start is None or executing.start.start is None:
        raise _Dropped("no offered start (schedule/executing/start)")
    if executing.duration is None:
        raise _Dropped("no offered run time (schedule/executing/duration)")
    start = executing.start.start
    if request is not None:
        _check_against(session, request, start, executing.duration.seconds)
    data = session.model_dump(mode="json", by_alias=True, exclude_none=True)
    document = {k: _known_value(getattr(session, k), data[k]) for k in OFFER_FIELDS if k in data}
    if request is not None:
        _with_requested(document, request)
    if len(json.dumps(document, separators=(",", ":"))) > MAX_OFFER_BYTES:
        raise _Dropped(f"larger than {MAX_OFFER_BYTES} bytes")
    problem = unstorable(document)
    if problem is not None:
        raise _Dropped(problem)
    return RemoteOffer(uuid, session.href, min(expires, now + max_ttl), start, document)


def _check_against(session: ExecutionSessionResponse, request: OfferSetRequest, start: int, run: int) -> None:
    """The digest's MUSTs of an offer (§5.1), as far as they can be checked from outside."""
    asked = request.requested_schedule
    if asked is not None and asked.duration is not None and run < asked.duration.seconds:
        raise _Dropped(f"offers {run} s of run time, less than the {asked.duration.seconds} s asked")
    windows = [w for w in (asked.start or []) if w.supported and w.start is not None] if asked else []
    if windows and not any(w.start is not None and w.start <= start <= w.start + w.seconds for w in windows):
        raise _Dropped("starts outside every requested start window")
    want = request.simple_compute()
    got = session.resources.compute[0] if session.resources and session.resources.compute else None
    if want is None or got is None:
        return
    for what in ("cores", "memory"):
        need = getattr(getattr(getattr(want, what, None), "requested", None), "min", None)
        give = getattr(getattr(getattr(got, what, None), "offered", None), "min", None)
        if isinstance(need, int) and isinstance(give, int) and give < need:
            raise _Dropped(f"offers {give} {what}, fewer than the {need} asked")


def unstorable(doc: Any, path: str = "") -> str | None:
    """Why the OfferSet's schema would refuse ``doc`` (the CRD bounds every list to
    ``MAX_LIST_ITEMS`` and checks ``min <= max``), or None: an offer that passes here never
    makes the merged answer's write fail."""
    stack: list[tuple[Any, str]] = [(doc, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, list):
            if len(value) > MAX_LIST_ITEMS:
                return f"{where or '(document)'} holds more than {MAX_LIST_ITEMS} items"
            stack.extend((v, f"{where}/{i}") for i, v in enumerate(value))
        elif isinstance(value, dict):
            low, high = value.get("min"), value.get("max")
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
            if numbers and float(low) > float(high):  # type: ignore[arg-type]
                return f"{where or '(document)'}: min is more than max"
            stack.extend((v, f"{where}/{k}") for k, v in value.items())
    return None


def _with_requested(document: dict[str, Any], request: OfferSetRequest) -> None:
    """The client's requested values beside the peer's offered ones, where the peer's document
    lacks them (a C26 peer sends offered values only): an offer keeps the request (digest §7
    item 31), whichever broker made it."""
    asked = render(request)
    requested = (asked.get("schedule") or {}).get("requested")
    schedule = document.get("schedule")
    if requested and isinstance(schedule, dict) and "requested" not in schedule:
        document["schedule"] = {"requested": requested, **schedule}
    want = ((asked.get("resources") or {}).get("compute") or [None])[0]
    got = ((document.get("resources") or {}).get("compute") or [None])[0]
    if not isinstance(want, dict) or not isinstance(got, dict):
        return
    for key in ("cores", "memory"):
        block = got.get(key)
        need = (want.get(key) or {}).get("requested")
        if isinstance(block, dict) and need and "requested" not in block:
            got[key] = {"requested": need, **block}


# --- sessions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteSession:
    """A session at a peer, as far as this broker mirrors it."""

    phase: ExecutionSessionPhase
    messages: tuple[str, ...] = ()
    access: tuple[dict[str, Any], ...] | None = None  # the executable's access methods, if any


def read_session(doc: object, *, dialect: Dialect, session: str) -> RemoteSession:
    """A peer's ExecutionSessionResponse (either dialect): its phase, messages and access methods.
    Only these parts are validated (a field this broker does not use cannot break the mirror);
    raises :class:`PeerError` without a valid phase, or for another session's document."""
    data = _prepared(doc, dialect, "session")
    found = data.get("uuid")
    if found is not None and (not isinstance(found, str) or found.lower() != session.lower()):
        raise PeerError("the answer is about another session")
    try:
        phase = _PHASE.validate_python(data.get("phase"))
    except ValidationError:
        raise PeerError("the answer has no valid phase") from None
    access: list[dict[str, Any]] | None = None
    executable = data.get("executable")
    raw = executable.get("access") if isinstance(executable, dict) else None
    if isinstance(raw, list):
        access = []
        for item in raw[:8]:
            try:
                method = AccessMethod.model_validate(item)
            except ValidationError:
                continue
            access.append(_known(method, method.model_dump(mode="json", exclude_none=True)))
    return RemoteSession(phase, tuple(messages_text(data)), tuple(access) if access is not None else None)


def refusal_text(doc: object) -> str:
    """The reason in a peer's error document (ivoa-std or C26), or an empty string."""
    if not isinstance(doc, Mapping):
        return ""
    texts = messages_text(doc)
    return texts[-1] if texts else ""


def valid_messages(items: Sequence[Any]) -> list[MessageItem]:
    out = []
    for item in items:
        try:
            out.append(MessageItem.model_validate(item))
        except ValidationError:
            continue
    return out
