"""Builders for IVOA wire documents (plain dicts, ivoa-std dialect unless named ``c26_*``), so that
model tests read like the request they describe:

    doc = request(docker(), compute(cores=(4, 8), memory=16), duration="PT1H")

Every builder takes ``**fields`` for anything else the document should carry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

STD = "https://www.purl.org/ivoa.net/EB/schema/types/"
DOCKER = STD + "executables/docker-container-1.0"
SINGULARITY = STD + "executables/singularity-container-1.0"
JUPYTER = STD + "executables/jupyter-notebook-1.0"
COMPUTE = STD + "resources/compute/simple-compute-resource-1.0"
STORAGE = STD + "resources/storage/simple-storage-resource-1.0"
SIMPLE_DATA = STD + "resources/data/simple-data-resource-1.0"
S3_DATA = STD + "resources/data/S3-data-resource-1.0"
RUCIO_DATA = STD + "resources/data/Rucio-data-resource-1.0"

C26 = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/"
C26_DOCKER = C26 + "executable/docker-container.yaml"
C26_JUPYTER = C26 + "executable/jupyter-notebook.yaml"
C26_COMPUTE = C26 + "compute/simple-compute-resource.yaml"
C26_VOLUME = C26 + "volume/simple-volume-mount.yaml"
C26_STORAGE = C26 + "storage/simple-storage-resource.yaml"
C26_SIMPLE_DATA = C26 + "data/simple-data-resource.yaml"
C26_S3_DATA = C26 + "data/S3-data-resource.yaml"
C26_RUCIO_DATA = C26 + "data/rucio-data-resource.yaml"
C26_IVOA_DATA = C26 + "data/ivoa-data-resource.yaml"

C105 = "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/"

IMAGE = "ghcr.io/ivoa/oligia-webtop:ubuntu-2022.01.13"
NOTEBOOK = "https://example.org/demo.ipynb"
S3_ENDPOINT = "https://s3.example.org/echo"

Range = int | tuple[int | None, int | None] | None


def _range(value: Range) -> dict[str, Any]:
    """``4`` -> ``{min: 4}``; ``(4, 8)`` -> ``{min: 4, max: 8}``; ``(None, 8)`` -> ``{max: 8}``."""
    if value is None:
        return {}
    low, high = (value, None) if isinstance(value, int) else value
    return {k: v for k, v in (("min", low), ("max", high)) if v is not None}


def docker(image: str | None = IMAGE, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": DOCKER, "name": "container"}
    if image is not None:
        doc["image"] = {"locations": [image]}
    return {**doc, **fields}


def notebook(location: str = NOTEBOOK, **fields: Any) -> dict[str, Any]:
    return {"type": JUPYTER, "name": "notebook", "location": location, **fields}


def singularity(location: str = "https://example.org/image.sif", **fields: Any) -> dict[str, Any]:
    return {"type": SINGULARITY, "name": "container", "location": location, **fields}


def compute(
    cores: Range = None, memory: Range = None, *, name: str = "compute-1", **fields: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": COMPUTE, "name": name}
    if cores is not None:
        doc["cores"] = {"requested": _range(cores)}
    if memory is not None:
        doc["memory"] = {"requested": _range(memory)}
    return {**doc, **fields}


def volume(resource: str, path: str, mode: str = "READONLY", **fields: Any) -> dict[str, Any]:
    return {"name": f"mount-{resource}", "resource": resource, "path": path, "mode": mode, **fields}


def storage(name: str, size: Range = None, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": STORAGE, "name": name}
    if size is not None:
        doc["size"] = {"requested": _range(size)}
    return {**doc, **fields}


def simple_data(name: str, location: str = "https://example.org/data.fits", **fields: Any) -> dict[str, Any]:
    return {"type": SIMPLE_DATA, "name": name, "location": location, **fields}


def s3_data(
    name: str, endpoint: str = S3_ENDPOINT, bucket: str = "example-data", **fields: Any
) -> dict[str, Any]:
    return {"type": S3_DATA, "name": name, "endpoint": endpoint, "bucket": bucket, **fields}


def rucio_data(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": RUCIO_DATA,
        "name": name,
        "endpoint": "https://rucio.example.org",
        "object": "obj",
        **fields,
    }


def request(
    executable: dict[str, Any] | None = None,
    *computes: dict[str, Any],
    storage: list[dict[str, Any]] | None = None,
    data: list[dict[str, Any]] | None = None,
    duration: str | None = None,
    start: list[str] | None = None,
    name: str | None = "test-request",
    **fields: Any,
) -> dict[str, Any]:
    """An OfferSetRequest; ``executable`` defaults to a Docker container."""
    doc: dict[str, Any] = {}
    if name is not None:
        doc["name"] = name
    doc["executable"] = executable if executable is not None else docker()
    resources: dict[str, Any] = {}
    if computes:
        resources["compute"] = list(computes)
    if storage is not None:
        resources["storage"] = storage
    if data is not None:
        resources["data"] = data
    if resources:
        doc["resources"] = resources
    requested = {k: v for k, v in (("duration", duration), ("start", start)) if v is not None}
    if requested:
        doc["schedule"] = {"requested": requested}
    return {**doc, **fields}


#: the start of :func:`execution_object`'s reservation
SESSION_START = 1893492000  # 2030-01-01T10:00:00Z


#: The owner reference the broker puts on the children of :func:`execution_object`'s Execution.
EXECUTION_OWNER = {
    "apiVersion": "executionbroker.ivoa.net/v1alpha1",
    "kind": "Execution",
    "name": "job-1",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": False,
}
#: A container's securityContext under the restricted Pod Security profile, as the broker writes it.
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}


def execution_object(
    req: dict[str, Any],
    *,
    namespace: str = "science",
    node: str = "node-a",
    cores: int = 2,
    memory_gib: int = 4,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """An Execution ``job-1`` (uid ``uid-1``) holding ``req`` with a one-hour reservation from
    :data:`SESSION_START` (30 s to prepare, 60 s to release); ``**spec``: more of its spec."""
    t0 = SESSION_START
    return {
        "apiVersion": "executionbroker.ivoa.net/v1alpha1",
        "metadata": {"name": "job-1", "namespace": namespace, "uid": "uid-1"},
        "spec": {
            **spec,
            "request": req,
            "reservation": {
                "node": node,
                "prepareStart": _instant(t0 - 30),
                "start": _instant(t0),
                "duration": "PT1H",
                "releaseEnd": _instant(t0 + 3660),
                "cores": cores,
                "memoryGiB": memory_gib,
            },
        },
        **({"status": status} if status else {}),
    }


def _instant(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
