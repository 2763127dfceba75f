"""The stager that runs in init containers: AWS SigV4 against AWS's published examples, and HTTP
staging against a server on 127.0.0.1 (success, and a failure that names its cause)."""

from __future__ import annotations

import datetime
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from eb_operator import stager

pytestmark = pytest.mark.unit

KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WHEN = datetime.datetime(2013, 5, 24, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (
            "https://examplebucket.s3.amazonaws.com/?lifecycle",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ],
    ids=["GET bucket lifecycle", "GET bucket (list objects)"],
)
def test_sigv4_matches_the_aws_documentation_examples(url: str, signature: str) -> None:
    headers = stager.sign_v4("GET", url, KEY, SECRET, now=WHEN)
    assert headers["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={KEY}/20130524/us-east-1/s3/aws4_request, "
        f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"
    )


def test_s3_urls_are_path_style_and_quoted() -> None:
    assert stager.s3_url("http://h:1/", "b", "a dir/x.fits") == "http://h:1/b/a%20dir/x.fits"
    assert stager.s3_url("http://h:1", "b", query={"prefix": "p/", "list-type": "2"}) == (
        "http://h:1/b?list-type=2&prefix=p%2F"
    )


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "cat.csv").write_text("ra,dec\n1,2\n")

    def handler(*args: object) -> _Files:
        return _Files(*args, directory=str(root))  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "dest"
    finally:
        server.shutdown()
        server.server_close()


def test_http_data_is_written_under_its_file_name(
    served: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, dest = served
    assert stager.main(["http", f"{base}/cat.csv", str(dest / "sub")]) == 0
    assert (dest / "sub" / "cat.csv").read_text() == "ra,dec\n1,2\n"
    assert not list((dest / "sub").glob("*.part"))
    assert capsys.readouterr().out.startswith("staged 1 files, 11 bytes in ")


def test_a_failed_download_exits_1_naming_the_url_and_the_cause(
    served: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, dest = served
    assert stager.main(["http", f"{base}/missing.fits", str(dest)]) == 1
    assert capsys.readouterr().err == f"staging failed: GET {base}/missing.fits: HTTP 404 File not found\n"


def test_a_refused_connection_is_a_failure_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert stager.main(["http", "http://127.0.0.1:9/x", str(tmp_path)]) == 1
    assert "staging failed: GET http://127.0.0.1:9/x: cannot connect: " in capsys.readouterr().err
