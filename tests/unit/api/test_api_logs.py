"""Pure parts of a session's logs: the tail of a kept copy, and how much of a log the copy keeps."""

from __future__ import annotations

import pytest

from eb_operator.api.logs import tail_of
from eb_operator.operator.finishing import clip_log

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("lines", "expected"),
    [(None, "a\nb\nc\n"), (2, "b\nc\n"), (5, "a\nb\nc\n"), (0, "")],
    ids=["all of it", "the last two lines", "more than there are", "none"],
)
def test_tail_gives_the_last_lines(lines: int | None, expected: str) -> None:
    assert tail_of("a\nb\nc\n", lines) == expected


def test_the_kept_copy_is_the_end_of_the_log_from_a_whole_line_saying_what_was_cut() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    assert clip_log(text, 10_000) == text
    kept = clip_log(text, 100)
    first, rest = kept.split("\n", 1)
    assert first == "[the start of this log was not kept: the copy holds its last 100 bytes]"
    assert rest.endswith("line 999\n")
    assert rest.startswith("line 9")
    assert len(rest.encode()) <= 100
    assert clip_log("é" * 100, 51).count("\ufffd") == 0  # never a broken character
