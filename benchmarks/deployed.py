"""The deployed offer path, ours against main and against the API server's ceiling, in one run.

    python benchmarks/deployed.py --lock /work/team/cluster.lock [--rounds 4] [--levels 1,8,32]
                                  [--seconds 15] [--warmup 5] [--prewarm 10] [--nodes 100]
                                  [--baseline-tree /work/baseline-6e39c7f] [--baseline-commit 6e39c7f]
                                  [--out benchmarks/results/deployed.json]
    python benchmarks/deployed.py --build-only     # build both images first (no cluster, no lock)

Each round is self-contained and holds the team's cluster lock (``--lock``, taken as ``flock``
takes it; without it, hold the lock for the whole run yourself): it makes the platform's nodes,
installs, measures and uninstalls each side, and pauses other installs' operators meanwhile,
then undoes all of it. A SIGTERM stops the run through that clean-up.

Sides, each measured the same way, one at a time, alternating (``ours``, the ceilings, ``main``,
then ``main``, the ceilings, ``ours`` in the next round, and so on, so that a drift of the
machine's load falls on both):

``ours``
    this checkout: its image built from its source (tag ``eb-operator:bench-ours``), its chart
    installed as tests/e2e installs it (tests/e2e/install.py: release in its own namespace, two
    API replicas behind their Service, token auth with static tokens and TokenReview,
    NetworkPolicies), with the benchmark's platform and the Service as a NodePort;
``main``
    the same for a checkout of ``--baseline-commit`` in a git worktree outside this one
    (``--baseline-tree``, made if missing): its own image (``eb-operator:bench-main``) and its own
    chart and CRDs, installed as a separate release;
``ceiling``
    no broker at all: the API server's ceiling for the current design. The same client
    machinery creates OfferSets and merge-patches their status, with the bodies (spec,
    annotations, status) of a real answered OfferSet that ``ours`` wrote in this run, one create
    and one status patch per set, while three watch streams on those OfferSets (as the two API
    replicas and the operator hold) read every event (curl, discarding the bytes).
``ceiling_one_write``, ``ceiling_own_watches``, ``ceiling_small_status`` (levers, at
``--lever-levels`` clients only)
    what the API server could do if the broker wrote one object per set (a create carrying
    spec and status at once, into a copy of the OfferSet CRD without the status subresource,
    installed for the run), if the two "replica" watches selected by label only the half of
    the sets their replica made, or if the status left out its copy of the request.

Each side runs ``POST /offersets`` (one fixed JSON body, the same for both brokers: 1 core,
1 GiB, 10 minutes) from 1, 8 and 32 concurrent clients (asyncio + httpx, one connection per
client, keep-alive, through the Service's NodePort on the real node, ``--warmup`` seconds at each
level excluded, then ``--seconds`` measured), back to back. Per level: sets/s (answers completed
in the window / window), p50/p90/p99/max latency of the requests started in the window, YES/NO
answers and the reasons for NO, errors by status. Between levels every OfferSet is deleted and
the cluster left to settle (the API server's CPU quiet), so each level starts from the same state.

The platform: ``--nodes`` kwok nodes of 64 cores and 256 GiB (only this benchmark's nodes are
the platform's), slots of 60 s, a 6-hour look-ahead, offers live 30 s, at most 3 per set: at
these rates the offers held at any time take a small part of it, so no answer is NO for lack of
capacity (``answers`` counts and says so).

Profile per set, from counters read at the start and the end of each measured window: CPU
time (/proc) of the API server, etcd, the other cluster components, each broker process (the
Pods run on this machine: their processes are found by the Pod's cgroup) and this client; the
API server's requests by verb and resource (``apiserver_request_total``), the time it spent in
them (``apiserver_request_duration_seconds``), and watch events and bytes sent per resource
(``apiserver_watch_events_total`` / ``_sizes``); the API replicas' own time and their wait for
the operator (their /metrics); the operator's phases (its liveness endpoint's means). Resident
memory of every broker process after each level. Everything it makes is deleted at the end, the
other installs' operators are scaled back, and this checkout's CRDs are left applied.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import platform as pyplatform
import re
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from tests.e2e.install import Helm, Installation, _hack  # noqa: E402
from tests.support.kube import (  # noqa: E402
    KWOK_TOLERATION,
    POOL_LABEL,
    Kubectl,
    async_wait_for,
    cache_dir,
    cluster_state_dir,
    find_kubeconfig,
    kwok_node,
    namespace_manifest,
)

from reporting import cpu_seconds, emit, memory_mib, percentile  # noqa: E402

GROUP = "executionbroker.ivoa.net"
API = f"{GROUP}/v1alpha1"
STD = "https://www.purl.org/ivoa.net/EB/schema/types/"
TOKEN = "deployed-bench-token-0123456789abcdef"
NODE_LABEL = "eb-bench-deployed"
NODE_CORES, NODE_GIB = 64, 256
CEILING_NS = "eb-bench-ceiling"
CEILING_WATCHERS = 3  # two API replicas and the operator watch every OfferSet today
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Authorization": f"Bearer {TOKEN}",
}
REQUEST = {
    "name": "deployed-bench",
    "executable": {
        "type": STD + "executables/docker-container-1.0",
        "image": {"locations": ["eb-workload:latest"]},
        "entrypoint": "sleep",
        "command": ["600"],
    },
    "resources": {
        "compute": [
            {
                "type": STD + "resources/compute/simple-compute-resource-1.0",
                "name": "compute-1",
                "cores": {"requested": {"min": 1}},
                "memory": {"requested": {"min": 1}},
            }
        ]
    },
    "schedule": {"requested": {"duration": "PT10M"}},
}
BODY = json.dumps(REQUEST).encode()
#: NO answers whose reason is a lack of capacity (the platform is sized so that there are none)
CAPACITY_WORDS = ("no free slot", "no node", "no single node", "capacity")


# --- the two checkouts ---------------------------------------------------------------------------


def git(tree: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()


def source_digest(tree: Path) -> str:
    """What goes into a broker image (as hack/ensure-image.py computes it)."""
    h = hashlib.sha256()
    for f in [tree / "pyproject.toml", *sorted((tree / "src" / "eb_operator").rglob("*.py"))]:
        h.update(str(f.relative_to(tree)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class Side:
    name: str
    tree: Path
    image: str

    def describe(self) -> dict[str, Any]:
        dirty = git(self.tree, "status", "--porcelain", "--", "src", "charts", "crds", "pyproject.toml")
        return {
            "tree": str(self.tree),
            "commit": git(self.tree, "rev-parse", "HEAD"),
            "subject": git(self.tree, "log", "-1", "--format=%s")[:120],
            "uncommitted_changes": bool(dirty),
            "source_digest": source_digest(self.tree),
            "image": self.image,
        }


def baseline_tree(path: Path, commit: str) -> Path:
    """A git worktree of ``commit`` at ``path`` (outside this checkout), made if missing."""
    if not path.exists():
        git(REPO, "worktree", "add", "--detach", str(path), commit)
    want = git(REPO, "rev-parse", f"{commit}^{{commit}}")
    if git(path, "rev-parse", "HEAD") != want:
        raise SystemExit(f"{path} is not at {commit}: check it out there, or name another --baseline-tree")
    return path


def ensure_image(side: Side, cache: Path, load: bool = True) -> dict[str, Any]:
    """``side``'s image, built with its own hack/build-image.sh into a cache of this benchmark's
    (one directory per side, so the shared eb-operator:dev tar and its stamp stay as they are)
    unless that cache holds it from the same source already; then imported into the local
    containerd unless it has it (``load``: False builds only, which needs no cluster lock)."""
    images = cache / side.name / "images"
    images.mkdir(parents=True, exist_ok=True)
    for base in (cache_dir() / "images").glob("eb-workload-*.tar"):
        link = images / base.name
        if not link.exists():
            link.symlink_to(base)
    stamp, tar = images / "source-digest", images / "eb-operator-image.tar"
    digest = source_digest(side.tree)
    ensure = _hack("ensure-image")
    built = stamp.exists() and stamp.read_text().strip() == digest and tar.exists()
    t0 = time.monotonic()
    how = "cached"
    if not built:
        stamp.unlink(missing_ok=True)
        subprocess.run(
            ["bash", str(side.tree / "hack" / "build-image.sh"), "--tag", side.image, "--no-import"],
            env={**os.environ, "EB_CACHE_DIR": str(cache / side.name)},
            check=True,
            timeout=1800,
            stdout=sys.stderr,
        )
        stamp.write_text(digest + "\n")
        how = "built"
    if load and (how == "built" or not ensure.present(side.image)):
        ctr = ensure._ctr("images", "import", str(tar))
        if ctr.returncode != 0 or not ensure.present(side.image):
            raise RuntimeError(f"importing {tar} as {side.image} failed: {ctr.stderr[-500:]}")
        how += "+imported"
    return {"how": how, "seconds": round(time.monotonic() - t0, 1)}


# --- the release ---------------------------------------------------------------------------------


@dataclass
class BenchRelease(Installation):
    """The e2e suite's release, with the benchmark's platform and the Service as a NodePort."""

    spec: dict[str, Any] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        out = super().values()
        out["platform"]["spec"] = self.spec
        out["api"]["service"] = {"type": "NodePort"}
        return out


def platform_spec(tag: str) -> dict[str, Any]:
    return {
        "nodeSelector": {NODE_LABEL: tag},
        "toleration": {k: v for k, v in KWOK_TOLERATION.items() if k != "operator"},
        "slotSeconds": 60,
        "horizonSeconds": 6 * 3600,
        "offerTtlSeconds": 30,
        "maxOffers": 3,
        "preparationSeconds": 0,
        "releaseSeconds": 30,
    }


def pod_pids(uid: str) -> dict[int, str]:
    """The processes of one Pod (pid -> command name): the Pods run on this machine, in cgroups
    named after the Pod's uid."""
    marks = (uid, uid.replace("-", "_"))
    out: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(m in (d / "cgroup").read_text() for m in marks):
                out[int(d.name)] = (d / "comm").read_text().strip()
    return out


