"""The gate: who may open a session's URL, decided at the edge.

The ingress controller asks ``GET /gate/<uuid>`` before every request to a routed session (a
Traefik ForwardAuth Middleware per session, ``eb_operator.operator.builders.routes``), sending the
client's ``Authorization``, ``Cookie`` and ``Accept`` and, in ``X-Forwarded-*``, what it asked
for. The answer lets the request through (2xx) or is returned to the client as it is.

* **Bearer token** (API clients): the same tokens as the REST API; the session's owner passes,
  anyone else is 403, a bad token 401. An ``Authorization`` header of another scheme is not the
  broker's (JupyterLab sends its server's token so) and is left to the cookie.
* **Cookie** (browsers): ``eb_session``, HttpOnly, ``SameSite=Lax``, scoped to the session's path
  (``status.route.path``), ``Secure`` behind HTTPS; its value is the time it stops being valid (the
  session's reservation end) and a MAC over it, the session's uuid, its Execution's uid and its
  owner (``eb_operator.model.session_keys``): stateless, so any API replica checks it, and worth
  nothing for another session, a re-made Execution of the same name, or another owner.
* **Login link** (how a browser gets the cookie): ``POST /sessions/<uuid>/login`` (the owner's
  token) mints a one-time code, valid :attr:`Gate.login_seconds`; its SHA-256 digest and expiry
  are kept in an annotation of the Execution (so every replica can redeem it), and the link is the
  session's URL with ``?eb-login=<code>``. The gate redeems it by removing exactly that
  annotation value (a JSON patch that tests it first: only one redemption wins) and answers 302
  to the same URL without the code, setting the cookie. The code reaches access logs once and is
  then worthless; the cookie never appears in a URL.
* Passing, the gate answers the headers the route copies upstream: ``X-Eb-User`` (the owner) and,
  for a notebook, ``Authorization: token <Jupyter token>`` derived from the session key and the
  Execution's uid, so the API never reads Secrets in owners' namespaces and the client's own
  credentials never reach the session.
* A session that is not running (not PREPARING, READY or RUNNING), unknown, or not routed is 404.
"""

from __future__ import annotations

import hashlib
import html
import secrets
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eb_operator.api.auth import Authenticator
from eb_operator.api.errors import Conflict, Unauthorized
from eb_operator.cluster.convert import recorded_phase
from eb_operator.cluster.rest_store import RestStore
from eb_operator.engine.types import Phase
from eb_operator.model.session_keys import jupyter_token, mac, same
from eb_operator.model.times import parse_instant

Obj = Mapping[str, Any]

COOKIE = "eb_session"
LOGIN_PARAM = "eb-login"
#: Execution annotation holding the pending login code: ``<sha256 hex of the code> <expiry, epoch s>``.
ANN_LOGIN = "executionbroker.ivoa.net/login"
LIVE = frozenset({Phase.PREPARING, Phase.READY, Phase.RUNNING})
NOTEBOOK = "notebook"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer: a status, headers, and a short text for whoever sees a refusal."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""


@dataclass(frozen=True, slots=True)
class Forwarded:
    """What the ingress controller says about the request it asks for (X-Forwarded-*)."""

    proto: str
    host: str
    uri: str

    @property
    def path(self) -> str:
        return urlsplit(self.uri).path

    def login_code(self) -> str | None:
        return dict(parse_qsl(urlsplit(self.uri).query)).get(LOGIN_PARAM)

    def without_login(self) -> str:
        """The absolute URL asked for, without the login code (where a redeemed link goes)."""
        parts = urlsplit(self.uri)
        query = urlencode(
            [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != LOGIN_PARAM]
        )
        return urlunsplit((self.proto, self.host, parts.path, query, ""))


def login_link(url: str, code: str) -> str:
    """The session's URL with a login code."""
    return f"{url}{'&' if '?' in url else '?'}{urlencode({LOGIN_PARAM: code})}"


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def cookie_value(key: bytes, uuid: str, uid: str, owner: str, until: int) -> str:
    return f"{until}.{mac(key, 'gate-cookie', uuid, uid, owner, str(until))}"


