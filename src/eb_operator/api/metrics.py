"""Prometheus metrics of the REST service, in a registry per app (so tests can build several apps).

``MetricsMiddleware`` is a plain ASGI middleware (no per-request task or body buffering): it counts
every request by method, route template and status, and times it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "MetricsMiddleware"]

_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "eb_api_requests", "HTTP requests served", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "eb_api_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.offersets = Counter("eb_api_offersets", "Offer sets answered, by result", ["result"], registry=r)
        self.offers = Counter("eb_api_offers", "Offers made in answered offer sets", registry=r)
        self.transitions = Counter(
            "eb_api_phase_transitions",
            "Session phase changes requested through the API and applied by the operator",
            ["from_phase", "to_phase"],
            registry=r,
        )
        self.refused = Counter(
            "eb_api_updates_refused", "Phase updates refused (409)", ["from_phase", "to_phase"], registry=r
        )
        self.timeouts = Counter(
            "eb_api_operator_timeouts", "Waits for the operator that ran out (503)", ["operation"], registry=r
        )
        self.rate_limited = Counter(
            "eb_api_rate_limited",
            "Requests answered 429 for their caller's rate: refused by the operator, or by this "
            "replica while the operator's last refusal holds",
            ["by"],
            registry=r,
        )
        self.wait = Histogram(
            "eb_api_operator_wait_seconds",
            "Time spent waiting for the operator's answer",
            ["operation"],
            buckets=_BUCKETS,
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
