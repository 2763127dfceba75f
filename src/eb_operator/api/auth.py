"""Who is calling: bearer tokens checked against a static list and the Kubernetes TokenReview API.

* ``parse_bearer`` reads an ``Authorization`` header (RFC 6750); anything but a well-formed bearer
  token is 401.
* Static tokens use the Kubernetes static-token-file CSV format, ``token,user,uid,"g1,g2"``, from a
  mounted Secret (``EB_API_STATIC_TOKENS_FILE``) or inline (``EB_API_STATIC_TOKENS``). Only their
  SHA-256 digests are kept in memory.
* Any other token goes to TokenReview (service-account tokens and the cluster's OIDC users work
  unchanged). Results are cached briefly by token digest; the cache is only a speed-up, so
  replicas need not share it.
* Without a token the caller is ``system:anonymous`` when anonymous access is on, else 401.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from eb_operator.api.errors import Unauthorized

ANONYMOUS = "system:anonymous"
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated (or anonymous) caller. ``username`` is what owns OfferSets and Executions."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)

    @property
    def anonymous(self) -> bool:
        return self.username == ANONYMOUS


ANONYMOUS_CALLER = Caller(ANONYMOUS, groups=("system:unauthenticated",))


@dataclass(frozen=True, slots=True)
class Review:
    """What TokenReview said about a token."""

    authenticated: bool
    caller: Caller | None = None
    error: str = ""


TokenReviewer = Callable[[str, Sequence[str]], Awaitable[Review]]


def parse_bearer(header: str | None) -> str | None:
    """The token in an ``Authorization: Bearer <token>`` header; None when there is no header."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        raise Unauthorized("Only bearer tokens are accepted", error="invalid_request")
    if not token or not _B64TOKEN.match(token):
        raise Unauthorized("Malformed bearer token", error="invalid_request")
    return token


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_static_tokens(text: str) -> dict[str, Caller]:
    """Static tokens by digest from CSV lines ``token,user[,uid[,"group1,group2"]]``.

    Blank lines and lines starting with ``#`` are skipped. A line without a token or a user is an
    error (ValueError with the line number), so a broken Secret fails at start-up, not at request time.
    """
    out: dict[str, Caller] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise ValueError(f"static tokens line {lineno}: expected token,user[,uid[,groups]]")
        if not _B64TOKEN.match(cells[0]):
            raise ValueError(f"static tokens line {lineno}: the token has characters a bearer token cannot")
        groups = tuple(g.strip() for g in cells[3].split(",") if g.strip()) if len(cells) > 3 else ()
        uid = cells[2] if len(cells) > 2 else ""
        out[token_digest(cells[0])] = Caller(cells[1], uid, groups)
    return out


class _TtlCache:
    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, Review]] = OrderedDict()

    def get(self, key: str) -> Review | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return hit[1]

    def put(self, key: str, review: Review, ttl: float) -> None:
        if ttl <= 0:
            return
        self._data[key] = (self._clock() + ttl, review)
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)


class Authenticator:
    """Turns an ``Authorization`` header into a ``Caller`` or raises ``Unauthorized``."""

    def __init__(
        self,
        *,
        static_tokens: dict[str, Caller],
        reviewer: TokenReviewer | None,
        audiences: Sequence[str] = (),
        allow_anonymous: bool = False,
        cache_seconds: float = 30.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._static = static_tokens
        self._reviewer = reviewer
        self._audiences = tuple(audiences)
        self._allow_anonymous = allow_anonymous
        self._cache_seconds = cache_seconds
        self._cache = _TtlCache(cache_seconds, cache_size, clock)

    async def authenticate(self, authorization: str | None) -> Caller:
        token = parse_bearer(authorization)
        if token is None:
            if self._allow_anonymous:
                return ANONYMOUS_CALLER
            raise Unauthorized("Authentication required: send Authorization: Bearer <token>")
        digest = token_digest(token)
        static = self._static.get(digest)
        if static is not None:
            return static
        review = self._cache.get(digest)
        if review is None:
            if self._reviewer is None:
                raise Unauthorized("Invalid bearer token", error="invalid_token")
            review = await self._reviewer(token, self._audiences)
            # refusals are cached for a shorter time, so a token that starts working is seen soon
            ttl = self._cache_seconds if review.authenticated else self._cache_seconds / 4
            self._cache.put(digest, review, ttl)
        if not review.authenticated or review.caller is None:
            raise Unauthorized("Invalid bearer token", error="invalid_token")
        return review.caller
