"""Why a cycle found no offers, as a sentence for a NO: a demand outside the platform's limits,
start windows outside what can be offered, no node that can ever hold the minimum, or no free
slot in the windows."""

from __future__ import annotations

from eb_operator.engine.search import Search
from eb_operator.engine.starts import StartGrid
from eb_operator.engine.types import GIB, NodeCapacity
from eb_operator.model.times import format_instant


def hours(seconds: int) -> str:
    """A length of time as a person says it: ``2 h``, ``90 min``, ``45 s``."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def limits_reason(s: Search) -> str | None:
    """Why the demand is outside what the platform serves at all; None when it is not."""
    d, lim = s.demand, s.policy.limits
    if d.cores_min < 1:
        return "the request must ask for at least 1 core"
    if d.memory_min_gib < 0 or d.storage_gib < 0:
        return "memory and storage cannot be negative"
    if d.duration <= 0:
        return "the requested duration must be positive"
    if d.gpu is not None and d.gpu.count < 0:
        return "the GPU count cannot be negative"
    if d.cores_min > lim.max_cores:
        return f"{d.cores_min} cores is more than the platform's limit of {lim.max_cores} cores per request"
    if d.memory_min_gib > lim.max_memory_gib:
        return (
            f"{d.memory_min_gib} GiB of memory is more than the platform's limit of "
            f"{lim.max_memory_gib} GiB per request"
        )
    if s.gpu_count > lim.max_gpus:
        return f"{s.gpu_count} GPUs is more than the platform's limit of {lim.max_gpus} GPUs per request"
    if d.storage_gib > lim.max_storage_gib:
        return (
            f"{d.storage_gib} GiB of scratch storage is more than the platform's limit of "
            f"{lim.max_storage_gib} GiB per request"
        )
    if d.duration > lim.max_duration_seconds:
        return (
            f"a run time of {hours(d.duration)} is more than the platform's limit of "
            f"{hours(lim.max_duration_seconds)}"
        )
    return None


def starts_reason(s: Search) -> str:
    """Why no allowed start is left in the requested windows."""
    windows = s.demand.windows
    if not windows:
        return "the request has no start window"
    earliest = s.now + s.prep
    latest = s.now + s.policy.horizon_seconds
    if all(w.end < earliest for w in windows):
        what = "now" if not s.prep else f"now plus {hours(s.prep)} of preparation"
        return (
            "every requested start window ends before the earliest possible start "
            f"({what}, {format_instant(earliest)})"
        )
    if all(w.start > latest for w in windows):
        return (
            f"every requested start window begins after the platform's look-ahead of "
            f"{hours(s.policy.horizon_seconds)} ({format_instant(latest)})"
        )
    return f"no slot start (every {hours(s.slot)}) falls inside the requested start windows"


def need_text(s: Search) -> str:
    """The minimum the demand needs on one node, in words."""
    parts = [f"{s.cmin} cores", f"{s.mmin} GiB of memory"]
    if s.gpu_count:
        gpu = s.demand.gpu
        product = f" ({gpu.product})" if gpu is not None and gpu.product else ""
        parts.append(f"{s.gpu_count} x {s.gpu_name}{product}")
    if s.eph:
        parts.append(f"{s.demand.storage_gib} GiB of scratch storage")
    return ", ".join(parts)


def static_reason(s: Search) -> str:
    """Why no node can ever hold the minimum, whatever the time."""
    nodes: list[NodeCapacity] = list(s.table)
    if not nodes:
        return "the platform has no nodes the broker may use"
    gpu = s.demand.gpu
    product_key = gpu.product_label if gpu is not None and gpu.product and s.gpu_name else None
    selector = dict(s.policy.node_selector)
    selector.update(s.demand.node_selector)
    if selector:
        chosen = s.table.selected(selector) or frozenset()
        nodes = [n for n in nodes if n.name in chosen]
        if not nodes:
            text = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
            # the table holds only nodes a Pod could use now: a labelled node NotReady, cordoned or
            # tainted (a new node, for its first seconds) is why as often as a missing label
            return f"no Ready, schedulable, untainted node carries the labels {text}"
    if product_key is not None and gpu is not None:
        nodes = [n for n in nodes if n.labels.get(product_key) == gpu.product]
        if not nodes:
            return f"no node has GPUs of product {gpu.product} (label {product_key})"
    if s.gpu_name is not None:
        most = max(n.free.gpus.get(s.gpu_name, 0) for n in nodes)
        if most == 0:
            return f"no node has any {s.gpu_name}"
        if most < s.gpu_count:
            return f"no node has {s.gpu_count} x {s.gpu_name} (the most on one node is {most})"
    most_cores = max(n.free.cpu_millis for n in nodes) // 1000
    if most_cores < s.cmin:
        return f"no node has {s.cmin} cores (the most on one node is {most_cores})"
    most_mem = max(n.free.memory_bytes for n in nodes) // GIB
    if most_mem < s.mmin:
        return f"no node has {s.mmin} GiB of memory (the most on one node is {most_mem} GiB)"
    if s.eph:
        most_eph = max(n.free.ephemeral_bytes for n in nodes) // GIB
        if most_eph < s.demand.storage_gib:
            return (
                f"no node has {s.demand.storage_gib} GiB of scratch storage "
                f"(the most on one node is {most_eph} GiB)"
            )
    return f"no single node has {need_text(s)} together"


def time_reason(s: Search, starts: StartGrid) -> str:
    span = f"between {format_instant(starts.first)} and {format_instant(starts.last)}"
    return (
        f"no free slot in the requested start windows: no node can hold {need_text(s)} "
        f"for {hours(s.dmin)} starting {span}"
    )
