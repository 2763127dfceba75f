"""What the chaos scenarios share: a platform of their own (kwok nodes that no other test or
platform selects), ``eb-operator operator`` as a child process that can be SIGKILLed and
restarted, acting as the kubelet of a kwok node (a Pod's container "exits"), and running
``hack/cluster.sh`` component commands."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import child_process
from tests.support.kube import (
    KWOK_TOLERATION,
    POOL_LABEL,
    REPO,
    Kubectl,
    kwok_node,
    unique_name,
    wait_for,
    wait_nodes_usable,
)

from eb_operator.model.times import format_instant

API = "executionbroker.ivoa.net/v1alpha1"
FINAL = frozenset({"REJECTED", "EXPIRED", "COMPLETED", "FAILED", "CANCELLED"})


@dataclass
class Stage:
    kube: Kubectl
    namespace: str
    platform: str
    nodes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def kwok_platform(
    kube: Kubectl, namespace: str, prefix: str, nodes: int, spec: Mapping[str, Any], cpu: str = "8"
) -> Iterator[Stage]:
    """``nodes`` kwok nodes in a pool of their own and an ExecutionPlatform selecting only them;
    both deleted when the block ends."""
    name = unique_name(prefix, max_len=30)
    stage = Stage(kube, namespace, name, [f"{name}-n{i}" for i in range(nodes)])
    try:
        kube.apply(*(kwok_node(n, cpu=cpu, memory="32Gi", labels={POOL_LABEL: name}) for n in stage.nodes))
        toleration = {k: v for k, v in KWOK_TOLERATION.items() if k != "operator"}
        platform = {
            "apiVersion": API,
            "kind": "ExecutionPlatform",
            "metadata": {"name": name},
            "spec": {"nodeSelector": {POOL_LABEL: name}, "toleration": toleration, **spec},
        }
        kube.apply(platform)
        wait_nodes_usable(kube, f"{POOL_LABEL}={name}", nodes)
        yield stage
    finally:
        kube.run("delete", "executionplatform", name, "--ignore-not-found", "--wait=false", check=False)
        kube.run("delete", "nodes", "-l", f"{POOL_LABEL}={name}", "--wait=false", check=False)


class OperatorProcess:
    """``eb-operator operator`` for one namespace and platform as a child process, logging to a
    file. ``start`` returns at once; ``wait_started`` waits for its "started" log line (the
    ledger is rebuilt and the workers run)."""

    def __init__(self, kube: Kubectl, stage: Stage, log: Path, *extra: str) -> None:
        self.argv = [sys.executable, "-m", "eb_operator.cli", "operator", "--no-peering", "--liveness", ""]
        self.argv += ["--platform", stage.platform, "--namespace", stage.namespace, *extra]
        self.env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig), "EB_LOG_LEVEL": "INFO"}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.offset = 0  # where this incarnation's log begins
        self.started_at = 0.0
        self.startups: list[float] = []  # seconds from spawn to "started", per incarnation

    def start(self) -> None:
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=REPO
            )
        self.started_at = time.monotonic()

    def is_started(self) -> bool:
        with self.log.open("rb") as f:
            f.seek(self.offset)
            return b"msg=started" in f.read()

    def wait_started(self, timeout: float = 60) -> float:
        wait_for(self.is_started, timeout, f"the operator to start (log {self.log})", interval=0.05)
        took = time.monotonic() - self.started_at
        self.startups.append(took)
        return took

    def kill(self) -> None:
        assert self.proc is not None
        child_process.sigkill(self.proc)

    def stop(self) -> None:
        child_process.stop(self.proc)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def container_exits(cluster: Any, namespace: str, pod: str, code: int = 0) -> Any:
    """Play the kubelet of a kwok node: the Pod's container ran and exited with ``code`` (kwok's
    own stages only make Pods Running; they never end them)."""
    now = format_instant(int(time.time()))
    state = {
        "terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "finishedAt": now}
    }
    body = {
        "status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": False,
                    "restartCount": 0,
                    "image": "x",
                    "imageID": "",
                    "state": state,
                }
            ],
        }
    }
    return cluster.core.patch_namespaced_pod_status(pod, namespace, body)


def cluster_sh(*args: str, timeout: float = 300) -> float:
    """Run ``hack/cluster.sh ARGS`` (root: it stops and starts cluster processes); seconds taken."""
    t = time.monotonic()
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "cluster.sh"), *args], capture_output=True, text=True, timeout=timeout
    )
    if out.returncode != 0:
        raise RuntimeError(f"hack/cluster.sh {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return time.monotonic() - t


def phase(obj: Mapping[str, Any]) -> str | None:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    implied = "OFFERED" if spec.get("reservation") and spec.get("offerSet") else None
    return (status.get("phase") or implied) if status.get("phase") or implied else None
