"""The one error mapping (digest §6): every error becomes a structured IVOA error document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import yaml
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException

from eb_operator.api.app import handle_error, to_api_error
from eb_operator.api.documents import DocumentError
from eb_operator.api.errors import ApiError, Conflict, ServiceUnavailable, Unauthorized, error_document
from eb_operator.api.media import NotAcceptableError, UnsupportedMediaTypeError
from eb_operator.api.wire import Dialect
from eb_operator.cluster.rest_store import NotFoundError, StoreError
from eb_operator.model.errors import RequestError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        pytest.param(
            RequestError(("resources", "compute", 0, "cores"), "must be an object"), 400, id="model 400"
        ),
        pytest.param(DocumentError("invalid YAML", {"line": "3"}), 400, id="unreadable body 400"),
        pytest.param(UnsupportedMediaTypeError("text/plain"), 415, id="media type 415"),
        pytest.param(NotAcceptableError("application/xml"), 406, id="accept 406"),
        pytest.param(NotFoundError("offersets/x"), 404, id="store not found 404"),
        pytest.param(StoreError("connection refused"), 503, id="API server down 503"),
        pytest.param(HTTPException(404), 404, id="no route 404"),
        pytest.param(HTTPException(405, headers={"Allow": "GET"}), 405, id="wrong method 405"),
        pytest.param(Unauthorized("no token"), 401, id="401"),
        pytest.param(RuntimeError("boom"), 500, id="anything else 500"),
    ],
)
def test_status_of_each_error(exc: Exception, status: int) -> None:
    assert to_api_error(exc).status == status


def test_bad_field_path_reaches_the_message() -> None:
    err = to_api_error(
        RequestError(("resources", "compute", 0, "cores", "requested", "min"), "must be an integer")
    )
    item = err.item()
    assert item["values"]["path"] == "resources/compute/0/cores/requested/min"
    assert "resources/compute/0/cores/requested/min" in item["message"]
    assert item["level"] == "ERROR"


def test_error_document_ivoa_std() -> None:
    doc = error_document(
        Conflict("Cannot change phase from {from} to {to}", {"from": "EXPIRED", "to": "ACCEPTED"}), c26=False
    )
    [item] = doc["messages"]
    assert item["type"] == "urn:ivoa:eb:invalid-transition"
    assert item["message"] == "Cannot change phase from EXPIRED to ACCEPTED"
    assert item["values"] == {"from": "EXPIRED", "to": "ACCEPTED"}
    assert item["time"].endswith("Z")


def test_error_document_c26_goes_under_meta_with_kind() -> None:
    doc = error_document(ApiError("x"), c26=True)
    [item] = doc["meta"]["messages"]
    assert "kind" in item
    assert "type" not in item


def test_conflict_keeps_the_whole_session_and_adds_the_message() -> None:
    session = {
        "uuid": "u",
        "phase": "EXPIRED",
        "options": [],
        "messages": [{"level": "INFO", "message": "hi"}],
    }
    doc = error_document(Conflict("no", document=session), c26=False)
    assert doc["phase"] == "EXPIRED"
    assert [m["level"] for m in doc["messages"]] == ["INFO", "ERROR"]
    assert session["messages"] == [{"level": "INFO", "message": "hi"}], "the original is not changed"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.add_exception_handler(Exception, handle_error)
    app.add_exception_handler(HTTPException, handle_error)

    @app.get("/busy")
    async def busy() -> None:
        raise ServiceUnavailable("later", retry_after=3)

    @app.get("/c26")
    async def c26(request: Request) -> None:
        request.state.dialect = Dialect.C26
        raise RequestError("compute/cores/min", "must be an integer")

    @app.get("/auth")
    async def auth() -> None:
        raise Unauthorized("who are you")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_handler_negotiates_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/busy", headers={"Accept": "application/json"})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "3"
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(r.content)["messages"][0]["level"] == "ERROR"


async def test_handler_defaults_to_yaml(client: httpx.AsyncClient) -> None:
    r = await client.get("/busy")
    assert r.headers["content-type"] == "application/yaml; charset=utf-8"
    assert "level: ERROR" in r.text


async def test_handler_renders_errors_in_the_callers_dialect(client: httpx.AsyncClient) -> None:
    r = await client.get("/c26", headers={"Accept": "application/json"})
    assert r.status_code == 400
    assert r.json()["meta"]["messages"][0]["values"]["path"] == "compute/cores/min"


async def test_unauthorized_challenges_for_a_bearer_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/auth")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_route_is_a_structured_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/nowhere", headers={"Accept": "application/json"})
    assert r.status_code == 404
    assert r.json()["messages"][0]["type"] == "urn:ivoa:eb:not-found"


async def test_406_error_body_is_still_readable(client: httpx.AsyncClient) -> None:
    """An error for a caller who accepts nothing we speak still comes as a document it can read:
    YAML, the default, holding the structured IVOA error."""
    r = await client.get("/nowhere", headers={"Accept": "application/xml"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/yaml; charset=utf-8"
    doc = yaml.safe_load(r.content)
    [item] = doc["messages"]
    assert item["type"] == "urn:ivoa:eb:not-found"
    assert item["level"] == "ERROR"
    assert item["message"] == "No such resource"
