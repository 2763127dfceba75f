"""Whether the platform can serve a request at all, before any capacity is looked at.

:func:`judge_request` returns the reasons for ``result: NO`` (digest §2.3 step 2, §6.1, §9): unknown
or obsolete type URIs, requirements it does not understand, policy limits, unreachable data, refused
interval forms. Each is an ERROR :class:`MessageItem` with a stable ``urn:ivoa:eb:`` type, a template
and ``values.path`` naming the field as the client wrote it (digest §6.2). Caps (a ``max`` above a
limit, served up to the limit) are WARN: the request stays acceptable and the warning belongs on
the YES answer. So: **no ERROR in the list means acceptable** (:func:`has_errors`); an empty list
means acceptable without remarks.

Time and capacity (is a window in the past, is anything free) are the engine's to judge.

Unknown fields: the schemas allow additional properties, but a requirement the broker silently
ignores is a broken promise (digest §9 item 26). So any field this model does not define, on the
request, its executable or its resources, is answered NO unless it is plainly informational
(:data:`INFORMATIONAL_FIELDS`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import BaseModel

from eb_operator.model.accelerators import GpuRequest, gpu_requests, match_flavour
from eb_operator.model.common import CostItem, MessageItem, MessageLevel, MessageType, MetricItem
from eb_operator.model.errors import Path
from eb_operator.model.executables import (
    DockerContainer,
    JupyterNotebook,
    SingularityContainer,
    UnknownExecutable,
)
from eb_operator.model.offerset import OfferSetRequest
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.resources import (
    Cores,
    IvoaDataResource,
    Memory,
    RucioDataResource,
    S3DataResource,
    SimpleComputeResource,
    SimpleDataResource,
    SimpleStorageResource,
    SkaoDataResource,
    StorageLifecycle,
)
from eb_operator.model.types import Group, Kind, info, kind_of, prose_type

INFORMATIONAL_FIELDS = frozenset(
    {
        "description",
        "comment",
        "comments",
        "note",
        "notes",
        "title",
        "label",
        "labels",
        "annotations",
        "tags",
        "href",
        "url",
        "meta",
        "created",
        "modified",
        "messages",
        "options",
        "uuid",
        "name",
        # C26 LifecycleComponent state on a component is server output: ignored on input (§8.1 item 15).
        "phase",
        "schedule",
        "connectors",
        "expires",
    }
)
"""Unknown fields that never express a requirement, so they are ignored rather than refused."""

_WALK_SKIP = frozenset({"messages", "costs", "metrics", "options"})
_DOCKER_PROTOCOLS = frozenset({"TCP", "UDP", "HTTP", "HTTPS"})
_COST_KINDS = frozenset({Kind.ABSTRACT_COST, Kind.SIMPLE_COST})
_METRIC_KINDS = frozenset({Kind.ABSTRACT_METRIC, Kind.SIMPLE_METRIC})
_GROUP_WORDS = {
    Group.EXECUTABLE: "executable",
    Group.COMPUTE: "compute resource",
    Group.STORAGE: "storage resource",
    Group.DATA: "data resource",
    Group.VOLUME: "volume",
}


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _endpoint_key(url: str) -> str:
    # Endpoints compare without case in scheme and host, and without a trailing slash.
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def unknown_fields(model: BaseModel, path: Path) -> Iterator[Path]:
    """Paths of fields under ``model`` that no model defines and that are not informational."""
    for key in model.model_extra or {}:
        if key not in INFORMATIONAL_FIELDS:
            yield (*path, key)
    for name, spec in type(model).model_fields.items():
        if name in _WALK_SKIP:
            continue
        value = getattr(model, name)
        key = spec.alias or name
        if isinstance(value, BaseModel):
            yield from unknown_fields(value, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from unknown_fields(item, (*path, key, i))


@dataclass
class _Judge:
    request: OfferSetRequest
    policy: PlatformPolicy
    messages: list[MessageItem] = field(default_factory=list)

    def say(
        self, level: MessageLevel, type_: MessageType, template: str, path: Path, **values: object
    ) -> None:
        where = self.request.client_path(*path)
        self.messages.append(MessageItem.make(type_, level, template, {"path": where, **values}))

    def no(self, type_: MessageType, template: str, path: Path, **values: object) -> None:
        self.say(MessageLevel.ERROR, type_, template, path, **values)

    # --- types -----------------------------------------------------------------------------

    def unknown_type(self, uri: str | None, group: Group, path: Path) -> None:
        what = _GROUP_WORDS.get(group, str(group))
        prose = prose_type(uri)
        if prose is not None:
            if prose.successor is not None:
                self.no(
                    MessageType.OBSOLETE_TYPE,
                    "{path}: {uri} is an obsolete identifier from the prose of the standard; use {successor}",
                    path,
                    uri=uri,
                    successor=info(prose.successor).canonical,
                )
            else:
                self.no(
                    MessageType.OBSOLETE_TYPE,
                    "{path}: {uri} is an identifier from the prose of the standard that no schema defines",
                    path,
                    uri=uri,
                )
            return
        known = kind_of(uri)
        if known is not None:
            self.no(
                MessageType.UNKNOWN_TYPE,
                "{path}: {uri} is not a {what} type",
                path,
                uri=uri,
                what=what,
            )
            return
        self.no(MessageType.UNKNOWN_TYPE, "{path}: unknown {what} type {uri}", path, uri=uri, what=what)

    def unknown_requirements(self, model: BaseModel, path: Path, skip: Sequence[str] = ()) -> None:
        for where in unknown_fields(model, path):
            if len(where) == len(path) + 1 and where[-1] in skip:
                continue
            self.no(
                MessageType.UNKNOWN_REQUIREMENT,
                "{path}: the broker does not understand {field}, so it cannot promise to meet it",
                where,
                field=where[-1],
            )

    def costs_and_metrics(
        self, costs: list[CostItem] | None, metrics: list[MetricItem] | None, path: Path
    ) -> None:
        for i, cost in enumerate(costs or []):
            where = (*path, "costs", i)
            if kind_of(cost.kind, Group.COST) not in _COST_KINDS:
                self.no(
                    MessageType.UNKNOWN_TYPE,
                    "{path}: unknown cost kind {uri}",
                    (*where, "kind"),
                    uri=cost.kind,
                )
            elif cost.max is not None and cost.max < 0:
                # The broker charges nothing, so any maximum of zero or more is met.
                self.no(
                    MessageType.BAD_VALUE, "{path}: a maximum cost below zero cannot be met", (*where, "max")
                )
        for i, metric in enumerate(metrics or []):
            where = (*path, "metrics", i)
            if kind_of(metric.kind, Group.METRIC) not in _METRIC_KINDS:
                self.no(
                    MessageType.UNKNOWN_TYPE,
                    "{path}: unknown metric kind {uri}",
                    (*where, "kind"),
                    uri=metric.kind,
                )
            elif metric.min is not None:
                self.no(
                    MessageType.NOT_SUPPORTED,
                    "{path}: the broker cannot promise a minimum for metric {metric}",
                    (*where, "min"),
                    metric=metric.type or metric.kind,
                )

    # --- the executable --------------------------------------------------------------------

    def executable(self) -> None:
        exe = self.request.executable
        path: Path = ("executable",)
        if exe is None:
            self.no(MessageType.EXECUTABLE_REQUIRED, "{path}: the request names nothing to run", path)
            return
        if isinstance(exe, UnknownExecutable):
            self.unknown_type(exe.type, Group.EXECUTABLE, (*path, "type"))
            return
        self.unknown_requirements(exe, path)
        self.costs_and_metrics(exe.costs, exe.metrics, path)
        if isinstance(exe, DockerContainer):
            self.docker(exe, path)
        elif isinstance(exe, SingularityContainer):
            if self.policy.images.apptainer is None:
                self.no(
                    MessageType.NOT_SUPPORTED,
                    "{path}: this platform does not run Singularity containers",
                    (*path, "type"),
                )
            if not exe.location:
                self.no(
                    MessageType.MISSING_VALUE,
                    "{path}: the container image location is missing",
                    (*path, "location"),
                )
        elif isinstance(exe, JupyterNotebook) and exe.location is not None and not _is_http(exe.location):
            self.no(
                MessageType.UNREACHABLE,
                "{path}: the broker can fetch notebooks over HTTP(S) only, not {location}",
                (*path, "location"),
                location=exe.location,
            )

    def docker(self, exe: DockerContainer, path: Path) -> None:
        if exe.privileged:
            self.no(
                MessageType.NOT_SUPPORTED,
                "{path}: privileged containers are not supported",
                (*path, "privileged"),
            )
        if exe.image is None or not exe.image.locations:
            self.no(
                MessageType.MISSING_VALUE,
                "{path}: the container image is missing",
                (*path, "image", "locations"),
            )
        elif exe.image.platform is not None and exe.image.platform.os not in (None, "linux"):
            self.no(
                MessageType.NOT_SUPPORTED,
                "{path}: this platform runs linux containers, not {os}",
                (*path, "image", "platform", "os"),
                os=exe.image.platform.os,
            )
        ports = exe.network.ports if exe.network and exe.network.ports else []
        for i, port in enumerate(ports):
            where = (*path, "network", "ports", i)
            number = port.internal.port if port.internal else None
            if number is None:
                self.no(
                    MessageType.MISSING_VALUE,
                    "{path}: the container port is missing",
                    (*where, "internal", "port"),
                )
            elif not 1 <= number <= 65535:
                self.no(
                    MessageType.BAD_VALUE,
                    "{path}: {port} is not a port number",
                    (*where, "internal", "port"),
                    port=number,
                )
            if port.protocol is not None and port.protocol.upper() not in _DOCKER_PROTOCOLS:
                self.no(
                    MessageType.NOT_SUPPORTED,
                    "{path}: protocol {protocol} is not one of TCP, UDP, HTTP, HTTPS",
                    (*where, "protocol"),
                    protocol=port.protocol,
                )

    # --- compute ---------------------------------------------------------------------------

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

    def resolve(self, ref: str, *, with_data: bool) -> tuple[list[int], list[int]]:
        """Indices of the storage and data resources ``ref`` names: by name first, then by uuid
        (digest §9 item 28)."""
        storage = self.request.storage
        data = self.request.data if with_data else []
        for attr in ("name", "uuid"):
            s = [i for i, r in enumerate(storage) if getattr(r, attr) == ref]
            d = [i for i, r in enumerate(data) if getattr(r, attr) == ref]
            if s or d:
                return s, d
        return [], []

    # --- storage and data ------------------------------------------------------------------

    def storage(self) -> None:
        limit = self.policy.limits.max_storage_gib
        total = 0
        for i, resource in enumerate(self.request.storage):
            path: Path = ("resources", "storage", i)
            if not isinstance(resource, SimpleStorageResource):
                self.unknown_type(resource.type, Group.STORAGE, (*path, "type"))
                continue
            self.unknown_requirements(resource, path)
            self.costs_and_metrics(resource.costs, resource.metrics, path)
            self.persistence(resource, path)
            requested = resource.size.requested if resource.size else None
            if requested is None:
                continue
            base = (*path, "size", "requested")
            low, high = requested.min, requested.max
            if low is not None and low < 0:
                self.no(MessageType.BAD_VALUE, "{path}: a size cannot be negative", (*base, "min"))
            elif high is not None and high < (low or 0):
                self.no(
                    MessageType.BAD_VALUE,
                    "{path}: the maximum {max} is below the minimum {min}",
                    (*base, "max"),
                    max=high,
                    min=low or 0,
                )
            elif low is not None and low > limit:
                self.no(
                    MessageType.RESOURCE_LIMIT,
                    "{path}: {value} GiB of storage requested, more than the limit of {limit}",
                    (*base, "min"),
                    value=low,
                    limit=limit,
                )
            else:
                total += low or 0
                if high is not None and high > limit:
                    self.say(
                        MessageLevel.WARN,
                        MessageType.RESOURCE_CAPPED,
                        "{path}: at most {limit} GiB of storage will be offered, not {value}",
                        (*base, "max"),
                        value=high,
                        limit=limit,
                    )
        if total > limit:
            self.no(
                MessageType.RESOURCE_LIMIT,
                "{path}: {value} GiB of storage requested in all, more than the limit of {limit}",
                ("resources", "storage"),
                value=total,
                limit=limit,
            )

    def persistence(self, resource: SimpleStorageResource, path: Path) -> None:
        """Persistent storage (a ``lifetime``) needs a StorageClass, and a lifetime within the limit."""
        if resource.lifecycle is StorageLifecycle.UNMANAGED:
            self.no(
                MessageType.NOT_SUPPORTED,
                "{path}: the broker manages the storage it offers; unmanaged storage is not supported",
                (*path, "lifecycle"),
            )
        if resource.lifetime is None:
            return
        where = (*path, "lifetime")
        if self.policy.storage_class_name is None:
            self.no(
                MessageType.NOT_SUPPORTED,
                "{path}: this platform offers no persistent storage (no storage class is configured)",
                where,
            )
            return
        requested = resource.lifetime.requested
        low = requested.min if requested else None
        high = requested.max if requested else None
        limit = self.policy.limits.max_storage_lifetime_seconds
        if low is not None and high is not None and high.seconds < low.seconds:
            self.no(
                MessageType.BAD_VALUE,
                "{path}: the maximum {max} is below the minimum {min}",
                (*where, "requested", "max"),
                max=str(high),
                min=str(low),
            )
        elif low is not None and low.seconds > limit:
            self.no(
                MessageType.RESOURCE_LIMIT,
                "{path}: storage kept for {value} after the session, longer than the limit of {limit}",
                (*where, "requested", "min"),
                value=str(low),
                limit=f"{limit} s",
            )

    def data(self) -> None:
        endpoints = {_endpoint_key(e.endpoint) for e in self.policy.data_endpoints}
        for i, resource in enumerate(self.request.data):
            path: Path = ("resources", "data", i)
            kind = kind_of(resource.type, Group.DATA)
            if kind is None:
                self.unknown_type(resource.type, Group.DATA, (*path, "type"))
                continue
            self.unknown_requirements(resource, path)
            self.costs_and_metrics(resource.costs, resource.metrics, path)
            if resource.storage is not None:
                storage, _ = self.resolve(resource.storage, with_data=False)
                if len(storage) != 1:
                    self.no(
                        MessageType.UNRESOLVED_REFERENCE if not storage else MessageType.AMBIGUOUS_REFERENCE,
                        "{path}: {ref} does not name exactly one storage resource",
                        (*path, "storage"),
                        ref=resource.storage,
                    )
            if isinstance(resource, SimpleDataResource):
                self.simple_data(resource, path)
            elif isinstance(resource, S3DataResource):
                self.s3_data(resource, path, endpoints)
            elif isinstance(resource, RucioDataResource):
                self.rucio_data(resource, path)
            elif isinstance(resource, IvoaDataResource):
                if self.ivoa_access_url(resource) is None:
                    self.no(
                        MessageType.NOT_SUPPORTED,
                        "{path}: IVOA data needs an HTTP(S) access_url in obscore or datalink",
                        (*path, "ivoa"),
                    )
            elif isinstance(resource, SkaoDataResource):
                self.no(
                    MessageType.NOT_SUPPORTED,
                    "{path}: SKAO data-lake resources are not supported",
                    (*path, "type"),
                )

    def simple_data(self, resource: SimpleDataResource, path: Path) -> None:
        if not resource.location:
            self.no(MessageType.MISSING_VALUE, "{path}: the data location is missing", (*path, "location"))
        elif not _is_http(resource.location):
            self.no(
                MessageType.UNREACHABLE,
                "{path}: the broker can fetch data over HTTP(S) only, not {location}",
                (*path, "location"),
                location=resource.location,
            )

    def s3_data(self, resource: S3DataResource, path: Path, endpoints: set[str]) -> None:
        if not resource.endpoint:
            self.no(MessageType.MISSING_VALUE, "{path}: the S3 endpoint is missing", (*path, "endpoint"))
        elif _endpoint_key(resource.endpoint) not in endpoints:
            self.no(
                MessageType.UNREACHABLE,
                "{path}: this platform cannot reach the S3 endpoint {endpoint}",
                (*path, "endpoint"),
                endpoint=resource.endpoint,
            )
        if not resource.bucket:
            self.no(MessageType.MISSING_VALUE, "{path}: the S3 bucket is missing", (*path, "bucket"))

    def rucio_data(self, resource: RucioDataResource, path: Path) -> None:
        if self.policy.images.rucio_stager is None:
            self.no(
                MessageType.NOT_SUPPORTED, "{path}: this platform does not stage Rucio data", (*path, "type")
            )
            return
        if not resource.endpoint:
            self.no(MessageType.MISSING_VALUE, "{path}: the Rucio endpoint is missing", (*path, "endpoint"))
        if not resource.object:
            self.no(MessageType.MISSING_VALUE, "{path}: the Rucio object is missing", (*path, "object"))

    @staticmethod
    def ivoa_access_url(resource: IvoaDataResource) -> str | None:
        block = resource.ivoa
        if block is None:
            return None
        for holder in (block.datalink, block.obscore):
            url = holder.access_url if holder is not None else None
            if url and _is_http(url):
                return url
        return None

    # --- schedule and the rest -------------------------------------------------------------

    def schedule(self) -> None:
        requested = self.request.requested_schedule
        if requested is None:
            return
        path: Path = ("schedule", "requested")
        self.unknown_requirements(requested, path)
        if requested.duration is not None:
            seconds = requested.duration.seconds
            limit = self.policy.limits.max_duration_seconds
            if seconds <= 0:
                self.no(
                    MessageType.BAD_VALUE,
                    "{path}: the duration must be longer than zero",
                    (*path, "duration"),
                )
            elif seconds > limit:
                self.no(
                    MessageType.RESOURCE_LIMIT,
                    "{path}: {value} requested, longer than the limit of {limit}",
                    (*path, "duration"),
                    value=str(requested.duration),
                    limit=f"{limit} s",
                )
        for k, window in enumerate(requested.start or []):
            if not window.supported:
                self.no(
                    MessageType.UNSUPPORTED_INTERVAL,
                    "{path}: {interval} is a {form} interval; give start/duration or start/end (tex §3.3)",
                    (*path, "start", k),
                    interval=str(window),
                    form=str(window.form),
                )

    def top_level(self) -> None:
        skip = ("executable", "resources", "schedule")
        self.unknown_requirements_shallow(self.request, skip)
        if self.request.resources is not None:
            for key in self.request.resources.model_extra or {}:
                if key not in INFORMATIONAL_FIELDS:
                    self.no(
                        MessageType.UNKNOWN_REQUIREMENT,
                        "{path}: the broker does not understand {field}, so it cannot promise to meet it",
                        ("resources", key),
                        field=key,
                    )
        self.costs_and_metrics(self.request.costs, self.request.metrics, ())

    def unknown_requirements_shallow(self, model: BaseModel, skip: Sequence[str]) -> None:
        for key in model.model_extra or {}:
            if key not in INFORMATIONAL_FIELDS and key not in skip:
                self.no(
                    MessageType.UNKNOWN_REQUIREMENT,
                    "{path}: the broker does not understand {field}, so it cannot promise to meet it",
                    (key,),
                    field=key,
                )


def judge_request(req: OfferSetRequest, policy: PlatformPolicy) -> list[MessageItem]:
    """Why ``policy``'s platform cannot serve ``req`` (ERROR), and what it will cap (WARN).

    No ERROR means the request may go to the engine; see the module doc. Never raises for a
    request :func:`eb_operator.model.parse_offerset_request` returned.
    """
    judge = _Judge(req, policy)
    judge.top_level()
    judge.executable()
    judge.compute()
    judge.storage()
    judge.data()
    judge.schedule()
    return judge.messages
