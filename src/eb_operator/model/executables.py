"""Executables (digest §3.3): Docker/OCI container, Singularity container, Jupyter notebook.

Fields follow ivoa-std ``types/executables/*.yaml``; ``command`` is the C26 superset. An executable
whose type URI this model does not know parses as :class:`UnknownExecutable`, kept whole, so the
judge can answer NO rather than the parser answering 400 (tex §3.1: "can simply reply NO").
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from eb_operator.model.base import NameValueMap, WireBool, WireInt, WireModel, WireStr
from eb_operator.model.common import UNKNOWN_TAG, Component, TypeUri, discriminator_tag, tagged
from eb_operator.model.types import Group, Kind, info


class AccessStatus(StrEnum):
    PREPARING = "PREPARING"
    ACTIVE = "ACTIVE"
    FINISHED = "FINISHED"


class AccessMethod(WireModel):
    """``ExecutableAccessMethod``: how to reach the running executable. Filled in by the service."""

    status: AccessStatus | None = None
    protocol: WireStr | None = None
    locations: list[WireStr] | None = None


class AbstractExecutable(Component):
    type: TypeUri
    access: list[AccessMethod] | None = None


class DockerPlatform(WireModel):
    architecture: WireStr | None = None  # schema default amd64
    os: WireStr | None = None  # schema default linux


class DockerImage(WireModel):
    locations: list[WireStr] | None = None
    digest: WireStr | None = None
    platform: DockerPlatform | None = None


class DockerInternalPort(WireModel):
    port: WireInt | None = None


class DockerExternalPort(WireModel):
    port: WireInt | None = None
    addresses: list[WireStr] | None = None


class DockerNetworkPort(WireModel):
    access: WireBool | None = None
    internal: DockerInternalPort | None = None
    external: DockerExternalPort | None = None
    protocol: WireStr | None = None  # schema default TCP
    path: WireStr | None = None


class DockerNetwork(WireModel):
    ports: list[DockerNetworkPort] | None = None


class DockerContainer(AbstractExecutable):
    """A Docker or OCI container. ``privileged`` absent means false (schema default); it is kept
    absent rather than defaulted so that documents round-trip unchanged."""

    type: TypeUri = info(Kind.DOCKER_CONTAINER).canonical
    image: DockerImage | None = None
    privileged: WireBool | None = None
    entrypoint: WireStr | None = None
    command: list[WireStr] | None = None
    environment: NameValueMap | None = None
    network: DockerNetwork | None = None


class SingularityContainer(AbstractExecutable):
    type: TypeUri = info(Kind.SINGULARITY_CONTAINER).canonical
    location: WireStr | None = None


class JupyterNotebook(AbstractExecutable):
    type: TypeUri = info(Kind.JUPYTER_NOTEBOOK).canonical
    location: WireStr | None = None


class UnknownExecutable(AbstractExecutable):
    """An executable of a type this broker does not recognise; every field kept as sent."""


Executable = Annotated[
    Annotated[DockerContainer, tagged(Kind.DOCKER_CONTAINER)]
    | Annotated[SingularityContainer, tagged(Kind.SINGULARITY_CONTAINER)]
    | Annotated[JupyterNotebook, tagged(Kind.JUPYTER_NOTEBOOK)]
    | Annotated[UnknownExecutable, UNKNOWN_TAG],
    discriminator_tag(Group.EXECUTABLE),
]
"""Any executable, chosen by its ``type`` URI (any family of digest §3.11)."""
