"""Limits and fair shares in the engine: the ledger's tallies per owner and group, requests and
accepts checked against limits, the request-rate bucket, and which borrowed offers may be taken
back for a group under its share."""

from __future__ import annotations

import dataclasses

import pytest
from tests.support.builders import H, at, demand, node, policy, reservation

from eb_operator.engine import Ledger, find_offers
from eb_operator.engine.limits import (
    Budget,
    Holder,
    Platform,
    TokenBucket,
    admit_request,
    admit_session,
    footprint,
    trim_offers,
)
from eb_operator.engine.shares import borrowed_offers, needed, standing, within_share
from eb_operator.engine.types import Phase, Reservation
from eb_operator.engine.usage import Usage
from eb_operator.model.sharing import Limits

pytestmark = pytest.mark.unit

T0 = at("10:00")
PLATFORM = Platform(cores=100, gpus=10, horizon_seconds=10 * H)  # 1,000 core-hours over the horizon


def offer(
    group: str, owner: str = "alice", account: str = "astro", cores: int = 2, hours: float = 1, gpus: int = 0
) -> Reservation:
    """An unaccepted offer of set ``group`` held from 10:00 for ``hours``."""
    end = T0 + int(hours * H)
    return reservation(
        "n1", T0, end, cores=cores, gpus=gpus, phase=Phase.OFFERED, group=group, owner=owner, account=account
    )


def session(owner: str = "alice", account: str = "astro", cores: int = 4, gpus: int = 0) -> Reservation:
    return reservation("n1", T0, T0 + H, cores=cores, gpus=gpus, owner=owner, account=account)


# --- tallies -----------------------------------------------------------------------------------


def test_the_ledger_tallies_offers_and_sessions_per_owner_and_group() -> None:
    ledger = Ledger()
    a1, a2 = offer("ns/s1", cores=2), offer("ns/s1", cores=3)
    b1 = offer("ns/s2", owner="bob", account="students", cores=1, hours=2)
    for r in (a1, a2, b1, session(cores=4, gpus=1)):
        ledger.upsert(r)
    alice, bob = ledger.tallies.owner("alice"), ledger.tallies.owner("bob")
    assert (alice.offers, len(alice.sets), alice.offered_core_seconds) == (2, 1, 5 * H)
    assert (alice.sessions, alice.session_cores, alice.session_gpus) == (1, 4, 1)
    assert alice.held_core_seconds == 9 * H
    assert (bob.offers, bob.offered_core_seconds) == (1, 2 * H)
    assert ledger.tallies.account("astro").offers == 2
    assert ledger.tallies.account("students").offers == 1


def test_an_offer_accepted_moves_from_offers_to_sessions_and_released_ones_leave_no_trace() -> None:
    ledger = Ledger()
    r = offer("ns/s1", cores=2)
    ledger.upsert(r)
    ledger.upsert(dataclasses.replace(r, phase=Phase.ACCEPTED))
    u = ledger.tallies.owner("alice")
    assert (u.offers, u.sets, u.sessions, u.session_cores) == (0, {}, 1, 2)
    ledger.upsert(dataclasses.replace(r, phase=Phase.COMPLETED))  # a final phase holds nothing
    assert "alice" not in ledger.tallies.owners
    assert "astro" not in ledger.tallies.accounts


def test_a_repeated_event_changes_nothing_not_even_an_offers_age() -> None:
    ledger = Ledger()
    first, second = offer("ns/s1"), offer("ns/s2")
    ledger.upsert(first)
    ledger.upsert(second)
    ledger.upsert(first)
    assert list(ledger.tallies.account("astro").offered) == [first.key, second.key]
    assert ledger.tallies.owner("alice").offers == 2


def test_nobodys_reservations_count_for_their_group_only() -> None:
    ledger = Ledger()
    ledger.upsert(offer("ns/s1", owner="", account="other"))
    assert ledger.tallies.owners == {}
    assert ledger.tallies.account("other").offers == 1


