"""An independent check that the reservations held in the API server never exceed a node.

Deliberately shares no code with the operator or the engine: it reads Executions and Nodes as
plain dicts, parses quantities itself, and sweeps each node's timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

HOLDING = {"OFFERED", "ACCEPTED", "WAITING", "PREPARING", "READY", "RUNNING", "RELEASING"}
_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DEC = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _bytes(q: str) -> int:
    for suffix, factor in {**_BIN, **_DEC}.items():
        if q.endswith(suffix):
            return int(float(q[: -len(suffix)]) * factor)
    return int(float(q))


def _cores(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def _t(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def holds(execution: Mapping[str, Any]) -> bool:
    spec, status = execution.get("spec") or {}, execution.get("status") or {}
    if not spec.get("reservation"):
        return False
    ph = status.get("phase") or ("OFFERED" if spec.get("offerSet") else None)
    return ph in HOLDING


def overbooked(executions: Iterable[Mapping[str, Any]], nodes: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every node and instant where held cores, memory or GPUs exceed what the node has."""
    cap: dict[str, tuple[float, int, int]] = {}
    for n in nodes:
        alloc = n["status"].get("allocatable") or n["status"]["capacity"]
        cap[n["metadata"]["name"]] = (
            _cores(alloc["cpu"]),
            _bytes(alloc["memory"]),
            int(alloc.get("nvidia.com/gpu", 0)),
        )
    timeline: dict[str, list[tuple[float, int, float, int, int]]] = {}
    for e in executions:
        if not holds(e):
            continue
        r = e["spec"]["reservation"]
        use = (float(r["cores"]), int(r["memoryGiB"]) * 2**30, int(r.get("gpus") or 0))
        line = timeline.setdefault(r["node"], [])
        line.append((_t(r["prepareStart"]), 1, *use))
        line.append((_t(r["releaseEnd"]), -1, *use))
    problems = []
    for node, events in timeline.items():
        cores = mem = gpus = 0.0
        limit = cap.get(node)
        if limit is None:
            problems.append(f"{node}: reservations on a node that does not exist")
            continue
        for t, sign, c, m, g in sorted(events, key=lambda ev: (ev[0], ev[1])):  # ends before starts
            cores, mem, gpus = cores + sign * c, mem + sign * m, gpus + sign * g
            if cores > limit[0] + 1e-9 or mem > limit[1] or gpus > limit[2]:
                problems.append(f"{node} at {t}: {cores} cores, {mem / 2**30} GiB, {gpus} GPUs > {limit}")
    return problems
