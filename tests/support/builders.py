"""Small builders for engine tests, so that a test reads like the sentence it checks.

    platform = policy(slot=2 * H, horizon=8 * H)
    nodes = [node("n1", cores=64, gpus=1)]
    want = demand(cores=32, gpus=1, hours=4, between=(at("10:00"), at("18:00")))
    held = reservation("n1", at("10:00"), at("14:00"), cores=32)

Times are integer seconds since the epoch; :func:`at` turns "HH:MM" on a fixed test day
(2023-08-14, the day of the tex's examples) into one, so expected starts can be written as clock
times. Nothing here depends on the engine's internals.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from eb_operator.engine.types import (
    GIB,
    Demand,
    GpuDemand,
    NodeCapacity,
    Offer,
    Phase,
    Reservation,
    Resources,
    Window,
)
from eb_operator.model.platform import PlatformPolicy, RequestLimits

MIN = 60
H = 3600
DAY = 24 * H
GPU = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
TEST_DAY = int(datetime(2023, 8, 14, tzinfo=UTC).timestamp())

_keys = itertools.count(1)


def at(clock: str, day: int = 0) -> int:
    """``at("11:30")`` is 2023-08-14T11:30Z; ``day=1`` is the next day."""
    hours, minutes = clock.split(":")
    return TEST_DAY + day * DAY + int(hours) * H + int(minutes) * MIN


def clock(t: int) -> str:
    """The inverse of :func:`at` for readable assertions: ``"11:30"``, ``"+1d 02:00"``."""
    day, rest = divmod(t - TEST_DAY, DAY)
    text = f"{rest // H:02d}:{rest % H // MIN:02d}"
    return text if day == 0 else f"{day:+d}d {text}"


def policy(
    *,
    slot: int = 5 * MIN,
    horizon: int = DAY,
    factor: float = 1.0,
    release: int = 0,
    max_offers: int = 4,
    max_cores: int = 64,
    max_memory_gib: int = 256,
    max_gpus: int = 8,
    max_storage_gib: int = 1024,
    max_duration: int = DAY,
    node_selector: Mapping[str, str] | None = None,
) -> PlatformPolicy:
    """A platform policy; defaults give exact run times (factor 1) and no release time."""
    return PlatformPolicy(
        slot_seconds=slot,
        horizon_seconds=horizon,
        max_duration_factor=factor,
        release_seconds=release,
        max_offers=max_offers,
        node_selector=dict(node_selector or {}),
        limits=RequestLimits(
            max_cores=max_cores,
            max_memory_gib=max_memory_gib,
            max_gpus=max_gpus,
            max_storage_gib=max_storage_gib,
            max_duration_seconds=max_duration,
        ),
    )


def node(
    name: str = "n1",
    *,
    cores: float = 64,
    memory_gib: int = 256,
    storage_gib: int = 100,
    gpus: int = 0,
    gpu_resource: str = GPU,
    product: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> NodeCapacity:
    """A node with this much free; ``product`` sets the GPU product label."""
    all_labels = dict(labels or {})
    if product is not None:
        all_labels[PRODUCT_LABEL] = product
    return NodeCapacity(
        name=name,
        free=Resources(
            cpu_millis=int(cores * 1000),
            memory_bytes=memory_gib * GIB,
            ephemeral_bytes=storage_gib * GIB,
            gpus={gpu_resource: gpus} if gpus else {},
        ),
        labels=all_labels,
    )


def window(start: int, end: int) -> Window:
    return Window(start=start, end=end)


def demand(
    *,
    cores: int = 1,
    max_cores: int | None = None,
    memory_gib: int = 1,
    max_memory_gib: int | None = None,
    hours: float | None = None,
    duration: int | None = None,
    between: tuple[int, int] | None = None,
    windows: Iterable[Window] | None = None,
    gpus: int = 0,
    gpu_resource: str = GPU,
    product: str | None = None,
    storage_gib: int = 0,
    preparation: int = 0,
    selector: Mapping[str, str] | None = None,
    max_offers: int = 4,
) -> Demand:
    """A demand; the max values default to the min (digest §9 item 15)."""
    if duration is None:
        duration = int((hours if hours is not None else 1) * H)
    if windows is None:
        lo, hi = between if between is not None else (at("10:00"), at("12:00"))
        windows = [window(lo, hi)]
    return Demand(
        cores_min=cores,
        cores_max=max_cores if max_cores is not None else cores,
        memory_min_gib=memory_gib,
        memory_max_gib=max_memory_gib if max_memory_gib is not None else memory_gib,
        duration=duration,
        windows=tuple(windows),
        gpu=GpuDemand(count=gpus, resource_name=gpu_resource, product=product) if gpus else None,
        storage_gib=storage_gib,
        preparation=preparation,
        node_selector=dict(selector or {}),
        max_offers=max_offers,
    )


def reservation(
    node_name: str = "n1",
    start: int = 0,
    end: int = 0,
    *,
    cores: float = 1,
    memory_gib: int = 0,
    storage_gib: int = 0,
    gpus: int = 0,
    gpu_resource: str = GPU,
    phase: Phase = Phase.ACCEPTED,
    key: str | None = None,
    group: str = "",
    owner: str = "",
    account: str = "",
) -> Reservation:
    """Capacity held on ``node_name`` over ``[start, end)`` (ACCEPTED unless told), charged to
    ``owner`` and the sharing group ``account``."""
    return Reservation(
        key=key or f"ns/r{next(_keys)}",
        node=node_name,
        start=start,
        end=end,
        resources=Resources(
            cpu_millis=int(cores * 1000),
            memory_bytes=memory_gib * GIB,
            ephemeral_bytes=storage_gib * GIB,
            gpus={gpu_resource: gpus} if gpus else {},
        ),
        phase=phase,
        group=group,
        owner=owner,
        account=account,
    )


def offered(offer: Offer, *, group: str, index: int) -> Reservation:
    """The OFFERED reservation the operator records for ``offer`` (one per offer of a set)."""
    return Reservation(
        key=f"ns/{group}-{index}",
        node=offer.node,
        start=offer.prepare_start,
        end=offer.release_end,
        resources=offer.reservation_resources(),
        phase=Phase.OFFERED,
        group=group,
    )


def in_phase(r: Reservation, phase: Phase) -> Reservation:
    return dataclasses.replace(r, phase=phase)


def starts(offers: Iterable[Offer]) -> list[str]:
    """The offers' start times as clock strings, in order."""
    return [clock(o.start) for o in offers]


def tiled(nodes: int, now: int, gap: int = 40 * MIN) -> tuple[list[NodeCapacity], list[Reservation]]:
    """A platform where a request of 2 cores or more for 2 hours fits nowhere: ``nodes`` nodes of
    8 to 15 cores, each held but for 1 core from 1 h before ``now`` to 31 h after, in pieces of
    50 to 140 minutes with ``gap`` between them."""
    out_nodes, held = [], []
    for i in range(nodes):
        cores = 8 + i % 8
        out_nodes.append(node(f"n{i:03d}", cores=cores, memory_gib=64 + i))
        t = now - H
        for k in itertools.count():
            if t >= now + 31 * H:
                break
            length = (50 + (i * 7 + k * 13) % 91) * MIN
            held.append(reservation(f"n{i:03d}", t, t + length, cores=cores - 1))
            t += length + gap
    return out_nodes, held
