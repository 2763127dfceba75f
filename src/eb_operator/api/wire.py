"""The API's one seam to the wire model (``eb_operator.model``): read requests and updates, render
documents in the caller's dialect. Everything else in the API works on canonical ivoa-std dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from eb_operator.model import (
    ExecutionSessionResponse,
    OfferSetResponse,
    PhaseUpdate,
    RequestError,
    judge_request,
    parse_offerset_request,
    parse_update,
    render,
)
from eb_operator.model.common import MessageType
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.types import Dialect

__all__ = [
    "Dialect",
    "ReadRequest",
    "RequestError",
    "SessionUpdate",
    "guess_dialect",
    "read_request",
    "read_update",
    "to_dialect",
]


@dataclass(frozen=True, slots=True)
class SessionUpdate:
    value: str  # an ivoa-std phase name
    dialect: Dialect


@dataclass(frozen=True, slots=True)
class ReadRequest:
    request: dict[str, Any]  # canonical ivoa-std
    dialect: Dialect  # the one to answer in
    unknown: tuple[str, ...]  # paths of requirement-like fields no model defines, as the client wrote them


def read_request(doc: Mapping[str, Any], hint: Dialect | None) -> ReadRequest:
    """An OfferSetRequest (either dialect) as a canonical ivoa-std dict, the dialect to answer in, and
    the unknown requirement-like fields it held.

    Those fields do not survive into the stored CR (its structural schema prunes them), so they are
    found here, on the client's own document, and handed to the operator beside the request (it
    answers NO naming them). Which fields count is the model's judgement, policy-independent."""
    request, dialect = parse_offerset_request(dict(doc), hint)
    unknown = tuple(
        str((m.values or {}).get("path", ""))
        for m in judge_request(request, PlatformPolicy())
        if m.type == MessageType.UNKNOWN_REQUIREMENT
    )
    return ReadRequest(render(request, Dialect.IVOA_STD), dialect, unknown)


def read_update(doc: Mapping[str, Any], url_uuid: str) -> SessionUpdate:
    """An UpdateRequest ``{update: {...}}`` or a bare C26 update, checked down to a phase name.

    Raises ``RequestError`` (400) for anything but a well-formed phase change: unknown or unsupported
    update type, unsupported path, a value that is not a phase name, an identifier other than the
    URL's (digest §2.6, §9 items 2 and 23).
    """
    update, dialect = parse_update(dict(doc))
    base = "update/" if "update" in doc else ""
    if update.ident is not None and update.ident.lower() != url_uuid.lower():
        raise RequestError(base + "uuid", "does not match the session in the URL")
    if not isinstance(update, PhaseUpdate):
        raise RequestError(
            base + "path", f"only phase can be updated here, not {update.path!r} by {update.type}"
        )
    return SessionUpdate(str(update.value), dialect)


Kind = Literal["offerset", "session"]


def to_dialect(document: Mapping[str, Any], kind: Kind, dialect: Dialect) -> dict[str, Any]:
    """A canonical ivoa-std document in ``dialect``. ivoa-std documents are sent as built (the view
    tests hold them to the official schema); other dialects go through the wire model's renderer."""
    if dialect is Dialect.IVOA_STD:
        return dict(document)
    model = OfferSetResponse if kind == "offerset" else ExecutionSessionResponse
    return render(model.model_validate(dict(document)), dialect)


def guess_dialect(doc: Mapping[str, Any]) -> Dialect:
    """Digest §8.3: ``kind`` keys, a ``meta`` block or a top-level ``compute`` mean Calycopis."""
    if "meta" in doc or "compute" in doc or "kind" in doc:
        return Dialect.C26
    executable = doc.get("executable")
    if isinstance(executable, Mapping) and "kind" in executable:
        return Dialect.C26
    return Dialect.IVOA_STD
