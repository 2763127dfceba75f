"""Sharing the platform: request rates, limits per owner and per group, and fair shares, applied
where offers are decided (docs/operator.md, "Sharing a platform").

The limits and shares are checked under the decision lock against the ledger's tallies
(``engine.usage``), so two requests (from two API replicas, or two workers) can never both pass a
limit that only one of them fits under. Request rates are token buckets kept here, in the one
active operator: every OfferSet, whichever API replica wrote it, is counted in one place, so a
rate holds across replicas exactly, at no cost to a request under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eb_operator.engine import LedgerSnapshot, NodeTable
from eb_operator.engine.limits import (
    Admission,
    Budget,
    Holder,
    Platform,
    TokenBucket,
    admit_request,
    admit_session,
)
from eb_operator.engine.shares import borrowed_offers, within_share
from eb_operator.engine.types import Demand, Reservation
from eb_operator.model.sharing import OTHER, Limits
from eb_operator.operator.context import OperatorContext


@dataclass(frozen=True, slots=True)
class Caller:
    """Whom a request or a reservation is charged to."""

    owner: str
    account: str  # the sharing group

    @property
    def group_words(self) -> str:
        return "callers in no listed group" if self.account == OTHER else f"group {self.account}"


def group_words(account: str) -> str:
    return "callers in no listed group together" if account == OTHER else f"group {account} together"


class SharingRules:
    def __init__(self, ctx: OperatorContext) -> None:
        self.ctx = ctx
        self._buckets: dict[tuple[str, str], TokenBucket] = {}  # ("owner"|"group", name) -> bucket
        self._platform: tuple[int, Platform] | None = None  # (id of the node table, totals)

    def caller(self, owner: str | None, groups: Sequence[str] | None) -> Caller:
        return Caller(owner or "", self.ctx.policy.sharing.group_of(list(groups or ())))

    def platform(self, table: NodeTable) -> Platform:
        """The platform's cores and GPUs: the allocatable capacity of the nodes it uses. Not what
        is free of other Pods now: on a small platform the broker's own Pods would bring a "100%"
        limit below one core, and a limit would move with every foreign Pod."""
        if self._platform is not None and self._platform[0] == id(table):
            return self._platform[1]
        policy = self.ctx.policy
        selected = table.selected(policy.node_selector)
        cores = gpus = 0.0
        for node in table:
            if selected is None or node.name in selected:
                info = self.ctx.state.nodes.get(node.name)
                whole = info.allocatable if info is not None else node.free
                cores += whole.cpu_millis / 1000
                gpus += sum(whole.gpus.values())
        totals = Platform(cores, gpus, policy.horizon_seconds)
        self._platform = (id(table), totals)
        return totals

    # --- request rate -----------------------------------------------------------------------

    def _limits(self, caller: Caller) -> tuple[Limits, Limits]:
        sharing = self.ctx.policy.sharing
        return sharing.owner_limits_of(caller.account), sharing.limits_of(caller.account)

    def _bucket(self, kind: str, name: str, limits: Limits, now: float) -> TokenBucket | None:
        rate = limits.requests_per_second
        if rate is None:
            self._buckets.pop((kind, name), None)
            return None
        burst = limits.request_burst or max(1, round(rate))
        bucket = self._buckets.get((kind, name))
        if bucket is None:
            bucket = self._buckets[(kind, name)] = TokenBucket.full(rate, burst, now)
        elif (bucket.rate, bucket.burst) != (rate, burst):  # the policy changed
            bucket.refill(now)
            bucket.rate, bucket.burst = rate, burst
            bucket.tokens = min(bucket.tokens, float(burst))
        return bucket

    def rate(self, caller: Caller, now: float) -> tuple[float, str]:
        """Take one request from the caller's (and its group's) rate: ``(0, "")`` when it may be
        answered now, else how many seconds until it may, and why not."""
        owner_limits, group_limits = self._limits(caller)
        parties = []
        if caller.owner:
            parties.append(("owner", caller.owner, owner_limits, "you"))
        parties.append(("group", caller.account, group_limits, group_words(caller.account)))
        buckets = []
        for kind, name, limits, who in parties:
            bucket = self._bucket(kind, name, limits, now)
            if bucket is None:
                continue
            wait = bucket.wait(now)
            if wait > 0:
                return wait, (
                    f"{who} asked more often than {bucket.rate:g} times a second (burst {bucket.burst}): "
                    f"ask again in {wait:.1f} s"
                )
            buckets.append(bucket)
        for bucket in buckets:
            bucket.take(now)
        return 0.0, ""

    def forget_idle(self, now: float) -> None:
        """Drop buckets that are full again: a full bucket is the same as none (memory stays
        bounded by the callers of the last minute or so)."""
        for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[key]

    # --- limits and shares (under the decision lock) ------------------------------------------

    def holders(self, caller: Caller, table: NodeTable) -> list[Holder]:
        platform = self.platform(table)
        owner_limits, group_limits = self._limits(caller)
        tallies = self.ctx.state.ledger.tallies
        out = []
        if caller.owner:
            out.append(Holder("you", tallies.owner(caller.owner), Budget.of(owner_limits, platform)))
        out.append(
            Holder(
                group_words(caller.account),
                tallies.account(caller.account),
                Budget.of(group_limits, platform),
            )
        )
        return out

    def admit(self, demand: Demand, caller: Caller, table: NodeTable) -> Admission:
        """Whether (and with what demand) a request may be searched under the caller's limits."""
        tail = demand.preparation + self.ctx.policy.release_seconds
        return admit_request(demand, tail, self.holders(caller, table))

    def admit_session(self, candidate: Reservation, caller: Caller, table: NodeTable) -> str | None:
        """Why accepting ``candidate`` would take its owner or group past a session limit."""
        return admit_session(candidate, self.holders(caller, table))

    def borrowed(self, demand: Demand, caller: Caller, table: NodeTable) -> list[Reservation]:
        """The unaccepted offers other groups hold beyond their shares, when the caller's group
        stays within its own share with this request (else none: it is borrowing itself)."""
        sharing = self.ctx.policy.sharing
        if not sharing.shares_set:
            return []
        platform = self.platform(table)
        tallies = self.ctx.state.ledger.tallies
        tail = demand.preparation + self.ctx.policy.release_seconds
        mine = tallies.account(caller.account)
        if not within_share(demand, tail, mine, sharing.share_of(caller.account), platform):
            return []
        return borrowed_offers(demand, caller.account, tallies.accounts, sharing.share_of, platform)


def without(book: LedgerSnapshot, out: Sequence[Reservation]) -> LedgerSnapshot:
    """A snapshot of ``book`` without the reservations ``out`` (a what-if for pre-emption)."""
    gone = {r.key for r in out}
    return LedgerSnapshot.of([r for r in book if r.key not in gone])
