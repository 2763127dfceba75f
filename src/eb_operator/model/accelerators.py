"""GPU (and other accelerator) requests, and which platform flavour serves them.

Both encodings on a simple compute resource (the ``gpus`` extension and the ``extras`` list of
digest §9 item 26, see :mod:`eb_operator.model.resources`) reduce to :class:`GpuRequest`, so the
judge and the engine's demand builder agree on what was asked for and which
:class:`~eb_operator.model.platform.GpuFlavour` provides it.

Flavour choice, in the platform's order:

1. a ``type`` URI must be one of the flavour's ``typeUris``;
2. a ``name`` that is some flavour's name picks that flavour; with a ``type`` as well, an
   unmatched name is just the client's label; without one it matches nothing;
3. a per-device memory minimum needs a flavour whose ``memoryGib`` is known and large enough;
4. with neither ``name`` nor ``type`` any flavour will do; the first that passes 3 wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eb_operator.model.errors import Path
from eb_operator.model.platform import GpuFlavour
from eb_operator.model.resources import SimpleComputeResource


@dataclass(frozen=True, slots=True)
class GpuRequest:
    """One accelerator requirement, in the ivoa-std path space of the request."""

    path: Path  # the `gpus` block or the `extras` item
    count_min: int
    count_max: int
    name: str | None = None
    type: str | None = None
    memory_min_gib: int | None = None
    count_path: Path = ()  # the field the counts came from, for messages
    memory_path: Path = ()  # the field the memory minimum came from

    @property
    def wanted(self) -> bool:
        return self.count_max > 0 or self.count_min > 0


@dataclass(frozen=True, slots=True)
class FlavourMatch:
    flavour: GpuFlavour | None
    problem: str | None = None  # "type", "name" or "memory" when there is no flavour
    field: str = ""  # the request field to blame


def gpu_requests(compute: SimpleComputeResource, base: Path) -> list[GpuRequest]:
    """Every accelerator requirement of ``compute`` (which sits at ``base`` in the request)."""
    found: list[GpuRequest] = []
    gpus = compute.gpus
    if gpus is not None:
        requested = gpus.requested
        low = requested.min if requested and requested.min is not None else None
        high = requested.max if requested and requested.max is not None else None
        low = 1 if low is None else low
        high = low if high is None else high
        memory = gpus.memory.requested.min if gpus.memory and gpus.memory.requested else None
        path = (*base, "gpus")
        found.append(
            GpuRequest(
                path,
                low,
                high,
                gpus.name,
                gpus.type,
                memory,
                (*path, "requested", "min"),
                (*path, "memory", "requested", "min"),
            )
        )
    for i, extra in enumerate(compute.extras or []):
        path = (*base, "extras", i)
        if extra.count is not None:
            low = high = extra.count
            count_path: Path = (*path, "count")
        else:
            low = 1 if extra.min is None else extra.min
            high = low if extra.max is None else extra.max
            count_path = (*path, "min")
        memory = extra.spec.memory.min if extra.spec and extra.spec.memory else None
        found.append(
            GpuRequest(
                path, low, high, extra.name, extra.type, memory, count_path, (*path, "spec", "memory", "min")
            )
        )
    return found


def match_flavour(request: GpuRequest, flavours: Sequence[GpuFlavour]) -> FlavourMatch:
    """The flavour serving ``request`` (see module doc), or why there is none."""
    candidates = list(flavours)
    if request.type is not None:
        candidates = [f for f in candidates if request.type in f.type_uris]
        if not candidates:
            return FlavourMatch(None, "type", "type")
    if request.name is not None:
        named = [f for f in candidates if f.name == request.name]
        if named:
            candidates = named
        elif request.type is None:
            return FlavourMatch(None, "name", "name")
    if request.memory_min_gib is not None:
        candidates = [
            f for f in candidates if f.memory_gib is not None and f.memory_gib >= request.memory_min_gib
        ]
        if not candidates:
            return FlavourMatch(None, "memory", "memory")
    if not candidates:
        return FlavourMatch(None, "name" if request.name is not None else "type", "type")
    return FlavourMatch(candidates[0])
