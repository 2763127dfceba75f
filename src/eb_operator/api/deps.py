"""FastAPI dependencies, as ``Annotated`` aliases the routers declare by type. All are ``async``:
FastAPI would run a plain ``def`` dependency in a worker thread, which costs more than it does.

Declared in this order by the routes, they check a request cheapest-first: what the caller accepts
(406), who the caller is (401), then the body's type (415), size (413) and syntax (400). Nothing is
written to the cluster before all of them pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from eb_operator.api.auth import Authenticator, Caller
from eb_operator.api.documents import dump_document, parse_document, stored_size
from eb_operator.api.errors import PayloadTooLarge
from eb_operator.api.gate import Gate
from eb_operator.api.media import Negotiated, negotiate_response, request_format
from eb_operator.api.metrics import Metrics
from eb_operator.api.service import BrokerService
from eb_operator.api.settings import ApiSettings
from eb_operator.api.wire import Dialect
from eb_operator.cluster.rest_store import RestStore


@dataclass
class AppState:
    """What the lifespan builds once per process and every request shares."""

    settings: ApiSettings
    metrics: Metrics
    store: RestStore
    service: BrokerService
    authenticator: Authenticator
    gate: Gate


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.eb
    return state


async def _settings(request: Request) -> ApiSettings:
    return _state(request).settings


async def _service(request: Request) -> BrokerService:
    return _state(request).service


async def _store(request: Request) -> RestStore:
    return _state(request).store


async def _gate(request: Request) -> Gate:
    return _state(request).gate


async def _metrics(request: Request) -> Metrics:
    return _state(request).metrics


async def _negotiate(request: Request) -> Negotiated:
    return negotiate_response(request.headers.get("accept"))


async def _caller(request: Request) -> Caller:
    return await _state(request).authenticator.authenticate(request.headers.get("authorization"))


async def _body(request: Request) -> dict[str, Any]:
    limits = _state(request).settings.body_limits()
    fmt = request_format(request.headers.get("content-type"))
    limit = limits.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge("The body is larger than {limit} bytes", {"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("The body is larger than {limit} bytes", {"limit": limit})
        chunks.append(chunk)
    doc = parse_document(b"".join(chunks), fmt, limits)
    if (stored := stored_size(doc)) > limits.max_stored_bytes:
        raise PayloadTooLarge(
            "The document would take {size} bytes stored in the cluster, more than {limit}",
            {"size": stored, "limit": limits.max_stored_bytes},
        )
    request.state.document = doc
    return doc


async def base_url(request: Request) -> str:
    """The absolute URL clients reach this service at, without a trailing slash."""
    settings = _state(request).settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    headers = request.headers
    scheme, host = request.url.scheme, headers.get("host") or request.url.netloc
    if settings.trust_forwarded:
        scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
        host = headers.get("x-forwarded-host", host).split(",")[0].strip()
    root = request.scope.get("root_path", "")
    return f"{scheme}://{host}{root}".rstrip("/")


SettingsDep = Annotated[ApiSettings, Depends(_settings)]
ServiceDep = Annotated[BrokerService, Depends(_service)]
StoreDep = Annotated[RestStore, Depends(_store)]
GateDep = Annotated[Gate, Depends(_gate)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
AcceptDep = Annotated[Negotiated, Depends(_negotiate)]
CallerDep = Annotated[Caller, Depends(_caller)]
BodyDep = Annotated[dict[str, Any], Depends(_body)]
BaseUrlDep = Annotated[str, Depends(base_url)]


def set_dialect(request: Request, dialect: Dialect) -> None:
    """Record the dialect of this exchange, so that errors are rendered in it too."""
    request.state.dialect = dialect


def ivoa_response(
    document: Any, media: Negotiated, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=dump_document(document, media.format),
        status_code=status_code,
        headers=headers,
        media_type=media.content_type,
    )
