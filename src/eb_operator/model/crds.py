"""Spec and status models of the broker's custom resources (group ``executionbroker.ivoa.net``).

These models are the single source of the CRD schemas in ``crds/`` (``eb-operator crds`` and
``hack/gen-crds.py`` turn them into structural OpenAPI schemas). Field names are camelCase on the
wire, snake_case in Python.

The IVOA request inside an OfferSet (and inside a direct Execution) keeps the canonical ivoa-std
shape. Its polymorphic objects (executable, compute, storage and data resources) are each written
here as one object holding the union of the fields of every type they may take, because a
structural schema cannot express a discriminated union. Which fields belong to which ``type`` is
checked by the wire model (``eb_operator.model``) when the operator reads the request, not by the
API server.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from eb_operator.model.platform import PlatformPolicy

GROUP = "executionbroker.ivoa.net"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: CEL: when both bounds are present the lower one may not exceed the upper one.
MIN_LE_MAX: JsonDict = {
    "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
    "message": "min must not exceed max",
}


class CrModel(BaseModel):
    """Base of every CR model: camelCase aliases; unknown fields ignored (the schema prunes them)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# --- the IVOA request, ivoa-std shape, polymorphic objects flattened -------------------------------


class MinMax(CrModel):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [MIN_LE_MAX]})

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class RequestedOffered(CrModel):
    requested: MinMax | None = None
    offered: MinMax | None = None


class DockerPlatform(CrModel):
    architecture: str | None = None
    os: str | None = None


class DockerImage(CrModel):
    locations: list[str] | None = None
    digest: str | None = None
    platform: DockerPlatform | None = None


class PortNumber(CrModel):
    port: int | None = Field(default=None, ge=1, le=65535)


class ExternalPort(CrModel):
    port: int | None = Field(default=None, ge=1, le=65535)
    addresses: list[str] | None = None


class NetworkPort(CrModel):
    access: bool | None = None
    internal: PortNumber | None = None
    external: ExternalPort | None = None
    protocol: str | None = None
    path: str | None = None


class DockerNetwork(CrModel):
    ports: list[NetworkPort] | None = None


class AccessMethod(CrModel):
    status: Literal["PREPARING", "ACTIVE", "FINISHED"] | None = None
    protocol: str | None = None
    locations: list[str] | None = None


class ExecutableSpec(CrModel):
    """An IVOA executable: DockerContainer, SingularityContainer or JupyterNotebook (by ``type``)."""

    type: str = Field(
        description="Type URI, e.g. https://www.purl.org/ivoa.net/EB/schema/types/executables/"
        "docker-container-1.0"
    )
    name: str | None = None
    uuid: str | None = None
    # DockerContainer
    image: DockerImage | None = None
    privileged: bool | None = None
    entrypoint: str | None = Field(default=None, description="Replaces the image ENTRYPOINT.")
    command: list[str] | None = Field(
        default=None, description="Arguments to the entrypoint (C26 extension)."
    )
    environment: dict[str, str] | None = None
    network: DockerNetwork | None = None
    # SingularityContainer, JupyterNotebook
    location: str | None = Field(
        default=None, description="Image URL (Singularity) or notebook URL (Jupyter)."
    )
    access: list[AccessMethod] | None = None


class ComputeExtra(CrModel):
    """An accelerator or other extra (digest §9 item 26), e.g. a GPU by type URI or flavour name."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [MIN_LE_MAX]})

    name: str | None = None
    type: str | None = None
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    memory: MinMax | None = Field(default=None, description="Device memory in GiB.")


class ComputeVolume(CrModel):
    name: str | None = None
    path: str | None = None
    mode: str | None = None
    resource: str | None = None


class ComputeResource(CrModel):
    type: str
    name: str | None = None
    uuid: str | None = None
    cores: RequestedOffered | None = None
    memory: RequestedOffered | None = None
    gpus: RequestedOffered | None = Field(default=None, description="GPU count (compute extension field).")
    volumes: list[ComputeVolume] | None = None
    extras: list[ComputeExtra] | None = None


class StorageResource(CrModel):
    type: str
    name: str | None = None
    uuid: str | None = None
    size: RequestedOffered | None = None


class DataResource(CrModel):
    """SimpleDataResource, AmazonS3DataResource or RucioDataResource (by ``type``)."""

    type: str
    name: str | None = None
    uuid: str | None = None
    storage: str | None = None
    location: str | None = None
    endpoint: str | None = None
    template: str | None = None
    bucket: str | None = None
    object: str | None = None
    domain: str | None = None


class ResourceList(CrModel):
    compute: list[ComputeResource] | None = None
    storage: list[StorageResource] | None = None
    data: list[DataResource] | None = None


class ScheduleRequested(CrModel):
    duration: str | None = Field(default=None, description="ISO 8601 duration: the minimum run time.")
    start: list[str] | None = Field(default=None, description="ISO 8601 intervals: acceptable start windows.")


class ScheduleRequest(CrModel):
    requested: ScheduleRequested | None = None


class IvoaRequest(CrModel):
    """An IVOA OfferSetRequest in the canonical ivoa-std shape."""

    name: str | None = None
    executable: ExecutableSpec | None = None
    resources: ResourceList | None = None
    schedule: ScheduleRequest | None = None


# --- common status parts ------------------------------------------------------------------------


class MessageLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    OTHER = "OTHER"


class Message(CrModel):
    """An IVOA MessageItem."""

    type: str | None = None
    time: str | None = None
    level: MessageLevel | None = None
    template: str | None = None
    values: dict[str, str] | None = None
    message: str | None = None


class Condition(CrModel):
    """A standard Kubernetes condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: int | None = None


