"""Load on the broker's REST API for ``--minutes``: prints one JSON document (and writes --out).

    python benchmarks/load.py [--minutes 10] [--clients 16] [--nodes 12] [--window 30]
                              [--broker in-cluster|processes] [--out FILE] [--svg FILE]
                              [--ttl SECONDS] [--state-svg FILE] [--etcd-metrics URL]

The broker (``--broker``) is, by default, the in-cluster one as users run it: the Helm chart
installed from the locally built image as tests/e2e installs it (a release named after the run; its two
API replicas reached at their Pods' addresses, the clients spread over them as a Service would;
other installs' operators paused meanwhile).
``processes`` runs ``eb-operator operator`` (with request counters,
``benchmarks/counted_operator.py``) and ``eb-operator api`` as processes on 127.0.0.1 instead,
which starts in seconds and counts the operator's API-server requests. Either way it has a small
platform of its own so that clients compete for capacity: ``--nodes`` kwok nodes
of 16 cores and 64 GiB, every third with 2 GPUs. ``--clients`` concurrent clients (bounded,
loopback only) loop until the time is up: ask for offers (1-8 cores, one in six a GPU, 5 to 20
minutes, some at a later start), then accept one offer (half the time), reject one (a quarter)
or let them expire (offers live 20 s); half of the accepted sessions are cancelled again, and
some sessions are read back with GET.

Reported: every request's status and latency; per ``--window`` seconds the count, throughput
and p50/p95/p99 per kind of request; totals of 5xx (target: zero). An independent checker,
sharing no code with the operator, reads the API state every window and at the end: per node
and resource (cores, memory, GPUs), the reservations holding capacity never exceed the node's
allocatable at any instant, and neither do the live broker Pods' requests (target: zero
double bookings). ``--svg`` draws latency and throughput over the run.

State over time (the broker's retention, docs/operations.md): every ``--window`` seconds the
number of OfferSets, of Executions still to run or running and of those done, and of Pods on the
platform's nodes (in any namespace: sessions run in their owners'), and etcd's database size (its
``/metrics``: ``etcd_mvcc_db_total_size_in_bytes``, the file, and ``..._in_use_in_bytes``, what
is not free pages; ``--etcd-metrics``, the local cluster's by default). ``--ttl`` sets the
platform's retention (both TTLs) to that many seconds; ``--state-svg`` draws objects and etcd's
size over the run. Every session that FAILED is recorded with its message the first time a check
sees it (retention may delete it before the end), and those the scheduler refused ("Insufficient
cpu" and the like) are counted apart.
Everything it creates is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from tests.e2e.install import Helm, Installation, ensure_image, env  # noqa: E402
from tests.support.kube import KWOK_TOLERATION, Kubectl, find_kubeconfig, namespace_manifest  # noqa: E402
from tests.support.reservations import holding_spans, live_at_starts, with_offers  # noqa: E402

from eb_operator.model.times import format_instant  # noqa: E402
from load_plot import state_svg, svg  # noqa: E402
from reporting import emit, memory_mib, percentile  # noqa: E402
from scale import (  # noqa: E402
    API,
    JSON_H,
    TOKEN,
    Processes,
    delete_everything,
    ivoa,
    kube_http,
    node_body,
    rss_mib,
    send,
)

NODE_CORES, NODE_GIB, NODE_GPUS, GPU_EVERY = 16, 64, 2, 3


def quantity(text: str | int) -> float:
    """A Kubernetes quantity as a number (cores, bytes or a count); enough for requests/limits."""
    s = str(text)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix in sorted(units, key=len, reverse=True):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * units[suffix]
    return float(s)


# --- the independent checker -------------------------------------------------------------------


def over_booked(executions: list[dict[str, Any]], nodes: dict[str, dict[str, float]]) -> list[str]:
    """Per node, at each reservation's start (where a sum of intervals peaks), the reservations
    holding capacity then, summed per resource, against the node's allocatable."""
    problems = []
    for node, items in holding_spans(executions).items():
        cap = nodes.get(node)
        if cap is None:
            problems.append(f"{node}: reservations on a node that is not there")
            continue
        for t, live in live_at_starts(items):
            used = {
                "cpu": sum(float(r.get("cores", 0)) for r in live),
                "memory": sum(float(r.get("memoryGiB", 0)) * 2**30 for r in live),
                "gpu": sum(float(r.get("gpus", 0)) for r in live),
            }
            over = {k: v for k, v in used.items() if v > cap[k] + 1e-6}
            if over:  # with what holds then, so that a finding can be understood afterwards
                held = "; ".join(
                    f"{r.get('_name')} {r.get('_phase')} set={r.get('_set')} {r.get('cores')}c "
                    f"{r.get('prepareStart')}..{r.get('releaseEnd')} expires={r.get('expires')}"
                    for r in live
                )
                problems.append(f"{node} at {t:%H:%M:%S}: {over} > {cap}: {held}")
    return problems


