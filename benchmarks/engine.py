"""Offer-engine benchmark: latency, memory and snapshot cost, against a naive baseline.

    python benchmarks/engine.py            # the full grid (about a minute on 2 cores)
    python benchmarks/engine.py --quick    # a smoke run (a few seconds), same JSON shape

Prints one JSON document. For each (nodes, reservations) configuration:

``offers``
    latency of :func:`plan_offers` over a fixed mix of requests (below) on one ledger snapshot
    and node table, as the operator calls it: p50 / p99 / max in ms of one pass, and p50 / p99
    of each request's fastest of three runs (``*_min_of_3_ms``) and of the CPU time the thread
    used (``cpu_*_ms``, ``time.thread_time``): on a shared machine wall time also counts the
    time spent waiting for a CPU, which the engine does not control (``load_average`` says how
    busy the machine was). Also the mean number of node calendars visited, garbage
    collections during the pass, and the peak memory a request allocates (tracemalloc, in a
    separate pass because tracing slows Python down). ``target_met`` checks the issue's p99
    target on wall time, ``target_met_min_of_3`` on the fastest runs, ``target_met_cpu`` on
    CPU time.
``long_run_ms``
    a 23-hour run of 16 cores starting within the hour. It looks hard but is cheap: most nodes
    hold it at the first start, so the first pass stops at the first node it visits.
``worst_case`` (once, not per configuration)
    the real worst case, from ``benchmarks/worst_case.py``: a request that fits nowhere, on
    10,000 nodes whose free capacity is fragmented by Pods of many shapes, with 100,000
    reservations: every node is visited and its calendar scanned over the whole look-ahead.
    p50/p99 of one search, of the two searches the operator used to run for a NO, of the
    operator's decision, and how long that holds the operator's event loop. ``--quick``: 100
    nodes, 1,000 reservations. ``--baseline DIR`` also measures it with ``DIR/src`` (a checkout
    of main) in a subprocess, and gives the ratios ours / its.
``snapshot``
    the ledger: building it from all reservations (operator start-up), then the steady state:
    upserting one offer set (4 reservations) and taking a snapshot, and a snapshot with no
    change; the node table build; and a *cold* call with plain lists (the engine indexes
    everything itself), to show what the snapshot saves. Peak memory of the ledger build.
``naive``
    the baseline the issue asks for: every slot start x every node x every reservation (no
    index, no pruning, no early exit), computing the earliest and the biggest offer - less work
    than the engine does, so the ratio is conservative. It is *measured* outright when a
    request's slot x node pairs fit in the time budget, otherwise measured on a prefix of the
    pairs and *extrapolated* linearly (its cost is exactly linear in the pairs); ``mode`` says
    which, ``ratio_extrapolated`` is true when any request's naive time was extrapolated and
    ``requests_extrapolated`` counts them. ``ratio_p50`` = naive / engine on the same requests.
    ``earliest_start_agrees`` compares the naive scan's earliest start with the engine's on the
    ``earliest_start_compared`` requests where the scan finished; null when it finished on none.

Platform: 60-second slots, a 24-hour look-ahead; nodes are 40% 16-core, 40% 32-core, 10%
64-core and 10% 32-core with 4 A100 GPUs. Reservations are spread uniformly over the nodes
and over [now - 2 h, now + 26 h], each in one of four lanes per node so that no node is ever
over-committed (a ledger the engine built would look the same).

Request mix (fixed seed): 40% small (1-4 cores, 1 h, the default 2-hour window), 20% generous
(4..16 cores, 2 h, 24-hour window), 15% whole small node (16 cores, 64 GiB, 4 h, 24 h), 10% GPU
(1-2 A100, 2 h, 12 h), 10% with preparation and scratch (20 min lead, 50 GiB, 6 h), 5%
impossible (more cores than any node: answered by the static test).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform as pyplatform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from eb_operator.engine import Ledger, NodeTable, plan_offers
from eb_operator.engine.types import (
    GIB,
    HOLDING_PHASES,
    Demand,
    GpuDemand,
    NodeCapacity,
    Phase,
    Reservation,
    Resources,
    Window,
)
from eb_operator.model.platform import PlatformPolicy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worst_case

H = 3600
NOW = 1_700_000_040  # a whole minute
SLOT = 60
HORIZON = 24 * H
GPU = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
LANES = 4

POLICY = PlatformPolicy(
    slot_seconds=SLOT,
    horizon_seconds=HORIZON,
    max_duration_factor=2.0,
    release_seconds=60,
    max_offers=4,
)

FULL_GRID = [(n, r) for n in (10, 1_000, 10_000) for r in (0, 10_000, 100_000)]
QUICK_GRID = [(n, r) for n in (10, 100) for r in (0, 1_000)]

# Targets from the issue (p99 of the mix, ms), on a 2-core machine.
TARGETS = {(1_000, 10_000): 5.0, (10_000, 100_000): 50.0}


# -- the platform --------------------------------------------------------------------------------


def make_nodes(count: int, rng: random.Random) -> list[NodeCapacity]:
    nodes = []
    for i in range(count):
        kind = i % 10
        labels = {"kubernetes.io/hostname": f"node-{i:05d}", "zone": f"z{rng.randrange(3)}"}
        if kind < 4:
            free = Resources(16_000, 64 * GIB, 200 * GIB)
        elif kind < 8:
            free = Resources(32_000, 128 * GIB, 400 * GIB)
        elif kind == 8:
            free = Resources(64_000, 256 * GIB, 800 * GIB)
        else:
            free = Resources(32_000, 256 * GIB, 400 * GIB, {GPU: 4})
            labels[PRODUCT_LABEL] = "A100"
        nodes.append(NodeCapacity(f"node-{i:05d}", free, labels))
    return nodes


def make_reservations(nodes: Sequence[NodeCapacity], count: int, rng: random.Random) -> list[Reservation]:
    """``count`` reservations, never over-committing a node: each node has four lanes, each
    lane a quarter of the node, and a lane's reservations never overlap in time."""
    per_node = [0] * len(nodes)
    for _ in range(count):
        per_node[rng.randrange(len(nodes))] += 1
    phases = [Phase.ACCEPTED, Phase.WAITING, Phase.RUNNING, Phase.OFFERED]
    out: list[Reservation] = []
    span_start, span = NOW - 2 * H, 28 * H
    for node, k in zip(nodes, per_node, strict=True):
        free = node.free
        gpus = free.gpus.get(GPU, 0)
        for lane in range(LANES):
            n = k // LANES + (1 if lane < k % LANES else 0)
            if not n:
                continue
            step = span / n
            for j in range(n):
                length = max(1, int(step * rng.uniform(0.3, 0.95)))
                start = int(span_start + j * step + rng.uniform(0, step - length))
                cores = rng.randint(1, free.cpu_millis // 1000 // LANES)
                out.append(
                    Reservation(
                        key=f"ns/{node.name}-{lane}-{j}",
                        node=node.name,
                        start=start,
                        end=start + length,
                        resources=Resources(
                            cpu_millis=cores * 1000,
                            memory_bytes=rng.randint(1, free.memory_bytes // GIB // LANES) * GIB,
                            ephemeral_bytes=rng.randint(0, free.ephemeral_bytes // GIB // LANES) * GIB,
                            gpus={GPU: 1} if gpus and rng.random() < 0.5 else {},
                        ),
                        phase=rng.choice(phases),
                        group=f"g{j}",
                    )
                )
    return out


def make_demands(count: int, rng: random.Random) -> list[Demand]:
    def window(hours: float, lead: int = 0) -> tuple[Window, ...]:
        return (Window(NOW + lead, NOW + lead + int(hours * H)),)

    out = []
    for _ in range(count):
        x = rng.random()
        if x < 0.40:
            cores = rng.randint(1, 4)
            d = Demand(cores, cores, 2 * cores, 2 * cores, H, window(2))
        elif x < 0.60:
            d = Demand(4, 16, 8, 64, 2 * H, window(24))
        elif x < 0.75:
            d = Demand(16, 16, 64, 64, 4 * H, window(24))
        elif x < 0.85:
            g = rng.randint(1, 2)
            d = Demand(8, 8, 32, 32, 2 * H, window(12), gpu=GpuDemand(g, GPU, "A100"))
        elif x < 0.95:
            d = Demand(2, 2, 4, 4, 30 * 60, window(6, 20 * 60), storage_gib=50, preparation=20 * 60)
        else:
            d = Demand(128, 128, 8, 8, H, window(24))
        out.append(d)
    return out


LONG_RUN = Demand(16, 16, 8, 8, 23 * H, (Window(NOW, NOW + H),))


# -- the naive baseline --------------------------------------------------------------------------


def naive_pairs(
    demand: Demand, nodes: Sequence[NodeCapacity]
) -> tuple[int, Iterator[tuple[int, NodeCapacity]]]:
    """How many (start, node) pairs the naive scan has, and the pairs (lazily)."""
    first = max(NOW + demand.preparation, demand.windows[0].start)
    last = min(NOW + HORIZON, demand.windows[0].end)
    starts = range(-(-first // SLOT) * SLOT, last + 1, SLOT)
    return len(starts) * len(nodes), ((t, n) for t in starts for n in nodes)


def naive_run(
    demand: Demand,
    pairs: Iterable[tuple[int, NodeCapacity]],
    reservations: Sequence[Reservation],
    deadline: float,
) -> tuple[int, Any]:
    """Evaluate (start, node) pairs until done or ``deadline``: the earliest and biggest fit."""
    rel = POLICY.release_seconds
    gpu_name = demand.gpu.resource_name if demand.gpu else None
    gpu_count = demand.gpu.count if demand.gpu else 0
    best_early: tuple[int, str] | None = None
    best_big: tuple[int, int, int, str] | None = None
    done = 0
    for t, node in pairs:
        if time.perf_counter() > deadline:
            break
        done += 1
        lo, hi = t - demand.preparation, t + demand.duration + rel
        overlapping = [r for r in reservations if r.node == node.name and r.start < hi and r.end > lo]
        overlapping = [r for r in overlapping if r.phase in HOLDING_PHASES]
        # Peak usage over the span: sweep the events inside it.
        points = sorted({lo} | {r.start for r in overlapping if r.start > lo})
        peak_c = peak_m = peak_e = peak_g = 0
        for p in points:
            c = m = e = g = 0
            for r in overlapping:
                if r.start <= p < r.end:
                    c += r.resources.cpu_millis
                    m += r.resources.memory_bytes
                    e += r.resources.ephemeral_bytes
                    g += r.resources.gpus.get(gpu_name, 0) if gpu_name else 0
            peak_c, peak_m, peak_e, peak_g = max(peak_c, c), max(peak_m, m), max(peak_e, e), max(peak_g, g)
        free = node.free
        cores = (free.cpu_millis - peak_c) // 1000
        mem = (free.memory_bytes - peak_m) // GIB
        fits = (
            cores >= demand.cores_min
            and mem >= demand.memory_min_gib
            and free.ephemeral_bytes - peak_e >= demand.storage_gib * GIB
            and (not gpu_count or free.gpus.get(gpu_name or "", 0) - peak_g >= gpu_count)
            and (
                not demand.gpu
                or node.labels.get(PRODUCT_LABEL) == (demand.gpu.product or node.labels.get(PRODUCT_LABEL))
            )
        )
        if not fits:
            continue
        if best_early is None or t < best_early[0]:
            best_early = (t, node.name)
        level = (min(cores, demand.cores_max), min(mem, demand.memory_max_gib))
        if best_big is None or level > best_big[:2]:
            best_big = (*level, t, node.name)
    return done, (best_early, best_big)


# -- measuring -----------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


@dataclass
class Config:
    nodes: int
    reservations: int


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_config(
    cfg: Config, requests: int, naive_budget: float, naive_requests: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    nodes = make_nodes(cfg.nodes, rng)
    held = make_reservations(nodes, cfg.reservations, rng)
    demands = make_demands(requests, rng)

    # Snapshot and ledger costs: timed untraced, then memory in a traced build.
    t0 = time.perf_counter()
    ledger = Ledger(held)
    snap = ledger.snapshot()
    build = time.perf_counter() - t0
    tracemalloc.start()
    Ledger(held).snapshot()
    _, ledger_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    table_build = timed(lambda: NodeTable(nodes))
    table = NodeTable(nodes)
    assert snap is ledger.snapshot()
    unchanged = min(timed(ledger.snapshot) for _ in range(20))
    churn = []
    for i in range(max(10, requests // 10)):
        where = [nodes[rng.randrange(len(nodes))].name for _ in range(4)]
        extra = [
            Reservation(
                f"ns/bench-{i}-{j}", n, NOW + j * H, NOW + (j + 2) * H, Resources(1000, GIB), Phase.OFFERED
            )
            for j, n in enumerate(where)
        ]
        t0 = time.perf_counter()
        for r in extra:
            ledger.upsert(r)
        ledger.snapshot()
        churn.append(time.perf_counter() - t0)
        for r in extra:
            ledger.remove(r.key)
    snap = ledger.snapshot()
    cold = timed(lambda: plan_offers(demands[0], POLICY, nodes, held, NOW))

    # Offer latency on the snapshot (warm-up first: the label index is built on first use).
    for d in demands[:5]:
        plan_offers(d, POLICY, table, snap, NOW)
    latencies: list[float] = []
    cpu_times: list[float] = []
    visited: list[int] = []
    offers_made = 0
    collections_before = sum(g["collections"] for g in gc.get_stats())
    for d in demands:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        plan = plan_offers(d, POLICY, table, snap, NOW)
        latencies.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)
        visited.append(plan.visited)
        offers_made += len(plan.offers)
    gc_runs = sum(g["collections"] for g in gc.get_stats()) - collections_before
    # The same requests twice more, keeping each request's fastest run: on a shared machine this
    # removes time spent waiting for the CPU, which the engine does not control.
    best = list(latencies)
    for _ in range(2):
        for i, d in enumerate(demands):
            t0 = time.perf_counter()
            plan_offers(d, POLICY, table, snap, NOW)
            best[i] = min(best[i], time.perf_counter() - t0)
    long_run = statistics.median(
        timed(lambda: plan_offers(LONG_RUN, POLICY, table, snap, NOW)) for _ in range(3)
    )

    # Memory per request, in a separate traced pass.
    tracemalloc.start()
    peaks = []
    for d in demands[: min(len(demands), 20)]:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        plan_offers(d, POLICY, table, snap, NOW)
        _, peak = tracemalloc.get_traced_memory()
        peaks.append(peak - base)
    tracemalloc.stop()

    # The naive baseline on the same requests as the engine (the first few of the mix that
    # pass the static test, so that the naive scan has real work to do).
    naive_ms: list[float] = []
    engine_ms: list[float] = []
    modes = set()
    measured_pairs = total_pairs = extrapolated = compared = 0
    agree = True
    chosen = [d for d in demands if d.cores_min <= 64][:naive_requests]
    for d in chosen:
        count, pairs = naive_pairs(d, nodes)
        t0 = time.perf_counter()
        done, (early, _) = naive_run(d, pairs, held, t0 + naive_budget)
        spent = time.perf_counter() - t0
        measured_pairs += done
        total_pairs += count
        if done == count:
            modes.add("measured")
            naive_ms.append(spent)
            engine_plan = plan_offers(d, POLICY, table, snap, NOW)
            engine_first = engine_plan.offers[0].start if engine_plan.offers else None
            agree = agree and engine_first == (early[0] if early else None)
            compared += 1
        else:
            modes.add("extrapolated")
            extrapolated += 1
            naive_ms.append(spent / max(done, 1) * count)
        engine_ms.append(min(timed(partial(plan_offers, d, POLICY, table, snap, NOW)) for _ in range(3)))
    ratios = [n / e for n, e in zip(naive_ms, engine_ms, strict=True) if e > 0]

    p99 = pct(latencies, 0.99)
    target = TARGETS.get((cfg.nodes, cfg.reservations))
    return {
        "nodes": cfg.nodes,
        "reservations": cfg.reservations,
        "offers": {
            "requests": len(latencies),
            "p50_ms": ms(pct(latencies, 0.50)),
            "p99_ms": ms(p99),
            "max_ms": ms(max(latencies)),
            "p50_min_of_3_ms": ms(pct(best, 0.50)),
            "p99_min_of_3_ms": ms(pct(best, 0.99)),
            "cpu_p50_ms": ms(pct(cpu_times, 0.50)),
            "cpu_p99_ms": ms(pct(cpu_times, 0.99)),
            "gc_collections": gc_runs,
            "mean_offers": round(offers_made / len(latencies), 2),
            "mean_visited_nodes": round(statistics.fmean(visited), 1),
            "peak_alloc_kib_p50": round(pct(peaks, 0.5) / 1024, 1),
            "peak_alloc_kib_max": round(max(peaks) / 1024, 1),
        },
        "long_run_ms": ms(long_run),
        "target_p99_ms": target,
        "target_met": None if target is None else ms(p99) <= target,
        "target_met_min_of_3": None if target is None else ms(pct(best, 0.99)) <= target,
        "target_met_cpu": None if target is None else ms(pct(cpu_times, 0.99)) <= target,
        "load_average": round(os.getloadavg()[0], 2),
        "snapshot": {
            "ledger_build_ms": ms(build),
            "ledger_peak_mib": round(ledger_peak / 2**20, 2),
            "offer_set_upsert_and_snapshot_p50_ms": ms(pct(churn, 0.5)),
            "offer_set_upsert_and_snapshot_p99_ms": ms(pct(churn, 0.99)),
            "unchanged_snapshot_us": round(unchanged * 1e6, 2),
            "node_table_build_ms": ms(table_build),
            "cold_plan_with_plain_lists_ms": ms(cold),
        },
        "naive": {
            "mode": "+".join(sorted(modes)) or "none",
            "requests": len(naive_ms),
            "pairs_measured": measured_pairs,
            "pairs_total": total_pairs,
            "p50_ms": ms(statistics.median(naive_ms)) if naive_ms else None,
            "engine_same_requests_p50_ms": ms(statistics.median(engine_ms)) if engine_ms else None,
            "ratio_p50": round(statistics.median(ratios), 1) if ratios else None,
            # True when any request's naive time (so the ratio) is an extrapolation, not a measurement
            "ratio_extrapolated": extrapolated > 0,
            "requests_extrapolated": extrapolated,
            # the naive scan's earliest start is compared with the engine's only where it finished
            "earliest_start_compared": compared,
            "earliest_start_agrees": agree if compared else None,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small grid, few requests")
    parser.add_argument("--requests", type=int, default=None, help="requests per configuration")
    parser.add_argument("--naive-budget", type=float, default=None, help="seconds of naive work per request")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default=None, help="one configuration, NODES,RESERVATIONS")
    parser.add_argument("--skip-worst-case", action="store_true", help="leave out the worst case")
    parser.add_argument("--baseline", default=None, help="a checkout to measure the worst case with too")
    args = parser.parse_args(argv)
    grid = QUICK_GRID if args.quick else FULL_GRID
    if args.only:
        n, r = (int(x) for x in args.only.split(","))
        grid = [(n, r)]
    requests = args.requests or (20 if args.quick else 300)
    budget = args.naive_budget if args.naive_budget is not None else (0.05 if args.quick else 0.5)
    naive_requests = 2 if args.quick else 3
    started = time.perf_counter()
    results = []
    for n, r in grid:
        t0 = time.perf_counter()
        results.append(run_config(Config(n, r), requests, budget, naive_requests, args.seed))
        print(f"{n} nodes, {r} reservations: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    t0 = time.perf_counter()
    nodes, reservations, samples = (100, 1_000, 5) if args.quick else (10_000, 100_000, 25)
    worst = None if args.skip_worst_case else worst_case.measure(nodes, reservations, samples, args.seed)
    if worst is not None and args.baseline:
        same = ["--nodes", str(nodes), "--reservations", str(reservations)]
        same += ["--samples", str(samples), "--seed", str(args.seed)]
        worst["baseline"] = {"checkout": args.baseline, **worst_case.baseline(args.baseline, same)}
        worst["ratios_ours_to_baseline"] = worst_case.ratios(worst, worst["baseline"])
    print(f"worst case: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    doc = {
        "benchmark": "engine",
        "quick": args.quick,
        "machine": {
            "python": pyplatform.python_version(),
            "implementation": pyplatform.python_implementation(),
            "cpus": os.cpu_count(),
        },
        "platform": {"slot_seconds": SLOT, "horizon_seconds": HORIZON, "max_offers": POLICY.max_offers},
        "naive_budget_seconds": budget,
        "configs": results,
        "worst_case": worst,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
    }
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
