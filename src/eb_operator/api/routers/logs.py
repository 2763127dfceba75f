"""A session's log, for its owner (plain text; ``tail``; ``follow`` streams while it runs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from eb_operator.api import openapi
from eb_operator.api.deps import CallerDep, ServiceDep
from eb_operator.api.logs import SessionLogs

router = APIRouter(tags=["sessions"])

TEXT = "text/plain; charset=utf-8"
_LOG: openapi.Responses = {
    200: {"description": "The workload's log", "content": {"text/plain": {"schema": {"type": "string"}}}}
}


@router.get(
    "/sessions/{uuid}/logs",
    operation_id="ExecutionSessionLogs",
    summary="What the session's workload printed (its container's log); follow=true streams it while it runs",
    response_class=PlainTextResponse,
    responses={**_LOG, **openapi.errors(400, 401, 404, 503)},
)
async def get_logs(
    uuid: str,
    caller: CallerDep,
    service: ServiceDep,
    tail: Annotated[int | None, Query(ge=0, le=1_000_000, description="Only the last N lines.")] = None,
    follow: Annotated[bool, Query(description="Stream new lines until the container ends.")] = False,
) -> Response:
    logs = SessionLogs(service)
    if follow:
        stream = await logs.follow(caller, uuid, tail)
        return StreamingResponse(stream, media_type=TEXT, headers={"Cache-Control": "no-store"})
    text = await logs.text(caller, uuid, tail)
    return PlainTextResponse(text, media_type=TEXT, headers={"Cache-Control": "no-store"})
