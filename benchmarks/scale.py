"""The broker at scale on the local cluster: prints one JSON document (and writes it to --out).

    python benchmarks/scale.py [--steps 500,1000,2500,5000] [--per-node 10] [--serial 100]
                               [--offersets 160] [--concurrency 16] [--accepts 20] [--out FILE]

One platform of its own grows through ``--steps`` kwok nodes (every 5th a GPU node with 4 GPUs,
the rest CPU nodes of 32 cores / 128 GiB) and ``--per-node`` Executions per node across their
lifecycle (half OFFERED, a quarter WAITING, 15 % COMPLETED, 10 % CANCELLED; reservations at
random nodes and hours). An OFFERED one is an offer in an answered OfferSet's status (offers
are written as Executions only when a client acts on them), the others Executions. At each step
the operator (``benchmarks/counted_operator.py``: the real operator plus request and phase
counters) and the REST API (``eb-operator api``) start as
subprocesses on that state, as in production, and the benchmark measures over real HTTP on
127.0.0.1:

* ``start``: operator start-up (LIST and load of everything) and memory after it; then the time
  from its ready until it answers a first new OfferSet (catch-up: its watches start from the
  start-up LISTs' resourceVersions), before the rest;
* ``offer_serial_ms``: POST /offersets answered, one client (the latency a user sees);
* ``offer_concurrent_ms`` and ``offers_per_s``: the same from ``--concurrency`` clients;
* ``decide_ms``: the operator's own decision time per OfferSet (engine + ledger), p50/p99;
* ``accept_to_pod_created_ms``: POST ACCEPTED to the client seeing the Pod (watch ADDED);
  then half of the accepted sessions are cancelled and the other offers rejected;
* ``operator_requests``: the operator's requests to the API server during the workload
  (counted in the operator's client, by verb and resource) and their rate; the apiserver's
  own request rate over the same window (every client: kwok's heartbeats dominate it);
* ``memory_mib``: operator, API and cluster components (RSS) after the workload.

Setup is timed too: nodes and Executions are created by concurrent raw POSTs (``--workers``).
Everything it creates (namespace, nodes, platform) is deleted at the end; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from tests.support.kube import (  # noqa: E402
    KWOK_TOLERATION,
    find_kubeconfig,
    is_local_cluster,
    kwok_node,
    namespace_manifest,
)

from cluster_scale import component_rss_mib  # noqa: E402
from eb_operator.model.times import format_instant  # noqa: E402
from reporting import emit, memory_mib, percentile  # noqa: E402

GROUP = "executionbroker.ivoa.net"
API = f"{GROUP}/v1alpha1"
STD = "https://www.purl.org/ivoa.net/EB/schema/types/"
DOCKER = STD + "executables/docker-container-1.0"
COMPUTE = STD + "resources/compute/simple-compute-resource-1.0"
TOKEN = "scale-bench-token-0123456789"
JSON_H = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Authorization": f"Bearer {TOKEN}",
}
GPU_EVERY = 5
# i % 20 -> phase of the i-th filler Execution
MIX = ["OFFERED"] * 10 + ["WAITING"] * 5 + ["COMPLETED"] * 3 + ["CANCELLED"] * 2


def stats_ms(seconds: list[float]) -> dict[str, Any]:
    ms = [1000 * s for s in seconds]
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50": percentile(ms, 50), "p99": percentile(ms, 99), "max": round(max(ms), 2)}


def rss_mib(pid: int) -> dict[str, float]:
    return {"rss" if key == "VmRSS" else "peak": mib for key, mib in memory_mib(pid).items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def kube_http(kubeconfig: Path, connections: int) -> httpx.AsyncClient:
    """A raw HTTP client for the API server: pre-built JSON bodies, no model round trips."""
    cfg = k8s_client.Configuration()
    await k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    tls = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    tls.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
    return httpx.AsyncClient(
        base_url=str(cfg.host),
        verify=tls,
        limits=limits,
        timeout=httpx.Timeout(60, connect=10),
    )


async def bounded(items: list[Any], workers: int, work: Callable[[Any], Awaitable[None]]) -> None:
    it = iter(items)

    async def worker() -> None:
        for item in it:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(workers)))


async def send(http: httpx.AsyncClient, method: str, url: str, body: Any, ok: tuple[int, ...]) -> None:
    for attempt in range(5):  # a busy API server may answer 429/5xx: back off, bounded
        r = await http.request(method, url, content=json.dumps(body), headers=_ctype(method))
        if r.status_code in ok:
            return
        if r.status_code not in (429, 500, 503, 504) or attempt == 4:
            raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:300]}")
        await asyncio.sleep(0.5 * (attempt + 1))


def _ctype(method: str) -> dict[str, str]:
    return {"Content-Type": "application/merge-patch+json" if method == "PATCH" else "application/json"}


# --- the state the operator loads ---------------------------------------------------------------


def node_body(name: str, i: int, label: dict[str, str]) -> dict[str, Any]:
    body = kwok_node(name, cpu="32", memory="128Gi", gpus=4 if i % GPU_EVERY == 0 else 0, labels=label)
    now = format_instant(int(time.time()))
    # Ready from its first write: the operator does not wait for kwok's first heartbeat
    body["status"]["conditions"] = [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kwok",
         "lastHeartbeatTime": now, "lastTransitionTime": now}
    ]  # fmt: skip
    return body


def ivoa(cores: int, gpus: int = 0, name: str = "scale") -> dict[str, Any]:
    compute: dict[str, Any] = {
        "type": COMPUTE,
        "name": "compute-1",
        "cores": {"requested": {"min": cores}},
        "memory": {"requested": {"min": 2}},
    }
    if gpus:
        compute["gpus"] = {"requested": {"min": gpus, "max": gpus}}
    return {
        "name": name,
        "executable": {
            "type": DOCKER,
            "image": {"locations": ["eb-workload:latest"]},
            "entrypoint": "sleep",
            "command": ["3600"],
        },
        "resources": {"compute": [compute]},
        "schedule": {"requested": {"duration": "PT1H"}},
    }


def filler(i: int, nodes: list[str], now: int, rng: random.Random) -> tuple[dict[str, Any], str]:
    phase = MIX[i % len(MIX)]
    node = rng.choice(nodes)
    gpu_node = int(node.rsplit("-n", 1)[1]) % GPU_EVERY == 0
    gpus = 1 if gpu_node and rng.random() < 0.5 else 0
    hours = rng.randrange(1, 21) if phase in ("OFFERED", "WAITING") else -rng.randrange(3, 9)
    start = now - now % 3600 + hours * 3600
    spec: dict[str, Any] = {
        "offerSet": f"filler-{i}",
        "request": ivoa(1, gpus),
        "reservation": {
            "node": node,
            "prepareStart": format_instant(start - 30),
            "start": format_instant(start),
            "duration": "PT1H",
            "releaseEnd": format_instant(start + 3660),
            "expires": format_instant(now + 6 * 3600),
            "cores": rng.randint(1, 4),
            "memoryGiB": rng.randint(1, 8),
            "storageGiB": 0,
            "gpus": gpus,
        },
    }
    if phase == "OFFERED":  # an offer nobody acted on yet: held in its answered set's status
        offer = {"name": f"fill-{i}", "uuid": f"fill-{i}", "reservation": spec["reservation"]}
        status = {"result": "YES", "offers": [offer], "expires": spec["reservation"]["expires"]}
        body = {
            "apiVersion": API,
            "kind": "OfferSet",
            "metadata": {"name": f"filler-{i}"},
            "spec": {"request": spec["request"]},
            "status": status,
        }
        return body, phase
    spec["desiredPhase"] = "CANCELLED" if phase == "CANCELLED" else "ACCEPTED"
    body = {"apiVersion": API, "kind": "Execution", "metadata": {"name": f"fill-{i}"}, "spec": spec}
    return body, phase


async def grow(
    http: httpx.AsyncClient, ns: str, tag: str, nodes: list[str], have: dict[str, int], want_nodes: int,
    per_node: int, workers: int,
) -> dict[str, Any]:  # fmt: skip
    """Add nodes up to ``want_nodes`` and Executions up to ``per_node`` per node; timed."""
    out: dict[str, Any] = {}
    label = {"eb-bench-scale": tag}
    new = [f"{tag}-n{i}" for i in range(len(nodes), want_nodes)]
    t = time.monotonic()
    await bounded(
        list(enumerate(new, start=len(nodes))),
        workers,
        lambda x: send(http, "POST", "/api/v1/nodes", node_body(x[1], x[0], label), (201,)),
    )
    nodes.extend(new)
    out["nodes_added"] = len(new)
    out["nodes_s"] = round(time.monotonic() - t, 1)

    rng = random.Random(len(nodes))
    now = int(time.time())
    first, last = have["executions"], want_nodes * per_node
    base = f"/apis/{GROUP}/v1alpha1/namespaces/{ns}"

    async def one(i: int) -> None:
        body, phase = filler(i, nodes, now, rng)
        status: dict[str, Any] = body.pop("status", None) or {"phase": phase, "observedGeneration": 1}
        plural = "offersets" if body["kind"] == "OfferSet" else "executions"
        await send(http, "POST", f"{base}/{plural}", body, (201,))
        if phase != "OFFERED" or plural == "offersets":  # as the operator would have answered it
            name = body["metadata"]["name"]
            await send(http, "PATCH", f"{base}/{plural}/{name}/status", {"status": status}, (200,))

    t = time.monotonic()
    await bounded(list(range(first, last)), workers, one)
    have["executions"] = last
    out["executions_added"] = last - first
    out["executions_s"] = round(time.monotonic() - t, 1)
    out["executions_per_s"] = round((last - first) / max(1e-9, time.monotonic() - t), 1)
    return out


# --- the broker's two processes -----------------------------------------------------------------


class Processes:
    """The operator (with counters) and the REST API as subprocesses, as they run in production."""

    def __init__(self, ns: str, platform: str, kubeconfig: Path, logs: Path) -> None:
        self.op_port, self.api_port = free_port(), free_port()
        self.counters = logs / f"counters-{self.op_port}.json"
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "EB_LOG_LEVEL": "WARNING"}
        op_cmd = [sys.executable, str(REPO / "benchmarks" / "counted_operator.py"), ns, platform]
        op_cmd += [str(self.op_port), str(self.counters)]
        api_env = env | {
            "EB_API_NAMESPACE": ns,
            "EB_API_KUBECONFIG": str(kubeconfig),
            "EB_API_STATIC_TOKENS": f"{TOKEN},scale-bench",
            "EB_API_TOKEN_REVIEW": "false",
            "EB_API_ANSWER_TIMEOUT_SECONDS": "60",
        }
        api_cmd = [sys.executable, "-m", "eb_operator.cli", "api", "--host", "127.0.0.1"]
        api_cmd += ["--port", str(self.api_port)]
        with (logs / "operator.log").open("ab") as log:
            self.op = subprocess.Popen(op_cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        with (logs / "api.log").open("ab") as log:
            self.api = subprocess.Popen(api_cmd, stdout=log, stderr=subprocess.STDOUT, env=api_env, cwd=REPO)
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.logs = logs

    async def ready(self, timeout: float = 900) -> dict[str, Any]:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        health: dict[str, Any] | None = None
        async with httpx.AsyncClient() as h:
            while time.monotonic() < deadline:
                for p, what in ((self.op, "operator"), (self.api, "api")):
                    if p.poll() is not None:
                        raise RuntimeError(f"the {what} exited; see {self.logs}")
                with contextlib.suppress(httpx.HTTPError):
                    if health is None:
                        r = await h.get(f"http://127.0.0.1:{self.op_port}/healthz", timeout=5)
                        if r.status_code == 200 and r.json().get("broker", {}).get("ready"):
                            health = dict(r.json()["broker"])
                    if health is not None:
                        r = await h.get(f"{self.url}/readyz", timeout=5)
                        if r.status_code == 200:
                            return health
                await asyncio.sleep(0.2)
        raise TimeoutError(f"the broker did not become ready; see {self.logs}")

    def counters_now(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(self.counters.read_text()))
        return {"requests": {}, "samples": {}}

    def stop(self) -> None:
        for p in (self.op, self.api):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (self.op, self.api):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


# --- the workload -------------------------------------------------------------------------------


async def apiserver_requests(http: httpx.AsyncClient) -> float:
    """Every request the API server has served (the sum of apiserver_request_total)."""
    r = await http.get("/metrics")
    r.raise_for_status()
    total = 0.0
    for line in r.text.splitlines():
        if line.startswith("apiserver_request_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def pods_seen(http: httpx.AsyncClient, ns: str, seen: dict[str, float], news: asyncio.Event) -> None:
    """Execution name -> when this client first saw its Pod (a watch, restarted when it ends)."""
    label = f"{GROUP}/execution"
    while True:
        with contextlib.suppress(httpx.HTTPError):
            params = {"watch": "true", "labelSelector": label, "timeoutSeconds": "300"}
            async with http.stream("GET", f"/api/v1/namespaces/{ns}/pods", params=params, timeout=None) as r:
                async for line in r.aiter_lines():
                    if not line:
                        continue
                    obj = json.loads(line).get("object") or {}
                    name = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
                    if name and name not in seen:
                        seen[name] = time.monotonic()
                        news.set()


def phase_update(value: str) -> bytes:
    return json.dumps({"update": {"type": "uri:enum-value-update", "path": "phase", "value": value}}).encode()


async def first_answer(rest: httpx.AsyncClient, limit: float = 900) -> dict[str, Any]:
    """From the operator's ready to its first answer of a new OfferSet (the catch-up after a start:
    the API answers 503 "try again" to a client that waits longer than its answer timeout, 60 s,
    and this client does try again)."""
    t = time.monotonic()
    unavailable = 0
    while time.monotonic() - t < limit:
        r = await rest.post("/offersets", content=json.dumps(ivoa(1, name="first")).encode())
        if r.status_code == 303:
            return {"first_answer_s": round(time.monotonic() - t, 1), "answers_503_meanwhile": unavailable}
        if r.status_code != 503:
            raise RuntimeError(f"first POST /offersets: {r.status_code} {r.text[:300]}")
        unavailable += 1
    raise RuntimeError(f"no answer within {limit} s of the operator's start")


async def workload(
    rest: httpx.AsyncClient, kube: httpx.AsyncClient, procs: Processes, ns: str, args: argparse.Namespace
) -> dict[str, Any]:
    rng = random.Random(11)
    answered: list[dict[str, Any]] = []
    errors: list[str] = []

    def request_doc(i: int) -> bytes:
        gpus = 1 if i % 5 == 0 else 0
        return json.dumps(ivoa(rng.randint(1, 8), gpus, name=f"s{i}")).encode()

    async def post(i: int, out: list[float]) -> None:
        t = time.perf_counter()
        r = await rest.post("/offersets", content=request_doc(i))
        if r.status_code != 303:
            errors.append(f"POST /offersets {r.status_code}: {r.text[:200]}")
            return
        out.append(time.perf_counter() - t)
        answered.append(r.json())

    warm: list[float] = []
    for i in range(3):  # the first requests open connections and fill caches: not counted
        await post(-1 - i, warm)
    serial: list[float] = []
    for i in range(args.serial):
        await post(i, serial)
    concurrent: list[float] = []
    t = time.perf_counter()
    await bounded(
        list(range(args.serial, args.serial + args.offersets)),
        args.concurrency,
        lambda i: post(i, concurrent),
    )
    wall = time.perf_counter() - t

    # accept (timing until the client sees the Pod), then cancel half; reject the other offers
    seen: dict[str, float] = {}
    news = asyncio.Event()
    watcher = asyncio.create_task(pods_seen(kube, ns, seen, news))
    await asyncio.sleep(1)  # the watch's initial LIST returns first: a benchmark pacing itself
    accepted: dict[str, float] = {}
    with_offers = [d for d in answered if d.get("result") == "YES" and d.get("offers")]
    fresh: list[float] = []
    for i in range(args.accepts):
        # a fresh offer each: one made minutes ago starts in the past, and its accept is refused
        n = len(answered)
        await post(100_000 + i, fresh)
        doc = answered[-1] if len(answered) > n else {}
        if doc.get("result") != "YES" or not doc.get("offers"):
            continue
        href = doc["offers"][0]["href"]
        t0 = time.monotonic()
        r = await rest.post(href, content=phase_update("ACCEPTED"))
        if r.status_code != 200:
            errors.append(f"accept {r.status_code}: {r.text[:300]}")
            continue
        accepted[href.rstrip("/").rsplit("/", 1)[1]] = t0
    deadline = time.monotonic() + 120
    while not set(accepted) <= set(seen) and time.monotonic() < deadline:
        news.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(news.wait(), deadline - time.monotonic())
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    to_pod = [seen[u] - t0 for u, t0 in accepted.items() if u in seen]
    for u in list(accepted)[::2]:
        r = await rest.post(f"/sessions/{u}", content=phase_update("CANCELLED"))
        if r.status_code != 200:
            errors.append(f"cancel {r.status_code}: {r.text[:200]}")
    rejects = [o["href"] for d in with_offers for o in d["offers"]][: args.offersets]

    async def reject(href: str) -> None:
        r = await rest.post(href, content=phase_update("REJECTED"))
        if r.status_code not in (200, 409):  # 409: already rejected as a sibling
            errors.append(f"reject {r.status_code}: {r.text[:200]}")

    await bounded(rejects, args.concurrency, reject)
    return {
        "offer_serial_ms": stats_ms(serial),
        "offer_concurrent_ms": stats_ms(concurrent),
        "offers_per_s": round(len(concurrent) / wall, 1),
        "answers": {
            "YES": sum(d.get("result") == "YES" for d in answered),
            "NO": sum(d.get("result") == "NO" for d in answered),
        },
        "accept_to_pod_created_ms": stats_ms(to_pod),
        "accepted_without_pod_in_120s": len(accepted) - len(to_pod),
        "cancelled": len(list(accepted)[::2]),
        "rejected": len(rejects),
        "errors": errors[:10],
        "error_count": len(errors),
    }


def request_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    keys = sorted(set(before) | set(after))
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys if after.get(k, 0) != before.get(k, 0)}


async def step(
    kube: httpx.AsyncClient, ns: str, platform: str, kubeconfig: Path, logs: Path, args: argparse.Namespace
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    t = time.monotonic()
    procs = Processes(ns, platform, kubeconfig, logs)
    try:
        health = await procs.ready()
        out["start"] = {
            "operator_ready_s": round(time.monotonic() - t, 1),
            "executions_loaded": health.get("executions"),
            "reservations_loaded": health.get("reservations"),
            "operator_memory_mib": rss_mib(procs.op.pid),
            "operator_requests": procs.counters_now()["requests"],
        }
        limits = httpx.Limits(max_connections=args.concurrency + 4)
        async with httpx.AsyncClient(base_url=procs.url, headers=JSON_H, timeout=120, limits=limits) as rest:
            out["start"] |= await first_answer(rest)  # the steady state is measured after it
            before = procs.counters_now()
            server_before = await apiserver_requests(kube)
            t = time.monotonic()
            out |= await workload(rest, kube, procs, ns, args)
            seconds = time.monotonic() - t
            server_after = await apiserver_requests(kube)
            after = procs.counters_now()
        delta = request_delta(before["requests"], after["requests"])
        non_watch = sum(v for k, v in delta.items() if not k.startswith("WATCH"))
        out["workload_s"] = round(seconds, 1)
        out["operator_requests"] = {
            "total": non_watch,
            "per_s": round(non_watch / seconds, 1),
            "by_kind": delta,
        }
        out["apiserver_requests_per_s_all_clients"] = round((server_after - server_before) / seconds, 1)
        decide = after["samples"].get("decide", [])[len(before["samples"].get("decide", [])) :]
        out["decide_ms"] = stats_ms(decide)
        answers = after["samples"].get("answer", [])[len(before["samples"].get("answer", [])) :]
        out["answer_ms"] = stats_ms(answers)  # the status write holding the offers
        out["memory_mib"] = {
            "operator": rss_mib(procs.op.pid),
            "api": rss_mib(procs.api.pid),
            "cluster": component_rss_mib(),
        }
    finally:
        procs.stop()
    return out


async def delete_everything(kube: httpx.AsyncClient, ns: str, platform: str, node_label: str) -> float:
    """One collection delete each (the API server walks the objects, not this client), then wait
    (bounded) until the namespace is gone, so the next user of the cluster finds it as it was."""
    t = time.monotonic()
    base = f"/apis/{API}/namespaces/{ns}"
    for url in (f"{base}/offersets", f"{base}/executions"):
        with contextlib.suppress(httpx.HTTPError):
            await kube.delete(url, timeout=600)
    await kube.delete(f"/api/v1/namespaces/{ns}")
    await kube.delete(f"/apis/{API}/executionplatforms/{platform}")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if (await kube.get(f"/api/v1/namespaces/{ns}")).status_code == 404:
            break
        await asyncio.sleep(2)  # polling a deletion the API server carries out, bounded
    # the nodes last: kwok finishes the Pods' deletion only while it still manages their nodes
    await kube.delete("/api/v1/nodes", params={"labelSelector": node_label}, timeout=600)
    return round(time.monotonic() - t, 1)


def node_leases(seconds: int) -> None:
    """Restart kwok and the controller-manager of the local cluster with node Leases of
    ``seconds`` (0: the defaults). kwok renews every node's Lease each quarter of its duration:
    500 renewals/s at 5,000 nodes with the default 40 s, more than this machine's two cores
    serve beside the broker; nodes then flap NotReady and the operator rightly fails the
    sessions on them. The broker never reads Leases (it watches Nodes), so this changes the
    harness's cost, not what the broker does. The controller-manager's grace must outlast a
    renewal interval."""
    env = dict(os.environ)
    if seconds:
        env |= {"EB_NODE_LEASE_SECONDS": str(seconds), "EB_NODE_MONITOR_GRACE": f"{seconds // 4 + 80}s"}
    for component in ("kube-controller-manager", "kwok"):
        subprocess.run(
            ["bash", str(REPO / "hack" / "cluster.sh"), "restart", component],
            env=env, check=True, timeout=300, stdout=subprocess.DEVNULL,
        )  # fmt: skip


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", default="500,1000,2500,5000", help="node counts, ascending")
    p.add_argument("--per-node", type=int, default=10, help="Executions per node")
    p.add_argument("--serial", type=int, default=100)
    p.add_argument("--offersets", type=int, default=160)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--accepts", type=int, default=20)
    p.add_argument("--workers", type=int, default=16, help="concurrent creates while setting up")
    p.add_argument(
        "--lease-seconds", type=int, default=400,
        help="kwok node Lease duration during a run with steps above 1,000 nodes on the local "
        "cluster (hack/cluster.sh; restored afterwards); 0 leaves the cluster as it is",
    )  # fmt: skip
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    if steps != sorted(steps) or not steps or steps[0] < 1:
        p.error("--steps: ascending positive node counts, e.g. 500,1000,2500,5000")
    kubeconfig = find_kubeconfig()
    if kubeconfig is None:
        print("no cluster: run hack/cluster.sh up or set KUBECONFIG", file=sys.stderr)
        return 2
    tag = f"eb-scale-{uuid.uuid4().hex[:6]}"
    ns = platform = tag
    logs = Path(tempfile.mkdtemp(prefix="eb-scale-"))
    kube = await kube_http(kubeconfig, args.workers + 8)
    report: dict[str, Any] = {
        "benchmark": "scale",
        "when": format_instant(int(time.time())),
        "cpus": os.cpu_count(),
        "command": " ".join(["python", "benchmarks/scale.py", *sys.argv[1:]]),
        "shape": {
            "cpu_node": "32 cores, 128 GiB",
            "gpu_node": f"every {GPU_EVERY}th: 32 cores, 128 GiB, 4 nvidia.com/gpu",
            "executions_per_node": args.per_node,
            "filler_phases": {ph: MIX.count(ph) / len(MIX) for ph in dict.fromkeys(MIX)},
        },
        "targets": {"offer_p99_ms_at_5000_nodes": 100, "operator_memory_mib": 1024},
        "logs": str(logs),
        "steps": [],
    }
    nodes: list[str] = []
    have = {"executions": 0}
    leases = args.lease_seconds if steps[-1] > 1000 and is_local_cluster(kubeconfig) else 0
    report["node_lease_seconds"] = leases or 40
    try:
        if leases:
            node_leases(leases)
        for manifest in (
            namespace_manifest(ns),
            {
                "apiVersion": API,
                "kind": "ExecutionPlatform",
                "metadata": {"name": platform},
                "spec": {
                    "nodeSelector": {"eb-bench-scale": tag},
                    "toleration": {k: v for k, v in KWOK_TOLERATION.items() if k != "operator"},
                    "slotSeconds": 1,
                    "horizonSeconds": 24 * 3600,
                    "offerTtlSeconds": 3600,
                    "maxOffers": 4,
                    "preparationSeconds": 0,
                    "releaseSeconds": 1,
                    "gpuFlavours": [
                        {"name": "ad104", "resourceName": "nvidia.com/gpu", "product": "nvidia-ad104"}
                    ],
                },
            },
        ):
            url = (
                "/api/v1/namespaces" if manifest["kind"] == "Namespace" else f"/apis/{API}/executionplatforms"
            )
            await send(kube, "POST", url, manifest, (201,))
        for n in steps:
            entry: dict[str, Any] = {"nodes": n}
            report["steps"].append(entry)
            try:
                entry["setup"] = await grow(kube, ns, tag, nodes, have, n, args.per_node, args.workers)
                entry["executions"] = have["executions"]
                print(f"{time.strftime('%H:%M:%S')} {n} nodes: {entry['setup']}", file=sys.stderr, flush=True)
                entry |= await step(kube, ns, platform, kubeconfig, logs, args)
            except Exception as e:  # keep what the smaller steps measured; say where it stopped
                entry["error"] = repr(e)[:500]
                break
            finally:
                print(json.dumps(entry), file=sys.stderr, flush=True)
        report["growth_first_to_last"] = growth(report["steps"])
    finally:
        report["cleanup_s"] = await delete_everything(kube, ns, platform, f"eb-bench-scale={tag}")
        await kube.aclose()
        if leases:
            node_leases(0)
    emit(report, args.out)
    return 0


def growth(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """How each figure grows from the first step to the last (ratio last / first)."""
    if len(steps) < 2:
        return {}
    a, b = steps[0], steps[-1]

    def ratio(get: Callable[[dict[str, Any]], float]) -> float | None:
        with contextlib.suppress(KeyError, TypeError, ZeroDivisionError):
            return round(get(b) / get(a), 2)
        return None

    return {
        "nodes": ratio(lambda s: s["nodes"]),
        "executions": ratio(lambda s: s["executions"]),
        "offer_serial_p99": ratio(lambda s: s["offer_serial_ms"]["p99"]),
        "offer_concurrent_p99": ratio(lambda s: s["offer_concurrent_ms"]["p99"]),
        "decide_p99": ratio(lambda s: s["decide_ms"]["p99"]),
        "accept_to_pod_p50": ratio(lambda s: s["accept_to_pod_created_ms"]["p50"]),
        "operator_rss": ratio(lambda s: s["memory_mib"]["operator"]["rss"]),
        "api_rss": ratio(lambda s: s["memory_mib"]["api"]["rss"]),
        "operator_requests_per_s": ratio(lambda s: s["operator_requests"]["per_s"]),
        "operator_start_s": ratio(lambda s: s["start"]["operator_ready_s"]),
        "first_answer_s": ratio(lambda s: s["start"]["first_answer_s"]),
    }


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
