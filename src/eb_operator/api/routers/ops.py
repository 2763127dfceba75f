"""Operations: liveness, readiness and Prometheus metrics (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from eb_operator.api import openapi
from eb_operator.api.deps import MetricsDep, StoreDep
from eb_operator.api.errors import ServiceUnavailable
from eb_operator.api.metrics import CONTENT_TYPE_LATEST
from eb_operator.cluster.rest_store import StoreError

router = APIRouter(tags=["operations"])

_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}


@router.get(
    "/healthz",
    summary="Liveness: the process serves HTTP",
    response_class=PlainTextResponse,
    responses={200: {"description": "alive", **_TEXT}},
)
async def healthz() -> str:
    return "ok\n"


@router.get(
    "/readyz",
    summary="Readiness: the API server answers and the watches run",
    response_class=PlainTextResponse,
    responses={200: {"description": "ready", **_TEXT}, **openapi.errors(503)},
)
async def readyz(store: StoreDep) -> str:
    try:
        await store.ping()
    except StoreError as e:
        raise ServiceUnavailable("Not ready: {reason}", {"reason": str(e)}, retry_after=5) from e
    if not store.watching:
        raise ServiceUnavailable("Not ready: the watches have not listed yet", retry_after=1)
    return "ok\n"


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", **_TEXT}},
)
async def metrics(m: MetricsDep) -> Response:
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)
