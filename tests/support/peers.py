"""Builders of peer brokers' documents for tests: an offer set and its sessions as a broker of
this project renders them (through its own REST views and dialect writer), so a test reads like
the exchange it stands for; and requests to check them against."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from eb_operator.api import views
from eb_operator.api.wire import to_dialect
from eb_operator.model import Dialect, OfferSetRequest
from eb_operator.model.times import format_instant

DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0"
COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-resource-1.0"
PEER = "https://peer.example.org"
SET = "1b4e28ba-2fa1-11d2-883f-0016d3cca400"


def request(
    cores: int = 1, memory: int = 1, duration: str = "PT10M", start: list[str] | None = None
) -> dict[str, Any]:
    schedule: dict[str, Any] = {"duration": duration}
    if start:
        schedule["start"] = start
    return {
        "executable": {"type": DOCKER, "image": {"locations": ["eb-workload:latest"]}},
        "resources": {
            "compute": [
                {
                    "type": COMPUTE,
                    "cores": {"requested": {"min": cores}},
                    "memory": {"requested": {"min": memory}},
                }
            ]
        },
        "schedule": {"requested": schedule},
    }


def request_model(**kw: Any) -> OfferSetRequest:
    return OfferSetRequest.model_validate(request(**kw))


def offer_execution(
    index: int,
    now: int,
    *,
    start: int = 90,
    expires: int = 300,
    cores: int = 2,
    memory: int = 2,
    run: int = 1200,
) -> dict[str, Any]:
    """An offer of the set ``SET`` as the operator writes it: starting ``start`` s after ``now``."""
    return {
        "metadata": {"name": f"{SET[:-2]}{index + 1:02x}"},
        "spec": {
            "offerSet": SET,
            "reservation": {
                "node": "n1",
                "prepareStart": format_instant(now + start - 30),
                "start": format_instant(now + start),
                "duration": f"PT{run}S",
                "releaseEnd": format_instant(now + start + run + 60),
                "expires": format_instant(now + expires),
                "cores": cores,
                "memoryGiB": memory,
            },
        },
    }


def offerset(
    now: int,
    offers: list[dict[str, Any]],
    *,
    base: str = PEER,
    req: dict[str, Any] | None = None,
    dialect: Dialect = Dialect.IVOA_STD,
) -> dict[str, Any]:
    """The OfferSetResponse a broker of this project at ``base`` answers, in ``dialect``."""
    asked = req or request()
    obj = {
        "metadata": {"name": SET, "uid": "u"},
        "spec": {"request": asked},
        "status": {"result": "YES" if offers else "NO", "request": asked, "created": format_instant(now)},
    }
    doc = views.offerset_document(obj, offers, base, datetime.fromtimestamp(now, UTC))
    return copy.deepcopy(to_dialect(doc, "offerset", dialect))


def session(
    now: int,
    offer: dict[str, Any],
    phase: str | None = None,
    *,
    base: str = PEER,
    dialect: Dialect = Dialect.IVOA_STD,
) -> dict[str, Any]:
    """One session of the set ``SET`` (``phase``: as the operator would have written it)."""
    obj = {
        "metadata": {"name": SET, "uid": "u"},
        "spec": {"request": request()},
        "status": {"result": "YES", "request": request()},
    }
    execution = copy.deepcopy(offer)
    if phase is not None:
        execution["status"] = {"phase": phase}
    doc = views.session_document(execution, obj, base, datetime.fromtimestamp(now, UTC))
    return copy.deepcopy(to_dialect(doc, "session", dialect))