def labelled(executions: list[Any]) -> list[dict[str, Any]]:
    """Each Execution with its name, phase and set copied into its reservation (for reports)."""
    out = []
    for e in executions:
        spec = dict(e.get("spec") or {})
        if spec.get("reservation"):
            phase = (e.get("status") or {}).get("phase")
            spec["reservation"] = {
                **spec["reservation"],
                "_name": e["metadata"]["name"],
                "_phase": phase or f"none(desired {spec.get('desiredPhase')})",
                "_set": spec.get("offerSet"),
            }
        out.append({**e, "spec": spec})
    return out


def pods_over(pods: list[dict[str, Any]], nodes: dict[str, dict[str, float]]) -> list[str]:
    """The live Pods' requests summed per node, against its allocatable (what a kubelet admits)."""
    used: dict[str, dict[str, float]] = defaultdict(lambda: {"cpu": 0.0, "memory": 0.0, "gpu": 0.0})
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if not node or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for c in p["spec"].get("containers") or []:
            req = (c.get("resources") or {}).get("requests") or {}
            used[node]["cpu"] += quantity(req.get("cpu", 0))
            used[node]["memory"] += quantity(req.get("memory", 0))
            used[node]["gpu"] += quantity(req.get("nvidia.com/gpu", 0))
    return [
        f"pods on {n}: {u} > {nodes.get(n)}"
        for n, u in used.items()
        if n in nodes and any(u[k] > nodes[n][k] + 1e-6 for k in u)
    ]


async def check_state(kube: httpx.AsyncClient, ns: str, label: str) -> dict[str, Any]:
    """One look at the API server's state by the independent checker."""
    nodes: dict[str, dict[str, float]] = {}
    for n in (await kube.get("/api/v1/nodes", params={"labelSelector": label})).json()["items"]:
        alloc = n["status"]["allocatable"]
        nodes[n["metadata"]["name"]] = {
            "cpu": quantity(alloc["cpu"]),
            "memory": quantity(alloc["memory"]),
            "gpu": quantity(alloc.get("nvidia.com/gpu", 0)),
        }
    # the sets before the Executions: see tests.support.reservations.with_offers
    sets = (await kube.get(f"/apis/{API}/namespaces/{ns}/offersets")).json()["items"]
    exes = (await kube.get(f"/apis/{API}/namespaces/{ns}/executions")).json()["items"]
    # every Pod on the platform's nodes, whatever its namespace: REST sessions run in their
    # owners' namespaces, and the kubelet admits against all of them
    everywhere = (await kube.get("/api/v1/pods")).json()["items"]
    pods = [p for p in everywhere if (p.get("spec") or {}).get("nodeName") in nodes]
    phases: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)  # why sessions failed, by message
    failed_by_name: dict[str, str] = {}
    for e in exes:
        status = e.get("status") or {}
        phases[status.get("phase") or "OFFERED(spec)"] += 1
        if status.get("phase") == "FAILED":
            failed[str(status.get("message", ""))[:120]] += 1
            failed_by_name[e["metadata"]["name"]] = str(status.get("message", ""))
    return {
        "executions": len(exes),
        "pods": len(pods),
        "phases": dict(sorted(phases.items())),
        "failed": dict(sorted(failed.items())),
        "failed_by_name": failed_by_name,
        "offersets": len(sets),
        "double_bookings": over_booked(labelled(with_offers(exes, sets)), nodes) + pods_over(pods, nodes),
    }


