"""Real servers on 127.0.0.1 for the stager run as a process and for the operator's probe: no
cluster needed. versitygw (S3, plain and over TLS), WsgiDAV (WebDAV), and a Rucio server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.rucio_server import Rucio, run_rucio
from tests.support.servers import S3, Files, WebDav, run_versitygw, run_versitygw_tls, run_webdav, serve_files

LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    with run_versitygw(LOOPBACK) as server:
        yield server


@pytest.fixture(scope="session")
def s3_tls() -> Iterator[S3]:
    with run_versitygw_tls(LOOPBACK) as server:
        yield server


@pytest.fixture(scope="session")
def webdav() -> Iterator[WebDav]:
    with run_webdav(LOOPBACK) as server:
        yield server


@pytest.fixture(scope="session")
def files() -> Iterator[Files]:
    with serve_files(LOOPBACK) as server:
        yield server


@pytest.fixture(scope="session")
def rucio() -> Iterator[Rucio]:
    with run_rucio(LOOPBACK) as server:
        print(f"\nRucio server up: {', '.join(f'{k} {v:.1f} s' for k, v in server.timings.items())}")
        yield server
