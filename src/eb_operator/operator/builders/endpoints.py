"""What a person connects to in a session (its endpoints), and where each is reached from outside.

* A Jupyter notebook has one endpoint: its server (port 8888), which opens in JupyterLab, on the
  request's ``.ipynb`` when its ``location`` names one (``lab/tree/<file>``).
* A docker-container has one per ``network.ports`` entry with ``access: true`` and protocol HTTP
  or HTTPS (digest §3.3, DockerNetworkPort); its ``path`` is what to open below the app's base.

With the platform's ``routes`` and an owner to let in, each endpoint is served at the public URL
under the session's path ``<pathPrefix><kind>/<uuid>/`` (a container's ports each under
``<port>/`` below it) through an Ingress or HTTPRoute (:mod:`.routes`), and the app is told that
base path: Jupyter's ``base_url``, ``EB_BASE_PATH`` (and ``EB_BASE_PATH_<port>``) for containers.
Without routes an app serves at ``/`` and is reached inside the cluster only.

The endpoints are written on the session's Pod (:data:`ANN_ENDPOINTS`), so that the phase machine
and the status writer know them from the Pod's watch events, without reading the request again.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from eb_operator.cluster.convert import object_uuid
from eb_operator.model.platform import PlatformPolicy, SessionRoutes
from eb_operator.operator.builders.storage import child_name

Obj = Mapping[str, Any]

NOTEBOOK = "notebook"
CONTAINER = "container"
NOTEBOOK_PORT = 8888
#: Pod annotation: the session's route and endpoints as JSON (:func:`encode`, :func:`decode`).
ANN_ENDPOINTS = "executionbroker.ivoa.net/endpoints"
ENV_BASE_PATH = "EB_BASE_PATH"
ROUTED_PROTOCOLS = ("HTTP", "HTTPS")


@dataclass(frozen=True, slots=True)
class Endpoint:
    port: int  # the container's port
    protocol: str  # HTTP or HTTPS: what the app speaks on it
    service: str  # the Service in front of it
    base_path: str  # the path the app serves under ("/" without a route)
    url: str | None = None  # from outside: the public URL of base_path + open_path
    open_path: str = ""  # what to open below base_path (relative): lab/tree/x.ipynb, index.html
    notebook: bool = False

    @property
    def path(self) -> str:
        """The path of what a user opens: base path and open path."""
        return self.base_path + self.open_path


@dataclass(frozen=True, slots=True)
class SessionRoute:
    """A routed session: its kind, the path every endpoint is below (the gate's cookie path), and
    the URL a login link opens (its first endpoint's)."""

    kind: str
    path: str
    url: str

    def status(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "url": self.url}


@dataclass(frozen=True, slots=True)
class Plan:
    route: SessionRoute | None
    endpoints: tuple[Endpoint, ...]


def session_kind(executable: Obj) -> str | None:
    """notebook or container for an executable with endpoints' kinds, else None."""
    type_uri = str(executable.get("type", ""))
    if "jupyter-notebook" in type_uri:
        return NOTEBOOK
    if "docker-container" in type_uri:
        return CONTAINER
    return None


def notebook_file(executable: Obj) -> str | None:
    """The file the notebook's ``location`` is staged as (the stager's name for it: the URL path's
    last part, unquoted), when it names a notebook (``.ipynb``)."""
    location = str(executable.get("location") or "")
    name = unquote(posixpath.basename(urlsplit(location).path.rstrip("/")))
    return name if name.endswith(".ipynb") else None


def routed_ports(executable: Obj) -> list[Obj]:
    """The ``network.ports`` entries that get a route: ``access: true``, protocol HTTP or HTTPS."""
    out = []
    for p in (executable.get("network") or {}).get("ports") or []:
        port = (p.get("internal") or {}).get("port")
        if p.get("access") is True and port and str(p.get("protocol") or "TCP").upper() in ROUTED_PROTOCOLS:
            out.append(p)
    return out


def session_path(routes: SessionRoutes, kind: str, uuid: str) -> str:
    return f"{routes.path_prefix}{kind}/{uuid}/"


def public_url(routes: SessionRoutes, path: str) -> str:
    return routes.public_url.rstrip("/") + path


def routes_for(execution: Obj, policy: PlatformPolicy) -> SessionRoutes | None:
    """The platform's routes when this session gets them: only a session with an owner does (the
    REST API's sessions; the gate lets in exactly that owner)."""
    if policy.routes is None or not (execution.get("spec") or {}).get("owner"):
        return None
    return policy.routes


def plan(execution: Obj, executable: Obj, policy: PlatformPolicy) -> Plan:
    """The session's endpoints, and its route when it has one (see the module doc)."""
    kind = session_kind(executable)
    name = str(execution["metadata"]["name"])
    routes = routes_for(execution, policy)
    base = session_path(routes, kind, object_uuid(execution)) if routes and kind else None
    endpoints: list[Endpoint] = []
    if kind == NOTEBOOK:
        file = notebook_file(executable)
        endpoints.append(
            Endpoint(
                port=NOTEBOOK_PORT,
                protocol="HTTP",
                service=child_name(name, "notebook"),
                base_path=base or "/",
                open_path=f"lab/tree/{quote(file)}" if file else "lab",
                notebook=True,
            )
        )
    elif kind == CONTAINER:
        for p in routed_ports(executable):
            port = int(p["internal"]["port"])
            endpoints.append(
                Endpoint(
                    port=port,
                    protocol=str(p.get("protocol")).upper(),
                    service=child_name(name, "app"),
                    base_path=f"{base}{port}/" if base else "/",
                    open_path=str(p.get("path") or "").lstrip("/"),
                )
            )
    if routes is None or base is None or not endpoints:
        return Plan(None, tuple(endpoints))
    endpoints = [
        Endpoint(
            e.port, e.protocol, e.service, e.base_path, public_url(routes, e.path), e.open_path, e.notebook
        )
        for e in endpoints
    ]
    assert kind is not None
    assert endpoints[0].url is not None
    return Plan(SessionRoute(kind, base, endpoints[0].url), tuple(endpoints))


def base_path_env(endpoints: Sequence[Endpoint]) -> dict[str, str]:
    """``EB_BASE_PATH`` (the first endpoint's base path) and ``EB_BASE_PATH_<port>`` for each."""
    if not endpoints:
        return {}
    return {ENV_BASE_PATH: endpoints[0].base_path} | {
        f"{ENV_BASE_PATH}_{e.port}": e.base_path for e in endpoints
    }


def encode(p: Plan) -> str:
    """The annotation's value."""
    return json.dumps(
        {"route": p.route.status() if p.route else None, "endpoints": [asdict(e) for e in p.endpoints]},
        sort_keys=True,
        separators=(",", ":"),
    )


def decode(text: str | None) -> Plan:
    """A Pod annotation back into a :class:`Plan`; an empty plan for a missing or foreign value."""
    try:
        doc = json.loads(text or "")
        route = doc.get("route")
        return Plan(
            SessionRoute(**route) if route else None,
            tuple(Endpoint(**e) for e in doc.get("endpoints") or []),
        )
    except (ValueError, TypeError, AttributeError):
        return Plan(None, ())


def network_ports(endpoints: Sequence[Endpoint]) -> list[dict[str, Any]]:
    """A routed container's DockerNetworkPorts as the service fills them (digest §3.3): where each
    is reached from outside (``external.port``, ``external.addresses``) and at which ``path``."""
    out = []
    for e in endpoints:
        if e.notebook or not e.url:
            continue
        url = urlsplit(e.url)
        out.append(
            {
                "access": True,
                "internal": {"port": e.port},
                "external": {
                    "port": url.port or (443 if url.scheme == "https" else 80),
                    "addresses": [url.hostname or ""],
                },
                "protocol": e.protocol,
                "path": e.path,
            }
        )
    return out
