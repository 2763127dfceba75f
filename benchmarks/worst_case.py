"""The offer engine's real worst case: a request that fits nowhere, on fragmented nodes.

``benchmarks/engine.py`` reports it under ``worst_case``; ``python benchmarks/worst_case.py``
prints it alone (``--nodes``, ``--reservations``, ``--samples``).

The platform
    ``nodes`` nodes of five instance types, each node's allocatable a little off its type's
    (the kubelet's reservations differ), minus 0-12 Pods the broker does not own of many
    shapes (cpu in 50m steps from 50m to 4 cores, memory in 64 MiB steps up to 8 GiB, scratch
    up to 20 GiB): nearly every node has a free capacity of its own, so the node table's
    grouping by shape saves nothing.
The reservations
    ``reservations / nodes`` per node, tiling ``[now - 1 h, now + 31 h]`` with gaps of up to
    80 minutes between them; each holds all but 1-2 cores of the node's free cpu (and a
    varied amount of memory), so no request of 2 cores or more fits while one holds, and no
    run of 2 hours or more fits in a gap. Nothing is over-committed: a ledger the operator
    built could look like this.
The requests
    ``samples`` requests of 2-8 cores, 1-16 GiB, a run of 2-6 hours, anywhere in the 24-hour
    look-ahead: each passes the static test on every node and fits nowhere in time, so the
    search visits every node and jumps through its calendar over the whole horizon. Every
    answer is checked to be a NO.

Reported, as p50/p99/max in ms over the samples:

``plan_ms`` (and ``plan_cpu_ms``, the thread's CPU time)
    one :func:`plan_offers` (one search, its NO reason included), after a first call that
    builds what the engine caches per calendar (``cold_plan_ms``, once);
``find_then_explain_ms``
    ``find_offers`` then ``explain_no_offers``: two full searches, what the operator ran for a
    NO before it kept the reason of its one search;
``operator_decision_ms``
    the wall time of the operator's decision for an OfferSet
    (``eb_operator.operator.answering.OfferSetAnswers._decide``), on an operator whose
    in-memory state holds these nodes, Pods and reservations;
``event_loop_blocked_ms``
    the longest the operator's event loop went without running another task during that
    decision: a ticker task on the same loop measures the gap. Watch events, the REST-facing
    status writes and every other OfferSet wait that long.

``--baseline DIR`` runs this same file again, in a subprocess, against ``DIR/src`` (a checkout
of main) on the same platform and requests, and adds its figures and the ratios ours / its.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from eb_operator.engine import Ledger, NodeTable, explain_no_offers, find_offers, plan_offers
from eb_operator.engine.types import GIB, Demand, NodeCapacity, Phase, Reservation, Resources, Window
from eb_operator.model.platform import PlatformPolicy
from eb_operator.operator.core import Operator, OperatorConfig
from eb_operator.operator.requests import Interpretation

H = 3600
MIB = 2**20
NOW = 1_700_000_040  # a whole minute
SLOT = 60
HORIZON = 24 * H
POLICY = PlatformPolicy(slot_seconds=SLOT, horizon_seconds=HORIZON, release_seconds=60, max_offers=4)
#: (cores, GiB of memory, GiB of scratch) of the instance types
TYPES = [(16, 64, 200), (32, 128, 400), (48, 192, 400), (64, 256, 800), (96, 384, 800)]
PHASES = [Phase.OFFERED, Phase.ACCEPTED, Phase.WAITING, Phase.RUNNING]
#: no request of at least this many cores fits while a reservation holds its node
MIN_CORES = 2
#: the longest gap between two reservations of a node; the shortest run asked for is longer
MAX_GAP = 80 * 60
MIN_RUN = 2 * H


@dataclass(frozen=True)
class Platform:
    nodes: list[NodeCapacity]
    allocatable: list[Resources]
    pods: list[tuple[str, Resources]]  # (node, requests) of the Pods the broker does not own
    reservations: list[Reservation]


def make_platform(count: int, reservations: int, rng: random.Random) -> Platform:
    nodes: list[NodeCapacity] = []
    allocatable: list[Resources] = []
    pods: list[tuple[str, Resources]] = []
    for i in range(count):
        name = f"frag-{i:05d}"
        cores, mem, eph = TYPES[rng.randrange(len(TYPES))]
        alloc = Resources(
            cores * 1000 - rng.randrange(0, 500, 10),
            mem * GIB - rng.randrange(0, 2048) * MIB,
            eph * GIB - rng.randrange(0, 20) * GIB,
        )
        used_cpu = used_mem = used_eph = 0
        for _ in range(rng.randrange(13)):
            req = Resources(
                rng.randrange(50, 4001, 50), rng.randrange(64, 8193, 64) * MIB, rng.randrange(0, 21) * GIB
            )
            # leave room for the largest request (8 cores, 16 GiB) and the reservations' slack
            if used_cpu + req.cpu_millis > alloc.cpu_millis - 10_000:
                continue
            if used_mem + req.memory_bytes > alloc.memory_bytes - 32 * GIB:
                continue
            if used_eph + req.ephemeral_bytes > alloc.ephemeral_bytes:
                continue
            used_cpu += req.cpu_millis
            used_mem += req.memory_bytes
            used_eph += req.ephemeral_bytes
            pods.append((name, req))
        free = Resources(
            alloc.cpu_millis - used_cpu, alloc.memory_bytes - used_mem, alloc.ephemeral_bytes - used_eph
        )
        nodes.append(NodeCapacity(name, free, {"kubernetes.io/hostname": name}))
        allocatable.append(alloc)
    return Platform(nodes, allocatable, pods, make_reservations(nodes, reservations, rng))


def make_reservations(nodes: Sequence[NodeCapacity], count: int, rng: random.Random) -> list[Reservation]:
    """``count`` reservations, as evenly over the nodes as the division allows, each node's
    tiling ``[now - 1 h, now + 31 h]`` with short gaps (see the module docstring)."""
    out: list[Reservation] = []
    lo, hi = NOW - H, NOW + HORIZON + 7 * H  # the last start, plus the longest run and slack
    for i, node in enumerate(nodes):
        k = count // len(nodes) + (1 if i < count % len(nodes) else 0)
        if not k:
            continue
        gaps = [rng.randrange(0, MAX_GAP, 60) for _ in range(k - 1)]
        cuts = sorted(rng.randrange(1, 1000) for _ in range(k - 1))
        weights = [b - a for a, b in zip([0, *cuts], [*cuts, 1000], strict=True)]
        span = hi - lo - sum(gaps)
        lengths = [max(20 * 60, span * w // 1000) for w in weights]
        t = lo
        free = node.free
        for j, length in enumerate(lengths):
            if j == k - 1:
                length = max(length, hi - t)
            held = Resources(
                free.cpu_millis - rng.randrange(0, (MIN_CORES - 1) * 1000, 10),  # > free - 2 cores
                rng.randrange(1, max(2, free.memory_bytes // GIB)) * GIB,
                rng.randrange(0, 10) * GIB,
            )
            key = f"ns/{node.name}-{j}"
            out.append(Reservation(key, node.name, t, t + length, held, rng.choice(PHASES), f"g{j}"))
            t += length + (gaps[j] if j < k - 1 else 0)
    return out


def make_demands(count: int, rng: random.Random) -> list[Demand]:
    out = []
    for _ in range(count):
        cores = rng.randint(MIN_CORES, 8)
        memory = rng.randint(1, 16)
        run = rng.randrange(MIN_RUN, 6 * H + 1, 60)
        out.append(Demand(cores, cores, memory, memory, run, (Window(NOW, NOW + HORIZON),)))
    return out


# -- the operator's state, as its watches would fill it ------------------------------------------


def node_object(node: NodeCapacity, alloc: Resources) -> dict[str, Any]:
    return {
        "metadata": {"name": node.name, "labels": dict(node.labels), "resourceVersion": "1"},
        "spec": {},
        "status": {
            "allocatable": {
                "cpu": f"{alloc.cpu_millis}m",
                "memory": str(alloc.memory_bytes),
                "ephemeral-storage": str(alloc.ephemeral_bytes),
            },
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod_object(i: int, node: str, req: Resources) -> dict[str, Any]:
    requests = {
        "cpu": f"{req.cpu_millis}m",
        "memory": str(req.memory_bytes),
        "ephemeral-storage": str(req.ephemeral_bytes),
    }
    return {
        "metadata": {"name": f"pod-{i}", "namespace": "tenants", "resourceVersion": "1"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": requests}}]},
        "status": {"phase": "Running"},
    }


def loaded_operator(platform: Platform) -> Operator:
    """An operator (no API server: nothing here writes) whose state holds the platform."""
    op = Operator(cast(Any, None), OperatorConfig(clock=lambda: NOW))
    op.ctx.policy = POLICY
    for node, alloc in zip(platform.nodes, platform.allocatable, strict=True):
        op.state.on_node(node_object(node, alloc))
    for i, (node_name, req) in enumerate(platform.pods):
        op.state.on_pod(pod_object(i, node_name, req))
    for r in platform.reservations:
        op.state.ledger.upsert(r)
    table = op.state.node_table(POLICY)
    for node in platform.nodes[:: max(1, len(platform.nodes) // 50)]:  # the same free capacity
        seen = table.get(node.name)
        assert seen is not None, node
        assert seen.free == node.free, (node, seen)
    return op


async def blocked_ms(op: Operator, demand: Demand) -> tuple[float, float]:
    """(the longest gap of a 1 ms ticker on the loop, the decision's wall time) in ms while
    the operator's answering part decides ``demand``."""
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    ticked = asyncio.Event()
    stop = False

    async def ticker() -> None:
        last = loop.time()
        while not stop:
            await asyncio.sleep(0.001)  # the ticker's period: what it measures is the gap
            now = loop.time()
            gaps.append(now - last)
            last = now
            ticked.set()

    tick = asyncio.create_task(ticker())
    await ticked.wait()  # the ticker runs before the decision starts
    obj = {"metadata": {"name": "worst", "namespace": "ns", "uid": "u"}}
    t0 = time.perf_counter()
    caller = op.answers.rules.caller(None, None)  # nobody's: no limits bind it
    decision, _ = await op.answers._decide(obj, Interpretation(demand), caller, NOW)
    took = time.perf_counter() - t0
    assert not decision.offers, "the worst-case request must get a NO"
    assert decision.message is not None
    assert decision.message["message"]
    ticked.clear()
    await ticked.wait()  # the tick after the decision records the gap that spans it
    stop = True
    await tick
    return 1000 * max(gaps), 1000 * took


# -- measuring -----------------------------------------------------------------------------------


def summary(values_ms: Sequence[float]) -> dict[str, float | int]:
    ordered = sorted(values_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 3)

    return {"n": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": round(ordered[-1], 3)}


def measure(nodes: int, reservations: int, samples: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    platform = make_platform(nodes, reservations, rng)
    table = NodeTable(platform.nodes)
    book = Ledger(platform.reservations).snapshot()
    setup = time.perf_counter() - t0
    demands = make_demands(samples, rng)
    t = time.perf_counter()
    plan_offers(demands[0], POLICY, table, book, NOW)  # warm-up: label index, per-calendar caches
    cold = 1000 * (time.perf_counter() - t)

    plans, twice, cpu, visited = [], [], [], []
    for d in demands:
        c0, t = time.thread_time(), time.perf_counter()
        plan = plan_offers(d, POLICY, table, book, NOW)
        plans.append(1000 * (time.perf_counter() - t))
        cpu.append(1000 * (time.thread_time() - c0))
        assert not plan.offers, f"the worst case must fit nowhere: {d} got {plan.offers}"
        assert plan.reason
        visited.append(plan.visited)
        t = time.perf_counter()
        offers = find_offers(d, POLICY, table, book, NOW)
        reason = None if offers else explain_no_offers(d, POLICY, table, book, NOW)
        twice.append(1000 * (time.perf_counter() - t))
        assert reason == plan.reason

    op = loaded_operator(platform)

    async def loop_blocks() -> list[tuple[float, float]]:
        await blocked_ms(op, demands[0])  # warm-up: the node table is built on first use
        return [await blocked_ms(op, d) for d in demands]

    blocks = asyncio.run(loop_blocks())
    decisions = [w for _, w in blocks]
    shapes = len(table.shapes)
    return {
        "what": (
            "a request that fits nowhere: it passes the static test on every node, and every "
            "node's calendar is scanned over the whole 24-hour look-ahead"
        ),
        "nodes": nodes,
        "node_shapes": shapes,
        "foreign_pods": len(platform.pods),
        "reservations": len(platform.reservations),
        "requests": f"{samples} requests of {MIN_CORES}-8 cores, a run of 2-6 h, any start in 24 h",
        "setup_s": round(setup, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "mean_visited_nodes": round(statistics.fmean(visited), 1),
        "cold_plan_ms": round(cold, 3),
        "plan_ms": summary(plans),
        "plan_cpu_ms": summary(cpu),
        "find_then_explain_ms": summary(twice),
        "operator_decision_ms": summary(decisions),
        "event_loop_blocked_ms": summary([b for b, _ in blocks]),
        "target_p99_ms": 50.0,
        "target_met": summary(decisions)["p99"] <= 50.0,
    }


def baseline(checkout: str, argv: Sequence[str]) -> dict[str, Any]:
    """This benchmark run by another checkout's engine and operator (``checkout/src``)."""
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.abspath(checkout), "src")}
    command = [sys.executable, os.path.abspath(__file__), *argv]
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return cast(dict[str, Any], json.loads(run.stdout))


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float | None]:
    """ours / theirs for the p50 and p99 of each figure both runs have (below 1: we are faster)."""
    out: dict[str, float | None] = {}
    for figure in ("plan_ms", "plan_cpu_ms", "operator_decision_ms", "event_loop_blocked_ms"):
        for q in ("p50", "p99"):
            a, b = ours.get(figure, {}).get(q), theirs.get(figure, {}).get(q)
            out[f"{figure}_{q}"] = round(a / b, 3) if a is not None and b else None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=10_000)
    p.add_argument("--reservations", type=int, default=100_000)
    p.add_argument("--samples", type=int, default=25)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--baseline", default=None, help="a checkout (e.g. of main) to measure the same way")
    args = p.parse_args(argv)
    sizes = ["--nodes", str(args.nodes), "--reservations", str(args.reservations)]
    same = [*sizes, "--samples", str(args.samples), "--seed", str(args.seed)]
    doc = measure(args.nodes, args.reservations, args.samples, args.seed)
    if args.baseline:
        doc["baseline"] = {"checkout": args.baseline, **baseline(args.baseline, same)}
        doc["ratios_ours_to_baseline"] = ratios(doc, doc["baseline"])
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
