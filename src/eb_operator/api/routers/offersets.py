"""E1, E1a and E2: create an offer set (``/offersets``, C26 alias ``/requests``) and read one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from eb_operator.api import openapi
from eb_operator.api.deps import (
    AcceptDep,
    BaseUrlDep,
    BodyDep,
    CallerDep,
    ServiceDep,
    SettingsDep,
    ivoa_response,
    set_dialect,
)
from eb_operator.api.wire import Dialect, guess_dialect
from eb_operator.model.federation import VIA_HEADER

router = APIRouter(tags=["offer sets"])

_CREATED: openapi.Responses = {
    303: {
        "description": "See Other: `Location` is the new set's absolute `href`; the body is the "
        "OfferSetResponse (also when the answer is NO)",
        "headers": {"Location": {"required": True, "schema": {"type": "string", "format": "uri"}}},
        "content": openapi.content("OfferSetResponse"),
    },
    200: {
        "description": "The OfferSetResponse (when configured to answer 200)",
        "content": openapi.content("OfferSetResponse"),
    },
}


async def _create(
    request: Request,
    media: AcceptDep,
    caller: CallerDep,
    body: BodyDep,
    service: ServiceDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    hint: Dialect | None,
) -> Response:
    set_dialect(request, hint or guess_dialect(body))
    via = request.headers.get(VIA_HEADER)
    answer = await service.create_offerset(caller, body, hint, base, via)
    set_dialect(request, answer.dialect)
    headers = {"Location": answer.href} if settings.create_status == 303 else None
    return ivoa_response(answer.rendered(), media, settings.create_status, headers)


@router.post(
    "/offersets",
    operation_id="OfferSetPost",
    summary="Ask when and where a request can run; the answer is an offer set",
    status_code=303,
    responses={**_CREATED, **openapi.errors(400, 401, 406, 413, 415, 429, 503, 508)},
    openapi_extra=openapi.request_body("OfferSetRequest"),
)
async def post_offerset(
    request: Request,
    media: AcceptDep,
    caller: CallerDep,
    body: BodyDep,
    service: ServiceDep,
    settings: SettingsDep,
    base: BaseUrlDep,
) -> Response:
    return await _create(request, media, caller, body, service, settings, base, None)


@router.post(
    "/requests",
    operation_id="ExecutionRequest",
    summary="The Calycopis 2026 name of POST /offersets (body: ExecutionRequest)",
    status_code=303,
    responses={**_CREATED, **openapi.errors(400, 401, 406, 413, 415, 429, 503, 508)},
    openapi_extra=openapi.request_body("ExecutionRequest"),
)
async def post_request(
    request: Request,
    media: AcceptDep,
    caller: CallerDep,
    body: BodyDep,
    service: ServiceDep,
    settings: SettingsDep,
    base: BaseUrlDep,
) -> Response:
    return await _create(request, media, caller, body, service, settings, base, Dialect.C26)


@router.get(
    "/offersets/{uuid}",
    operation_id="OfferSetGet",
    summary="An offer set, each offer in its current phase",
    responses={
        200: {"description": "The OfferSetResponse", "content": openapi.content("OfferSetResponse")},
        **openapi.errors(401, 404, 406, 503),
    },
)
async def get_offerset(
    request: Request, uuid: str, media: AcceptDep, caller: CallerDep, service: ServiceDep, base: BaseUrlDep
) -> Response:
    answer = await service.get_offerset(caller, uuid, base)
    set_dialect(request, answer.dialect)
    return ivoa_response(answer.rendered(), media)