@dataclass
class Broker:
    """One installed side: where its API answers, and its Pods' processes."""

    release: BenchRelease
    url: str
    pods: dict[str, dict[str, Any]]  # "operator <pod>" / "api <pod>" -> {ip, uid, pids}

    @classmethod
    def find(cls, release: BenchRelease, url: str) -> Broker:
        pods = {}
        for pod in release.broker_pods():
            if pod["metadata"].get("deletionTimestamp"):
                continue
            component = pod["metadata"]["labels"].get("app.kubernetes.io/component", "?")
            pods[f"{component} {pod['metadata']['name']}"] = {
                "ip": pod["status"].get("podIP"),
                "uid": pod["metadata"]["uid"],
                "pids": pod_pids(pod["metadata"]["uid"]),
            }
        return cls(release, url, pods)

    def of(self, component: str) -> list[dict[str, Any]]:
        return [p for k, p in self.pods.items() if k.startswith(component + " ")]

    def memory(self) -> dict[str, Any]:
        """Resident and peak resident memory (MiB) of every process of every broker Pod, and the
        restarts of their containers (a process that died during the run shows here)."""
        out: dict[str, Any] = {}
        restarts = {
            f"{p['metadata']['labels'].get('app.kubernetes.io/component')} {p['metadata']['name']}": sum(
                c.get("restartCount", 0) for c in (p.get("status") or {}).get("containerStatuses") or []
            )
            for p in self.release.broker_pods()
        }
        for key, pod in self.pods.items():
            procs = {}
            for pid, comm in pod["pids"].items():
                with contextlib.suppress(OSError):
                    mem = memory_mib(pid)
                    procs[f"{comm} {pid}"] = {"rss": mem.get("VmRSS"), "peak": mem.get("VmHWM")}
            out[key] = {"processes": procs, "restarts": restarts.get(key, 0)}
        return out