# --- state over time -----------------------------------------------------------------------------

ETCD_METRICS = "http://127.0.0.1:2379/metrics"
REFUSED_BY_SCHEDULER = ("Insufficient", "could not be placed")


async def etcd_sizes(url: str) -> dict[str, float]:
    """etcd's database file, its part in use, and its keys (all revisions' live keys)."""
    wanted = {
        "etcd_mvcc_db_total_size_in_bytes": "etcd_db_bytes",
        "etcd_mvcc_db_total_size_in_use_in_bytes": "etcd_db_in_use_bytes",
        "etcd_debugging_mvcc_keys_total": "etcd_keys",
    }
    out: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as c:
        for line in (await c.get(url)).text.splitlines():
            name, _, value = line.partition(" ")
            if name in wanted:
                out[wanted[name]] = float(value)
    return out


FINAL = ("COMPLETED", "FAILED", "CANCELLED", "REJECTED", "EXPIRED")


async def sample_state(look: dict[str, Any], etcd_url: str, at_s: float) -> dict[str, Any]:
    """What the broker keeps at one moment (from a check's listing): sets, sessions still to run or
    running (live: they hold reservations, some hours ahead), sessions done (retention's), Pods;
    and etcd's size."""
    phases: dict[str, int] = look["phases"]
    done = sum(n for ph, n in phases.items() if ph in FINAL)
    return {
        "at_s": round(at_s, 1),
        "offersets": look["offersets"],
        "executions_live": sum(phases.values()) - done,
        "executions_done": done,
        "pods": look["pods"],
        **await etcd_sizes(etcd_url),
    }


# --- the in-cluster broker -----------------------------------------------------------------------


#: Per-owner limits far beyond anything the load asks for.
NO_LIMITS = {
    "requestsPerSecond": 100_000,
    "requestBurst": 100_000,
    "offerSets": 1_000_000,
    "offeredCoreSeconds": 10**12,
    "offeredGpuSeconds": 10**12,
    "sessions": 1_000_000,
    "sessionCores": 1_000_000,
    "sessionGpus": 1_000_000,
}


@dataclass
class _LoadRelease(Installation):
    """The e2e suite's release, with the load's platform in place of the e2e one."""

    load_spec: dict[str, Any] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        out = super().values()
        out["platform"]["spec"] = self.load_spec
        out["operator"]["logLevel"] = "WARNING"
        return out


def pod_memory_mib(uid: str) -> float:
    """Resident memory of one Pod's processes: they run on this machine (the real node), in
    cgroups named after the Pod's uid."""
    marks = (uid, uid.replace("-", "_"))
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(m in (d / "cgroup").read_text() for m in marks):
                total += memory_mib(d.name).get("VmRSS", 0.0)
    return round(total, 1)