def test_a_bulk_load_tallies_like_single_upserts() -> None:
    rs = [offer("ns/s1"), offer("ns/s2", owner="bob"), session()]
    loaded, one_by_one = Ledger(rs), Ledger()
    for r in rs:
        one_by_one.upsert(r)
    assert loaded.tallies.owners == one_by_one.tallies.owners
    assert loaded.tallies.accounts == one_by_one.tallies.accounts


# --- limits --------------------------------------------------------------------------------------


def holder(usage: Usage, **limits: object) -> Holder:
    return Holder("you", usage, Budget.of(Limits.model_validate(limits), PLATFORM))


def usage_of(*rs: Reservation) -> Usage:
    u = Usage()
    for r in rs:
        u.change(r, +1)
    return u


def test_budgets_resolve_percentages_of_the_platform() -> None:
    b = Budget.of(Limits(offered_core_seconds="10%", session_cores="25%", session_gpus=3), PLATFORM)
    assert (b.offered_core_seconds, b.session_cores, b.session_gpus) == (100 * H, 25, 3)


def test_a_percentage_of_a_small_platform_still_allows_one_session() -> None:
    small = Platform(cores=2, gpus=1, horizon_seconds=H)
    b = Budget.of(Limits(session_cores="25%", session_gpus="25%", offered_core_seconds="10%"), small)
    assert (b.session_cores, b.session_gpus) == (1, 1)
    assert b.offered_core_seconds == pytest.approx(720)
    assert (
        Budget.of(Limits(session_gpus="25%"), Platform(cores=2, gpus=0, horizon_seconds=H)).session_gpus == 0
    )


def test_too_many_outstanding_offer_sets_is_refused_naming_the_limit() -> None:
    u = usage_of(offer("ns/s1"), offer("ns/s2"), offer("ns/s2"))
    verdict = admit_request(demand(), 0, [holder(u, offerSets=2)])
    assert verdict.reason is not None
    assert "offerSets" in verdict.reason
    assert "2 offer sets" in verdict.reason
    assert admit_request(demand(), 0, [holder(u, offerSets=3)]).reason is None


def test_session_limits_refuse_or_cap_what_an_offer_may_give() -> None:
    u = usage_of(session(cores=20))
    refused = admit_request(demand(cores=8), 0, [holder(u, sessionCores=25)])
    assert refused.reason is not None
    assert "sessionCores" in refused.reason
    capped = admit_request(demand(cores=2, max_cores=16), 0, [holder(u, sessionCores=25)])
    assert capped.reason is None
    assert capped.demand.cores_max == 5
    full = admit_request(demand(), 0, [holder(usage_of(session(), session()), sessions=2)])
    assert full.reason is not None
    assert "(sessions) is 2" in full.reason
    gpus = admit_request(demand(gpus=2), 0, [holder(usage_of(session(gpus=1)), sessionGpus=2)])
    assert gpus.reason is not None
    assert "sessionGpus" in gpus.reason


def test_offered_capacity_refuses_a_request_whose_smallest_offer_does_not_fit() -> None:
    u = usage_of(offer("ns/s1", cores=10, hours=9))  # 324,000 core-seconds held
    small = admit_request(demand(cores=1, hours=1), 0, [holder(u, offeredCoreSeconds=330_000)])
    assert small.reason is None
    assert small.core_seconds_left == pytest.approx(6000)
    big = admit_request(demand(cores=2, hours=1), 0, [holder(u, offeredCoreSeconds=330_000)])
    assert big.reason is not None
    assert "offeredCoreSeconds" in big.reason
    tail = admit_request(demand(cores=1, hours=1), 3000, [holder(u, offeredCoreSeconds=330_000)])
    assert tail.reason is not None  # preparation and release are held too


def test_the_first_holder_over_a_limit_is_named() -> None:
    u = usage_of(offer("ns/s1"))
    group = Holder("group astro together", u, Budget(offer_sets=1))
    verdict = admit_request(demand(), 0, [holder(u), group])
    assert verdict.reason is not None
    assert verdict.reason.startswith("group astro together hold 1 offer sets")


