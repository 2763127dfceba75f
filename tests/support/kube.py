"""Helpers for tests and benchmarks that talk to a real Kubernetes cluster.

The cluster is the one in ``KUBECONFIG`` when that is set, else the project's local cluster
(``hack/cluster.sh up``; its kubeconfig is in ``$EB_CLUSTER_DIR`` or
``~/.local/state/eb-operator/cluster``). kubectl is the one built at the pinned version
(``hack/versions.env``), never an arbitrary one on PATH unless ``EB_KUBECTL`` says so.

Everything here is synchronous or plain asyncio and depends only on the standard library and
(optionally) ``kubernetes_asyncio``, so the operator, API and e2e tests can all reuse it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
WORKLOAD_IMAGE = "eb-workload:latest"
REAL_NODE = "eb-real-node"
KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Equal", "value": "fake", "effect": "NoSchedule"}
GPU_RESOURCE = "nvidia.com/gpu"
POOL_LABEL = "executionbroker.ivoa.net/pool"
TEST_LABEL = "executionbroker.ivoa.net/test"

# The restricted PodSecurity profile, as every Pod the tests create must satisfy it.
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# where things are


def versions() -> dict[str, str]:
    """The pinned versions from hack/versions.env."""
    out: dict[str, str] = {}
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        m = re.match(r"^([A-Z0-9_]+)=(\S+)", line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def cluster_state_dir() -> Path:
    return Path(os.environ.get("EB_CLUSTER_DIR") or Path.home() / ".local/state/eb-operator/cluster")


def cache_dir() -> Path:
    return Path(os.environ.get("EB_CACHE_DIR") or Path.home() / ".cache/eb-operator")


def find_kubeconfig() -> Path | None:
    """``KUBECONFIG`` (its first existing file) if set, else the local cluster's kubeconfig."""
    env = os.environ.get("KUBECONFIG")
    if env:
        for part in env.split(os.pathsep):
            if part and Path(part).is_file():
                return Path(part)
        return None
    local = cluster_state_dir() / "kubeconfig"
    return local if local.is_file() else None


def is_local_cluster(kubeconfig: Path | None) -> bool:
    return kubeconfig is not None and kubeconfig.resolve() == (cluster_state_dir() / "kubeconfig").resolve()


def kubectl_binary() -> str:
    """``EB_KUBECTL``, else the kubectl built at the pinned version, else kubectl on PATH."""
    env = os.environ.get("EB_KUBECTL")
    if env:
        return env
    pinned = cache_dir() / "k8s" / versions()["K8S_VERSION"] / "bin" / "kubectl"
    if os.access(pinned, os.X_OK):
        return str(pinned)
    found = shutil.which("kubectl")
    if not found:
        raise FileNotFoundError(f"no kubectl: build it with hack/build-binaries.sh k8s (expected {pinned})")
    return found


# --------------------------------------------------------------------------------------------
# kubectl


class KubectlError(RuntimeError):
    pass


class Kubectl:
    """A thin subprocess wrapper around the pinned kubectl bound to one kubeconfig."""

    def __init__(self, kubeconfig: Path | str, binary: str | None = None) -> None:
        self.kubeconfig = str(kubeconfig)
        self.binary = binary or kubectl_binary()

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, "--kubeconfig", self.kubeconfig, *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def json(self, *args: str, timeout: float = 120) -> Any:
        return json.loads(self.run(*args, "-o", "json", timeout=timeout).stdout)

    def apply(self, *objects: Mapping[str, Any], server_side: bool = False) -> str:
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        extra = ["--server-side", "--force-conflicts"] if server_side else []
        return self.run("apply", *extra, "-f", "-", input=json.dumps(doc)).stdout

    def create(self, *objects: Mapping[str, Any]) -> str:
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        return self.run("create", "-f", "-", input=json.dumps(doc)).stdout

    def get(self, kind: str, name: str | None = None, namespace: str | None = None, *extra: str) -> Any:
        args = ["get", kind, *([name] if name else []), *(["-n", namespace] if namespace else []), *extra]
        return self.json(*args)

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        ns = ["-n", namespace] if namespace else []
        args = ["get", kind, name, "--ignore-not-found", "-o", "name", *ns]
        return bool(self.run(*args).stdout.strip())

    def ready(self) -> bool:
        try:
            return self.run("get", "--raw", "/readyz", check=False, timeout=10).stdout.strip() == "ok"
        except subprocess.TimeoutExpired:
            return False


# --------------------------------------------------------------------------------------------
# waiting on conditions (never sleep as synchronisation)


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    message: str = "condition",
    interval: float = 0.25,
) -> T:
    """Call ``predicate`` until it returns something truthy and return that; raise
    ``TimeoutError`` after ``timeout`` seconds, naming ``message`` and the last value or error."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # a transient API error is just "not yet"
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {message}; last: {last!r}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


async def async_wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float,  # noqa: ASYNC109 - a deadline for the whole wait, as in wait_for
    message: str = "condition",
    interval: float = 0.25,
) -> T:
    """``wait_for`` for asyncio: ``predicate`` may be sync or async."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            last = value
            if value:
                return value  # type: ignore[return-value]
        except Exception as e:
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {message}; last: {last!r}")
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


