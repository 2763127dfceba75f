"""The API's one seam to the wire model (``eb_operator.model``): read requests and updates, render
documents in the caller's dialect. Everything else in the API works on canonical ivoa-std dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eb_operator.model.errors import RequestError
from eb_operator.model.types import Dialect

__all__ = ["Dialect", "PhaseUpdate", "RequestError", "guess_dialect", "read_request", "read_update", "render"]

PHASE_PATHS = frozenset({"phase", "/phase", "state", "/state"})
UPDATE_TYPE = "uri:enum-value-update"
KNOWN_UPDATE_TYPES = frozenset(
    {
        "uri:string-value-update",
        "uri:enum-value-update",
        "uri:integer-value-update",
        "uri:integer-delta-update",
    }
)
PHASES = (
    "PROPOSED",
    "OFFERED",
    "ACCEPTED",
    "REJECTED",
    "EXPIRED",
    "WAITING",
    "PREPARING",
    "READY",
    "RUNNING",
    "RELEASING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
)
#: Phase names clients may send, in either dialect, to their ivoa-std names.
PHASE_NAMES = {**{p: p for p in PHASES}, "INITIAL": "PROPOSED", "AVAILABLE": "READY"}


@dataclass(frozen=True, slots=True)
class PhaseUpdate:
    value: str  # an ivoa-std phase name
    dialect: Dialect


def read_request(doc: Mapping[str, Any], hint: Dialect | None) -> tuple[dict[str, Any], Dialect]:
    """An OfferSetRequest (either dialect) as a canonical ivoa-std dict, and the dialect it came in."""
    from eb_operator import model

    parse = getattr(model, "parse_offerset_request", None)
    if parse is not None:
        request, dialect = parse(doc, hint)
        return render(request, Dialect.IVOA_STD), Dialect.parse(dialect)
    return dict(doc), hint or Dialect.IVOA_STD  # until the model lands: ivoa-std passthrough


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise RequestError(path, "must be a string")
    return value


def read_update(doc: Mapping[str, Any], url_uuid: str) -> PhaseUpdate:
    """An UpdateRequest ``{update: {...}}`` or a bare C26 update, checked down to a phase name.

    Raises ``RequestError`` (400) for anything but a well-formed phase change: unknown or unsupported
    update type, unsupported path, a value that is not a phase name, an identifier other than the
    URL's (digest §2.6, §9 items 2 and 23).
    """
    dialect = Dialect.IVOA_STD
    prefix = "update/"
    if "update" in doc:
        update = doc["update"]
        if not isinstance(update, Mapping):
            raise RequestError("update", "must be an object")
    else:
        update, prefix, dialect = doc, "", Dialect.C26
    for where, holder in (("", doc), (prefix, update)):
        for key in ("uuid", "ident"):
            if key in holder and holder[key] != url_uuid:
                raise RequestError(where + key, "does not match the session in the URL")
    type_key = "kind" if "kind" in update else "type"
    if type_key == "kind":
        dialect = Dialect.C26
    if type_key not in update:
        raise RequestError(prefix + "type", "an update needs its type (or kind) discriminator")
    utype = _text(update[type_key], prefix + type_key)
    if utype not in KNOWN_UPDATE_TYPES:
        raise RequestError(prefix + type_key, f"unknown update type {utype}")
    if utype != UPDATE_TYPE:
        raise RequestError(prefix + type_key, f"{utype} is not supported here; only phase changes are")
    path = _text(update.get("path"), prefix + "path")
    if path not in PHASE_PATHS:
        raise RequestError(prefix + "path", f"unsupported path {path}; only phase can be updated")
    value = _text(update.get("value"), prefix + "value")
    phase = PHASE_NAMES.get(value)
    if phase is None:
        raise RequestError(prefix + "value", f"{value} is not a phase name")
    return PhaseUpdate(phase, dialect)


def render(doc: Any, dialect: Dialect) -> dict[str, Any]:
    """A document (wire model or canonical ivoa-std dict) in ``dialect``."""
    from eb_operator import model

    renderer = getattr(model, "render", None)
    if renderer is not None:
        out: dict[str, Any] = renderer(doc, dialect)
        return out
    if isinstance(doc, dict):
        return doc
    dumped: dict[str, Any] = doc.model_dump(by_alias=True, exclude_none=True)
    return dumped


def guess_dialect(doc: Mapping[str, Any]) -> Dialect:
    """Digest §8.3: ``kind`` keys, a ``meta`` block or a top-level ``compute`` mean Calycopis."""
    if "meta" in doc or "compute" in doc or "kind" in doc:
        return Dialect.C26
    executable = doc.get("executable")
    if isinstance(executable, Mapping) and "kind" in executable:
        return Dialect.C26
    return Dialect.IVOA_STD
