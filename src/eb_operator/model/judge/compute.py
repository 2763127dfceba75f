"""Compute: one simple compute resource, its cores and memory within the limits, GPUs the platform
has, and volumes that mount resources the request names.
"""

from __future__ import annotations

from eb_operator.model.accelerators import GpuRequest, gpu_requests, match_flavour
from eb_operator.model.common import MessageLevel, MessageType
from eb_operator.model.errors import Path
from eb_operator.model.judge.findings import (
    Findings,
)
from eb_operator.model.resources import (
    Cores,
    Memory,
    SimpleComputeResource,
)
from eb_operator.model.types import Group


class ComputeRules(Findings):
    def compute(self) -> None:
        resources = self.request.compute
        if len(resources) > 1:
            self.no(
                MessageType.NOT_SUPPORTED,
                "{path}: the broker runs one compute resource per request; {count} were given",
                ("resources", "compute", 1),
                count=len(resources),
            )
        for i, resource in enumerate(resources):
            path: Path = ("resources", "compute", i)
            if not isinstance(resource, SimpleComputeResource):
                self.unknown_type(resource.type, Group.COMPUTE, (*path, "type"))
                continue
            self.costs_and_metrics(resource.costs, resource.metrics, path)
            replicas = resource.unknown_fields.get("replicas")
            if replicas is not None and replicas != 1:
                self.no(
                    MessageType.NOT_SUPPORTED,
                    "{path}: the broker runs a single replica; {replicas} were asked for",
                    (*path, "replicas"),
                    replicas=replicas,
                )
            self.unknown_requirements(resource, path, skip=("replicas",))  # judged just above
            limits = self.policy.limits
            self.quantity(resource.cores, (*path, "cores"), "cores", limits.max_cores, minimum=1)
            self.quantity(
                resource.memory, (*path, "memory"), "GiB of memory", limits.max_memory_gib, minimum=1
            )
            self.gpus(resource, path)
            self.volumes(resource, path)

    def quantity(
        self, block: Cores | Memory | None, path: Path, unit: str, limit: int, *, minimum: int
    ) -> None:
        requested = block.requested if block else None
        if requested is None:
            return
        low, high = requested.min, requested.max
        base = (*path, "requested")
        if low is not None and low < minimum:
            self.no(
                MessageType.BAD_VALUE,
                "{path}: at least {minimum} {unit} are needed",
                (*base, "min"),
                minimum=minimum,
                unit=unit,
            )
            return
        if high is not None and high < max(low or minimum, minimum):
            self.no(
                MessageType.BAD_VALUE,
                "{path}: the maximum {max} is below the minimum {min}",
                (*base, "max"),
                max=high,
                min=low if low is not None else minimum,
            )
            return
        if low is not None and low > limit:
            self.no(
                MessageType.RESOURCE_LIMIT,
                "{path}: {value} {unit} requested, more than the limit of {limit}",
                (*base, "min"),
                value=low,
                unit=unit,
                limit=limit,
            )
        elif high is not None and high > limit:
            self.say(
                MessageLevel.WARN,
                MessageType.RESOURCE_CAPPED,
                "{path}: at most {limit} {unit} will be offered, not {value}",
                (*base, "max"),
                value=high,
                unit=unit,
                limit=limit,
            )

    def gpus(self, resource: SimpleComputeResource, path: Path) -> None:
        requests = [r for r in gpu_requests(resource, path) if r.wanted or r.count_min < 0 or r.count_max < 0]
        for extra_index, request in enumerate(requests):
            if extra_index > 0:
                self.no(
                    MessageType.NOT_SUPPORTED,
                    "{path}: the broker serves one kind of accelerator per request",
                    request.path,
                )
                continue
            self.gpu(request)

    def gpu(self, request: GpuRequest) -> None:
        limit = self.policy.limits.max_gpus
        if request.count_min < 0 or request.count_max < request.count_min:
            self.no(
                MessageType.BAD_VALUE,
                "{path}: {min}..{max} is not a number of devices",
                request.count_path,
                min=request.count_min,
                max=request.count_max,
            )
            return
        if not self.policy.gpu_flavours or limit == 0:
            self.no(MessageType.NOT_SUPPORTED, "{path}: this platform offers no GPUs", request.path)
            return
        if request.count_min > limit:
            self.no(
                MessageType.RESOURCE_LIMIT,
                "{path}: {value} GPUs requested, more than the limit of {limit}",
                request.count_path,
                value=request.count_min,
                limit=limit,
            )
        elif request.count_max > limit:
            self.say(
                MessageLevel.WARN,
                MessageType.RESOURCE_CAPPED,
                "{path}: at most {limit} GPUs will be offered, not {value}",
                request.count_path,
                value=request.count_max,
                limit=limit,
            )
        match = match_flavour(request, self.policy.gpu_flavours)
        if match.problem == "type":
            self.no(
                MessageType.UNKNOWN_EXTRA,
                "{path}: this platform has no accelerator of type {uri}",
                (*request.path, "type"),
                uri=request.type,
            )
        elif match.problem == "name":
            self.no(
                MessageType.UNKNOWN_EXTRA,
                "{path}: this platform has no GPU flavour named {name}",
                (*request.path, "name"),
                name=request.name,
            )
        elif match.problem == "memory":
            self.no(
                MessageType.RESOURCE_LIMIT,
                "{path}: no GPU here has {value} GiB of memory",
                request.memory_path,
                value=request.memory_min_gib,
            )

    def volumes(self, resource: SimpleComputeResource, path: Path) -> None:
        seen: dict[str, int] = {}
        for j, volume in enumerate(resource.volumes or []):
            where = (*path, "volumes", j)
            if volume.type is not None:
                self.unknown_type(volume.type, Group.VOLUME, (*where, "type"))
                continue
            if not volume.path:
                self.no(MessageType.MISSING_VALUE, "{path}: the mount point is missing", (*where, "path"))
            elif not volume.path.startswith("/"):
                self.no(
                    MessageType.BAD_VALUE,
                    "{path}: the mount point {mount} is not absolute",
                    (*where, "path"),
                    mount=volume.path,
                )
            elif volume.path in seen:
                self.no(
                    MessageType.BAD_VALUE,
                    "{path}: {mount} is already the mount point of volume {other}",
                    (*where, "path"),
                    mount=volume.path,
                    other=seen[volume.path],
                )
            else:
                seen[volume.path] = j
            if not volume.resource:
                self.no(
                    MessageType.MISSING_VALUE,
                    "{path}: the volume names no resource to mount",
                    (*where, "resource"),
                )
                continue
            storage, data = self.resolve(volume.resource, with_data=True)
            if not storage and not data:
                self.no(
                    MessageType.UNRESOLVED_REFERENCE,
                    "{path}: no storage or data resource is named {ref}",
                    (*where, "resource"),
                    ref=volume.resource,
                )
            elif len(storage) + len(data) > 1:
                self.no(
                    MessageType.AMBIGUOUS_REFERENCE,
                    "{path}: {ref} names more than one resource",
                    (*where, "resource"),
                    ref=volume.resource,
                )
