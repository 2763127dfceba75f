"""IVOA VOSI: ``/availability`` (VOSI-availability 1.0) and ``/capabilities`` (VOSI-capabilities 1.0).

Both are public (no token needed) and always XML, as VOSI defines them.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from fastapi import APIRouter
from fastapi.responses import Response

from eb_operator.api import openapi
from eb_operator.api.deps import BaseUrlDep, StoreDep
from eb_operator.cluster.rest_store import StoreError

router = APIRouter(tags=["VOSI"])

XML = "text/xml; charset=utf-8"
EB_STANDARD_ID = "ivo://ivoa.net/std/ExecutionBroker"


_XML_DOC: openapi.Responses = {
    200: {"description": "VOSI XML document", "content": {"text/xml": {"schema": {"type": "string"}}}}
}


@router.get(
    "/availability",
    summary="VOSI availability: is the service usable now",
    response_class=Response,
    responses=_XML_DOC,
)
async def availability(store: StoreDep) -> Response:
    try:
        await store.ping()
        available, note = True, "accepting requests"
    except StoreError as e:
        available, note = False, f"the Kubernetes API server cannot be used: {e}"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n'
        f"  <vosi:available>{'true' if available else 'false'}</vosi:available>\n"
        f"  <vosi:note>{escape(note)}</vosi:note>\n"
        "</vosi:availability>\n"
    )
    return Response(body, media_type=XML)


def _capability(standard_id: str, url: str, use: str, extra: str = "") -> str:
    return (
        f'  <capability standardID="{standard_id}">\n'
        f'    <interface xsi:type="vs:ParamHTTP" role="std"{extra}>\n'
        f'      <accessURL use="{use}">{escape(url)}</accessURL>\n'
        "    </interface>\n"
        "  </capability>\n"
    )


@router.get(
    "/capabilities",
    summary="VOSI capabilities: what this service offers",
    response_class=Response,
    responses=_XML_DOC,
)
async def capabilities(base: BaseUrlDep) -> Response:
    eb = (
        f'  <capability standardID="{EB_STANDARD_ID}">\n'
        '    <interface xsi:type="vs:ParamHTTP" role="std" version="1.0">\n'
        f'      <accessURL use="base">{escape(base)}</accessURL>\n'
        '      <securityMethod standardID="ivo://ivoa.net/sso#token"/>\n'
        "    </interface>\n"
        "  </capability>\n"
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"'
        ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        + _capability("ivo://ivoa.net/std/VOSI#capabilities", f"{base}/capabilities", "full")
        + _capability("ivo://ivoa.net/std/VOSI#availability", f"{base}/availability", "full")
        + eb
        + "</vosi:capabilities>\n"
    )
    return Response(body, media_type=XML)
