"""Spec and status models of the broker's custom resources (group ``executionbroker.ivoa.net``).

These models are the single source of the CRD schemas in ``crds/`` (``eb-operator crds`` and
``hack/gen-crds.py`` turn them into structural OpenAPI schemas). Field names are camelCase on the
wire, snake_case in Python.

The IVOA request inside an OfferSet (and inside a direct Execution) keeps the canonical ivoa-std
shape of the wire model (``eb_operator.model.OfferSetRequest``). Its polymorphic objects
(executable, compute, storage and data resources) become, in the CRD, one object each holding the
union of the fields of every type they may take, because a structural schema cannot express a
discriminated union. Which fields belong to which ``type`` is checked by the wire model when the
operator reads the request, not by the API server.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from eb_operator.model.common import MessageItem
from eb_operator.model.executables import AccessMethod, DockerNetworkPort, Executable
from eb_operator.model.offerset import OfferSetRequest, SessionSchedule
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.resources import ExecutionResourceList

GROUP = "executionbroker.ivoa.net"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
#: Annotation an offer Execution is created with, value ``OFFERED``: its phase until the operator
#: writes ``status.phase`` (the status subresource drops a status sent with the create, and a second
#: write per offer would halve the offer rate). The PHASE printer column falls back to it.
ANNOTATION_INITIAL_PHASE = f"{GROUP}/initial-phase"


class CrModel(BaseModel):
    """Base of every CR model: camelCase aliases; unknown fields ignored (the schema prunes them)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# The IVOA request is the wire model's OfferSetRequest (ivoa-std shape); the executable is the
# wire model's Executable union. crdgen flattens their discriminated unions into one object each.
ExecutableSpec = Executable
IvoaRequest = OfferSetRequest


# --- common status parts ------------------------------------------------------------------------


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


#: Groups recorded per caller (the REST API keeps the first this many TokenReview gives).
MAX_GROUPS = 256
_GROUPS = "The caller's groups (set by the REST API: TokenReview's user.groups or the static tokens')."


class OfferSetSpec(CrModel):
    owner: str | None = Field(default=None, description="Who asked (set by the REST API to the caller).")
    groups: list[str] | None = Field(default=None, max_length=MAX_GROUPS, description=_GROUPS)
    request: IvoaRequest


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


class PeerRef(CrModel):
    """A session held at a peer broker (docs/federation.md): which ``BrokerPeer``, the session's
    uuid and URL there. Written by the operator only."""

    name: str = Field(description="The BrokerPeer (same namespace as the broker's own peers).")
    session: str = Field(description="The session's uuid at the peer.")
    href: str = Field(description="The session's URL at the peer (same origin as the peer's url).")
    expires: str | None = Field(default=None, description="RFC 3339; the offer lapses then.")
    start: str | None = Field(default=None, description="RFC 3339; the offered start of execution.")


class PeerOffer(CrModel):
    """What a peer offered, validated by the operator like client input and re-rendered in the
    ivoa-std shape (``eb_operator.peers.documents``)."""

    name: str | None = None
    executable: Executable | None = None
    resources: ExecutionResourceList | None = None
    schedule: SessionSchedule | None = None
    messages: list[MessageItem] | None = None


class OfferRef(CrModel):
    """One offer: its session's name and uuid, and either the capacity it holds here until it
    expires, a sibling is accepted or the set is deleted (``eb_operator.cluster.offer_status``),
    or the peer broker that holds it and what that peer offered."""

    name: str
    uuid: str
    reservation: ReservationSpec | None = None
    peer: PeerRef | None = None
    offered: PeerOffer | None = None


class WithdrawnOffer(CrModel):
    """An offer the operator took back before it was accepted (fair sharing: capacity a group held
    beyond its share, given to a group under its own)."""

    name: str
    message: str


