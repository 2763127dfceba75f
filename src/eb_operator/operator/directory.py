"""The peer brokers this operator may ask: its BrokerPeers, each with a client, probed, reported.

Every ``peer_refresh_seconds`` the BrokerPeers of the peer namespace are listed (a handful of
objects: a LIST is cheaper than a watch to keep) and their tokens read from their Secrets; a
peer whose url, dialect, token or deadline changed gets a new client and is probed at once, the
others every ``peer_probe_seconds``. Each probe is written to the BrokerPeer's status
(reachable, latency, last error), which is also what decides whether the peer is asked: only a
peer whose last probe found it usable is.

A token is read from its Secret into the peer's client and nowhere else: not into a status, a
log line, an Event or an answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from eb_operator.cluster import objects
from eb_operator.cluster.crs import BROKERPEERS, ApiError, NotFound
from eb_operator.model.crds import BrokerPeerSpec
from eb_operator.model.times import format_instant
from eb_operator.model.types import Dialect
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.peers import PeerClient, Probe
from eb_operator.peers.documents import check_base_url, clean_text

log = logging.getLogger("eb_operator.operator")


@dataclass
class Peer:
    name: str
    generation: int = 0
    spec: BrokerPeerSpec | None = None
    client: PeerClient | None = None
    made_for: tuple[Any, ...] = ()  # what the client was made from (url, dialect, token digest, deadline)
    probe: Probe | None = None
    probed_at: float = 0.0  # monotonic; 0: probe at the next refresh
    status: dict[str, Any] = field(default_factory=dict)  # as last read or written

    @property
    def ready(self) -> bool:
        return self.client is not None and self.probe is not None and self.probe.reachable

    @property
    def preference(self) -> int:
        return self.spec.preference if self.spec is not None else 0


class PeerDirectory:
    def __init__(self, ctx: OperatorContext) -> None:
        self.ctx = ctx
        self.peers: dict[str, Peer] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.ctx.cfg.peer_namespace is not None

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._forever(), name="peer-directory")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for peer in self.peers.values():
            if peer.client is not None:
                await peer.client.close()
        self.peers.clear()

    def ready(self) -> list[Peer]:
        """The peers to ask for offers, by name."""
        return [self.peers[n] for n in sorted(self.peers) if self.peers[n].ready]

    def unready(self) -> list[Peer]:
        return [self.peers[n] for n in sorted(self.peers) if not self.peers[n].ready]

    def client(self, name: str) -> PeerClient | None:
        peer = self.peers.get(name)
        return peer.client if peer is not None else None

    def suspect(self, name: str) -> None:
        """A request to the peer failed: probe it again at the next refresh."""
        peer = self.peers.get(name)
        if peer is not None:
            peer.probed_at = 0.0

    async def _forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("%s", kv(msg="peer refresh failed", error=e))
            await asyncio.sleep(self.ctx.cfg.peer_refresh_seconds)

    async def refresh(self) -> None:
        """List the BrokerPeers, take their specs and tokens, probe those due, report."""
        ns = self.ctx.cfg.peer_namespace
        if ns is None:
            return
        listed = (await self.ctx.cluster.list_in(BROKERPEERS, ns)).get("items") or []
        names = set()
        for obj in listed:
            name = str(obj["metadata"]["name"])
            names.add(name)
            await self._take(ns, obj, self.peers.setdefault(name, Peer(name)))
        for name in set(self.peers) - names:
            gone = self.peers.pop(name)
            if gone.client is not None:
                await gone.client.close()
        now = time.monotonic()
        every = self.ctx.cfg.peer_probe_seconds
        due = [p for p in self.peers.values() if p.client is not None and now - p.probed_at >= every]
        found = await asyncio.gather(*(p.client.probe() for p in due if p.client is not None))
        for peer, probe in zip(due, found, strict=True):
            if peer.probe is None or peer.probe.reachable != probe.reachable:
                log.info(
                    "%s",
                    kv(msg="peer probed", peer=peer.name, reachable=probe.reachable, error=probe.error),
                )
            peer.probe, peer.probed_at = probe, time.monotonic()
            await self._report(ns, peer, probed=True)
        for peer in self.peers.values():
            if peer.client is None:
                await self._report(ns, peer, probed=False)

    async def _take(self, ns: str, obj: dict[str, Any], peer: Peer) -> None:
        peer.generation = int(obj["metadata"].get("generation") or 0)
        peer.status = dict(obj.get("status") or {})
        problem, token = None, None
        try:
            spec = BrokerPeerSpec.model_validate(obj.get("spec") or {})
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            spec = None
            problem = f"invalid spec: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        if spec is not None:
            problem = check_base_url(spec.url)
        if spec is not None and problem is None and spec.credentials is not None:
            token, problem = await self._token(ns, spec)
        peer.spec = spec
        if problem is not None or spec is None:
            if peer.client is not None:
                await peer.client.close()
            peer.client, peer.made_for = None, ()
            peer.probe = Probe(False, None, problem)
            return
        digest = hashlib.sha256((token or "").encode()).hexdigest()
        made_for = (spec.url, spec.dialect, digest, spec.deadline_seconds)
        if made_for != peer.made_for:
            if peer.client is not None:
                await peer.client.close()
            peer.client = PeerClient(
                peer.name,
                spec.url,
                dialect=Dialect.parse(spec.dialect.value),
                token=token,
                deadline=spec.deadline_seconds,
            )
            peer.made_for, peer.probed_at = made_for, 0.0

    async def _token(self, ns: str, spec: BrokerPeerSpec) -> tuple[str | None, str | None]:
        """The bearer token from the peer's Secret, or why there is none."""
        assert spec.credentials is not None
        secret, key = spec.credentials.secret_name, spec.credentials.key
        try:
            data = await objects.read_secret_data(self.ctx.cluster, ns, secret)
        except ApiError as e:
            return None, f"the Secret {secret} cannot be read (HTTP {e.status})"
        if data is None:
            return None, f"the Secret {secret} does not exist"
        if key not in data:
            return None, f"the Secret {secret} has no key {key}"
        try:
            token = base64.b64decode(data[key], validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            return None, f"the Secret {secret}'s key {key} is not a text token"
        if not token or any(c.isspace() for c in token):
            return None, f"the Secret {secret}'s key {key} holds no single token"
        return token, None

    async def _report(self, ns: str, peer: Peer, *, probed: bool) -> None:
        """Write what the last probe found (every probe, and whenever the outcome changes)."""
        probe = peer.probe or Probe(False, None, "not probed yet")
        status: dict[str, Any] = {
            "reachable": probe.reachable,
            "latencyMs": probe.latency_ms,
            "lastError": clean_text(probe.error, 500) if probe.error else None,
            "observedGeneration": peer.generation,
        }
        old = {k: peer.status.get(k) for k in status}
        if not probed and old == status:
            return
        if probed:
            status["lastProbe"] = format_instant(int(self.ctx.now()))
        patch = {"status": status}
        try:
            written = await self.ctx.cluster.patch_status_in(BROKERPEERS, ns, peer.name, patch)
        except NotFound:
            return  # deleted meanwhile: the next refresh forgets it
        peer.status = dict(written.get("status") or {})
