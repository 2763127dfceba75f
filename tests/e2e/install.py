"""The installed product, as the e2e tests (and a user) get it: the broker image, the Helm chart
released into its own namespace, and a way to reach the REST API's Service.

Nothing here imports the broker's server code: the tests act as users do, through helm, kubectl
and HTTP. Works with the project's local cluster and with any cluster in ``KUBECONFIG`` (a kind
cluster from hack/kind-e2e.sh, say), where the image must already be loadable by the nodes.

Environment:

* ``EB_E2E_NAMESPACE`` (``eb-e2e``): the release's namespace (REST sessions live there too);
  ``EB_E2E_USER_NAMESPACE`` (``eb-e2e-user``): where the tests ``kubectl apply`` Executions.
* ``EB_OPERATOR_IMAGE`` (``eb-operator:dev``): the broker image; ``EB_E2E_BUILD_IMAGE``
  (``auto``): on the local cluster, build and import it with hack/build-image.sh when the source
  changed since the last build (``always``, ``never``).
* ``EB_E2E_WORKLOAD_IMAGE`` (``eb-workload:latest``): what the sessions run.
* ``EB_HELM``: the helm binary (default: the one hack/build-binaries.sh builds, else PATH).
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import yaml
from tests.support.kube import REPO, Kubectl, cache_dir, is_local_cluster, versions, wait_for

CHART = REPO / "charts" / "execution-broker"
RELEASE = "eb-e2e"
PART_OF = "app.kubernetes.io/part-of=execution-broker"
MANAGED_BY_BROKER = "app.kubernetes.io/managed-by=eb-operator"
PAUSED = "executionbroker.ivoa.net/paused-by-e2e"
#: (what, seconds) of every image preparation and install in this session, for the summary
INSTALLS: list[tuple[str, float]] = []
GROUP = "executionbroker.ivoa.net"
API_VERSION = f"{GROUP}/v1alpha1"
USERS = ("alice", "bob")


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


# --------------------------------------------------------------------------------------------
# helm


def helm_binary() -> str:
    """``EB_HELM``, else the pinned helm hack/build-binaries.sh builds (building it if Go is
    there), else helm on PATH."""
    if os.environ.get("EB_HELM"):
        return os.environ["EB_HELM"]
    pinned = cache_dir() / "helm" / versions()["HELM_VERSION"] / "bin" / "helm"
    if not os.access(pinned, os.X_OK) and shutil.which("go") and not shutil.which("helm"):
        subprocess.run(["bash", str(REPO / "hack" / "build-binaries.sh"), "helm"], check=True)
    if os.access(pinned, os.X_OK):
        return str(pinned)
    found = shutil.which("helm")
    if not found:
        raise FileNotFoundError(
            f"no helm: run hack/build-binaries.sh helm (expected {pinned}) or set EB_HELM"
        )
    return found


class Helm:
    def __init__(self, kubeconfig: Path | str, binary: str | None = None) -> None:
        self.kubeconfig = str(kubeconfig)
        self.binary = binary or helm_binary()

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, "--kubeconfig", self.kubeconfig, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
        return proc

    def status(self, release: str, namespace: str) -> dict[str, Any] | None:
        proc = self.run("status", release, "-n", namespace, "-o", "json", check=False)
        if proc.returncode != 0:
            return None
        found: dict[str, Any] = json.loads(proc.stdout)
        return found


# --------------------------------------------------------------------------------------------
# the image


def _hack(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), REPO / "hack" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_digest() -> str:
    """The digest hack/ensure-image.py keys the image on (the package source)."""
    return str(_hack("ensure-image").source_digest())


def ensure_image(image: str, kubeconfig: Path) -> str:
    """Make sure the nodes have ``image``; returns how. On the local cluster hack/ensure-image.py
    builds it only when the source changed since the last build."""
    mode = env("EB_E2E_BUILD_IMAGE", "auto")
    if mode == "never" or not is_local_cluster(kubeconfig):
        return "as found"
    t0 = time.monotonic()
    hack = _hack("ensure-image")
    how = str(hack.ensure(image, always=mode == "always"))
    INSTALLS.append((f"image {image} {how}", time.monotonic() - t0))
    t0 = time.monotonic()
    INSTALLS.append((f"image {hack.ensure_stager()} ready", time.monotonic() - t0))
    return how


# --------------------------------------------------------------------------------------------
# reaching the Service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class ServiceURL:
    """The REST API's Service as seen from this machine: its ClusterIP or a NodePort when they
    answer here, else a ``kubectl port-forward service/...`` kept running (and restarted when its
    Pod goes, e.g. after an upgrade). ``EB_E2E_URL`` overrides all of it."""

    kube: Kubectl
    namespace: str
    service: str
    port: int
    forward: subprocess.Popen[bytes] | None = None
    forward_url: str | None = None
    mode: str = ""

    def get(self) -> str:
        if self.mode == "port-forward":
            return self._forwarded()
        svc = self.kube.get("service", self.service, self.namespace)
        for url in self._direct(svc):
            if _answers(url):
                self.mode = "direct"
                return url
        self.mode = "port-forward"
        return self._forwarded()

    def _direct(self, svc: Mapping[str, Any]) -> list[str]:
        """The Service's ClusterIP, and a NodePort on each node's InternalIP, as URLs."""

        def url(host: str, port: int) -> str:
            return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

        out = []
        ip = svc["spec"].get("clusterIP")
        if ip and ip != "None":
            out.append(url(ip, self.port))
        node_ports = [p["nodePort"] for p in svc["spec"].get("ports", []) if p.get("nodePort")]
        if node_ports:
            for node in self.kube.get("nodes")["items"]:
                if (node["metadata"].get("annotations") or {}).get("kwok.x-k8s.io/node") == "fake":
                    continue
                for a in node["status"].get("addresses", []):
                    if a["type"] == "InternalIP":
                        out.append(url(a["address"], node_ports[0]))
        return out

    def _forwarded(self) -> str:
        if (
            self.forward is not None
            and self.forward.poll() is None
            and self.forward_url
            and _answers(self.forward_url)
        ):
            return self.forward_url
        self.close()
        local = _free_port()
        cmd = [self.kube.binary, "--kubeconfig", self.kube.kubeconfig, "-n", self.namespace, "port-forward"]
        cmd += [f"service/{self.service}", f"{local}:{self.port}", "--address", "127.0.0.1"]
        self.forward = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.forward_url = f"http://127.0.0.1:{local}"
        wait_for(lambda: _answers(str(self.forward_url)), 30, f"kubectl port-forward service/{self.service}")
        return self.forward_url

    def close(self) -> None:
        if self.forward is not None and self.forward.poll() is None:
            self.forward.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.forward.wait(10)
        self.forward = None


# --------------------------------------------------------------------------------------------
# the release


def namespace_doc(name: str) -> dict[str, Any]:
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "executionbroker.ivoa.net/e2e": "true",
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


#: Per-owner limits the e2e tests never reach (tests/integration/sharing tests the limits): not
#: percentages for sessions' cores, which the one real node's 2 cores make 2 (the upgrade test
#: holds two 1-core sessions and asks for a third).
E2E_LIMITS = {
    "requestsPerSecond": 100,
    "requestBurst": 200,
    "offerSets": 1000,
    "offeredCoreSeconds": "100%",
    "offeredGpuSeconds": "100%",
    "sessions": 100,
    "sessionCores": 1000,
    "sessionGpus": 1000,
}


@dataclass
class Installation:
    """One release of the chart, installed (idempotently) by :meth:`install`."""

    kube: Kubectl
    helm: Helm
    image: str
    namespace: str
    user_namespace: str
    workdir: Path
    release: str = RELEASE
    tokens: dict[str, str] = field(default_factory=dict)
    platform: str = "eb-e2e"
    service: ServiceURL | None = None
    paused: list[tuple[str, str, int]] = field(default_factory=list)
    install_seconds: float | None = None
    image_source: str = ""
    chart: Path = CHART  # another checkout's chart (benchmarks/deployed.py installs main's too)

    # -- values -------------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        repo, _, tag = self.image.rpartition(":")
        if not repo:
            repo, tag = self.image, "latest"
        # a rebuilt image keeps its tag: the source digest in the Pods' annotations rolls them
        stamp = {"executionbroker.ivoa.net/e2e-source": source_digest()}
        return {
            "image": {"repository": repo, "tag": tag, "pullPolicy": "IfNotPresent"},
            "operator": {
                "watchNamespaces": [self.user_namespace],
                "logLevel": "INFO",
                "podAnnotations": stamp,
            },
            "api": {"answerTimeoutSeconds": 20, "podAnnotations": stamp},
            "auth": {
                "allowAnonymous": False,
                "tokenReview": True,
                "staticTokens": [{"user": u, "token": t} for u, t in sorted(self.tokens.items())],
            },
            "platform": {
                "name": self.platform,
                "spec": {
                    # untainted nodes of the default pool: on the local cluster the real node
                    # (kwok nodes are tainted); on kind the worker (hack/kind-e2e.sh labels it)
                    "nodeSelector": {"executionbroker.ivoa.net/pool": "default"},
                    "slotSeconds": 5,
                    "horizonSeconds": 3600,
                    "offerTtlSeconds": 300,
                    "maxOffers": 3,
                    "preparationSeconds": 3,
                    "releaseSeconds": 2,
                    "defaultStartWindowSeconds": 1800,
                    "gpuFlavours": [{"name": "nvidia", "resourceName": "nvidia.com/gpu"}],
                    # the e2e platform is one small node: limits a test never reaches (the
                    # chart's defaults would allow one 1-core session per user there)
                    "sharing": {"ownerLimits": E2E_LIMITS},
                },
            },
        }

    def values_file(self, extra: Mapping[str, Any] | None = None) -> Path:
        data = self.values()
        if extra:
            data = _merge(data, extra)
        path = self.workdir / "values.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    # -- install, upgrade, uninstall -----------------------------------------------------------

    def pause_other_brokers(self) -> None:
        """Scale any other install's operator to 0 for the tests (two operators would both pause
        in kopf peering, or double-book); :meth:`restore_other_brokers` scales them back. The
        replicas are kept in an annotation, so a session that died before restoring is repaired
        by the next one (which holds the e2e lock, so the pausing session is gone)."""
        selector = f"{PART_OF},app.kubernetes.io/component=operator"
        for d in self.kube.json("get", "deployments", "-A", "-l", selector)["items"]:
            ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
            left = (d["metadata"].get("annotations") or {}).get(PAUSED)
            if left is not None:
                self.kube.run("scale", "deployment", name, "-n", ns, f"--replicas={left}")
                self.kube.run("annotate", "deployment", name, "-n", ns, f"{PAUSED}-")
                d["spec"]["replicas"] = int(left)
            replicas = int(d["spec"].get("replicas") or 0)
            if ns == self.namespace or replicas == 0:
                continue
            self.kube.run("annotate", "deployment", name, "-n", ns, f"{PAUSED}={replicas}", "--overwrite")
            self.kube.run("scale", "deployment", name, "-n", ns, "--replicas=0")
            self.paused.append((ns, name, replicas))
        for ns, name, _ in self.paused:
            wait_for(
                lambda ns=ns, name=name: (
                    not self._pods(ns, f"{PART_OF},app.kubernetes.io/component=operator")
                ),
                120,
                f"the operator of the other install {ns}/{name} to stop",
            )

    def restore_other_brokers(self) -> None:
        for ns, name, replicas in self.paused:
            self.kube.run("scale", "deployment", name, "-n", ns, f"--replicas={replicas}", check=False)
            self.kube.run("annotate", "deployment", name, "-n", ns, f"{PAUSED}-", check=False)
        self.paused.clear()

    def crds(self) -> None:
        """Helm installs crds/ only on first install, never upgrades them: apply them as a user of
        a newer chart would."""
        crds = str(self.chart / "crds")
        self.kube.run("apply", "--server-side", "--force-conflicts", "-f", crds)
        self.kube.run("wait", "--for=condition=Established", "--timeout=60s", "-f", crds)

    def install(self, extra: Mapping[str, Any] | None = None) -> float:
        """``helm upgrade --install --wait``; returns how long it took."""
        if not self.tokens:
            self.tokens = self._existing_tokens() or {u: f"{u}-{secrets.token_hex(12)}" for u in USERS}
        for ns in (self.namespace, self.user_namespace):
            self.kube.apply(namespace_doc(ns))
        self.crds()
        existed = self.installed()
        t0 = time.monotonic()
        self.helm.run(
            "upgrade", "--install", self.release, str(self.chart), "-n", self.namespace,
            "-f", str(self.values_file(extra)), "--wait", "--timeout", "5m",
        )  # fmt: skip
        took = time.monotonic() - t0
        what = "an upgrade" if existed else "a fresh install"
        INSTALLS.append((f"helm upgrade --install --wait: {what} of release {self.release}", took))
        # helm's three-way merge leaves a replica count changed behind its back (a scaled-down
        # operator stays at 0): put the chart's counts back
        for d, want in ((self.operator_deployment, 1), (self.api_deployment, 2)):
            if int(self.kube.get("deployment", d, self.namespace)["spec"].get("replicas") or 0) != want:
                self.kube.run("scale", "deployment", d, "-n", self.namespace, f"--replicas={want}")
        self.wait_ready()
        self.install_seconds = took
        return took

    def _available(self, deployment: str) -> int:
        status = self.kube.get("deployment", deployment, self.namespace).get("status") or {}
        return int(status.get("availableReplicas") or 0)

    def _existing_tokens(self) -> dict[str, str]:
        """The tokens of a previous run's release, so that reinstalling changes nothing."""
        name = f"{self.fullname}-api-tokens"
        if not self.kube.exists("secret", name, self.namespace):
            return {}
        data = self.kube.get("secret", name, self.namespace).get("data") or {}
        text = base64.b64decode(data.get("tokens.csv", "")).decode()
        found = {}
        for line in text.splitlines():
            parts = line.split(",")
            if len(parts) >= 2 and parts[1] in USERS:
                found[parts[1]] = parts[0]
        return found if set(found) == set(USERS) else {}

    def uninstall(self) -> subprocess.CompletedProcess[str]:
        proc = self.helm.run("uninstall", self.release, "-n", self.namespace, "--wait", "--timeout", "5m")
        if self.service is not None:
            self.service.close()
        self.service = None
        return proc

    def installed(self) -> bool:
        st = self.helm.status(self.release, self.namespace)
        return bool(st) and st.get("info", {}).get("status") == "deployed"

    def wait_ready(self) -> None:
        for d, want in ((self.operator_deployment, 1), (self.api_deployment, 2)):
            self.kube.run(
                "rollout", "status", f"deployment/{d}", "-n", self.namespace, "--timeout=180s", timeout=200
            )
            wait_for(  # a rollout of zero replicas is trivially done
                lambda d=d, want=want: self._available(d) >= want,
                120,
                f"deployment {d} to have {want} available replicas",
            )
        wait_for(
            lambda: not [p for p in self.broker_pods() if p["metadata"].get("deletionTimestamp")],
            120,
            "the broker Pods replaced by a rollout to be gone",
        )
        wait_for(lambda: _answers(self.url()), 60, "the REST API to answer through its Service")
        wait_for(
            lambda: (
                (self.kube.get("executionplatforms", self.platform).get("status") or {}).get("valid") is True
            ),
            60,
            "the operator to take its platform",
        )

    # -- names and access ---------------------------------------------------------------------

    @property
    def fullname(self) -> str:
        return self.release if "execution-broker" in self.release else f"{self.release}-execution-broker"

    @property
    def operator_deployment(self) -> str:
        return f"{self.fullname}-operator"

    @property
    def api_deployment(self) -> str:
        return f"{self.fullname}-api"

    def url(self) -> str:
        if os.environ.get("EB_E2E_URL"):
            return os.environ["EB_E2E_URL"].rstrip("/")
        if self.service is None:
            self.service = ServiceURL(self.kube, self.namespace, self.fullname, 80)
        return self.service.get()

    def _pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kube.json("get", "pods", "-n", namespace, "-l", selector)["items"]
        return items

    def broker_pods(self) -> list[dict[str, Any]]:
        return self._pods(self.namespace, f"app.kubernetes.io/instance={self.release}")

    def owner_namespaces(self) -> list[str]:
        """The namespaces the release's operator made for its REST sessions' owners."""
        selector = (
            f"app.kubernetes.io/managed-by=eb-operator,executionbroker.ivoa.net/platform={self.platform}"
        )
        items = self.kube.json("get", "namespaces", "-l", selector)["items"]
        return [n["metadata"]["name"] for n in items]

    def workload_pods(self, namespaces: Sequence[str] | None = None) -> list[dict[str, Any]]:
        out = []
        for ns in (
            (self.namespace, self.user_namespace, *self.owner_namespaces())
            if namespaces is None
            else namespaces
        ):
            out += self._pods(ns, MANAGED_BY_BROKER)
        return out

    def close(self) -> None:
        if self.service is not None:
            self.service.close()


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