class OfferSetStatus(CrModel):
    uuid: str | None = None
    result: Literal["YES", "NO"] | None = None
    offers: list[OfferRef] | None = None
    request: IvoaRequest | None = Field(
        default=None,
        description="The request as offered (with its offered storage), as each offer shows and runs it.",
    )
    expires: str | None = None
    created: str | None = None
    messages: list[MessageItem] | None = None
    retry_after_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Set on a set refused for its owner's (or group's) request rate: when to ask again.",
    )
    withdrawn: list[WithdrawnOffer] | None = Field(
        default=None, description="Offers taken back before they were accepted; they hold nothing."
    )
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
                    "rule": "!has(oldSelf.peer) || (has(self.peer) && self.peer == oldSelf.peer)",
                    "message": "spec.peer is immutable once set",
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
    groups: list[str] | None = Field(default=None, max_length=MAX_GROUPS, description=_GROUPS)
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
    peer: PeerRef | None = Field(
        default=None, description="For an offer held at a peer broker: where the session runs."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        description="Seconds this Execution (with its Pod and the Pod's logs) is kept after it reached "
        "a final phase; then the operator deletes it. Unset: the platform's "
        "retention.ttlSecondsAfterFinished (default one day).",
    )


class RemoteStatus(CrModel):
    """A session held at a peer broker, as this broker last saw it there."""

    phase: ExecutionPhase | None = Field(default=None, description="The session's phase at the peer.")
    unreachable_since: str | None = Field(
        default=None, description="RFC 3339; the peer has not answered about the session since then."
    )
    error: str | None = Field(default=None, description="Why the peer's last answer could not be used.")


class RouteStatus(CrModel):
    """Where a routed session is reached from outside (written by the operator, read by the gate)."""

    kind: str = Field(description="notebook or container.")
    path: str = Field(description="The session's path: every endpoint is below it (the gate's cookie path).")
    url: str = Field(description="What a login link opens: the first endpoint's public URL.")


class DeliveryStatus(CrModel):
    """How a storage resource's results went out (its ``stageout``)."""

    state: Literal["Delivered", "Failed"]
    files: int | None = None
    bytes: int | None = None
    at: str | None = Field(default=None, description="RFC 3339; when the delivery ended.")
    message: str | None = Field(default=None, description="The stager's line: its summary, or why it failed.")


class StorageStatus(CrModel):
    """One storage resource of a session, as the operator made or found it."""

    index: int = Field(ge=0, description="Its position in the request's resources.storage.")
    uuid: str = Field(description="The storage's uuid (an earlier session's, when reused).")
    claim: str | None = Field(
        default=None, description="Its PersistentVolumeClaim; none for scratch space (an emptyDir)."
    )
    namespace: str | None = Field(default=None, description="The claim's namespace.")
    size_gib: int | None = Field(default=None, ge=0, alias="sizeGiB")
    lifetime: str | None = Field(
        default=None, description="ISO 8601 duration it is kept after the session (persistent storage)."
    )
    expires: str | None = Field(
        default=None, description="RFC 3339; when the claim is deleted at the latest, as last decided."
    )
    reused: bool | None = Field(default=None, description="An earlier session's storage, mounted again.")
    delivers: bool | None = Field(default=None, description="Its results are staged out when the run ends.")
    delivery: DeliveryStatus | None = None