class InCluster:
    """The chart installed from the local image, release ``ns`` in namespace ``ns`` (where its
    REST sessions live), serving the load's platform."""

    def __init__(self, ns: str, platform: str, spec: dict[str, Any], kubeconfig: Path, logs: Path) -> None:
        kube = Kubectl(str(kubeconfig))
        self.kubeconfig = kubeconfig
        self.release = _LoadRelease(
            kube=kube,
            helm=Helm(kube.kubeconfig),
            image=env("EB_OPERATOR_IMAGE", "eb-operator:dev"),
            namespace=ns,
            user_namespace=f"{ns}-user",
            workdir=logs,
            release=ns,  # one per run: a failed uninstall's cluster-wide RBAC cannot block the next
            platform=platform,
            tokens={"alice": TOKEN, "bob": f"{TOKEN}-bob"},
            load_spec=spec,
        )
        self.url = ""

    def start(self) -> dict[str, Any]:
        image = ensure_image(self.release.image, self.kubeconfig)
        self.release.pause_other_brokers()
        took = self.release.install()
        self.url = self.release.url()
        return {"image": image, "helm_install_s": round(took, 1)}

    def replica_urls(self) -> list[str]:
        """The API replicas' own addresses: the clients talk to the Pods as the Service would
        spread them, without a ``kubectl port-forward`` in between (from this machine the
        ClusterIP does not answer, and a port-forward carrying the whole load broke after ~7
        minutes in two runs: every later connection was closed unanswered)."""
        return [
            f"http://{pod['status']['podIP']}:8080"
            for pod in self.release.broker_pods()
            if pod["metadata"]["labels"].get("app.kubernetes.io/component") == "api"
            and (pod.get("status") or {}).get("podIP")
        ]

    def memory(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for pod in self.release.broker_pods():
            component = pod["metadata"]["labels"].get("app.kubernetes.io/component", "?")
            restarts = [
                {"restarts": c.get("restartCount", 0), "last": (c.get("lastState") or {}).get("terminated")}
                for c in (pod.get("status") or {}).get("containerStatuses") or []
                if c.get("restartCount")
            ]  # a broker process that died during the run (OOM, probe) shows here
            out[f"{component} {pod['metadata']['name']}"] = {
                "rss": pod_memory_mib(pod["metadata"]["uid"]),
                **({"restarts": restarts} if restarts else {}),
            }
        return out

    def stop(self) -> str | None:
        """Uninstall; returns helm's error if that failed (the report shows it: a failed uninstall
        leaves the release's ClusterRoles and bindings behind)."""
        error = None
        try:
            try:
                self.release.uninstall()
            except RuntimeError as e:
                error = str(e)[-500:]
            user_ns = self.release.user_namespace
            self.release.kube.run("delete", "namespace", user_ns, "--wait=false", check=False)
        finally:
            self.release.close()
            self.release.restore_other_brokers()
        return error


# --- the clients ---------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.rows: list[tuple[float, str, int, float]] = []  # (seconds since start, kind, status, s)

    async def call(
        self, c: httpx.AsyncClient, kind: str, method: str, url: str, body: Any = None
    ) -> httpx.Response:
        t = time.monotonic()
        content = json.dumps(body).encode() if body is not None else None
        try:
            r = await c.request(method, url, content=content)
        except httpx.HTTPError as e:  # a dropped connection counts as a server failure
            self.rows.append((t - self.t0, kind, 599, time.monotonic() - t))
            raise RuntimeError(f"{kind}: {e!r}") from e
        self.rows.append((t - self.t0, kind, r.status_code, time.monotonic() - t))
        return r


def phase(value: str) -> dict[str, Any]:
    return {"update": {"type": "uri:enum-value-update", "path": "phase", "value": value}}


async def client(c: httpx.AsyncClient, rec: Recorder, seed: int, until: float, errors: list[str]) -> None:
    rng = random.Random(seed)
    i = 0
    while time.monotonic() < until:
        i += 1
        gpus = 1 if rng.random() < 1 / 6 else 0
        doc = ivoa(rng.randint(1, 8), gpus, name=f"c{seed}-{i}")
        doc["schedule"]["requested"]["duration"] = f"PT{rng.choice([5, 10, 15, 20])}M"
        if rng.random() < 0.2:  # a later start window: offers in the future, not only now
            start = int(time.time()) + rng.randint(5, 40) * 60
            doc["schedule"]["requested"]["start"] = [f"{format_instant(start)}/PT2H"]
        try:
            r = await rec.call(c, "offer", "POST", "/offersets", doc)
            if r.status_code >= 500 or r.status_code != 303:
                errors.append(f"POST /offersets {r.status_code}: {r.text[:200]}")
                continue
            answer = r.json()
            offers = answer.get("offers") or []
            if answer.get("result") != "YES" or not offers:
                continue
            offer = rng.choice(offers)["href"]
            roll = rng.random()
            if roll < 0.5:
                a = await rec.call(c, "accept", "POST", offer, phase("ACCEPTED"))
                if a.status_code not in (200, 409):  # 409: the offer was taken or expired meanwhile
                    errors.append(f"accept {a.status_code}: {a.text[:200]}")
                elif a.status_code == 200 and rng.random() < 0.5:
                    await rec.call(c, "get", "GET", offer)
                    k = await rec.call(c, "cancel", "POST", offer, phase("CANCELLED"))
                    if k.status_code not in (200, 409):
                        errors.append(f"cancel {k.status_code}: {k.text[:200]}")
            elif roll < 0.75:
                j = await rec.call(c, "reject", "POST", offer, phase("REJECTED"))
                if j.status_code not in (200, 409):
                    errors.append(f"reject {j.status_code}: {j.text[:200]}")
            elif roll < 0.85:
                await rec.call(c, "get", "GET", offer)
        except RuntimeError as e:
            errors.append(str(e))


# --- reporting -----------------------------------------------------------------------------------


def windows(rows: list[tuple[float, str, int, float]], width: float, total: float) -> list[dict[str, Any]]:
    out = []
    for w in range(int(total // width) + (1 if total % width > 1 else 0)):
        lo, hi = w * width, min(total, (w + 1) * width)
        inside = [r for r in rows if lo <= r[0] < hi]
        kinds: dict[str, Any] = {}
        for kind in sorted({r[1] for r in inside}):
            ms = [1000 * r[3] for r in inside if r[1] == kind]
            kinds[kind] = {
                "n": len(ms),
                "p50": percentile(ms, 50, 1),
                "p95": percentile(ms, 95, 1),
                "p99": percentile(ms, 99, 1),
            }
        out.append(
            {
                "from_s": round(lo, 1),
                "to_s": round(hi, 1),
                "requests": len(inside),
                "per_s": round(len(inside) / max(1e-9, hi - lo), 1),
                "status_5xx": sum(r[2] >= 500 for r in inside),
                "latency_ms": kinds,
            }
        )
    return out


def totals(rows: list[tuple[float, str, int, float]]) -> dict[str, Any]:
    by: dict[str, Any] = {}
    for kind in sorted({r[1] for r in rows}):
        mine = [r for r in rows if r[1] == kind]
        ms = [1000 * r[3] for r in mine]
        codes: dict[str, int] = defaultdict(int)
        for r in mine:
            codes[str(r[2])] += 1
        by[kind] = {
            "n": len(ms),
            "p50": percentile(ms, 50, 1),
            "p99": percentile(ms, 99, 1),
            "status": dict(sorted(codes.items())),
        }
    return by


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--nodes", type=int, default=12)
    p.add_argument("--window", type=float, default=30.0, help="seconds per reported window")
    p.add_argument("--out", type=Path)
    p.add_argument("--svg", type=Path)
    p.add_argument("--broker", choices=("in-cluster", "processes"), default="in-cluster")
    p.add_argument("--ttl", type=int, help="the platform's retention TTLs, seconds (default: the broker's)")
    p.add_argument("--state-svg", type=Path, help="draw objects and etcd's size over the run here")
    p.add_argument("--etcd-metrics", default=ETCD_METRICS, help="etcd's /metrics (the local cluster's)")
    args = p.parse_args()
    if not (0 < args.minutes <= 120 and 1 <= args.clients <= 256 and 1 <= args.nodes <= 1000):
        p.error("--minutes in (0, 120], --clients in [1, 256], --nodes in [1, 1000]")
    kubeconfig = find_kubeconfig()
    if kubeconfig is None:
        print("no cluster: run hack/cluster.sh up or set KUBECONFIG", file=sys.stderr)
        return 2
    tag = f"eb-load-{uuid.uuid4().hex[:6]}"
    ns = platform = tag
    label = f"eb-bench-load={tag}"
    logs = Path(tempfile.mkdtemp(prefix="eb-load-"))
    kube = await kube_http(kubeconfig, 16)
    report: dict[str, Any] = {
        "benchmark": "load",
        "when": format_instant(int(time.time())),
        "cpus": os.cpu_count(),
        "command": " ".join(["python", "benchmarks/load.py", *sys.argv[1:]]),
        "broker": (
            "the Helm chart from the local image (1 operator, 2 API replicas behind their Service)"
            if args.broker == "in-cluster"
            else "eb-operator operator + eb-operator api as processes on 127.0.0.1 against the cluster"
        ),
        "platform": {
            "nodes": args.nodes,
            "node": f"{NODE_CORES} cores, {NODE_GIB} GiB; every {GPU_EVERY}rd also {NODE_GPUS} GPUs",
            "offer_ttl_s": 20,
            "retention_ttl_s": args.ttl,
        },
        "clients": args.clients,
        "minutes": args.minutes,
        "logs": str(logs),
    }
    nodes = [f"{tag}-n{i}" for i in range(args.nodes)]
    procs: Processes | None = None
    incluster: InCluster | None = None
    try:
        await send(kube, "POST", "/api/v1/namespaces", namespace_manifest(ns), (201,))
        for i, n in enumerate(nodes):
            body = node_body(n, i, {"eb-bench-load": tag})
            cap = body["status"]["capacity"]
            cap |= {"cpu": str(NODE_CORES), "memory": f"{NODE_GIB}Gi"}
            if "nvidia.com/gpu" in cap:
                del cap["nvidia.com/gpu"]
            if i % GPU_EVERY == 0:
                cap["nvidia.com/gpu"] = str(NODE_GPUS)
                body["metadata"]["labels"]["nvidia.com/gpu.product"] = "nvidia-ad104"
            else:
                body["metadata"]["labels"].pop("nvidia.com/gpu.product", None)
            body["status"]["allocatable"] = dict(cap)
            await send(kube, "POST", "/api/v1/nodes", body, (201,))
        spec = {
            "nodeSelector": {"eb-bench-load": tag},
            "toleration": {k: v for k, v in KWOK_TOLERATION.items() if k != "operator"},
            "slotSeconds": 60,
            "horizonSeconds": 6 * 3600,
            "offerTtlSeconds": 20,
            "maxOffers": 3,
            "preparationSeconds": 0,
            "releaseSeconds": 30,
            "gpuFlavours": [{"name": "ad104", "resourceName": "nvidia.com/gpu", "product": "nvidia-ad104"}],
            # its clients are one owner asking as fast as they can: per-owner limits it never
            # reaches (what limits cost is benchmarks/sharing.py's); numbers, as Helm merges an
            # empty map with the chart's default limits
            "sharing": {"ownerLimits": NO_LIMITS},
        }
        if args.ttl is not None:
            spec["retention"] = {"ttlSecondsAfterFinished": args.ttl, "offerSetTtlSeconds": args.ttl}
        platform_doc = {
            "apiVersion": API,
            "kind": "ExecutionPlatform",
            "metadata": {"name": platform},
            "spec": spec,
        }
        if args.broker == "in-cluster":
            incluster = InCluster(ns, platform, spec, Path(kubeconfig), logs)
            report["install"] = await asyncio.to_thread(incluster.start)
            urls = await asyncio.to_thread(incluster.replica_urls) or [incluster.url]
        else:  # the chart makes its own platform from ``spec``
            await send(kube, "POST", f"/apis/{API}/executionplatforms", platform_doc, (201,))
            procs = Processes(ns, platform, kubeconfig, logs)
            await procs.ready()
            urls = [procs.url]

        rec = Recorder()
        errors: list[str] = []
        checks: list[dict[str, Any]] = []
        samples = [await sample_state(await check_state(kube, ns, label), args.etcd_metrics, 0.0)]
        until = time.monotonic() + 60 * args.minutes
        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        async with contextlib.AsyncExitStack() as stack:
            cs = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=u, headers=JSON_H, timeout=120, limits=limits)
                )
                for u in urls
            ]

            async def checker() -> None:
                while time.monotonic() < until:
                    await asyncio.sleep(args.window)  # the checker's period, not a synchronisation
                    look = await check_state(kube, ns, label)
                    look["at_s"] = round(time.monotonic() - rec.t0, 1)
                    checks.append(look)
                    samples.append(await sample_state(look, args.etcd_metrics, look["at_s"]))

            watch = asyncio.create_task(checker())
            await asyncio.gather(
                *(client(cs[seed % len(cs)], rec, seed, until, errors) for seed in range(args.clients))
            )
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        total_s = time.monotonic() - rec.t0
        final = await check_state(kube, ns, label)
        samples.append(await sample_state(final, args.etcd_metrics, total_s))
        rows = rec.rows
        report["duration_s"] = round(total_s, 1)
        report["requests"] = len(rows)
        report["per_s"] = round(len(rows) / total_s, 1)
        report["status_5xx"] = sum(r[2] >= 500 for r in rows)
        report["by_kind"] = totals(rows)
        report["client_errors"] = {"count": len(errors), "first": errors[:10]}
        report["double_bookings"] = {
            "checks": len(checks) + 1,
            "found": sum(len(x["double_bookings"]) for x in checks) + len(final["double_bookings"]),
            "first": [d for x in [*checks, final] for d in x["double_bookings"]][:10],
        }
        report["final_state"] = {
            k: v for k, v in final.items() if k not in ("double_bookings", "failed_by_name")
        }
        failed_ever: dict[str, str] = {}  # every session seen FAILED, with its message
        for look in [*checks, final]:
            failed_ever.update(look["failed_by_name"])
        why: dict[str, int] = defaultdict(int)
        for message in failed_ever.values():
            why[message[:120]] += 1
        refused = [m for m in failed_ever.values() if any(r in m for r in REFUSED_BY_SCHEDULER)]
        report["failed_sessions"] = {
            "count": len(failed_ever),
            "by_message": dict(sorted(why.items())),
            "refused_by_the_scheduler": len(refused),
            "refused_examples": refused[:5],
        }
        report["state"] = samples
        if procs is not None:
            report["memory_mib"] = {"operator": rss_mib(procs.op.pid), "api": rss_mib(procs.api.pid)}
            counters = procs.counters_now()["requests"]
            report["operator_requests"] = sum(v for k, v in counters.items() if not k.startswith("WATCH"))
        elif incluster is not None:
            report["memory_mib"] = incluster.memory()
            report["reached_through"] = urls  # the clients spread over these (seed % len)
        report["windows"] = windows(rows, args.window, total_s)
        report["targets"] = {"status_5xx": 0, "double_bookings": 0, "refused_by_the_scheduler": 0}
        write(report, args, final=False)  # a clean-up that overruns its time box loses nothing
    finally:
        if procs is not None:
            procs.stop()
        if incluster is not None:
            report["uninstall_error"] = await asyncio.to_thread(incluster.stop)
        report["cleanup_s"] = await delete_everything(kube, ns, platform, label)
        await kube.aclose()
    write(report, args)
    return 0


def write(report: dict[str, Any], args: argparse.Namespace, final: bool = True) -> None:
    """The files; with ``final`` the JSON on stdout too (once, after the clean-up)."""
    if final:
        emit(report, args.out)
    elif args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.svg:
        args.svg.write_text(svg(report))
    if args.state_svg and "state" in report:
        args.state_svg.write_text(state_svg(report))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
