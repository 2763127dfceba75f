"""Data staging: pure builders of the init containers that copy a session's data into its volumes
before the workload starts (digest §3.4.3, §5.1 item 8).

* simple (HTTP(S)) data and IVOA data (its HTTP(S) access URL): ``eb-stager http`` in
  ``images.httpStager``;
* S3 data: ``eb-stager s3`` (one object, or every object under a prefix; the whole bucket when
  ``object`` is blank) in ``images.s3Stager``, with the credentials of the platform's data endpoint
  as environment from a Secret (never from the request) and the endpoint's addressing style;
* Rucio data: ``eb-stager rucio`` (the Rucio client library's download) in ``images.rucioStager``,
  with that endpoint's Secret likewise.

``eb-stager`` is the command of the stager image (``eb_operator.stager``, built by
``hack/build-stager-image.sh``: boto3, httpx, webdav4 and rucio-clients). Each init container
writes to ``/stage`` (its target volume, read-write) and reports a failure in its termination
message (and on its last log line, which ``terminationMessagePolicy: FallbackToLogsOnError``
falls back to), which the operator quotes in the FAILED session.

A Pod created before the offered start (at the reservation's prepare start, so staging can run
first) ends its init containers with :func:`wait_container`, which sleeps until that start: the
workload starts at the offered start, not before (digest §7 item 55), and the session is READY
while it waits (``eb_operator.operator.lifecycle.observe_pod``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eb_operator.model.platform import DataEndpoint, PlatformPolicy
from eb_operator.model.types import Group, Kind, kind_of
from eb_operator.operator.builders.children import child_metadata, child_namespace
from eb_operator.operator.builders.storage import Target, child_name

Obj = Mapping[str, Any]

#: The stager image's command (``eb_operator.stager``).
STAGER_COMMAND = ("eb-stager",)
STAGE_MOUNT = "/stage"
#: The last init container of a Pod created before its offered start (:func:`wait_container`):
#: init containers run in order, so once it runs, staging is done (``lifecycle.observe_pod``).
WAIT_CONTAINER = "wait-start"

SIMPLE_DATA = Kind.SIMPLE_DATA
S3_DATA = Kind.S3_DATA
RUCIO_DATA = Kind.RUCIO_DATA
IVOA_DATA = Kind.IVOA_DATA

RESTRICTED: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}


def data_kind(type_uri: str) -> Kind | None:
    """The kind of a data resource, for any dialect's type URI."""
    return kind_of(type_uri, Group.DATA)


def endpoint_index(url: str, policy: PlatformPolicy) -> int | None:
    """Index of the platform's data endpoint for ``url``."""
    found = policy.data_endpoint(url)
    return None if found is None else policy.data_endpoints.index(found)


def secret_source(endpoint: DataEndpoint, execution: Obj) -> str:
    """The namespace an endpoint's Secret is read from: the one the platform names, else the
    Execution's (where the request was made)."""
    return endpoint.secret_namespace or str(execution["metadata"]["namespace"])


def credential_secret(endpoint: DataEndpoint, index: int, execution: Obj) -> str | None:
    """The name of the Secret a stager reads an endpoint's credentials from, in the namespace the
    session runs in: the platform's own Secret when it lives there, else the copy the operator
    makes (:func:`build_credential_copy`)."""
    if endpoint.secret_name is None:
        return None
    if secret_source(endpoint, execution) == child_namespace(execution):
        return endpoint.secret_name
    return child_name(execution["metadata"]["name"], f"credentials-{index}")


def build_credential_copy(execution: Obj, name: str, source: Obj) -> dict[str, Any]:
    """A copy of an endpoint's Secret where the session runs, deleted with the session."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": child_metadata(execution, name),
        "type": str(source.get("type") or "Opaque"),
        "data": dict(source.get("data") or {}),
    }


def ivoa_access_url(resource: Obj) -> str | None:
    block = resource.get("ivoa") or {}
    for holder in ("datalink", "obscore"):
        url = (block.get(holder) or {}).get("access_url")
        if url and str(url).startswith(("http://", "https://")):
            return str(url)
    return None


def stage_container(
    name: str,
    image: str,
    args: Sequence[str],
    volume: str,
    *,
    resources: Mapping[str, Any],
    pull_policy: str,
    secret: str | None = None,
) -> dict[str, Any]:
    """One init container: the stager with ``args``, ``volume`` at /stage."""
    out: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": list(STAGER_COMMAND),
        "args": list(args),
    }
    if secret is not None:
        out["envFrom"] = [{"secretRef": {"name": secret}}]
    out |= {
        "resources": {k: dict(v) for k, v in resources.items()},
        "securityContext": dict(RESTRICTED),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": volume, "mountPath": STAGE_MOUNT}],
    }
    return out


#: The wait: a loop, since one sleep may end early (a signal) and the start must not be anticipated.
WAIT_SOURCE = """\
import sys, time
start = int(sys.argv[1])
while (left := start - time.time()) > 0:
    time.sleep(min(left, 30.0))
