"""A client of the IVOA ExecutionBroker REST interface, and ``ebctl``, its command line.

It speaks only HTTP (``httpx``) to ``/offersets`` and ``/sessions``, so it works with any
conformant broker, not just this one; nothing here imports the broker's own layers (an
import-linter contract keeps it that way).

    from eb_operator.client import BrokerClient, offer_request

    with BrokerClient("http://127.0.0.1:8080", token="...") as eb:
        request = offer_request(image="eb-workload:latest", cores=2, memory=4, duration="PT10M")
        answer = eb.create_offerset(request)
        session = eb.accept(answer["offers"][0]["uuid"])
        for s in eb.watch(session["uuid"]):
            print(s["phase"])
"""

from __future__ import annotations

from eb_operator.client.http import BrokerClient, BrokerError
from eb_operator.client.requests import offer_request, parse_duration, parse_range, parse_start
from eb_operator.model.common import FINAL_PHASES

__all__ = [
    "FINAL_PHASES",
    "BrokerClient",
    "BrokerError",
    "offer_request",
    "parse_duration",
    "parse_range",
    "parse_start",
]
