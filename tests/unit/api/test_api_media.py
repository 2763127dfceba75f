"""Content negotiation as digest §2.2 says, one table per direction."""

from __future__ import annotations

import pytest

from eb_operator.api.media import (
    Format,
    NotAcceptableError,
    UnsupportedMediaTypeError,
    negotiate_response,
    request_format,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        pytest.param(None, "application/yaml", id="no Accept header gives YAML"),
        pytest.param("", "application/yaml", id="an empty Accept header gives YAML"),
        pytest.param("*/*", "application/yaml", id="only a wildcard gives YAML"),
        pytest.param("application/*", "application/yaml", id="application wildcard gives YAML"),
        pytest.param("application/json", "application/json", id="JSON when asked for JSON"),
        pytest.param("application/yaml", "application/yaml", id="YAML when asked for YAML"),
        pytest.param("application/x-yaml", "application/x-yaml", id="the x-yaml alias is answered as asked"),
        pytest.param("text/yaml", "text/yaml", id="the text/yaml alias is answered as asked"),
        pytest.param("application/json, application/yaml", "application/yaml", id="a tie goes to YAML"),
        pytest.param("application/yaml, application/json", "application/yaml", id="a tie in either order"),
        pytest.param("application/json;q=0.9, application/yaml;q=0.5", "application/json", id="q decides"),
        pytest.param("application/json;q=0.5, application/yaml;q=0.9", "application/yaml", id="q both ways"),
        pytest.param("application/json, */*;q=0.1", "application/json", id="a low wildcard does not win"),
        pytest.param("application/json, */*", "application/json", id="an explicit type beats a wildcard"),
        pytest.param("application/yaml;q=0, */*", "application/x-yaml", id="q=0 excludes a type"),
        pytest.param("application/*;q=0, text/yaml", "text/yaml", id="q=0 on a range excludes its types"),
        pytest.param("APPLICATION/JSON", "application/json", id="media types are case-insensitive"),
        pytest.param("application/json; charset=utf-8", "application/json", id="parameters are ignored"),
        pytest.param(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "application/yaml",
            id="a browser gets YAML",
        ),
        pytest.param("nonsense", "application/yaml", id="an unreadable header counts as none"),
        pytest.param("application/json;q=abc, application/yaml;q=0.2", "application/yaml", id="bad q"),
    ],
)
def test_response_format(accept: str | None, media_type: str) -> None:
    assert negotiate_response(accept).media_type == media_type


@pytest.mark.parametrize(
    "accept",
    [
        pytest.param("application/xml", id="XML only"),
        pytest.param("text/html", id="HTML only"),
        pytest.param("application/json;q=0, application/yaml;q=0", id="both refused with q=0"),
        pytest.param("*/*;q=0", id="wildcard refused"),
        pytest.param("image/*", id="a foreign wildcard"),
    ],
)
def test_nothing_acceptable_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptableError):
        negotiate_response(accept)


def test_content_type_header_value_carries_charset() -> None:
    assert negotiate_response("application/json").content_type == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [
        pytest.param(None, Format.YAML, id="no Content-Type is YAML"),
        pytest.param("", Format.YAML, id="an empty Content-Type is YAML"),
        pytest.param("application/json", Format.JSON, id="JSON"),
        pytest.param("application/json; charset=utf-8", Format.JSON, id="JSON with charset"),
        pytest.param("application/yaml", Format.YAML, id="YAML"),
        pytest.param("application/x-yaml", Format.YAML, id="x-yaml alias"),
        pytest.param("text/yaml; charset=UTF-8", Format.YAML, id="text/yaml alias"),
        pytest.param("application/json, application/yaml", Format.YAML, id="both declared is YAML"),
    ],
)
def test_request_format(content_type: str | None, fmt: Format) -> None:
    assert request_format(content_type) is fmt


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/xml", id="XML is not implemented"),
        pytest.param("text/plain", id="plain text"),
        pytest.param("application/x-www-form-urlencoded", id="curl -d default"),
        pytest.param("multipart/form-data; boundary=x", id="multipart"),
        pytest.param("application/json; charset=latin-1", id="a charset other than UTF-8"),
    ],
)
def test_unsupported_body_type_is_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        request_format(content_type)
