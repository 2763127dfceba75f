"""Real servers for the data tests, on this machine: an HTTP file server, versitygw (S3, also
over TLS), and a WebDAV server (WsgiDAV). Each is a context manager bound to a host address:
127.0.0.1 for tests of the stager as a process, the node address 10.213.0.1 for Pods on the
real node (tests/integration/data/conftest.py)."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from botocore.config import Config
from cheroot import wsgi
from tests.support import child_process
from tests.support.kube import REPO, cache_dir, versions, wait_for
from wsgidav.wsgidav_app import WsgiDAVApp

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

NODE_HOST = "10.213.0.1"  # the node address: local to this machine, reachable from Pods
S3_KEY = "eb-test-access"
S3_SECRET = "eb-test-secret-key-0123456789"
DAV_USER = "eb-dav"
DAV_PASSWORD = "eb-dav-secret"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --- HTTP files -----------------------------------------------------------------------------------


@dataclass
class Files:
    root: Path
    url: str

    def put(self, name: str, content: bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return f"{self.url}/{name}"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_files(host: str) -> Iterator[Files]:
    """The standard library's file server on a temporary directory."""
    root = Path(tempfile.mkdtemp(prefix="eb-files-"))

    def handler(*args: Any) -> _Quiet:
        return _Quiet(*args, directory=str(root))

    server = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="eb-files", daemon=True)
    thread.start()
    try:
        yield Files(root, f"http://{host}:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(root, ignore_errors=True)


# --- S3 -------------------------------------------------------------------------------------------


@dataclass
class S3:
    """A running versitygw: its endpoint and a boto3 client with its root credentials."""

    endpoint: str
    root: Path
    verify: bool | str = True

    @property
    def client(self) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
            verify=self.verify,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
        )

    def bucket(self, name: str) -> None:
        self.client.create_bucket(Bucket=name)

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body)

    def get(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def versitygw_binary() -> Path:
    version = versions()["VERSITYGW_VERSION"]
    binary = cache_dir() / "versitygw" / version / "bin" / "versitygw"
    if not os.access(binary, os.X_OK):
        subprocess.run(
            ["bash", str(REPO / "hack" / "build-binaries.sh"), "versitygw"], check=True, timeout=3000
        )
    return binary


@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path


def self_signed(folder: Path, *hosts: str) -> Tls:
    """A self-signed certificate for these IP addresses, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eb-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(h)) for h in hosts]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    tls = Tls(folder / "cert.pem", folder / "key.pem")
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return tls


@contextlib.contextmanager
def run_versitygw(host: str, tls: Tls | None = None) -> Iterator[S3]:
    """versitygw (POSIX backend on a temporary directory), plain HTTP or over TLS."""
    binary = versitygw_binary()
    root = Path(tempfile.mkdtemp(prefix="eb-s3-"))
    port = free_port(host)
    log = (root.parent / f"{root.name}.log").open("wb")
    extra = ["--cert", str(tls.cert), "--key", str(tls.key)] if tls else []
    args = [str(binary), "--access", S3_KEY, "--secret", S3_SECRET, "--port", f"{host}:{port}", *extra]
    proc = subprocess.Popen([*args, "posix", str(root)], stdout=log, stderr=subprocess.STDOUT)
    server = S3(f"{'https' if tls else 'http'}://{host}:{port}", root, str(tls.cert) if tls else True)

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"versitygw exited with {proc.returncode}; see {log.name}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(server.endpoint, timeout=2, trust_env=False, verify=False)
            return True
        return False

    try:
        wait_for(answers, 30, "versitygw to answer")
        yield server
    finally:
        child_process.stop(proc, grace=10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
        Path(log.name).unlink(missing_ok=True)


@contextlib.contextmanager
def run_versitygw_tls(host: str) -> Iterator[S3]:
    """versitygw over TLS with a certificate of its own for ``host`` (clients verify it with
    ``S3.verify``)."""
    with (
        tempfile.TemporaryDirectory(prefix="eb-tls-") as folder,
        run_versitygw(host, self_signed(Path(folder), host)) as server,
    ):
        yield server


# --- WebDAV ---------------------------------------------------------------------------------------


@dataclass
class WebDav:
    root: Path
    url: str


@contextlib.contextmanager
def run_webdav(host: str) -> Iterator[WebDav]:
    """WsgiDAV on cheroot, serving a temporary directory to one user (basic authentication)."""
    root = Path(tempfile.mkdtemp(prefix="eb-dav-"))
    root.chmod(0o777)
    port = free_port(host)
    app = WsgiDAVApp(
        {
            "host": host,
            "port": port,
            "provider_mapping": {"/": str(root)},
            "http_authenticator": {
                "domain_controller": None,
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
            },
            "simple_dc": {"user_mapping": {"*": {DAV_USER: {"password": DAV_PASSWORD}}}},
            "verbose": 1,
            "logging": {"enable": False},
        }
    )
    server = wsgi.Server((host, port), app)
    server.prepare()
    thread = threading.Thread(target=server.serve, name="eb-webdav", daemon=True)
    thread.start()
    try:
        yield WebDav(root, f"http://{host}:{port}")
    finally:
        server.stop()
        thread.join(10)
        shutil.rmtree(root, ignore_errors=True)
