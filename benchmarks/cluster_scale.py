"""How fast the local cluster takes many simulated nodes and Pods, and starts real Pods.

    python benchmarks/cluster_scale.py [--nodes 200] [--pods 2000] [--real-pods 5] [--out FILE]

Against the cluster in KUBECONFIG, else the local one (hack/cluster.sh up). It creates --nodes
kwok nodes (tainted; every 4th has 4 GPUs), --pods one-core Pods onto them (tolerating the
taint, selected by a per-run label), waits until every Pod is bound and Running, then starts
--real-pods Pods one after the other on the real node and measures create -> Running and
create -> Succeeded. It prints one JSON document (and writes it to --out) with the timings and
the resident memory of each local cluster component, and removes everything it created.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes_asyncio import client, watch
from tests.support.kube import (
    KWOK_TOLERATION,
    REAL_NODE,
    Kubectl,
    api_client,
    async_wait_for,
    cluster_state_dir,
    delete_all_pods,
    find_kubeconfig,
    kwok_node,
    namespace_manifest,
    unique_name,
    versions,
    workload_pod,
)

from reporting import emit, memory_mib


def component_rss_mib() -> dict[str, float]:
    """Resident memory of each local cluster component (from hack/cluster.sh's pid files)."""
    out: dict[str, float] = {}
    pids = cluster_state_dir() / "pids"
    for pidfile in sorted(pids.glob("*.pid")) if pids.is_dir() else []:
        try:
            rss = memory_mib(pidfile.read_text().strip()).get("VmRSS")
        except OSError:
            continue
        if rss is not None:
            out[pidfile.stem] = rss
    out["total"] = round(sum(out.values()), 1)
    return out


async def bounded(n: int, limit: int, make: Any) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(i: int) -> None:
        async with gate:
            await make(i)

    await asyncio.gather(*(one(i) for i in range(n)))


async def track_pods(
    v1: client.CoreV1Api, namespace: str, t0: float, seen: dict[str, dict[str, float]]
) -> None:
    """Record when each pod was first seen bound and Running (a watch, restarted if it ends)."""
    rv = ""
    while True:
        w = watch.Watch()
        try:
            since = {"resource_version": rv} if rv else {}
            async for ev in w.stream(v1.list_namespaced_pod, namespace, timeout_seconds=300, **since):
                pod = ev["object"]
                rv = pod.metadata.resource_version
                times = seen.setdefault(pod.metadata.name, {})
                now = time.monotonic() - t0
                if pod.spec.node_name and "bound" not in times:
                    times["bound"] = now
                if pod.status.phase == "Running" and "running" not in times:
                    times["running"] = now
        except client.ApiException as e:
            if e.status != 410:
                raise
            rv = ""
        finally:
            await w.close()


async def kwok_scale(v1: client.CoreV1Api, kube: Kubectl, args: argparse.Namespace) -> dict[str, Any]:
    ns = unique_name("bench-scale")
    label = {"eb-bench-nodes": ns}
    kube.create(namespace_manifest(ns))
    names = [f"{ns}-n{i}" for i in range(args.nodes)]
    result: dict[str, Any] = {"nodes": args.nodes, "pods": args.pods}
    try:
        t0 = time.monotonic()
        await bounded(
            args.nodes,
            args.concurrency,
            lambda i: v1.create_node(kwok_node(names[i], gpus=4 if i % 4 == 0 else 0, labels=label)),
        )
        result["nodes_created_s"] = round(time.monotonic() - t0, 2)

        async def nodes_ready() -> bool:
            nodes = (await v1.list_node(label_selector=f"eb-bench-nodes={ns}")).items
            ready = sum(
                any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                for n in nodes
            )
            return ready == args.nodes

        await async_wait_for(nodes_ready, 300, f"{args.nodes} kwok nodes Ready", interval=0.5)
        result["nodes_ready_s"] = round(time.monotonic() - t0, 2)

        seen: dict[str, dict[str, float]] = {}
        t1 = time.monotonic()
        tracker = asyncio.create_task(track_pods(v1, ns, t1, seen))

        def pod(i: int) -> dict[str, Any]:
            return workload_pod(
                f"p{i}",
                ["sleep", "infinity"],
                requests={"cpu": "1", "memory": "1Gi"},
                node_selector=label,
                tolerations=[KWOK_TOLERATION],
            )

        await bounded(args.pods, args.concurrency, lambda i: v1.create_namespaced_pod(ns, pod(i)))
        result["pods_created_s"] = round(time.monotonic() - t1, 2)

        def all_running() -> bool:
            return sum("running" in t for t in seen.values()) >= args.pods

        await async_wait_for(all_running, 900, f"{args.pods} pods Running", interval=0.5)
        tracker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tracker
        bound = sorted(t["bound"] for t in seen.values() if "bound" in t)
        running = sorted(t["running"] for t in seen.values())
        result["pods_all_bound_s"] = round(bound[-1], 2)
        result["pods_all_running_s"] = round(running[-1], 2)
        result["pods_per_s_end_to_end"] = round(args.pods / running[-1], 1)

        # verify with a plain list: every pod Running on one of this run's nodes
        pods = (await v1.list_namespaced_pod(ns)).items
        on = {p.spec.node_name for p in pods}
        result["pods_verified_running"] = sum(p.status.phase == "Running" for p in pods)
        result["nodes_used"] = len(on)
        assert on <= set(names), "pods landed outside this run's nodes"
        result["memory_mib_with_pods"] = component_rss_mib()
    finally:
        t2 = time.monotonic()
        await delete_all_pods(v1, ns, 600)
        result["pods_deleted_s"] = round(time.monotonic() - t2, 2)
        kube.run("delete", "nodes", "-l", f"eb-bench-nodes={ns}", "--wait=false", check=False)
        kube.run("delete", "namespace", ns, "--wait=false", check=False)
    return result


async def real_pods(v1: client.CoreV1Api, kube: Kubectl, count: int) -> dict[str, Any]:
    ns = unique_name("bench-real")
    kube.create(namespace_manifest(ns))
    to_running: list[float] = []
    to_done: list[float] = []
    try:
        for i in range(count):
            name = f"r{i}"
            t0 = time.monotonic()
            await v1.create_namespaced_pod(ns, workload_pod(name, ["sh", "-c", "sleep 1; echo done"]))

            async def phase(name: str = name) -> str:
                return str((await v1.read_namespaced_pod(name, ns)).status.phase)

            await async_wait_for(lambda: _in(phase(), {"Running", "Succeeded"}), 120, f"{name} running", 0.05)
            to_running.append(time.monotonic() - t0)
            await async_wait_for(lambda: _in(phase(), {"Succeeded", "Failed"}), 120, f"{name} done", 0.05)
            to_done.append(time.monotonic() - t0)
            assert await phase() == "Succeeded"
    finally:
        kube.run("delete", "namespace", ns, "--wait=false", check=False)
    return {
        "count": count,
        "create_to_running_s": _stats(to_running),
        "create_to_succeeded_s_with_1s_sleep": _stats(to_done),
        "node": REAL_NODE,
    }


async def _in(value: Any, wanted: set[str]) -> bool:
    return (await value) in wanted


def _stats(xs: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(xs), 2), "max": round(max(xs), 2)}


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--pods", type=int, default=2000)
    p.add_argument("--real-pods", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    kubeconfig = find_kubeconfig()
    if kubeconfig is None:
        print("no cluster: run hack/cluster.sh up or set KUBECONFIG", file=sys.stderr)
        return 2
    kube = Kubectl(kubeconfig)
    api = await api_client(kubeconfig, pool_size=args.concurrency)
    v1 = client.CoreV1Api(api)
    report: dict[str, Any] = {
        "benchmark": "cluster_scale",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "versions": versions(),
        "memory_mib_before": component_rss_mib(),
    }
    try:
        report["kwok"] = await kwok_scale(v1, kube, args)
        if args.real_pods and kube.exists("node", REAL_NODE):
            report["real_node"] = await real_pods(v1, kube, args.real_pods)
        report["memory_mib_after"] = component_rss_mib()
    finally:
        await api.close()
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
