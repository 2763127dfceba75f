"""The API's errors and their one mapping to IVOA structured error documents (digest §6).

Routes and dependencies raise domain errors (these ``ApiError`` classes, the model's
``RequestError``, the store's errors, body and media errors); ``to_api_error`` turns any of them
into one ``ApiError`` and ``error_document`` into the body. ``app.handle_error`` is the single
exception handler that uses both, so no route carries status-code plumbing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from eb_operator.model.times import format_instant

_URN = "urn:ivoa:eb:"


class ApiError(Exception):
    """An error with its HTTP status and an IVOA MessageItem (template + values)."""

    status: int = 500
    type_uri: str = _URN + "internal-error"

    def __init__(
        self,
        template: str,
        values: Mapping[str, object] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        document: Mapping[str, Any] | None = None,
        type_uri: str | None = None,
    ) -> None:
        self.template = template
        self.values: dict[str, str] = {k: str(v) for k, v in (values or {}).items()}
        self.headers: dict[str, str] = dict(headers or {})
        self.document = document  # a full representation to return with the message (409)
        if type_uri is not None:
            self.type_uri = type_uri
        super().__init__(self.message)

    @property
    def message(self) -> str:
        try:
            return self.template.format(**self.values)
        except (KeyError, IndexError, ValueError):
            return self.template

    def item(self, now: datetime | None = None) -> dict[str, Any]:
        """The IVOA MessageItem (ivoa-std field names)."""
        when = format_instant(int((now or datetime.now(UTC)).timestamp()))
        return {
            "type": self.type_uri,
            "level": "ERROR",
            "time": when,
            "template": self.template,
            "values": dict(self.values),
            "message": self.message,
        }


class BadRequest(ApiError):
    status = 400
    type_uri = _URN + "bad-request"


class Unauthorized(ApiError):
    status = 401
    type_uri = _URN + "unauthenticated"

    def __init__(self, template: str, values: Mapping[str, object] | None = None, *, error: str = "") -> None:
        challenge = 'Bearer realm="execution-broker"'
        if error:
            challenge += f', error="{error}"'
        super().__init__(template, values, headers={"WWW-Authenticate": challenge})


class NotFound(ApiError):
    status = 404
    type_uri = _URN + "not-found"


class MethodNotAllowed(ApiError):
    status = 405
    type_uri = _URN + "method-not-allowed"


class NotAcceptable(ApiError):
    status = 406
    type_uri = _URN + "not-acceptable"


class Conflict(ApiError):
    status = 409
    type_uri = _URN + "invalid-transition"


class PayloadTooLarge(ApiError):
    status = 413
    type_uri = _URN + "payload-too-large"


class UnsupportedMediaType(ApiError):
    status = 415
    type_uri = _URN + "unsupported-media-type"


class TooManyRequests(ApiError):
    """The caller (or its group) asked more often than the platform's policy allows."""

    status = 429
    type_uri = _URN + "rate-limited"

    def __init__(
        self, template: str, values: Mapping[str, object] | None = None, *, retry_after: int
    ) -> None:
        super().__init__(template, values, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(ApiError):
    status = 503
    type_uri = _URN + "unavailable"

    def __init__(
        self, template: str, values: Mapping[str, object] | None = None, *, retry_after: int
    ) -> None:
        super().__init__(template, values, headers={"Retry-After": str(retry_after)})


class LoopDetected(ApiError):
    """A request forwarded back to a broker it passed through, or past the hop limit (EB-Via)."""

    status = 508
    type_uri = _URN + "forwarding-loop"


class InternalError(ApiError):
    status = 500


def error_document(err: ApiError, *, c26: bool, now: datetime | None = None) -> dict[str, Any]:
    """The body for ``err``: its own document (e.g. the current session) with the ERROR message
    added, or a bare ``messages`` list; in the C26 dialect under ``meta.messages`` with ``kind``."""
    item = err.item(now)
    if c26:
        item["kind"] = item.pop("type")
    doc: dict[str, Any] = copy.deepcopy(dict(err.document)) if err.document is not None else {}
    holder = doc.setdefault("meta", {}) if c26 else doc
    holder.setdefault("messages", [])
    holder["messages"] = [*holder["messages"], item]
    return doc