def cookie_valid(key: bytes, value: str, uuid: str, uid: str, owner: str, now: float) -> bool:
    until, _, given = value.partition(".")
    if not until.isdigit() or int(until) <= now:
        return False
    return same(given, mac(key, "gate-cookie", uuid, uid, owner, until))


def set_cookie(value: str, path: str, secure: bool, max_age: int | None = None) -> str:
    morsel = f"{COOKIE}={value}; Path={path}; HttpOnly; SameSite=Lax"
    if secure:
        morsel += "; Secure"
    if max_age is not None:
        morsel += f"; Max-Age={max_age}"
    return morsel


def broker_credential(authorization: str | None) -> str | None:
    """The ``Authorization`` header when it carries a broker credential (scheme Bearer), else None.

    Other schemes are the session's own business: JupyterLab sends ``Authorization: token <its
    server's token>`` (from its page config) on every API call, beside the gate's cookie; the gate
    answers those by the cookie and the route replaces the header upstream with the token it
    derives."""
    if authorization is None:
        return None
    scheme, _, _ = authorization.strip().partition(" ")
    return authorization if scheme.lower() == "bearer" else None


def read_cookie(header: str | None) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header is no cookie
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def _owner(execution: Obj) -> str:
    return str((execution.get("spec") or {}).get("owner") or "")


def _route(execution: Obj) -> Mapping[str, Any]:
    route: Mapping[str, Any] = (execution.get("status") or {}).get("route") or {}
    return route


def _until(execution: Obj, now: float) -> int:
    """When a cookie for this session stops being valid: its reservation's end (a day at most)."""
    end = ((execution.get("spec") or {}).get("reservation") or {}).get("releaseEnd")
    at = parse_instant(str(end)) if end else int(now) + 86400
    return min(at, int(now) + 86400)


