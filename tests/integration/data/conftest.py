"""Real servers for the data, storage and notebook tests, all on this machine and reachable from
Pods on the real node (bound to the node address 10.213.0.1, which is on ``lo``;
tests/support/servers.py and tests/support/rucio_server.py run them):

* ``files``: an HTTP file server (the standard library's) serving a temporary directory;
* ``s3``: versitygw, a real S3-compatible server (POSIX backend), built once from its Go module
  by ``hack/build-binaries.sh versitygw`` (cached under ~/.cache/eb-operator/versitygw/);
  ``s3_tls``: another one over TLS (Rucio signs only https URLs);
* ``webdav``: WsgiDAV, a WebDAV server (basic authentication);
* ``rucio``: a Rucio server (the ``rucio`` package in its own virtualenv, on SQLite);
* ``stager_image``: ``eb-stager:<version>``, built by ``hack/build-stager-image.sh`` and imported
  into the cluster's containerd (tests/integration/conftest.py);
* ``notebook_image``: ``eb-notebook:latest`` (jupyter-server, ipykernel, JupyterLab from PyPI), built once
  by ``hack/build-test-images.sh`` and imported into the cluster's containerd;
* ``local_volume``: a StorageClass and a hostPath PersistentVolume for one persistent claim (the
  local cluster has no volume provisioner); ``local_volumes(n)``: a class with ``n`` of them.

The operator fixtures (``broker``, ``crds``) come from ``tests/integration/operator``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator.conftest import broker, crds  # noqa: F401 - shared fixtures
from tests.integration.operator.helpers import Broker
from tests.support.kube import REPO, Kubectl, deployments_paused, unique_name
from tests.support.rucio_server import Rucio, run_rucio
from tests.support.servers import (
    NODE_HOST,
    S3,
    S3_KEY,
    S3_SECRET,
    Files,
    WebDav,
    run_versitygw,
    run_versitygw_tls,
    run_webdav,
    serve_files,
)

HOST = NODE_HOST
__all__ = ["HOST", "S3", "S3_KEY", "S3_SECRET", "Files", "Rucio", "WebDav"]


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
    with deployments_paused(kube, INSTALLED_OPERATORS, "the installed operator"):
        yield


# --- servers ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def files() -> Iterator[Files]:
    _node_address_present()
    with serve_files(HOST) as server:
        yield server


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    _node_address_present()
    with run_versitygw(HOST) as server:
        yield server


@pytest.fixture(scope="session")
def s3_tls() -> Iterator[S3]:
    _node_address_present()
    with run_versitygw_tls(HOST) as server:
        yield server


@pytest.fixture(scope="session")
def webdav() -> Iterator[WebDav]:
    _node_address_present()
    with run_webdav(HOST) as server:
        yield server


@pytest.fixture(scope="session")
def rucio() -> Iterator[Rucio]:
    _node_address_present()
    with run_rucio(HOST) as server:
        print(f"\nRucio server up: {', '.join(f'{k} {v:.1f} s' for k, v in server.timings.items())}")
        yield server


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
def local_volume(local_volumes: Callable[..., tuple[str, list[Path]]]) -> tuple[str, Path]:
    """A StorageClass of its own and one 1 GiB hostPath PersistentVolume of that class (a
    directory any uid may write, as the workload runs as uid 1000)."""
    name, [path] = local_volumes(1)
    return name, path


@pytest.fixture
def local_volumes(kube: Kubectl) -> Iterator[Callable[..., tuple[str, list[Path]]]]:
    """``local_volumes(n, gib=1) -> (storage class, [host directories])``: a StorageClass of its
    own with ``n`` hostPath PersistentVolumes (``Retain``: a volume's files stay on the host after
    its claim is deleted, so a test can look at them). Claims bind to any of them."""
    made: list[tuple[str, list[Path]]] = []

    def make(n: int, gib: int = 1) -> tuple[str, list[Path]]:
        name = unique_name("eb-test-vols", max_len=40)
        paths = [Path(tempfile.mkdtemp(prefix=f"{name}-{i}-")) for i in range(n)]
        for p in paths:
            p.chmod(0o777)
        kube.create(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": name},
                "provisioner": "kubernetes.io/no-provisioner",
                "reclaimPolicy": "Retain",
                "volumeBindingMode": "Immediate",
            },
            *(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"{name}-{i}", "labels": {"executionbroker.ivoa.net/test": "true"}},
                    "spec": {
                        "capacity": {"storage": f"{gib}Gi"},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "storageClassName": name,
                        "hostPath": {"path": str(p), "type": "Directory"},
                    },
                }
                for i, p in enumerate(paths)
            ),
        )
        made.append((name, paths))
        return name, paths

    yield make
    for name, paths in made:
        for i in range(len(paths)):
            kube.run("delete", "pv", f"{name}-{i}", "--wait=false", "--ignore-not-found", check=False)
        kube.run("delete", "storageclass", name, "--ignore-not-found", check=False)
        for p in paths:
            shutil.rmtree(p, ignore_errors=True)


def claim_path(kube: Kubectl, namespace: str, claim: str) -> Path:
    """The host directory of the hostPath volume a claim is bound to."""
    volume = kube.get("pvc", claim, namespace)["spec"]["volumeName"]
    return Path(kube.get("pv", volume)["spec"]["hostPath"]["path"])


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
