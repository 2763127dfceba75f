"""The model's entry points: read client documents, write responses, in either dialect.

* :func:`parse_offerset_request` and :func:`parse_update` take an already-decoded YAML/JSON value
  and either return a model (and the dialect the client used), or raise :class:`RequestError`
  naming the bad field. They raise nothing else, whatever the input (a hypothesis test holds us
  to that).
* :func:`render` returns plain JSON-ready data for a model, in the dialect asked for.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from eb_operator.model.common import PHASE_PATH, PHASE_PATH_ALIASES, AbstractUpdate, Update, UpdateRequest
from eb_operator.model.dialect import detect_request_dialect, normalise_request, render_calycopis
from eb_operator.model.errors import Path, RequestError, format_path
from eb_operator.model.offerset import OfferSetRequest, PathMap
from eb_operator.model.types import Dialect, Group, kind_of

MAX_DEPTH = 48
MAX_NODES = 100_000

_SCALARS = (str, int, float, bool, type(None), datetime, date)
_UPDATE = TypeAdapter[AbstractUpdate](Update)

M = TypeVar("M", bound=BaseModel)


def _check_plain(doc: object) -> None:
    """Only JSON-like data, not too deep or large, with string keys; checked without recursion so
    that no input can exhaust the stack."""
    stack: list[tuple[object, Path]] = [(doc, ())]
    nodes = 0
    while stack:
        value, path = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise RequestError("", f"the document has more than {MAX_NODES} values")
        if len(path) > MAX_DEPTH:
            raise RequestError(path, f"the document is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise RequestError(path, f"object keys must be strings, not {type(key).__name__}")
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
        elif not isinstance(value, _SCALARS):
            raise RequestError(path, f"{type(value).__name__} is not a JSON value")


def check_plain(doc: object) -> None:
    """Raise :class:`RequestError` unless ``doc`` is plain JSON-like data within the model's bounds
    (depth, size): for documents read from elsewhere than a client (a peer broker's answers)."""
    _check_plain(doc)


def _reason(error: Any) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "is required"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be an object"
    if kind == "list_type":
        return "must be a list"
    return str(error.get("msg", "is invalid"))


def _client_loc(loc: tuple[Any, ...]) -> Path:
    # Discriminated-union tags ("!docker-container") appear in pydantic's loc; they are not fields.
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith("!")))


def _from_validation(err: ValidationError, paths: PathMap) -> RequestError:
    first = err.errors(include_url=False)[0]
    return RequestError(paths.to_client(_client_loc(tuple(first["loc"]))), _reason(first))


def _with_prefix(err: RequestError, prefix: Path) -> RequestError:
    if not prefix:
        return err
    joined = format_path(prefix) + ("/" + err.path if err.path else "")
    return RequestError(joined, err.reason)


def parse_offerset_request(doc: object, dialect_hint: str | None = None) -> tuple[OfferSetRequest, Dialect]:
    """Read an OfferSetRequest (ivoa-std) or ExecutionRequest (C26, C105) into the ivoa-std model.

    ``doc`` is the decoded body. A single top-level ``request`` key is unwrapped (the prose's
    wrapper, digest §2.2). ``dialect_hint`` is what the endpoint implies (``"c26"`` for
    ``POST /requests``); the document's own markers win over it (digest §8.3). Returns the model
    and the dialect to answer in. Raises :class:`RequestError` for structural errors only;
    anything understood but unsupported is for :func:`eb_operator.model.judge_request`.
    """
    hint = Dialect.parse(dialect_hint) if dialect_hint is not None else None
    _check_plain(doc)
    prefix: Path = ()
    if isinstance(doc, dict) and len(doc) == 1 and "request" in doc:
        doc, prefix = doc["request"], ("request",)
    if not isinstance(doc, dict):
        raise RequestError(prefix, "the request must be an object")
    dialect = detect_request_dialect(doc, hint)
    try:
        normal, paths = normalise_request(doc, prefix)
    except RequestError as err:
        raise _with_prefix(err, prefix) from None
    try:
        request = OfferSetRequest.model_validate(normal)
    except ValidationError as err:
        raise _from_validation(err, paths) from None
    request.set_paths(paths)
    return request, dialect


