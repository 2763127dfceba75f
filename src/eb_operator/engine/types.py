"""The engine's inputs and outputs: an immutable snapshot in, offers out.

Times are integer seconds since the Unix epoch (UTC); cpu is millicores, memory and storage
are bytes, GPUs are counts per extended-resource name. Integers keep the calendar arithmetic
exact and fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from eb_operator.model.common import ExecutionSessionPhase

GIB = 1024**3


# The engine speaks the wire model's phase names: one enum for the whole broker.
Phase = ExecutionSessionPhase


# Every non-final phase from OFFERED on holds capacity (digest §9 item 34).
HOLDING_PHASES = frozenset(
    {
        Phase.OFFERED,
        Phase.ACCEPTED,
        Phase.WAITING,
        Phase.PREPARING,
        Phase.READY,
        Phase.RUNNING,
        Phase.RELEASING,
    }
)


@dataclass(frozen=True, slots=True)
class Resources:
    cpu_millis: int = 0
    memory_bytes: int = 0
    ephemeral_bytes: int = 0
    gpus: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """What the broker may hand out on one node: allocatable minus Pods it does not own."""

    name: str
    free: Resources
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Capacity held by one Execution on one node over [start, end)."""

    key: str  # namespace/name of the Execution
    node: str
    start: int
    end: int
    resources: Resources
    phase: Phase = Phase.OFFERED
    group: str = ""  # the OfferSet it came from, so siblings can be told apart
    owner: str = ""  # who holds it (spec.owner); "" for objects nobody owns (an admin's kubectl)
    account: str = ""  # the sharing group it is charged to (Slurm's "account"); see model.sharing

    @property
    def span(self) -> int:
        return self.end - self.start

    @property
    def gpu_count(self) -> int:
        return sum(self.resources.gpus.values())


@dataclass(frozen=True, slots=True)
class GpuDemand:
    count: int
    resource_name: str
    product: str | None = None
    product_label: str = "nvidia.com/gpu.product"


@dataclass(frozen=True, slots=True)
class Window:
    """A requested start window [start, end]: an offer's start t satisfies start <= t <= end."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Demand:
    """A request reduced to what the engine needs, in the engine's units.

    Built from the wire model by ``eb_operator.engine.demand.demand_from_request``; policy
    defaults (no schedule, no max) are already applied.
    """

    cores_min: int
    cores_max: int
    memory_min_gib: int
    memory_max_gib: int
    duration: int  # minimum run time, seconds
    windows: tuple[Window, ...]
    gpu: GpuDemand | None = None
    storage_gib: int = 0  # scratch space on the node (ephemeral-storage)
    preparation: int = 0  # lead time before start (Pod start, data staging), seconds
    release: int | None = None  # tear-down after the run (results staged out), seconds; None: the policy's
    node_selector: Mapping[str, str] = field(default_factory=dict)
    max_offers: int = 4


@dataclass(frozen=True, slots=True)
class Offer:
    node: str
    prepare_start: int  # = start - preparation; the reservation begins here
    start: int
    duration: int  # run time granted (>= Demand.duration)
    release_end: int  # start + duration + release time; the reservation ends here
    cores: int
    memory_gib: int
    gpus: int = 0
    gpu_resource: str | None = None
    storage_gib: int = 0

    def reservation_resources(self) -> Resources:
        return Resources(
            cpu_millis=self.cores * 1000,
            memory_bytes=self.memory_gib * GIB,
            ephemeral_bytes=self.storage_gib * GIB,
            gpus={self.gpu_resource: self.gpus} if self.gpu_resource and self.gpus else {},
        )