LOCK = ("default", "execution-broker-e2e")


def _micro(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def _expired(lease: Mapping[str, Any]) -> bool:
    spec = lease.get("spec") or {}
    renew = str(spec.get("renewTime") or spec.get("acquireTime") or "")
    if not renew:
        return True
    seconds = calendar.timegm(time.strptime(renew[:19], "%Y-%m-%dT%H:%M:%S"))
    return seconds + int(spec.get("leaseDurationSeconds") or 0) < time.time()


@contextlib.contextmanager
def cluster_lock(kube: Kubectl, holder: str, ttl: int = 3600, wait: float = 3600) -> Iterator[None]:
    """One e2e session per cluster at a time: a Lease (default/execution-broker-e2e) taken with
    an atomic create, or by replacing an expired one under its resourceVersion. Two sessions
    would pause each other's operators (kopf peering) and share capacity; the second waits."""
    ns, name = LOCK

    def lease(rv: str | None = None) -> dict[str, Any]:
        now = _micro(time.time())
        meta: dict[str, Any] = {"name": name, "namespace": ns}
        if rv:
            meta["resourceVersion"] = rv
        spec = {"holderIdentity": holder, "leaseDurationSeconds": ttl, "acquireTime": now, "renewTime": now}
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def take() -> bool:
        if kube.run("create", "-f", "-", input=json.dumps(lease()), check=False).returncode == 0:
            return True
        current = kube.json("get", "lease", name, "-n", ns)
        if not _expired(current):
            return False
        rv = current["metadata"]["resourceVersion"]
        return kube.run("replace", "-f", "-", input=json.dumps(lease(rv)), check=False).returncode == 0

    wait_for(take, wait, f"the e2e lock (Lease {ns}/{name}) held by another test session", interval=5)
    try:
        yield
    finally:
        current = kube.run("get", "lease", name, "-n", ns, "-o", "json", check=False)
        if current.returncode == 0 and json.loads(current.stdout)["spec"].get("holderIdentity") == holder:
            kube.run("delete", "lease", name, "-n", ns, "--ignore-not-found", check=False)


@contextlib.contextmanager
def installation(kube: Kubectl, workdir: Path) -> Iterator[Installation]:
    inst = Installation(
        kube=kube,
        helm=Helm(kube.kubeconfig),
        image=env("EB_OPERATOR_IMAGE", "eb-operator:dev"),
        namespace=env("EB_E2E_NAMESPACE", "eb-e2e"),
        user_namespace=env("EB_E2E_USER_NAMESPACE", "eb-e2e-user"),
        workdir=workdir,
    )
    try:
        yield inst
    finally:
        inst.close()
        inst.restore_other_brokers()
