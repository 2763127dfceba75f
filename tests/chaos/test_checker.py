"""The checker must be able to fail: it finds an overbooking only where two reservations share
both reserved time and the time they were held, and parses what the API server writes."""

from __future__ import annotations

from typing import Any

import pytest
from tests.chaos.checker import box, instant, overbooked, quantity
from tests.support.reservations import with_offers

T = "2026-01-01T00:00:{:02d}Z"
CAP = {"n": {"cpu": 4.0, "memory": 16 * 2.0**30, "ephemeral-storage": 100 * 2.0**30}}


def execution(
    name: str, start: int, end: int, cores: int, phase: str, created: int = 0, left: int | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if left is not None:
        status["conditions"] = [{"type": "Reserved", "status": "False", "lastTransitionTime": T.format(left)}]
    return {
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": T.format(created)},
        "spec": {
            "offerSet": "set",
            "reservation": {
                "node": "n",
                "prepareStart": T.format(start),
                "releaseEnd": T.format(end),
                "expires": T.format(50),
                "cores": cores,
                "memoryGiB": 1,
            },
        },
        "status": status,
    }


def boxes(*execs: dict[str, Any], now: float = 1767225659.0) -> list[Any]:
    return [b for b in (box(e, now) for e in execs) if b is not None]


def test_two_sessions_overlapping_in_both_times_beyond_the_node_are_found() -> None:
    found = overbooked(
        boxes(execution("a", 10, 20, 3, "RUNNING"), execution("b", 15, 25, 2, "ACCEPTED")), CAP
    )
    assert len(found) == 1
    assert "cpu 5 > allocatable 4" in found[0]


def test_back_to_back_reservations_and_sessions_that_ended_before_the_next_was_made_are_fine() -> None:
    assert not overbooked(
        boxes(execution("a", 10, 20, 4, "RUNNING"), execution("b", 20, 30, 4, "ACCEPTED")), CAP
    )
    done = execution("a", 10, 20, 4, "CANCELLED", created=0, left=5)
    assert not overbooked(boxes(done, execution("b", 12, 22, 4, "ACCEPTED", created=6)), CAP)
    assert overbooked(boxes(done, execution("b", 12, 22, 4, "ACCEPTED", created=4)), CAP)


def test_an_offer_holds_only_until_it_expires_or_is_declined() -> None:
    expired = execution("a", 10, 20, 4, "EXPIRED", created=0, left=55)
    assert not overbooked(boxes(expired, execution("b", 10, 20, 4, "ACCEPTED", created=51)), CAP)
    assert overbooked(boxes(expired, execution("b", 10, 20, 4, "ACCEPTED", created=49)), CAP)


def test_reservations_on_a_node_that_is_gone_are_reported() -> None:
    assert "does not exist" in overbooked(boxes(execution("a", 10, 20, 1, "RUNNING")), {})[0]


@pytest.mark.parametrize(
    ("text", "value"), [("3500m", 3.5), ("2", 2.0), ("64Gi", 64 * 2.0**30), ("1k", 1000.0), ("10M", 1e7)]
)
def test_quantities(text: str, value: float) -> None:
    assert quantity(text) == pytest.approx(value)


def test_an_offer_held_only_in_its_sets_status_holds_from_the_set_until_it_expires() -> None:
    offerset = {
        "metadata": {"name": "set", "namespace": "ns", "creationTimestamp": T.format(0)},
        "status": {
            "offers": [
                {"name": "o1", "reservation": execution("o1", 10, 20, 4, "OFFERED")["spec"]["reservation"]},
                {"name": "a", "reservation": {}},  # written as an Execution below: counted as that one
            ]
        },
    }
    written = [execution("a", 30, 40, 1, "ACCEPTED")]
    offers = with_offers(written, [offerset], released=True)[1:]
    assert [o["metadata"]["name"] for o in offers] == ["o1"]
    held = boxes(*offers)
    assert [(b.held_from, b.held_until) for b in held] == [(instant(T.format(0)), instant(T.format(50)))]
    assert overbooked([*held, *boxes(execution("b", 10, 20, 4, "ACCEPTED", created=49))], CAP)
    assert not overbooked([*held, *boxes(execution("b", 10, 20, 4, "ACCEPTED", created=51))], CAP)


def test_an_offer_holds_from_its_sets_answer_not_its_creation_nor_its_clients_accept() -> None:
    """A set created at 0 and answered at 10 (its operator was down): its offers were decided at 10,
    after a session that ended at 5 gave the capacity back. Written by a client's accept at 20, an
    offer still held from 10 on."""
    reservation = execution("o1", 10, 20, 4, "OFFERED")["spec"]["reservation"]
    offerset = {
        "metadata": {"name": "set", "namespace": "ns", "creationTimestamp": T.format(0)},
        "status": {"created": T.format(10), "offers": [{"name": "o1", "reservation": reservation}]},
    }
    done = execution("a", 10, 20, 4, "COMPLETED", created=0, left=5)
    [offer] = with_offers([], [offerset])
    assert not overbooked([*boxes(done), *boxes(offer)], CAP)
    accepted = execution("o1", 10, 20, 4, "ACCEPTED", created=20)
    [held] = [box(accepted, instant(T.format(59)), offered_at=instant(T.format(10)))]
    assert held is not None
    assert held.held_from == instant(T.format(10))
    still = execution("b", 10, 20, 4, "CANCELLED", created=0, left=12)
    assert overbooked([*boxes(still), held], CAP)