def _ident(holder: dict[str, Any], path: Path, found: dict[str, Path]) -> None:
    for key in ("ident", "uuid"):
        if key not in holder:
            continue
        value = holder.pop(key)
        if not isinstance(value, str):
            raise RequestError((*path, key), "an identifier must be a string")
        if found and value not in found:
            raise RequestError((*path, key), "the body names two different identifiers")
        found[value] = (*path, key)


def with_client_paths(request: OfferSetRequest, dialect: Dialect | str) -> OfferSetRequest:
    """``request`` naming its fields as a ``dialect`` client wrote them.

    For a request stored canonically (ivoa-std) and judged later for a C26 client: the NO messages
    then say ``compute/cores/min``, not ``resources/compute/0/cores/requested/min``. A request
    that cannot be written in ``dialect`` (C26 holds one compute resource and one start window)
    keeps its paths.
    """
    target = Dialect.parse(dialect)
    copy = request.model_copy()
    if target is Dialect.IVOA_STD:
        copy.set_paths(PathMap())
        return copy
    try:
        reread, _ = parse_offerset_request(render(request, target))
    except (ValueError, RequestError):
        return copy
    copy.set_paths(reread.paths)
    return copy


def parse_update(doc: object) -> tuple[AbstractUpdate, Dialect]:
    """Read a session update: ivoa-std ``{update: {...}}`` or a bare C26 update with ``kind``.

    The phase paths ``phase``, ``/phase``, ``state`` and ``/state`` all become ``phase`` and give a
    :class:`PhaseUpdate` whose value is an ivoa-std phase name (``AVAILABLE`` reads as ``READY``).
    An ``ident`` or ``uuid`` in the body, at the top or inside ``update``, is kept in
    ``update.ident`` for the API to compare with the URL (digest §9 item 23).
    Unknown update types, missing fields and wrong JSON types raise :class:`RequestError`; whether
    the path is one the session supports is for the caller to decide (400 either way, digest §6.1).
    """
    _check_plain(doc)
    if not isinstance(doc, dict):
        raise RequestError("", "an update must be an object")
    outer = dict(doc)
    found: dict[str, Path] = {}
    base: Path
    if "update" in outer:
        _ident(outer, (), found)
        body, base = outer["update"], ("update",)
        dialect = Dialect.IVOA_STD
        if not isinstance(body, dict):
            raise RequestError(base, "must be an object")
        body = dict(body)
    else:
        body, base = outer, ()
        dialect = Dialect.C26 if "kind" in body else Dialect.IVOA_STD
    _ident(body, base, found)
    if "kind" in body:
        if "type" in body and body["type"] != body["kind"]:
            raise RequestError((*base, "kind"), "`type` and `kind` are both given and differ")
        body["type"] = body.pop("kind")
        type_key = "kind"
    else:
        type_key = "type"
    if "type" not in body:
        raise RequestError(base, "missing its type discriminator (`type`, or `kind` in C26)")
    if kind_of(body["type"], Group.UPDATE) is None:
        raise RequestError((*base, type_key), f"unknown update type {body['type']!r}")
    if isinstance(body.get("path"), str) and body["path"] in PHASE_PATH_ALIASES:
        body["path"] = PHASE_PATH
    if found:
        body["ident"] = next(iter(found))
    try:
        update = _UPDATE.validate_python(body)
    except ValidationError as err:
        raise _from_validation(err, PathMap(base)) from None
    return update, dialect


def render(obj: BaseModel, dialect: Dialect | str = Dialect.IVOA_STD) -> dict[str, Any]:
    """JSON-ready data for ``obj`` in ``dialect``: no None values, timestamps as RFC 3339 ``Z``
    strings, ``result`` as the *string* ``"YES"``/``"NO"`` (quote it when writing YAML)."""
    target = Dialect.parse(dialect)
    data = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    if target is Dialect.IVOA_STD:
        return data
    return render_calycopis(obj, data, target)


def render_update_request(
    update: AbstractUpdate, dialect: Dialect | str = Dialect.IVOA_STD
) -> dict[str, Any]:
    """The body a client would POST to a session: ``{update: ...}`` or bare with ``kind``."""
    return render(UpdateRequest(update=update), dialect)
