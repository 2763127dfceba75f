"""Jupyter notebook sessions: pure builders of the notebook server's container, its token Secret,
its Service and the access URL (digest §3.3, §9 item 30).

A notebook executable becomes a Pod running ``jupyter-server`` from the platform's
``images.notebook`` on port 8888, with the notebook (``location``) staged by an init container
into the server's root directory (``/home/eb/work``). The server's token is random, kept in a
Secret owned by the Execution (the Pod reads it as ``JUPYTER_TOKEN``). A readiness probe on
``/api`` (answered without a token) tells when the server answers: the session is then READY
and its status carries ``access: [{status: ACTIVE, protocol: HTTP, locations: [URL?token=…]}]``,
which the REST session document shows under ``executable.access``. Two locations: the ClusterIP
Service named after the Execution (a stable address; the cluster has no DNS to rely on), and the
Pod's own address (reachable from the nodes); each ``http://<ip>:8888/?token=…``, as
``jupyter server list`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from eb_operator.cluster.convert import LABEL_EXECUTION_UID
from eb_operator.model.platform import PlatformPolicy
from eb_operator.operator.builders.children import child_metadata
from eb_operator.operator.builders.endpoints import ENV_BASE_PATH, NOTEBOOK_PORT
from eb_operator.operator.builders.staging import stage_container
from eb_operator.operator.builders.storage import child_name

Obj = Mapping[str, Any]

#: Label of Pods whose main container is a server the user connects to (a notebook): the phase
#: machine reads it back (``lifecycle.observe_pod``).
LABEL_INTERACTIVE = "executionbroker.ivoa.net/interactive"
PORT = NOTEBOOK_PORT
WORK_DIR = "/home/eb/work"
WORK_VOLUME = "notebook-work"
TOKEN_KEY = "token"


def token_secret_name(execution_name: str) -> str:
    return child_name(execution_name, "notebook")


def service_name(execution_name: str) -> str:
    return child_name(execution_name, "notebook")


def build_token_secret(execution: Obj, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": child_metadata(execution, token_secret_name(execution["metadata"]["name"])),
        "type": "Opaque",
        "stringData": {TOKEN_KEY: token},
    }


def build_service(execution: Obj) -> dict[str, Any]:
    """A ClusterIP Service in front of the notebook server, selecting the Execution's Pod."""
    meta = execution["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(execution, service_name(meta["name"])),
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_EXECUTION_UID: meta["uid"]},
            "ports": [{"name": "http", "port": PORT, "targetPort": PORT, "protocol": "TCP"}],
        },
    }


def server_process(
    executable: Obj, policy: PlatformPolicy, execution_name: str, base_path: str = "/"
) -> dict[str, Any]:
    """The main container's process: jupyter-server with its token from the Secret, serving under
    ``base_path`` (its route's path; ``/`` without one) and answering ``<base_path>api`` when ready."""
    args = [
        "--ip=0.0.0.0",
        f"--port={PORT}",
        "--no-browser",
        f"--ServerApp.root_dir={WORK_DIR}",
        "--ServerApp.allow_remote_access=True",
    ]
    if base_path != "/":
        args.append(f"--ServerApp.base_url={base_path}")
    return {
        "image": policy.images.notebook,
        "command": ["jupyter-server"],
        "args": args,
        "workingDir": WORK_DIR,
        "env": [
            {
                "name": "JUPYTER_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": token_secret_name(execution_name), "key": TOKEN_KEY}},
            },
            {"name": "EB_NOTEBOOK_URL", "value": str(executable.get("location") or "")},
            {"name": ENV_BASE_PATH, "value": base_path},
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        # READY is the probe's first success: probed every second (the kubelet's least), a session
        # is READY at most a second after its server answers
        "readinessProbe": {
            "httpGet": {"path": f"{base_path}api", "port": PORT},
            "periodSeconds": 1,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
    }


def work_volume() -> dict[str, Any]:
    return {"name": WORK_VOLUME, "emptyDir": {}}


def work_mount() -> dict[str, Any]:
    return {"name": WORK_VOLUME, "mountPath": WORK_DIR}


def fetch_container(
    executable: Obj, policy: PlatformPolicy, resources: Mapping[str, Any], pull_policy: str
) -> dict[str, Any] | None:
    """The init container that stages the notebook into the server's root directory."""
    location = executable.get("location")
    if not location:
        return None
    return stage_container(
        "stage-notebook",
        policy.images.http_stager,
        ["http", str(location), "/stage"],
        WORK_VOLUME,
        resources=resources,
        pull_policy=pull_policy,
    )


def access_url(address: str, token: str, base_path: str = "/") -> str:
    """An in-cluster URL of the server with its token, as ``jupyter server list`` prints it (the
    staged notebook is in the server's root directory)."""
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{PORT}{base_path}?token={quote(token)}"