# --- counters --------------------------------------------------------------------------------------

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} ([0-9.eE+-]+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def apiserver_counters(text: str) -> dict[str, float]:
    """The API server's counters we profile with, summed to "<metric> <verb> <resource>" keys."""
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        name, labels_text, value = m.groups()
        labels = dict(_LABEL.findall(labels_text))
        resource = labels.get("resource") or labels.get("kind") or "?"
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        if name == "apiserver_request_total":
            out[f"requests {labels.get('verb')} {resource}"] += float(value)
        elif name in ("apiserver_request_duration_seconds_sum", "apiserver_request_duration_seconds_count"):
            if labels.get("verb") == "WATCH":
                continue  # a watch lasts as long as it is open: not work
            what = "seconds" if name.endswith("_sum") else "timed"
            out[f"{what} {labels.get('verb')} {resource}"] += float(value)
        elif name == "apiserver_watch_events_total":
            out[f"watch_events {resource}"] += float(value)
        elif name == "apiserver_watch_events_sizes_sum":
            out[f"watch_bytes {resource}"] += float(value)
    return out


def api_counters(text: str) -> dict[str, float]:
    """An API replica's own time per POST /offersets and its wait for the operator's answer."""
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        name, labels_text, value = m.groups()
        labels = dict(_LABEL.findall(labels_text))
        if name.endswith("_bucket"):
            continue
        if name.startswith("eb_api_request_duration_seconds_") and labels.get("route") == "/offersets":
            if labels.get("method") == "POST":
                out["post " + name.rsplit("_", 1)[1]] += float(value)
        elif name.startswith("eb_api_operator_wait_seconds_") and labels.get("operation") == "offerset":
            out["wait " + name.rsplit("_", 1)[1]] += float(value)
    return out


def machine_jiffies() -> tuple[int, int, int]:
    """(busy, total, stolen by the hypervisor) CPU jiffies of the whole machine so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields), fields[7]


def cluster_pids() -> dict[str, int]:
    out = {}
    for f in (cluster_state_dir() / "pids").glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(f.read_text().strip())
            if Path(f"/proc/{pid}").exists():
                out[f.stem] = pid
    return out


@dataclass
class Counters:
    """Everything read at one instant."""

    at: float
    cpu: dict[str, float]
    machine: tuple[int, int, int]
    apiserver: dict[str, float]
    api: dict[str, float]


async def read_counters(
    kube: httpx.AsyncClient, http: httpx.AsyncClient, processes: dict[str, list[int]], broker: Broker | None
) -> Counters:
    def cpu() -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pids in processes.items():
            total = 0.0
            for pid in pids:
                with contextlib.suppress(OSError):
                    total += cpu_seconds(pid)
            out[name] = total
        return out

    at = time.monotonic()
    times = cpu()
    machine = machine_jiffies()
    metrics = (await kube.get("/metrics", timeout=30)).text
    api: dict[str, float] = defaultdict(float)
    for pod in broker.of("api") if broker else []:
        r = await http.get(f"http://{pod['ip']}:8080/metrics", timeout=30)
        for k, v in api_counters(r.text).items():
            api[k] += v
    # parsed beside the event loop, so that the clients' requests are not held up meanwhile
    return Counters(at, times, machine, await asyncio.to_thread(apiserver_counters, metrics), dict(api))


#: entries of the per-set tables below this (per set) are summed into "other": watch
#: reconnections, controllers' resyncs, node heartbeats
SMALL = 0.02


def compact(values: dict[str, float], digits: int) -> dict[str, float]:
    out = {k: round(v, digits) for k, v in sorted(values.items()) if abs(v) >= SMALL}
    rest = sum(v for v in values.values() if abs(v) < SMALL)
    if rest:
        out["other"] = round(rest, digits)
    return out


def per_set(before: Counters, after: Counters, sets: int) -> dict[str, Any]:
    """What the window cost, per set answered in it."""
    n = max(sets, 1)
    seconds = after.at - before.at
    jiffies = after.machine[0] - before.machine[0]
    busy = jiffies / max(1, after.machine[1] - before.machine[1])
    used = {k: after.cpu[k] - before.cpu.get(k, 0.0) for k in after.cpu}
    cpu = {k: round(1000 * v / n, 3) for k, v in used.items()}
    # what the rest of the machine used meanwhile (other engineers' work on the shared machine)
    elsewhere = jiffies / os.sysconf("SC_CLK_TCK") - sum(used.values())
    delta = {k: v - before.apiserver.get(k, 0.0) for k, v in after.apiserver.items()}

    def of(kind: str) -> dict[str, float]:
        return {k.split(" ", 1)[1]: v / n for k, v in delta.items() if k.startswith(kind + " ") and v}

    server_ms = {}
    for what, v in of("seconds").items():
        count = delta.get(f"timed {what}", 0.0)
        if v * 1000 >= SMALL:
            server_ms[what] = {"per_set": round(1000 * v, 3), "mean": round(1000 * v * n / max(count, 1), 3)}
    out: dict[str, Any] = {
        "window_s": round(seconds, 2),
        "machine_busy": round(busy, 3),
        "machine_steal": round(
            (after.machine[2] - before.machine[2]) / max(1, after.machine[1] - before.machine[1]), 3
        ),
        "cores_used": {
            "measured_processes": round(sum(used.values()) / seconds, 2),
            "everything_else": round(elsewhere / seconds, 2),
        },
        "cpu_ms_per_set": compact(cpu, 3),
        "apiserver_requests_per_set": compact(of("requests"), 3),
        "apiserver_ms_per_set": dict(sorted(server_ms.items())),
        "watch_events_per_set": compact(of("watch_events"), 3),
        "watch_bytes_per_set": compact(of("watch_bytes"), 0),
    }
    api = {k: v - before.api.get(k, 0.0) for k, v in after.api.items()}
    if api.get("post count"):
        posts, waits = api["post count"], api.get("wait count") or 1
        out["api_replicas_ms"] = {
            "request": round(1000 * api["post sum"] / posts, 3),
            "waiting_for_operator": round(1000 * api.get("wait sum", 0.0) / waits, 3),
            "own": round(1000 * (api["post sum"] / posts - api.get("wait sum", 0.0) / waits), 3),
        }
    return out


# --- the clients -----------------------------------------------------------------------------------


@dataclass
class Sample:
    start: float
    end: float
    status: int  # 599: no answer (connection error, timeout)
    ok: bool
    result: str = ""
    reason: str = ""


Call = Callable[[int], Awaitable[Sample]]
PREWARM_CLIENTS = 8


async def _nothing(_: str) -> None:
    return None


async def drive(
    calls: list[Call], warmup: float, seconds: float, at_window: Callable[[str], Awaitable[None]]
) -> tuple[list[Sample], float, float]:
    """Each client calls back to back until the window ends; ``at_window("start"/"end")`` runs
    at its edges (the counters). Returns every sample and the window's edges."""
    t0 = time.monotonic()
    w0, w1 = t0 + warmup, t0 + warmup + seconds
    samples: list[Sample] = []

    async def client(call: Call) -> None:
        failures = 0
        i = 0
        while time.monotonic() < w1:
            s = await call(i)
            i += 1
            samples.append(s)
            failures = 0 if s.ok else failures + 1
            if failures >= 200:  # a broken side: stop hammering it; the errors are reported
                return

    async def edges() -> None:
        await asyncio.sleep(max(0.0, w0 - time.monotonic()))  # the window's edge, a timer
        await at_window("start")
        await asyncio.sleep(max(0.0, w1 - time.monotonic()))
        await at_window("end")

    await asyncio.gather(edges(), *(client(c) for c in calls))
    return samples, w0, w1


def level_report(samples: list[Sample], w0: float, w1: float, clients: int) -> dict[str, Any]:
    done = [s for s in samples if s.ok and w0 <= s.end < w1]
    timed = [1000 * (s.end - s.start) for s in samples if s.ok and w0 <= s.start < w1]
    errors = [s for s in samples if not s.ok and s.start >= w0]
    by_status: dict[str, int] = defaultdict(int)
    for s in errors:
        by_status[str(s.status)] += 1
    answers: dict[str, int] = defaultdict(int)
    reasons: dict[str, int] = defaultdict(int)
    for s in samples:
        if s.ok and s.result:
            answers[s.result] += 1
            if s.result != "YES":
                reasons[s.reason[:160]] += 1
    return {
        "clients": clients,
        "window_s": round(w1 - w0, 2),
        "sets": len(done),
        "sets_per_s": round(len(done) / (w1 - w0), 2),
        "latency_ms": {
            "n": len(timed),
            "p50": percentile(timed, 50, 1) if timed else None,
            "p90": percentile(timed, 90, 1) if timed else None,
            "p99": percentile(timed, 99, 1) if timed else None,
            "max": round(max(timed), 1) if timed else None,
            "mean": round(statistics.fmean(timed), 1) if timed else None,
        },
        "warmup_requests": sum(1 for s in samples if s.start < w0),
        "answers": dict(answers),  # every answer of the level, warm-up included
        "no_reasons": dict(reasons),
        "errors": {
            "count": len(errors),
            "by_status": dict(by_status),
            "first": [e.reason for e in errors[:5]],
        },
    }


def broker_call(c: httpx.AsyncClient) -> Call:
    async def call(_: int) -> Sample:
        t = time.monotonic()
        try:
            r = await c.post("/offersets", content=BODY)
        except httpx.HTTPError as e:
            return Sample(t, time.monotonic(), 599, False, reason=repr(e)[:200])
        end = time.monotonic()
        if r.status_code != 303:
            return Sample(t, end, r.status_code, False, reason=r.text[:200])
        doc = r.json()
        result = str(doc.get("result", ""))
        why = "" if result == "YES" else "; ".join(str(m.get("message")) for m in doc.get("messages") or [])
        return Sample(t, end, 303, True, result, why)

    return call


@dataclass
class Template:
    """A real answered OfferSet's bodies, as the API replica creates it and the operator patches
    its status."""

    metadata: dict[str, Any]
    spec: dict[str, Any]
    status: dict[str, Any]
    sizes: dict[str, int]

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Template:
        meta = {k: v for k, v in obj["metadata"].items() if k in ("labels", "annotations")}
        create = {"apiVersion": API, "kind": "OfferSet", "spec": obj["spec"]}
        create["metadata"] = {"name": obj["metadata"]["name"], **meta}
        sizes = {
            "create_body": len(json.dumps(create).encode()),
            "status_patch_body": len(json.dumps({"status": obj["status"]}).encode()),
            "stored_object": len(json.dumps(obj).encode()),
            "offers": len(obj["status"].get("offers") or []),
        }
        return cls(meta, obj["spec"], obj["status"], sizes)


@dataclass(frozen=True)
class Ceiling:
    """One way of writing bare OfferSets: the design today, or a lever applied to it."""

    name: str
    what: str
    one_write: bool = False  # the answer in the create (a copy of the CRD without a status subresource)
    own_watches: bool = False  # the replicas' watches select their own sets (a label)
    status_without: tuple[str, ...] = ()  # status fields left out (a smaller object)

    @property
    def plural_path(self) -> str:
        if self.one_write:
            return f"/apis/{BENCH_API}/namespaces/{CEILING_NS}/{BENCH_PLURAL}"
        return f"/apis/{API}/namespaces/{CEILING_NS}/offersets"


CEILINGS = {
    c.name: c
    for c in (
        Ceiling(
            "ceiling",
            "the design today: one create and one status merge patch per set, of a real answered "
            f"set's bodies; {CEILING_WATCHERS} watch streams on every set",
        ),
        Ceiling(
            "ceiling_one_write",
            "lever: one write per set: a create carrying spec and status at once, into a copy of "
            "the OfferSet CRD (same schema and validation rules) without the status subresource; "
            f"{CEILING_WATCHERS} watch streams on every set",
            one_write=True,
        ),
        Ceiling(
            "ceiling_small_status",
            "lever: create + status patch as today, without the copy of the request in the status "
            f"(status.request; the spec holds it); {CEILING_WATCHERS} watch streams on every set",
            status_without=("request",),
        ),
        Ceiling(
            "ceiling_own_watches",
            "lever: create + status patch as today, but of the three watch streams two select by "
            "label the half of the sets 'their' replica created (each client's sets carry its "
            "replica's label), one (the operator's) sees every set",
            own_watches=True,
        ),
    )
}
REPLICA_LABEL = "eb-bench/replica"
BENCH_GROUP = f"bench.{GROUP}"
BENCH_API = f"{BENCH_GROUP}/v1alpha1"
BENCH_PLURAL = "benchoffersets"


def one_write_crd(offersets_crd: Path) -> dict[str, Any]:
    """The OfferSet CRD under another group and name, without the status subresource: a create
    then stores (and validates, with the same schema) the status it carries."""
    crd: dict[str, Any] = yaml.safe_load(offersets_crd.read_text())
    crd["metadata"] = {"name": f"{BENCH_PLURAL}.{BENCH_GROUP}", "labels": {"eb-bench": "deployed"}}
    spec = crd["spec"]
    spec["group"] = BENCH_GROUP
    spec["names"] = {
        "kind": "BenchOfferSet",
        "listKind": "BenchOfferSetList",
        "plural": BENCH_PLURAL,
        "singular": "benchofferset",
    }
    for version in spec["versions"]:
        version.pop("subresources", None)
    return crd


def ceiling_call(c: httpx.AsyncClient, template: Template, shape: Ceiling, index: int) -> Call:
    base = shape.plural_path
    status = {k: v for k, v in template.status.items() if k not in shape.status_without}
    patch = json.dumps({"status": status}).encode()
    merge = {"Content-Type": "application/merge-patch+json"}
    plain = {"Content-Type": "application/json"}
    metadata = json.loads(json.dumps(template.metadata))
    if shape.own_watches:  # a client keeps its connection, so its sets go to one replica
        metadata.setdefault("labels", {})[REPLICA_LABEL] = "ab"[index % 2]
    api, kind = (BENCH_API, "BenchOfferSet") if shape.one_write else (API, "OfferSet")

    async def call(_: int) -> Sample:
        name = str(uuid.uuid4())
        body: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": {"name": name, **metadata}}
        body["spec"] = template.spec
        if shape.one_write:
            body["status"] = status
        t = time.monotonic()
        try:
            r = await c.post(base, content=json.dumps(body).encode(), headers=plain)
            if r.status_code != 201:
                return Sample(t, time.monotonic(), r.status_code, False, reason=r.text[:200])
            if not shape.one_write:
                r = await c.patch(f"{base}/{name}/status", content=patch, headers=merge)
        except httpx.HTTPError as e:
            return Sample(t, time.monotonic(), 599, False, reason=repr(e)[:200])
        end = time.monotonic()
        if r.status_code not in (200, 201):
            return Sample(t, end, r.status_code, False, reason=r.text[:200])
        return Sample(t, end, r.status_code, True)

    return call


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Kube:
    """The API server as this benchmark reaches it: raw HTTP (TLS client certificate)."""

    host: str
    tls: ssl.SSLContext
    ca: str
    cert: str
    key: str

    @classmethod
    async def load(cls, kubeconfig: Path) -> Kube:
        cfg = k8s_client.Configuration()
        await k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        tls = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        tls.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
        return cls(str(cfg.host), tls, str(cfg.ssl_ca_cert), str(cfg.cert_file), str(cfg.key_file))

    def client(self, connections: int = 8) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(base_url=self.host, verify=self.tls, limits=limits, timeout=60)

    @contextlib.contextmanager
    def watchers(self, path: str, selectors: list[str]) -> Iterator[list[int]]:
        """A watch stream on ``path`` per label selector ("": every object), read to the end and
        thrown away (curl, HTTP/1.1)."""
        procs = []
        for selector in selectors:
            query = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": "1800"}
            if selector:
                query["labelSelector"] = selector
            url = str(httpx.URL(f"{self.host}{path}", params=query))
            cmd = ["curl", "-sS", "-N", "--http1.1", "--cacert", self.ca, "--cert", self.cert]
            cmd += ["--key", self.key, url, "-o", "/dev/null"]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            yield [p.pid for p in procs]
        finally:
            for p in procs:
                p.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(10)


class Run:
    def __init__(self, args: argparse.Namespace, kubeconfig: Path, kube: Kube) -> None:
        self.args = args
        self.kubeconfig = kubeconfig
        self.kube = kube
        self.kubectl = Kubectl(kubeconfig)
        self.api = kube.client(16)
        self.http = httpx.AsyncClient(timeout=30)
        self.tag = f"d{uuid.uuid4().hex[:6]}"
        self.template: Template | None = None
        self.sizes: dict[str, dict[str, int]] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="eb-deployed-"))
        self.t0 = time.monotonic()

    # -- the platform ---------------------------------------------------------------------------

    async def make_nodes(self) -> float:
        t0 = time.monotonic()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for i in range(self.args.nodes):
            body = kwok_node(
                f"eb-bench-{self.tag}-n{i:03d}",
                cpu=str(NODE_CORES),
                memory=f"{NODE_GIB}Gi",
                labels={NODE_LABEL: self.tag},
            )
            del body["metadata"]["labels"][POOL_LABEL]  # no other platform's nodes
            body["status"]["conditions"] = [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kwok",
                 "lastHeartbeatTime": now, "lastTransitionTime": now}
            ]  # fmt: skip
            r = await self.api.post("/api/v1/nodes", content=json.dumps(body))
            if r.status_code != 201:
                raise RuntimeError(f"node {i}: {r.status_code} {r.text[:200]}")
        return round(time.monotonic() - t0, 1)

    async def delete_nodes(self) -> None:
        selector = f"{NODE_LABEL}={self.tag}"
        await self.api.delete("/api/v1/nodes", params={"labelSelector": selector}, timeout=300)

    # -- between levels -------------------------------------------------------------------------

    async def count(self, path: str) -> int:
        doc = (await self.api.get(path, params={"limit": 1})).json()
        return len(doc.get("items") or []) + int((doc.get("metadata") or {}).get("remainingItemCount") or 0)

    async def clear(self, path: str) -> dict[str, Any]:
        """Delete every object of the collection ``path`` (one collection delete), wait until
        they are gone and the API server is quiet again (bounded; the JSON says whether it was)."""
        t0 = time.monotonic()
        await self.api.delete(path, timeout=300)
        await async_wait_for(lambda: self._none(path), 120, f"{path} to be empty", interval=0.5)
        quiet = await self.settle()
        return {"seconds": round(time.monotonic() - t0, 1), **quiet}

    async def _none(self, path: str) -> bool:
        return await self.count(path) == 0

    async def one_write_crd(self, install: bool) -> None:
        """Install (``install``) or delete the CRD the one-write lever writes to."""
        url = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        name = f"{BENCH_PLURAL}.{BENCH_GROUP}"
        await self.api.delete(f"{url}/{name}")
        await async_wait_for(
            lambda: self._gone(f"{url}/{name}"), 120, f"CRD {name} to be deleted", interval=0.5
        )
        if not install:
            return
        crd = one_write_crd(REPO / "charts" / "execution-broker" / "crds" / "offersets.yaml")
        r = await self.api.post(url, content=json.dumps(crd))
        if r.status_code != 201:
            raise RuntimeError(f"CRD {name}: {r.status_code} {r.text[:300]}")
        await async_wait_for(
            lambda: self._established(f"{url}/{name}"), 60, f"CRD {name} to be established", interval=0.5
        )

    async def _gone(self, url: str) -> bool:
        return (await self.api.get(url)).status_code == 404

    async def _established(self, url: str) -> bool:
        conditions = ((await self.api.get(url)).json().get("status") or {}).get("conditions") or []
        served = (await self.api.get(f"/apis/{BENCH_API}")).status_code == 200
        return served and any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    async def settle(self, within: float = 90, idle_cores: float = 0.3) -> dict[str, Any]:
        """Until the API server's CPU is under ``idle_cores`` over 2 s (bounded by ``within``)."""
        pid = cluster_pids().get("kube-apiserver")
        if pid is None:
            return {"settled": None}
        deadline = time.monotonic() + within
        while True:
            before, t = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(2)  # a measurement window, not a synchronisation
            cores = (cpu_seconds(pid) - before) / (time.monotonic() - t)
            if cores < idle_cores or time.monotonic() > deadline:
                return {"settled": cores < idle_cores, "apiserver_cores": round(cores, 2)}

    # -- one side -------------------------------------------------------------------------------

    def processes(
        self, broker: Broker | None, extra: dict[str, list[int]] | None = None
    ) -> dict[str, list[int]]:
        out = {name: [pid] for name, pid in cluster_pids().items()}
        out["client"] = [os.getpid()]
        if broker is not None:
            out["operator"] = [pid for p in broker.of("operator") for pid in p["pids"]]
            out["api"] = [pid for p in broker.of("api") for pid in p["pids"]]
        return out | (extra or {})

    async def level(
        self,
        calls: list[Call],
        broker: Broker | None,
        collection: str,
        extra: dict[str, list[int]] | None = None,
    ) -> dict[str, Any]:
        """One level, measured again (after clearing ``collection``) while processes outside the
        benchmark took more than ``--foreign-cores`` during its window (other work on the shared
        machine), at most ``--retries`` times; the discarded attempts stay in the JSON."""
        processes = self.processes(broker, extra)
        discarded: list[dict[str, Any]] = []
        answers: dict[str, int] = defaultdict(int)
        marks: dict[str, Counters] = {}

        async def at_window(edge: str) -> None:
            marks[edge] = await read_counters(self.api, self.http, processes, broker)

        while True:
            marks.clear()
            started = time.monotonic() - self.t0
            samples, w0, w1 = await drive(calls, self.args.warmup, self.args.seconds, at_window)
            out = {"started_s": round(started, 1), **level_report(samples, w0, w1, len(calls))}
            out["profile"] = per_set(marks["start"], marks["end"], out["sets"])
            for k, v in out["answers"].items():
                answers[k] += v
            foreign = out["profile"]["cores_used"]["everything_else"]
            if foreign <= self.args.foreign_cores or len(discarded) >= self.args.retries:
                break
            discarded.append(
                {
                    "started_s": out["started_s"],
                    "sets_per_s": out["sets_per_s"],
                    "latency_ms": out["latency_ms"],
                    "everything_else_cores": foreign,
                }
            )
            await self.clear(collection)
        out["answers"] = dict(answers)  # every attempt's
        if discarded:
            out["discarded_attempts"] = discarded
        return out

    async def operator_probe(self, broker: Broker, answered: int) -> dict[str, Any]:
        """The operator's liveness answer once it counts ``answered`` sets (kopf caches a probe's
        result for 10 s). If it never does (the operator restarted, say), the last answer with
        ``behind`` set, and the operator's log tail."""
        ip = broker.of("operator")[0]["ip"]
        last: dict[str, Any] = {}

        async def fresh() -> dict[str, Any] | None:
            nonlocal last
            last = (await self.http.get(f"http://{ip}:8081/healthz")).json().get("broker") or {}
            return last if int(last.get("offersets") or 0) >= answered else None

        try:
            found: dict[str, Any] = await async_wait_for(fresh, 40, "the operator's probe", 1.0)
        except TimeoutError:
            name = next(k for k in broker.pods if k.startswith("operator ")).split(" ", 1)[1]
            logs = self.kubectl.run(
                "logs", name, "-n", broker.release.namespace, "--tail=30", "--all-containers", check=False
            )
            behind = f"the operator counts {last.get('offersets')} sets, the clients {answered}"
            return {**last, "behind": behind, "log_tail": (logs.stdout or logs.stderr)[-3000:]}
        return found

    @staticmethod
    async def broker_calls(stack: contextlib.AsyncExitStack, url: str, clients: int) -> list[Call]:
        calls = []
        for _ in range(clients):
            c = await stack.enter_async_context(httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=60))
            calls.append(broker_call(c))
        return calls

    def release(self, side: Side) -> BenchRelease:
        return BenchRelease(
            kube=self.kubectl,
            helm=Helm(self.kubeconfig),
            image=side.image,
            namespace=f"eb-bench-{side.name}",
            user_namespace=f"eb-bench-{side.name}-user",
            workdir=self.workdir,
            release=f"eb-bench-{side.name}",
            tokens={"alice": TOKEN, "bob": f"{TOKEN}-bob"},
            platform=f"eb-bench-{side.name}-{self.tag}",
            chart=side.tree / "charts" / "execution-broker",
            spec=platform_spec(self.tag),
        )

    async def run_broker(self, side: Side, out: dict[str, Any]) -> None:
        """Install ``side``, measure every level into ``out`` (partial if it fails), uninstall."""
        release = self.release(side)
        collection = f"/apis/{API}/namespaces/{release.namespace}/offersets"
        try:
            out["install_s"] = round(await asyncio.to_thread(release.install), 1)
            url = await asyncio.to_thread(release.url)
            broker = await asyncio.to_thread(Broker.find, release, url)
            out["url"] = url
            out["reached_through"] = release.service.mode if release.service else "EB_E2E_URL"
            out["processes"] = {k: sorted(v["pids"].values()) for k, v in broker.pods.items()}
            out["levels"] = {}
            # a fresh install first carries load that is not measured (imports, caches, the
            # operator's first listing), so that the first level does not pay for it
            async with contextlib.AsyncExitStack() as stack:
                calls = await self.broker_calls(stack, url, PREWARM_CLIENTS)
                samples, _, _ = await drive(calls, self.args.prewarm, 0.0, _nothing)
            answered = sum(1 for x in samples if x.ok)
            out["prewarm"] = {
                "clients": PREWARM_CLIENTS,
                "seconds": self.args.prewarm,
                "sets": answered,
                "errors": sum(1 for x in samples if not x.ok),
            }
            await self.clear(collection)
            probe = await self.operator_probe(broker, answered)
            for clients in self.args.levels:
                async with contextlib.AsyncExitStack() as stack:
                    calls = await self.broker_calls(stack, url, clients)
                    result = await self.level(calls, broker, collection)
                answered += sum(result["answers"].values())
                result["rss_mib"] = await asyncio.to_thread(broker.memory)
                if self.template is None or side.name not in self.sizes:
                    await self.keep_template(release.namespace, side.name)
                result["cleared"] = await self.clear(collection)
                after = await self.operator_probe(broker, answered)  # kopf caches it 10 s: after the clear
                if "behind" in after:  # the counts no longer match: the phases cannot be told
                    result["operator_probe"] = after
                    result["rss_mib"] = await asyncio.to_thread(broker.memory)
                    answered = int(after.get("offersets") or 0)  # count on from what it counts
                else:
                    result["profile"]["operator_phases_ms_per_set"] = phases_per_set(probe, after)
                probe = after
                out["levels"][str(clients)] = result
        finally:
            with contextlib.suppress(Exception):
                await self.clear(collection)
            try:
                await asyncio.to_thread(release.uninstall)
            except Exception as e:
                out["uninstall_error"] = str(e)[-500:]
            # gone before the next side starts: the namespace controller's clean-up is work too
            for ns in (release.namespace, release.user_namespace):
                self.kubectl.run(
                    "delete", "namespace", ns, "--ignore-not-found", "--timeout=180s", check=False
                )
            release.close()

    async def keep_template(self, ns: str, side: str) -> None:
        """An answered OfferSet of this side: its sizes for the report, and (ours, or the first
        side) the bodies the ceiling writes."""
        r = await self.api.get(f"/apis/{API}/namespaces/{ns}/offersets", params={"limit": 20})
        answered = [o for o in r.json().get("items") or [] if (o.get("status") or {}).get("result") == "YES"]
        if not answered:
            return
        template = Template.of(answered[-1])
        self.sizes[side] = template.sizes
        if self.template is None or side == "ours":
            self.template = template

    async def run_ceiling(self, shape: Ceiling, levels: list[int], out: dict[str, Any]) -> None:
        """Measure ``shape`` at every level of ``levels`` into ``out``."""
        if self.template is None:
            out["skipped"] = "no answered OfferSet to copy the bodies from"
            return
        out |= {"bodies_from": "ours" if "ours" in self.sizes else "main", "levels": {}}
        path = shape.plural_path
        selectors = [f"{REPLICA_LABEL}=a", f"{REPLICA_LABEL}=b", ""] if shape.own_watches else [""] * 3
        with self.kube.watchers(path, selectors) as pids:
            for clients in levels:
                async with contextlib.AsyncExitStack() as stack:
                    calls = []
                    for i in range(clients):
                        c = await stack.enter_async_context(self.kube.client(1))
                        calls.append(ceiling_call(c, self.template, shape, i))
                    result = await self.level(calls, None, path, {"watchers": pids})
                result["cleared"] = await self.clear(path)
                out["levels"][str(clients)] = result


