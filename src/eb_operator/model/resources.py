"""Resources (digest §3.4): compute (with volumes and GPUs), storage and data.

Quantities keep the ivoa-std shape ``{requested: {min, max}, offered: {min, max}}``; the flat C26
``{min, max}`` is folded into ``requested`` by :mod:`eb_operator.model.dialect` before validation.
Memory and sizes are whole GiB; an optional ``units`` key is converted on input and never emitted.
Types this model does not know parse as ``Unknown*`` models so the judge can answer NO.

GPUs are in neither schema (digest §3.4.1, §9 item 26). Two encodings are accepted on a simple
compute resource and mean the same thing:

* ``extras``: the interim list of digest §9 item 26, ``[{name, type, count | min/max, spec}]``
  (:class:`ComputeExtra`);
* ``gpus``: this broker's compute extension field (:class:`GpuRequirement`), which has the
  requested/offered shape of every other quantity and is where offers report what was granted.

Both select one of the platform's ``gpuFlavours`` by flavour name or accelerator type URI
(:mod:`eb_operator.model.accelerators`).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from eb_operator.model.base import WireInt, WireModel, WireStr
from eb_operator.model.common import UNKNOWN_TAG, Component, TypeUri, discriminator_tag, tagged
from eb_operator.model.reuse import named_storage
from eb_operator.model.stageout import StageOut
from eb_operator.model.times import IsoDuration
from eb_operator.model.types import Group, Kind, info, kind_of
from eb_operator.model.units import min_max_gib, unit_name

# --- quantities ------------------------------------------------------------------------------


class MinMax(WireModel):
    """A ``{min, max}`` pair of integers (int64)."""

    min: WireInt | None = None
    max: WireInt | None = None


def _check_units(value: Any) -> Any:
    if not isinstance(value, str) or unit_name(value) is None:
        raise PydanticCustomError(
            "units", "units must be one of ComputeUnitsEnum (kB, kiB, MB, MiB, GB, GiB, ...)"
        )
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class MinMaxGiB(MinMax):
    """A ``{min, max}`` pair in whole GiB. Input may carry ``units`` and fractions (see
    :mod:`eb_operator.model.units`); after validation the values are GiB and ``units`` is gone."""

    units: Annotated[str, BeforeValidator(_check_units)] | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _to_gib(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        units = data.get("units")
        if units is not None and (not isinstance(units, str) or unit_name(units) is None):
            return data  # the field validator reports it, at the right path
        low, high = data.get("min"), data.get("max")
        if (low is not None and not _is_number(low)) or (high is not None and not _is_number(high)):
            return data  # likewise: WireInt reports the wrong JSON type
        converted = dict(data)
        converted.pop("units", None)
        try:
            new_low, new_high = min_max_gib(low, high, units)
        except (OverflowError, ValueError):
            return data
        if low is not None:
            converted["min"] = new_low
        if high is not None:
            converted["max"] = new_high
        return converted


class Cores(WireModel):
    """``SimpleComputeCores``: CPU cores requested by the client and offered by the service."""

    requested: MinMax | None = None
    offered: MinMax | None = None


class Memory(WireModel):
    """``SimpleComputeMemory``: GiB requested and offered."""

    requested: MinMaxGiB | None = None
    offered: MinMaxGiB | None = None


class StorageSize(WireModel):
    """``SimpleStorageSize``: GiB requested and offered."""

    requested: MinMaxGiB | None = None
    offered: MinMaxGiB | None = None


# --- volumes ---------------------------------------------------------------------------------


class VolumeMode(StrEnum):
    READONLY = "READONLY"
    READWRITE = "READWRITE"


_MODE_ALIASES = {
    "readonly": VolumeMode.READONLY,
    "read-only": VolumeMode.READONLY,
    "ro": VolumeMode.READONLY,
    "r": VolumeMode.READONLY,
    "readwrite": VolumeMode.READWRITE,
    "read-write": VolumeMode.READWRITE,
    "rw": VolumeMode.READWRITE,
}


def _coerce_mode(value: Any) -> Any:
    # The prose writes rw / ro / r / readonly (digest §9 item 29).
    if isinstance(value, str) and value.strip().lower() in _MODE_ALIASES:
        return _MODE_ALIASES[value.strip().lower()]
    if isinstance(value, VolumeMode):
        return value
    raise PydanticCustomError("mode", "mode must be READONLY or READWRITE")


class Volume(Component):
    """``SimpleComputeVolume`` (ivoa-std) / ``SimpleVolumeMount`` (C26): mount a storage or data
    resource, named by ``resource`` (its name or uuid), at ``path``. ``type`` stays None for the
    simple kind, since ivoa-std volumes have no discriminator; any other kind is kept for the judge."""

    type: TypeUri | None = None
    path: WireStr | None = None
    mode: Annotated[VolumeMode, BeforeValidator(_coerce_mode)] | None = None
    resource: WireStr | None = None

    @field_validator("type")
    @classmethod
    def _simple_has_no_type(cls, value: str | None) -> str | None:
        return None if kind_of(value, Group.VOLUME) is Kind.SIMPLE_VOLUME else value


# --- GPUs ------------------------------------------------------------------------------------


class GpuRequirement(WireModel):
    """The ``gpus`` compute extension: accelerators for one simple compute resource.

    Request (ivoa-std shape)::

        gpus:
          requested: {min: 1, max: 2}      # number of devices; max defaults to min, min to 1
          name: a100                       # optional: a platform GPU flavour name
          type: https://www.purl.org/ivoa.net/resource-types/nvidia-ad104   # optional: a type URI
          memory: {requested: {min: 20}}   # optional: GiB per device

    Short forms accepted on input: ``gpus: 2`` and ``gpus: {count: 2}`` (exactly 2), and the
    C26-style flat ``gpus: {min: 1, max: 2, ...}``. With neither ``name`` nor ``type`` any flavour
    will do. An offer adds ``offered: {min: n, max: n}``, the chosen flavour's ``name`` and its
    ``product``. In the C26 dialect the counts are flat: ``gpus: {min: n, max: n, name, type, product}``.
    """

    requested: MinMax | None = None
    offered: MinMax | None = None
    name: WireStr | None = None
    type: WireStr | None = None
    memory: Memory | None = None
    product: WireStr | None = None


class ExtraSpec(WireModel):
    """``spec`` of an extra (digest §3.4.1): only ``memory`` (GiB per device) is understood;
    anything else (``shaders``, ``logicCells``) is a requirement the broker cannot check."""

    memory: MinMaxGiB | None = None


class ComputeExtra(WireModel):
    """One item of the interim ``extras`` list (digest §9 item 26): an accelerator named by a
    flavour ``name`` and/or a ``type`` URI; ``count`` (exactly n) or ``min``/``max`` devices,
    default 1. Offers may add ``offered: {min, max}``."""

    name: WireStr | None = None
    type: WireStr | None = None
    count: WireInt | None = None
    min: WireInt | None = None
    max: WireInt | None = None
    spec: ExtraSpec | None = None
    offered: MinMax | None = None


# --- compute ---------------------------------------------------------------------------------


class AbstractComputeResource(Component):
    type: TypeUri


class SimpleComputeResource(AbstractComputeResource):
    type: TypeUri = info(Kind.SIMPLE_COMPUTE).canonical
    cores: Cores | None = None
    memory: Memory | None = None
    volumes: list[Volume] | None = None
    gpus: GpuRequirement | None = None
    extras: list[ComputeExtra] | None = None


class UnknownComputeResource(AbstractComputeResource):
    """A compute resource of a type this broker does not recognise; every field kept as sent."""


ComputeResource = Annotated[
    Annotated[SimpleComputeResource, tagged(Kind.SIMPLE_COMPUTE)]
    | Annotated[UnknownComputeResource, UNKNOWN_TAG],
    discriminator_tag(Group.COMPUTE),
]


# --- storage ---------------------------------------------------------------------------------

#: The size of a storage resource that names none (scratch space still needs a reservation).
DEFAULT_STORAGE_GIB = 1


class AbstractStorageResource(Component):
    type: TypeUri
    data: list[WireStr] | None = None  # C26: uuids of the data resources it holds


class DurationMinMax(WireModel):
    """A ``{min, max}`` pair of ISO 8601 durations."""

    min: IsoDuration | None = None
    max: IsoDuration | None = None


class StorageLifetime(WireModel):
    """The prose's ``lifetime`` of persistent storage (tex §3.2.2, digest §5.3 X5): how long the
    storage outlives the session, ``{requested: {min, max}, offered: {min, max}}`` as ISO 8601
    durations. The flat prose/C26 form ``lifetime: {min, max}`` is read as ``requested``."""

    requested: DurationMinMax | None = None
    offered: DurationMinMax | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("min" in data or "max" in data) and "requested" not in data:
            rest = {k: v for k, v in data.items() if k not in ("min", "max")}
            return {**rest, "requested": {k: data[k] for k in ("min", "max") if k in data}}
        return data


class StorageLifecycle(StrEnum):
    MANAGED = "managed"
    UNMANAGED = "unmanaged"


def _coerce_lifecycle(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("managed", "unmanaged"):
        return StorageLifecycle(value.strip().lower())
    raise PydanticCustomError("lifecycle", "lifecycle must be managed or unmanaged")


class SimpleStorageResource(AbstractStorageResource):
    """Managed scratch space (digest §9 item 27): ephemeral, living for the session, unless it
    carries the prose's ``lifetime`` (this broker's extension, tex §3.2.2): then it is persistent
    managed storage that the broker allocates when the offer is accepted and deletes ``lifetime``
    after the session ends. ``lifecycle: unmanaged`` (storage someone else owns) is kept for the
    judge, which answers NO to it. ``stageout`` (this broker's extension,
    :mod:`eb_operator.model.stageout`) says where its contents go when the run ends. An ``href`` on
    a request's storage item names storage an earlier session of the same owner made, to mount it
    again (:mod:`eb_operator.model.reuse`)."""

    type: TypeUri = info(Kind.SIMPLE_STORAGE).canonical
    href: WireStr | None = None
    size: StorageSize | None = None
    lifetime: StorageLifetime | None = None
    lifecycle: Annotated[StorageLifecycle, BeforeValidator(_coerce_lifecycle)] | None = None
    stageout: StageOut | None = None

    @property
    def persistent(self) -> bool:
        return self.lifetime is not None

    @property
    def reuses(self) -> str | None:
        """The uuid of an earlier session's storage this item names with its ``href``
        (:mod:`eb_operator.model.reuse`); "" for an href that names no uuid; None for new storage."""
        return named_storage(self.href)

    @property
    def claimed(self) -> bool:
        """Backed by a PersistentVolumeClaim rather than node scratch space: persistent storage,
        storage whose results are staged out (they must outlive the workload), or storage reused."""
        return self.persistent or self.stageout is not None or self.reuses is not None

    @property
    def offered_gib(self) -> int:
        """The size the broker offers and allocates: the requested minimum, else 1 GiB."""
        requested = self.size.requested if self.size else None
        low = requested.min if requested and requested.min is not None else DEFAULT_STORAGE_GIB
        return max(low, 0)


class UnknownStorageResource(AbstractStorageResource):
    """A storage resource of a type this broker does not recognise; every field kept as sent."""


StorageResource = Annotated[
    Annotated[SimpleStorageResource, tagged(Kind.SIMPLE_STORAGE)]
    | Annotated[UnknownStorageResource, UNKNOWN_TAG],
    discriminator_tag(Group.STORAGE),
]


# --- data ------------------------------------------------------------------------------------


class AbstractDataResource(Component):
    type: TypeUri
    storage: WireStr | None = None  # name or uuid of the storage resource that receives the data


class SimpleDataResource(AbstractDataResource):
    """Data downloaded from ``location`` (an HTTP(S) URL)."""

    type: TypeUri = info(Kind.SIMPLE_DATA).canonical
    location: WireStr | None = None


class S3DataResource(AbstractDataResource):
    """ivoa-std ``AmazonS3DataResource`` / C26 ``S3DataResource``: leave ``object`` blank to mount
    the whole bucket."""

    type: TypeUri = info(Kind.S3_DATA).canonical
    endpoint: WireStr | None = None
    template: WireStr | None = None
    bucket: WireStr | None = None
    object: WireStr | None = None


class RucioObjectType(StrEnum):
    FILE = "FILE"
    CONTAINER = "CONTAINER"
    DATASET = "DATASET"


class RucioDataResource(AbstractDataResource):
    """Rucio data in the ivoa-std flat shape; C26 ``rucio: {endpoint, scope, object, type}`` is
    folded in (``scope`` = ``domain``, ``type`` = ``objecttype``; digest §8.1 item 24)."""

    type: TypeUri = info(Kind.RUCIO_DATA).canonical
    endpoint: WireStr | None = None
    domain: WireStr | None = None
    object: WireStr | None = None
    objecttype: RucioObjectType | None = None


class IvoaObsCore(WireModel):
    obs_id: WireStr | None = None
    obs_collection: WireStr | None = None
    obs_publisher_did: WireStr | None = None
    obs_creator_did: WireStr | None = None
    dataproduct_type: WireStr | None = None
    calib_level: WireInt | None = None
    access_url: WireStr | None = None
    access_format: WireStr | None = None


class IvoaDataLink(WireModel):
    ID: WireStr | None = None
    access_url: WireStr | None = None
    service_def: WireStr | None = None
    error_message: WireStr | None = None
    description: WireStr | None = None
    semantics: WireStr | None = None
    content_type: WireStr | None = None
    content_length: WireInt | None = None
    content_qualifier: WireStr | None = None
    local_semantics: WireStr | None = None
    link_auth: WireStr | None = None
    link_authorized: WireStr | None = None


class IvoaBlock(WireModel):
    ivoid: WireStr | None = None
    obscore: IvoaObsCore | None = None
    datalink: IvoaDataLink | None = None


class IvoaDataResource(AbstractDataResource):
    """C26 IVOA data: an ivoid with ObsCore and DataLink metadata."""

    type: TypeUri = info(Kind.IVOA_DATA).canonical
    ivoa: IvoaBlock | None = None


class SkaoChecksum(WireModel):
    type: WireStr | None = None
    value: WireStr | None = None


class SkaoReplica(WireModel):
    rsename: WireStr | None = None
    dataurl: WireStr | None = None


class SkaoBlock(WireModel):
    namespace: WireStr | None = None
    objectname: WireStr | None = None
    objecttype: RucioObjectType | None = None
    datasize: WireInt | None = None  # bytes
    checksum: SkaoChecksum | None = None
    replicas: list[SkaoReplica] | None = None


class SkaoDataResource(AbstractDataResource):
    """C26 SKAO data-lake object."""

    type: TypeUri = info(Kind.SKAO_DATA).canonical
    ivoa: IvoaBlock | None = None
    skao: SkaoBlock | None = None


class UnknownDataResource(AbstractDataResource):
    """A data resource of a type this broker does not recognise; every field kept as sent."""


DataResource = Annotated[
    Annotated[SimpleDataResource, tagged(Kind.SIMPLE_DATA)]
    | Annotated[S3DataResource, tagged(Kind.S3_DATA)]
    | Annotated[RucioDataResource, tagged(Kind.RUCIO_DATA)]
    | Annotated[IvoaDataResource, tagged(Kind.IVOA_DATA)]
    | Annotated[SkaoDataResource, tagged(Kind.SKAO_DATA)]
    | Annotated[UnknownDataResource, UNKNOWN_TAG],
    discriminator_tag(Group.DATA),
]


class ExecutionResourceList(WireModel):
    """``ExecutionResourceList``: separate lists, so compute and storage can link many-to-many."""

    compute: list[ComputeResource] | None = None
    storage: list[StorageResource] | None = None
    data: list[DataResource] | None = None


def data_size_bytes(resources: list[DataResource]) -> int | None:
    """Bytes of data to stage where the resources say (SKAO ``datasize``, DataLink
    ``content_length``); None when no size is known, so callers can tell "none" from "unknown"."""
    total: int | None = None
    for resource in resources:
        size: int | None = None
        if isinstance(resource, SkaoDataResource) and resource.skao is not None:
            size = resource.skao.datasize
        if size is None and isinstance(resource, IvoaDataResource | SkaoDataResource):
            link = resource.ivoa.datalink if resource.ivoa else None
            size = link.content_length if link else None
        if size is not None and size > 0:
            total = (total or 0) + size
    return total
