"""The operator killed with SIGKILL mid-lifecycle and started again: every Execution still reaches
the right final phase, and no Pod is ever created twice."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from kubernetes_asyncio import watch
from tests.integration.operator.helpers import API, FAST, REAL_NODE_PLATFORM, Broker, ivoa_request, phase
from tests.support import child_process
from tests.support.background import in_background
from tests.support.kube import Kubectl, unique_name

from eb_operator.cluster.crs import PLATFORMS, Cluster
from eb_operator.cluster.kube import ClientSettings

pytestmark = pytest.mark.timeout(300)


class Subprocess:
    """``eb-operator operator`` as a child process, logging to a file."""

    def __init__(self, platform: str, namespace: str, log: Path) -> None:
        self.args = [sys.executable, "-m", "eb_operator.cli", "operator", "--no-peering", "--liveness", ""]
        self.args += ["--platform", platform, "--namespace", namespace]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})

    def kill(self) -> None:
        assert self.proc is not None
        child_process.sigkill(self.proc)

    def stop(self) -> None:
        child_process.stop(self.proc)


@pytest.fixture
async def env(
    crds: None, kube: Kubectl, make_namespace: Callable[..., str], tmp_path: Path
) -> AsyncIterator[tuple[Broker, Subprocess]]:
    cluster = await Cluster.connect(ClientSettings())
    ns = make_namespace()
    name = unique_name("t-restart", max_len=40)
    spec = {**REAL_NODE_PLATFORM, **FAST, "maxDurationFactor": 1.0}
    await cluster.create(
        PLATFORMS,
        None,
        {"apiVersion": API, "kind": "ExecutionPlatform", "metadata": {"name": name}, "spec": spec},
    )
    op = Subprocess(name, ns, tmp_path / "operator.log")
    try:
        yield Broker(cluster, kube, ns, name), op
    finally:
        op.stop()
        with contextlib.suppress(Exception):
            await cluster.custom.delete_cluster_custom_object(
                "executionbroker.ivoa.net", "v1alpha1", PLATFORMS, name
            )
        await cluster.close()


@contextlib.asynccontextmanager
async def pod_uids(b: Broker) -> AsyncIterator[dict[str, set[str]]]:
    """Every Pod uid seen in the namespace while the block runs, by Pod name."""
    seen: dict[str, set[str]] = {}

    async def follow() -> None:
        w = watch.Watch()
        async for event in w.stream(b.cluster.core.list_namespaced_pod, b.namespace, timeout_seconds=600):
            pod = event["object"]
            seen.setdefault(pod.metadata.name, set()).add(pod.metadata.uid)

    async with in_background(follow()):
        yield seen


async def test_sigkill_mid_lifecycle_and_restart(env: tuple[Broker, Subprocess]) -> None:
    b, op = env
    async with pod_uids(b) as uids:
        op.start()
        await b.direct("long", ivoa_request(("sleep", "8"), duration="PT30S"))
        await b.direct("fails", ivoa_request(("sh", "-c", "sleep 3; exit 3"), duration="PT30S"))
        await b.reaches("long", "RUNNING", timeout=90)
        op.kill()  # mid-lifecycle: "long" is running, "fails" somewhere between ACCEPTED and FAILED

        await b.direct("while-down", ivoa_request(("sh", "-c", "exit 0"), duration="PT20S"))
        op.start()
        final = {n: await b.settles(n, timeout=150) for n in ("long", "fails", "while-down")}

    assert phase(final["long"]) == "COMPLETED", final["long"]["status"]
    assert phase(final["fails"]) == "FAILED"
    assert "code 3" in final["fails"]["status"]["message"]
    assert phase(final["while-down"]) == "COMPLETED"
    for name in ("long", "fails", "while-down"):
        assert len(uids.get(f"eb-{name}", set())) == 1, f"Pod of {name} created {uids.get(f'eb-{name}')}"
