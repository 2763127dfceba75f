"""Build an offer (an ``ExecutionSessionResponse`` in OFFERED) from a request and what was granted.

The engine decides numbers (start, run time, cores, GiB, GPUs); this module writes them into the
wire shape the standard wants (tex §3.2.1): the client's ``requested`` blocks are kept and
``offered`` blocks added beside them, ``schedule.requested`` is echoed, and the offered timeline is
one slot (``preparing`` / ``executing`` / ``releasing``, exact starts written ``…/PT0S``).
It takes plain values so that the model does not depend on the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eb_operator.model.common import ExecutionSessionPhase
from eb_operator.model.offerset import (
    ExecutionSessionResponse,
    OfferSetRequest,
    ScheduleOfferItem,
    SessionSchedule,
    phase_options,
)
from eb_operator.model.platform import GpuFlavour
from eb_operator.model.resources import (
    Cores,
    ExecutionResourceList,
    GpuRequirement,
    Memory,
    MinMax,
    MinMaxGiB,
    SimpleComputeResource,
    SimpleStorageResource,
    StorageSize,
)
from eb_operator.model.times import IsoDuration, IsoInterval


@dataclass(frozen=True, slots=True)
class Grant:
    """What one offer gives, in the engine's units (epoch seconds, cores, GiB)."""

    prepare_start: int
    start: int
    duration: int
    release_end: int
    cores: int
    memory_gib: int
    gpus: int = 0
    gpu_flavour: GpuFlavour | None = None


def _offered_compute(compute: SimpleComputeResource, grant: Grant) -> SimpleComputeResource:
    cores = compute.cores.model_copy() if compute.cores else Cores()
    memory = compute.memory.model_copy() if compute.memory else Memory()
    cores.offered = MinMax(min=grant.cores, max=grant.cores)
    memory.offered = MinMaxGiB(min=grant.memory_gib, max=grant.memory_gib)
    update: dict[str, object] = {"cores": cores, "memory": memory}
    if grant.gpus > 0:
        flavour = grant.gpu_flavour
        if compute.extras:
            extras = [e.model_copy() for e in compute.extras]
            extras[0].offered = MinMax(min=grant.gpus, max=grant.gpus)
            update["extras"] = extras
        else:
            gpus = compute.gpus.model_copy() if compute.gpus else GpuRequirement()
            gpus.offered = MinMax(min=grant.gpus, max=grant.gpus)
            if flavour is not None:
                gpus.name = flavour.name
                gpus.product = flavour.product
            update["gpus"] = gpus
    return compute.model_copy(update=update)


def _offered_storage(storage: SimpleStorageResource) -> SimpleStorageResource:
    size = storage.size.model_copy() if storage.size else StorageSize()
    gib = storage.offered_gib
    size.offered = MinMaxGiB(min=gib, max=gib)
    return storage.model_copy(update={"size": size})


def make_offer(
    request: OfferSetRequest,
    grant: Grant,
    *,
    uuid: str,
    href: str,
    expires: datetime | None,
    created: datetime | None = None,
    name: str | None = None,
    phase: ExecutionSessionPhase = ExecutionSessionPhase.OFFERED,
    executable_uuid: str | None = None,
) -> ExecutionSessionResponse:
    """The session for one offer of ``request``: requested values kept, offered values added,
    the single offered slot, and the options of ``phase`` (digest §4.4)."""
    resources = request.resources
    if resources is not None:
        compute = [
            _offered_compute(c, grant) if isinstance(c, SimpleComputeResource) and i == 0 else c
            for i, c in enumerate(resources.compute or [])
        ]
        storage = [
            _offered_storage(s) if isinstance(s, SimpleStorageResource) else s
            for s in resources.storage or []
        ]
        resources = ExecutionResourceList(
            compute=compute if resources.compute is not None else None,
            storage=storage if resources.storage is not None else None,
            data=resources.data,
        )
    executable = request.executable
    if executable is not None and executable_uuid is not None:
        executable = executable.model_copy(update={"uuid": executable_uuid})
    schedule = SessionSchedule(
        requested=request.requested_schedule,
        preparing=ScheduleOfferItem(
            start=IsoInterval.exact(grant.prepare_start),
            duration=IsoDuration(grant.start - grant.prepare_start),
        ),
        executing=ScheduleOfferItem(
            start=IsoInterval.exact(grant.start), duration=IsoDuration(grant.duration)
        ),
        releasing=ScheduleOfferItem(
            start=IsoInterval.exact(grant.start + grant.duration),
            duration=IsoDuration(grant.release_end - grant.start - grant.duration),
        ),
    )
    return ExecutionSessionResponse(
        uuid=uuid,
        href=href,
        name=name,
        created=created,
        phase=phase,
        expires=expires,
        executable=executable,
        resources=resources,
        schedule=schedule,
        options=phase_options(phase),
    )
