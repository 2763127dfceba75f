"""The FastAPI application: routers, lifespan (the Kubernetes client and watches), metrics and the
one exception handler that turns every error into an IVOA structured error document (digest §6).
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from eb_operator.api import openapi
from eb_operator.api.auth import Authenticator, Review, TokenReviewer, parse_static_tokens
from eb_operator.api.auth import Caller as _Caller
from eb_operator.api.deps import AppState
from eb_operator.api.documents import DocumentError, dump_document
from eb_operator.api.errors import (
    ApiError,
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    ServiceUnavailable,
    UnsupportedMediaType,
    error_document,
)
from eb_operator.api.gate import Gate
from eb_operator.api.media import (
    JSON,
    YAML,
    NotAcceptableError,
    UnsupportedMediaTypeError,
    negotiate_response,
)
from eb_operator.api.metrics import Metrics, MetricsMiddleware
from eb_operator.api.routers import gate, logs, offersets, ops, sessions, vosi
from eb_operator.api.service import BrokerService
from eb_operator.api.settings import ApiSettings
from eb_operator.api.wire import Dialect, RequestError
from eb_operator.cluster.rest_store import InvalidError, NotFoundError, RestStore, StoreError

log = logging.getLogger(__name__)

StoreFactory = Callable[[ApiSettings], Awaitable[RestStore]]
DOCS_ASSETS = "/docs/assets"  # Swagger UI's JavaScript, CSS and favicon


def to_api_error(exc: BaseException, settings: ApiSettings | None = None) -> ApiError:
    """The one mapping from anything a request can raise to an ``ApiError`` (status + message)."""
    retry = settings.retry_after_seconds if settings else 2
    match exc:
        case ApiError():
            return exc
        case RequestError():
            return BadRequest(exc.template, exc.values, type_uri=exc.type_uri)
        case DocumentError():
            return BadRequest("Unreadable body: {reason}", {"reason": exc.reason, **exc.where})
        case UnsupportedMediaTypeError():
            return UnsupportedMediaType(
                "Unsupported Content-Type {type}: send application/yaml or application/json",
                {"type": exc.content_type},
            )
        case NotAcceptableError():
            return NotAcceptable(
                "Cannot answer in any type of Accept: {accept}; this service speaks application/yaml "
                "and application/json",
                {"accept": exc.accept},
            )
        case NotFoundError():
            return NotFound("Not found: {what}", {"what": str(exc)})
        case InvalidError():
            # the CRD's schema or CEL rules refused what the client asked for: name the field the
            # way the client wrote it (spec.request.resources.compute[0].cores -> resources/compute/0/cores)
            field, reason = exc.causes[0] if exc.causes else ("", str(exc))
            return BadRequest(
                "Invalid value at {path}: {reason}", {"path": client_path(field), "reason": reason}
            )
        case StoreError():
            return ServiceUnavailable(
                "The Kubernetes API server cannot be used: {reason}", {"reason": str(exc)}, retry_after=retry
            )
        case RequestValidationError():
            first = exc.errors()[0] if exc.errors() else {}
            path = "/".join(str(p) for p in first.get("loc", ()))
            return BadRequest(
                "Invalid value at {path}: {reason}", {"path": path, "reason": first.get("msg", "")}
            )
        case HTTPException(status_code=404):
            return NotFound("No such resource")
        case HTTPException(status_code=405):
            return MethodNotAllowed("Method not allowed here", headers=exc.headers)
        case HTTPException():
            other = ApiError(str(exc.detail), headers=exc.headers)
            other.status = exc.status_code
            return other
        case _:
            return InternalError("Internal error: {kind}", {"kind": type(exc).__name__})


def client_path(field: str) -> str:
    """An API-server field path of the stored request in the client's slash notation."""
    for prefix in ("spec.request.", "spec.request", "spec."):
        if field.startswith(prefix):
            field = field[len(prefix) :]
            break
    return re.sub(r"\[(\d+)\]", r"/\1", field).replace(".", "/").strip("/")


async def handle_error(request: Request, exc: Exception) -> Response:
    """The one exception handler: an IVOA error document in the negotiated format and dialect."""
    state: AppState | None = getattr(request.app.state, "eb", None)
    err = to_api_error(exc, state.settings if state else None)
    if err.status >= 500 and not isinstance(err, ServiceUnavailable):
        log.error("request failed method=%s path=%s", request.method, request.url.path, exc_info=exc)
    try:
        media = negotiate_response(request.headers.get("accept"))
    except NotAcceptableError:
        media = JSON if "json" in (request.headers.get("accept") or "") else YAML
    dialect = getattr(request.state, "dialect", Dialect.IVOA_STD)
    document = error_document(err, c26=Dialect.parse(dialect).calycopis)
    return Response(
        content=dump_document(document, media.format),
        status_code=err.status,
        headers=err.headers,
        media_type=media.content_type,
    )


def _reviewer(store: RestStore) -> TokenReviewer:
    async def review(token: str, audiences: Sequence[str]) -> Review:
        result = await store.review_token(token, audiences)
        if not result.authenticated:
            return Review(False, error=result.error)
        return Review(True, _Caller(result.username, result.uid, result.groups))

    return review


async def _connect(settings: ApiSettings) -> RestStore:
    return await RestStore.connect(settings.namespace, settings.kubeconfig)


def create_app(settings: ApiSettings | None = None, store_factory: StoreFactory = _connect) -> FastAPI:
    """The REST service. Settings default to the environment (``EB_API_*``)."""
    settings = settings or ApiSettings()
    metrics = Metrics()
    static_tokens = parse_static_tokens(settings.token_lines())  # a broken Secret fails here, at start
    session_key = settings.key()  # likewise a short or unreadable session key

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gc.freeze()  # the imported modules live as long as the process: out of every collection
        store = await store_factory(settings)
        await store.start()
        authenticator = Authenticator(
            static_tokens=static_tokens,
            reviewer=_reviewer(store) if settings.token_review else None,
            audiences=settings.token_audiences,
            allow_anonymous=settings.allow_anonymous,
            cache_seconds=settings.token_cache_seconds,
            cache_size=settings.token_cache_size,
        )
        app.state.eb = AppState(
            settings,
            metrics,
            store,
            BrokerService(store, settings, metrics),
            authenticator,
            Gate(store, authenticator, session_key, settings.login_seconds),
        )
        log.info("api ready namespace=%s anonymous=%s", settings.namespace, settings.allow_anonymous)
        try:
            yield
        finally:
            await store.close()

    # /docs is FastAPI's Swagger UI page with its JavaScript and CSS served from here (a pinned copy
    # shipped by the fastapi-offline package), not from a CDN: it renders on sites without internet.
    app = FastAPIOffline(
        title="IVOA ExecutionBroker",
        summary="Time-slotted offers that reserve real Kubernetes capacity "
        "(IVOA ExecutionBroker; ivoa-std and Calycopis 2026 dialects)",
        version="1.0",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        static_url=DOCS_ASSETS,
        redirect_slashes=False,
    )
    for router in (offersets.router, sessions.router, logs.router, gate.router, vosi.router, ops.router):
        app.include_router(router)
    for exc_type in (
        ApiError,
        RequestError,
        DocumentError,
        UnsupportedMediaTypeError,
        NotAcceptableError,
        StoreError,
        RequestValidationError,
        HTTPException,
        Exception,
    ):
        app.add_exception_handler(exc_type, handle_error)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            app.openapi_schema = openapi.install(spec)
        return app.openapi_schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app
