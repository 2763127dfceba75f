"""The offer-time data probe against an HTTP server on 127.0.0.1: sizes for the lead time, and a
NO with the cause for data that is missing or unreachable. (S3 and Rucio are probed against
real servers in tests/integration/stager/test_probe_servers.py.)"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.wire import docker, notebook, request, s3_data, simple_data

from eb_operator.cluster.probe import endpoint_of, probe_request
from eb_operator.model.platform import PlatformPolicy

pytestmark = pytest.mark.unit


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "a.fits").write_bytes(b"x" * 1000)
    (tmp_path / "b.fits").write_bytes(b"y" * 24)
    (tmp_path / "nb.ipynb").write_text("{}")

    def handler(*args: Any) -> _Files:
        return _Files(*args, directory=str(tmp_path))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_the_sizes_of_reachable_data_are_summed_and_a_notebook_does_not_count(base: str) -> None:
    req = request(
        notebook(f"{base}/nb.ipynb"),
        data=[simple_data("a", f"{base}/a.fits"), simple_data("b", f"{base}/b.fits")],
    )
    found = await probe_request(req, PlatformPolicy())
    assert found.messages == []
    assert found.bytes == 1024


async def test_missing_and_unreachable_data_are_reasons_for_no(base: str) -> None:
    req = request(
        notebook(f"{base}/gone.ipynb"),
        data=[simple_data("a", f"{base}/missing.fits"), simple_data("b", "http://127.0.0.1:9/x")],
    )
    found = await probe_request(req, PlatformPolicy(), timeout=2)
    messages = [(m.type, m.path, m.message) for m in found.messages]
    assert messages[:2] == [
        (
            "urn:ivoa:eb:unreachable-endpoint",
            "executable/location",
            f"executable/location: {base}/gone.ipynb answered HTTP 404 File not found",
        ),
        (
            "urn:ivoa:eb:unreachable-endpoint",
            "resources/data/0/location",
            f"resources/data/0/location: {base}/missing.fits answered HTTP 404 File not found",
        ),
    ]
    assert messages[2][1] == "resources/data/1/location"
    assert messages[2][2].startswith(
        "resources/data/1/location: the broker cannot reach http://127.0.0.1:9/x: "
    )
    assert found.bytes is None


async def test_nothing_to_probe_and_s3_endpoints_the_platform_lacks_are_left_to_the_judge() -> None:
    assert (await probe_request(request(docker()), PlatformPolicy())).messages == []
    assert (await probe_request(None, PlatformPolicy())).bytes is None
    found = await probe_request(
        request(docker(), data=[s3_data("d", endpoint="http://127.0.0.1:9")]), PlatformPolicy()
    )
    assert found.messages == []  # not configured: the judge says so, without I/O


def test_endpoints_match_without_case_or_a_trailing_slash() -> None:
    policy = PlatformPolicy.model_validate({"dataEndpoints": [{"endpoint": "HTTP://S3.Example.org:9000/"}]})
    assert endpoint_of("http://s3.example.org:9000", policy) is policy.data_endpoints[0]
    assert endpoint_of("http://s3.example.org:9001", policy) is None
