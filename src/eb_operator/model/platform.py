"""The broker's policy: the spec of the cluster-scoped ExecutionPlatform resource.

Field names are camelCase on the wire (the CR) and snake_case in Python. Every field has a
default so that an empty ExecutionPlatform is a working policy.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from eb_operator import __version__
from eb_operator.model.policy_base import PolicyModel
from eb_operator.model.sharing import Namespaces, Sharing


def endpoint_key(url: str) -> str:
    """An endpoint URL as endpoints compare: scheme and host without case, no trailing slash."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


class Toleration(PolicyModel):
    """A taint on dedicated broker nodes that workload Pods tolerate."""

    key: str
    value: str | None = None
    effect: str = "NoSchedule"


class GpuFlavour(PolicyModel):
    """One kind of accelerator the platform offers, and how Kubernetes names it."""

    name: str = Field(description="Short name clients may use in extras[].name, e.g. 'a100'.")
    resource_name: str = Field(default="nvidia.com/gpu", description="Kubernetes extended resource.")
    product: str | None = Field(default=None, description="Value of the product node label, if any.")
    product_label: str = Field(
        default="nvidia.com/gpu.product", description="Node label holding the product."
    )
    type_uris: list[str] = Field(
        default_factory=list,
        description="Extra type URIs (digest §9 item 26) that select this flavour, e.g. "
        "https://www.purl.org/ivoa.net/resource-types/nvidia-ad104.",
    )
    memory_gib: int | None = Field(
        default=None, ge=0, description="GPU memory per device, for extras min checks."
    )


class RequestLimits(PolicyModel):
    max_cores: int = Field(default=64, ge=1)
    max_memory_gib: int = Field(default=256, ge=1)
    max_gpus: int = Field(default=8, ge=0)
    max_storage_gib: int = Field(default=1024, ge=0)
    max_duration_seconds: int = Field(default=24 * 3600, ge=60)
    max_storage_lifetime_seconds: int = Field(
        default=7 * 24 * 3600, ge=0, description="Longest time persistent storage outlives its session."
    )


#: The data stager image this version of the broker runs (hack/build-stager-image.sh builds it):
#: ``eb-stager`` with boto3, httpx, webdav4 and rucio-clients.
STAGER_IMAGE = f"eb-stager:{__version__}"


class Images(PolicyModel):
    notebook: str = "eb-notebook:latest"
    apptainer: str | None = None
    http_stager: str = Field(
        default=STAGER_IMAGE,
        description="Image with the eb-stager command for HTTP(S) data and notebooks; it also holds a Pod "
        "made before its offered start until that start.",
    )
    s3_stager: str = Field(default=STAGER_IMAGE, description="Image with the eb-stager command for S3 data.")
    rucio_stager: str | None = Field(
        default=None,
        description="Image with the eb-stager command and the Rucio client (the default stager image has "
        "it); none: the platform does not stage Rucio data.",
    )


class DataEndpoint(PolicyModel):
    """An S3 (or other) endpoint the platform can reach, with credentials from a Secret."""

    endpoint: str
    secret_name: str | None = None
    secret_namespace: str | None = None
    addressing_style: Literal["path", "virtual", "auto"] = Field(
        default="path",
        description="S3 addressing: path (endpoint/bucket/key: versitygw, MinIO, Ceph without wildcard DNS), "
        "virtual (bucket.endpoint/key: AWS) or auto.",
    )


class GatewayRef(PolicyModel):
    """The Gateway (Gateway API) session routes attach to."""

    namespace: str
    name: str
    section_name: str | None = Field(default=None, description="The Gateway listener to attach to.")


class ServiceRef(PolicyModel):
    """A Service by name: the operator puts its ClusterIP into the gate's address, which works where
    the ingress controller has no cluster DNS (a controller running on the host)."""

    namespace: str
    name: str
    port: int = Field(default=80, ge=1, le=65535)


