"""A whole broker on the real cluster, for the REST tests and ``benchmarks/rest.py``:

* the CRDs from ``crds/``;
* a platform of its own: ``nodes`` kwok nodes that nothing else uses, an ``ExecutionPlatform``
  selecting them, offers that live ``offer_ttl`` seconds;
* the operator (``eb-operator operator``) as a subprocess watching one namespace;
* the API (``create_app``) served by uvicorn on 127.0.0.1 in a thread (or, for benchmarks, as
  its own process, as it runs in production), with static tokens for alice and bob and
  TokenReview on; anonymous access off;
* the session key operator and API share (the gate's; routes are tested in
  tests/integration/sessions).

Everything it creates it deletes again when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from tests.support.child_process import stop
from tests.support.kube import (
    KWOK_TOLERATION,
    REPO,
    Kubectl,
    kwok_node,
    namespace_manifest,
    unique_name,
    wait_for,
    wait_nodes_usable,
)
from tests.support.reservations import with_offers

from eb_operator.api import ApiSettings, create_app
from eb_operator.model.tenancy import owner_namespace
from eb_operator.operator.builders.namespace import managed_selector

GROUP = "executionbroker.ivoa.net"
TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789"}
#: The API's limits on bodies here: small enough that each limit can be met by a body under the others.
BODY_LIMITS: dict[str, int] = {
    "max_body_bytes": 64 * 1024,
    "max_stored_bytes": 128 * 1024,
    "max_string_chars": 8192,
    "yaml_max_nodes": 10_000,
}
SESSION_KEY = "api-integration-session-key-0123456789abcdef"


#: No limits per owner: the REST tests exercise the interface, not the platform's sharing policy
#: (tests/integration/sharing/ does, with platforms of their own).
NO_LIMITS: dict[str, Any] = {"ownerLimits": {}}


@dataclass(frozen=True)
class Shape:
    """The platform under test. ``sharing``: the ExecutionPlatform's ``sharing`` policy."""

    nodes: int = 2
    cores: int = 8
    memory_gib: int = 32
    gpus: int = 2
    offer_ttl: int = 30
    slot_seconds: int = 300
    horizon_seconds: int = 6 * 3600
    sharing: Mapping[str, Any] = field(default_factory=lambda: dict(NO_LIMITS))


