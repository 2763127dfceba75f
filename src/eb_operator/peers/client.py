"""One peer broker's REST interface, over httpx.

Every exchange is bounded: by the peer's deadline (the whole exchange, connection included), and
by ``max_bytes`` of answer. Answers are asked for, and read, as JSON only (a YAML reader would
expand a hostile document's aliases). The bearer token goes to the peer's own origin only: an
``href`` elsewhere is refused, and redirects are not followed. Errors are :class:`PeerError`
whose text is safe to show: the peer's status and reason, never a header of ours.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from eb_operator.model import OfferSetRequest, PhaseUpdate, render, render_update_request
from eb_operator.model.federation import VIA_HEADER, format_via
from eb_operator.model.types import Dialect
from eb_operator.peers.documents import clean_text, refusal_text, same_origin
from eb_operator.peers.errors import PeerError, PeerRefused

#: The largest answer read from a peer.
MAX_ANSWER_BYTES = 1 << 20
_AVAILABLE = re.compile(rb"<(?:[A-Za-z0-9_]+:)?available>\s*(true|false)\s*</", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Probe:
    """What a probe found: the peer serves (VOSI availability) and takes this broker's token."""

    reachable: bool
    latency_ms: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    document: Any
    location: str | None


class PeerClient:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        dialect: Dialect = Dialect.IVOA_STD,
        token: str | None = None,
        deadline: float = 5.0,
        max_bytes: int = MAX_ANSWER_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.dialect = dialect
        self.deadline = deadline
        self.max_bytes = max_bytes
        headers = {"Accept": "application/json", "User-Agent": "eb-operator (stacked broker)"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            headers=headers,
            follow_redirects=False,
            timeout=httpx.Timeout(deadline),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    # -- the exchanges -----------------------------------------------------------------------

    async def offerset(self, request: Mapping[str, Any], via: Sequence[str]) -> Any:
        """Ask for offers: ``request`` is a canonical (ivoa-std) OfferSetRequest, written in the
        peer's dialect (``POST /offersets``, or ``POST /requests`` in C26); returns the decoded
        OfferSetResponse, following a 303 that came without one."""
        if self.dialect is Dialect.IVOA_STD:
            body: Any = dict(request)
        else:
            try:
                body = render(OfferSetRequest.model_validate(dict(request)), self.dialect)
            except ValueError as e:  # e.g. two compute resources: C26 carries one
                raise PeerError(f"the request cannot be written in {self.dialect}: {e}") from None
        path = "/requests" if self.dialect is Dialect.C26 else "/offersets"
        async with self._bounded():
            answer = await self._exchange(
                "POST", self.url + path, body, {VIA_HEADER: format_via(via)} if via else None
            )
            if answer.status == 303 and not isinstance(answer.document, dict) and answer.location:
                if not same_origin(answer.location, self.url):
                    raise PeerError("the peer redirected elsewhere than its own url")
                answer = await self._exchange("GET", answer.location)
        if answer.status not in (200, 303):
            raise self._failure(answer, "refused the request")
        return answer.document

    async def session(self, href: str) -> Any:
        """The peer's session document at ``href``."""
        self._own(href)
        async with self._bounded():
            answer = await self._exchange("GET", href)
        if answer.status == 404:
            raise PeerError("the peer knows no such session (404)")
        if answer.status != 200:
            raise self._failure(answer, "did not show the session")
        return answer.document

    async def update(self, href: str, phase: str) -> Any:
        """Ask for a phase change (ACCEPTED, REJECTED, CANCELLED); returns the session document.
        :class:`PeerRefused` with the peer's reason when it does not allow the change."""
        self._own(href)
        body = render_update_request(PhaseUpdate(value=phase), self.dialect)
        async with self._bounded():
            answer = await self._exchange("POST", href, body)
        if answer.status in (400, 404, 409, 422):
            reason = refusal_text(answer.document) or f"HTTP {answer.status}"
            raise PeerRefused(answer.status, reason)
        if answer.status != 200:
            raise self._failure(answer, "did not change the session")
        return answer.document

    async def probe(self) -> Probe:
        """VOSI availability (public), then an authenticated read of a random offer set, which a
        peer that takes this broker's token answers 404 and one that does not 401 or 403."""
        try:
            async with self._bounded():
                started = time.perf_counter()
                status, raw, _ = await self._fetch("GET", self.url + "/availability")
                latency = round(1000 * (time.perf_counter() - started))
                if status != 200:
                    return Probe(False, latency, f"availability answered HTTP {status}")
                found = _AVAILABLE.search(raw[:65536])
                if found is None or found.group(1).lower() != b"true":
                    return Probe(False, latency, "the peer says it is not available")
                status, _, _ = await self._fetch("GET", f"{self.url}/offersets/{uuidlib.uuid4()}")
                if status in (401, 403):
                    return Probe(False, latency, f"the peer refused this broker's token (HTTP {status})")
        except PeerError as e:
            return Probe(False, None, str(e))
        return Probe(True, latency, None)

    # -- plumbing ----------------------------------------------------------------------------

    def _own(self, href: str) -> None:
        if not same_origin(href, self.url):
            raise PeerError("the session's href is not at the peer's own url")

    def _bounded(self) -> _Bounded:
        return _Bounded(self.deadline)

    async def _exchange(
        self, method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> _Answer:
        status, raw, got = await self._fetch(method, url, body, headers)
        return _Answer(status, _decode(raw, status, got), got.get("location"))

    async def _fetch(
        self, method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes, httpx.Headers]:
        """One request; the status, at most ``max_bytes`` of body, and the headers."""
        sent = {**({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})}
        request = self._http.build_request(
            method, url, content=json.dumps(body).encode() if body is not None else None, headers=sent
        )
        try:
            response = await self._http.send(request, stream=True)
            try:
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > self.max_bytes:
                        raise PeerError(f"the answer is larger than {self.max_bytes} bytes")
            finally:
                await response.aclose()
        except httpx.HTTPError as e:
            raise PeerError(self._transport_error(e)) from None
        return response.status_code, bytes(raw), response.headers

    @staticmethod
    def _transport_error(e: httpx.HTTPError) -> str:
        detail = clean_text(str(e), 160)
        return f"{type(e).__name__}: {detail}" if detail else type(e).__name__

    @staticmethod
    def _failure(answer: _Answer, what: str) -> PeerError:
        reason = refusal_text(answer.document)
        if answer.status in (401, 403):
            return PeerError(f"the peer refused this broker's credentials (HTTP {answer.status})")
        if answer.status == 508:
            return PeerError(f"the peer refused a forwarding loop: {reason or 'HTTP 508'}")
        return PeerError(f"the peer {what} (HTTP {answer.status})" + (f": {reason}" if reason else ""))


class _Bounded:
    """The whole of one exchange within the deadline (httpx's timeouts are per read or write)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._timeout = asyncio.timeout(seconds)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            await self._timeout.__aexit__(kind, exc, tb)
        except TimeoutError:
            raise PeerError(f"no answer within {self.seconds:g} s") from None


def _decode(raw: bytes, status: int, headers: httpx.Headers) -> Any:
    """A JSON answer, or None when there is none (an empty body, another type: a 303 may carry
    nothing). Invalid JSON from a peer that says it sent JSON is an error."""
    if not raw.strip():
        return None
    kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        if 200 <= status < 400:
            raise PeerError(f"the answer is {kind or 'of no type'}, not application/json")
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise PeerError("the answer is not valid JSON") from None