class RouteGate(PolicyModel):
    """Where the ingress controller asks the broker's REST API whether a request may pass (the gate,
    GET <address>/gate/<session uuid>), and how the routes name it."""

    url: str | None = Field(
        default=None,
        description="Base URL of the REST API as the ingress controller reaches it, e.g. "
        "http://execution-broker.execution-broker.svc:80.",
    )
    service: ServiceRef | None = Field(
        default=None, description="Or the REST API's Service: its ClusterIP and port make the address."
    )
    provider: Literal["traefik", "annotations"] = Field(
        default="traefik",
        description="traefik: a Traefik ForwardAuth Middleware per session, named by the Ingress's "
        "annotation or the HTTPRoute's ExtensionRef filter. annotations: no Middleware; the route's "
        "`annotations` configure the controller's own external auth, with {gate} standing for the "
        "gate's URL (e.g. nginx's auth-url). Ingress only.",
    )

    @model_validator(mode="after")
    def _check(self) -> RouteGate:
        if (self.url is None) == (self.service is None):
            raise ValueError("routes.gate needs exactly one of url and service")
        if self.url is not None and urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError("routes.gate.url must be an http(s) URL")
        return self


class SessionRoutes(PolicyModel):
    """Routes from outside the cluster to interactive sessions (notebooks, web apps), through the
    cluster's ingress: an Ingress of ``ingressClassName``, or an HTTPRoute on ``gateway``, per
    session, under ``<pathPrefix><kind>/<uuid>/``, only for the session's owner (the gate)."""

    public_url: str = Field(
        description="Where users reach the ingress, e.g. https://sessions.example.org; the sessions' "
        "URLs start with it."
    )
    host: str | None = Field(
        default=None,
        description="Host the routes match; default: publicUrl's host when it is a name (an address "
        "matches any host).",
    )
    path_prefix: str = Field(default="/session/", description="Sessions' paths: <pathPrefix><kind>/<uuid>/.")
    ingress_class_name: str | None = Field(default=None, description="The Ingress class (no gateway).")
    gateway: GatewayRef | None = Field(default=None, description="Make HTTPRoutes on this Gateway instead.")
    tls_secret_name: str | None = Field(
        default=None, description="TLS Secret of the Ingress (in the session's namespace); needs a host."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Extra annotations of every route ({gate}: the gate's URL)."
    )
    gate: RouteGate = Field(
        description="Where the ingress controller asks the broker's REST API whether a request may pass "
        "(GET <address>/gate/<session uuid>), and how the routes name that check."
    )

    @model_validator(mode="after")
    def _check(self) -> SessionRoutes:
        url = urlsplit(self.public_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("routes.publicUrl must be an absolute http(s) URL")
        if url.path not in ("", "/") or url.query or url.fragment:
            raise ValueError("routes.publicUrl is a scheme, host and port only (the path is pathPrefix)")
        if not (self.path_prefix.startswith("/") and self.path_prefix.endswith("/")):
            raise ValueError("routes.pathPrefix must start and end with /")
        if self.tls_secret_name and not self.match_host:
            raise ValueError("routes.tlsSecretName needs a host name (routes.host, or publicUrl's host)")
        if self.gateway is not None and self.gate.provider != "traefik":
            raise ValueError(
                "HTTPRoutes have no standard external-auth filter: routes.gateway needs gate.provider traefik"
            )
        return self

    @property
    def match_host(self) -> str | None:
        """The host the routes match: ``host``, else publicUrl's when it is a name, not an address."""
        if self.host:
            return self.host
        name = urlsplit(self.public_url).hostname or ""
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return name
        return None


class Retention(PolicyModel):
    """How long objects are kept once done (then deleted with their children, a Pod's logs too)."""

    ttl_seconds_after_finished: int = Field(
        default=24 * 3600,
        ge=0,
        description="Seconds an Execution is kept after it reached a final phase (COMPLETED, FAILED, "
        "CANCELLED, REJECTED, EXPIRED); an Execution's own spec.ttlSecondsAfterFinished wins.",
    )
    offer_set_ttl_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        description="Seconds an answered OfferSet is kept after its offers expired (a NO: after the "
        "answer), once none of its offers is a session any more.",
    )


class PlatformPolicy(PolicyModel):
    node_selector: dict[str, str] = Field(default_factory=dict, description="Labels a node must carry.")
    toleration: Toleration | None = None
    slot_seconds: int = Field(default=300, ge=1, description="Offers start on multiples of this.")
    horizon_seconds: int = Field(default=24 * 3600, ge=60, description="How far ahead offers may start.")
    offer_ttl_seconds: int = Field(default=300, ge=1, description="How long an offer reserves capacity.")
    max_offers: int = Field(default=4, ge=1, le=16)
    default_duration_seconds: int = Field(default=2 * 3600, ge=1)
    default_start_window_seconds: int = Field(default=2 * 3600, ge=0)
    max_duration_factor: float = Field(
        default=2.0, ge=1.0, description="Offered run time is at most this times the requested one."
    )
    preparation_seconds: int = Field(default=30, ge=0, description="Lead time before start for Pod start.")
    release_seconds: int = Field(default=60, ge=0, description="Tear-down time reserved after a run.")
    data_bandwidth_bytes_per_second: int = Field(default=50 * 1024 * 1024, ge=1)
    limits: RequestLimits = Field(default_factory=RequestLimits)
    gpu_flavours: list[GpuFlavour] = Field(default_factory=list)
    images: Images = Field(default_factory=Images)
    storage_class_name: str | None = Field(
        default=None,
        description="StorageClass of the PersistentVolumeClaims made for persistent storage (storage with "
        "a lifetime); none means the platform offers no persistent storage.",
    )
    data_endpoints: list[DataEndpoint] = Field(default_factory=list)
    routes: SessionRoutes | None = Field(
        default=None,
        description="Routes from outside the cluster to notebooks and web apps, for their owners only; "
        "none: sessions have in-cluster addresses only.",
    )
    retention: Retention = Field(default_factory=Retention)
    sharing: Sharing = Field(
        default_factory=Sharing,
        description="Limits per owner and per group, group shares, allowed images (docs/operator.md, "
        "Sharing a platform).",
    )
    namespaces: Namespaces = Field(
        default_factory=Namespaces, description="Where REST sessions' Pods run: a namespace per owner."
    )
    keep_undelivered_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        description="How long the volume of results that were not delivered (a failed stage-out, or a "
        "failed run) is kept after its session, when its storage has no longer lifetime: the owner may "
        "mount it in a later session meanwhile.",
    )

    def data_endpoint(self, url: str) -> DataEndpoint | None:
        """The listed data endpoint ``url`` names (compared without case in scheme and host, and
        without a trailing slash), if any."""
        want = endpoint_key(url)
        return next((e for e in self.data_endpoints if endpoint_key(e.endpoint) == want), None)

    def endpoint_under(self, url: str) -> DataEndpoint | None:
        """The listed data endpoint ``url`` falls under: the same scheme and host, and the
        endpoint's path a prefix of the location's at a ``/`` boundary; the longest such path wins.
        (Where a results location's credentials come from.)"""
        want = endpoint_key(url)
        best: DataEndpoint | None = None
        for e in self.data_endpoints:
            key = endpoint_key(e.endpoint)
            if (want == key or want.startswith(key + "/")) and (
                best is None or len(key) > len(endpoint_key(best.endpoint))
            ):
                best = e
        return best

    @model_validator(mode="after")
    def _check(self) -> PlatformPolicy:
        if self.horizon_seconds < self.slot_seconds:
            raise ValueError("horizonSeconds must be at least slotSeconds")
        names = [f.name for f in self.gpu_flavours]
        if len(names) != len(set(names)):
            raise ValueError("gpuFlavours names must be unique")
        return self