class ExecutionStatus(CrModel):
    phase: ExecutionPhase | None = None
    uuid: str | None = None
    created: str | None = None
    expires: str | None = None
    pod_name: str | None = None
    child_namespace: str | None = Field(
        default=None, description="Where the session's Pod and other children live (its owner's namespace)."
    )
    started: str | None = None
    finished: str | None = None
    exit_code: int | None = None
    access: list[AccessMethod] | None = Field(
        default=None,
        description="How to reach the running executable (IVOA ExecutableAccessMethod), one per "
        "endpoint: its public URL first (a routed session), then in-cluster ones.",
    )
    route: RouteStatus | None = Field(
        default=None, description="The session's route from outside the cluster, if it has one."
    )
    ports: list[DockerNetworkPort] | None = Field(
        default=None,
        description="A routed container's ports as the service fills them: external port and "
        "addresses, and the path (the request's network.ports, shown in the session).",
    )
    message: str | None = None
    messages: list[MessageItem] | None = None
    conditions: list[Condition] | None = None
    observed_generation: int | None = None
    remote: RemoteStatus | None = None
    storage: list[StorageStatus] | None = Field(
        default=None,
        description="The session's storage: uuids, claims, sizes, expiry and deliveries (written when it "
        "prepares and when it ends).",
    )
    logs: str | None = Field(
        default=None,
        description="The ConfigMap (in this namespace, owned by the Execution) holding a copy of the "
        "workload's log, kept when the session ended.",
    )


# --- ExecutionPlatform (cluster-scoped; spec = PlatformPolicy) --------------------------------------


class ExecutionPlatformStatus(CrModel):
    valid: bool | None = None
    message: str | None = None
    nodes: int | None = Field(default=None, description="Nodes the selector matches, as last seen.")
    observed_generation: int | None = None
    conditions: list[Condition] | None = None


# --- BrokerPeer --------------------------------------------------------------------------------


class PeerDialect(StrEnum):
    IVOA_STD = "ivoa-std"
    C26 = "c26"


class PeerCredentials(CrModel):
    """A bearer token in a Secret of the BrokerPeer's namespace (never copied out of it)."""

    secret_name: str = Field(description="The Secret holding the token.")
    key: str = Field(default="token", description="The Secret's key whose value is the token.")


class BrokerPeerSpec(CrModel):
    """Another IVOA ExecutionBroker this broker asks for offers and runs sessions at."""

    url: str = Field(
        description="The peer's base URL (http or https, no credentials, query or fragment): "
        "POST <url>/offersets (ivoa-std) or <url>/requests (c26) reaches it."
    )
    dialect: PeerDialect = Field(default=PeerDialect.IVOA_STD, description="What the peer speaks.")
    credentials: PeerCredentials | None = Field(
        default=None, description="The bearer token this broker presents to the peer."
    )
    deadline_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How long an offer request (or a phase change) at the peer may take.",
    )
    preference: int = Field(
        default=0,
        ge=-1000,
        le=1000,
        description="Among offers starting at the same time, higher first (this broker's own: 0).",
    )
    max_offers: int = Field(default=4, ge=1, le=32, description="At most this many of its offers per set.")


class BrokerPeerStatus(CrModel):
    reachable: bool | None = Field(default=None, description="The last probe found the peer usable.")
    latency_ms: int | None = Field(default=None, description="The last probe's answer time.")
    last_probe: str | None = Field(default=None, description="RFC 3339; when it was probed last.")
    last_error: str | None = Field(default=None, description="Why the last probe (or spec) failed.")
    observed_generation: int | None = None


__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "BrokerPeerSpec",
    "BrokerPeerStatus",
    "Condition",
    "DeliveryStatus",
    "DesiredPhase",
    "ExecutableSpec",
    "ExecutableStatus",
    "ExecutionPhase",
    "ExecutionPlatformStatus",
    "ExecutionSpec",
    "ExecutionStatus",
    "IvoaRequest",
    "MessageItem",
    "OfferRef",
    "OfferSetSpec",
    "OfferSetStatus",
    "PeerCredentials",
    "PeerDialect",
    "PeerOffer",
    "PeerRef",
    "PlatformPolicy",
    "RemoteStatus",
    "ReservationSpec",
    "RouteStatus",
    "StorageStatus",
    "WithdrawnOffer",
]


def write_crds(out: str | Path | None, stream: TextIO) -> None:
    """``eb-operator crds``; see ``eb_operator.model.crdgen.write_crds``."""
    from eb_operator.model.crdgen import write_crds as _write

    _write(out, stream)
