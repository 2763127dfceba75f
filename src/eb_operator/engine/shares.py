"""Fair shares between sharing groups, in the manner of Kueue's cohorts: each group is guaranteed
its share of the platform and may borrow what others leave idle; what a group holds in unaccepted
offers *beyond* its share can be taken back (pre-empted) for a group under its own.

A group's use is what its reservations hold in core-seconds (GPU-seconds for a request with GPUs):
offers and accepted sessions, over their whole time slots. Its share of the platform is
``share x platform cores (GPUs) x horizonSeconds``. Only offers nobody has accepted are ever taken
back, newest first, and only as many as bring their group back to its share: accepted sessions and
offers within a share are never touched. Worked example: docs/operator.md, "Sharing a platform".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from eb_operator.engine.limits import Platform
from eb_operator.engine.types import Demand, Reservation
from eb_operator.engine.usage import EMPTY, Usage


@dataclass(frozen=True, slots=True)
class Standing:
    """A group's use against its share, in the dimension a request needs (core- or GPU-seconds)."""

    use: float
    share: float

    @property
    def over(self) -> float:
        return self.use - self.share


def _dimension(demand: Demand) -> bool:
    """True when a request is judged in GPU-seconds (it asks for GPUs), else core-seconds."""
    return demand.gpu is not None and demand.gpu.count > 0


def _use(usage: Usage, gpus: bool) -> float:
    return float(usage.held_gpu_seconds) if gpus else usage.held_core_seconds


def _weight(r: Reservation, gpus: bool) -> float:
    return float(r.gpu_count * r.span) if gpus else r.resources.cpu_millis / 1000 * r.span


def standing(usage: Usage, share: float, platform: Platform, gpus: bool) -> Standing:
    whole = (platform.gpus if gpus else platform.cores) * platform.horizon_seconds
    return Standing(_use(usage, gpus), share * whole)


def within_share(demand: Demand, tail_seconds: int, usage: Usage, share: float, platform: Platform) -> bool:
    """Whether the group asking stays within its share with this request's smallest offer."""
    gpus = _dimension(demand)
    amount = (demand.gpu.count if gpus and demand.gpu else demand.cores_min) * (
        demand.duration + tail_seconds
    )
    s = standing(usage, share, platform, gpus)
    return s.use + amount <= s.share + 1e-9


def borrowed_offers(
    demand: Demand,
    asking: str,
    accounts: Mapping[str, Usage],
    share_of: Callable[[str], float],
    platform: Platform,
) -> list[Reservation]:
    """The unaccepted offers other groups hold beyond their shares, each group's newest first, as
    many as bring it back to its share: what a group under its share may have taken back."""
    gpus = _dimension(demand)
    out: list[Reservation] = []
    for name, usage in accounts.items():
        if name == asking:
            continue
        excess = standing(usage, share_of(name), platform, gpus).over
        if excess <= 0:
            continue
        for r in reversed(list(usage.offered.values())):
            if excess <= 0:
                break
            weight = _weight(r, gpus)
            if weight <= 0:
                continue
            out.append(r)
            excess -= weight
    return out


def needed(victims: list[Reservation], taken: list[Reservation]) -> list[Reservation]:
    """Of the offers that may be taken back, those that share a node and a time with ``taken``
    (the new offers found once they were out of the way): only those are taken back."""
    return [
        v for v in victims if any(v.node == t.node and v.start < t.end and t.start < v.end for t in taken)
    ]


__all__ = ["EMPTY", "Standing", "borrowed_offers", "needed", "standing", "within_share"]
