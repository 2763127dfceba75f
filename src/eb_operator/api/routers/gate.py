"""The edge gate of sessions people open in a browser (``eb_operator.api.gate``): login links for
the owner, and the check the ingress controller makes before every request to a session."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from eb_operator.api import openapi
from eb_operator.api.deps import AcceptDep, CallerDep, GateDep, ServiceDep, ivoa_response, set_dialect
from eb_operator.api.errors import Conflict
from eb_operator.model.times import format_instant

router = APIRouter(tags=["browser"])

_TEXT = {"text/plain": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}}


@router.post(
    "/sessions/{uuid}/login",
    operation_id="SessionLogin",
    summary="A one-time link that opens the session in a browser (it sets a cookie for the session's path)",
    responses={
        200: {"description": "The login link and when it expires", "content": openapi.content("LoginLink")},
        **openapi.errors(401, 404, 406, 503),
        409: {
            "description": "The session has no route (the platform has none) or is not running",
            "content": openapi.content("ErrorDocument"),
        },
    },
)
async def login(
    request: Request, uuid: str, media: AcceptDep, caller: CallerDep, service: ServiceDep, gate: GateDep
) -> Response:
    ref = await service.find_session(caller, uuid)
    set_dialect(request, ref.dialect)
    if not ref.written:
        raise Conflict("Session {uuid} is an offer: accept it first", {"uuid": uuid})
    url, expires = await gate.mint(ref.execution)
    return ivoa_response({"url": url, "expires": format_instant(expires)}, media)


@router.get(
    "/gate/{uuid}",
    summary="For the ingress controller: may this request (X-Forwarded-*) reach the session? "
    "200 lets it through; anything else goes back to the client as it is",
    responses={
        200: {
            "description": "Through: X-Eb-User (and a notebook's Authorization) go upstream",
            "content": _TEXT,
        },
        302: {"description": "A login link redeemed: the cookie is set, back to the URL without the code"},
        401: {"description": "No valid cookie or token (or a used or expired login link)", "content": _TEXT},
        403: {"description": "Someone other than the session's owner", "content": _TEXT},
        404: {"description": "No such session, or it is not running", "content": _TEXT},
        503: {"description": "The API has no session key", "content": _TEXT},
    },
)
async def gate_check(request: Request, uuid: str, gate: GateDep) -> Response:
    verdict = await gate.check(uuid, request.headers)
    headers = dict(verdict.headers)
    media = headers.pop("Content-Type", "text/plain; charset=utf-8")
    return Response(verdict.text, status_code=verdict.status, headers=headers, media_type=media)
