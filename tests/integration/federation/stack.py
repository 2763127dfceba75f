"""Several whole brokers on the one real cluster, federated: for the federation tests and
``benchmarks/federation.py``.

Each :class:`Site` is a broker of its own: a namespace, an ExecutionPlatform selecting nodes no
other site uses (kwok nodes of a pool of its own, or the cluster's real node ``eb-real-node``),
the operator (``eb-operator operator``, standalone: no kopf peering, so sites never pause one
another; its BrokerPeers are those of its own namespace) and the REST API, each a process of
its own on 127.0.0.1 that a test may stop, kill or start again on the same port. The API knows
static tokens for alice and for each other site's broker (``broker-<name>``), which is how one
site's BrokerPeer authenticates at another.

:func:`peer` makes a BrokerPeer (and the Secret with its token) and waits until its probe says
it is reachable. Everything made here is deleted when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.integration.api.stack import (
    BODY_LIMITS,
    GROUP,
    Shape,
    api_process,
    free_port,
    operator_process,
    platform_manifest,
)
from tests.support.child_process import sigkill
from tests.support.kube import (
    REAL_NODE,
    REPO,
    Kubectl,
    kwok_node,
    namespace_manifest,
    unique_name,
    wait_for,
    wait_nodes_usable,
)

from eb_operator.api import ApiSettings
from eb_operator.operator.builders.namespace import managed_selector

API = f"{GROUP}/v1alpha1"
ALICE = "alice-federation-token-0123"
#: Platform settings of a site: offers start soon and lapse soon, sessions end soon after.
FAST = {"slotSeconds": 5, "preparationSeconds": 2, "releaseSeconds": 2, "offerTtlSeconds": 120}


_TOKENS: dict[str, str] = {}


def broker_token(name: str) -> str:
    """The token site ``name``'s broker presents to the others (each knows it as broker-<name>);
    random per test run, so that a test can look for it where it must never be."""
    return _TOKENS.setdefault(name, f"broker-{name}-{secrets.token_hex(16)}")


@dataclass(frozen=True)
class SiteSpec:
    name: str
    nodes: int = 2  # kwok nodes of its own; 0 with real=True: the cluster's real node instead
    cores: int = 8
    memory_gib: int = 32
    real: bool = False
    peer_lost_seconds: float = 300
    peer_poll_max_seconds: float = 5
    answer_timeout: float = 20
    max_offers: int = 3


@dataclass
class Site:
    spec: SiteSpec
    kube: Kubectl
    broker_id: str
    namespace: str
    platform: str
    nodes: list[str]
    log_dir: Path
    port: int
    settings: ApiSettings
    operator: subprocess.Popen[bytes] | None = None
    apis: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _api_block: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def operator_log(self) -> Path:
        return self.log_dir / f"{self.name}-operator.log"

    def client(self, token: str = ALICE, *, follow: bool = False) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=60,
            follow_redirects=follow,
        )

    # -- the API process -------------------------------------------------------------------

    def start_api(self) -> None:
        log = self.log_dir / f"{self.name}-api.log"
        self._api_block.enter_context(api_process(self.settings, log, port=self.port, started=self.apis))

    def kill_api(self) -> None:
        """A crash of the whole REST service of this site (its one process)."""
        proc = self.apis[-1]
        sigkill(proc)
        self._api_block.close()
        self._api_block = contextlib.ExitStack()

    # -- the operator process ----------------------------------------------------------------

    def pause_operator(self) -> None:
        """The operator stops deciding anything (SIGSTOP), as a hung one would."""
        assert self.operator is not None
        self.operator.send_signal(signal.SIGSTOP)

    def resume_operator(self) -> None:
        assert self.operator is not None
        self.operator.send_signal(signal.SIGCONT)

    # -- reading -----------------------------------------------------------------------------

    def get(self, kind: str, name: str | None = None) -> Any:
        return self.kube.get(kind, name, self.namespace)

    def items(self, kind: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get(kind)["items"]
        return found

    def tail(self, lines: int = 40) -> str:
        if not self.operator_log.exists():
            return ""
        return "\n".join(self.operator_log.read_text(errors="replace").splitlines()[-lines:])


def _platform(site: SiteSpec, name: str, pool: str) -> dict[str, Any]:
    shape = Shape(nodes=site.nodes, cores=site.cores, memory_gib=site.memory_gib, gpus=0, offer_ttl=120)
    prefix = f"f{name[-6:]}{site.name[:6]}-"  # owner namespaces of its own (name ends in a uuid)
    doc = platform_manifest(name, pool, shape, prefix=prefix)
    doc["spec"] |= FAST | {"maxOffers": site.max_offers, "horizonSeconds": 3600, "gpuFlavours": []}
    if site.real:  # the cluster's one real node: a real kubelet runs real containers
        doc["spec"]["nodeSelector"] = {"kubernetes.io/hostname": REAL_NODE}
        doc["spec"].pop("toleration", None)
    return doc


@contextlib.contextmanager
def federation(kube: Kubectl, log_dir: Path, specs: Sequence[SiteSpec]) -> Iterator[dict[str, Site]]:
    """The sites of ``specs``, each running; no BrokerPeer yet (see :func:`peer`)."""
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kube.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    tag = unique_name("eb-fed", max_len=16)
    sites: dict[str, Site] = {}
    tokens = "\n".join([f"{ALICE},alice", *(f"{broker_token(s.name)},broker-{s.name}" for s in specs)])
    with contextlib.ExitStack() as running:
        try:
            for spec in specs:
                name = f"{tag}-{spec.name}"
                kube.create(namespace_manifest(name))
                nodes = [f"{name}-n{i}" for i in range(0 if spec.real else spec.nodes)]
                if nodes:
                    kube.apply(
                        *(
                            kwok_node(
                                n,
                                cpu=str(spec.cores),
                                memory=f"{spec.memory_gib}Gi",
                                labels={f"{GROUP}/pool": name},
                            )
                            for n in nodes
                        )
                    )
                kube.apply(_platform(spec, name, name))
                settings = ApiSettings(
                    namespace=name,
                    kubeconfig=kube.kubeconfig,
                    static_tokens=tokens,
                    allow_anonymous=False,
                    answer_timeout_seconds=spec.answer_timeout,
                    broker_id=f"{spec.name}.{tag}",
                    **BODY_LIMITS,
                )
                sites[spec.name] = Site(
                    spec, kube, f"{spec.name}.{tag}", name, name, nodes, log_dir, free_port(), settings
                )
            for site in sites.values():
                extra = [
                    "--peers-namespace", site.namespace,
                    "--broker-id", site.broker_id,
                    "--peer-lost-seconds", str(site.spec.peer_lost_seconds),
                    "--peer-poll-max-seconds", str(site.spec.peer_poll_max_seconds),
                ]  # fmt: skip
                site.operator = running.enter_context(
                    operator_process(kube, site.namespace, site.platform, site.operator_log, extra)
                )
            for site in sites.values():
                wait_for(
                    lambda site=site: (kube.get("executionplatforms", site.platform).get("status") or {}).get(
                        "valid"
                    ),
                    120,
                    f"the operator of site {site.name} to take its platform (log: {site.operator_log})",
                )
                if site.nodes:
                    wait_nodes_usable(kube, f"{GROUP}/pool={site.namespace}", len(site.nodes))
                site.start_api()
                running.callback(lambda site=site: site._api_block.close())  # the newest API process
            yield sites
        finally:
            for site in sites.values():
                if site.operator is not None and site.operator.poll() is None:
                    site.operator.send_signal(signal.SIGCONT)  # a paused one cannot stop
            running.close()
            for site in sites.values():
                for args in (
                    ("delete", "namespace", site.namespace, "--wait=false", "--ignore-not-found"),
                    ("delete", "namespace", "-l", managed_selector(site.platform), "--wait=false"),
                    ("delete", "executionplatform", site.platform, "--wait=false", "--ignore-not-found"),
                    ("delete", "nodes", "-l", f"{GROUP}/pool={site.namespace}", "--wait=false"),
                ):
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        kube.run(*args, check=False, timeout=600)


def peer(
    at: Site,
    to: Site,
    *,
    dialect: str = "ivoa-std",
    deadline: float = 5,
    preference: int = 0,
    name: str | None = None,
    token: str | None = None,
    wait: bool = True,
) -> dict[str, Any]:
    """A BrokerPeer at site ``at`` naming site ``to`` (and the Secret with ``at``'s token for
    ``to``); returns it once probed reachable (``wait``)."""
    name = name or to.name
    secret = f"peer-{name}-token"
    at.kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": at.namespace},
            "stringData": {"token": token or broker_token(at.name)},
        },
        {
            "apiVersion": API,
            "kind": "BrokerPeer",
            "metadata": {"name": name, "namespace": at.namespace},
            "spec": {
                "url": to.url,
                "dialect": dialect,
                "credentials": {"secretName": secret},
                "deadlineSeconds": deadline,
                "preference": preference,
            },
        },
    )
    if not wait:
        return dict(at.get("brokerpeer", name))
    return dict(
        wait_for(
            lambda: _reachable(at, name),
            60,
            f"BrokerPeer {name} at site {at.name} to be probed reachable (log: {at.operator_log})",
        )
    )


def _reachable(at: Site, name: str) -> Mapping[str, Any] | None:
    obj = at.get("brokerpeer", name)
    return obj if (obj.get("status") or {}).get("reachable") is True else None


def unpeer(at: Site, name: str) -> None:
    at.kube.run("delete", "brokerpeer", name, "-n", at.namespace, "--ignore-not-found")
