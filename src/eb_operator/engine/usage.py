"""What each owner and each sharing group holds, kept current by the ledger as reservations come
and go: the tallies the limits (:mod:`eb_operator.engine.limits`) and fair shares
(:mod:`eb_operator.engine.shares`) are checked against, in ``O(1)`` per request.

An *offer* is a reservation in phase OFFERED (its capacity held until it expires, is rejected or a
sibling is accepted); a *session* is one in any later holding phase. Cores are counted in
millicores, core-seconds in millicore-seconds, so adding and removing never drifts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eb_operator.engine.types import Phase, Reservation


@dataclass(slots=True)
class Usage:
    offers: int = 0
    sets: dict[str, int] = field(default_factory=dict)  # offer set -> its offers held
    offered_cpu_seconds: int = 0  # millicore-seconds
    offered_gpu_seconds: int = 0
    sessions: int = 0
    session_cpu: int = 0  # millicores
    session_gpus: int = 0
    held_cpu_seconds: int = 0  # offers and sessions: what fair shares compare
    held_gpu_seconds: int = 0
    #: the OFFERED reservations, oldest first (pre-emption takes the newest first)
    offered: dict[str, Reservation] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.offers == 0 and self.sessions == 0

    @property
    def offered_core_seconds(self) -> float:
        return self.offered_cpu_seconds / 1000

    @property
    def session_cores(self) -> float:
        return self.session_cpu / 1000

    @property
    def held_core_seconds(self) -> float:
        return self.held_cpu_seconds / 1000

    def change(self, r: Reservation, sign: int) -> None:
        cpu, gpus, span = r.resources.cpu_millis, r.gpu_count, r.span
        self.held_cpu_seconds += sign * cpu * span
        self.held_gpu_seconds += sign * gpus * span
        if r.phase == Phase.OFFERED:
            self.offers += sign
            self.offered_cpu_seconds += sign * cpu * span
            self.offered_gpu_seconds += sign * gpus * span
            if sign > 0:
                self.offered[r.key] = r
            else:
                self.offered.pop(r.key, None)
            if r.group:
                n = self.sets.get(r.group, 0) + sign
                if n > 0:
                    self.sets[r.group] = n
                else:
                    self.sets.pop(r.group, None)
        else:
            self.sessions += sign
            self.session_cpu += sign * cpu
            self.session_gpus += sign * gpus


EMPTY = Usage()


class Tallies:
    """Usage by owner and by sharing group ("account") of the reservations a ledger holds."""

    def __init__(self) -> None:
        self.owners: dict[str, Usage] = {}
        self.accounts: dict[str, Usage] = {}

    def add(self, r: Reservation) -> None:
        self._change(r, +1)

    def remove(self, r: Reservation) -> None:
        self._change(r, -1)

    def _change(self, r: Reservation, sign: int) -> None:
        for table, name in ((self.owners, r.owner), (self.accounts, r.account)):
            if table is self.owners and not name:
                continue  # nobody's: an admin's kubectl object is not limited per owner
            usage = table.get(name)
            if usage is None:
                usage = table[name] = Usage()
            usage.change(r, sign)
            if usage.empty:
                del table[name]

    def owner(self, name: str) -> Usage:
        return self.owners.get(name, EMPTY)

    def account(self, name: str) -> Usage:
        return self.accounts.get(name, EMPTY)