# --------------------------------------------------------------------------------------------
# objects


def unique_name(prefix: str, max_len: int = 50) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-")
    return f"{slug[: max_len - 7].rstrip('-')}-{uuid.uuid4().hex[:6]}"


def namespace_manifest(name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                TEST_LABEL: "true",
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                **(labels or {}),
            },
        },
    }


def workload_pod(
    name: str,
    command: Sequence[str],
    *,
    namespace: str | None = None,
    image: str = WORKLOAD_IMAGE,
    requests: Mapping[str, str] | None = None,
    limits: Mapping[str, str] | None = None,
    node_name: str | None = None,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Mapping[str, Any]] | None = None,
    labels: Mapping[str, str] | None = None,
    restart_policy: str = "Never",
) -> dict[str, Any]:
    """A Pod of the local workload image that passes the restricted PodSecurity profile."""
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = dict(requests)
    if limits:
        resources["limits"] = dict(limits)
    spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 1,
        "securityContext": POD_SECURITY_CONTEXT,
        "containers": [
            {
                "name": "main",
                "image": image,
                "imagePullPolicy": "Never",
                "command": list(command),
                "securityContext": CONTAINER_SECURITY_CONTEXT,
                "resources": resources,
            }
        ],
    }
    if node_name:
        spec["nodeName"] = node_name
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    meta: dict[str, Any] = {"name": name, "labels": {TEST_LABEL: "true", **(labels or {})}}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def kwok_node(
    name: str,
    *,
    cpu: str = "32",
    memory: str = "128Gi",
    pods: str = "110",
    gpus: int = 0,
    gpu_product: str = "nvidia-ad104",
    labels: Mapping[str, str] | None = None,
    taint: bool = True,
) -> dict[str, Any]:
    """A Node that the local cluster's kwok controller makes Ready (it manages nodes annotated
    ``kwok.x-k8s.io/node=fake``). Tainted like the harness's kwok nodes unless ``taint=False``."""
    capacity = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "1Ti"}
    node_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        POOL_LABEL: "default",
        **(labels or {}),
    }
    if gpus:
        capacity[GPU_RESOURCE] = str(gpus)
        node_labels["nvidia.com/gpu.product"] = gpu_product
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "annotations": dict(KWOK_ANNOTATION), "labels": node_labels},
        "spec": {"taints": [KWOK_TAINT]} if taint else {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
                "containerRuntimeVersion": "fake",
                "kernelVersion": "fake",
                "osImage": "kwok",
                "machineID": name,
                "systemUUID": name,
                "bootID": "",
            },
        },
    }


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c  # type: ignore[no-any-return]
    return None


def is_ready(node: Mapping[str, Any]) -> bool:
    c = condition(node, "Ready")
    return bool(c and c.get("status") == "True")


def wait_nodes_usable(kube: Kubectl, selector: str, count: int, timeout: float = 300) -> None:
    """Until ``count`` nodes match ``selector``, each Ready *and* free of every taint but kwok's.
    A new node carries ``node.kubernetes.io/not-ready:NoSchedule`` until the node lifecycle
    controller lifts it, seconds after Ready: the broker, like the scheduler, does not use it
    until then, so a test asking before then is answered NO."""

    def usable() -> bool:
        nodes = kube.json("get", "nodes", "-l", selector)["items"]
        return len(nodes) == count and all(
            is_ready(n)
            and all(t.get("key") == KWOK_TAINT["key"] for t in (n.get("spec") or {}).get("taints") or [])
            for n in nodes
        )

    wait_for(usable, timeout, f"{count} nodes {selector} Ready and untainted", interval=0.5)


# --------------------------------------------------------------------------------------------
# kubernetes_asyncio


async def api_client(kubeconfig: Path | str, pool_size: int | None = None) -> Any:
    """A ``kubernetes_asyncio.client.ApiClient`` for ``kubeconfig``; the caller closes it.
    ``pool_size`` raises the number of concurrent connections (default 10 on 2 cores)."""
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    if pool_size:
        configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration=configuration)


async def delete_all_pods(v1: Any, namespace: str, timeout: float = 180) -> None:  # noqa: ASYNC109
    """Delete every Pod of ``namespace`` in one call and wait until they are gone.
    (``kubectl delete pods --all`` sends one request per Pod, throttled: slow for hundreds.)"""
    await v1.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)

    async def gone() -> bool:
        return not (await v1.list_namespaced_pod(namespace, limit=1)).items

    await async_wait_for(gone, timeout, f"all pods of {namespace} to be deleted", interval=0.5)


async def pod_logs(v1: Any, name: str, namespace: str, container: str | None = None) -> str:
    """The raw log text of a Pod. (``CoreV1Api.read_namespaced_pod_log`` of kubernetes_asyncio
    parses a log that happens to be JSON and returns the ``str()`` of the dict, with single
    quotes; this reads the raw response instead.)"""
    kwargs = {"container": container} if container else {}
    resp = await v1.read_namespaced_pod_log(name, namespace, _preload_content=False, **kwargs)
    try:
        return str(await resp.text())
    finally:
        resp.release()
