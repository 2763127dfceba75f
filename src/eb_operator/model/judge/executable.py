"""What the platform can run: the executable's type, image, privileges, ports and location."""

from __future__ import annotations

from eb_operator.model.common import MessageType
from eb_operator.model.errors import Path
from eb_operator.model.executables import (
    DockerContainer,
    JupyterNotebook,
    SingularityContainer,
    UnknownExecutable,
)
from eb_operator.model.judge.findings import (
    Findings,
    is_http,
)
from eb_operator.model.types import Group

DOCKER_PROTOCOLS = frozenset({"TCP", "UDP", "HTTP", "HTTPS"})


class ExecutableRules(Findings):
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
        elif isinstance(exe, JupyterNotebook) and exe.location is not None and not is_http(exe.location):
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
            if port.protocol is not None and port.protocol.upper() not in DOCKER_PROTOCOLS:
                self.no(
                    MessageType.NOT_SUPPORTED,
                    "{path}: protocol {protocol} is not one of TCP, UDP, HTTP, HTTPS",
                    (*where, "protocol"),
                    protocol=port.protocol,
                )