class Gate:
    """Decides who gets through to a session (see the module doc)."""

    def __init__(
        self,
        store: RestStore,
        authenticator: Authenticator,
        key: bytes | None,
        login_seconds: int = 60,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.authenticator = authenticator
        self.key = key
        self.login_seconds = login_seconds
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._fetched: dict[str, tuple[float, Obj | None]] = {}

    async def _execution(self, name: str) -> Obj | None:
        """The Execution as this process's watch last saw it, else as read at most a second ago
        (every request to a session asks the gate: its Execution is not read every time)."""
        seen = self.store.seen_execution(name)
        if seen is not None:
            return seen
        now = time.monotonic()
        hit = self._fetched.get(name)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = await self.store.get_execution(name)
        if len(self._fetched) > 10_000:
            self._fetched.clear()
        self._fetched[name] = (now + self.cache_seconds, found)
        return found

    async def check(self, uuid: str, headers: Mapping[str, str]) -> Verdict:
        """Whether the request the ingress controller describes in ``headers`` may reach session
        ``uuid``."""
        if self.key is None:
            return Verdict(503, text="the gate has no session key (EB_API_SESSION_KEY_FILE)")
        try:
            name = str(uuidlib.UUID(uuid))
        except ValueError:
            return Verdict(404, text="no such session")
        execution = await self._execution(name)
        route = _route(execution) if execution is not None else {}
        if execution is None or not route or recorded_phase(execution) not in LIVE or not _owner(execution):
            return Verdict(404, text="no such session, or it is not running")
        asked = Forwarded(
            proto=(headers.get("x-forwarded-proto") or "http").split(",")[0].strip(),
            host=(headers.get("x-forwarded-host") or "").split(",")[0].strip(),
            uri=headers.get("x-forwarded-uri") or str(route.get("path")),
        )
        path = str(route.get("path") or "")
        if not (asked.path.startswith(path) or asked.path == path.rstrip("/")):
            return Verdict(404, text="not a path of this session")
        owner, uid = _owner(execution), str(execution["metadata"].get("uid", ""))
        code = asked.login_code()
        if code is not None:
            return await self._redeem(execution, code, asked, path, owner, uid)
        bearer = broker_credential(headers.get("authorization"))
        if bearer is not None:
            try:
                caller = await self.authenticator.authenticate(bearer)
            except Unauthorized as e:
                return Verdict(401, {"WWW-Authenticate": 'Bearer realm="execution-broker"'}, e.message)
            if caller.username != owner:
                return Verdict(403, text="this session belongs to someone else")
            return self._through(execution, owner)
        value = read_cookie(headers.get("cookie"))
        if value is not None and cookie_valid(self.key, value, name, uid, owner, self.clock()):
            return self._through(execution, owner)
        refusal = self._login_hint(name, headers.get("accept"))
        if value is not None:  # stale or foreign: drop it
            refusal.headers["Set-Cookie"] = set_cookie("", path, asked.proto == "https", max_age=0)
        return refusal

    def _through(self, execution: Obj, owner: str) -> Verdict:
        assert self.key is not None
        out = {"X-Eb-User": owner}
        if _route(execution).get("kind") == NOTEBOOK:
            out["Authorization"] = f"token {jupyter_token(self.key, str(execution['metadata']['uid']))}"
        return Verdict(200, out)

    async def _redeem(
        self, execution: Obj, code: str, asked: Forwarded, path: str, owner: str, uid: str
    ) -> Verdict:
        assert self.key is not None
        held = ((execution.get("metadata") or {}).get("annotations") or {}).get(ANN_LOGIN, "")
        digest, _, expires = held.partition(" ")
        fresh = expires.isdigit() and int(expires) > self.clock()
        name = str(execution["metadata"]["name"])
        if not (held and fresh and same(digest, code_digest(code))):
            held = await self._held_now(name)  # the watch may not have the newest code yet
            digest, _, expires = held.partition(" ")
            fresh = expires.isdigit() and int(expires) > self.clock()
        if not (held and fresh and same(digest, code_digest(code))):
            return Verdict(
                401, text="this login link has expired or was used: ask for a new one (ebctl open)"
            )
        if not await self.store.take_execution_annotation(name, ANN_LOGIN, held):
            return Verdict(401, text="this login link was used: ask for a new one (ebctl open)")
        value = cookie_value(self.key, name, uid, owner, _until(execution, self.clock()))
        cookie = set_cookie(value, path, asked.proto == "https")
        return Verdict(
            302, {"Location": asked.without_login(), "Set-Cookie": cookie, "Cache-Control": "no-store"}
        )

    async def _held_now(self, name: str) -> str:
        found = await self.store.get_execution(name)
        return str((((found or {}).get("metadata") or {}).get("annotations") or {}).get(ANN_LOGIN, ""))

    def _login_hint(self, uuid: str, accept: str | None) -> Verdict:
        text = (
            f"This session is open to its owner only. Log in with a link from `ebctl open {uuid}` "
            f"(POST /sessions/{uuid}/login), or send the owner's bearer token."
        )
        headers = {"WWW-Authenticate": 'Bearer realm="execution-broker"'}
        if "text/html" in (accept or ""):
            headers["Content-Type"] = "text/html; charset=utf-8"
            return Verdict(401, headers, f"<!doctype html><title>Log in</title><p>{html.escape(text)}</p>\n")
        return Verdict(401, headers, text)

    # --- login links (POST /sessions/<uuid>/login) ---------------------------------------------

    async def mint(self, execution: Obj) -> tuple[str, int]:
        """A one-time login link for the owner's session (the caller was checked), and when it
        expires; 409 when the session has no route or is not running."""
        if self.key is None:
            raise Conflict("This broker gives no login links: the API has no session key")
        route = _route(execution)
        phase = recorded_phase(execution)
        if not route or phase not in LIVE:
            raise Conflict(
                "Session {uuid} cannot be opened in a browser now: it has {what}",
                {
                    "uuid": execution["metadata"]["name"],
                    "what": f"phase {phase}"
                    if route
                    else "no route (the platform's routes, or not started yet)",
                },
            )
        code = secrets.token_urlsafe(32)
        expires = int(self.clock()) + self.login_seconds
        await self.store.set_execution_annotation(
            str(execution["metadata"]["name"]), ANN_LOGIN, f"{code_digest(code)} {expires}"
        )
        return login_link(str(route["url"]), code), expires
