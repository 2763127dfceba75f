"""Authentication parsing and decisions, without a cluster: the TokenReview call is a plain function."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from eb_operator.api.auth import (
    ANONYMOUS,
    Authenticator,
    Caller,
    Review,
    parse_bearer,
    parse_static_tokens,
)
from eb_operator.api.errors import Unauthorized

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("header", "token"),
    [
        pytest.param(None, None, id="no header"),
        pytest.param("Bearer abc.def-ghi_~+/==", "abc.def-ghi_~+/==", id="a JWT-like token"),
        pytest.param("bearer tok", "tok", id="the scheme is case-insensitive"),
        pytest.param("  Bearer   tok  ", "tok", id="surrounding spaces"),
    ],
)
def test_parse_bearer(header: str | None, token: str | None) -> None:
    assert parse_bearer(header) == token


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic dXNlcjpwYXNz", id="basic auth"),
        pytest.param("Bearer", id="no token"),
        pytest.param("Bearer a b", id="a space in the token"),
        pytest.param("Bearer tok\u00e9n", id="non-ASCII"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_authorization_is_401(header: str) -> None:
    with pytest.raises(Unauthorized) as info:
        parse_bearer(header)
    assert info.value.status == 401
    assert info.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_static_tokens_csv() -> None:
    tokens = parse_static_tokens('# comment\n\nt1,alice,1001,"science,admins"\nt2,bob\n')
    assert sorted(c.username for c in tokens.values()) == ["alice", "bob"]
    alice = next(c for c in tokens.values() if c.username == "alice")
    assert alice == Caller("alice", "1001", ("science", "admins"))
    assert "t1" not in tokens, "only digests are kept"


@pytest.mark.parametrize("text", ["t1\n", ",alice\n", "bad token,alice\n"])
def test_broken_static_tokens_fail_loudly(text: str) -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_static_tokens(text)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingReviewer:
    """Stands in for the TokenReview call: tokens starting 'good' are valid."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, token: str, audiences: Sequence[str]) -> Review:
        self.calls += 1
        if token.startswith("good"):
            return Review(True, Caller(f"user-{token}", groups=("system:authenticated",)))
        return Review(False, error="invalid")


async def test_anonymous_is_off_by_default() -> None:
    auth = Authenticator(static_tokens={}, reviewer=None)
    with pytest.raises(Unauthorized):
        await auth.authenticate(None)


async def test_anonymous_when_allowed() -> None:
    auth = Authenticator(static_tokens={}, reviewer=None, allow_anonymous=True)
    assert (await auth.authenticate(None)).username == ANONYMOUS


async def test_a_bad_token_is_refused_even_with_anonymous_on() -> None:
    auth = Authenticator(static_tokens={}, reviewer=CountingReviewer(), allow_anonymous=True)
    with pytest.raises(Unauthorized):
        await auth.authenticate("Bearer nope")


async def test_static_token_wins_without_review() -> None:
    reviewer = CountingReviewer()
    auth = Authenticator(static_tokens=parse_static_tokens("s3cret,carol\n"), reviewer=reviewer)
    assert (await auth.authenticate("Bearer s3cret")).username == "carol"
    assert reviewer.calls == 0


async def test_reviews_are_cached_for_a_while() -> None:
    reviewer, clock = CountingReviewer(), FakeClock()
    auth = Authenticator(static_tokens={}, reviewer=reviewer, cache_seconds=30, clock=clock)
    for _ in range(3):
        assert (await auth.authenticate("Bearer good1")).username == "user-good1"
    assert reviewer.calls == 1
    clock.now = 31
    await auth.authenticate("Bearer good1")
    assert reviewer.calls == 2


async def test_refusals_are_cached_shorter() -> None:
    reviewer, clock = CountingReviewer(), FakeClock()
    auth = Authenticator(static_tokens={}, reviewer=reviewer, cache_seconds=30, clock=clock)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await auth.authenticate("Bearer bad")
    assert reviewer.calls == 1
    clock.now = 8
    with pytest.raises(Unauthorized):
        await auth.authenticate("Bearer bad")
    assert reviewer.calls == 2


async def test_cache_is_bounded() -> None:
    reviewer = CountingReviewer()
    auth = Authenticator(static_tokens={}, reviewer=reviewer, cache_size=2, clock=FakeClock())
    for t in ("good1", "good2", "good3", "good1"):
        await auth.authenticate(f"Bearer {t}")
    assert reviewer.calls == 4
