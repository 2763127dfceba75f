"""The REST service against the real cluster and a real operator, over real HTTP.

One broker per test session (starting one costs seconds on two cores):

* the CRDs from ``crds/``;
* a small platform of its own: two kwok nodes (8 cores, 32 GiB, 2 GPUs each) that no other test
  uses, an ``ExecutionPlatform`` selecting them, offers that live ``OFFER_TTL`` seconds;
* the operator (``eb-operator operator``) as a subprocess watching one namespace;
* the API (``create_app``) served by uvicorn on 127.0.0.1 in a thread, with static tokens for
  alice and bob and TokenReview on; anonymous access off.

After each test every OfferSet and Execution in the namespace is deleted, so capacity held by one
test's offers never leaks into the next.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tests.support.kube import (
    KWOK_TOLERATION,
    REPO,
    Kubectl,
    kwok_node,
    namespace_manifest,
    unique_name,
    wait_for,
)

from eb_operator.api import ApiSettings, create_app

OFFER_TTL = 30
NODE_CORES = 8
NODE_MEMORY_GIB = 32
NODE_GPUS = 2
NODES = 2
TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789"}
GROUP = "executionbroker.ivoa.net"


@dataclass
class Broker:
    """The running broker under test and what a test needs to talk to it."""

    url: str
    namespace: str
    platform: str
    nodes: list[str]
    kube: Kubectl
    operator_log: Path
    tokens: dict[str, str] = field(default_factory=lambda: dict(TOKENS))

    def client(self, user: str | None = "alice", *, follow: bool = False) -> httpx.Client:
        """An HTTP client authenticated as ``user`` (None: no token)."""
        h = {"Authorization": f"Bearer {self.tokens[user]}"} if user is not None else {}
        return httpx.Client(base_url=self.url, headers=h, timeout=60, follow_redirects=follow)

    def executions(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kube.get("executions", None, self.namespace)["items"]
        return items

    def cleanup(self) -> None:
        for kind in ("offersets", "executions"):
            self.kube.run("delete", kind, "--all", "-n", self.namespace, "--wait=false", check=False)
        wait_for(lambda: not self.executions(), 60, "the test's Executions to be gone", interval=0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def platform_manifest(name: str, pool: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ExecutionPlatform",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {f"{GROUP}/pool": pool},
            "toleration": {k: v for k, v in KWOK_TOLERATION.items() if k != "operator"},
            "slotSeconds": 300,
            "horizonSeconds": 6 * 3600,
            "offerTtlSeconds": OFFER_TTL,
            "maxOffers": 4,
            "preparationSeconds": 30,
            "releaseSeconds": 60,
            "gpuFlavours": [{"name": "ad104", "resourceName": "nvidia.com/gpu", "product": "nvidia-ad104"}],
        },
    }


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process owns the signals
        pass


@contextlib.contextmanager
def serve_api(settings: ApiSettings) -> Iterator[str]:
    """The REST service on a free 127.0.0.1 port, in a thread, until the block ends; yields its URL."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/healthz", timeout=5).status_code == 200, 60, "the API to serve")
        wait_for(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, 60, "the API to be ready")
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="session")
def broker(kube: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kube.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    tag = unique_name("eb-api", max_len=20)
    namespace, platform, pool = tag, tag, tag
    nodes = [f"{tag}-n{i}" for i in range(NODES)]
    kube.create(namespace_manifest(namespace))
    kube.apply(
        *(
            kwok_node(
                n,
                cpu=str(NODE_CORES),
                memory=f"{NODE_MEMORY_GIB}Gi",
                gpus=NODE_GPUS,
                labels={f"{GROUP}/pool": pool},
            )
            for n in nodes
        )
    )
    kube.apply(platform_manifest(platform, pool))

    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    env = {**os.environ, "KUBECONFIG": kube.kubeconfig, "EB_LOG_LEVEL": "INFO"}
    with log_path.open("w") as log:
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eb_operator.cli",
                "operator",
                "--namespace",
                namespace,
                "--platform",
                platform,
                "--no-peering",
                "--liveness",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
    try:
        wait_for(
            lambda: (kube.get("executionplatforms", platform).get("status") or {}).get("valid") is True,
            60,
            "the operator to take the platform",
        )
        settings = ApiSettings(
            namespace=namespace,
            kubeconfig=kube.kubeconfig,
            static_tokens="\n".join(f"{t},{u}" for u, t in TOKENS.items()),
            allow_anonymous=False,
            answer_timeout_seconds=20,
            max_body_bytes=64 * 1024,
        )
        with serve_api(settings) as url:
            yield Broker(url, namespace, platform, nodes, kube, log_path)
    finally:
        operator.send_signal(signal.SIGTERM)
        try:
            operator.wait(20)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait(10)
        kube.run("delete", "namespace", namespace, "--wait=false", check=False)
        kube.run("delete", "executionplatform", platform, "--ignore-not-found", check=False)
        kube.run("delete", "node", *nodes, "--ignore-not-found", check=False)


@pytest.fixture
def eb(broker: Broker) -> Iterator[Broker]:
    """The session's broker, with the namespace emptied after the test."""
    yield broker
    broker.cleanup()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """On failure, show the tail of the operator's log with the test's output."""
    if report.failed and report.when == "call":
        for path in Path("/tmp").glob("pytest-of-*/pytest-current/operator*/operator.log"):
            tail = path.read_text(errors="replace").splitlines()[-40:]
            report.sections.append(("operator log (tail)", "\n".join(tail)))
            break
