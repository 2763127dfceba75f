"""Real servers for the data, storage and notebook tests, all on this machine and reachable from
Pods on the real node (bound to the node address 10.213.0.1, which is on ``lo``):

* ``files``: an HTTP file server (the standard library's) serving a temporary directory;
* ``s3``: versitygw, a real S3-compatible server (POSIX backend), built once from its Go module
  by ``hack/build-binaries.sh versitygw`` (cached under ~/.cache/eb-operator/versitygw/);
* ``notebook_image``: ``eb-notebook:latest`` (jupyter-server + ipykernel from PyPI), built once
  by ``hack/build-test-images.sh`` and imported into the cluster's containerd;
* ``local_volume``: a StorageClass and a hostPath PersistentVolume for one persistent claim (the
  local cluster has no volume provisioner).

The operator fixtures (``broker``, ``crds``) come from ``tests/integration/operator``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.operator.conftest import broker, crds  # noqa: F401 - shared fixtures
from tests.integration.operator.helpers import Broker
from tests.support import child_process
from tests.support.kube import REPO, Kubectl, cache_dir, unique_name, versions, wait_for

from eb_operator.stager import s3_url, sign_v4

HOST = "10.213.0.1"  # the node address: local to this machine, reachable from Pods
S3_KEY = "eb-test-access"
S3_SECRET = "eb-test-secret-key-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _node_address_present() -> None:
    try:
        with socket.socket() as s:
            s.bind((HOST, 0))
    except OSError as e:
        pytest.fail(
            f"{HOST} is not an address of this machine ({e}): is the local cluster up?", pytrace=False
        )


# --- no other broker -------------------------------------------------------------------------------

INSTALLED_OPERATORS = "app.kubernetes.io/part-of=execution-broker,app.kubernetes.io/component=operator"


@pytest.fixture(scope="session", autouse=True)
def no_installed_broker(kube: Kubectl) -> Iterator[None]:
    """Scale any installed broker's operator (the chart's, e.g. from hack/up.sh or the e2e suite)
    to 0 while these tests run, and back afterwards: an operator watching every namespace would
    answer the tests' OfferSets with its own platform policy, racing the in-process operator."""
    found = kube.json("get", "deployments", "-A", "-l", INSTALLED_OPERATORS)
    paused = []
    for d in found["items"]:
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        replicas = int(d["spec"].get("replicas") or 0)
        if replicas:
            kube.run("scale", "deployment", name, "-n", ns, "--replicas=0")
            paused.append((ns, name, replicas))
    for ns, _, _ in paused:
        wait_for(
            lambda ns=ns: not kube.json("get", "pods", "-n", ns, "-l", INSTALLED_OPERATORS)["items"],
            120,
            f"the installed operator in {ns} to stop",
        )
    try:
        yield
    finally:
        for ns, name, replicas in paused:
            kube.run("scale", "deployment", name, "-n", ns, f"--replicas={replicas}", check=False)


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


@pytest.fixture(scope="session")
def files() -> Iterator[Files]:
    _node_address_present()
    root = Path(tempfile.mkdtemp(prefix="eb-files-"))

    def handler(*args: Any) -> _Quiet:
        return _Quiet(*args, directory=str(root))

    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="eb-files", daemon=True)
    thread.start()
    try:
        yield Files(root, f"http://{HOST}:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(root, ignore_errors=True)


# --- S3 -------------------------------------------------------------------------------------------


@dataclass
class S3:
    endpoint: str

    def call(self, method: str, url: str, body: bytes = b"") -> httpx.Response:
        digest = hashlib.sha256(body).hexdigest()
        headers = sign_v4(method, url, S3_KEY, S3_SECRET, payload_hash=digest)
        resp = httpx.request(method, url, content=body, headers=headers, timeout=30, trust_env=False)
        resp.raise_for_status()
        return resp

    def bucket(self, name: str) -> None:
        self.call("PUT", s3_url(self.endpoint, name))

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.call("PUT", s3_url(self.endpoint, bucket, key), body)


def _versitygw() -> Path:
    version = versions()["VERSITYGW_VERSION"]
    binary = cache_dir() / "versitygw" / version / "bin" / "versitygw"
    if not os.access(binary, os.X_OK):
        subprocess.run(
            ["bash", str(REPO / "hack" / "build-binaries.sh"), "versitygw"], check=True, timeout=3000
        )
    return binary


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    _node_address_present()
    binary = _versitygw()
    root = Path(tempfile.mkdtemp(prefix="eb-s3-"))
    port = _free_port()
    log = (root.parent / f"{root.name}.log").open("wb")
    proc = subprocess.Popen(
        [
            str(binary),
            "--access",
            S3_KEY,
            "--secret",
            S3_SECRET,
            "--port",
            f"{HOST}:{port}",
            "posix",
            str(root),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = S3(f"http://{HOST}:{port}")

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"versitygw exited with {proc.returncode}; see {log.name}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(server.endpoint, timeout=2, trust_env=False)
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


@pytest.fixture
def s3_secret(kube: Kubectl, make_namespace: Callable[..., str]) -> tuple[str, str]:
    """The S3 credentials as a Secret in a namespace of its own (the platform names it): the
    operator copies it next to each session that needs it."""
    ns = make_namespace("t-creds")
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-creds", "namespace": ns},
            "stringData": {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET},
        }
    )
    return ns, "s3-creds"


# --- images and volumes ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def notebook_image() -> str:
    subprocess.run(["bash", str(REPO / "hack" / "build-test-images.sh")], check=True, timeout=1800)
    return "eb-notebook:latest"


@pytest.fixture
def local_volume(kube: Kubectl) -> Iterator[tuple[str, Path]]:
    """A StorageClass of its own and one 1 GiB hostPath PersistentVolume of that class (a
    directory any uid may write, as the workload runs as uid 1000)."""
    name = unique_name("eb-test-local", max_len=40)
    path = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    path.chmod(0o777)
    kube.create(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "kubernetes.io/no-provisioner",
            "reclaimPolicy": "Retain",
            "volumeBindingMode": "Immediate",
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"executionbroker.ivoa.net/test": "true"}},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": name,
                "hostPath": {"path": str(path), "type": "Directory"},
            },
        },
    )
    try:
        yield name, path
    finally:
        kube.run("delete", "pv", name, "--wait=false", "--ignore-not-found", check=False)
        kube.run("delete", "storageclass", name, "--ignore-not-found", check=False)
        shutil.rmtree(path, ignore_errors=True)


# --- waiting, with the state shown on a timeout --------------------------------------------------


async def reaches(b: Broker, name: str, *phases: str, timeout: float = 120) -> dict[str, Any]:  # noqa: ASYNC109
    """``b.reaches``; on a timeout the failure shows the Execution's status and its Pod's."""
    try:
        return await b.reaches(name, *phases, timeout=timeout)
    except TimeoutError:
        status = (await b.execution(name)).get("status")
        pod = await b.pod(name)
        raise AssertionError(
            f"{name} not in {phases} after {timeout} s; status: {status}; pod: {(pod or {}).get('status')}"
        ) from None


async def earliest(b: Broker, answer: Mapping[str, Any]) -> str:
    """The offer of an answered OfferSet that starts first (the real node is shared: other
    sessions' reservations may push some offers later)."""
    names = [o["name"] for o in answer["status"]["offers"]]
    starts = {n: (await b.execution(n))["spec"]["reservation"]["start"] for n in names}
    return min(names, key=lambda n: (starts[n], names.index(n)))
