"""Which operator decides: kopf's peering, read by the operator itself.

Every operator keeps its own picture of the cluster current from its own watches (a standby is a
hot standby: it needs no listing when it takes over), but only the one that leads decides and
writes. kopf keeps each operator's keep-alive (identity, priority, last seen, lifetime) in the
status of the ClusterKopfPeering ``eb-operator``; kopf's rule is ours: an operator pauses while
another live peer has a higher priority or the same one (two of the same priority both pause and
say so). A peer whose keep-alive lapsed (last seen + lifetime) is dead and no longer counts.

Without peering (``--no-peering``, one operator by construction) the operator always leads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eb_operator.operator.events import kv

log = logging.getLogger("eb_operator.operator")

PEERING_PATH = "/apis/kopf.dev/v1/clusterkopfpeerings"


@dataclass(frozen=True, slots=True)
class Verdict:
    leads: bool
    blockers: tuple[str, ...] = ()  # the live peers this operator yields to
    recheck_in: float | None = None  # seconds until the first blocker's keep-alive lapses


def _instant(text: Any, now: datetime) -> datetime:
    if not text:
        return now
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return now
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def judge(peers: Mapping[str, Any] | None, identity: str, priority: int, now: datetime) -> Verdict:
    """kopf's peering rule over the peering object's status (``{identity: {priority, lifetime,
    lastseen}}``): lead unless another live peer has a priority at least ours."""
    blockers: list[tuple[float, str]] = []
    for other, info in (peers or {}).items():
        if other == identity or not isinstance(info, Mapping):
            continue
        lifetime = float(info.get("lifetime") or 60)
        left = (_instant(info.get("lastseen"), now) - now).total_seconds() + lifetime
        if left <= 0:
            continue  # dead: its keep-alive lapsed
        if int(info.get("priority") or 0) >= priority:
            blockers.append((left, other))
    if not blockers:
        return Verdict(True)
    return Verdict(False, tuple(sorted(b for _, b in blockers)), min(t for t, _ in blockers))


class Leadership:
    """Follows the peering object (fed by a :class:`~eb_operator.cluster.feeds.Feed`) and tells
    ``on_change`` when this operator starts or stops leading."""

    def __init__(
        self,
        identity: str,
        priority: int,
        peering_name: str | None,
        on_change: Callable[[bool], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.identity = identity
        self.priority = priority
        self.peering_name = peering_name
        self.on_change = on_change
        self.clock = clock
        self.leading = False
        self.blockers: tuple[str, ...] = ()
        self._peers: Mapping[str, Any] | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def query(self) -> dict[str, str]:
        return {"fieldSelector": f"metadata.name={self.peering_name}"}

    def start(self) -> None:
        """Standalone: lead at once. With peering: wait for the peering object."""
        if self.peering_name is None:
            self._set(Verdict(True))

    def on_peering(self, obj: Mapping[str, Any], deleted: bool) -> None:
        if (obj.get("metadata") or {}).get("name") != self.peering_name:
            return
        self._peers = None if deleted else (obj.get("status") or {})
        self.evaluate()

    def evaluate(self) -> None:
        if self.peering_name is None:
            return
        if self._peers is None:  # no peering object: kopf pauses too
            verdict = Verdict(False, ("(no ClusterKopfPeering " + self.peering_name + ")",))
        else:
            verdict = judge(self._peers, self.identity, self.priority, self.clock())
        self._set(verdict)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if verdict.recheck_in is not None:  # a silent peer dies without an event: look again then
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(verdict.recheck_in + 0.5, self.evaluate)

    def _set(self, verdict: Verdict) -> None:
        self.blockers = verdict.blockers
        if verdict.leads == self.leading:
            return
        self.leading = verdict.leads
        if verdict.leads:
            log.info("%s", kv(msg="leading: this operator decides", identity=self.identity))
        else:
            log.info("%s", kv(msg="paused: another operator decides", blockers=",".join(verdict.blockers)))
        self.on_change(verdict.leads)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
