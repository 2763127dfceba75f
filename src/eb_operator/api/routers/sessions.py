"""E3, E4 and E5: read a session, change its phase, and direct execution (C26)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from eb_operator.api import openapi, views
from eb_operator.api.deps import (
    AcceptDep,
    BaseUrlDep,
    BodyDep,
    CallerDep,
    ServiceDep,
    ivoa_response,
    set_dialect,
)
from eb_operator.api.errors import NotFound
from eb_operator.api.wire import Dialect

router = APIRouter(tags=["sessions"])

_SESSION: openapi.Responses = {
    200: {"description": "The session", "content": openapi.content("ExecutionSessionResponse")}
}


@router.get(
    "/sessions/{uuid}",
    operation_id="ExecutionSessionGet",
    summary="A session (an offer, or what it became): phase, schedule, resources and options",
    responses={**_SESSION, **openapi.errors(401, 404, 406, 503)},
)
async def get_session(
    request: Request, uuid: str, media: AcceptDep, caller: CallerDep, service: ServiceDep, base: BaseUrlDep
) -> Response:
    answer = await service.get_session(caller, uuid, base)
    set_dialect(request, answer.dialect)
    return ivoa_response(answer.rendered(), media)


@router.get(
    "/sessions/{uuid}/storage/{storage}",
    operation_id="ExecutionSessionStorage",
    summary="One storage resource of a session: its uuid, size, lifetime, expiry and deliveries "
    "(a later request names it by this href to mount it again)",
    responses={
        200: {"description": "The storage item", "content": openapi.content("StorageResource")},
        **openapi.errors(401, 404, 406, 503),
    },
)
async def get_session_storage(
    request: Request,
    uuid: str,
    storage: str,
    media: AcceptDep,
    caller: CallerDep,
    service: ServiceDep,
    base: BaseUrlDep,
) -> Response:
    answer = await service.get_session(caller, uuid, base)
    item = views.storage_document(answer.document, storage)
    if item is None:
        raise NotFound("No storage {storage} in session {uuid}", {"storage": storage, "uuid": uuid})
    set_dialect(request, answer.dialect)
    return ivoa_response(item, media)


@router.post(
    "/sessions/{uuid}",
    operation_id="ExecutionSessionPost",
    summary="Change a session's phase: ACCEPTED or REJECTED an offer, CANCELLED an accepted session",
    responses={**_SESSION, **openapi.errors(400, 401, 404, 406, 409, 413, 415, 503)},
    openapi_extra=openapi.request_body("UpdateRequest"),
)
async def post_session(
    request: Request,
    uuid: str,
    media: AcceptDep,
    caller: CallerDep,
    body: BodyDep,
    service: ServiceDep,
    base: BaseUrlDep,
) -> Response:
    session = await service.find_session(caller, uuid, seen=True)
    set_dialect(request, session.dialect)
    answer = await service.update_session(session, uuid, body, base)
    return ivoa_response(answer.rendered(), media)


@router.post(
    "/direct",
    operation_id="DirectExecution",
    summary="C26 direct execution: one session, accepted at once (303 to it), or 400 with a FAILED session",
    status_code=303,
    responses={
        303: {
            "description": "See Other: `Location` is the session's `href`; the body is the session",
            "headers": {"Location": {"required": True, "schema": {"type": "string", "format": "uri"}}},
            "content": openapi.content("ExecutionSessionResponse"),
        },
        **openapi.errors(400, 401, 406, 413, 415, 429, 503),
    },
    openapi_extra=openapi.request_body("ExecutionRequest"),
)
async def post_direct(
    request: Request,
    media: AcceptDep,
    caller: CallerDep,
    body: BodyDep,
    service: ServiceDep,
    base: BaseUrlDep,
) -> Response:
    set_dialect(request, Dialect.C26)
    answer, satisfied = await service.direct(caller, body, base)
    if not satisfied:
        return ivoa_response(answer.rendered(), media, 400)
    return ivoa_response(answer.rendered(), media, 303, {"Location": answer.href})
