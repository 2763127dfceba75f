"""``BrokerClient``: the REST calls of an IVOA ExecutionBroker over httpx.

Requests go out as JSON and answers are asked for as JSON (every conformant broker serves YAML and
JSON; JSON needs no YAML 1.1/1.2 care). A request document read from a file is sent as written,
YAML or JSON, so the server's own parser judges it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from eb_operator.model.common import FINAL_PHASES

JSON = "application/json"
YAML = "application/yaml"
USER_AGENT = "ebctl/0.1 (eb-operator client)"

Document = dict[str, Any]


class BrokerError(Exception):
    """A non-success answer: ``status`` (HTTP, 0 for a transport failure), the IVOA messages and the
    whole ``document`` when the broker sent one (a 409 carries the unchanged session)."""

    def __init__(self, status: int, message: str, document: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.document = document

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status else self.message


def messages_of(document: Any) -> list[Mapping[str, Any]]:
    """The message items of an IVOA document in either dialect (``messages`` or ``meta.messages``)."""
    if not isinstance(document, Mapping):
        return []
    found = document.get("messages")
    if found is None and isinstance(document.get("meta"), Mapping):
        found = document["meta"].get("messages")
    return [m for m in found or [] if isinstance(m, Mapping)]


def ident(ref: str, collection: str) -> str:
    """The uuid of ``ref``, which may be a bare uuid or an href such as ``…/sessions/<uuid>``."""
    ref = ref.strip()
    if "/" not in ref:
        return ref
    parts = [p for p in urlsplit(ref).path.split("/") if p]
    if len(parts) >= 2 and parts[-2] == collection:
        return parts[-1]
    if parts:
        return parts[-1]
    raise ValueError(f"no uuid in {ref!r}")


def _error_text(response: httpx.Response, document: Any) -> str:
    errors = [str(m.get("message") or m.get("template") or "") for m in messages_of(document)]
    errors = [e for e in errors if e]
    if errors:
        return "; ".join(errors)
    text = response.text.strip()
    return text[:500] if text else response.reason_phrase


class BrokerClient:
    """One broker at ``url``; ``token`` is sent as ``Authorization: Bearer``.

    ``transport`` lets tests serve the app in-process (``httpx.ASGITransport`` needs an async
    client, so tests use ``httpx.MockTransport`` for formatting and a real server otherwise).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
    ) -> None:
        if not url:
            raise ValueError("no broker URL: give --url or set EB_URL")
        headers = {"Accept": JSON, "User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=verify,
            follow_redirects=False,
        )

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the IVOA calls -------------------------------------------------------------------------

    def create_offerset(
        self, request: Mapping[str, Any] | bytes, content_type: str = JSON, path: str = "/offersets"
    ) -> Document:
        """POST a request for offers; returns the OfferSetResponse (``result`` YES or NO).

        A dict is sent as JSON; bytes are sent as they are with ``content_type`` (for a YAML file).
        The 303 answer's body is the set; a broker that sends none is followed with a GET.
        """
        if isinstance(request, bytes):
            response = self._send("POST", path, content=request, headers={"Content-Type": content_type})
        else:
            response = self._send("POST", path, json=dict(request))
        if response.status_code in (301, 302, 303, 307, 308):
            body = self._decode(response)
            if isinstance(body, dict) and body:
                return body
            return self._get_location(response)
        return self._document(response)

    def offerset(self, ref: str) -> Document:
        return self._document(self._send("GET", f"/offersets/{ident(ref, 'offersets')}"))

    def session(self, ref: str) -> Document:
        return self._document(self._send("GET", f"/sessions/{ident(ref, 'sessions')}"))

    def set_phase(self, ref: str, phase: str) -> Document:
        """Ask for a phase change (ACCEPTED, REJECTED, CANCELLED); returns the updated session.

        A refusal (409) raises :class:`BrokerError` whose ``document`` is the unchanged session.
        """
        body = {"update": {"type": "uri:enum-value-update", "path": "phase", "value": phase}}
        return self._document(self._send("POST", f"/sessions/{ident(ref, 'sessions')}", json=body))

    def accept(self, ref: str) -> Document:
        return self.set_phase(ref, "ACCEPTED")

    def reject(self, ref: str) -> Document:
        return self.set_phase(ref, "REJECTED")

    def cancel(self, ref: str) -> Document:
        return self.set_phase(ref, "CANCELLED")

    def login(self, ref: str) -> Document:
        """A one-time login link to the session's URL (``url``, ``expires``): opening it in a
        browser sets a cookie for the session's path. 409 when the session has no route or is not
        running."""
        return self._document(self._send("POST", f"/sessions/{ident(ref, 'sessions')}/login"))

    def watch(
        self,
        ref: str,
        *,
        interval: float = 1.0,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Iterator[Document]:
        """Yield the session now and again whenever its phase changes, until a final phase.

        The IVOA interface has no server push, so this polls ``GET /sessions/{uuid}`` every
        ``interval`` seconds. ``timeout`` (seconds) raises ``TimeoutError`` if no final phase came.
        """
        deadline = None if timeout is None else clock() + timeout
        last: str | None = None
        while True:
            doc = self.session(ref)
            phase = phase_of(doc)
            if phase != last:
                last = phase
                yield doc
            if phase in FINAL_PHASES:
                return
            if deadline is not None and clock() >= deadline:
                raise TimeoutError(f"session {ident(ref, 'sessions')} still {phase} after {timeout:g} s")
            sleep(interval)

    def logs(self, ref: str, tail: int | None = None) -> str:
        """What the session's workload printed so far (its last ``tail`` lines)."""
        params = {"tail": str(tail)} if tail is not None else {}
        response = self._send("GET", f"/sessions/{ident(ref, 'sessions')}/logs", params=params)
        if not response.is_success:
            raise BrokerError(response.status_code, _error_text(response, self._decode(response)))
        return response.text

    def follow_logs(self, ref: str, tail: int | None = None) -> Iterator[str]:
        """The log as the workload writes it, until its container ends (``follow=true``; the
        connection has no read timeout)."""
        params = {"follow": "true", **({"tail": str(tail)} if tail is not None else {})}
        path = f"/sessions/{ident(ref, 'sessions')}/logs"
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if not response.is_success:
                    response.read()
                    raise BrokerError(response.status_code, _error_text(response, self._decode(response)))
                yield from response.iter_text()
        except httpx.HTTPError as e:
            raise BrokerError(0, f"cannot reach the broker at {self.url}: {e}") from e

    def get(self, path: str) -> httpx.Response:
        """Any other GET (``/availability``, ``/capabilities``, ``/healthz`` ...), raw."""
        return self._send("GET", path)

    # -- plumbing -------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise BrokerError(0, f"cannot reach the broker at {self.url}: {e}") from e

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        if not response.content:
            return None
        ctype = response.headers.get("content-type", "")
        if "json" in ctype:
            try:
                return response.json()
            except ValueError:
                return None
        if "yaml" in ctype:
            import yaml

            try:
                return yaml.safe_load(response.text)
            except yaml.YAMLError:
                return None
        return None

    def _document(self, response: httpx.Response) -> Document:
        body = self._decode(response)
        if response.is_success and isinstance(body, dict):
            return body
        if response.is_success:
            raise BrokerError(response.status_code, "the broker's answer is not a document", body)
        raise BrokerError(response.status_code, _error_text(response, body), body)

    def _get_location(self, response: httpx.Response) -> Document:
        location = response.headers.get("location")
        if not location:
            raise BrokerError(response.status_code, "a redirect without a Location")
        target = httpx.URL(self.url + "/").join(location)
        return self._document(self._send("GET", str(target)))


def phase_of(document: Mapping[str, Any]) -> str | None:
    """A session's phase in either dialect (C26 may name it ``state``; READY is ``AVAILABLE``)."""
    phase = document.get("phase") or document.get("state")
    if phase is None and isinstance(document.get("meta"), Mapping):
        phase = document["meta"].get("phase")
    return str(phase) if phase is not None else None
