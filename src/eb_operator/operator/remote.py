"""Sessions held at peer brokers: accept, reject and cancel them there, and mirror their phases.

A client accepts a peer's offer the way it accepts any other: by writing the offer as an
Execution with ``spec.desiredPhase`` (``spec.peer`` says where it is held). The operator then
asks the peer, and writes ACCEPTED only once the peer has accepted; a peer's refusal becomes the
Execution's refusal (its DesiredPhase condition carries the peer's reason), which the REST API,
waiting on the Execution, answers as 409. Offers of the same set are alternatives, here and at
the peers alike: whichever is accepted, every other offer held at a peer is rejected there (best
effort: an offer a peer never hears about lapses there at its expiry).

Afterwards the peer's session is read with bounded polling that backs off (``peer_poll_seconds``
doubling while nothing changes, up to ``peer_poll_max_seconds``) and its phase mirrored forward
(:func:`~eb_operator.operator.mirror.mirror_phase`). A peer that stops answering leaves a message
on the session at once, and FAILED after ``peer_lost_seconds`` without an answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from eb_operator.engine.types import Phase
from eb_operator.model.common import ACCEPTED_PHASES, FINAL_PHASES
from eb_operator.model.times import format_instant, parse_instant
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.directory import PeerDirectory
from eb_operator.operator.events import kv
from eb_operator.operator.lifecycle import Step
from eb_operator.operator.mirror import RemoteAction, RemoteFacts, RemoteStep, decide_remote, mirror_phase
from eb_operator.operator.state import NOT_ACCEPTED, ExecutionView
from eb_operator.operator.status import StatusWriter
from eb_operator.operator.workqueue import Retry
from eb_operator.peers import PeerClient, PeerError, PeerRefused, RemoteSession
from eb_operator.peers.documents import read_session

log = logging.getLogger("eb_operator.operator")


class _Unconfigured(PeerError):
    pass


class RemoteSessions:
    def __init__(self, ctx: OperatorContext, status: StatusWriter, directory: PeerDirectory) -> None:
        self.ctx = ctx
        self.status = status
        self.directory = directory
        self._interval: dict[str, float] = {}  # key -> the next wait between two reads
        self._background: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- the step ----------------------------------------------------------------------------

    def facts(self, view: ExecutionView) -> RemoteFacts:
        ctx = self.ctx
        assert view.peer is not None
        since = view.remote.get("unreachableSince")
        sibling = next((s.name for s in ctx.state.siblings(view) if s.phase not in NOT_ACCEPTED), None)
        return RemoteFacts(
            now=ctx.now(),
            phase=view.phase,
            peer=str(view.peer.get("name")),
            desired=view.desired,
            desired_new=view.desired_new,
            expires=view.expires,
            accepted_sibling=sibling,
            unreachable_since=parse_instant(since) if since else None,
            lost_after=int(ctx.cfg.peer_lost_seconds),
        )

    async def reconcile(self, view: ExecutionView) -> bool:
        """One step of a session held at a peer; True when it wrote something."""
        step = decide_remote(self.facts(view))
        if step.wake_at is not None:
            self.ctx.executions.add_at(view.key, step.wake_at)
        if step.action is RemoteAction.ACCEPT:
            return await self._accept(view)
        if step.action is RemoteAction.CANCEL:
            return await self._cancel(view)
        if step.action is RemoteAction.POLL:
            return await self._poll(view)
        if step.action is RemoteAction.REJECT:
            self._later(view.peer or {}, "REJECTED", view.key)
        if step.phase == Phase.FAILED:  # lost: the peer may come back and run it unobserved
            self._later(view.peer or {}, "CANCELLED", view.key)
        if step.phase is None and not step.refused and not view.desired_new:
            return False
        await self._write(view, step)
        return step.phase is not None

    # -- accept and cancel -------------------------------------------------------------------

    async def _accept(self, view: ExecutionView) -> bool:
        ctx = self.ctx
        async with ctx.lock:  # no sibling is accepted meanwhile, here or (being asked) at a peer
            fresh = ctx.state.executions.get(view.key)
            if fresh is None or fresh.rv != view.rv:
                return True  # changed while we waited: decide again
            if decide_remote(self.facts(fresh)).action is not RemoteAction.ACCEPT:
                return True
            holder = ctx.accepting.get(view.group)
            if holder is not None and holder != view.key:
                raise Retry(0.5, f"the accept of {holder} is under way")
            ctx.accepting[view.group] = view.key
        try:
            written = await self._ask_accept(view)
        finally:
            if ctx.accepting.get(view.group) == view.key:
                del ctx.accepting[view.group]
        if written:
            ctx.stats["accepts"] += 1
            self.release_siblings(view)
        return True

    async def _ask_accept(self, view: ExecutionView) -> bool:
        """Ask the peer; write ACCEPTED (or the peer's later phase) or the refusal. True when
        accepted."""
        peer = self._peer(view)
        remote: RemoteSession | None
        try:
            remote = await self._change(view, "ACCEPTED")
        except PeerRefused as e:
            # After a restart between the peer's accept and this broker's write, the peer refuses
            # a second accept: its session says whether the first one went through.
            remote = await self._read_quietly(view)
            if remote is None or remote.phase not in ACCEPTED_PHASES:
                await self._refuse(view, "PeerRefused", f"peer {peer} refused the accept: {e.message}")
                return False
        except PeerError as e:
            await self._refuse(view, "PeerUnavailable", f"peer {peer} did not accept: {e}")
            return False
        if remote.phase not in ACCEPTED_PHASES:
            await self._refuse(view, "PeerRefused", f"peer {peer} left the session {remote.phase}")
            return False
        later, _ = mirror_phase(Phase.ACCEPTED, Phase(remote.phase))
        step = Step(phase=later or Phase.ACCEPTED, reason="Accepted", message=f"accepted at peer {peer}")
        await self._write(view, step, remote=remote)
        self._interval[view.key] = self.ctx.cfg.peer_poll_seconds
        self.ctx.executions.add_after(view.key, self.ctx.cfg.peer_poll_seconds)
        return True

    async def _cancel(self, view: ExecutionView) -> bool:
        peer = self._peer(view)
        try:
            remote = await self._change(view, "CANCELLED")
        except PeerRefused as e:
            await self._refuse(view, "PeerRefused", f"peer {peer} refused the cancel: {e.message}")
            return True
        except PeerError as e:
            await self._refuse(view, "PeerUnavailable", f"peer {peer} did not cancel: {e}")
            return True
        if remote.phase != Phase.CANCELLED:
            text = f"peer {peer} left the session {remote.phase}"
            await self._refuse(view, "PeerRefused", text)
            return True
        step = Step(phase=Phase.CANCELLED, reason="Cancelled", message=f"cancelled at peer {peer}")
        await self._write(view, step, remote=remote)
        return True

    async def _refuse(self, view: ExecutionView, reason: str, message: str) -> None:
        log.info("%s", kv(msg="peer refused", execution=view.key, reason=reason, detail=message))
        await self._write(view, Step(reason=reason, message=message, refused=True))

    # -- following the peer --------------------------------------------------------------------

    async def _poll(self, view: ExecutionView) -> bool:
        ctx = self.ctx
        peer = self._peer(view)
        now = ctx.now()
        first = ctx.cfg.peer_poll_seconds
        wait = self._interval.get(view.key, first)
        try:
            remote = await self._read(view)
        except PeerError as e:
            since = view.remote.get("unreachableSince")
            lost_at = (parse_instant(since) if since else now) + int(ctx.cfg.peer_lost_seconds)
            if not since:
                text = (
                    f"peer {peer} does not answer about the session ({e}); it becomes FAILED if the "
                    f"peer has not answered by {format_instant(lost_at)}"
                )
                remote_status = {"unreachableSince": format_instant(now), "error": str(e)}
                step = Step(reason="PeerUnreachable", message=text)
                await self._write(view, step, remote_status=remote_status)
                log.info("%s", kv(msg="peer unreachable", execution=view.key, peer=peer, error=e))
            self._interval[view.key] = min(wait * 2, ctx.cfg.peer_poll_max_seconds)
            ctx.executions.add_at(view.key, min(now + wait, lost_at))
            return False
        assert view.phase is not None
        phase, why = mirror_phase(view.phase, Phase(remote.phase))
        access = list(remote.access) if remote.access is not None else view.access
        changed = (
            phase is not None
            or bool(view.remote.get("unreachableSince"))
            or view.remote.get("phase") != str(remote.phase)
            or access != view.access
        )
        if changed:
            message = remote.messages[-1] if remote.messages and phase in FINAL_PHASES else why
            step = Step(phase=phase, reason=f"Peer{str(phase or remote.phase).title()}", message=message)
            await self._write(view, step, remote=remote)
            self._interval[view.key] = first
        else:
            self._interval[view.key] = min(wait * 2, ctx.cfg.peer_poll_max_seconds)
        if phase not in FINAL_PHASES:
            ctx.executions.add_after(view.key, self._interval[view.key])
        else:
            self._interval.pop(view.key, None)
        return phase is not None

    # -- the peer ------------------------------------------------------------------------------

    @staticmethod
    def _peer(view: ExecutionView) -> str:
        return str((view.peer or {}).get("name"))

    def _client(self, ref: dict[str, Any]) -> PeerClient:
        client = self.directory.client(str(ref.get("name")))
        if client is None:
            raise _Unconfigured(f"no usable BrokerPeer {ref.get('name')} is configured")
        return client

    async def _change(self, view: ExecutionView, phase: str) -> RemoteSession:
        ref = view.peer or {}
        client = self._client(ref)
        doc = await client.update(str(ref.get("href")), phase)
        return read_session(doc, dialect=client.dialect, session=str(ref.get("session")))

    async def _read(self, view: ExecutionView) -> RemoteSession:
        ref = view.peer or {}
        client = self._client(ref)
        doc = await client.session(str(ref.get("href")))
        return read_session(doc, dialect=client.dialect, session=str(ref.get("session")))

    async def _read_quietly(self, view: ExecutionView) -> RemoteSession | None:
        try:
            return await self._read(view)
        except PeerError:
            return None

    def _later(self, ref: dict[str, Any], phase: str, about: str) -> None:
        """Tell a peer of a change in the background, best effort (an offer it never hears
        about lapses there at its expiry)."""
        try:
            client = self._client(ref)
        except PeerError:
            return
        self._spawn(self._tell(client, ref, phase, about))

    async def _tell(self, client: PeerClient, ref: dict[str, Any], phase: str, about: str) -> None:
        try:
            await client.update(str(ref.get("href")), phase)
        except PeerError as e:
            log.info("%s", kv(msg="peer not told", about=about, peer=ref.get("name"), phase=phase, error=e))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def release_siblings(self, view: ExecutionView) -> None:
        """``view`` was accepted: reject at their peers every other offer of its set held at one
        (those written as Executions of their own do it in their own reconcile)."""
        held = self.ctx.state.peer_offers.get(view.group) or {}
        for name, ref in held.items():
            if name == view.name:
                continue
            if f"{view.namespace}/{name}" in self.ctx.state.executions:
                continue
            self._later(ref, "REJECTED", f"{view.namespace}/{name}")

    # -- writing -----------------------------------------------------------------------------

    async def _write(
        self,
        view: ExecutionView,
        step: Step | RemoteStep,
        *,
        remote: RemoteSession | None = None,
        remote_status: dict[str, Any] | None = None,
    ) -> None:
        phase = step.phase or view.phase
        status = self.status.status(view, phase, step.reason, step.message, step.refused)
        if remote is not None:
            status["remote"] = {"phase": str(remote.phase), "unreachableSince": None, "error": None}
            if remote.access is not None:
                status["access"] = list(remote.access)
        elif remote_status is not None:
            status["remote"] = remote_status
        await self.status.patch(view, status)
        said = Step(phase=step.phase, reason=step.reason, message=step.message, refused=step.refused)
        self.status.announce(view, said)