def phases_per_set(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """The operator's named phases (its cumulative means) as ms per set between two probes."""
    n0, n1 = int(before.get("offersets") or 0), int(after.get("offersets") or 0)
    if n1 <= n0:
        return {}
    m0, m1 = before.get("mean_ms") or {}, after.get("mean_ms") or {}
    return {k: round((m1[k] * n1 - m0.get(k, 0.0) * n0) / (n1 - n0), 3) for k in sorted(m1)}


# --- summary -----------------------------------------------------------------------------------------

FIGURES = ("sets_per_s", "p50", "p90", "p99")


def figures(level: dict[str, Any]) -> dict[str, float | None]:
    lat = level["latency_ms"]
    return {"sets_per_s": level["sets_per_s"], "p50": lat["p50"], "p90": lat["p90"], "p99": lat["p99"]}


def median_of(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(statistics.median(kept), 2) if kept else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


KINDS = ("ours", "main", *CEILINGS)


def nested_median(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric leaf over ``docs`` (dicts of the same shape, mostly)."""
    out: dict[str, Any] = {}
    for key in sorted({k for d in docs for k in d}):
        values = [d[key] for d in docs if key in d]
        if all(isinstance(v, dict) for v in values):
            out[key] = nested_median(values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = round(statistics.median(values), 3)
    return out


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds per side and level (figures and profile), and the ratios."""
    medians: dict[str, dict[str, dict[str, float | None]]] = {}
    profiles: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        levels = sorted({c for r in rounds for c in (r.get(kind) or {}).get("levels", {})}, key=int)
        for c in levels:
            runs = [r[kind]["levels"][c] for r in rounds if c in (r.get(kind) or {}).get("levels", {})]
            medians.setdefault(kind, {})[c] = {f: median_of([figures(x)[f] for x in runs]) for f in FIGURES}
            profiles.setdefault(kind, {})[c] = nested_median(
                [{**x["profile"], "rss_mib": x.get("rss_mib", {})} for x in runs]
            )

    def over(a: str, b: str) -> dict[str, Any]:
        return {
            c: {f: ratio(medians[a][c][f], medians[b][c][f]) for f in FIGURES}
            for c in medians.get(a, {})
            if c in medians.get(b, {})
        }

    ratios = {
        "ours_over_main": over("ours", "main"),
        "ours_over_ceiling": over("ours", "ceiling"),
        "main_over_ceiling": over("main", "ceiling"),
        **{f"{lever}_over_ceiling": over(lever, "ceiling") for lever in CEILINGS if lever != "ceiling"},
    }
    per_round = []
    for r in rounds:
        row: dict[str, Any] = {"round": r["round"]}
        for c in (r.get("ours") or {}).get("levels", {}):
            ours = r["ours"]["levels"][c]["sets_per_s"]
            for other in ("main", "ceiling"):
                level = (r.get(other) or {}).get("levels", {}).get(c)
                if level:
                    row[f"c{c} ours/{other} sets_per_s"] = ratio(ours, level["sets_per_s"])
        per_round.append(row)
    return {
        "medians": medians,
        "ratios": {k: v for k, v in ratios.items() if v},
        "ratios_per_round": per_round,
        "profile_medians": profiles,
    }


def answers_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    yes = no = errors = 0
    reasons: dict[str, int] = defaultdict(int)
    for r in rounds:
        for side in ("ours", "main"):
            for level in (r.get(side) or {}).get("levels", {}).values():
                yes += level["answers"].get("YES", 0)
                no += sum(v for k, v in level["answers"].items() if k != "YES")
                errors += level["errors"]["count"]
                for why, n in level["no_reasons"].items():
                    reasons[why] += n
    for_capacity = sum(n for why, n in reasons.items() if any(w in why.lower() for w in CAPACITY_WORDS))
    return {
        "yes": yes,
        "no": no,
        "no_for_lack_of_capacity": for_capacity,
        "no_reasons": dict(reasons),
        "errors": errors,
        "statement": (
            "every answer of both brokers was YES: no NO for lack of capacity"
            if no == 0
            else f"{no} NO answers, {for_capacity} of them for lack of capacity (see no_reasons)"
        ),
    }


def machine_info() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else None,
        "memory_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "kernel": pyplatform.release(),
        "python": pyplatform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=4, help="an even number: each side goes first as often")
    p.add_argument("--levels", default="1,8,32", help="concurrent clients, comma-separated")
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds per level before the measured window")
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--baseline-tree", type=Path, default=Path("/work/baseline-6e39c7f"))
    p.add_argument("--baseline-commit", default="6e39c7f")
    p.add_argument(
        "--sides",
        default=",".join(KINDS),
        help=f"what to run, of {','.join(KINDS)} (the ceiling_* are levers, at --lever-levels)",
    )
    p.add_argument("--lever-levels", default="8", help="concurrent clients of the lever ceilings")
    p.add_argument("--lever-rounds", type=int, default=2, help="the lever ceilings run in the first N rounds")
    p.add_argument(
        "--foreign-cores",
        type=float,
        default=0.25,
        help="measure a level again when processes outside the benchmark used more cores than this",
    )
    p.add_argument("--retries", type=int, default=2, help="at most this many times per level")
    p.add_argument(
        "--prewarm", type=float, default=10.0, help="seconds of unmeasured load after each install"
    )
    p.add_argument("--image-cache", type=Path, default=cache_dir() / "bench-images")
    p.add_argument("--build-only", action="store_true", help="build both images (no cluster) and stop")
    p.add_argument(
        "--lock",
        type=Path,
        help="take this flock for each round (/work/team/cluster.lock); without it, hold it yourself",
    )
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    args.lever_levels = [int(x) for x in args.lever_levels.split(",") if x]
    sides_wanted = args.sides.split(",")
    if not (1 <= args.rounds <= 10 and all(1 <= c <= 256 for c in args.levels) and 1 <= args.nodes <= 1000):
        p.error("--rounds in [1, 10], --levels in [1, 256], --nodes in [1, 1000]")
    started = time.monotonic()
    sides = {"ours": Side("ours", REPO, "eb-operator:bench-ours")}
    if "main" in sides_wanted:
        tree = baseline_tree(args.baseline_tree, args.baseline_commit)
        sides["main"] = Side("main", tree, "eb-operator:bench-main")
    if args.build_only:
        for side in sides.values():
            print(side.name, ensure_image(side, args.image_cache, load=False), file=sys.stderr)
        return 0
    kubeconfig = find_kubeconfig()
    if kubeconfig is None:
        print("no cluster: run hack/cluster.sh up or set KUBECONFIG", file=sys.stderr)
        return 2
    report: dict[str, Any] = {
        "benchmark": "deployed",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python", "benchmarks/deployed.py", *sys.argv[1:]]),
        "machine": machine_info(),
        "sides": {name: s.describe() for name, s in sides.items()},
        "install": (
            "each broker side: its own Helm chart and CRDs, installed as tests/e2e installs it "
            "(release in its own namespace, 1 operator, 2 API replicas behind their Service, "
            "static-token and TokenReview auth, NetworkPolicies, operator log level INFO), the "
            "Service as a NodePort reached on the real node; other installs' operators paused"
        ),
        "platform": {
            "nodes": args.nodes,
            "node": f"kwok, {NODE_CORES} cores, {NODE_GIB} GiB",
            "spec": {k: v for k, v in platform_spec("<run>").items() if k != "toleration"},
        },
        "request": {"body": REQUEST, "bytes": len(BODY), "same_for_both_sides": True},
        "load": {
            "levels": args.levels,
            "warmup_s": args.warmup,
            "measured_s": args.seconds,
            "rounds": args.rounds,
            "each_side_first_as_often": args.rounds % 2 == 0,
            "prewarm": f"{args.prewarm} s of {PREWARM_CLIENTS} clients after each install, not measured",
            "lever_rounds": args.lever_rounds,
            "foreign_work": (
                f"a level whose window saw processes outside the benchmark use more than "
                f"{args.foreign_cores} cores (other work on the shared machine) is measured again, "
                f"at most {args.retries} times; the discarded attempts are kept (discarded_attempts)"
            ),
            "clients": "asyncio + httpx in one process, one keep-alive connection per client",
            "lever_levels": args.lever_levels,
            "ceilings": {c.name: c.what for c in CEILINGS.values()},
            "ceiling_clients": "the same, straight to the API server (client certificate)",
        },
    }
    kube = await Kube.load(kubeconfig)
    run = Run(args, kubeconfig, kube)
    # `timeout` and the like stop the run through the clean-up below, not around it
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    rounds: list[dict[str, Any]] = []
    report["rounds"] = rounds
    try:
        report["kubernetes"] = (await run.api.get("/version")).json().get("gitVersion")
        ceilings = [c for c in CEILINGS if c in sides_wanted]
        for k in range(args.rounds):
            # ours first in odd rounds, main first in even ones: a drift falls on both sides
            these = [c for c in ceilings if c == "ceiling" or k < args.lever_rounds]
            order = ["ours", *these, "main"] if k % 2 == 0 else ["main", *these, "ours"]
            order = [s for s in order if s in sides or s in these]
            this: dict[str, Any] = {"round": k + 1, "order": order}
            rounds.append(this)
            async with team_lock(args.lock) as waited:
                this["lock_wait_s"] = waited
                await run_round(run, this, sides, order)
        report |= summarise(rounds)
        report["answers"] = answers_summary(rounds)
        report["object_sizes_bytes"] = run.sizes
    except (Exception, asyncio.CancelledError):  # a partial report still says what was measured
        report["error"] = traceback.format_exc()[-4000:]
        task.uncancel()
    finally:
        await run.api.aclose()
        await run.http.aclose()
        report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        report["duration_s"] = round(time.monotonic() - started, 1)
    emit(report, args.out)
    return 1 if "error" in report else 0


@contextlib.asynccontextmanager
async def team_lock(path: Path | None) -> AsyncIterator[float]:
    """The team's cluster lock (flock, as `flock FILE command` takes it) for one round; yields
    how long it took to get. None: the caller holds it for the whole run."""
    if path is None:
        yield 0.0
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    t0 = time.monotonic()
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        print(f"cluster lock taken after {time.monotonic() - t0:.0f} s", file=sys.stderr)
        yield round(time.monotonic() - t0, 1)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


async def run_round(run: Run, this: dict[str, Any], sides: dict[str, Side], order: list[str]) -> None:
    """One round, self-contained: the images, the platform's nodes, the ceiling's namespace (and
    the one-write CRD) made, other installs' operators paused; all undone at the end."""
    args = run.args
    others = run.release(Side("others", REPO, "none"))
    try:
        this["images"] = {
            name: await asyncio.to_thread(ensure_image, side, args.image_cache)
            for name, side in sides.items()
        }
        await asyncio.to_thread(others.pause_other_brokers)
        this["paused_operators"] = [f"{ns}/{name}" for ns, name, _ in others.paused]
        await run.api.post("/api/v1/namespaces", content=json.dumps(namespace_manifest(CEILING_NS)))
        if "ceiling_one_write" in order:
            await run.one_write_crd(install=True)
        this["nodes_created_s"] = await run.make_nodes()
        this["before_the_first_sample"] = await run.settle()
        for name in order:
            t0 = time.monotonic()
            print(f"round {this['round']}: {name}", file=sys.stderr)
            this[name] = {}
            if name in CEILINGS:
                levels = args.levels if name == "ceiling" else args.lever_levels
                await run.run_ceiling(CEILINGS[name], levels, this[name])
            else:
                await run.run_broker(sides[name], this[name])
            this[name]["seconds"] = round(time.monotonic() - t0, 1)
    finally:
        for shape in CEILINGS.values():
            with contextlib.suppress(Exception):
                if shape.name in order and (shape.name == "ceiling" or not shape.one_write):
                    await run.clear(shape.plural_path)
        with contextlib.suppress(Exception):
            await run.one_write_crd(install=False)
        run.kubectl.run(
            "delete", "namespace", CEILING_NS, "--ignore-not-found", "--timeout=180s", check=False
        )
        await run.delete_nodes()
        # the CRDs this checkout's tests and operators expect (main's were applied last, maybe)
        crds = str(REPO / "charts" / "execution-broker" / "crds")
        run.kubectl.run("apply", "--server-side", "--force-conflicts", "-f", crds, check=False)
        await asyncio.to_thread(others.restore_other_brokers)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