print(f"the offered start {sys.argv[2]} was reached")
"""


def wait_container(
    image: str, start: int, start_text: str, *, resources: Mapping[str, Any], pull_policy: str
) -> dict[str, Any]:
    """The last init container of a Pod created before ``start`` (epoch seconds): it ends at the
    start, so the main container cannot begin earlier. ``image``: any image with a python3 (the
    stager's, which the node has or pulls anyway)."""
    return {
        "name": WAIT_CONTAINER,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["python3", "-c", WAIT_SOURCE],
        "args": [str(start), start_text],
        "resources": {k: dict(v) for k, v in resources.items()},
        "securityContext": dict(RESTRICTED),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _dest(target: Target) -> str:
    return f"{STAGE_MOUNT}/{target.sub_path}" if target.sub_path else STAGE_MOUNT


def build_stage_containers(
    execution: Obj,
    request: Obj,
    targets: Sequence[Target],
    policy: PlatformPolicy,
    resources: Mapping[str, Any],
    pull_policy: str,
) -> list[dict[str, Any]]:
    """The init containers that stage every data resource of ``request`` into its target."""
    data = (request.get("resources") or {}).get("data") or []
    out = []
    for target in targets:
        resource = data[target.index]
        kind = data_kind(str(resource.get("type", "")))
        name = f"stage-{target.index}"
        dest = _dest(target)
        common: dict[str, Any] = {"resources": resources, "pull_policy": pull_policy}
        if kind in (SIMPLE_DATA, IVOA_DATA):
            url = resource.get("location") if kind == SIMPLE_DATA else ivoa_access_url(resource)
            if not url:
                raise ValueError(f"data resource {target.index} has no HTTP(S) location")
            out.append(
                stage_container(name, policy.images.http_stager, ["http", url, dest], target.volume, **common)
            )
        elif kind == S3_DATA:
            endpoint = str(resource.get("endpoint") or "")
            at = endpoint_index(endpoint, policy)
            if at is None:
                raise ValueError(f"the platform has no data endpoint {endpoint}")
            configured = policy.data_endpoints[at]
            secret = credential_secret(configured, at, execution)
            style = (
                []
                if configured.addressing_style == "path"
                else ["--addressing-style", configured.addressing_style]
            )
            args = [
                "s3",
                *style,
                endpoint,
                str(resource.get("bucket") or ""),
                str(resource.get("object") or ""),
                dest,
            ]
            out.append(
                stage_container(name, policy.images.s3_stager, args, target.volume, secret=secret, **common)
            )
        elif kind == RUCIO_DATA:
            if policy.images.rucio_stager is None:
                raise ValueError("this platform does not stage Rucio data")
            endpoint = str(resource.get("endpoint") or "")
            at = endpoint_index(endpoint, policy)
            secret = credential_secret(policy.data_endpoints[at], at, execution) if at is not None else None
            did = f"{resource.get('domain') or ''}:{resource.get('object') or ''}"
            out.append(
                stage_container(
                    name,
                    policy.images.rucio_stager,
                    ["rucio", endpoint, did, dest],
                    target.volume,
                    secret=secret,
                    **common,
                )
            )
        else:
            raise ValueError(f"data resource {target.index}: the broker cannot stage {resource.get('type')}")
    return out


def credential_copies(execution: Obj, request: Obj, policy: PlatformPolicy) -> list[tuple[DataEndpoint, str]]:
    """The endpoint Secrets to copy where the session runs first: (endpoint, copy's name)."""
    namespace = child_namespace(execution)
    wanted: dict[int, tuple[DataEndpoint, str]] = {}
    for resource in (request.get("resources") or {}).get("data") or []:
        if data_kind(str(resource.get("type", ""))) not in (S3_DATA, RUCIO_DATA):
            continue
        at = endpoint_index(str(resource.get("endpoint") or ""), policy)
        if at is None:
            continue
        endpoint = policy.data_endpoints[at]
        if endpoint.secret_name is not None and secret_source(endpoint, execution) != namespace:
            name = credential_secret(endpoint, at, execution)
            assert name is not None
            wanted[at] = (endpoint, name)
    return [wanted[k] for k in sorted(wanted)]
