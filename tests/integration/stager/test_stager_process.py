"""The stager as a process (``python3 -m eb_operator.stager``, as the eb-stager image runs it)
against real servers on 127.0.0.1: versitygw for S3, WsgiDAV for HTTP PUT and WebDAV, a Rucio
server. Uploads arrive with the same bytes and checksum; wrong buckets, credentials and endpoints
exit 1 with one line naming the location and the cause."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from tests.support.kube import unique_name
from tests.support.rucio_server import Rucio
from tests.support.servers import DAV_PASSWORD, DAV_USER, S3, S3_KEY, S3_SECRET, WebDav

import eb_operator
from eb_operator.stager import s3 as stager_s3

pytestmark = pytest.mark.timeout(300)

FITS = b"SIMPLE  =                    T / a FITS header card, padded" + bytes(range(256)) * 11
CREDS = {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
DAV = {"EB_HTTP_USERNAME": DAV_USER, "EB_HTTP_PASSWORD": DAV_PASSWORD}
SUMMARY = re.compile(r"^staged( out)? (\d+) files, (\d+) bytes in ([\d.]+) s \(([\d.]+) MB/s\)$")


def stager(
    *args: str, env: Mapping[str, str] = {}, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EB_HTTP_", "RUCIO_"))}
    return subprocess.run(
        [python, "-m", "eb_operator.stager", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )


def results(tmp_path: Path, big: int = 0) -> Path:
    out = tmp_path / "results"
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / "out.fits").write_bytes(FITS)
    (out / "logs" / "run.txt").write_text("done\n")
    if big:
        (out / "big.bin").write_bytes(os.urandom(big))
    return out


def failure(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_stage_out_to_s3_puts_every_file_with_its_bytes_and_crc32(s3: S3, tmp_path: Path) -> None:
    bucket = unique_name("results", max_len=30)
    s3.bucket(bucket)
    big = stager_s3.PART_SIZE + 1024 * 1024  # two parts: the composite checksum
    out = results(tmp_path, big)
    done = stager("out", "s3", s3.endpoint, bucket, "run-1/", str(out), env=CREDS)
    assert done.returncode == 0, done.stderr
    match = SUMMARY.match(done.stdout.strip())
    assert match, done.stdout
    assert match.group(1) == " out"
    assert (int(match.group(2)), int(match.group(3))) == (3, len(FITS) + 5 + big)
    assert sorted(s3.keys(bucket)) == ["run-1/big.bin", "run-1/logs/run.txt", "run-1/out.fits"]
    assert s3.get(bucket, "run-1/out.fits") == FITS
    assert s3.get(bucket, "run-1/big.bin") == (out / "big.bin").read_bytes()
    for name, which in (("out.fits", 0), ("big.bin", 1)):
        head = s3.client.head_object(Bucket=bucket, Key=f"run-1/{name}", ChecksumMode="ENABLED")
        path = out / name
        assert head["ChecksumCRC32"] == stager_s3.crc32s(str(path), path.stat().st_size)[which]
    print(f"\nS3 stage-out: {match.group(3)} bytes in {match.group(4)} s ({match.group(5)} MB/s)")


@pytest.mark.parametrize(
    ("bucket", "env", "cause"),
    [
        pytest.param(
            "no-such-bucket",
            CREDS,
            "NoSuchBucket (HTTP 404): The specified bucket does not exist.",
            id="a wrong bucket",
        ),
        pytest.param(
            None,
            {**CREDS, "AWS_SECRET_ACCESS_KEY": "not-the-secret"},
            "SignatureDoesNotMatch (HTTP 403): The request signature we calculated does not match",
            id="a wrong secret key",
        ),
        pytest.param(None, {}, "AccessDenied (HTTP 403)", id="no credentials at all"),
    ],
)
def test_stage_out_to_s3_fails_with_one_line_naming_the_object_and_cause(
    s3: S3, tmp_path: Path, bucket: str | None, env: dict[str, str], cause: str
) -> None:
    if bucket is None:
        bucket = unique_name("results", max_len=30)
        s3.bucket(bucket)
    line = failure(stager("out", "s3", s3.endpoint, bucket, "run-1", str(results(tmp_path)), env=env))
    assert line.startswith(f"staging out failed: PUT s3://{bucket}/run-1/out.fits at {s3.endpoint}: {cause}")


def test_stage_out_to_an_endpoint_nobody_answers_fails_naming_it(tmp_path: Path) -> None:
    line = failure(stager("out", "s3", "http://127.0.0.1:9", "b", "", str(results(tmp_path)), env=CREDS))
    assert line.startswith("staging out failed: PUT s3://b/out.fits at http://127.0.0.1:9: cannot connect: ")


def test_stage_in_from_s3_fetches_an_object_or_a_prefix(s3: S3, tmp_path: Path) -> None:
    bucket = unique_name("survey", max_len=30)
    s3.bucket(bucket)
    s3.put(bucket, "tiles/a.fits", FITS)
    s3.put(bucket, "tiles/deep/b.fits", b"b")
    done = stager("s3", s3.endpoint, bucket, "tiles/", str(tmp_path / "p"), env=CREDS)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p" / "a.fits").read_bytes() == FITS
    assert (tmp_path / "p" / "deep" / "b.fits").read_bytes() == b"b"
    assert done.stdout.startswith(f"staged 2 files, {len(FITS) + 1} bytes in ")
    done = stager("in", "s3", s3.endpoint, bucket, "tiles/a.fits", str(tmp_path / "o"), env=CREDS)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["a.fits"]
    line = failure(stager("s3", s3.endpoint, bucket, "nothing", str(tmp_path / "n"), env=CREDS))
    assert line == f"staging failed: s3://{bucket}/nothing at {s3.endpoint}: no such object or prefix"


def test_stage_out_to_webdav_makes_the_collections_and_reads_the_sizes_back(
    webdav: WebDav, tmp_path: Path
) -> None:
    run = unique_name("run", max_len=20)
    url = f"{webdav.url}/results/{run}"
    done = stager("out", "webdav", url, str(results(tmp_path)), env=DAV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"staged out 2 files, {len(FITS) + 5} bytes in ")
    assert "not verified" not in done.stdout
    assert (webdav.root / "results" / run / "out.fits").read_bytes() == FITS
    assert (webdav.root / "results" / run / "logs" / "run.txt").read_text() == "done\n"
    line = failure(stager("out", "webdav", url, str(results(tmp_path)), env={**DAV, "EB_HTTP_PASSWORD": "x"}))
    assert line == f"staging out failed: MKCOL {url}: HTTP 401 Not Authorized"


def test_stage_out_by_http_put_into_an_existing_folder(webdav: WebDav, tmp_path: Path) -> None:
    run = unique_name("put", max_len=20)
    (webdav.root / run / "logs").mkdir(parents=True)
    done = stager("out", "http", f"{webdav.url}/{run}/", str(results(tmp_path)), env=DAV)
    assert done.returncode == 0, done.stderr
    assert (webdav.root / run / "out.fits").read_bytes() == FITS
    assert "not verified" not in done.stdout
    missing = f"{webdav.url}/{run}-missing"
    line = failure(stager("out", "http", missing, str(results(tmp_path)), env=DAV))
    assert line == f"staging out failed: PUT {missing}/out.fits: HTTP 409 Conflict"


def test_rucio_data_is_resolved_by_a_real_rucio_server_and_fetched_from_signed_s3_urls(
    rucio: Rucio, s3_tls: S3, tmp_path: Path
) -> None:
    bucket = unique_name("lake", max_len=30)
    s3_tls.bucket(bucket)
    rse = unique_name("EB-S3", max_len=20).upper().replace("-", "_")
    rucio.register_s3(rse, s3_tls, bucket, "survey", {"obs1.fits": ("survey/obs1.fits", FITS)})
    # the server's own Python has the Rucio client (the image's is rucio-clients, same version)
    python = str(rucio.python)
    # this checkout's package, whether it is installed editable or found through PYTHONPATH
    env = {**rucio.secret, "PYTHONPATH": str(Path(eb_operator.__file__).resolve().parents[1])}
    done = stager("rucio", rucio.url, "survey:obs1.fits", str(tmp_path / "d"), env=env, python=python)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "d" / "obs1.fits").read_bytes() == FITS
    assert done.stdout.strip().splitlines()[-1].startswith(f"staged 1 files, {len(FITS)} bytes in ")
    missing = stager("rucio", rucio.url, "survey:nothing.fits", str(tmp_path / "n"), env=env, python=python)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        f"staging failed: rucio survey:nothing.fits at {rucio.url}: DID does not exist: survey:nothing.fits"
    )
    wrong = {**env, "RUCIO_PASSWORD": "not-it"}
    denied = stager("rucio", rucio.url, "survey:obs1.fits", str(tmp_path / "w"), env=wrong, python=python)
    assert denied.returncode == 1
    assert (
        denied.stderr.strip()
        .splitlines()[-1]
        .startswith(f"staging failed: rucio survey:obs1.fits at {rucio.url}: Cannot authenticate")
    )
    print(f"\nRucio fixture: {', '.join(f'{k} {v:.1f} s' for k, v in rucio.timings.items())}")
