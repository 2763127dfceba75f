"""Offer throughput with many users against one user, limits checked on every request: one JSON
document.

    python benchmarks/sharing.py [--nodes 500] [--users 50] [--clients 8] [--seconds 10] [--rounds 3]
                                 [--out benchmarks/results/sharing.json]

A whole broker (``tests/integration/api/stack.py``: the operator and the API as processes of their
own) on a platform whose sharing policy sets every limit, per owner and per group, and group
shares, at values no run reaches: each request takes its caller's rate tokens and is checked
against every limit of its owner and its group, and none of them refuses it. Three modes, ``--clients``
concurrent HTTP clients posting back to back for ``--seconds`` each, in rounds (one of each mode per
round, the order rotating, every OfferSet deleted between runs, so a drift of the machine touches
each mode alike):

* ``one_user``: every request from one user;
* ``many_users``: request ``i`` from user ``i mod --users`` (half in each of two groups);
* ``one_user_no_limits``: one user, the policy without limits, groups or shares (what the checks
  cost at all).

``ratios``: ``many_users / one_user`` (the target: at least 0.9) and ``one_user / one_user_no_limits``
from the medians over the rounds.
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

from tests.integration.api.stack import Broker, Shape, broker_stack  # noqa: E402
from tests.support.kube import Kubectl, find_kubeconfig, wait_for  # noqa: E402

from reporting import emit, percentile  # noqa: E402
from rest import JSON_H, request, settle, wait_nodes_ready  # noqa: E402

#: Limits everywhere, none reachable in a run: checked on every request, refusing none.
HIGH = {
    "requestsPerSecond": 100000,
    "requestBurst": 100000,
    "offerSets": 1000000,
    "offeredCoreSeconds": "100%",
    "offeredGpuSeconds": "100%",
    "sessions": 100000,
    "sessionCores": "100%",
    "sessionGpus": "100%",
}
WITH_LIMITS: dict[str, Any] = {
    "ownerLimits": HIGH,
    "otherLimits": HIGH,
    "groups": [
        {"name": "astro", "share": 0.5, "limits": HIGH, "ownerLimits": HIGH},
        {"name": "students", "share": 0.3, "limits": HIGH, "ownerLimits": HIGH},
    ],
}
NO_LIMITS: dict[str, Any] = {"ownerLimits": {}}


def users(n: int) -> dict[str, list[str]]:
    return {f"user{i:02d}": ["astro" if i % 2 else "students"] for i in range(n)}


async def run(b: Broker, names: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """Offer sets answered per second by ``clients`` clients posting back to back, request ``i``
    as user ``names[i % len(names)]``."""
    deadline = time.monotonic() + seconds
    counts = {"YES": 0, "NO": 0, "errors": 0}
    waits: list[float] = []
    auth = [{"Authorization": f"Bearer {b.tokens[u]}", **JSON_H} for u in names]
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(base_url=b.url, limits=limits, timeout=60) as c:
        next_i = [0]

        async def client() -> None:
            while time.monotonic() < deadline:
                i = next_i[0]
                next_i[0] += 1
                t = time.perf_counter()
                r = await c.post("/offersets", content=request(i), headers=auth[i % len(auth)])
                waits.append(time.perf_counter() - t)
                if r.status_code != 303:
                    counts["errors"] += 1
                    continue
                counts[r.json().get("result", "NO")] += 1

        start = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.monotonic() - start
    ms = [w * 1000 for w in waits]
    return {
        "users": len(names),
        "offersets": counts["YES"] + counts["NO"],
        "answered_no": counts["NO"],
        "errors": counts["errors"],
        "per_second": round((counts["YES"] + counts["NO"]) / elapsed, 1),
        "post_offerset_ms": {
            "p50": percentile(ms, 50),
            "p99": percentile(ms, 99),
            "mean": round(statistics.fmean(ms), 2),
        },
    }


def set_sharing(b: Broker, sharing: dict[str, Any]) -> None:
    """Put ``sharing`` in force: replace it in the platform, wait for the operator to take it."""
    patch = [{"op": "replace", "path": "/spec/sharing", "value": sharing}]
    b.kube.run("patch", "executionplatform", b.platform, "--type=json", "-p", json.dumps(patch))
    generation = b.kube.get("executionplatform", b.platform)["metadata"]["generation"]

    def taken() -> bool:
        status = b.kube.get("executionplatform", b.platform).get("status") or {}
        return bool(status.get("observedGeneration") == generation and status.get("valid"))

    wait_for(taken, 60, "the operator to take the new policy", interval=0.2)


async def warm(b: Broker, names: list[str]) -> None:
    """Connections, caches and every user's token once, before anything is timed."""
    await run(b, names, 8, 2.0)
    b.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=500)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    kubeconfig = find_kubeconfig()
    if kubeconfig is None:
        print("no cluster: run hack/cluster.sh up (or set KUBECONFIG)", file=sys.stderr)
        return 2
    kube = Kubectl(kubeconfig)
    shape = Shape(
        nodes=args.nodes,
        cores=32,
        memory_gib=128,
        gpus=0,
        offer_ttl=300,
        horizon_seconds=24 * 3600,
        sharing=WITH_LIMITS,
    )
    population = users(args.users)
    log = Path("/tmp") / f"eb-bench-sharing-operator-{int(time.time())}.log"
    with broker_stack(kube, log, shape, answer_timeout=30, api_in_process=False, groups=population) as b:
        wait_nodes_ready(b)
        quiet = settle(kube)
        many = sorted(population)
        one = many[:1]
        asyncio.run(warm(b, many))
        modes = {
            "one_user": (one, WITH_LIMITS),
            "many_users": (many, WITH_LIMITS),
            "one_user_no_limits": (one, NO_LIMITS),
        }
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        order = list(modes)
        for r in range(args.rounds):
            for mode in order[r % len(order) :] + order[: r % len(order)]:
                names, sharing = modes[mode]
                set_sharing(b, sharing)
                runs[mode].append(asyncio.run(run(b, names, args.clients, args.seconds)))
                b.cleanup()
        median = {m: statistics.median(x["per_second"] for x in rs) for m, rs in runs.items()}
        report = {
            "benchmark": "sharing",
            "nodes": args.nodes,
            "clients": args.clients,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "before_the_first_sample": quiet,
            "per_second_median": median,
            "ratios": {
                "many_users_over_one_user": round(median["many_users"] / median["one_user"], 3),
                "one_user_over_no_limits": round(median["one_user"] / median["one_user_no_limits"], 3),
            },
            "target": {"many_users_over_one_user_at_least": 0.9},
            "runs": runs,
        }
        emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
