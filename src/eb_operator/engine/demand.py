"""From a judged wire request to the engine's :class:`Demand`, with the policy's defaults applied.

Call it for requests :func:`eb_operator.model.judge_request` accepted (no ERROR): it assumes the
type checks passed and only applies defaults and limits.

Defaults and limits (digest §9 items 13-15, §5.2):

* cores and memory: a missing ``min`` is the platform minimum, 1 core and 1 GiB; a missing ``max``
  is the ``min``; a ``max`` above the policy limit is capped to it (the judge warned), never
  below the ``min``.
* run time: the requested ``duration`` (a minimum), else ``defaultDurationSeconds``.
* preparation: ``preparationSeconds`` plus the time to stage the data at
  ``dataBandwidthBytesPerSecond``, when the request says how big the data is or the operator's
  probe measured it (``probed_bytes``).
* start windows: each requested window, clipped to [now + preparation, now + horizon], overlaps
  merged; none at all means [now + preparation, now + preparation + ``defaultStartWindowSeconds``].
  Windows that clip to nothing are dropped; if nothing at all is left, the requested windows are
  passed on unclipped, so that the engine (which clips again) can say *why* no start is possible
  (all in the past, all beyond the horizon) instead of "no window".
* GPUs: the first accelerator requirement picks a flavour (see
  :mod:`eb_operator.model.accelerators`); its requested minimum is the count, capped at the
  policy limit. A minimum of zero means the GPU is optional, so none is demanded.
* storage: the sum of the storage resources' minimum sizes, a resource without a size counting as
  1 GiB, since scratch space with no size still needs a reservation.
* release: ``releaseSeconds`` plus the time to stage results out at ``dataBandwidthBytesPerSecond``:
  for each storage resource with a ``stageout``, its ``size`` (GiB) or else the whole storage,
  which is the most the volume can hold.
"""

from __future__ import annotations

import dataclasses
import math

from eb_operator.engine.types import Demand, GpuDemand, Window
from eb_operator.model import (
    Cores,
    Memory,
    OfferSetRequest,
    SimpleComputeResource,
    SimpleStorageResource,
    data_size_bytes,
    gpu_requests,
    match_flavour,
)
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.stageout import GIB, stage_out_gib

DEFAULT_CORES = 1
DEFAULT_MEMORY_GIB = 1


def _range(block: Cores | Memory | None, default: int, limit: int) -> tuple[int, int]:
    requested = block.requested if block else None
    low = requested.min if requested and requested.min is not None else default
    high = requested.max if requested and requested.max is not None else low
    low = max(low, default)
    return low, max(low, min(high, limit))


def _gpu(compute: SimpleComputeResource, policy: PlatformPolicy) -> GpuDemand | None:
    wanted = [r for r in gpu_requests(compute, ("resources", "compute", 0)) if r.wanted]
    if not wanted or wanted[0].count_min <= 0:
        return None
    match = match_flavour(wanted[0], policy.gpu_flavours)
    if match.flavour is None:
        raise ValueError(f"no GPU flavour serves this request ({match.problem}); judge_request says why")
    flavour = match.flavour
    count = min(wanted[0].count_min, policy.limits.max_gpus)
    return GpuDemand(
        count=count,
        resource_name=flavour.resource_name,
        product=flavour.product,
        product_label=flavour.product_label,
    )


def _storage_gib(req: OfferSetRequest) -> int:
    """New storage the session takes (storage reused from an earlier session has its volume)."""
    return sum(
        r.offered_gib for r in req.storage if isinstance(r, SimpleStorageResource) and r.reuses is None
    )


def _stage_out_bytes(req: OfferSetRequest) -> int:
    return GIB * sum(
        stage_out_gib(r.stageout, r.offered_gib) for r in req.storage if isinstance(r, SimpleStorageResource)
    )


def _windows(req: OfferSetRequest, policy: PlatformPolicy, now: int, preparation: int) -> tuple[Window, ...]:
    earliest = now + preparation
    latest = now + policy.horizon_seconds
    requested = req.requested_schedule
    starts = [w for w in (requested.start or []) if w.supported] if requested else []
    if requested is None or not requested.start:
        spans = [(earliest, earliest + policy.default_start_window_seconds)]
    else:
        spans = [(w.start, w.start + w.seconds) for w in starts if w.start is not None]
    clipped = sorted((max(s, earliest), min(e, latest)) for s, e in spans)
    merged: list[tuple[int, int]] = []
    for start, end in clipped:
        if start > end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    if not merged:
        return tuple(Window(start, end) for start, end in sorted(spans))
    return tuple(Window(start, end) for start, end in merged)


def demand_from_request(
    req: OfferSetRequest, policy: PlatformPolicy, now: int, probed_bytes: int | None = None
) -> Demand:
    """``req`` in the engine's units, under ``policy``, at ``now`` (epoch seconds). See module doc.

    ``probed_bytes``: the size of the data the request names that the operator measured at offer
    time (HTTP ``Content-Length``, S3 object sizes; ``eb_operator.cluster.probe``), added to the
    sizes the request itself states."""
    compute = req.simple_compute()
    limits = policy.limits
    cores_min, cores_max = _range(compute.cores if compute else None, DEFAULT_CORES, limits.max_cores)
    memory_min, memory_max = _range(
        compute.memory if compute else None, DEFAULT_MEMORY_GIB, limits.max_memory_gib
    )
    requested = req.requested_schedule
    duration = policy.default_duration_seconds
    if requested is not None and requested.duration is not None and requested.duration.seconds > 0:
        duration = requested.duration.seconds
    bandwidth = policy.data_bandwidth_bytes_per_second
    staged = (data_size_bytes(req.data) or 0) + (probed_bytes or 0)
    preparation = policy.preparation_seconds + math.ceil(staged / bandwidth)
    delivered = _stage_out_bytes(req)
    release = policy.release_seconds + math.ceil(delivered / bandwidth) if delivered else None
    return Demand(
        cores_min=cores_min,
        cores_max=cores_max,
        memory_min_gib=memory_min,
        memory_max_gib=memory_max,
        duration=duration,
        windows=_windows(req, policy, now, preparation),
        gpu=_gpu(compute, policy) if compute else None,
        storage_gib=_storage_gib(req),
        preparation=preparation,
        release=release,
        node_selector=dict(policy.node_selector),
        max_offers=policy.max_offers,
    )


def not_before(demand: Demand, prepare_start: int) -> Demand | None:
    """``demand`` with every start window cut so that the reservation (its preparation first)
    begins at ``prepare_start`` at the earliest; None when no requested start is left (e.g. the
    storage it mounts again is held by another session until after every one)."""
    earliest = prepare_start + demand.preparation
    windows = tuple(Window(max(w.start, earliest), w.end) for w in demand.windows if w.end >= earliest)
    if not windows:
        return None
    return dataclasses.replace(demand, windows=windows)
