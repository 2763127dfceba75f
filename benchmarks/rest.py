"""REST service benchmark on the local cluster: prints one JSON document.

    python benchmarks/rest.py [--nodes 1000] [--requests 200] [--seconds 10]

It starts a whole broker (``tests/integration/api/stack.py``: the CRDs, ``--nodes`` kwok nodes of
its own, an ExecutionPlatform, the operator and the API as processes of their own on 127.0.0.1,
as in production: the clients here do not share the service's interpreter)
and, once the cluster is quiet (``settle``: no namespace being deleted, kube-apiserver idle),
measures over real HTTP:

* ``post_offerset_ms``: POST /offersets latency, one client, answered requests (p50/p99/mean);
* ``accept_ms``: POST /sessions/{uuid} ACCEPTED latency, one client, of the first offer of each of
  those sets, after them (p50/p99/mean);
* ``sustained``: offer sets answered per second (and POST latency) by 1 and by 8 concurrent
  clients posting back to back for ``--seconds`` each, as the reference's figure is taken (the
  platform is large enough that capacity does not run out); then 8 clients that also reject
  every offer they get (a set's rejects at once) before their next POST;
* ``versus_reference``: ours divided by the Java reference's figures (``REFERENCE``);
* ``api_overhead_ms``: from the service's own metrics, the mean time a POST spent in the REST
  service itself, i.e. its latency minus the time it waited for the operator's answer.

Everything it creates is deleted at the end. Traffic goes to 127.0.0.1 only; every loop is
bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.api.stack import GROUP, TOKENS, Broker, Shape, broker_stack  # noqa: E402
from tests.support.kube import Kubectl, cluster_state_dir, find_kubeconfig, wait_for  # noqa: E402

from reporting import cpu_seconds, percentile  # noqa: E402

DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0"
COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-resource-1.0"
JSON_H = {"Content-Type": "application/json", "Accept": "application/json"}


def request(i: int) -> bytes:
    return json.dumps(
        {
            "name": f"bench-{i}",
            "executable": {"type": DOCKER, "image": {"locations": ["eb-workload:latest"]}},
            "resources": {
                "compute": [
                    {
                        "type": COMPUTE,
                        "cores": {"requested": {"min": 1 + i % 4}},
                        "memory": {"requested": {"min": 2}},
                    }
                ]
            },
            "schedule": {"requested": {"duration": "PT1H"}},
        }
    ).encode()


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    if not ms:
        return {}
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p99": percentile(ms, 99),
        "mean": round(statistics.fmean(ms), 2),
    }


PHASE = "uri:enum-value-update"


async def latencies(c: httpx.AsyncClient, n: int) -> tuple[list[float], list[float], int]:
    """One client: ``n`` POST /offersets back to back, then an accept of the first offer of each
    (the POSTs are timed while nothing else runs; the accepts while the sessions accepted before
    them start: their Pods, status writes and kwok's Pod updates)."""
    posts, accepts, no, hrefs = [], [], 0, []
    for i in range(n):
        t = time.perf_counter()
        r = await c.post("/offersets", content=request(i))
        posts.append(time.perf_counter() - t)
        doc = r.json()
        if r.status_code != 303 or doc.get("result") != "YES":
            no += 1
            continue
        hrefs.append(doc["offers"][0]["href"])
    for href in hrefs:
        t = time.perf_counter()
        u = await c.post(href, json={"update": {"type": PHASE, "path": "phase", "value": "ACCEPTED"}})
        if u.status_code == 200:
            accepts.append(time.perf_counter() - t)
    return posts, accepts, no


async def sustained(c: httpx.AsyncClient, clients: int, seconds: float, reject: bool) -> dict[str, Any]:
    """Offer sets answered per second by ``clients`` clients posting back to back for ``seconds``.

    ``reject``: each client also rejects every offer of each set before its next POST (all of a
    set's rejects at once), as a client that releases what it does not take; without it, offers
    hold their capacity until they expire, as with a client that lets them lapse."""
    deadline = time.monotonic() + seconds
    done = [0]
    errors = [0]
    waits: list[float] = []

    async def release(href: str) -> None:
        u = await c.post(href, json={"update": {"type": PHASE, "path": "phase", "value": "REJECTED"}})
        if u.status_code != 200:
            errors[0] += 1

    async def client(k: int) -> None:
        i = k * 1_000_000
        while time.monotonic() < deadline:
            i += 1
            t = time.perf_counter()
            r = await c.post("/offersets", content=request(i))
            waits.append(time.perf_counter() - t)
            if r.status_code != 303:
                errors[0] += 1
                continue
            done[0] += 1
            if reject:
                await asyncio.gather(*(release(o["href"]) for o in r.json().get("offers", [])))

    start = time.monotonic()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.monotonic() - start
    return {
        "clients": clients,
        "reject_offers": reject,
        "offersets": done[0],
        "errors": errors[0],
        "per_second": round(done[0] / elapsed, 1),
        "post_offerset_ms": percentiles(waits),
    }


def _sum_count(text: str, metric: str, labels: str) -> tuple[float, float]:
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f"{metric}_sum{{") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{metric}_count{{") and labels in line:
            count += float(line.rsplit(" ", 1)[1])
    return total, count


def overhead_ms(metrics: str) -> dict[str, float]:
    """Mean time per request inside the REST service, without the wait for the operator."""
    out = {}
    for route, operation in (("/offersets", "offerset"), ("/sessions/{uuid}", "update")):
        total, n = _sum_count(metrics, "eb_api_request_duration_seconds", f'method="POST",route="{route}"')
        waited, m = _sum_count(metrics, "eb_api_operator_wait_seconds", f'operation="{operation}"')
        if n and m:
            out[f"POST {route}"] = round((total / n - waited / m) * 1000, 2)
    return out


async def measure(b: Broker, n: int, seconds: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKENS['alice']}", **JSON_H}
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=b.url, headers=headers, limits=limits, timeout=60) as c:
        for i in range(10):  # warm up connections, caches and the operator's snapshot
            await c.post("/offersets", content=request(i))
        b.cleanup()
        posts, accepts, no = await latencies(c, n)
        b.cleanup()
        runs = []
        for clients, reject in ((1, False), (8, False), (8, True)):
            runs.append(await sustained(c, clients, seconds, reject))
            b.cleanup()
        overhead = overhead_ms((await c.get("/metrics")).text)
    return {
        "api_overhead_ms": overhead,
        "post_offerset_ms": percentiles(posts),
        "accept_ms": percentiles(accepts),
        "answered_no": no,
        "sustained": runs,
    }


#: The Java reference implementation (Calycopis broker) on this machine, as the team measured it:
#: POST /offersets booking into a flat pool (no per-node reservations).
REFERENCE = {"one_client_p50_ms": 14, "eight_clients_p99_ms": 175, "eight_clients_per_second": 85}


def versus_reference(results: dict[str, Any]) -> dict[str, Any]:
    """Ours / the reference's, per figure (below 1 is better for latencies, above 1 for rates)."""
    runs = {(r["clients"], r["reject_offers"]): r for r in results["sustained"]}
    eight = runs.get((8, False))
    out: dict[str, Any] = {"reference": REFERENCE}
    if results["post_offerset_ms"]:
        p50 = results["post_offerset_ms"]["p50"]
        out["one_client_p50_ratio"] = round(p50 / REFERENCE["one_client_p50_ms"], 2)
    if eight:
        out["eight_clients_p99_ratio"] = round(
            eight["post_offerset_ms"]["p99"] / REFERENCE["eight_clients_p99_ms"], 2
        )
        out["eight_clients_per_second_ratio"] = round(
            eight["per_second"] / REFERENCE["eight_clients_per_second"], 2
        )
    return out


def wait_nodes_ready(b: Broker, timeout: float = 300) -> None:
    """Measure a settled cluster: every node of the platform Ready (kwok initialises them after
    they are created, a burst of node writes the broker should not be timed against)."""

    def ready() -> bool:
        items = b.kube.get("nodes", None, None, "-l", f"{GROUP}/pool={b.platform}")["items"]
        ok = sum(
            1
            for n in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        )
        return ok == len(b.nodes)

    wait_for(ready, timeout, "every node of the platform to be Ready", interval=2)


def settle(kube: Kubectl, timeout: float = 240, idle_cores: float = 0.45) -> dict[str, Any]:
    """Wait (bounded) until the cluster is quiet before the first sample: no namespace still being
    deleted (an earlier run's objects going) and kube-apiserver under ``idle_cores`` over 2 s
    (at 1,000 kwok nodes it idles at ~0.35 core renewing their Leases). Returns what it saw."""
    pid = (cluster_state_dir() / "pids" / "kube-apiserver.pid").read_text().strip()
    deadline = time.monotonic() + timeout
    while True:
        terminating = [
            n["metadata"]["name"]
            for n in kube.get("namespaces", None, None)["items"]
            if n["status"].get("phase") == "Terminating"
        ]
        before, t = cpu_seconds(pid), time.monotonic()
        time.sleep(2)  # a measurement window, not a synchronisation
        cores = (cpu_seconds(pid) - before) / (time.monotonic() - t)
        quiet = not terminating and cores < idle_cores
        if quiet or time.monotonic() > deadline:
            return {"settled": quiet, "apiserver_cores": round(cores, 2), "terminating": len(terminating)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=1000, help="kwok nodes in the benchmark's platform")
    p.add_argument("--requests", type=int, default=200, help="sequential requests for the latencies")
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each sustained run")
    args = p.parse_args(argv)
    kubeconfig = find_kubeconfig()
    if kubeconfig is None:
        print("no cluster: run hack/cluster.sh up (or set KUBECONFIG)", file=sys.stderr)
        return 2
    kube = Kubectl(kubeconfig)
    shape = Shape(
        nodes=args.nodes, cores=32, memory_gib=128, gpus=0, offer_ttl=300, horizon_seconds=24 * 3600
    )
    log = Path("/tmp") / f"eb-bench-rest-operator-{int(time.time())}.log"
    started = time.monotonic()
    with broker_stack(kube, log, shape, answer_timeout=30, api_in_process=False) as b:
        wait_nodes_ready(b)
        quiet = settle(kube)
        setup = time.monotonic() - started
        results = asyncio.run(measure(b, args.requests, args.seconds))
        out = {
            "benchmark": "rest",
            "nodes": args.nodes,
            "node_shape": {"cores": shape.cores, "memory_gib": shape.memory_gib},
            "setup_seconds": round(setup, 1),
            "before_the_first_sample": quiet,
            **results,
            "targets": {"post_offerset_p50_ms": 30, "post_offerset_p99_ms": 100, "offersets_per_second": 50},
            "versus_reference": versus_reference(results),
        }
        print(json.dumps(out, indent=2), flush=True)  # before the teardown, which a busy cluster slows
    return 0


if __name__ == "__main__":
    sys.exit(main())