def test_offers_past_the_offered_capacity_left_are_trimmed_in_order() -> None:
    want = demand(cores=1, max_cores=4, hours=1, between=(at("08:00"), at("16:00")))
    found = find_offers(want, policy(), [node(cores=8)], [], at("07:00"))
    assert len(found) >= 2
    first = footprint(found[0])[0]
    verdict = admit_request(demand(), 0, [holder(Usage(), offeredCoreSeconds=int(first) + 1)])
    kept = trim_offers(found, verdict)
    assert kept
    assert kept[0] == found[0]
    assert sum(footprint(o)[0] for o in kept) <= first + 1
    assert trim_offers(found, admit_request(demand(), 0, [holder(Usage())])) == found


def test_an_accept_past_a_session_limit_is_refused() -> None:
    cand = offer("ns/s9", cores=4)
    assert admit_session(cand, [holder(usage_of(session(cores=20)), sessionCores=24)]) is None
    why = admit_session(cand, [holder(usage_of(session(cores=21)), sessionCores=24)])
    assert why is not None
    assert "sessionCores" in why
    why = admit_session(cand, [holder(usage_of(session()), sessions=1)])
    assert why is not None
    assert "(sessions) is 1" in why


def test_a_token_bucket_answers_a_burst_then_the_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3, now=0.0)
    for _ in range(3):
        assert bucket.wait(0.0) == 0
        bucket.take(0.0)
    assert bucket.wait(0.0) == pytest.approx(0.5)
    assert bucket.wait(0.5) == 0
    bucket.take(0.5)
    assert bucket.wait(0.5) == pytest.approx(0.5)
    assert not bucket.is_full(0.5)
    assert bucket.is_full(10.0)


# --- shares --------------------------------------------------------------------------------------


def test_a_groups_standing_is_its_held_core_seconds_against_its_share() -> None:
    u = usage_of(offer("ns/s1", cores=10, hours=5), session(cores=10))  # 50 + 10 core-hours
    s = standing(u, 0.1, PLATFORM, gpus=False)
    assert s.use == 60 * H
    assert s.share == 100 * H
    assert s.over < 0
    assert within_share(demand(cores=10, hours=4), 0, u, 0.1, PLATFORM)
    assert not within_share(demand(cores=10, hours=5), 0, u, 0.1, PLATFORM)


def test_only_offers_beyond_a_share_are_borrowed_newest_first() -> None:
    old, mid, new = (offer(f"ns/s{i}", owner="bob", account="b", cores=10, hours=2) for i in range(3))
    b = usage_of(old, mid, new)  # 60 core-hours; b's share is 30 core-hours (3%)
    accepted = usage_of(session(owner="carol", account="c", cores=100))
    shares = {"a": 0.5, "b": 0.03, "c": 0.0}
    found = borrowed_offers(demand(), "a", {"b": b, "c": accepted}, shares.__getitem__, PLATFORM)
    assert [r.key for r in found] == [new.key, mid.key]  # back down to its share; sessions never
    assert borrowed_offers(demand(), "b", {"b": b}, shares.__getitem__, PLATFORM) == []


def test_gpu_requests_take_back_gpu_seconds() -> None:
    cpu_only = offer("ns/s1", owner="bob", account="b", cores=50, hours=9)
    gpu = offer("ns/s2", owner="bob", account="b", cores=1, hours=9, gpus=4)
    b = usage_of(cpu_only, gpu)
    shares = {"a": 0.5, "b": 0.1}
    found = borrowed_offers(demand(gpus=1), "a", {"b": b}, shares.__getitem__, PLATFORM)
    assert [r.key for r in found] == [gpu.key]


def test_only_borrowed_offers_in_the_way_of_the_new_one_are_taken_back() -> None:
    a = reservation("n1", T0, T0 + H, key="ns/a")
    b = reservation("n2", T0, T0 + H, key="ns/b")
    c = reservation("n1", T0 + 2 * H, T0 + 3 * H, key="ns/c")
    taken = reservation("n1", T0 + 30 * 60, T0 + 90 * 60, key="")
    assert needed([a, b, c], [taken]) == [a]