# --- Executable ---------------------------------------------------------------------------------


class ExecutableStatus(CrModel):
    uuid: str | None = None
    observed_generation: int | None = None


# --- OfferSet -----------------------------------------------------------------------------------


class OfferSetSpec(CrModel):
    owner: str | None = Field(default=None, description="Who asked (set by the REST API to the caller).")
    request: IvoaRequest


class OfferRef(CrModel):
    name: str
    uuid: str


class OfferSetStatus(CrModel):
    uuid: str | None = None
    result: Literal["YES", "NO"] | None = None
    offers: list[OfferRef] | None = None
    expires: str | None = None
    created: str | None = None
    messages: list[Message] | None = None
    observed_generation: int | None = None


# --- Execution ----------------------------------------------------------------------------------


class DesiredPhase(StrEnum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


class ExecutionPhase(StrEnum):
    PROPOSED = "PROPOSED"
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    WAITING = "WAITING"
    PREPARING = "PREPARING"
    READY = "READY"
    RUNNING = "RUNNING"
    RELEASING = "RELEASING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class ReservationSpec(CrModel):
    """Capacity held on one node over [prepareStart, releaseEnd). Written by the operator only."""

    node: str
    prepare_start: str = Field(description="RFC 3339; the reservation (and preparation) begins here.")
    start: str = Field(description="RFC 3339; the offered start of execution.")
    duration: str = Field(description="ISO 8601 duration: the run time granted.")
    release_end: str = Field(description="RFC 3339; the reservation ends here.")
    expires: str | None = Field(default=None, description="RFC 3339; an offer not accepted by then expires.")
    cores: int = Field(ge=0)
    memory_gib: int = Field(ge=0, alias="memoryGiB")
    storage_gib: int = Field(default=0, ge=0, alias="storageGiB")
    gpus: int = Field(default=0, ge=0)
    gpu_resource: str | None = None
    node_selector: dict[str, str] | None = Field(
        default=None, description="Labels the node must carry (GPU product)."
    )


class ExecutionSpec(CrModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(oldSelf.reservation) || (has(self.reservation) && "
                    "self.reservation == oldSelf.reservation)",
                    "message": "spec.reservation is immutable once set",
                },
                {
                    "rule": "has(oldSelf.offerSet) == has(self.offerSet) && "
                    "(!has(self.offerSet) || self.offerSet == oldSelf.offerSet)",
                    "message": "spec.offerSet is immutable",
                },
            ]
        }
    )

    offer_set: str | None = Field(
        default=None, description="The OfferSet this offer belongs to (same namespace)."
    )
    owner: str | None = None
    desired_phase: DesiredPhase | None = Field(
        default=None, description="What the client asks for: ACCEPTED, REJECTED or CANCELLED."
    )
    request: IvoaRequest | None = Field(
        default=None, description="The IVOA request (inline for a direct request)."
    )
    executable_ref: str | None = Field(
        default=None,
        description="Name of an Executable in this namespace, used when request.executable is absent.",
    )
    reservation: ReservationSpec | None = None


class ExecutionStatus(CrModel):
    phase: ExecutionPhase | None = None
    uuid: str | None = None
    created: str | None = None
    expires: str | None = None
    pod_name: str | None = None
    started: str | None = None
    finished: str | None = None
    exit_code: int | None = None
    message: str | None = None
    messages: list[Message] | None = None
    conditions: list[Condition] | None = None
    observed_generation: int | None = None


# --- ExecutionPlatform (cluster-scoped; spec = PlatformPolicy) --------------------------------------


class ExecutionPlatformStatus(CrModel):
    valid: bool | None = None
    message: str | None = None
    nodes: int | None = Field(default=None, description="Nodes the selector matches, as last seen.")
    observed_generation: int | None = None
    conditions: list[Condition] | None = None


__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "ComputeResource",
    "Condition",
    "DataResource",
    "DesiredPhase",
    "ExecutableSpec",
    "ExecutableStatus",
    "ExecutionPhase",
    "ExecutionPlatformStatus",
    "ExecutionSpec",
    "ExecutionStatus",
    "IvoaRequest",
    "Message",
    "OfferRef",
    "OfferSetSpec",
    "OfferSetStatus",
    "PlatformPolicy",
    "ReservationSpec",
    "StorageResource",
]


def write_crds(out: str | Path | None, stream: TextIO) -> None:
    """``eb-operator crds``; see ``eb_operator.model.crdgen.write_crds``."""
    from eb_operator.model.crdgen import write_crds as _write

    _write(out, stream)
