"""The stager's command line and its pure parts, and HTTP staging against a server on 127.0.0.1
(success, and failures that name their cause). S3, WebDAV and Rucio against real servers are in
tests/integration/stager/."""

from __future__ import annotations

import base64
import http.server
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from eb_operator.stager import s3, web
from eb_operator.stager.cli import main
from eb_operator.stager.common import StageError, Tally, files_under, safe_join

pytestmark = pytest.mark.unit


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
    assert main(["http", f"{base}/cat.csv", str(dest / "sub")]) == 0
    assert (dest / "sub" / "cat.csv").read_text() == "ra,dec\n1,2\n"
    assert not list((dest / "sub").glob("*.part"))
    assert capsys.readouterr().out.startswith("staged 1 files, 11 bytes in ")


def test_in_is_the_default_direction(served: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    base, dest = served
    assert main(["in", "http", f"{base}/cat.csv", str(dest)]) == 0
    assert (dest / "cat.csv").read_text() == "ra,dec\n1,2\n"


def test_a_failed_download_exits_1_naming_the_url_and_the_cause(
    served: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, dest = served
    assert main(["http", f"{base}/missing.fits", str(dest)]) == 1
    assert capsys.readouterr().err == f"staging failed: GET {base}/missing.fits: HTTP 404 File not found\n"
    assert not list(dest.glob("*"))


def test_a_refused_connection_is_a_failure_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["http", "http://127.0.0.1:9/x", str(tmp_path)]) == 1
    assert "staging failed: GET http://127.0.0.1:9/x: cannot connect: " in capsys.readouterr().err


def test_the_failure_line_is_also_the_termination_message(
    served: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, dest = served
    log = tmp_path / "termination-log"
    log.write_text("")
    assert main(["http", f"{base}/missing.fits", str(dest)], termination_log=str(log)) == 1
    assert log.read_text() == f"staging failed: GET {base}/missing.fits: HTTP 404 File not found"
    assert capsys.readouterr().err == log.read_text() + "\n"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([], id="nothing"),
        pytest.param(["ftp", "x", "y"], id="an unknown kind"),
        pytest.param(["s3", "endpoint", "bucket"], id="too few arguments"),
        pytest.param(["out", "rucio", "h", "s:n", "/d"], id="a kind that cannot go out"),
        pytest.param(["in", "webdav", "u", "/d"], id="a kind that cannot come in"),
        pytest.param(["s3", "--addressing-style", "odd", "e", "b", "k", "/d"], id="an unknown addressing"),
    ],
)
def test_bad_usage_exits_2_with_the_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == (1 if argv[:1] in (["out"], ["in"]) else 2), err
    assert "stager out s3" in err


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        pytest.param("", "sub/out.fits", id="no prefix: the bucket's root"),
        pytest.param("results", "results/sub/out.fits", id="a prefix is a folder"),
        pytest.param("results/", "results/sub/out.fits", id="with its slash the same"),
        pytest.param("/", "sub/out.fits", id="a lone slash is the root"),
    ],
)
def test_object_keys_keep_the_path_below_the_directory(prefix: str, key: str) -> None:
    assert s3.object_key(prefix, "sub/out.fits") == key


def test_file_urls_are_quoted_below_the_base() -> None:
    assert web.file_url("https://dav.example.org/r/", "a dir/x#1.fits") == (
        "https://dav.example.org/r/a%20dir/x%231.fits"
    )


def test_crc32_whole_and_composite_as_s3_reports_them(tmp_path: Path) -> None:
    data = b"SIMPLE  =                    T" * 1000
    path = tmp_path / "out.fits"
    path.write_bytes(data)
    whole, composite = s3.crc32s(str(path), len(data))
    crc = zlib.crc32(data)
    assert whole == base64.b64encode(crc.to_bytes(4, "big")).decode()
    one_part = zlib.crc32(crc.to_bytes(4, "big"))
    assert composite == base64.b64encode(one_part.to_bytes(4, "big")).decode() + "-1"


def test_files_under_a_directory_in_order_without_links(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.fits").write_bytes(b"22")
    (tmp_path / "a.fits").write_bytes(b"1")
    (tmp_path / "link").symlink_to("/etc/passwd")
    assert list(files_under(str(tmp_path))) == [
        (str(tmp_path / "a.fits"), "a.fits", 1),
        (str(tmp_path / "b" / "2.fits"), "b/2.fits", 2),
    ]
    with pytest.raises(StageError, match="is not a directory"):
        list(files_under(str(tmp_path / "a.fits")))


def test_paths_outside_the_destination_are_refused(tmp_path: Path) -> None:
    assert safe_join(str(tmp_path), "a/b.fits") == str(tmp_path / "a" / "b.fits")
    with pytest.raises(StageError, match="refusing to write outside"):
        safe_join(str(tmp_path), "../escape")


def test_the_summary_says_what_could_not_be_verified() -> None:
    tally = Tally()
    tally.add(10)
    assert tally.summary("staged out").startswith("staged out 1 files, 10 bytes in ")
    tally.add(5, verified=False)
    summary = tally.summary("staged out")
    assert summary.endswith("; 1 not verified (the server reports neither size nor checksum)")
