"""Limits per owner and per sharing group: checked against the ledger's tallies (``engine.usage``)
before a request is searched, on the offers found, at accept time, and a request-rate bucket.

Pure: every function takes the usage, the limits and ``now``; the operator calls them under its
decision lock, so two requests never both pass a limit only one of them fits under.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from eb_operator.engine.types import Demand, Offer, Reservation
from eb_operator.engine.usage import Usage
from eb_operator.model.sharing import Amount, Limits, resolve_amount


@dataclass(frozen=True, slots=True)
class Platform:
    """What percentages are of: the platform's cores and GPUs, and how far ahead it offers."""

    cores: float
    gpus: float
    horizon_seconds: int


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits in absolute terms (None: no limit). Core-seconds and cores are in cores, not millis."""

    offer_sets: int | None = None
    offered_core_seconds: float | None = None
    offered_gpu_seconds: float | None = None
    sessions: int | None = None
    session_cores: float | None = None
    session_gpus: float | None = None

    @classmethod
    def of(cls, limits: Limits, platform: Platform) -> Budget:
        """The limits on this platform. A percentage of the cores (GPUs) held in sessions is never
        less than one where the platform has one: a small platform still runs a session."""
        span = platform.horizon_seconds
        return cls(
            offer_sets=limits.offer_sets,
            offered_core_seconds=resolve_amount(limits.offered_core_seconds, platform.cores * span),
            offered_gpu_seconds=resolve_amount(limits.offered_gpu_seconds, platform.gpus * span),
            sessions=limits.sessions,
            session_cores=_at_least_one(limits.session_cores, platform.cores),
            session_gpus=_at_least_one(limits.session_gpus, platform.gpus),
        )


def _at_least_one(value: Amount | None, whole: float) -> float | None:
    resolved = resolve_amount(value, whole)
    if resolved is None or not isinstance(value, str) or whole < 1:
        return resolved
    return max(1.0, resolved)


@dataclass(frozen=True, slots=True)
class Holder:
    """One party a request is charged to: its owner, or its group (``who`` says which, in a
    sentence: "you", "group astro")."""

    who: str
    usage: Usage
    budget: Budget


@dataclass(frozen=True, slots=True)
class Admission:
    """A request checked against its holders' limits: why not (``reason``, naming the limit), or
    the demand capped to what the limits leave and the offered capacity left to fill."""

    reason: str | None
    demand: Demand
    core_seconds_left: float | None = None
    gpu_seconds_left: float | None = None


def footprint(offer: Offer) -> tuple[float, float]:
    """(core-seconds, GPU-seconds) an offer holds while it is not accepted."""
    span = offer.release_end - offer.prepare_start
    return offer.cores * span, offer.gpus * span


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:g}"


def admit_request(demand: Demand, tail_seconds: int, holders: Sequence[Holder]) -> Admission:
    """Whether a request may be searched at all under its holders' limits, and with what demand.

    ``tail_seconds``: preparation and release time around the run (an offer holds its cores over
    ``preparation + duration + release``). A session limit caps the cores (GPUs) an offer may
    give to what accepting it would leave; an offered-capacity limit refuses a request whose
    smallest offer would not fit in it. Every refusal names the limit by its policy field."""
    gpus = demand.gpu.count if demand.gpu is not None else 0
    smallest_span = demand.duration + tail_seconds
    cs_left: float | None = None
    gs_left: float | None = None
    for h in holders:
        u, b = h.usage, h.budget
        if b.offer_sets is not None and len(u.sets) >= b.offer_sets:
            return Admission(
                f"{h.who} hold {len(u.sets)} offer sets whose offers are not accepted yet, the limit "
                f"(offerSets) is {b.offer_sets}: accept, reject or let some expire first",
                demand,
            )
        if b.sessions is not None and u.sessions >= b.sessions:
            return Admission(
                f"{h.who} have {u.sessions} accepted sessions, the limit (sessions) is {b.sessions}: "
                "no offer could be accepted before one of them ends",
                demand,
            )
        if b.session_cores is not None:
            left = math.floor(b.session_cores - u.session_cores + 1e-9)
            if left < demand.cores_min:
                return Admission(
                    f"{h.who} hold {_fmt(u.session_cores)} cores in accepted sessions, the limit "
                    f"(sessionCores) is {_fmt(b.session_cores)}: {demand.cores_min} more would exceed it",
                    demand,
                )
            if left < demand.cores_max:
                demand = dataclasses.replace(demand, cores_max=left)
        if gpus and b.session_gpus is not None and u.session_gpus + gpus > b.session_gpus + 1e-9:
            return Admission(
                f"{h.who} hold {u.session_gpus} GPUs in accepted sessions, the limit (sessionGpus) is "
                f"{_fmt(b.session_gpus)}: {gpus} more would exceed it",
                demand,
            )
        if b.offered_core_seconds is not None:
            left_cs = b.offered_core_seconds - u.offered_core_seconds
            need = demand.cores_min * smallest_span
            if need > left_cs + 1e-9:
                return Admission(
                    f"{h.who} hold {_fmt(u.offered_core_seconds)} core-seconds in offers not accepted yet, "
                    f"the limit (offeredCoreSeconds) is {_fmt(b.offered_core_seconds)}: the smallest offer "
                    f"for this request holds {_fmt(need)}",
                    demand,
                )
            cs_left = left_cs if cs_left is None else min(cs_left, left_cs)
        if gpus and b.offered_gpu_seconds is not None:
            left_gs = b.offered_gpu_seconds - u.offered_gpu_seconds
            need_gs = gpus * smallest_span
            if need_gs > left_gs + 1e-9:
                return Admission(
                    f"{h.who} hold {_fmt(u.offered_gpu_seconds)} GPU-seconds in offers not accepted yet, "
                    f"the limit (offeredGpuSeconds) is {_fmt(b.offered_gpu_seconds)}: the smallest offer "
                    f"for this request holds {_fmt(need_gs)}",
                    demand,
                )
            gs_left = left_gs if gs_left is None else min(gs_left, left_gs)
    return Admission(None, demand, cs_left, gs_left)


def trim_offers(offers: Sequence[Offer], admission: Admission) -> list[Offer]:
    """The offers, in order, that fit together in the offered capacity the limits leave: later
    ones that would take the holder past a limit are left out (their capacity never held)."""
    cs, gs = admission.core_seconds_left, admission.gpu_seconds_left
    kept: list[Offer] = []
    for offer in offers:
        c, g = footprint(offer)
        if (cs is not None and c > cs + 1e-9) or (gs is not None and g > gs + 1e-9):
            continue
        kept.append(offer)
        cs = cs - c if cs is not None else None
        gs = gs - g if gs is not None else None
    return kept


def admit_session(candidate: Reservation, holders: Sequence[Holder]) -> str | None:
    """Why accepting ``candidate`` (an offer, or a direct request's slot) would take one of its
    holders past a session limit; None when it would not."""
    cores = candidate.resources.cpu_millis / 1000
    gpus = candidate.gpu_count
    for h in holders:
        u, b = h.usage, h.budget
        if b.sessions is not None and u.sessions + 1 > b.sessions:
            return (
                f"{h.who} have {u.sessions} accepted sessions, the limit (sessions) is {b.sessions}: "
                "accept again when one has ended"
            )
        if b.session_cores is not None and u.session_cores + cores > b.session_cores + 1e-9:
            return (
                f"{h.who} hold {_fmt(u.session_cores)} cores in accepted sessions, the limit "
                f"(sessionCores) is {_fmt(b.session_cores)}: this session's {cores:g} would exceed it"
            )
        if gpus and b.session_gpus is not None and u.session_gpus + gpus > b.session_gpus + 1e-9:
            return (
                f"{h.who} hold {u.session_gpus} GPUs in accepted sessions, the limit (sessionGpus) is "
                f"{_fmt(b.session_gpus)}: this session's {gpus} would exceed it"
            )
    return None


@dataclass(slots=True)
class TokenBucket:
    """A request-rate limit: ``burst`` requests at once, then ``rate`` per second."""

    rate: float
    burst: int
    tokens: float
    last: float

    @classmethod
    def full(cls, rate: float, burst: int, now: float) -> TokenBucket:
        return cls(rate, burst, float(burst), now)

    def refill(self, now: float) -> None:
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = max(self.last, now)

    def wait(self, now: float) -> float:
        """Seconds until a request would be answered (0: now), taking nothing."""
        self.refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self.refill(now)
        self.tokens -= 1.0

    def is_full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.burst
