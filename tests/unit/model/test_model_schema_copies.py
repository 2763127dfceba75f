"""The schema copies under tests/data/spec are the official files, byte for byte. They are
vendored so the tests run anywhere; ``tests/data/spec-sha256sums.txt`` pins each file's digest as
taken from the project's shared copy (``../shared/spec``), so an edit to a copy, a missing file or
an extra one fails here on any machine. After a deliberate update of the official schemas,
regenerate it: ``cd tests/data/spec && find ivoa-std-schema calycopis-schema -type f | sort |
xargs sha256sum > ../spec-sha256sums.txt``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tests.support.ivoa_schema import SPEC_DIR

pytestmark = pytest.mark.unit

SUMS = SPEC_DIR.parent / "spec-sha256sums.txt"
PINNED = {Path(line.split()[1]): line.split()[0] for line in SUMS.read_text().splitlines() if line.strip()}
FILES = sorted(p.relative_to(SPEC_DIR) for p in SPEC_DIR.rglob("*") if p.is_file())


def test_the_vendored_copies_are_complete() -> None:
    assert Path("ivoa-std-schema/openapi.yaml") in FILES
    assert Path("calycopis-schema/v1.0/components.yaml") in FILES
    assert sorted(PINNED) == FILES


@pytest.mark.parametrize("name", FILES, ids=[str(f) for f in FILES])
def test_a_vendored_copy_is_the_official_file(name: Path) -> None:
    assert hashlib.sha256((SPEC_DIR / name).read_bytes()).hexdigest() == PINNED[name]
