"""Federation benchmark on the local cluster: POST /offersets latency at a broker with 0, 1 and 3
peer brokers, and the cost of each extra peer; prints one JSON document.

    python benchmarks/federation.py [--requests 100] [--rounds 2] [--out FILE]

Four brokers of this project (``tests/integration/federation/stack.py``): **a**, the one measured,
and **b**, **c**, **d**, its peers; each a namespace, an ExecutionPlatform on kwok nodes of its
own, and the operator and the API as processes of their own on 127.0.0.1. A *level* is the set of
a's BrokerPeers: none, b, or b, c and d (each asked in ivoa-std, deadline 5 s). Levels are
measured in rounds, in the order 0, 1, 3 and then 3, 1, 0, so that drift over the run counts
against each level alike; a level's samples are pooled over the rounds. Before each level is
timed, requests are sent until a's answers hold offers of exactly that level's sites (a's
directory has taken the change) and every site's OfferSets are deleted (no capacity held from
before). One client, requests back to back, each answered before the next.

All four brokers share this machine's two cores: a's peers work on the same CPUs as a (and one
another) while a waits for them, which they would not across sites; the cost per peer measured
here is an upper bound, most of it CPU contention (``cpu_per_set_ms`` shows where the time goes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.federation.stack import ALICE, Site, SiteSpec, federation, peer, unpeer  # noqa: E402
from tests.support.kube import Kubectl, find_kubeconfig, wait_for  # noqa: E402

from reporting import cpu_seconds, emit, percentile  # noqa: E402

DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0"
COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-resource-1.0"
JSON_H = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Authorization": f"Bearer {ALICE}",
}
LEVELS = {0: (), 1: ("b",), 3: ("b", "c", "d")}


def request(i: int) -> bytes:
    return json.dumps(
        {
            "name": f"fed-bench-{i}",
            "executable": {"type": DOCKER, "image": {"locations": ["eb-workload:latest"]}},
            "resources": {
                "compute": [
                    {"type": COMPUTE, "cores": {"requested": {"min": 1}}, "memory": {"requested": {"min": 1}}}
                ]
            },
            "schedule": {"requested": {"duration": "PT10M"}},
        }
    ).encode()


def places(a: Site, uuid: str) -> set[str]:
    """Where the offers of a's set ``uuid`` are held: "local" or a BrokerPeer's name."""
    status = a.get("offerset", uuid).get("status") or {}
    return {(o.get("peer") or {}).get("name", "local") for o in status.get("offers") or []}


def set_level(a: Site, sites: dict[str, Site], level: int) -> None:
    want = set(LEVELS[level])
    have = {p["metadata"]["name"] for p in a.items("brokerpeers")}
    for name in have - want:
        unpeer(a, name)
    for name in sorted(want - have):
        peer(a, sites[name])


def settle_level(a: Site, client: httpx.Client, level: int, sites: dict[str, Site]) -> None:
    """Requests until a's answers hold offers of exactly this level's sites; then a clean slate."""
    want = {"local", *LEVELS[level]}
    i = [0]

    def answered_by_all() -> bool:
        i[0] += 1
        r = client.post("/offersets", content=request(-i[0]))
        return r.status_code == 303 and places(a, r.json()["uuid"]) == want

    wait_for(answered_by_all, 120, f"a's answers to come from {sorted(want)}", interval=0.5)
    clean(sites.values())


def clean(sites: Sequence[Site] | Any) -> None:
    for site in sites:
        site.kube.run("delete", "offersets", "--all", "-n", site.namespace, "--wait=false", check=False)
    for site in sites:
        wait_for(lambda site=site: not site.items("offersets"), 120, f"{site.name}'s sets gone", interval=0.5)


def cpu(sites: dict[str, Site]) -> dict[str, float]:
    """CPU seconds used so far by every broker process (operators and APIs)."""
    out = {}
    for site in sites.values():
        for what, proc in (("operator", site.operator), ("api", site.apis[-1] if site.apis else None)):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(OSError):
                    out[f"{site.name}-{what}"] = cpu_seconds(proc.pid)
    return out


def measure(
    a: Site, sites: dict[str, Site], client: httpx.Client, level: int, n: int, samples: dict[int, Any]
) -> None:
    times: list[float] = samples.setdefault(level, {"ms": [], "offers": [], "yes": 0, "cpu": {}})["ms"]
    before = cpu(sites)
    for i in range(n):
        t = time.perf_counter()
        r = client.post("/offersets", content=request(i))
        times.append((time.perf_counter() - t) * 1000)
        doc = r.json()
        if r.status_code == 303 and doc.get("result") == "YES":
            samples[level]["yes"] += 1
            samples[level]["offers"].append(len(doc.get("offers") or []))
    after = cpu(sites)
    for k, v in after.items():
        samples[level]["cpu"][k] = samples[level]["cpu"].get(k, 0.0) + v - before.get(k, v)
    clean(sites.values())


def summary(level: int, data: dict[str, Any]) -> dict[str, Any]:
    ms = data["ms"]
    return {
        "peers": list(LEVELS[level]),
        "n": len(ms),
        "answered_yes": data["yes"],
        "offers_per_set": round(statistics.fmean(data["offers"]), 2) if data["offers"] else 0,
        "post_offerset_ms": {
            "p50": percentile(ms, 50),
            "p99": percentile(ms, 99),
            "mean": round(statistics.fmean(ms), 2),
        },
        "cpu_per_set_ms": {k: round(1000 * v / len(ms), 2) for k, v in sorted(data["cpu"].items()) if v > 0},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=100, help="requests per level and round")
    p.add_argument("--rounds", type=int, default=2, help="rounds over the levels (orders alternate)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    kubeconfig = find_kubeconfig()
    if kubeconfig is None:
        print("no cluster: run hack/cluster.sh up (or set KUBECONFIG)", file=sys.stderr)
        return 2
    kube = Kubectl(kubeconfig)
    specs = [SiteSpec(name, nodes=4, cores=64, memory_gib=256, max_offers=3) for name in ("a", "b", "c", "d")]
    started = time.monotonic()
    log_dir = Path("/tmp") / f"eb-bench-federation-{int(time.time())}"
    log_dir.mkdir(parents=True)
    samples: dict[int, Any] = {}
    with (
        federation(kube, log_dir, specs) as sites,
        httpx.Client(base_url=sites["a"].url, headers=JSON_H, timeout=60) as client,
    ):
        a = sites["a"]
        setup = time.monotonic() - started
        for r in range(args.rounds):
            for level in (0, 1, 3) if r % 2 == 0 else (3, 1, 0):
                set_level(a, sites, level)
                settle_level(a, client, level, sites)
                measure(a, sites, client, level, args.requests, samples)
        levels = {str(k): summary(k, samples[k]) for k in sorted(samples)}
        p50 = {k: levels[str(k)]["post_offerset_ms"]["p50"] for k in LEVELS}
        mean = {k: levels[str(k)]["post_offerset_ms"]["mean"] for k in LEVELS}
        report = {
            "benchmark": "federation",
            "sites": {
                s.name: {"nodes": s.nodes and len(s.nodes), "cores_per_node": s.spec.cores}
                for s in sites.values()
            },
            "requests_per_level": args.requests * args.rounds,
            "setup_seconds": round(setup, 1),
            "levels": levels,
            "one_peer_over_none": {
                "p50_ratio": round(p50[1] / p50[0], 2),
                "mean_ms_added": round(mean[1] - mean[0], 2),
            },
            "three_peers_over_none": {
                "p50_ratio": round(p50[3] / p50[0], 2),
                "mean_ms_added": round(mean[3] - mean[0], 2),
            },
            "cost_per_extra_peer_ms": {
                "first_peer_mean": round(mean[1] - mean[0], 2),
                "each_of_the_next_two_mean": round((mean[3] - mean[1]) / 2, 2),
                "p50_per_peer_over_3": round((p50[3] - p50[0]) / 3, 2),
            },
        }
        emit(report, args.out)  # before the teardown, which a busy cluster slows
    return 0


if __name__ == "__main__":
    sys.exit(main())