@dataclass
class Broker:
    """The running broker and what a test needs to talk to it."""

    url: str
    namespace: str
    platform: str
    nodes: list[str]
    kube: Kubectl
    operator_log: Path
    shape: Shape
    tokens: dict[str, str] = field(default_factory=lambda: dict(TOKENS))
    prefix: str = "eb-"  # of the owner namespaces REST sessions run in

    def owner_namespace(self, user: str) -> str:
        """Where ``user``'s sessions run (their Pods, Services, Secrets)."""
        return owner_namespace(user, self.prefix)

    def client(self, user: str | None = "alice", *, follow: bool = False) -> httpx.Client:
        """An HTTP client authenticated as ``user`` (None: no token)."""
        h = {"Authorization": f"Bearer {self.tokens[user]}"} if user is not None else {}
        return httpx.Client(base_url=self.url, headers=h, timeout=60, follow_redirects=follow)

    def executions(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kube.get("executions", None, self.namespace)["items"]
        return items

    def offersets(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kube.get("offersets", None, self.namespace)["items"]
        return items

    def held(self) -> list[Mapping[str, Any]]:
        """The Executions and the offers held in OfferSet statuses (``with_offers``), the sets
        read first (see ``with_offers``)."""
        sets = self.offersets()
        return with_offers(self.executions(), sets)

    def cleanup(self) -> None:
        """Delete every OfferSet and Execution in the namespace (their capacity with them)."""
        for kind in ("offersets", "executions"):
            self.kube.run("delete", kind, "--all", "-n", self.namespace, "--wait=false", check=False)
        wait_for(
            lambda: not self.executions() and not self.offersets(),
            60,
            "the OfferSets and Executions to be gone",
            interval=0.2,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def platform_manifest(name: str, pool: str, shape: Shape, prefix: str = "eb-") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ExecutionPlatform",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {f"{GROUP}/pool": pool},
            "toleration": {k: v for k, v in KWOK_TOLERATION.items() if k != "operator"},
            "slotSeconds": shape.slot_seconds,
            "horizonSeconds": shape.horizon_seconds,
            "offerTtlSeconds": shape.offer_ttl,
            "maxOffers": 4,
            "preparationSeconds": 30,
            "releaseSeconds": 60,
            "gpuFlavours": [{"name": "ad104", "resourceName": "nvidia.com/gpu", "product": "nvidia-ad104"}],
            "sharing": dict(shape.sharing),
            "namespaces": {"prefix": prefix, "emptyGraceSeconds": 30},
        },
    }


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the calling process owns the signals
        pass


@contextlib.contextmanager
def serve_api(settings: ApiSettings) -> Iterator[str]:
    """The REST service on a free 127.0.0.1 port, in a thread, until the block ends; yields its URL."""
    port = free_port()
    # The stdlib loop, not uvloop: uvloop closing a loop in a thread while its SSL transports to
    # the API server are still shutting down raises EBUSY at random, failing the test's teardown.
    # The deployed API keeps uvloop (one loop per process, closed only on exit).
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="asyncio"
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/healthz", timeout=5).status_code == 200, 60, "the API to serve")
        wait_for(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, 60, "the API to be ready")
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


def _settings_env(settings: ApiSettings) -> dict[str, str]:
    """``settings`` as the ``EB_API_*`` variables ``eb-operator api`` reads."""
    out = {}
    for key, value in settings.model_dump(exclude_defaults=True).items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        out[f"EB_API_{key.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return out


@contextlib.contextmanager
def api_process(
    settings: ApiSettings,
    log_path: Path,
    port: int | None = None,
    started: list[subprocess.Popen[bytes]] | None = None,
) -> Iterator[str]:
    """``eb-operator api`` on 127.0.0.1 (``port``, else a free one) as a process of its own (a
    benchmark's clients then do not share the service's interpreter lock); yields its URL.
    ``started``: the process is appended there (a test that kills it)."""
    port = port or free_port()
    env = {**os.environ, **_settings_env(settings)}
    argv = [sys.executable, "-m", "eb_operator.cli", "api", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("a") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if started is not None:
        started.append(proc)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"eb-operator api exited with {proc.returncode}; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        return False

    try:
        wait_for(ready, 60, f"the API process to be ready (log: {log_path})", interval=0.2)
        yield url
    finally:
        stop(proc)


@contextlib.contextmanager
def operator_process(
    kube: Kubectl, namespace: str, platform: str, log_path: Path, extra: Sequence[str] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """``eb-operator operator`` for one namespace and platform (the REST API's: its sessions run
    in owner namespaces; ``extra``: more of its flags), stopped (SIGTERM) when the block ends."""
    key_file = log_path.with_name(f"{log_path.stem}-session-key")
    key_file.write_text(SESSION_KEY)
    env = {
        **os.environ,
        "KUBECONFIG": kube.kubeconfig,
        "EB_LOG_LEVEL": os.environ.get("EB_LOG_LEVEL", "INFO"),
        "EB_SESSION_KEY_FILE": str(key_file),
        "EB_SESSIONS_NAMESPACE": namespace,
    }
    argv = [sys.executable, "-m", "eb_operator.cli", "operator", "--namespace", namespace]
    argv += ["--platform", platform, "--no-peering", "--liveness", "", *extra]
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    try:
        yield proc
    finally:
        stop(proc)


def token_lines(groups: Mapping[str, Sequence[str]]) -> tuple[dict[str, str], str]:
    """Static tokens (``TOKENS``, and one per user of ``groups``) and their CSV lines, each user
    with its groups (the column TokenReview's ``user.groups`` stands for)."""
    tokens = {**TOKENS, **{u: f"{u}-token-0123456789" for u in groups}}
    lines = []
    for user, token in tokens.items():
        member = ",".join(groups.get(user, ()))
        lines.append(f'{token},{user},{user},"{member}"' if member else f"{token},{user}")
    return tokens, "\n".join(lines)


@contextlib.contextmanager
def broker_stack(
    kube: Kubectl,
    log_path: Path,
    shape: Shape = Shape(),
    answer_timeout: float = 20,
    *,
    api_in_process: bool = True,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[Broker]:
    """A broker on a platform of its own; ``groups``: more users (user -> groups), static tokens
    ``<user>-token-0123456789``."""
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kube.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    tag = unique_name("eb-api", max_len=20)
    namespace, platform, pool = tag, tag, tag
    prefix = f"t{tag[-6:]}-"  # owner namespaces of this stack only
    nodes = [f"{tag}-n{i}" for i in range(shape.nodes)]
    kube.create(namespace_manifest(namespace))
    try:
        for start in range(0, len(nodes), 200):
            kube.apply(
                *(
                    kwok_node(
                        n,
                        cpu=str(shape.cores),
                        memory=f"{shape.memory_gib}Gi",
                        gpus=shape.gpus,
                        labels={f"{GROUP}/pool": pool},
                    )
                    for n in nodes[start : start + 200]
                )
            )
        kube.apply(platform_manifest(platform, pool, shape, prefix))
        with operator_process(kube, namespace, platform, log_path):
            wait_for(
                lambda: (kube.get("executionplatforms", platform).get("status") or {}).get("valid") is True,
                120,
                f"the operator to take the platform (log: {log_path})",
            )
            wait_nodes_usable(kube, f"{GROUP}/pool={pool}", len(nodes))
            tokens, lines = token_lines(groups or {})
            settings = ApiSettings(
                namespace=namespace,
                kubeconfig=kube.kubeconfig,
                static_tokens=lines,
                allow_anonymous=False,
                answer_timeout_seconds=answer_timeout,
                **BODY_LIMITS,
                session_key=SESSION_KEY,
            )
            api_log = log_path.with_name(f"{log_path.stem}-api.log")
            serving = serve_api(settings) if api_in_process else api_process(settings, api_log)
            with serving as url:
                yield Broker(url, namespace, platform, nodes, kube, log_path, shape, tokens, prefix)
    finally:
        for args in (
            ("delete", "namespace", namespace, "--wait=false", "--ignore-not-found"),
            ("delete", "namespace", "-l", managed_selector(platform), "--wait=false"),
            ("delete", "executionplatform", platform, "--wait=false", "--ignore-not-found"),
            ("delete", "nodes", "-l", f"{GROUP}/pool={pool}", "--wait=false"),
        ):
            # a busy API server: leave it rather than hide the test's own result
            with contextlib.suppress(subprocess.TimeoutExpired):
                kube.run(*args, check=False, timeout=600)
